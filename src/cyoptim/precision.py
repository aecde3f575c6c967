"""Low-precision storage: 16-bit params, float32 master weights, bfloat16 and
int8 optimizer states (docs/contract.md §7).

The math is float32 whatever the storage: a staged kernel (pyx/staging.pxi)
loads each chunk of 256 elements into float32, updates it, and stores it back
in its storage in the same pass.

- ``master_weights=True`` (16-bit params): the optimizer keeps a float32 copy
  of each param (``master_param`` in its state) and float32 states by default;
  every step updates the copy and writes the param as the copy rounded to
  nearest even, so the 16-bit params follow the float32 trajectory exactly.
- Without master weights a 16-bit param is loaded, updated in float32 and
  rounded once per element: to nearest even, or stochastically
  (``stochastic_rounding=True``, bfloat16 params) with random bits that
  depend only on ``seed``, the step, the tensor's place among the group's
  stepped tensors and the element's index, so any thread count gives the same
  result. ``seed=None`` draws one at construction (``opt.precision.seed``).
- ``state_dtype``: ``None`` (the param's dtype; float32 with master weights),
  ``"float32"``, ``"bfloat16"`` or ``"int8"``: blockwise dynamic quantization
  (Dettmers et al. 2021, cyoptim.quantization): per block of 256 elements one
  float32 absmax and 256 one-byte codes, signed codes for moments that can be
  negative, unsigned ones for the others. Tensors below 4096 elements keep
  such states in float32, as bitsandbytes does. An int8 state appears in the
  state as ``<name>`` (uint8 codes, the param's shape) and ``<name>_absmax``.
"""

from collections import namedtuple

import numpy as np

from . import _dispatch, registry

try:
    import ml_dtypes

    BFLOAT16 = np.dtype(ml_dtypes.bfloat16)
except ImportError:  # ml_dtypes is a dependency; this keeps the import cheap to fail
    BFLOAT16 = None

FLOAT16 = np.dtype(np.float16)
FLOAT32 = np.dtype(np.float32)
FLOAT64 = np.dtype(np.float64)

# Storage kinds (pyx/staging.pxi), the int8 block size (pyx/quantize.pxi) and
# the size below which int8-requested states stay float32 (staging.pxi),
# defined there only.
_kernels = _dispatch.kernels  # every SIMD variant has the same constants
KIND_F32, KIND_BF16, KIND_F16, KIND_INT8 = (
    int(_kernels.StorageKind.KIND_F32),
    int(_kernels.StorageKind.KIND_BF16),
    int(_kernels.StorageKind.KIND_F16),
    int(_kernels.StorageKind.KIND_INT8),
)
QBLOCK = int(_kernels.QuantBlock.QBLOCK)  # elements per int8 block
INT8_MIN_SIZE = int(_kernels.Int8Threshold.INT8_MIN_SIZE)

STATE_DTYPES = (None, "float32", "bfloat16", "int8")

# Kernels whose states may be int8: the generated element-wise ones whose
# states are moment-like arrays (the others: float32 or bfloat16 states only;
# Rprop's step sizes and ASGD's average are not moments).
INT8_KERNELS = (
    "sgd",
    "adam",
    "adagrad",
    "rmsprop",
    "adadelta",
    "adamax",
    "nadam",
    "radam",
    "lion",
)

# State blocks that are never negative: their int8 codes use the unsigned map.
NONNEGATIVE_STATES = frozenset(
    {"exp_avg_sq", "max_exp_avg_sq", "sum", "square_avg", "acc_delta", "exp_inf", "step_size"}
)

MASTER = "master_param"


class Precision(namedtuple("Precision", "master_weights state_dtype stochastic_rounding seed")):
    """An optimizer's low-precision options, checked (``check``)."""

    @property
    def default(self):
        return (
            not self.master_weights and self.state_dtype is None and not self.stochastic_rounding
        )


