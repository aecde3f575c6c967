"""Fused multiply-add in NumPy: a*x + y rounded once, for a scalar a and arrays
x, y of one dtype (float32 or float64); and torch's fused lerp built on it.

NumPy has no fma ufunc. Both versions round to odd (Boldo and Melquiond,
"Emulation of FMA and correctly rounded sums: proved algorithms using
rounding to odd", IEEE Trans. Computers 57(4), 2008): a sum rounded to
nearest, moved one unit towards the exact value when it was inexact and
landed on an even significand, rounds correctly once more to a format with
at least two bits fewer. Finite values whose products neither overflow nor
lose bits to underflow, as an optimizer's are.
"""

import numpy as np

_SPLITTER = 2.0**27 + 1  # Veltkamp's split of a float64 into 26 + 26 bits


def _two_sum(a, b):
    """s + e == a + b exactly, s = fl(a + b) (Knuth)."""
    s = a + b
    z = s - a
    return s, (a - (s - z)) + (b - z)


def _two_product(a, x):
    """p + e == a * x exactly, p = fl(a * x) (Dekker)."""
    p = a * x
    c = _SPLITTER * a
    a_hi = c - (c - a)
    a_lo = a - a_hi
    c = _SPLITTER * x
    x_hi = c - (c - x)
    x_lo = x - x_hi
    return p, ((a_hi * x_hi - p) + a_hi * x_lo + a_lo * x_hi) + a_lo * x_lo


def _round_to_odd(total, error):
    """total (= fl(exact)) moved one unit towards exact = total + error where it
    is inexact and even: the exact value rounded to odd."""
    bits = np.uint64 if total.dtype == np.float64 else np.uint32
    even = (total.view(bits) & bits(1)) == 0
    nudge = (error != 0) & even & np.isfinite(total)
    total[nudge] = np.nextafter(total[nudge], np.where(error[nudge] > 0, np.inf, -np.inf))
    return total


def fma32(a, x, y):
    """fma(a, x, y) for float32 x, y and a float32 scalar a. a*x is exact in
    float64; a*x + y there, rounded to odd, then once to float32."""
    product = np.float64(np.float32(a)) * np.asarray(x, np.float32).astype(np.float64)
    addend = np.asarray(y, np.float32).astype(np.float64)
    with np.errstate(invalid="ignore"):
        total, error = _two_sum(product, addend)
        return _round_to_odd(total, error).astype(np.float32)


def fma64(a, x, y):
    """fma(a, x, y) for float64: a*x = p + e exactly, y + p = s + t exactly,
    and the result is fl(s + RO(t + e)) (Boldo and Melquiond's algorithm)."""
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        p, e = _two_product(np.float64(a), x)
        s, t = _two_sum(y, p)
        v, w = _two_sum(t, e)
        v = _round_to_odd(np.atleast_1d(v).copy(), np.atleast_1d(w)).reshape(np.shape(v))
        return s + v


def fma(a, x, y):
    """fma(a, x, y) in x's dtype (float32 or float64), a a scalar."""
    return fma32(a, x, y) if x.dtype == np.float32 else fma64(a, x, y)


def lerp_fused_(start, end, weight):
    """start <- torch's vectorized lerp(start, end, weight), in place: the
    multiply-add fused (ATen's lerp_vec), weight and weight - 1 in start's dtype."""
    weight = start.dtype.type(weight)
    diff = (end - start).astype(start.dtype, copy=False)
    if abs(weight) < 0.5:
        start[...] = fma(weight, diff, start)
    else:
        start[...] = fma(weight - start.dtype.type(1), diff, end)
