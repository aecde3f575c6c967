"""cyoptim.torch.LBFGS: torch.optim.LBFGS over cyoptim's vector kernels."""

import numpy as np
import torch
from torch.autograd.graph import increment_version
from torch.optim.optimizer import _to_scalar

from .. import _dispatch, _threads
from ..optimizers.lbfgs import LBFGS as _NumpyLBFGS
from ..optimizers.lbfgs import VectorOps, lbfgs_step, validate_hyperparameters
from ._optimizer import NUMPY_DTYPES, _tensor_problem

# State entries holding one flat vector, lists of them, lists of 0-d values.
_VECTORS, _VECTOR_LISTS, _SCALAR_LISTS = (
    ("d", "prev_flat_grad"),
    ("old_dirs", "old_stps"),
    ("ro", "al"),
)


class LBFGS(torch.optim.Optimizer):
    """L-BFGS for torch tensors: a drop-in for ``torch.optim.LBFGS``.

    The constructor, defaults, closure protocol (``step(closure)``, the
    closure computes the loss and calls ``backward()``), state layout (under
    the first param: ``func_evals``, ``n_iter``, ``d``, ``t``, ``old_dirs``,
    ``old_stps``, ``ro``, ``H_diag``, ``prev_flat_grad``, ``prev_loss``,
    ``al``) and ``state_dict`` are torch's: a state_dict of
    ``torch.optim.LBFGS`` loads here and the other way round. The step runs
    ``cyoptim.LBFGS``'s algorithm (torch's, statement by statement) on NumPy
    views of the tensors' memory (no copies of params or state): param
    updates are fused multiply-adds as torch's ``add_``, dot products are
    summed in double, deterministically, where torch's MKL sums in its own
    order (see ``cyoptim.LBFGS``).

    Params: dense, contiguous CPU tensors of one dtype, float32 or float64;
    anything else is refused with an error naming the param. Hyperparameters:
    as ``cyoptim.LBFGS`` (torch's checks, and a ``line_search_fn`` other than
    None and "strong_wolfe" refused at construction rather than at a step).

    The update rule, as ``cyoptim.LBFGS``:

    """

    def __init__(
        self,
        params,
        lr=1,
        max_iter=20,
        max_eval=None,
        tolerance_grad=1e-7,
        tolerance_change=1e-9,
        history_size=100,
        line_search_fn=None,
    ):
        if isinstance(lr, torch.Tensor) and lr.numel() != 1:
            raise ValueError("Tensor lr must be 1-element")
        if not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if max_eval is None:
            max_eval = max_iter * 5 // 4
        defaults = {
            "lr": lr,
            "max_iter": max_iter,
            "max_eval": max_eval,
            "tolerance_grad": tolerance_grad,
            "tolerance_change": tolerance_change,
            "history_size": history_size,
            "line_search_fn": line_search_fn,
        }
        super().__init__(params, defaults)
        if len(self.param_groups) != 1:
            raise ValueError("LBFGS doesn't support per-parameter options (parameter groups)")
        self._params = self.param_groups[0]["params"]

    def add_param_group(self, param_group):
        index = len(self.param_groups)
        super().add_param_group(param_group)
        group = self.param_groups[-1]
        try:
            checked = dict(group, lr=_to_scalar(group["lr"]))
            validate_hyperparameters(checked)
            for k, p in enumerate(group["params"]):
                problem = _tensor_problem(p)
                if problem:
                    raise ValueError(f"LBFGS: param {k} of param group {index} {problem}")
            if len({p.dtype for p in group["params"]}) > 1:
                raise TypeError("LBFGS: the params must share one dtype (one flat vector)")
        except Exception:
            self.param_groups.pop()
            raise

    @torch.no_grad()
    def step(self, closure):
        """Perform a single optimization step (torch.optim.LBFGS.step).

        Args:
            closure (Callable): A closure that reevaluates the model
                and returns the loss.
        """
        if len(self.param_groups) != 1:
            raise AssertionError(
                f"Expected exactly one param_group, but got {len(self.param_groups)}"
            )
        closure = torch.enable_grad()(closure)
        group = self.param_groups[0]
        params = group["params"]
        dtype = params[0].dtype
        ops = VectorOps(_dispatch.kernels, NUMPY_DTYPES[dtype], _threads._requested)
        state = self.state[params[0]]
        arrays = _state_to_numpy(state, dtype)
        problem = _TensorProblem(params, closure, ops)
        with np.errstate(all="ignore"):
            loss = lbfgs_step(dict(group, lr=_to_scalar(group["lr"])), arrays, problem, ops)
        _state_to_torch(arrays, state, dtype)
        return loss


