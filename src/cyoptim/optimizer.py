"""The optimizer base class: param groups, per-parameter state, state_dict, input checks.

An optimizer owns a list of param groups (dicts, defaults filled in, as in
torch.optim) and, for each group, a compiled GroupPlan (see pyx/plan.pxi) that
knows where the group's arrays live. State is created lazily: each state buffer
of a group (``exp_avg``, ...) is one contiguous block allocated at the group's
first step, and a param's state appears in ``state_dict()`` once it has taken a
step. ``step(grads)`` checks every grad of every group before it writes
anything, then makes one kernel call per group.

Subclasses describe their algorithm with a few class attributes and hooks:

- ``kernel``: the name of its kernel (a KERNELS row of cyoptim/registry.py). The
  default ``_update`` calls it with the group's state blocks and the kernel's
  hyperparameters, read from the group under the same names (``betas`` gives
  ``beta1`` and ``beta2``).
- ``_validate_hyperparameters(group)``: raise ValueError with torch's wording.
- ``_state_names(group)``: the state buffers the group's flags need now. A
  buffer made under other flags (momentum since set to 0, ...) stays, is
  still saved, and may be loaded, as torch keeps it; the kernel's blocks in
  the registry are every buffer the class can have.
- ``_required_state_names(group)``: the buffers a loaded entry must hold
  (default: ``_state_names``).
- ``_exports_block(name, blocks, k)``: whether param k's entry shows that
  buffer (default: yes, once it exists).
- ``_state_shape(name, shape)``: the shape of buffer ``name`` for a param of
  this shape, or None when such a param has none (default: the param's
  shape). Adafactor's factored buffers are not param-shaped; the group's
  block then holds each param's part in param order, of that shape's size.
- ``_state_fill(name, group)``: their initial value (0 unless overridden).
- ``_tensor_state``: per-param scalar state (NAdam's ``mu_product``): name ->
  ``TensorState(initial, low, high, exported)``; kept in one float64 array per
  group. An exported one is shown in ``state`` as a float, saved and restored
  by ``state_dict``; an internal one (SGD's ``momentum_started``) is derived
  from a loaded entry by ``_loaded_tensor_state(name, entry)``.
- ``_scratch_names(group)``: internal param-sized work blocks (none unless
  overridden); kept with the state blocks but never part of the state.
- ``_exports_step``: whether ``state_dict`` shows the per-param ``step``.
- ``_update(group, plan, blocks, grads, n_threads)``: only the NumPy twins
  (cyoptim.reference) override it (grads: the group's grads, already
  checked; kernels read them through the plan).

``blocks`` maps each name (state, tensor state, scratch) to its array: a
state or scratch block holds one element per param element of the group
(a state block: per ``_state_shape``), a tensor state one value per param.
"""

import math
from collections import namedtuple

import numpy as np

from . import _dispatch, _threads, registry
from . import precision as _precision

SUPPORTED_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
# Optimizers with staged kernels also step 16-bit params (cyoptim.precision).
PARAM_DTYPES = _precision.supported_param_dtypes()

# gather_all() codes, defined in pyx/plan.pxi.
_GRAD_NOT_ARRAY = _dispatch.kernels.GRAD_NOT_ARRAY
_GRAD_DTYPE = _dispatch.kernels.GRAD_DTYPE
_GRAD_SHAPE = _dispatch.kernels.GRAD_SHAPE


# kernel name -> the names of its state blocks (registry.KERNELS).
_KERNEL_BLOCKS = {k.name: tuple(b.name for b in k.blocks) for k in registry.KERNELS}

# Per-param scalar state: its value before the first step, the closed range a
# loaded value must lie in, and whether state_dict shows it.
TensorState = namedtuple("TensorState", "initial low high exported", defaults=(True,))


