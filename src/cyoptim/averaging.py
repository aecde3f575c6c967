"""AveragedParams: running averages of the weights (EMA and SWA), as torch's AveragedModel.

The averages are kept in blocks owned by the averager, one per dtype, and
updated by one kernel call per dtype (pyx/averaging.pxi): threaded, and
bitwise the same for any thread count.
"""

import numbers

import numpy as np

from . import _dispatch, _threads
from .optimizer import _check_param, _describe, _real_number, aligned_empty, check_like

MODES = ("ema", "swa")


def _array_list(arrays, kind):
    if isinstance(arrays, np.ndarray):
        raise TypeError(f"{kind}s must be a list of arrays, got a single array; wrap it in a list")
    if isinstance(arrays, (str, bytes, dict)) or not hasattr(arrays, "__iter__"):
        raise TypeError(f"{kind}s must be a list of arrays, got {_describe(arrays)}")
    arrays = list(arrays)
    for k, x in enumerate(arrays):
        _check_param(x, k, kind, writeable=False)
    return arrays


def _check_decay(decay):
    """torch's check (get_ema_multi_avg_fn), NaN refused too."""
    value = _real_number(decay)
    if value is None:
        raise TypeError(f"decay must be a real number, got {_describe(decay)}")
    if not 0.0 <= value <= 1.0:
        raise ValueError(
            f"Invalid decay value {decay} provided. Please provide a value in [0,1] range."
        )
    return value


def _blocks_by_dtype(arrays):
    """Indices of arrays grouped by dtype, groups in order of first appearance."""
    groups = {}
    for k, x in enumerate(arrays):
        groups.setdefault(x.dtype, []).append(k)
    return list(groups.values())


