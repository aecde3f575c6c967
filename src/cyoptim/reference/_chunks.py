"""NumPy twin of the deterministic reductions of pyx/reductions.pxi.

A tensor is cut into chunks of CHUNK elements; within a chunk, lane j of
LANES sums elements j, j + LANES, ... in order (in double), and the lanes
are combined as ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7)); the
chunks' partials are combined in order. Padding with zeros changes no sum,
so every chunk is treated as full. Same IEEE operations as the kernels:
bitwise the same results (except |x|^p, where NumPy's power may differ from
libm's pow in the last bit).
"""

import numpy as np

CHUNK = 4096
LANES = 8


def _lanes(x):
    """x (any float array) as float64 of shape (chunks, CHUNK // LANES, LANES), zero-padded."""
    flat = np.asarray(x, np.float64).reshape(-1)
    n_chunks = -(-flat.size // CHUNK)
    padded = np.zeros(n_chunks * CHUNK)
    padded[: flat.size] = flat
    return padded.reshape(n_chunks, CHUNK // LANES, LANES)


def chunk_partials(x, kind, p=2.0):
    """Per-chunk partials of x: kind is "sum_abs", "sum_sq", "max_abs" or "sum_pow"."""
    blocks = _lanes(x)
    np.abs(blocks, out=blocks)
    if kind == "max_abs":
        return blocks.max(axis=(1, 2), initial=0.0)  # NaN propagates; exact
    if kind == "sum_sq":
        np.multiply(blocks, blocks, out=blocks)
    elif kind == "sum_pow":
        np.power(blocks, p, out=blocks)
    acc = np.zeros((blocks.shape[0], LANES))
    for row in range(blocks.shape[1]):  # lane sums in element order
        acc += blocks[:, row, :]
    a = acc.T
    return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]))


def combine(partials, is_max=False):
    """The chunks' partials combined in order, in double (Python floats)."""
    total = 0.0
    for value in partials.tolist():
        if is_max:
            total = value if (value != value or value > total) else total
        else:
            total += value
    return total


def sum_sq(x):
    """sum x*x of one tensor, as the kernels compute it."""
    return combine(chunk_partials(x, "sum_sq"))
