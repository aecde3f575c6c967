# Deterministic reductions (norms for gradient clipping and LAMB) and the
# in-place scale/clamp of gradient clipping.
#
# docs/contract.md §4: a reduction must give bitwise the same result for any thread count
# and in every SIMD variant. So the work is cut into CHUNKS of REDUCE_CHUNK
# elements of one tensor (a fixed size, independent of the thread count), each
# chunk's partial result is stored in an array, and the partials of a tensor
# are combined in chunk order, in double, by one thread. Threads only decide
# which chunks they compute, never how a sum is associated.
#
# Inside a chunk the sum runs over REDUCE_LANES interleaved accumulators (lane
# j adds elements j, j + 8, j + 16, ... in order), and the lanes are combined
# as ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7)). The association is
# written in the source, so the compiler may vectorize the lanes (gcc does,
# without -ffast-math) but cannot change the result. Sums accumulate in double
# for float32 and float64 input alike. cyoptim.reference._chunks computes the
# same partials with NumPy, bitwise.

from libc.stdlib cimport malloc, free
from libc.math cimport pow
from libc.stdint cimport int32_t, INT32_MAX, INT64_MAX
from libc.string cimport memcpy

cdef enum:
    REDUCE_CHUNK = 4096    # elements per chunk: a multiple of REDUCE_LANES
    REDUCE_LANES = 8

# What a chunk reduction computes.
cdef enum:
    SUM_ABS = 0            # sum |x|       (1-norm)
    SUM_SQ = 1             # sum x*x       (2-norm)
    MAX_ABS = 2            # max |x|, NaN if any element is NaN (inf-norm)
    SUM_POW = 3            # sum |x|^p     (p-norm)


cdef struct Chunks:
    # The chunks of the tensors that take part, tensor by tensor in order.
    Py_ssize_t n            # number of chunks
    Py_ssize_t* tensor      # [n] the tensor of chunk c
    int64_t* start          # [n] its first element inside that tensor
    int64_t* count          # [n] its number of elements
    Py_ssize_t* first       # [n_tensors + 1] tensor k owns chunks first[k] .. first[k+1]-1


cdef int chunks_init(Chunks* c, const int64_t* offsets, char** present,
                     Py_ssize_t n_tensors) except -1:
    """Cut every tensor k with present[k] != NULL (sizes from prefix offsets) into chunks."""
    cdef Py_ssize_t k, total = 0, at = 0
    cdef int64_t size, s
    c.tensor = NULL
    c.start = NULL
    c.count = NULL
    c.first = <Py_ssize_t*> malloc((n_tensors + 1) * sizeof(Py_ssize_t))
    if c.first == NULL:
        raise MemoryError()
    for k in range(n_tensors):
        c.first[k] = total
        if present[k] != NULL:
            total += (offsets[k + 1] - offsets[k] + REDUCE_CHUNK - 1) // REDUCE_CHUNK
    c.first[n_tensors] = total
    c.n = total
    c.tensor = <Py_ssize_t*> malloc(max(total, 1) * sizeof(Py_ssize_t))
    c.start = <int64_t*> malloc(max(total, 1) * sizeof(int64_t))
    c.count = <int64_t*> malloc(max(total, 1) * sizeof(int64_t))
    if c.tensor == NULL or c.start == NULL or c.count == NULL:
        chunks_free(c)
        raise MemoryError()
    for k in range(n_tensors):
        if present[k] == NULL:
            continue
        size = offsets[k + 1] - offsets[k]
        s = 0
        while s < size:
            c.tensor[at] = k
            c.start[at] = s
            c.count[at] = min(<int64_t> REDUCE_CHUNK, size - s)
            s += REDUCE_CHUNK
            at += 1
    return 0


cdef void chunks_free(Chunks* c) noexcept:
    free(c.first)
    free(c.tensor)
    free(c.start)
    free(c.count)
    c.first = NULL
    c.tensor = NULL
    c.start = NULL
    c.count = NULL


cdef inline double combine_lanes(const double* acc) noexcept nogil:
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]))


