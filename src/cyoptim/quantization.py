"""Blockwise dynamic 8-bit quantization of optimizer states (Dettmers et al.
2021, "8-bit Optimizers via Block-wise Quantization", arXiv 2110.02861).

A state is cut into blocks of ``QBLOCK`` (256) consecutive elements of its
flattened array, the last block possibly shorter. Each block keeps one float32
``absmax`` (its largest magnitude) and one byte per element: the index of a
value of a fixed 256-entry *dynamic map* in [-1, 1], whose values are dense
near 0 and sparse near 1 (a decade exponent and a linear fraction, so that
relative precision is about the same from 1e-6 to 1). Moments that can be
negative use the signed map; those that cannot (second moments) the unsigned
one, which spends its 256 codes on [0, 1].

These functions are the definition the fused kernels (pyx/quantize.pxi)
follow bitwise, and the public helpers to read a saved int8 state:

    >>> exp_avg = dequantize_blockwise(entry["exp_avg"], entry["exp_avg_absmax"])

Quantizing x with absmax a (float32 throughout):
  y = x * (1 / a)   (y = 0 when a == 0), code = #{c : threshold[c] < y},
where threshold[c] is the float32 midpoint of map values c and c + 1: the
nearest map value, a tie going to the lower one. A block holding NaN (or an
infinity) gets a non-finite absmax and dequantizes to non-finite values.
"""

import numpy as np

QBLOCK = 256
_EXPONENT_LEVELS = 7  # decades 1e-6 .. 1


def dynamic_map(signed=True):
    """The 256 values of the dynamic map, float32, ascending.

    Decade level i (0..6) holds the midpoints of 2**i (signed; mirrored to
    the negative side) or 2**(i + 1) (unsigned) equal intervals of [0.1, 1],
    scaled by 10**(i - 6); then 0 and 1. These are the values of
    bitsandbytes' ``create_dynamic_map`` (to float32 rounding)."""
    values = [0.0, 1.0]
    for level in range(_EXPONENT_LEVELS):
        intervals = 2**level if signed else 2 ** (level + 1)
        bounds = np.linspace(0.1, 1.0, intervals + 1)
        middles = (bounds[:-1] + bounds[1:]) / 2 * 10.0 ** (level - _EXPONENT_LEVELS + 1)
        values += list(middles)
        if signed:
            values += list(-middles)
    out = np.sort(np.array(values, dtype=np.float32))
    assert out.size == 256
    return out


def thresholds(signed=True):
    """float32[256]: threshold[c] = the float32 midpoint of map values c and
    c + 1 (c < 255); threshold[255] = inf."""
    values = dynamic_map(signed)
    out = np.full(256, np.inf, dtype=np.float32)
    out[:255] = (values[:-1] + values[1:]) / np.float32(2)
    return out


def _blocks(x):
    flat = np.ascontiguousarray(x, dtype=np.float32).reshape(-1)
    n = flat.size
    padded = np.zeros(-(-n // QBLOCK) * QBLOCK, dtype=np.float32)
    padded[:n] = flat
    return padded.reshape(-1, QBLOCK), n


def quantize_blockwise(x, signed=True):
    """(codes, absmax): uint8 codes of x's shape and float32 absmax per block."""
    blocks, n = _blocks(x)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        absmax = np.abs(blocks).max(axis=1).astype(np.float32)  # NaN propagates
        inverse = np.where(absmax == 0, np.float32(0), np.float32(1) / absmax).astype(np.float32)
        y = (blocks * inverse[:, None]).astype(np.float32)
    # NaN sorts last: code 255.
    codes = np.searchsorted(thresholds(signed), y.reshape(-1), side="left")
    codes = np.minimum(codes, 255).astype(np.uint8)[:n]
    return codes.reshape(np.shape(x)), absmax


def dequantize_blockwise(codes, absmax, signed=True, dtype=np.float32):
    """The float values of int8 codes (any shape) and their per-block absmax."""
    codes = np.asarray(codes)
    absmax = np.asarray(absmax, dtype=np.float32)
    flat = codes.reshape(-1)
    if absmax.shape != (-(-flat.size // QBLOCK),):
        raise ValueError(
            f"{flat.size} codes need {-(-flat.size // QBLOCK)} absmax values "
            f"(one per block of {QBLOCK}), got shape {absmax.shape}"
        )
    scale = np.repeat(absmax, QBLOCK)[: flat.size]
    with np.errstate(invalid="ignore", over="ignore"):
        values = dynamic_map(signed)[flat] * scale
    return values.astype(dtype).reshape(codes.shape)


# The bucket tables of the kernels' quantizer (pyx/quantize.pxi): y's float32
# bits, sign aside, shifted right by BUCKET_SHIFT, give its bucket; each
# bucket holds at most one threshold, so the code is the bucket's count of
# thresholds below it plus one comparison.
BUCKET_MANTISSA_BITS = 7
BUCKET_SHIFT = 23 - BUCKET_MANTISSA_BITS
_FIRST_KEY = int(np.array(2.0**-24, np.float32).view(np.uint32)) >> BUCKET_SHIFT
_LAST_KEY = (int(np.array(2.0, np.float32).view(np.uint32)) >> BUCKET_SHIFT) - 1
N_BUCKETS = _LAST_KEY - _FIRST_KEY + 1


def bucket_tables(signed=True):
    """(first key, int32[2 * N_BUCKETS]): per bucket of |y| (then of -|y|),
    the number of thresholds below it. Checked: one threshold at most per
    bucket (else a finer BUCKET_MANTISSA_BITS is needed)."""
    t = thresholds(signed)
    keys = np.arange(_FIRST_KEY, _LAST_KEY + 1, dtype=np.uint32)
    lower = (keys << BUCKET_SHIFT).view(np.float32).astype(np.float64)
    upper = ((keys + 1) << BUCKET_SHIFT).view(np.float32).astype(np.float64)
    lower[0], upper[-1] = 0.0, np.inf  # values beyond the ends are clamped in
    t64 = t.astype(np.float64)
    positive = np.searchsorted(t64, lower, side="left")
    negative = np.searchsorted(t64, -upper, side="right")
    inside_positive = np.searchsorted(t64, upper, side="left") - positive
    inside_negative = np.searchsorted(t64, -lower, side="right") - negative
    if inside_positive.max() > 1 or inside_negative.max() > 1:
        raise AssertionError("a quantization bucket holds two thresholds")
    return _FIRST_KEY, np.concatenate([positive, negative]).astype(np.int32)
