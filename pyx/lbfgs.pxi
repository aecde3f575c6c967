# The vector work of L-BFGS (cyoptim.LBFGS, cyoptim.torch.LBFGS) over the
# flat vector of all params: dot products and axpy.
#
# vector_dot is a reduction, deterministic as those of reductions.pxi
# (docs/contract.md §4): REDUCE_CHUNK-element chunks, REDUCE_LANES lanes
# inside a chunk, partials combined in chunk order by one thread; the products
# and sums are in double for float32 and float64 alike (a float32 product is
# exact in double). torch's dot (MKL's sdot/ddot on CPU) sums in an order of
# its own: the results agree to the last bit or so, not always bitwise.
#
# vector_axpy_ is torch's ``out.add_(x, alpha=a)``: out = fma(a, x, out) with
# a rounded to the arrays' dtype, one rounding per element, as torch's
# vectorized add (vec::fmadd) computes it. fma/fmaf are one instruction in the
# AVX2 and AVX-512 builds and a correctly rounded libm call in the baseline
# build: the same bits in every variant and for any thread count.

from libc.math cimport fma


cdef struct VectorJob:
    const char* x
    const char* y
    char* out
    bint is_double
    const Chunks* chunks
    double* partial             # dot: per chunk, its partial sum
    double alpha


cdef inline double _dot_span(const floating* x, const floating* y, int64_t n) noexcept nogil:
    """sum x*y in double over REDUCE_LANES lanes (as sum_sq in reductions.pxi)."""
    cdef double acc[REDUCE_LANES]
    cdef int64_t i, j, b, body = n - n % REDUCE_LANES
    for j in range(REDUCE_LANES):
        acc[j] = 0
    for b in range(body // REDUCE_LANES):
        i = b * REDUCE_LANES
        for j in range(REDUCE_LANES):
            acc[j] = acc[j] + <double> x[i + j] * <double> y[i + j]
    for i in range(body, n):
        acc[i - body] = acc[i - body] + <double> x[i] * <double> y[i]
    return combine_lanes(acc)


cdef inline void _axpy_span(floating* out, const floating* x, double alpha,
                            int64_t n) noexcept nogil:
    cdef floating a = <floating> alpha
    cdef int64_t i
    if floating is float:
        for i in range(n):
            out[i] = fmaf(a, x[i], out[i])
    else:
        for i in range(n):
            out[i] = fma(a, x[i], out[i])


cdef void _dot_task(void* job_, int64_t c) noexcept nogil:
    cdef const VectorJob* job = <const VectorJob*> job_
    cdef int64_t start = job.chunks.start[c], n = job.chunks.count[c]
    if job.is_double:
        job.partial[c] = _dot_span(<const double*> job.x + start,
                                   <const double*> job.y + start, n)
    else:
        job.partial[c] = _dot_span(<const float*> job.x + start,
                                   <const float*> job.y + start, n)


cdef void _axpy_task(void* job_, int64_t c) noexcept nogil:
    cdef const VectorJob* job = <const VectorJob*> job_
    cdef int64_t start = job.chunks.start[c], n = job.chunks.count[c]
    if job.is_double:
        _axpy_span(<double*> job.out + start, <const double*> job.x + start, job.alpha, n)
    else:
        _axpy_span(<float*> job.out + start, <const float*> job.x + start, job.alpha, n)


cdef _ArrayList _vector_pair(a, b, bint writeable):
    """The two arrays, checked: C-contiguous float32 or float64, one dtype, one size."""
    cdef _ArrayList lst = _ArrayList([a, b], writeable)
    if lst.is_double[0] != lst.is_double[1] or (lst.offsets[1] != lst.offsets[2] - lst.offsets[1]):
        raise ValueError(f"expected two arrays of one dtype and size, got "
                         f"{a.dtype}[{a.size}] and {b.dtype}[{b.size}]")
    return lst


def vector_dot(x, y, int n_threads):
    """sum(x * y) in double, deterministically (any thread count).  # IN: x, y

    x, y: C-contiguous float32 or float64 arrays of one dtype and size.
    """
    cdef _ArrayList lst = _vector_pair(x, y, False)
    cdef Chunks ch
    cdef VectorJob job
    cdef double total
    cdef double* partial
    chunks_init(&ch, lst.offsets, lst.ptrs, 1)
    partial = <double*> malloc(max(ch.n, 1) * sizeof(double))
    if partial == NULL:
        chunks_free(&ch)
        raise MemoryError()
    job.x = lst.ptrs[0]
    job.y = lst.ptrs[1]
    job.is_double = lst.is_double[0]
    job.chunks = &ch
    job.partial = partial
    n_threads = _effective_threads(lst.offsets[1], n_threads, COST_LIGHT)
    try:
        with nogil:
            cyoptim_pool_run(_dot_task, &job, ch.n, n_threads)
            total = combine_chunks(partial, 0, ch.n, False)
    finally:
        free(partial)
        chunks_free(&ch)
    return total


def vector_axpy_(out, x, double alpha, int n_threads):
    """out = fma(alpha, x, out) element-wise, alpha rounded to the dtype:
    torch's ``out.add_(x, alpha=alpha)``.  # out: IN/OUT; x: IN

    out, x: C-contiguous float32 or float64 arrays of one dtype and size.
    """
    cdef _ArrayList lst = _vector_pair(out, x, True)
    cdef Chunks ch
    cdef VectorJob job
    chunks_init(&ch, lst.offsets, lst.ptrs, 1)
    job.out = lst.ptrs[0]
    job.x = lst.ptrs[1]
    job.is_double = lst.is_double[0]
    job.chunks = &ch
    job.alpha = alpha
    n_threads = _effective_threads(lst.offsets[1], n_threads, COST_LIGHT)
    try:
        with nogil:
            cyoptim_pool_run(_axpy_task, &job, ch.n, n_threads)
    finally:
        chunks_free(&ch)
