"""Thread count of the kernels.

By default every step asks OpenMP for its maximum thread count, so
OMP_NUM_THREADS and threadpoolctl limits apply. set_num_threads(n) overrides
that for this process. Steps over few elements run on one thread regardless.
"""

import numbers

from ._cpu import omp_max_threads

_requested = 0  # 0: follow OpenMP's maximum


def set_num_threads(n):
    """Use n threads in every kernel (None or 0: follow OpenMP's maximum again)."""
    global _requested
    if n is None:
        n = 0
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 0:
        raise ValueError(f"number of threads must be a non-negative integer, got {n!r}")
    _requested = int(n)


def get_num_threads():
    """Threads a large step will use."""
    return _requested if _requested else omp_max_threads()


def requested():
    """What the kernels are asked for: 0 means OpenMP's maximum."""
    return _requested