def aligned_empty(n, dtype, alignment=64):
    """An uninitialized 1-d array of n elements whose data starts on an
    `alignment`-byte boundary."""
    dtype = np.dtype(dtype)
    raw = np.empty(n * dtype.itemsize + alignment, dtype=np.uint8)
    start = -raw.ctypes.data % alignment
    return raw[start : start + n * dtype.itemsize].view(dtype)


def aligned_zeros(n, dtype, fill=0.0, alignment=64):
    """A 1-d array of n elements, all `fill`, whose data starts on an `alignment`-byte boundary."""
    out = aligned_empty(n, dtype, alignment)
    out.fill(fill)
    return out


def _describe(x):
    if isinstance(x, np.ndarray):
        return f"array of dtype {x.dtype} and shape {x.shape}"
    return type(x).__name__


def _real_number(value):
    """A real number given as a Python or NumPy scalar (or 0-d array), as a float; else None."""
    if isinstance(value, bool) or np.ndim(value) != 0:
        return None
    value = np.asarray(value)
    if value.dtype.kind not in "fiu":
        return None
    return float(value)


def check_like(value, like, what, like_what):
    """Refuse a loaded array ``value`` (called ``what``) unless it has the shape and
    dtype of ``like`` (called ``like_what``)."""
    if not isinstance(value, np.ndarray):
        raise TypeError(f"{what} must be a NumPy array, got {_describe(value)}")
    if value.shape != like.shape or value.dtype != like.dtype:
        raise ValueError(
            f"{what} is an {_describe(value)}, but {like_what} is an {_describe(like)}"
        )


def _check_param(p, index, kind="param", writeable=True, dtypes=SUPPORTED_DTYPES):
    """Refuse params the kernels cannot update in place (``writeable=False``: only read)."""
    if not isinstance(p, np.ndarray):
        raise TypeError(f"{kind} {index} must be a NumPy array, got {_describe(p)}")
    if p.dtype not in dtypes or not p.dtype.isnative:
        names = [str(d) for d in dtypes]
        raise TypeError(
            f"{kind} {index} has dtype {p.dtype}; supported dtypes are "
            f"{', '.join(names[:-1])} and {names[-1]} (native byte order)"
        )
    if writeable and not p.flags.writeable:
        raise ValueError(f"{kind} {index} is read-only; optimizers update params in place")
    if not p.flags.c_contiguous or not p.flags.aligned:
        raise ValueError(
            f"{kind} {index} is not C-contiguous; pass a contiguous array "
            f"(np.ascontiguousarray) and keep it as the model's storage"
        )


