# Shared by every kernel: fused element types, the thread count and the
# driver that hands the pieces of a group's runs to the threads.
#
# Vocabulary (used throughout pyx/ and cyoptim):
#   group  one param group: one kernel call per step;
#   run    a contiguous stretch of params the kernel walks: one tensor, or the
#          whole group when it lives in one ParamBuffer (plan.pxi);
#   piece  the part of one run a thread updates in one call of the
#          algorithm's piece function (the element loop on raw pointers);
#   chunk  a fixed-size unit of a reduction (reductions.pxi), never dependent
#          on the thread count.
#
# Design: an optimizer step over a param group is ONE call into this module.
# The group's runs are treated as one virtual flat buffer (prefix offsets of
# their sizes); each thread takes an equal, contiguous slice of that buffer,
# rounded to whole cache lines, and walks the runs the slice covers, calling
# the piece function once per piece it meets. The function pointer is called
# once per piece, never per element, so the element loops stay simple enough
# to vectorize.
#
# Element-wise updates do not depend on how the work is split, so results are
# bitwise identical for any thread count.
#
# Precision pitfall: Cython writes a number literal inside a float expression
# as a C double literal (`1 - w` becomes `1.0 - w`), which silently computes
# float32 kernels in double. Keep literals out of element math: hold every
# constant in a typed `floating` local first (see lerp below).

from libc.stdint cimport int64_t, intptr_t
from libc.math cimport sqrt, sqrtf, fabs, fabsf
from cython.parallel cimport prange

cdef extern from "compat.h":
    int cyoptim_omp_max_threads() nogil

ctypedef fused floating:
    float
    double

# Slices handed to threads start on multiples of this many elements (64 bytes
# of float32), so two threads never write the same cache line of one tensor.
cdef int64_t SPLIT_ALIGN = 16

# A step runs on one thread when its work is below PARALLEL_MIN_WORK. Work is
# elements times a cost: COST_LIGHT for loops of adds and multiplies (memory
# bound), COST_HEAVY for loops with a sqrt or a division per element.
# On an idle 2-core machine (tools/thread_threshold.py) 2 threads already win
# from ~8-16k Adam elements and ~32k SGD elements, by a few microseconds. But a
# parallel step waits for its slowest thread, and when another process (or
# another OpenMP runtime's spinning threads, e.g. torch's after a forward
# pass) holds a core, that thread may wait a whole scheduler slice: measured
# on a busy machine, a 17k-element Adam step had a p95 of 14 ms on 2 threads
# against 62 us on one. So a step goes parallel only when each thread gets
# tens of microseconds of work: Adam from 65k elements, SGD from 131k.
cdef int64_t PARALLEL_MIN_WORK = 131072
cdef int COST_LIGHT = 1
cdef int COST_HEAVY = 2


def parallel_min_work(n=None):
    """The one-thread threshold (in light elements); with n, set it (to measure)."""
    global PARALLEL_MIN_WORK
    if n is not None:
        if n < 2:
            raise ValueError("the threshold must be at least 2")
        PARALLEL_MIN_WORK = n
    return PARALLEL_MIN_WORK


ctypedef void (*piece_fn)(const void* args, Py_ssize_t run,
                          int64_t start, int64_t count) noexcept nogil


cdef inline floating fsqrt(floating x) noexcept nogil:
    if floating is float:
        return sqrtf(x)
    else:
        return sqrt(x)


cdef inline floating fabs_(floating x) noexcept nogil:
    if floating is float:
        return fabsf(x)
    else:
        return fabs(x)


cdef inline floating nan_max(floating a, floating b) noexcept nogil:
    """max(a, b) that returns NaN when either is NaN, as torch.maximum.

    Written without short-circuit `or` so gcc turns it into a blend, not a branch."""
    cdef bint take_a = (a > b) | (a != a)
    return a if take_a else b


cdef inline floating lerp(floating start, floating end, floating weight) noexcept nogil:
    """torch.lerp: the formula depends on |weight| < 0.5 (loop-invariant)."""
    cdef floating one = 1
    if fabs_(weight) < 0.5:
        return start + weight * (end - start)
    return end - (end - start) * (one - weight)


def effective_threads(int64_t n_elements, int requested, int cost=COST_LIGHT):
    """Threads a step over n_elements will use; requested <= 0 means OpenMP's max."""
    return _effective_threads(n_elements, requested, cost)


cdef int _effective_threads(int64_t n_elements, int requested, int cost) noexcept nogil:
    cdef int n = requested if requested > 0 else cyoptim_omp_max_threads()
    cdef int64_t work = n_elements * cost
    if work < PARALLEL_MIN_WORK or n < 1:
        return 1
    # Each thread gets at least half the threshold's work.
    cdef int64_t most = work // (PARALLEL_MIN_WORK // 2)
    if n > most:
        n = <int>most
    return n


cdef inline int64_t _split_point(int64_t total, int n_parts, int part) noexcept nogil:
    if part >= n_parts:
        return total
    cdef int64_t point = (total // n_parts) * part
    return point - point % SPLIT_ALIGN


cdef void _run_range(piece_fn fn, const void* args, const int64_t* offsets,
                     Py_ssize_t n_runs, int64_t lo, int64_t hi) noexcept nogil:
    """Call fn on every piece of the runs that the flat range [lo, hi) covers."""
    cdef Py_ssize_t left = 0, right = n_runs, mid, k
    cdef int64_t end
    if lo >= hi:
        return
    # Binary search: the last run whose offset is <= lo.
    while right - left > 1:
        mid = (left + right) // 2
        if offsets[mid] <= lo:
            left = mid
        else:
            right = mid
    k = left
    while lo < hi and k < n_runs:
        end = offsets[k + 1]
        if end > hi:
            end = hi
        if end > lo:
            fn(args, k, lo - offsets[k], end - lo)
            lo = end
        k += 1


cdef void run_pieces(piece_fn fn, const void* args, const int64_t* offsets,
                     Py_ssize_t n_runs, int n_threads) noexcept nogil:
    """Run fn over every element of the runs, split over n_threads threads."""
    cdef int64_t total = offsets[n_runs]
    cdef int t
    if n_threads <= 1:
        _run_range(fn, args, offsets, n_runs, 0, total)
        return
    for t in prange(n_threads, schedule="static", num_threads=n_threads):
        _run_range(fn, args, offsets, n_runs,
                   _split_point(total, n_threads, t),
                   _split_point(total, n_threads, t + 1))
