"""The base class of cyoptim.torch: torch.optim.Optimizer over cyoptim's kernels.

Everything torch's base class does stays torch's: param groups (mutable, and
replaceable as a whole), ``state`` keyed by param, ``state_dict`` /
``load_state_dict``, hooks, ``zero_grad``. What changes is ``step``: one
kernel call per group, on the tensors' own memory.

No pointer is kept from one step to the next. At every step each group's
params, grads and state tensors are read from ``param_groups`` and ``state``
as they are then, checked, and their data pointers gathered in C
(pyx/tensor_plan.pxi): a state entry replaced by assignment, a ``p.data``
reassigned or ``param_groups`` swapped between steps is honoured at the next
step. Every check of every group runs before the first write, so a bad input
raises and changes nothing. Missing state entries are created as torch
creates them (same names, dtypes and layout), after the checks.

Sharded params (``DTensor``, as FSDP2's ``fully_shard`` makes them, with
``CPUOffloadPolicy`` on the CPU): each rank steps its local shards
(``p.to_local()``, ``p.grad.to_local()``) in place, with no copy and no
communication; missing state is created as torch creates it (``zeros_like``
of the param: a DTensor of the param's placements, so that
torch.distributed.checkpoint saves and loads it). A DTensor param's grad and
state must be DTensors of its mesh and placements, as with torch.optim.
Every update rule here is element-wise except LAMB's, Adafactor's (norms,
row and column factors of whole tensors) and Muon's (Newton-Schulz of whole
matrices): those refuse DTensor params.

Each class names the cyoptim class of its algorithm (``_spec``); the hooks of
that class (cyoptim/optimizer.py: ``_state_names``, ``_state_fill``,
``_tensor_state``, ``_scratch_names``, ``_exports_step``,
``_validate_hyperparameters``) describe its state here too.
"""

import sys

import numpy as np
import torch
from torch.autograd.graph import increment_version
from torch.optim.optimizer import _get_scalar_dtype

from .. import _dispatch, _threads, precision, registry
from ..optimizer import Optimizer as BaseOptimizer

# torch dtype -> (NumPy type number, itemsize): what the kernels are built for.
DTYPES = {
    torch.float32: (np.dtype(np.float32).num, 4),
    torch.float64: (np.dtype(np.float64).num, 8),
}
NUMPY_DTYPES = {torch.float32: np.float32, torch.float64: np.float64}
# 16-bit params: stepped by staged kernels (cyoptim.precision) in float32.
DTYPES_16 = {torch.float16: (np.dtype(np.float16).num, 2)}
if precision.BFLOAT16 is not None:
    DTYPES_16[torch.bfloat16] = (precision.BFLOAT16.num, 2)
    NUMPY_DTYPES[torch.bfloat16] = precision.BFLOAT16
NUMPY_DTYPES[torch.float16] = np.float16
# Storage dtypes of staged states.
_STATE_TORCH_DTYPES = {
    "float32": torch.float32,
    "bfloat16": torch.bfloat16,
    "float16": torch.float16,
    "uint8": torch.uint8,
}

# TensorPlan.gather() codes and subjects, defined in pyx/tensor_plan.pxi.
_k = _dispatch.kernels
_NOT_TENSOR, _DEVICE, _LAYOUT, _DTYPE, _SHAPE = (
    _k.TENSOR_NOT_TENSOR,
    _k.TENSOR_DEVICE,
    _k.TENSOR_LAYOUT,
    _k.TENSOR_DTYPE,
    _k.TENSOR_SHAPE,
)
_CONTIGUOUS, _NOT_SCALAR, _MISSING, _NO_DATA, _PLACEMENT = (
    _k.TENSOR_CONTIGUOUS,
    _k.TENSOR_NOT_SCALAR,
    _k.TENSOR_MISSING,
    _k.TENSOR_NO_DATA,
    _k.TENSOR_PLACEMENT,
)
_WHAT_PARAM, _WHAT_GRAD, _WHAT_STATE = _k.WHAT_PARAM, _k.WHAT_GRAD, _k.WHAT_STATE
_WHAT_MASTER, _WHAT_STEP, _WHAT_SCALAR = _k.WHAT_MASTER, _k.WHAT_STEP, _k.WHAT_SCALAR
del _k