class Optimizer:
    """Base class of cyoptim's optimizers (see the module docstring)."""

    kernel: str | None = None
    _exports_step = True
    _tensor_state: dict = {}

    def __init__(
        self,
        params,
        defaults,
        *,
        master_weights=False,
        state_dtype=None,
        stochastic_rounding=False,
        seed=None,
    ):
        self.precision = _precision.check(
            self.kernel, master_weights, state_dtype, stochastic_rounding, seed
        )
        self._storages = []
        if isinstance(params, np.ndarray):
            raise TypeError(
                "params argument given to the optimizer should be an iterable "
                "of arrays or dicts, but got a single array; wrap it in a list"
            )
        self.defaults = dict(defaults)
        self._validate_hyperparameters(self.defaults)
        self.param_groups = []
        self._plans = []
        self._blocks = []
        self._n_params = 0
        self._bind_kernels()
        groups = list(params)
        if not groups:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    def _bind_kernels(self):
        """Use the SIMD variant selected now (cyoptim._dispatch) for every step."""
        self._kernels = _dispatch.kernels
        if self.kernel is not None:
            self._kernel_group = getattr(self._kernels, self.kernel + "_group")

    # ------------------------------------------------------------------ groups
    def add_param_group(self, param_group):
        """Add a group: a dict with "params" and any hyperparameter overrides.

        The group's params are fixed from then on: the optimizer keeps pointers
        to those arrays (hyperparameters in the dict stay mutable).
        """
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, got {type(param_group).__name__}")
        if "params" not in param_group:
            raise ValueError("param_group must have a 'params' entry")
        params = param_group["params"]
        if isinstance(params, np.ndarray):
            params = [params]
        elif isinstance(params, set):
            raise TypeError(
                "optimizer parameters need to be organized in ordered "
                "collections, but the ordering of sets changes between runs"
            )
        params = list(params)
        first = self._n_params
        for k, p in enumerate(params):
            _check_param(p, first + k, dtypes=PARAM_DTYPES)
        dtypes = {p.dtype for p in params}
        if len(dtypes) > 1:
            raise TypeError(
                f"the params of one group must share a dtype, got "
                f"{sorted(str(d) for d in dtypes)}; put each dtype in its own group"
            )
        # Two params sharing memory would be updated twice.
        overlap = self._kernels.first_overlap(self._all_params() + params)
        if overlap is not None:
            raise ValueError(
                f"params {overlap[0]} and {overlap[1]} share memory; "
                f"each param may appear only once in an optimizer"
            )
        group = {name: value for name, value in param_group.items() if name != "params"}
        for name, default in self.defaults.items():
            group.setdefault(name, default)
        self._validate_hyperparameters(group)
        group["params"] = params
        dtype = params[0].dtype if params else np.float32
        storage = _precision.group_storage(
            self.precision, np.dtype(dtype), self.kernel, f"group {len(self.param_groups)}"
        )
        if storage is None and dtype not in (np.float32, np.float64):
            raise TypeError(
                f"{dtype} params need a staged kernel; "
                f"{type(self).__name__} steps float32 and float64 params"
            )
        plan = self._kernels.GroupPlan(params, dtype)
        if storage is not None:
            blocks = _KERNEL_BLOCKS[self.kernel]
            plan.set_storage(
                storage.param_kind,
                storage.param_kind,
                (storage.state_kind,) * len(blocks),
                (storage.state_dtype.num,) * len(blocks),
                tuple(b in _precision.NONNEGATIVE_STATES for b in blocks),
                self.precision.stochastic_rounding,
                self.precision.seed or 0,
            )
        self._plans.append(plan)
        self._storages.append(storage)
        self._n_params += len(params)
        self._blocks.append({})
        self.param_groups.append(group)

    def _all_params(self):
        return [p for group in self.param_groups for p in group["params"]]

    # ------------------------------------------------------------------ hooks
    def _validate_hyperparameters(self, group):
        """Raise ValueError (torch's wording) for invalid hyperparameters."""

    def _state_names(self, group):
        return ()

    def _state_fill(self, name, group):
        return 0.0

    def _all_state_names(self):
        """Every state buffer this class can have: its kernel's blocks, in order
        (and with staged storage, the master copy and int8 scales)."""
        names = _KERNEL_BLOCKS.get(self.kernel, ())
        if self.precision.state_dtype == "int8":
            names += tuple(name + "_absmax" for name in names)
        if self.precision.master_weights:
            names += (_precision.MASTER,)
        return names

    def _required_state_names(self, group):
        return self._state_names(group)

    def _exports_block(self, name, blocks, k):
        return True

    def _state_shape(self, name, shape):
        """The shape of state buffer ``name`` of a param of this shape (a
        tuple), or None when such a param has no such buffer."""
        return shape

    def _loaded_tensor_state(self, name, entry):
        """The value of an internal (not exported) tensor state for a loaded entry."""
        return self._tensor_state[name].initial

    def _scratch_names(self, group):
        """Internal work blocks the group's kernel needs, besides its state.

        Each is one param-sized block of the group (like a state block, handed
        to ``_update`` in ``blocks``), allocated uninitialized at the group's
        first step and reused by every later step. A scratch block carries
        nothing from one step to the next: the kernel writes it before it reads
        it. So it is never part of ``state``, ``state_dict`` or
        ``load_state_dict``. Names must differ from the state names.
        """
        return ()

    def _update(self, group, plan, blocks, grads, n_threads):
        """One kernel call for the group (its hyperparameters read from the group)."""
        return self._kernel_group(plan, group, blocks, n_threads)

    # ------------------------------------------------------------------ step
    def step(self, grads, copy_to=None):
        """Update every param in place from its grad.

        grads: one array per param, in the order the params were given (groups
        in order), or None to leave that param and its state untouched. Every
        grad is checked before anything is written; on error nothing changes.

        copy_to: None, or one array (or None) per param: a bfloat16 or float16
        array of the param's size that receives the updated param rounded to
        nearest even, written in the same pass as the update (the 16-bit copy
        an accelerator reads when the float32 params live on the host). For
        16-bit params the copy has the param's dtype and gets its bits.
        """
        copies = self._check_copies(copy_to) if copy_to is not None else None
        grads = self._gather(grads)
        groups = tuple(zip(self.param_groups, self._plans, self._blocks))
        for group, plan, blocks in groups:
            self._ensure_blocks(group, plan, blocks)
        n_threads = _threads._requested
        first = 0
        for g, (group, plan, blocks) in enumerate(groups):
            n = plan.n_tensors
            if plan.n_active:
                plan.advance()
                if copies is not None:
                    self._stage_copies(g, plan, copies[first : first + n])
                try:
                    self._update(
                        group,
                        plan,
                        blocks,
                        grads if n == len(grads) else grads[first : first + n],
                        n_threads,
                    )
                finally:
                    if copies is not None:
                        self._unstage_copies(g, plan)
            first += n

    def _check_copies(self, copy_to):
        """Validate step's copy_to; return it as a list."""
        if isinstance(copy_to, np.ndarray) or not hasattr(copy_to, "__len__"):
            raise TypeError(
                f"copy_to must be a list with one array (or None) per param, "
                f"got {_describe(copy_to)}"
            )
        copies = list(copy_to)
        if len(copies) != self._n_params:
            raise ValueError(
                f"copy_to has {len(copies)} entries; expected {self._n_params} "
                f"(one per param, None for no copy)"
            )
        sixteen = tuple(d for d in (_precision.BFLOAT16, _precision.FLOAT16) if d is not None)
        index = 0
        for g, (group, storage) in enumerate(zip(self.param_groups, self._storages)):
            for p in group["params"]:
                c = copies[index]
                if c is not None:
                    if not isinstance(c, np.ndarray) or c.dtype not in sixteen:
                        raise TypeError(
                            f"copy_to[{index}] must be a bfloat16 or float16 "
                            f"array, got {_describe(c)}"
                        )
                    if c.size != p.size or not c.flags.c_contiguous or not c.flags.writeable:
                        raise ValueError(
                            f"copy_to[{index}] must be a writeable C-contiguous "
                            f"array of {p.size} elements (param {index}'s size)"
                        )
                    if p.dtype in sixteen and c.dtype != p.dtype:
                        raise TypeError(
                            f"copy_to[{index}] has dtype {c.dtype}; the copy of "
                            f"a {p.dtype} param has its dtype"
                        )
                    if p.dtype == np.float64 or (
                        storage is None and self.kernel not in _precision.STAGED_KERNELS
                    ):
                        raise ValueError(
                            f"copy_to[{index}]: {type(self).__name__} writes "
                            f"16-bit copies of float32 and 16-bit params only"
                        )
                index += 1
            kinds = {
                c.dtype for c in copies[index - len(group["params"]) : index] if c is not None
            }
            if len(kinds) > 1:
                raise TypeError(
                    f"copy_to: the copies of param group {g} mix "
                    f"{sorted(str(k) for k in kinds)}; one dtype per group"
                )
        return copies

    def _stage_copies(self, g, plan, copies):
        """Hand the group's copies to its plan (staging a float32 group for
        this step, whose kernel then runs chunk by chunk)."""
        if all(c is None for c in copies):
            return
        kind = (
            _precision.KIND_F16
            if next(c for c in copies if c is not None).dtype == _precision.FLOAT16
            else _precision.KIND_BF16
        )
        if self._storages[g] is None:
            blocks = _KERNEL_BLOCKS[self.kernel]
            plan.set_storage(
                _precision.KIND_F32,
                _precision.KIND_F32,
                (_precision.KIND_F32,) * len(blocks),
                (_precision.FLOAT32.num,) * len(blocks),
                (False,) * len(blocks),
            )
            plan.refresh_runs()
        plan.set_copies(copies, kind)

    def _unstage_copies(self, g, plan):
        plan.set_copies(None)
        if self._storages[g] is None and plan.staged:
            plan.unstage()

    def _gather(self, grads):
        """Check all grads and record their pointers in the plans; write nothing else."""
        if type(grads) is not list:
            if isinstance(grads, np.ndarray) or not hasattr(grads, "__len__"):
                raise TypeError(
                    f"grads must be a list with one array (or None) per "
                    f"param, got {_describe(grads)}"
                )
            grads = list(grads)
        if len(grads) != self._n_params:
            changed = [
                g
                for g, (group, plan) in enumerate(zip(self.param_groups, self._plans))
                if len(group["params"]) != plan.n_tensors
            ]
            hint = (
                f"; the params list of group {changed[0]} was changed after the group "
                f"was added (use add_param_group for new params)"
                if changed
                else ""
            )
            raise ValueError(
                f"expected {self._n_params} grads (one per param, None to "
                f"skip one), got {len(grads)}{hint}"
            )
        bad = self._kernels.gather_all(self._plans, grads)
        if bad is not None:
            index, code = bad
            raise self._grad_error(grads[index], self._all_params()[index], index, code)
        return grads

    @staticmethod
    def _grad_error(grad, param, index, code):
        if code == _GRAD_NOT_ARRAY:
            return TypeError(f"grad {index} must be a NumPy array or None, got {_describe(grad)}")
        if code == _GRAD_DTYPE:
            return TypeError(
                f"grad {index} has dtype {grad.dtype}, but param {index} has "
                f"dtype {param.dtype}; they must match"
            )
        if code == _GRAD_SHAPE:
            return ValueError(
                f"grad {index} has shape {grad.shape}, but param {index} has shape {param.shape}"
            )
        return ValueError(
            f"grad {index} is not C-contiguous (or not aligned); pass np.ascontiguousarray(grad)"
        )

    def _new_state_block(self, name, group, plan, storage=None):
        fill = self._state_fill(name, group)
        if storage is None:
            return aligned_zeros(self._state_offsets(plan, name)[-1], plan.dtype, fill)
        if storage.state_kind != _precision.KIND_INT8:
            return aligned_zeros(plan.total_elements, storage.state_dtype, fill)
        # int8: per tensor, codes (or float32 below INT8_MIN_SIZE elements).
        from . import quantization

        return [
            quantization.quantize_blockwise(
                np.full(p.shape, fill, np.float32),
                signed=name not in _precision.NONNEGATIVE_STATES,
            )[0]
            if _precision.quantized(storage, p.size)
            else np.full(p.shape, fill, np.float32)
            for p in plan.params
        ]

    def _new_scales(self, name, group, plan, storage):
        """The absmax arrays of a new int8 state (None for float32 tensors)."""
        fill = self._state_fill(name, group)
        return [
            np.full(_precision.n_blocks(p.size), abs(fill), np.float32)
            if _precision.quantized(storage, p.size)
            else None
            for p in plan.params
        ]

    def _state_offsets(self, plan, name):
        """Where each param's part of the block ``name`` starts (and the
        block's size, last): param k's part has prod(_state_shape) elements,
        none where it is None."""
        if type(self)._state_shape is Optimizer._state_shape:
            return plan.offsets
        sizes = [
            0 if shape is None else math.prod(shape)
            for shape in (self._state_shape(name, p.shape) for p in plan.params)
        ]
        return np.concatenate([[0], np.cumsum(sizes, dtype=np.int64)])

    def _ensure_blocks(self, group, plan, blocks, also=()):
        """Allocate the group's missing blocks: state (the flags' names and
        ``also``), tensor state and scratch; with staged storage also the
        master copy and int8 scales, handed to the plan."""
        storage = self._storages[self._plans.index(plan)]
        derived = (_precision.MASTER,) + tuple(n for n in also if n.endswith("_absmax"))
        for name in tuple(self._state_names(group)) + tuple(n for n in also if n not in derived):
            if name not in blocks:
                blocks[name] = self._new_state_block(name, group, plan, storage)
                if storage is not None and storage.state_kind == _precision.KIND_INT8:
                    blocks[name + "_absmax"] = self._new_scales(name, group, plan, storage)
                    plan.set_scales(
                        _KERNEL_BLOCKS[self.kernel].index(name), blocks[name + "_absmax"]
                    )
        if storage is not None and storage.master and _precision.MASTER not in blocks:
            blocks[_precision.MASTER] = aligned_empty(plan.total_elements, np.float32)
            masters = self._views(plan, blocks[_precision.MASTER], _precision.MASTER)
            for master, p in zip(masters, plan.params):
                master[...] = p
            plan.set_master(masters)
        for name, spec in self._tensor_state.items():
            if name not in blocks:
                blocks[name] = np.full(plan.n_tensors, spec.initial, dtype=np.float64)
        for name in self._scratch_names(group):
            if name not in blocks:
                blocks[name] = aligned_empty(plan.total_elements, plan.dtype)

    # ------------------------------------------------------------------ state
    def _views(self, plan, block, name):
        """Per-param views of the state block ``name`` (None for a param without it)."""
        if type(block) is list:  # int8 states and their scales: per param
            return block
        offsets = self._state_offsets(plan, name)
        views = []
        for k, p in enumerate(plan.params):
            shape = self._state_shape(name, p.shape)
            views.append(
                None if shape is None else block[offsets[k] : offsets[k + 1]].reshape(shape)
            )
        return views

    @property
    def state(self):
        """Per-param state, keyed by param index: live views into the state blocks."""
        state = {}
        index = 0
        for _group, plan, blocks in zip(self.param_groups, self._plans, self._blocks):
            names = [n for n in self._all_state_names() if n in blocks]
            views = {name: self._views(plan, blocks[name], name) for name in names}
            scalars = [
                n for n, spec in self._tensor_state.items() if spec.exported and n in blocks
            ]
            for k in range(plan.n_tensors):
                if plan.steps[k] > 0:
                    entry = {"step": float(plan.steps[k])} if self._exports_step else {}
                    for name in scalars:
                        entry[name] = float(blocks[name][k])
                    for name in names:
                        if views[name][k] is not None and self._exports_block(name, blocks, k):
                            entry[name] = views[name][k]
                    if entry:
                        state[index + k] = entry
            index += plan.n_tensors
        return state

    def state_dict(self):
        """A snapshot in torch's layout: {"state": {index: {...}}, "param_groups": [...]}.

        Arrays are copies, so later steps do not change a saved state_dict.
        """
        state = {
            i: {
                name: (value.copy() if isinstance(value, np.ndarray) else value)
                for name, value in entry.items()
            }
            for i, entry in self.state.items()
        }
        groups = []
        index = 0
        for group in self.param_groups:
            saved = {name: value for name, value in group.items() if name != "params"}
            saved["params"] = list(range(index, index + len(group["params"])))
            index += len(group["params"])
            groups.append(saved)
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict):
        """Restore a state_dict; refuse one that does not fit and change nothing then."""
        new_groups, per_param = self._check_state_dict(state_dict)
        for g, (group, plan, blocks) in enumerate(
            zip(self.param_groups, self._plans, self._blocks)
        ):
            group.update(new_groups[g])
            blocks.clear()
            plan.steps[:] = 0
            # Also the buffers the flags no longer need but the saved state holds.
            self._ensure_blocks(
                group,
                plan,
                blocks,
                also=[
                    name
                    for name in self._all_state_names()
                    if any(name in entry for entry in per_param[g].values())
                ],
            )
            views = {
                name: self._views(plan, blocks[name], name)
                for name in self._all_state_names()
                if name in blocks
            }
            for k, entry in per_param[g].items():
                plan.steps[k] = entry.get("step", 1.0)
                for name, spec in self._tensor_state.items():
                    blocks[name][k] = (
                        entry[name] if spec.exported else self._loaded_tensor_state(name, entry)
                    )
                for name, value in entry.items():
                    if name != "step" and name not in self._tensor_state:
                        np.copyto(views[name][k], value)

    def _check_state_dict(self, state_dict):
        """Validate everything; return the new hyperparameters and per-group state."""
        if not isinstance(state_dict, dict) or set(state_dict) != {"state", "param_groups"}:
            raise ValueError("state_dict must be a dict with keys 'state' and 'param_groups'")
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(
                f"loaded state dict has {len(saved_groups)} parameter groups, "
                f"but the optimizer has {len(self.param_groups)}"
            )
        new_groups, per_param, owner = [], [], {}
        index = 0
        for g, (saved, group) in enumerate(zip(saved_groups, self.param_groups)):
            if len(saved.get("params", ())) != len(group["params"]):
                raise ValueError(
                    "loaded state dict contains a parameter group that doesn't "
                    "match the size of optimizer's group"
                )
            # Keys beyond the defaults (a scheduler's initial_lr, ...) are kept, as torch does.
            hyper = {name: value for name, value in saved.items() if name != "params"}
            merged = dict(group)
            merged.update(hyper)
            self._validate_hyperparameters(merged)
            new_groups.append(hyper)
            per_param.append({})
            for k, saved_index in enumerate(saved["params"]):
                owner[saved_index] = (g, k, index + k, merged)
            index += len(group["params"])
        for saved_index, entry in state_dict["state"].items():
            if saved_index not in owner:
                raise ValueError(
                    f"loaded state has an entry for param {saved_index}, "
                    f"which no parameter group lists"
                )
            g, k, index, merged = owner[saved_index]
            per_param[g][k] = self._check_param_state(
                entry, index, merged, self.param_groups[g]["params"][k], self._storages[g]
            )
        return new_groups, per_param

    def _check_param_state(self, entry, index, group, param, storage=None):
        if not isinstance(entry, dict):
            raise ValueError(f"state of param {index} must be a dict")
        required = (
            set(self._required_state_names(group))
            | {n for n, spec in self._tensor_state.items() if spec.exported}
            | ({"step"} if self._exports_step else set())
        )
        if storage is not None and storage.master:
            required.add(_precision.MASTER)
        allowed = required | set(self._all_state_names())
        shapes = {name: self._state_shape(name, param.shape) for name in self._all_state_names()}
        absent = {name for name, shape in shapes.items() if shape is None}
        if _precision.quantized(storage, param.size):
            # Each int8 state comes with its scales.
            blocks = _KERNEL_BLOCKS[self.kernel]
            required |= {name + "_absmax" for name in required | set(entry) if name in blocks}
        else:
            absent |= {name for name in shapes if name.endswith("_absmax")}
        required -= absent
        allowed -= absent
        if not required <= set(entry) <= allowed:
            raise ValueError(
                f"state of param {index} has keys {sorted(entry)}; expected "
                f"{sorted(required)}"
                + (f" and any of {sorted(allowed - required)}" if allowed != required else "")
                + " for this group's settings"
            )
        names = set(entry) & set(self._all_state_names())
        if "step" in entry:
            # Step 0: a param that has not stepped yet (torch's Adagrad saves
            # those); its arrays are restored and it still counts as not stepped.
            step = _real_number(entry["step"])
            if step is None or not step >= 0 or step != int(step):
                raise ValueError(
                    f"state of param {index}: step must be a non-negative "
                    f"whole number, got {entry['step']!r}"
                )
        scalars = {}
        for name, spec in self._tensor_state.items():
            if not spec.exported:
                continue
            value = _real_number(entry[name])
            if value is None or not spec.low <= value <= spec.high:
                raise ValueError(
                    f"state of param {index}: {name} must be a number in "
                    f"[{spec.low}, {spec.high}], got {entry[name]!r}"
                )
            scalars[name] = value
        for name in names:
            like, like_what = param, "the param"
            if storage is not None:
                like, like_what = self._staged_like(name, param, storage)
            elif shapes[name] != param.shape:
                like = np.empty(shapes[name], param.dtype)
                like_what = f"its {name} for a param of shape {param.shape}"
            check_like(entry[name], like, f"state {name!r} of param {index}", like_what)
        checked = {name: entry[name] for name in names}
        checked.update(scalars)
        if "step" in entry:
            checked["step"] = float(np.asarray(entry["step"]))
        return checked

    @staticmethod
    def _staged_like(name, param, storage):
        """An array like the state ``name`` of ``param`` in staged storage, and
        what to call it in an error."""
        what = f"its {name} in this optimizer's storage"
        if name == _precision.MASTER:
            return np.empty(param.shape, np.float32), what
        if name.endswith("_absmax"):
            return np.empty(_precision.n_blocks(param.size), np.float32), what
        if storage.state_kind == _precision.KIND_INT8 and not _precision.quantized(
            storage, param.size
        ):
            return np.empty(param.shape, np.float32), what
        return np.empty(param.shape, storage.state_dtype), what

    def __repr__(self):
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for name in sorted(group):
                if name != "params":
                    lines.append(f"    {name}: {group[name]}")
        lines.append(")")
        return "\n".join(lines)

    # ------------------------------------------------------------------ pickle, copy
    # Attributes rebuilt on unpickling, not pickled: the compiled plans (raw
    # pointers), the state blocks (pickled as a state_dict instead), the kernel
    # module, and the NumPy twins' scratch cache.
    _unpickled = (
        "param_groups",
        "_plans",
        "_blocks",
        "_n_params",
        "_kernels",
        "_storages",
        "_kernel_group",
        "_reference_cache",
    )

    def __getstate__(self):
        """What pickle and copy.deepcopy save: the param groups with their arrays, a
        ``state_dict()``, and the other attributes as they are.

        Unpickling (``__setstate__``) builds the optimizer again over the
        unpickled param arrays, then loads the state: the copy steps bitwise as
        the original would. A deep copy owns copies of the params (a view into
        a ParamBuffer becomes an array of its own); ``copy.copy`` gives a new
        optimizer over the same param arrays, with a copy of the state.

        Example:
            >>> import copy, pickle
            >>> import numpy as np, cyoptim
            >>> w = np.ones(3)
            >>> opt = cyoptim.Adam([w], lr=0.1)
            >>> opt.step([np.ones(3)])
            >>> twin = copy.deepcopy(opt)
            >>> twin.param_groups[0]["params"][0] is w
            False
            >>> pickle.loads(pickle.dumps(opt)).state[0]["step"]
            1.0
        """
        state = {
            name: value for name, value in self.__dict__.items() if name not in self._unpickled
        }
        state["param_groups"] = [dict(group) for group in self.param_groups]
        state["state_dict"] = self.state_dict()
        return state

    def __setstate__(self, state):
        state = dict(state)
        groups, state_dict = state.pop("param_groups"), state.pop("state_dict")
        self.__dict__.update(state)
        self.param_groups, self._plans, self._blocks, self._n_params = [], [], [], 0
        self._storages = []
        self._bind_kernels()
        for group in groups:
            self.add_param_group(group)
        self.load_state_dict(state_dict)
