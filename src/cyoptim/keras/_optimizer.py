"""The base class of cyoptim.keras: keras.optimizers.Optimizer over cyoptim's kernels.

Everything Keras's base class does stays Keras's: the learning rate (a
variable, a schedule or a callable), ``iterations``, gradient clipping
(``clipnorm``, ``clipvalue``, ``global_clipnorm``), ``loss_scale_factor``,
gradient accumulation, the EMA of the weights, variable constraints,
``exclude_from_weight_decay``, ``get_config`` and the optimizer's variables
(saved and loaded with the model). What changes is Keras's collective update
step, ``_backend_update_step``, which receives the whole list of variables:
here it is one kernel call per group of variables (variables of one dtype,
and, where the kernel applies the weight decay, of one weight decay), on the
torch tensors the variables hold, in place. No copy in, no copy out.

At every step each group's variables, gradients and optimizer variables are
read as they are then, checked, and their data pointers gathered
(pyx/tensor_plan.pxi, as cyoptim.torch does). Every group is checked before
the first write. The gradient of each variable is handed to the kernel as
the ``.grad`` of the variable's tensor for the length of the call (what
Keras's ``fit`` leaves there anyway), and restored afterwards.

Each class has a rule (cyoptim/keras/_classes.py): which kernel it calls,
which optimizer variables hold the kernel's state blocks, and the kernel's
hyperparameters for a step (the learning rate, the step count and the dtype
given), which is where Keras's update rules are expressed through cyoptim's
kernels.
"""

import keras
import numpy as np
import torch
from keras.src.backend import in_stateless_scope
from torch.autograd.graph import increment_version

from .. import _dispatch, _threads
from ..torch._optimizer import DTYPES, NUMPY_DTYPES
from ._backend import check_backend

# What a gather error is about, and why (the codes are pyx/tensor_plan.pxi's).
_k = _dispatch.kernels
_WHAT_PARAM, _WHAT_GRAD, _WHAT_STATE, _WHAT_SCALAR = (
    _k.WHAT_PARAM,
    _k.WHAT_GRAD,
    _k.WHAT_STATE,
    _k.WHAT_SCALAR,
)
_CODES = {
    _k.TENSOR_NOT_TENSOR: "is not a torch tensor",
    _k.TENSOR_DEVICE: "is not on the CPU (cyoptim updates CPU tensors)",
    _k.TENSOR_LAYOUT: "is not a dense (strided) tensor",
    _k.TENSOR_DTYPE: "has another dtype than its variable",
    _k.TENSOR_SHAPE: "has another shape than its variable",
    _k.TENSOR_CONTIGUOUS: "is not contiguous (cyoptim updates tensors in place)",
    _k.TENSOR_NOT_SCALAR: "is not a one-element float tensor",
    _k.TENSOR_MISSING: "is missing",
    _k.TENSOR_NO_DATA: "has no memory of its own behind data_ptr()",
}
_MISSING = _k.TENSOR_MISSING
del _k


def _scalar(x):
    """A learning rate (a Keras variable, a tensor, a NumPy or Python number) as a float."""
    if isinstance(x, keras.Variable):
        x = x.value
    if isinstance(x, torch.Tensor):
        return x.item()
    return float(x)


def variable_problem(variable):
    """Why a Keras variable cannot be updated in place by a kernel, or None."""
    value = variable.value
    if not isinstance(value, torch.Tensor):
        return f"holds a {type(value).__name__}, not a torch tensor"
    if value.layout is not torch.strided:
        return f"has layout {value.layout}; cyoptim.keras needs dense tensors"
    if not value.is_cpu:
        return f"is on device {value.device}; cyoptim.keras updates CPU tensors only"
    if value.dtype not in DTYPES:
        return (
            f"has dtype {variable.dtype}; the kernels update float32 and float64 "
            f"variables (a mixed-precision policy keeps its variables in float32)"
        )
    if not value.is_contiguous():
        return f"is not contiguous (strides {value.stride()})"
    return None