# kernel name -> the names of its state blocks, in slot order.
_KERNEL_BLOCKS = {k.name: tuple(b.name for b in k.blocks) for k in registry.KERNELS}
# kernel name -> whether an update reads reductions over the whole tensor.
_KERNEL_NORMS = {k.name: k.tensor_norms for k in registry.KERNELS}


class Optimizer(torch.optim.Optimizer):
    """Base class of cyoptim.torch's optimizers (see the module docstring)."""

    _spec: type | None = None  # the cyoptim class of the algorithm
    # Whether the constructor creates every param's state, as torch.optim.Adagrad
    # does (so a state_dict saved before a param's first step still loads there).
    _eager_state = False
    # torch.amp.GradScaler sets ``grad_scale`` and ``found_inf`` on the
    # optimizer and lets step() apply them (fused into the kernel).
    _step_supports_amp_scaling = True

    def __init__(self, params, defaults, low_precision=None):
        self.precision = low_precision or precision.check(self._spec.kernel)
        self._bind_kernels()
        super().__init__(params, defaults)
        if self._eager_state:
            for group in self.param_groups:
                names = [n for n in self._slot_names(group) if n is not None]
                names += ["step"] if self._spec._exports_step else []
                names += list(self._scalar_names)
                self._create_state(
                    group, [(None, p, name) for p in group["params"] for name in names]
                )

    def _bind_kernels(self):
        spec = self._spec
        self._kernels = _dispatch.kernels
        self._kernel_group = getattr(self._kernels, spec.kernel + "_group")
        self._plans = []
        self._storages = []  # per group: (param dtype, Storage, TensorStaging)
        self._dtypes = (
            {**DTYPES, **DTYPES_16} if spec.kernel in precision.STAGED_KERNELS else DTYPES
        )
        self._scratch = {}
        self._slot_blocks = _KERNEL_BLOCKS[spec.kernel]
        self._tensor_norms = _KERNEL_NORMS[spec.kernel]
        self._scalar_names = tuple(n for n, s in spec._tensor_state.items() if s.exported)
        self._internal_names = tuple(n for n, s in spec._tensor_state.items() if not s.exported)
        # State that is not param-shaped (Adafactor's): the spec's shape rule.
        self._state_shape = (
            None if spec._state_shape is BaseOptimizer._state_shape else self._shape_of_state
        )

    def _shape_of_state(self, name, shape):
        return self._spec._state_shape(self, name, tuple(shape))

    def __getstate__(self):
        state = super().__getstate__()
        state["precision"] = self.precision
        return state

    def __setstate__(self, state):
        state = dict(state)
        # Unpickling sets it; torch's load_state_dict calls this too, without it.
        if "precision" in state or not hasattr(self, "precision"):
            self.precision = state.pop("precision", None) or precision.check(self._spec.kernel)
        super().__setstate__(state)
        self._bind_kernels()

    # ------------------------------------------------------------------ groups
    def add_param_group(self, param_group):
        """torch's add_param_group, plus cyoptim's checks of the hyperparameters
        and of the params (dense, contiguous CPU tensors of one supported dtype)."""
        index = len(self.param_groups)
        super().add_param_group(param_group)
        group = self.param_groups[-1]
        try:
            self._check_group(group, index)
            dtypes = set()
            for k, p in enumerate(group["params"]):
                problem = _tensor_problem(_local(p), self._dtypes) or self._shard_problem(p)
                if problem:
                    raise ValueError(f"{self._name(group, index, k)} {problem}")
                dtypes.add(p.dtype)
            if len(dtypes) > 1:
                raise TypeError(
                    f"{type(self).__name__}: the params of param group {index} "
                    f"have dtypes {sorted(str(d) for d in dtypes)}; one kernel "
                    f"call updates a group, so put each dtype in its own group"
                )
            for dtype in dtypes:  # the options fit this group's params
                precision.group_storage(
                    self.precision,
                    np.dtype(NUMPY_DTYPES[dtype]),
                    self._spec.kernel,
                    f"param group {index}",
                )
        except Exception:
            self.param_groups.pop()
            raise

    def _shard_problem(self, p):
        """Why this optimizer cannot step p's local shard alone, or None."""
        if not (self._tensor_norms and _is_dtensor(p)):
            return None
        return (
            f"is a DTensor (placements {tuple(p.placements)}); "
            f"{type(self).__name__}'s update reads reductions over whole tensors, "
            f"and cyoptim.torch steps each rank's local shard alone (no "
            f"communication): use an element-wise optimizer"
        )

    def _check_group(self, group, index):
        for flag in ("capturable", "differentiable"):
            if group.get(flag):
                raise ValueError(
                    f"{type(self).__name__} does not support {flag}=True "
                    f"(param group {index}): {_REFUSED[flag]}"
                )
        try:
            self._spec._validate_hyperparameters(self, group)
        except (TypeError, ValueError) as error:
            raise type(error)(f"param group {index}: {error}") from None

    @staticmethod
    def _name(group, g, k):
        names = group.get("param_names")
        if names is not None and k < len(names):
            return f"param {names[k]!r} (group {g}, index {k})"
        return f"param {k} of param group {g}"

    # ------------------------------------------------------------------ step
    def step(self, closure=None, copy_to=None):
        """One kernel call per param group, on the params' own memory.

        Reads each param's ``.grad`` (params whose grad is None are skipped, as
        in torch) and returns the closure's loss. Every param, grad and state
        tensor of every group is checked before anything is written. With
        ``grad_scale`` / ``found_inf`` set on the optimizer (torch.amp.GradScaler
        does that), grads are divided by the scale inside the kernel (in place,
        as torch's fused optimizers do) and a step with found_inf != 0 changes
        nothing.

        copy_to: None, or one tensor (or None) per param, in param_groups
        order: a bfloat16 or float16 CPU tensor of the param's size that
        receives the updated param rounded to nearest even, in the same pass
        (for offload: float32 params on the host, a 16-bit copy for the
        accelerator). The copy of a 16-bit param has its dtype.
        """
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        found_inf = getattr(self, "found_inf", None)
        if found_inf is not None and float(found_inf) != 0:
            return loss
        grad_scale = getattr(self, "grad_scale", None)
        scale = 1.0 if grad_scale is None else float(grad_scale)
        copies = self._check_copies(copy_to) if copy_to is not None else None
        with torch.no_grad():  # DTensor.to_local() is then the shard itself
            work = self._gather(copies)
        spec = self._spec
        has_step = spec._exports_step
        n_threads = _threads._requested
        stepped = []
        for group, plan, blocks in work:
            plan.grad_scale = scale
            plan.advance(has_step)
            try:
                self._update(group, plan, blocks, n_threads)
            finally:
                if copies is not None and plan.staged and self._storage_of(group) is None:
                    plan.unstage()  # staged for its copies only
            plan.store_scalars()
            stepped += plan.stepped
        if stepped:
            # As torch's in-place updates do: autograd then refuses a backward
            # through a graph that saved a param this step changed.
            increment_version(stepped)
        return loss

    def _update(self, group, plan, blocks, n_threads):
        """Step one checked group: its kernel (Muon's runs two, with matrix
        products between them)."""
        self._kernel_group(plan, group, blocks, n_threads)

    def _gather(self, copies=None):
        """Check every group and gather its pointers; create missing state.

        Returns (group, plan, blocks) for each group with something to step."""
        groups = self.param_groups
        while len(self._plans) < len(groups):
            self._plans.append(self._kernels.TensorPlan())
        names, missing, group_copies = [], [], []
        first = 0
        for group in groups:
            n = len(group["params"])
            group_copies.append(
                None
                if copies is None or all(c is None for c in copies[first : first + n])
                else copies[first : first + n]
            )
            first += n
        for g, group in enumerate(groups):
            self._check_group(group, g)
            slot_names = self._slot_names(group)
            names.append(slot_names)
            missing.append(self._gather_group(g, group, slot_names, group_copies[g]))
        work = []
        for g, group in enumerate(groups):
            plan = self._plans[g]
            if missing[g]:
                self._create_state(group, missing[g])
                self._gather_group(g, group, names[g], group_copies[g])
            if plan.n_tensors:
                work.append((group, plan, self._blocks(g, group, plan, missing[g])))
        return work

    def _slot_names(self, group):
        needed = self._spec._state_names(self, group)
        return tuple(name if name in needed else None for name in self._slot_blocks)

    def _gather_group(self, g, group, slot_names, copies=None):
        plan = self._plans[g]
        params = group["params"]
        if type(params) is not list:
            params = list(params)
        if self._tensor_norms and _dtensor_type() is not None:
            for k, p in enumerate(params):
                problem = self._shard_problem(p)
                if problem:
                    raise ValueError(f"{type(self).__name__}: {self._name(group, g, k)} {problem}")
        staging = self._staging(g, group, plan, params)
        copy_kind = precision.KIND_BF16
        if copies is not None:
            copy_kind = (
                precision.KIND_F16
                if next(c for c in copies if c is not None).dtype is torch.float16
                else precision.KIND_BF16
            )
            if staging is None:  # a float32 group: staged for this step's copies
                blocks = self._slot_blocks
                plan.set_storage(
                    precision.KIND_F32,
                    precision.KIND_F32,
                    (precision.KIND_F32,) * len(blocks),
                    (precision.FLOAT32.num,) * len(blocks),
                    (False,) * len(blocks),
                )
        bad = plan.gather(
            params,
            self.state,
            slot_names,
            self._scalar_names,
            self._spec._exports_step,
            torch.Tensor,
            torch.strided,
            self._dtypes,
            self._state_shape,
            _dtensor_type(),
            staging,
            copies,
            copy_kind,
        )
        if bad is not None:
            raise self._gather_error(group, g, params, *bad)
        return plan.missing

    def _check_copies(self, copy_to):
        """Validate step's copy_to (nothing is written before); return it as a list."""
        if isinstance(copy_to, torch.Tensor) or not hasattr(copy_to, "__len__"):
            raise TypeError(
                f"copy_to must be a list with one tensor (or None) per param, "
                f"got {type(copy_to).__name__}"
            )
        copies = list(copy_to)
        params = [p for group in self.param_groups for p in group["params"]]
        if len(copies) != len(params):
            raise ValueError(
                f"copy_to has {len(copies)} entries; expected {len(params)} "
                f"(one per param, in param_groups order, None for no copy)"
            )
        cls = type(self).__name__
        if self._spec.kernel not in precision.STAGED_KERNELS:
            raise ValueError(f"{cls} does not write 16-bit copies (its kernel is not staged)")
        index = 0
        for g, group in enumerate(self.param_groups):
            kinds = set()
            for p in group["params"]:
                c = copies[index]
                if c is not None:
                    if not isinstance(c, torch.Tensor) or c.dtype not in (
                        torch.bfloat16,
                        torch.float16,
                    ):
                        raise TypeError(
                            f"{cls}: copy_to[{index}] must be a bfloat16 or "
                            f"float16 tensor, got {_describe(c)}"
                        )
                    if (
                        c.numel() != _local(p).numel()
                        or not c.is_contiguous()
                        or not c.is_cpu
                        or c.layout is not torch.strided
                    ):
                        raise ValueError(
                            f"{cls}: copy_to[{index}] must be a contiguous CPU "
                            f"tensor of {_local(p).numel()} elements (its param's)"
                        )
                    if p.dtype in (torch.bfloat16, torch.float16) and c.dtype != p.dtype:
                        raise TypeError(
                            f"{cls}: copy_to[{index}] has dtype {c.dtype}; the "
                            f"copy of a {p.dtype} param has its dtype"
                        )
                    if p.dtype == torch.float64:
                        raise ValueError(
                            f"{cls}: copy_to[{index}]: 16-bit copies are of "
                            f"float32 and 16-bit params only"
                        )
                    kinds.add(c.dtype)
                index += 1
            if len(kinds) > 1:
                raise TypeError(
                    f"{cls}: the copies of param group {g} mix dtypes "
                    f"{sorted(str(k) for k in kinds)}; one dtype per group"
                )
        return copies

    def _staging(self, g, group, plan, params):
        """The staging of group g for its params' dtype now (set on its plan),
        or None when the kernel steps the params' own dtype."""
        while len(self._storages) <= g:
            self._storages.append((None, None, None))
        dtype = next((p.dtype for p in params if p.grad is not None), None)
        if dtype is None or dtype not in self._dtypes:
            return None  # nothing to step, or gather refuses the dtype
        if self._storages[g][0] is dtype:
            return self._storages[g][2]
        storage = precision.group_storage(
            self.precision, np.dtype(NUMPY_DTYPES[dtype]), self._spec.kernel, f"param group {g}"
        )
        staging = None
        if storage is not None:
            blocks = self._slot_blocks
            plan.set_storage(
                storage.param_kind,
                storage.param_kind,
                (storage.state_kind,) * len(blocks),
                (storage.state_dtype.num,) * len(blocks),
                tuple(b in precision.NONNEGATIVE_STATES for b in blocks),
                self.precision.stochastic_rounding,
                self.precision.seed or 0,
            )
            int8 = storage.state_kind == precision.KIND_INT8
            staging = self._kernels.TensorStaging(
                torch.float32,
                _STATE_TORCH_DTYPES[storage.state_dtype.name],
                torch.float32 if int8 else None,
                torch.float32,
                precision.MASTER if storage.master else None,
                precision.INT8_MIN_SIZE if int8 else 0,
            )
        self._storages[g] = (dtype, storage, staging)
        return staging

    def _storage_of(self, group):
        for g, candidate in enumerate(self.param_groups):
            if candidate is group and g < len(self._storages):
                return self._storages[g][1]
        return None

    def _create_state(self, group, missing):
        """The entries torch would create at a param's first step (in the
        group's staged storage, if any)."""
        spec = self._spec
        storage = self._storage_of(group)
        for _, p, name in missing:
            entry = self.state[p]
            if storage is not None and name != "step" and name not in spec._tensor_state:
                self._create_staged(
                    entry,
                    p,
                    name,
                    spec._state_fill(self, name, group) if name != precision.MASTER else None,
                    storage,
                )
            elif name == "step":
                entry["step"] = torch.zeros((), dtype=_get_scalar_dtype())
            elif name in spec._tensor_state:
                entry[name] = torch.full(
                    (), spec._tensor_state[name].initial, dtype=_get_scalar_dtype()
                )
            elif (
                self._state_shape is not None
                and (shape := self._state_shape(name, p.shape)) != p.shape
            ):
                entry[name] = torch.full(shape, spec._state_fill(self, name, group), dtype=p.dtype)
            else:
                fill = spec._state_fill(self, name, group)
                entry[name] = (
                    torch.zeros_like(p, memory_format=torch.contiguous_format)
                    if fill == 0
                    else torch.full_like(p, fill, memory_format=torch.contiguous_format)
                )

    @staticmethod
    def _create_staged(entry, p, name, fill, storage):
        """A state entry in staged storage: the float32 master copy, an int8
        state's codes and scales, or a state in its storage dtype."""
        if name == precision.MASTER:
            entry[name] = p.detach().to(
                torch.float32, memory_format=torch.contiguous_format, copy=True
            )
            return
        if precision.quantized(storage, p.numel()):
            from .. import quantization

            codes, absmax = quantization.quantize_blockwise(
                np.full(tuple(p.shape), fill, np.float32),
                signed=name not in precision.NONNEGATIVE_STATES,
            )
            entry[name] = torch.from_numpy(codes)
            entry[name + "_absmax"] = torch.from_numpy(absmax)
            return
        dtype = (
            torch.float32
            if storage.state_kind == precision.KIND_INT8
            else _STATE_TORCH_DTYPES[storage.state_dtype.name]
        )
        entry[name] = torch.full(tuple(p.shape), fill, dtype=dtype)

    def load_state_dict(self, state_dict):
        """torch's load_state_dict, keeping each staged state's dtype (torch
        casts every floating state to its param's dtype: a float32 master
        copy would lose its bits)."""
        super().load_state_dict(state_dict)
        if self.precision.default:
            return
        saved_ids = [i for group in state_dict["param_groups"] for i in group["params"]]
        params = [p for group in self.param_groups for p in group["params"]]
        for saved_id, p in zip(saved_ids, params):
            saved = state_dict["state"].get(saved_id)
            if saved is None:
                continue
            for name, value in saved.items():
                if (
                    name != "step"
                    and isinstance(value, torch.Tensor)
                    and self.state[p][name].dtype != value.dtype
                ):
                    self.state[p][name] = value.detach().to("cpu", copy=True)

    def _blocks(self, g, group, plan, missing):
        """The kernel's non-tensor arguments: per-tensor scalars, scratch blocks."""
        spec = self._spec
        blocks = {}
        for s, name in enumerate(self._scalar_names):
            blocks[name] = plan.scalar_values(s)
        for name in self._internal_names:
            # As after a load: derived from which entries existed before this step.
            complete = {n: None for n in self._slot_blocks}
            values = np.full(plan.n_tensors, spec._loaded_tensor_state(self, name, complete))
            before = {}
            for k, _p, entry_name in missing:
                before.setdefault(k, set()).add(entry_name)
            for k, absent in before.items():
                values[k] = spec._loaded_tensor_state(
                    self, name, {n: None for n in self._slot_blocks if n not in absent}
                )
            blocks[name] = values
        for name in spec._scratch_names(self, group):
            blocks[name] = self._scratch_block(g, name, plan)
        return blocks

    def _scratch_block(self, g, name, plan):
        dtype = NUMPY_DTYPES[plan.dtype]
        key = (g, name)
        block = self._scratch.get(key)
        if block is None or block.dtype != dtype or block.size < plan.total_elements:
            block = np.empty(plan.total_elements, dtype=dtype)
            self._scratch[key] = block
        return block[: plan.total_elements]

    def _gather_error(self, group, g, params, k, what, code):
        name = self._name(group, g, k)
        p = params[k]
        if what == _WHAT_PARAM:
            subject, tensor = name, p
        elif what == _WHAT_GRAD:
            subject, tensor = f"the grad of {name}", p.grad
        elif what == _WHAT_STEP:
            subject, tensor = f"state['step'] of {name}", self.state[p]["step"]
        elif what == _WHAT_MASTER:
            subject = f"state[{precision.MASTER!r}] of {name}"
            tensor = self.state[p][precision.MASTER]
        elif what >= _WHAT_SCALAR:
            key = self._scalar_names[what - _WHAT_SCALAR]
            subject, tensor = f"state[{key!r}] of {name}", self.state[p][key]
        else:
            key = self._slot_blocks[what - _WHAT_STATE]
            subject, tensor = f"state[{key!r}] of {name}", self.state[p][key]
        cls = type(self).__name__
        if code == _PLACEMENT:
            if not _is_dtensor(p):
                return TypeError(
                    f"{cls}: {subject} is a DTensor, but the param is not; "
                    f"they must be of one kind"
                )
            return TypeError(
                f"{cls}: {subject} must be a DTensor of the param's device "
                f"mesh and placements {tuple(p.placements)}, as torch.optim "
                f"creates it (cyoptim.torch steps local shards and never "
                f"redistributes)"
            )
        if code == _NO_DATA:
            return TypeError(
                f"{cls}: {subject} is a {type(tensor).__name__} whose data_ptr() "
                f"is not its memory; cyoptim.torch updates tensors that own "
                f"their memory (and DTensors through their local shards)"
            )
        if _is_dtensor(tensor):
            subject = f"the local shard of {subject}"
        tensor, p = _local(tensor), _local(p)
        if code == _NOT_TENSOR:
            return TypeError(
                f"{cls}: {subject} must be a torch.Tensor, got {type(tensor).__name__}"
            )
        if code == _DEVICE:
            return ValueError(
                f"{cls}: {subject} is on device {tensor.device}; cyoptim.torch "
                f"updates CPU tensors only"
            )
        if code == _LAYOUT:
            return ValueError(
                f"{cls}: {subject} has layout {tensor.layout}; cyoptim.torch "
                f"needs dense tensors (sparse gradients are not supported)"
            )
        if code == _DTYPE:
            if what == _WHAT_PARAM and tensor.dtype in self._dtypes:
                return TypeError(
                    f"{cls}: {name} has dtype {tensor.dtype}, but an earlier "
                    f"param of its group has another; one kernel call updates "
                    f"a group, so put each dtype in its own group"
                )
            if what == _WHAT_PARAM:
                return TypeError(f"{cls}: {name} {_tensor_problem(tensor, self._dtypes)}")
            staged = g < len(self._storages) and self._storages[g][1] is not None
            if staged and what == _WHAT_GRAD:
                return TypeError(
                    f"{cls}: {subject} has dtype {tensor.dtype}; the grads of a "
                    f"{p.dtype} group must all be {p.dtype} or all torch.float32"
                )
            if staged:
                return TypeError(
                    f"{cls}: {subject} has dtype {tensor.dtype}, which is not "
                    f"this optimizer's storage for it (master_weights="
                    f"{self.precision.master_weights}, state_dtype="
                    f"{self.precision.state_dtype!r})"
                )
            return TypeError(
                f"{cls}: {subject} has dtype {tensor.dtype}, but the param has "
                f"dtype {p.dtype}; they must match"
            )
        if code == _SHAPE:
            is_state = self._state_shape is not None and _WHAT_STATE <= what < _WHAT_STEP
            expected = self._state_shape(key, p.shape) if is_state else tuple(p.shape)
            if expected != tuple(p.shape):
                return ValueError(
                    f"{cls}: {subject} has shape {tuple(tensor.shape)}, but a "
                    f"param of shape {tuple(p.shape)} needs {expected}"
                )
            whose = "the param's local shard" if _is_dtensor(params[k]) else "the param"
            return ValueError(
                f"{cls}: {subject} has shape {tuple(tensor.shape)}, but "
                f"{whose} has shape {tuple(p.shape)}"
            )
        if code == _CONTIGUOUS:
            return ValueError(
                f"{cls}: {subject} is not contiguous (strides "
                f"{tensor.stride()}); cyoptim.torch updates tensors in place "
                f"and never works on a copy that would lose the update"
            )
        if code == _MISSING:
            return ValueError(
                f"{cls}: {subject} is int8 but its {key}_absmax entry (its scales) is missing"
            )
        if code == _NOT_SCALAR:
            return ValueError(
                f"{cls}: {subject} must be a one-element float32 or float64 "
                f"tensor, got {_describe(tensor)}"
            )
        return ValueError(f"{cls}: {subject} cannot be used (code {code})")