class AveragedParams:
    r"""Running averages of a model's params: EMA or SWA, as torch's ``AveragedModel``.

    Call :meth:`update` after each optimizer step (or each epoch, for SWA);
    :attr:`params` are the averages, arrays shaped like the params. The first
    update copies the params; each later one, with :math:`n` updates so far,

    .. math::
        \bar w \leftarrow \operatorname{lerp}(\bar w, w, \alpha), \qquad
        \alpha = \begin{cases} 1 - \text{decay} & \text{mode="ema"} \\
                 \mathrm{fp32}(1 / (n + 1)) & \text{mode="swa"} \end{cases}

    which is ``torch.optim.swa_utils.AveragedModel(model, multi_avg_fn=
    get_ema_multi_avg_fn(decay))`` (or ``get_swa_multi_avg_fn()``): both call
    ``torch._foreach_lerp_(averages, params, alpha)``. The details are
    torch's: ``lerp(a, w, alpha)`` is :math:`a + \alpha(w - a)` when
    :math:`|\alpha| < 0.5`, else :math:`w - (w - a)(1 - \alpha)`, computed in
    the params' precision with :math:`\alpha` cast to it; the SWA weight is a
    float32 value even for float64 params (torch computes it as
    ``1 / (n_averaged + 1)`` of an integer tensor). EMA with decay 1 keeps the
    first copy; decay 0 follows the params. NaN and Inf propagate as in torch.

    torch's CPU lerp fuses each multiply-add (one rounding); this kernel
    rounds twice, the same in every SIMD variant, so an average can differ
    from torch's by an ulp per update (float64: ~1e-16 relative).

    Args:
        params (list of arrays): the model's params (float32 or float64,
            C-contiguous; they are read, never written). The averager keeps
            references to them: they must stay the model's storage, as for an
            optimizer. Dtypes may differ: one kernel call per dtype.
        mode (str): ``"ema"`` (default) or ``"swa"``.
        decay (float): the EMA decay, in [0, 1] (default 0.999); not used by SWA.
        buffers (list of arrays): other state of the model (a batch norm's
            running statistics, ...), optional.
        use_buffers (bool): average the buffers like the params (torch's
            ``use_buffers=True``); by default (False) each update copies them,
            as torch keeps the averaged model's buffers in sync with the model.

    Attributes:
        params: the averaged params, in the order given (views into blocks
            owned by the averager; copies of the params until the first update).
        buffers: the averaged or copied buffers, in the order given.
        n_averaged: the number of updates so far.

    Example:
        >>> import numpy as np, cyoptim
        >>> w = np.zeros(3, np.float32)
        >>> opt = cyoptim.SGD([w], lr=0.1)
        >>> ema = cyoptim.AveragedParams([w], mode="ema", decay=0.9)
        >>> for _ in range(3):
        ...     opt.step([np.full(3, -1.0, np.float32)])    # w: 0.1, 0.2, 0.3
        ...     ema.update()
        >>> ema.n_averaged, round(float(ema.params[0][0]), 6)   # 0.1, 0.11, 0.11 + 0.1*0.19
        (3, 0.129)

    Reference: Izmailov et al., "Averaging Weights Leads to Wider Optima and
    Better Generalization" (SWA), https://arxiv.org/abs/1803.05407
    """

    def __init__(self, params, mode="ema", decay=0.999, *, buffers=None, use_buffers=False):
        if mode not in MODES:
            raise ValueError(f"mode must be 'ema' or 'swa', got {mode!r}")
        decay = _check_decay(decay)
        if not isinstance(use_buffers, (bool, np.bool_)):
            raise TypeError(f"use_buffers must be True or False, got {_describe(use_buffers)}")
        model_params = _array_list(params, "param")
        if not model_params:
            raise ValueError("AveragedParams got an empty parameter list")
        model_buffers = _array_list([] if buffers is None else buffers, "buffer")
        self.mode = mode
        self.decay = decay
        self.use_buffers = bool(use_buffers)
        self.n_averaged = 0
        self._model_params = model_params
        self._model_buffers = model_buffers
        self._kernels = _dispatch.kernels
        sources = model_params + model_buffers
        averages = [None] * len(sources)
        # Averaged together (one kernel call per dtype), and copied at each update.
        averaged = list(range(len(model_params) + (len(model_buffers) if use_buffers else 0)))
        copied = list(range(len(averaged), len(sources)))
        self._averaged = self._build_groups([sources[k] for k in averaged], averaged, averages)
        self._copied = self._build_groups([sources[k] for k in copied], copied, averages)
        self.params = averages[: len(model_params)]
        self.buffers = averages[len(model_params) :]

    def _build_groups(self, sources, positions, averages):
        """One AveragingGroup per dtype over new blocks; fills averages[positions[k]]."""
        groups = []
        for members in _blocks_by_dtype(sources):
            block = aligned_empty(sum(sources[k].size for k in members), sources[members[0]].dtype)
            views, at = [], 0
            for k in members:
                view = block[at : at + sources[k].size].reshape(sources[k].shape)
                np.copyto(view, sources[k])  # torch: a deep copy of the model
                at += sources[k].size
                views.append(view)
                averages[positions[k]] = view
            groups.append(self._kernels.AveragingGroup(views, [sources[k] for k in members]))
        return groups

    @property
    def weight(self):
        """The weight the next :meth:`update` gives the params (1.0: it copies them)."""
        if self.n_averaged == 0:
            return 1.0
        if self.mode == "ema":
            return 1.0 - self.decay
        return float(np.float32(1.0) / np.float32(self.n_averaged + 1))

    def update(self):
        """Fold the params' current values into the averages (torch's ``update_parameters``).

        The first call copies them; later calls average (see the class
        docstring). Copied buffers are copied every time. One kernel call per
        dtype, with the GIL released.
        """
        n_threads = _threads._requested
        first = self.n_averaged == 0
        weight = self.weight
        for group in self._averaged:
            if first:
                group.copy(n_threads)
            else:
                group.lerp(weight, n_threads)
        for group in self._copied:
            group.copy(n_threads)
        self.n_averaged += 1

    # ------------------------------------------------------------------ state
    def state_dict(self):
        """``{"n_averaged": int, "params": [...], "buffers": [...]}``, with copies of the arrays.

        The mode and decay are constructor arguments, not state (as torch's
        ``avg_fn``).
        """
        return {
            "n_averaged": self.n_averaged,
            "params": [a.copy() for a in self.params],
            "buffers": [b.copy() for b in self.buffers],
        }

    def load_state_dict(self, state_dict):
        """Restore a ``state_dict()``; one that does not fit is refused and nothing changes."""
        if not isinstance(state_dict, dict) or set(state_dict) != {
            "n_averaged",
            "params",
            "buffers",
        }:
            raise ValueError(
                "state_dict must be a dict with keys 'n_averaged', 'params' and 'buffers'"
            )
        n = state_dict["n_averaged"]
        if isinstance(n, (bool, np.bool_)) or not isinstance(n, numbers.Integral) or n < 0:
            raise ValueError(f"n_averaged must be a non-negative integer, got {n!r}")
        for kind, ours in (("param", self.params), ("buffer", self.buffers)):
            saved = state_dict[kind + "s"]
            if not isinstance(saved, (list, tuple)) or len(saved) != len(ours):
                raise ValueError(
                    f"state_dict has {_count(saved)} {kind}s, the averager {len(ours)}"
                )
            for k, (value, mine) in enumerate(zip(saved, ours)):
                check_like(value, mine, f"{kind} {k} of the state_dict", "the averager's")
        for kind, ours in (("params", self.params), ("buffers", self.buffers)):
            for value, mine in zip(state_dict[kind], ours):
                np.copyto(mine, value)
        self.n_averaged = int(n)

    def __repr__(self):
        decay = f", decay={self.decay}" if self.mode == "ema" else ""
        return (
            f"AveragedParams(mode={self.mode!r}{decay}, n_averaged={self.n_averaged}, "
            f"{len(self.params)} params, {len(self.buffers)} buffers"
            f"{', use_buffers=True' if self.use_buffers else ''})"
        )

    # ------------------------------------------------------------------ pickle, copy
    def __getstate__(self):
        """What pickle and copy.deepcopy save: the followed arrays, the settings and a
        ``state_dict()``. Unpickling builds the averager again over the unpickled
        arrays (a deep copy follows copies of the params; deep-copy it together with
        its optimizer, ``copy.deepcopy((opt, avg))``, and both share them)."""
        return {
            "model_params": self._model_params,
            "model_buffers": self._model_buffers,
            "mode": self.mode,
            "decay": self.decay,
            "use_buffers": self.use_buffers,
            "state_dict": self.state_dict(),
        }

    def __setstate__(self, state):
        self.__init__(
            state["model_params"],
            state["mode"],
            state["decay"],
            buffers=state["model_buffers"],
            use_buffers=state["use_buffers"],
        )
        self.load_state_dict(state["state_dict"])


def _count(value):
    return len(value) if isinstance(value, (list, tuple)) else _describe(value)
