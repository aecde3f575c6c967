"""Gradient clipping: ``clip_grad_norm_`` and ``clip_grad_value_`` (as torch.nn.utils 2.13).

Both take the grads themselves (cyoptim has no ``.grad`` attribute): one array,
or an iterable of arrays and None entries (skipped). Every grad is checked
before any is written; on error nothing changes. The reductions and the in-place
scale/clamp are Cython kernels (pyx/reductions.pxi): threaded over fixed-size
chunks and combined in a fixed order in double, so the norm is bitwise the same
for any thread count.
"""

import math
import numbers

import numpy as np

from . import _dispatch, _threads
from .optimizer import SUPPORTED_DTYPES, _describe

# torch's clip_grad_norm_ adds this to the total norm before dividing.
NORM_EPS = 1e-6


def _check_real(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    value = float(value)
    if not value >= 0.0:
        raise ValueError(f"{name} must be non-negative, got {value}")
    return value


def _norm_type(norm_type):
    try:
        p = float(norm_type)
    except (TypeError, ValueError):
        raise TypeError(f"norm_type must be a number or 'inf', got {norm_type!r}") from None
    if not p > 0.0:  # also refuses NaN
        raise ValueError(f"norm_type must be positive (1, 2, inf or any p > 0), got {p}")
    return p


def grad_list(grads):
    """The arrays of grads (one array or an iterable; None entries dropped), checked.

    Raises TypeError/ValueError naming the grad's position before anything is
    written: arrays must be writeable, aligned, C-contiguous float32/float64, and
    no two may share memory (they would be scaled twice).
    """
    if isinstance(grads, np.ndarray):
        grads = [grads]
    elif isinstance(grads, (str, bytes)) or not hasattr(grads, "__iter__"):
        raise TypeError(
            f"grads must be an array or an iterable of arrays (or None), got {_describe(grads)}"
        )
    arrays, positions = [], []
    for k, g in enumerate(grads):
        if g is None:
            continue
        if not isinstance(g, np.ndarray):
            raise TypeError(f"grad {k} must be a NumPy array or None, got {_describe(g)}")
        if g.dtype not in SUPPORTED_DTYPES or not g.dtype.isnative:
            raise TypeError(
                f"grad {k} has dtype {g.dtype}; supported dtypes are float32 "
                f"and float64 (native byte order)"
            )
        flags = g.flags
        if not flags.c_contiguous or not flags.aligned:
            raise ValueError(
                f"grad {k} is not C-contiguous (or not aligned); pass np.ascontiguousarray(grad)"
            )
        if not flags.writeable:
            raise ValueError(f"grad {k} is read-only; clipping works in place")
        arrays.append(g)
        positions.append(k)
    if len(arrays) > 1:
        overlap = _dispatch.kernels.first_overlap(arrays)
        if overlap is not None:
            raise ValueError(
                f"grads {positions[overlap[0]]} and {positions[overlap[1]]} "
                f"share memory; each grad may appear only once"
            )
    return arrays


def total_norm(norms, norm_type):
    """The norm of the per-grad norms, as torch: in order, in double."""
    total = 0.0
    if norm_type == math.inf:
        for n in norms:
            if n != n or n > total:
                total = n
        return total
    for n in norms:
        if norm_type == 1.0:
            total += n
        elif norm_type == 2.0:
            total += n * n
        else:
            total += n**norm_type
    if norm_type == 1.0:
        return total
    if norm_type == 2.0:
        return math.sqrt(total)
    return total ** (1.0 / norm_type)


def clip_norm_with(grads, max_norm, norm_type, error_if_nonfinite, norms_fn, scale_fn):
    """clip_grad_norm_ with the two kernels passed in (shared with the reference)."""
    max_norm = _check_real(max_norm, "max_norm")
    norm_type = _norm_type(norm_type)
    arrays = grad_list(grads)
    if not arrays:
        return np.float64(0.0)
    total = total_norm(norms_fn(arrays, norm_type), norm_type)
    if error_if_nonfinite and not math.isfinite(total):
        raise RuntimeError(
            f"The total norm of order {norm_type} for gradients from "
            "`parameters` is non-finite, so it cannot be clipped. To disable "
            "this error and scale the gradients by the non-finite norm anyway, "
            "set `error_if_nonfinite=False`"
        )
    coef = max_norm / (total + NORM_EPS)
    if coef > 1.0:
        coef = 1.0  # torch.clamp(max=1.0); NaN stays NaN
    if coef != 1.0:  # x * 1 == x: skip the pass
        scale_fn(arrays, coef)
    return np.float64(total)


def clip_value_with(grads, clip_value, clamp_fn):
    """clip_grad_value_ with the kernel passed in (shared with the reference)."""
    clip_value = _check_real(clip_value, "clip_value")
    arrays = grad_list(grads)
    if arrays:
        clamp_fn(arrays, -clip_value, clip_value)


def clip_grad_norm_(grads, max_norm, norm_type=2.0, error_if_nonfinite=False):
    r"""Scale grads in place so that their total norm is at most ``max_norm``.

    As ``torch.nn.utils.clip_grad_norm_`` 2.13: the total norm is the
    ``norm_type``-norm of the per-grad norms (as if all grads were one vector),

    .. math::
        \|g\| = \Bigl(\sum_i \|g_i\|_p^p\Bigr)^{1/p}, \qquad
        g_i \leftarrow g_i \cdot \min\Bigl(\frac{\text{max\_norm}}{\|g\| + 10^{-6}},
        1\Bigr)

    (for ``inf``: the largest :math:`|g|`). The factor is cast to each grad's
    dtype. Grads are left as they are when the factor is 1.

    Args:
        grads: an array, or an iterable of arrays and None (skipped). float32
            and float64 may be mixed; each must be C-contiguous and writeable.
        max_norm (float): the largest total norm allowed (>= 0).
        norm_type (float): 1, 2, ``inf`` (or ``'inf'``), or any p > 0.
        error_if_nonfinite (bool): raise RuntimeError (torch's message) when
            the total norm is NaN or infinite, before changing anything.

    Returns:
        The total norm before clipping, a NumPy float64 (0.0 for no grads).

    Example:
        >>> import numpy as np, cyoptim
        >>> g = np.array([3.0, 4.0])
        >>> float(cyoptim.clip_grad_norm_([g, None], max_norm=1.0))
        5.0
        >>> g.round(6)
        array([0.6, 0.8])

    Warning:
        Norms are computed in double for float32 grads too (torch computes
        them in float32 and returns a float32 tensor), so float32 results
        agree with torch to float32 rounding, not bitwise. torch accepts a
        negative ``max_norm`` (and then flips the sign of every grad); here it
        is a ValueError. An empty grad has norm 0 for every norm type (torch's
        inf-norm raises on empty tensors).
    """
    kernels, n_threads = _dispatch.kernels, _threads.requested()
    return clip_norm_with(
        grads,
        max_norm,
        norm_type,
        error_if_nonfinite,
        lambda arrays, p: kernels.grad_norms(arrays, p, n_threads),
        lambda arrays, coef: kernels.scale_(arrays, coef, n_threads),
    )


def clip_grad_value_(grads, clip_value):
    r"""Clamp every grad element in place to :math:`[-\text{clip\_value}, \text{clip\_value}]`.

    As ``torch.nn.utils.clip_grad_value_`` 2.13 (``clamp_min_`` then
    ``clamp_max_``, bounds cast to each grad's dtype); NaN stays NaN.

    Args:
        grads: an array, or an iterable of arrays and None (skipped).
        clip_value (float): the bound (>= 0; torch accepts a negative one and
            then sets every element to it, here that is a ValueError).
    """
    kernels, n_threads = _dispatch.kernels, _threads.requested()
    clip_value_with(
        grads, clip_value, lambda arrays, lo, hi: kernels.clamp_(arrays, lo, hi, n_threads)
    )