cdef inline double sum_sq(const floating* x, int64_t n) noexcept nogil:
    """sum of x*x in double over REDUCE_LANES lanes (see the header)."""
    cdef double acc[REDUCE_LANES]
    cdef double xi
    cdef int64_t i, j, b, body = n - n % REDUCE_LANES
    for j in range(REDUCE_LANES):
        acc[j] = 0
    for b in range(body // REDUCE_LANES):
        i = b * REDUCE_LANES
        for j in range(REDUCE_LANES):
            xi = x[i + j]
            acc[j] = acc[j] + xi * xi
    for i in range(body, n):
        xi = x[i]
        acc[i - body] = acc[i - body] + xi * xi
    return combine_lanes(acc)


cdef inline double sum_abs(const floating* x, int64_t n) noexcept nogil:
    cdef double acc[REDUCE_LANES]
    cdef int64_t i, j, b, body = n - n % REDUCE_LANES
    for j in range(REDUCE_LANES):
        acc[j] = 0
    for b in range(body // REDUCE_LANES):
        i = b * REDUCE_LANES
        for j in range(REDUCE_LANES):
            acc[j] = acc[j] + fabs(<double> x[i + j])
    for i in range(body, n):
        acc[i - body] = acc[i - body] + fabs(<double> x[i])
    return combine_lanes(acc)


cdef inline double sum_abs_pow(const floating* x, int64_t n, double p) noexcept nogil:
    """sum |x|^p (pow from libm: not vectorized, but the same in every variant)."""
    cdef double acc[REDUCE_LANES]
    cdef int64_t i, j, b, body = n - n % REDUCE_LANES
    for j in range(REDUCE_LANES):
        acc[j] = 0
    for b in range(body // REDUCE_LANES):
        i = b * REDUCE_LANES
        for j in range(REDUCE_LANES):
            acc[j] = acc[j] + pow(fabs(<double> x[i + j]), p)
    for i in range(body, n):
        acc[i - body] = acc[i - body] + pow(fabs(<double> x[i]), p)
    return combine_lanes(acc)


cdef inline double max_abs(const floating* x, int64_t n) noexcept nogil:
    """max |x|; NaN when any element is NaN.

    Done on the bits: with the sign bit cleared, IEEE values order like the
    integers of their bit patterns, and every NaN pattern is above +inf. So an
    integer max (which gcc vectorizes; a float max with NaN rules it does not)
    gives max |x|, NaN-propagating, exactly.
    """
    cdef int64_t i
    cdef int32_t m32 = 0, b32, mask32 = INT32_MAX
    cdef int64_t m64 = 0, b64, mask64 = INT64_MAX
    cdef const int32_t* x32
    cdef const int64_t* x64
    cdef float f
    cdef double d
    if floating is float:
        x32 = <const int32_t*> x
        for i in range(n):
            b32 = x32[i] & mask32
            m32 = b32 if b32 > m32 else m32
        memcpy(&f, &m32, sizeof(float))
        return f
    else:
        x64 = <const int64_t*> x
        for i in range(n):
            b64 = x64[i] & mask64
            m64 = b64 if b64 > m64 else m64
        memcpy(&d, &m64, sizeof(double))
        return d


cdef inline double reduce_span(const char* data, bint is_double, int64_t start,
                               int64_t count, int kind, double p) noexcept nogil:
    """One chunk's partial: kind is SUM_ABS, SUM_SQ, MAX_ABS or SUM_POW."""
    if is_double:
        return _reduce_typed(<const double*> data + start, count, kind, p)
    return _reduce_typed(<const float*> data + start, count, kind, p)


cdef inline double _reduce_typed(const floating* x, int64_t n, int kind,
                                 double p) noexcept nogil:
    if kind == SUM_SQ:
        return sum_sq(x, n)
    if kind == SUM_ABS:
        return sum_abs(x, n)
    if kind == MAX_ABS:
        return max_abs(x, n)
    return sum_abs_pow(x, n, p)


cdef inline double combine_chunks(const double* partial, Py_ssize_t lo, Py_ssize_t hi,
                                  bint is_max) noexcept nogil:
    """The partials lo..hi-1 of one tensor, combined in chunk order."""
    cdef double total = 0
    cdef Py_ssize_t c
    for c in range(lo, hi):
        total = nan_max(total, partial[c]) if is_max else total + partial[c]
    return total


# ---------------------------------------------------------------- clipping

cdef class _ArrayList:
    """Data pointers, sizes and dtypes of a list of float arrays (checked)."""
    cdef object _ptrs, _offsets, _double
    cdef char** ptrs
    cdef int64_t* offsets
    cdef unsigned char* is_double
    cdef Py_ssize_t n

    def __init__(self, list arrays, bint writeable):
        cdef Py_ssize_t k
        cdef cnp.ndarray a
        cdef int typenum
        self.n = len(arrays)
        self._ptrs = np.zeros(self.n, dtype=np.intp)
        self._offsets = np.zeros(self.n + 1, dtype=np.int64)
        self._double = np.zeros(self.n, dtype=np.uint8)
        self.ptrs = <char**> cnp.PyArray_DATA(self._ptrs)
        self.offsets = <int64_t*> cnp.PyArray_DATA(self._offsets)
        self.is_double = <unsigned char*> cnp.PyArray_DATA(self._double)
        for k in range(self.n):
            obj = arrays[k]
            typenum = cnp.PyArray_TYPE(<cnp.ndarray> obj) if cnp.PyArray_Check(obj) else -1
            if (typenum != cnp.NPY_FLOAT and typenum != cnp.NPY_DOUBLE) or not (
                    cnp.PyArray_ISNOTSWAPPED(<cnp.ndarray> obj)
                    and cnp.PyArray_IS_C_CONTIGUOUS(<cnp.ndarray> obj)
                    and cnp.PyArray_ISALIGNED(<cnp.ndarray> obj)
                    and (not writeable or cnp.PyArray_ISWRITEABLE(<cnp.ndarray> obj))):
                raise ValueError(f"array {k}: expected a C-contiguous, aligned"
                                 f"{', writeable' if writeable else ''} float32 or "
                                 f"float64 array")
            a = <cnp.ndarray> obj
            self.ptrs[k] = <char*> cnp.PyArray_DATA(a)
            self.offsets[k + 1] = self.offsets[k] + cnp.PyArray_SIZE(a)
            self.is_double[k] = typenum == cnp.NPY_DOUBLE


cdef struct NormJob:
    char** ptrs                 # per array: its data
    const unsigned char* is_double
    const Chunks* chunks
    double* partial             # per chunk: its partial result
    int kind
    double norm_type


cdef void _norm_task(void* job_, int64_t c) noexcept nogil:
    cdef const NormJob* job = <const NormJob*> job_
    cdef Py_ssize_t k = job.chunks.tensor[c]
    job.partial[c] = reduce_span(job.ptrs[k], job.is_double[k], job.chunks.start[c],
                                 job.chunks.count[c], job.kind, job.norm_type)


def grad_norms(list arrays, double norm_type, int n_threads):
    """The norm_type-norm of every array, computed in double, deterministically.

    arrays: float32/float64 C-contiguous arrays (dtypes may differ).  # IN
    norm_type: 1, 2, inf or any p > 0 (checked by the caller).
    Returns float64[len(arrays)]: (sum |x|^p)^(1/p), or max |x| for inf.
    """
    cdef _ArrayList lst = _ArrayList(arrays, False)
    cdef Chunks ch
    cdef NormJob job
    cdef int kind
    cdef Py_ssize_t k
    cdef double* partial
    cdef double s
    out = np.zeros(lst.n, dtype=np.float64)
    cdef double[::1] norms = out
    if norm_type == 1:
        kind = SUM_ABS
    elif norm_type == 2:
        kind = SUM_SQ
    elif norm_type == np.inf:
        kind = MAX_ABS
    else:
        kind = SUM_POW
    chunks_init(&ch, lst.offsets, lst.ptrs, lst.n)
    partial = <double*> malloc(max(ch.n, 1) * sizeof(double))
    if partial == NULL:
        chunks_free(&ch)
        raise MemoryError()
    n_threads = _effective_threads(lst.offsets[lst.n], n_threads, COST_LIGHT)
    job.ptrs = lst.ptrs
    job.is_double = lst.is_double
    job.chunks = &ch
    job.partial = partial
    job.kind = kind
    job.norm_type = norm_type
    try:
        with nogil:
            cyoptim_pool_run(_norm_task, &job, ch.n, n_threads)
            for k in range(lst.n):
                s = combine_chunks(partial, ch.first[k], ch.first[k + 1], kind == MAX_ABS)
                if kind == SUM_SQ:
                    s = sqrt(s)
                elif kind == SUM_POW:
                    s = pow(s, 1.0 / norm_type)
                norms[k] = s
    finally:
        free(partial)
        chunks_free(&ch)
    return out


cdef inline void _scale_typed(floating* x, int64_t n, double factor) noexcept nogil:
    cdef floating f = <floating> factor
    cdef int64_t i
    for i in range(n):
        x[i] = x[i] * f


cdef inline void _clamp_typed(floating* x, int64_t n, double low, double high) noexcept nogil:
    """torch's clamp_min_ then clamp_max_: NaN stays NaN."""
    cdef floating lo = <floating> low, hi = <floating> high, xi
    cdef int64_t i
    for i in range(n):
        xi = x[i]
        xi = lo if xi < lo else xi
        x[i] = hi if xi > hi else xi


cdef struct ElementwiseJob:
    char** ptrs                 # per array: its data
    const unsigned char* is_double
    const Chunks* chunks
    int op                      # 0: scale by a; 1: clamp to [a, b]
    double a, b


cdef void _elementwise_task(void* job_, int64_t c) noexcept nogil:
    cdef const ElementwiseJob* job = <const ElementwiseJob*> job_
    cdef Py_ssize_t k = job.chunks.tensor[c]
    cdef int64_t start = job.chunks.start[c], n = job.chunks.count[c]
    cdef char* data = job.ptrs[k]
    if job.is_double[k]:
        if job.op == 0:
            _scale_typed(<double*> data + start, n, job.a)
        else:
            _clamp_typed(<double*> data + start, n, job.a, job.b)
    else:
        if job.op == 0:
            _scale_typed(<float*> data + start, n, job.a)
        else:
            _clamp_typed(<float*> data + start, n, job.a, job.b)


def _elementwise(list arrays, int op, double a, double b, int n_threads):
    cdef _ArrayList lst = _ArrayList(arrays, True)
    cdef Chunks ch
    cdef ElementwiseJob job
    chunks_init(&ch, lst.offsets, lst.ptrs, lst.n)
    n_threads = _effective_threads(lst.offsets[lst.n], n_threads, COST_LIGHT)
    job.ptrs = lst.ptrs
    job.is_double = lst.is_double
    job.chunks = &ch
    job.op = op
    job.a = a
    job.b = b
    try:
        with nogil:
            cyoptim_pool_run(_elementwise_task, &job, ch.n, n_threads)
    finally:
        chunks_free(&ch)


def scale_(list arrays, double factor, int n_threads):
    """x *= factor (cast to each array's dtype) for every array, in place.  # IN/OUT"""
    _elementwise(arrays, 0, factor, 0.0, n_threads)


def clamp_(list arrays, double low, double high, int n_threads):
    """x = min(max(x, low), high) (cast to each array's dtype), in place.  # IN/OUT"""
    _elementwise(arrays, 1, low, high, n_threads)


cdef struct _Span:
    char* start
    char* end
    Py_ssize_t index

cdef extern from "stdlib.h":
    void qsort(void* base, size_t n, size_t size,
               int (*compar)(const void*, const void*) noexcept nogil) nogil


cdef int _span_order(const void* x, const void* y) noexcept nogil:
    cdef const _Span* a = <const _Span*> x
    cdef const _Span* b = <const _Span*> y
    if a.start != b.start:
        return -1 if a.start < b.start else 1
    return -1 if a.index < b.index else (1 if a.index > b.index else 0)


def first_overlap(list arrays):
    """(i, j) of two C-contiguous arrays sharing memory, else None."""
    cdef Py_ssize_t k, n = 0, i, j, n_arrays = len(arrays)
    cdef cnp.ndarray a
    for k in range(n_arrays):
        if not cnp.PyArray_Check(arrays[k]) or not cnp.PyArray_IS_C_CONTIGUOUS(arrays[k]):
            raise ValueError(f"array {k}: expected a C-contiguous array")
    cdef _Span* spans = <_Span*> malloc(max(n_arrays, 1) * sizeof(_Span))
    if spans == NULL:
        raise MemoryError()
    try:
        for k in range(n_arrays):
            a = <cnp.ndarray> arrays[k]
            if cnp.PyArray_NBYTES(a) > 0:
                spans[n].start = <char*> cnp.PyArray_DATA(a)
                spans[n].end = spans[n].start + cnp.PyArray_NBYTES(a)
                spans[n].index = k
                n += 1
        qsort(spans, n, sizeof(_Span), _span_order)
        for k in range(n - 1):
            if spans[k + 1].start < spans[k].end:
                i, j = spans[k].index, spans[k + 1].index
                return (min(i, j), max(i, j))
        return None
    finally:
        free(spans)