def check(kernel, master_weights=False, state_dtype=None, stochastic_rounding=False, seed=None):
    """Validate the options of an optimizer whose kernel is ``kernel``."""
    for name, value in (
        ("master_weights", master_weights),
        ("stochastic_rounding", stochastic_rounding),
    ):
        if not isinstance(value, (bool, np.bool_)):
            raise TypeError(f"{name} must be True or False, got {value!r}")
    if state_dtype not in STATE_DTYPES:
        raise ValueError(f"state_dtype must be one of {STATE_DTYPES}, got {state_dtype!r}")
    if seed is not None and (
        isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**32
    ):
        raise ValueError(f"seed must be an integer in [0, 2**32) or None, got {seed!r}")
    if stochastic_rounding and master_weights:
        raise ValueError(
            "stochastic_rounding=True rounds the params themselves; with "
            "master_weights=True they are rounded from the float32 master "
            "copy instead: choose one"
        )
    if stochastic_rounding and seed is None:
        # Drawn once: the optimizer's copies (pickle, deepcopy) round alike.
        seed = int(np.random.SeedSequence().generate_state(1)[0])
    precision = Precision(
        bool(master_weights),
        state_dtype,
        bool(stochastic_rounding),
        None if seed is None else int(seed),
    )
    if precision.default:
        return precision
    if kernel not in STAGED_KERNELS:
        raise ValueError(
            f"this optimizer keeps float32 or float64 params and states only: "
            f"master_weights, state_dtype and stochastic_rounding are for "
            f"{', '.join(sorted(STAGED_CLASSES))}"
        )
    if state_dtype == "int8" and kernel not in INT8_KERNELS:
        raise ValueError(
            f"state_dtype='int8' is for the optimizers of "
            f"{', '.join(INT8_KERNELS)} kernels; use 'bfloat16' here"
        )
    if state_dtype == "bfloat16" and BFLOAT16 is None:
        raise ImportError("bfloat16 needs the ml_dtypes package: pip install ml_dtypes")
    return precision


# Group storage: what a group's plan stages, or None for plain float32/float64.
Storage = namedtuple("Storage", "param_kind state_kind state_dtype master")


def param_kind(dtype):
    """KIND_* of a param dtype, None for float64 (never staged)."""
    if dtype == FLOAT32:
        return KIND_F32
    if BFLOAT16 is not None and dtype == BFLOAT16:
        return KIND_BF16
    if dtype == FLOAT16:
        return KIND_F16
    return None


def supported_param_dtypes():
    return tuple(d for d in (FLOAT32, FLOAT64, BFLOAT16, FLOAT16) if d is not None)


def group_storage(precision, dtype, kernel, where):
    """The storage of a group of params of ``dtype`` stepped by ``kernel``
    (``where`` names the group in errors): None when the kernel runs on the
    params' own type."""
    sixteen = dtype in (BFLOAT16, FLOAT16)
    if kernel not in STAGED_KERNELS:
        return None
    if dtype == FLOAT64:
        if not precision.default:
            raise ValueError(
                f"{where} has float64 params: master_weights, state_dtype and "
                f"stochastic_rounding are for float32, bfloat16 and float16 params"
            )
        return None
    if precision.master_weights and not sixteen:
        raise ValueError(
            f"master_weights=True keeps a float32 copy of 16-bit params; "
            f"{where} has {dtype} params"
        )
    if precision.stochastic_rounding and dtype != BFLOAT16:
        raise ValueError(
            f"stochastic_rounding=True rounds bfloat16 params; {where} has {dtype} params"
        )
    state_dtype = precision.state_dtype
    if state_dtype is None:
        state_dtype = "float32" if precision.master_weights or not sixteen else str(dtype)
    if not sixteen and state_dtype == "float32":
        return None
    kind = {"float32": KIND_F32, "bfloat16": KIND_BF16, "float16": KIND_F16, "int8": KIND_INT8}[
        state_dtype
    ]
    storage_dtype = {
        KIND_F32: FLOAT32,
        KIND_BF16: BFLOAT16,
        KIND_F16: FLOAT16,
        KIND_INT8: np.dtype(np.uint8),
    }[kind]
    return Storage(param_kind(dtype), kind, storage_dtype, precision.master_weights)


def quantized(storage, size):
    """Whether a state of a tensor of ``size`` elements is int8 in this storage."""
    return storage is not None and storage.state_kind == KIND_INT8 and size >= INT8_MIN_SIZE


def n_blocks(size):
    return -(-size // QBLOCK)


STAGED_KERNELS = tuple(
    k.name for k in registry.KERNELS if k.driver == "generated" and not k.name.startswith("muon")
)
STAGED_CLASSES = tuple(o.name for o in registry.OPTIMIZERS if o.kernel in STAGED_KERNELS)


def state_bytes(opt):
    """The bytes an optimizer holds besides the params and grads: its state
    (moments, master copies, int8 codes and scales, per-param scalars) and
    its work buffers. Works for cyoptim and cyoptim.torch optimizers (and any
    torch.optim.Optimizer: the tensors in its ``state``)."""
    blocks = getattr(opt, "_blocks", None)
    if isinstance(blocks, list):  # a cyoptim (NumPy) optimizer
        total = 0
        for group_blocks in blocks:
            for block in group_blocks.values():
                arrays = block if isinstance(block, list) else [block]
                total += sum(a.nbytes for a in arrays if a is not None)
        return total
    total = 0
    for entry in opt.state.values():
        for value in entry.values():
            if hasattr(value, "untyped_storage"):
                total += value.numel() * value.element_size()
    for block in getattr(opt, "_scratch", {}).values():
        total += block.nbytes
    return total
