# Shared by every kernel: fused element types, the thread count and the
# driver that hands the pieces of a group's runs to the threads.
#
# Vocabulary (used throughout pyx/ and cyoptim):
#   group  one param group: one kernel call per step;
#   run    a contiguous stretch of params the kernel walks: one tensor, or the
#          whole group when it lives in one ParamBuffer (plan.pxi);
#   slice  a cache-line-aligned stretch of the group's flat buffer: one task
#          of the work-sharing pool (pool.h), covering one or more pieces;
#   piece  the part of one run a thread updates in one call of the
#          algorithm's piece function (the element loop on raw pointers);
#   chunk  a fixed-size unit of a reduction (reductions.pxi), never dependent
#          on the thread count.
#
# Design: an optimizer step over a param group is ONE call into this module.
# The group's runs are treated as one virtual flat buffer (prefix offsets of
# their sizes), cut into slices of whole cache lines, several per thread.
# The slices are tasks of the work-sharing pool (pool.h): the calling thread
# and the pool's helpers take them one by one, and the caller never waits
# for a helper that has not started, so a step on a busy machine runs at the
# speed of the threads it gets instead of waiting for a descheduled one.
# Each slice calls the piece function once per run it covers: the function
# pointer is called once per piece, never per element, so the element loops
# stay simple enough to vectorize.
#
# Element-wise updates do not depend on how the work is split, so results are
# bitwise identical for any thread count.
#
# Precision pitfall: Cython writes a number literal inside a float expression
# as a C double literal (`1 - w` becomes `1.0 - w`), which silently computes
# float32 kernels in double. Keep literals out of element math: hold every
# constant in a typed `floating` local first (see lerp below).

from libc.stdint cimport int64_t, intptr_t
from cython.parallel cimport prange
from libc.math cimport sqrt, sqrtf, fabs, fabsf, fma, fmaf

cdef extern from "compat.h":
    int cyoptim_omp_max_threads() nogil

cdef extern from "pool.h":
    ctypedef void (*cyoptim_task_fn)(void* ctx, int64_t task) noexcept nogil
    void cyoptim_pool_run(cyoptim_task_fn fn, void* ctx, int64_t n_tasks,
                          int n_threads) nogil
    int cyoptim_pool_helpers() nogil

# The most state blocks a kernel addresses (its blocks and scratch blocks).
cdef enum:
    MAX_STATE_SLOTS = 6

ctypedef fused floating:
    float
    double

# Slices handed to threads start on multiples of this many elements (64 bytes
# of float32), so two threads never write the same cache line of one tensor.
cdef int64_t SPLIT_ALIGN = 16
# Slices per thread, and the smallest slice (elements): enough slices that a
# late thread's share is taken by the others, each large enough that taking
# one (an atomic compare-and-swap and a binary search) costs nothing next to it.
cdef int64_t SLICES_PER_THREAD = 8
cdef int64_t SLICE_MIN = 8192

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
# tens of microseconds of work: Adam from 65k elements, SGD from 131k. (Those
# figures are from the OpenMP loops the pool replaced, whose barrier waited
# for every thread; the threshold has not been measured again since.)
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


cdef inline floating fused_multiply_add(floating x, floating y, floating z) noexcept nogil:
    """x*y + z with one rounding (an instruction where the build has FMA, libm's
    correctly rounded fma in the baseline build: the same bits either way)."""
    if floating is float:
        return fmaf(x, y, z)
    else:
        return fma(x, y, z)


cdef inline floating lerp_fused(floating start, floating end, floating weight) noexcept nogil:
    """torch's vectorized lerp (ATen's lerp_vec): lerp()'s formula with its
    multiply-add fused, start + weight*(end - start) for |weight| < 0.5, else
    end + (weight - 1)*(end - start), each rounded once."""
    cdef floating one = 1
    if fabs_(weight) < 0.5:
        return fused_multiply_add(weight, end - start, start)
    return fused_multiply_add(weight - one, end - start, end)


cdef inline void unscale(floating* g, int64_t n, double scale) noexcept nogil:
    """g = g / scale in place: torch's fused grad_scale (AMP), applied piece by
    piece while the piece is in cache, just before the math reads it."""
    cdef floating s = <floating> scale
    cdef int64_t i
    for i in range(n):
        g[i] = g[i] / s


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


cdef struct SliceJob:
    piece_fn fn
    const void* args
    const int64_t* offsets
    Py_ssize_t n_runs
    int64_t size                 # elements per slice (the last may be shorter)
    int64_t total


cdef void _run_slice(void* job_, int64_t s) noexcept nogil:
    cdef const SliceJob* job = <const SliceJob*> job_
    cdef int64_t hi = (s + 1) * job.size
    _run_range(job.fn, job.args, job.offsets, job.n_runs, s * job.size,
               job.total if hi > job.total else hi)


cdef void run_pieces(piece_fn fn, const void* args, const int64_t* offsets,
                     Py_ssize_t n_runs, int n_threads) noexcept nogil:
    """Run fn over every element of the runs, shared by up to n_threads threads."""
    cdef SliceJob job
    job.fn = fn
    job.args = args
    job.offsets = offsets
    job.n_runs = n_runs
    job.total = offsets[n_runs]
    if n_threads <= 1:
        _run_range(fn, args, offsets, n_runs, 0, job.total)
        return
    job.size = job.total // (n_threads * SLICES_PER_THREAD)
    if job.size < SLICE_MIN:
        job.size = SLICE_MIN
    job.size -= job.size % SPLIT_ALIGN
    cyoptim_pool_run(_run_slice, &job, (job.total + job.size - 1) // job.size, n_threads)


def pool_helpers():
    """Helper threads the work-sharing pool has started (for tests)."""
    return cyoptim_pool_helpers()