class Optimizer(keras.optimizers.Optimizer):
    """Base class of cyoptim.keras's optimizers (see the module docstring)."""

    _rule = None  # the class's rule (cyoptim/keras/_classes.py)

    # ------------------------------------------------------------------ build
    def build(self, variables):
        if self.built:
            return
        check_backend(keras.backend.backend())
        for variable in variables:
            problem = variable_problem(variable)
            if problem:
                raise ValueError(f"{type(self).__name__}: variable {_path(variable)!r} {problem}")
        rule = self._rule
        if rule.keras_build:
            super().build(variables)  # Keras's optimizer variables
        else:
            keras.optimizers.Optimizer.build(self, variables)
        self._slots = rule.build(self, variables)  # kernel block -> its variables
        self._plans = {}
        self._scratch = {}

    # ------------------------------------------------------------------ step
    def _backend_apply_gradients(self, grads, trainable_variables):
        grads = [self._grad_tensor(g, v) for g, v in zip(grads, trainable_variables)]
        super()._backend_apply_gradients(grads, trainable_variables)

    def _grad_tensor(self, g, variable):
        """The gradient as a contiguous CPU tensor of the variable's dtype (cast as
        Keras casts it), or an error naming the variable before anything is written."""
        value = variable.value
        if not isinstance(g, torch.Tensor):
            g = torch.as_tensor(np.asarray(g))
        if tuple(g.shape) != tuple(value.shape):
            raise ValueError(
                f"{type(self).__name__}: the gradient of variable "
                f"{_path(variable)!r} has shape {tuple(g.shape)}, but the "
                f"variable has shape {tuple(value.shape)}"
            )
        if g.layout is not torch.strided or not g.is_cpu:
            raise ValueError(
                f"{type(self).__name__}: the gradient of variable "
                f"{_path(variable)!r} must be a dense CPU tensor, got "
                f"layout {g.layout} on {g.device}"
            )
        if g.dtype != value.dtype:
            g = g.to(value.dtype)
        return g.detach().contiguous()

    def _apply_weight_decay(self, variables):
        if not self._rule.folds_decay:
            super()._apply_weight_decay(variables)
        # else the kernel multiplies the params by 1 - lr * weight_decay itself

    def _kernel_weight_decay(self, lr):
        """The kernel's weight decay wd_k for Keras's factor 1 - weight_decay * lr,
        computed as Keras computes it (in the learning rate's dtype): the
        kernel multiplies the params by 1 - lr * wd_k, that same factor."""
        if not self.weight_decay or lr == 0:
            return 0.0
        factor = _scalar(1 - self.weight_decay * self._get_current_learning_rate())
        return (1 - factor) / lr

    def _local_step(self):
        """Keras's step count of this update, ``iterations + 1``."""
        step = self._iterations.value.item()
        if self.gradient_accumulation_steps:
            step //= self.gradient_accumulation_steps
        return step + 1

    @torch.no_grad()
    def _backend_update_step(self, grads, trainable_variables, learning_rate):
        """One kernel call per group of variables, in place (see the module docstring)."""
        if in_stateless_scope():
            raise RuntimeError(
                f"{type(self).__name__} cannot run in a stateless scope "
                f"(stateless_apply): cyoptim's kernels update the variables "
                f"in place"
            )
        rule = self._rule
        lr = _scalar(learning_rate)
        step = self._local_step()
        grads = rule.grads(self, list(grads), lr)
        decay = self._kernel_weight_decay(lr) if rule.folds_decay else 0.0
        groups = {}  # (dtype, weight decay) -> (variables, grads)
        for g, variable in zip(grads, trainable_variables):
            wd = decay if decay and self._use_weight_decay(variable) else 0.0
            members = groups.setdefault((variable.value.dtype, wd), ([], []))
            members[0].append(variable)
            members[1].append(g)
        saved = []
        try:
            work = [
                self._gather(key, variables, group_grads, saved)
                for key, (variables, group_grads) in groups.items()
            ]
            kernel = getattr(_dispatch.kernels, rule.kernel + "_group")
            n_threads = _threads._requested
            stepped = []
            for (dtype, wd), plan, blocks in work:
                plan.steps[: plan.n_tensors] = step
                hyper = rule.hyper(self, lr, step, dtype, wd)
                kernel(plan, hyper, blocks, n_threads)
                plan.store_scalars()
                stepped += plan.stepped
        finally:
            for p, grad in saved:
                p.grad = grad
        if stepped:
            increment_version(stepped)

    def _gather(self, key, variables, grads, saved):
        """Check one group, record its pointers; returns (key, plan, blocks)."""
        rule = self._rule
        plan = self._plans.get(key)
        if plan is None:
            plan = self._plans[key] = _dispatch.kernels.TensorPlan()
        params, state = [], {}
        slot_names = tuple(name if name in self._slots else None for name in rule.blocks)
        for variable, g in zip(variables, grads):
            p = variable.value
            if p.grad is not g:
                saved.append((p, p.grad))
                p.grad = g
            params.append(p)
            index = self._get_variable_index(variable)
            state[p] = {
                name: slot[index].value
                for name, slot in self._slots.items()
                if slot[index] is not None
            }
        bad = plan.gather(
            params,
            state,
            slot_names,
            rule.scalar_names,
            False,
            torch.Tensor,
            torch.strided,
            DTYPES,
            rule.state_shape,
            None,
        )
        if bad is None and plan.missing:
            _, p, name = plan.missing[0]
            bad = (params.index(p), _WHAT_STATE + rule.blocks.index(name), _MISSING)
        if bad is not None:
            raise self._gather_error(variables, *bad)
        blocks = {}
        for s, name in enumerate(rule.scalar_names):
            blocks[name] = plan.scalar_values(s)
        for name in rule.internal_names:
            blocks[name] = np.full(plan.n_tensors, rule.internal(self, name))
        for name in rule.scratch_names:
            blocks[name] = self._scratch_block(key, name, plan)
        return key, plan, blocks

    def _scratch_block(self, key, name, plan):
        dtype = NUMPY_DTYPES[plan.dtype]
        block = self._scratch.get((key, name))
        if block is None or block.size < plan.total_elements:
            block = self._scratch[(key, name)] = np.empty(plan.total_elements, dtype=dtype)
        return block[: plan.total_elements]

    def _gather_error(self, variables, k, what, code):
        variable = variables[k]
        if what == _WHAT_PARAM:
            subject = f"variable {_path(variable)!r}"
        elif what == _WHAT_GRAD:
            subject = f"the gradient of variable {_path(variable)!r}"
        elif what >= _WHAT_SCALAR:
            subject = (
                f"optimizer variable {self._rule.scalar_names[what - _WHAT_SCALAR]!r} "
                f"of variable {_path(variable)!r}"
            )
        else:
            subject = (
                f"the optimizer variable for {self._rule.blocks[what - _WHAT_STATE]!r} "
                f"of variable {_path(variable)!r}"
            )
        return ValueError(
            f"{type(self).__name__}: {subject} {_CODES.get(code, f'cannot be used (code {code})')}"
        )


def _path(variable):
    return getattr(variable, "path", None) or variable.name