LBFGS.__doc__ = (LBFGS.__doc__ or "") + (_NumpyLBFGS.__doc__ or "\n").split("\n", 1)[1]


class _TensorProblem:
    """The params (as flat NumPy views of their memory) and torch's closure."""

    def __init__(self, params, closure, ops):
        self.params, self.closure, self.ops = params, closure, ops
        self.views = [p.detach().numpy().reshape(-1) for p in params]
        self.dtype = params[0].dtype

    def evaluate(self):
        loss = self.closure()
        parts = []
        for k, (p, view) in enumerate(zip(self.params, self.views)):
            g = p.grad
            if g is None:
                parts.append(np.zeros(view.size, view.dtype))
                continue
            if g.is_sparse:
                g = g.to_dense()
            if not g.is_cpu or g.dtype != self.dtype or g.shape != p.shape:
                raise ValueError(
                    f"LBFGS: the grad of param {k} is a {g.dtype} tensor of shape "
                    f"{tuple(g.shape)} on {g.device}; the param is a "
                    f"{p.dtype} CPU tensor of shape {tuple(p.shape)}"
                )
            parts.append(g.detach().contiguous().numpy().reshape(-1))
        return loss, float(loss), np.concatenate(parts)

    def add_grad(self, t, d):
        offset = 0
        for view in self.views:
            self.ops.axpy_(view, t, d[offset : offset + view.size])
            offset += view.size
        increment_version(self.params)

    def clone_params(self):
        return [view.copy() for view in self.views]

    def set_params(self, x):
        for view, value in zip(self.views, x):
            np.copyto(view, value)
        increment_version(self.params)


def _array(t, dtype):
    """A NumPy view of a state tensor (the state must be of the params' dtype)."""
    if (
        not isinstance(t, torch.Tensor)
        or t.dtype != dtype
        or not t.is_cpu
        or t.layout is not torch.strided
    ):
        raise TypeError(
            f"LBFGS: a state tensor is a {getattr(t, 'dtype', type(t).__name__)} "
            f"{getattr(t, 'device', '')}; the params are {dtype} CPU tensors"
        )
    return t.detach().contiguous().numpy()


def _scalar(value, scalar):
    """A 0-d tensor as a NumPy scalar of the params' dtype; a number as it is."""
    if isinstance(value, torch.Tensor):
        return scalar(value.item())
    return value


def _state_to_numpy(state, dtype):
    scalar = NUMPY_DTYPES[dtype]
    arrays = dict(state)
    for name in _VECTORS:
        if arrays.get(name) is not None:
            arrays[name] = _array(arrays[name], dtype)
    for name in _VECTOR_LISTS:
        if name in arrays:
            arrays[name] = [_array(v, dtype) for v in arrays[name]]
    for name in _SCALAR_LISTS:
        if name in arrays:
            arrays[name] = [None if v is None else _scalar(v, scalar) for v in arrays[name]]
    for name in ("t", "H_diag"):
        if name in arrays:
            arrays[name] = _scalar(arrays[name], scalar)
    return arrays


def _tensor(value, dtype):
    """A flat vector as a tensor sharing its memory; a NumPy scalar as a 0-d tensor."""
    if isinstance(value, np.ndarray):
        return torch.from_numpy(value)
    if isinstance(value, np.generic):
        return torch.tensor(value.item(), dtype=dtype)
    return value


def _state_to_torch(arrays, state, dtype):
    for name, value in arrays.items():
        if name in _VECTOR_LISTS or name in _SCALAR_LISTS:
            state[name] = [None if v is None else _tensor(v, dtype) for v in value]
        else:
            state[name] = _tensor(value, dtype)
