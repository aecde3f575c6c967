"""NumPy reference of clip_grad_norm_ and clip_grad_value_ (see cyoptim.clip)."""

import math

import numpy as np

from .. import clip as fast
from ._chunks import chunk_partials, combine

_KINDS = {1.0: "sum_abs", 2.0: "sum_sq", math.inf: "max_abs"}


def grad_norms(arrays, norm_type):
    """Per-array norms with the kernels' chunked sums."""
    kind = _KINDS.get(norm_type, "sum_pow")
    norms = []
    for g in arrays:
        s = combine(chunk_partials(g, kind, norm_type), kind == "max_abs")
        if kind == "sum_sq":
            s = math.sqrt(s)
        elif kind == "sum_pow":
            s = s ** (1.0 / norm_type)
        norms.append(s)
    return norms


def _scale(arrays, coef):
    for g in arrays:
        np.multiply(g, g.dtype.type(coef), out=g)


def _clamp(arrays, low, high):
    for g in arrays:
        np.maximum(g, g.dtype.type(low), out=g)  # clamp_min_, NaN stays NaN
        np.minimum(g, g.dtype.type(high), out=g)  # clamp_max_


def clip_grad_norm_(grads, max_norm, norm_type=2.0, error_if_nonfinite=False):
    """cyoptim.clip_grad_norm_ computed with NumPy."""
    return fast.clip_norm_with(grads, max_norm, norm_type, error_if_nonfinite, grad_norms, _scale)


def clip_grad_value_(grads, clip_value):
    """cyoptim.clip_grad_value_ computed with NumPy."""
    fast.clip_value_with(grads, clip_value, _clamp)