_REFUSED = {
    "capturable": "CUDA graph capture needs the step on the accelerator; cyoptim's kernels "
    "run on the CPU",
    "differentiable": "the kernels update tensors in place outside autograd, so the step "
    "cannot be differentiated",
}


def _dtensor_type():
    """torch.distributed's DTensor class when it is loaded (no DTensor exists
    otherwise, and cyoptim.torch never imports torch.distributed itself)."""
    return getattr(sys.modules.get("torch.distributed.tensor"), "DTensor", None)


def _is_dtensor(t):
    dtensor = _dtensor_type()
    return dtensor is not None and isinstance(t, dtensor)


def _local(t):
    """The tensor whose memory a kernel updates: t, or a DTensor's local shard."""
    if _is_dtensor(t):
        with torch.no_grad():
            return t.to_local()
    return t


def _tensor_problem(p, dtypes=DTYPES):
    """Why a param cannot be updated in place by a kernel, or None."""
    if p.layout is not torch.strided:
        return f"has layout {p.layout}; cyoptim.torch needs dense tensors"
    if not p.is_cpu:
        return f"is on device {p.device}; cyoptim.torch updates CPU tensors only"
    if p.dtype not in dtypes:
        names = [str(d) for d in dtypes]
        return f"has dtype {p.dtype}; supported dtypes are {', '.join(names[:-1])} and {names[-1]}"
    if not p.is_contiguous():
        return (
            f"is not contiguous (strides {p.stride()}); cyoptim.torch updates params in "
            f"place: make the param contiguous before building the optimizer"
        )
    return None


def _describe(x):
    if isinstance(x, torch.Tensor):
        return f"a {x.dtype} tensor of shape {tuple(x.shape)} on {x.device}"
    return type(x).__name__
