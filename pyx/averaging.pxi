# Weight averaging (cyoptim.AveragedParams; torch.optim.swa_utils.AveragedModel
# 2.13 with get_ema_multi_avg_fn / get_swa_multi_avg_fn): the kernel.
#
# Per element, in the arrays' precision:
#   a = lerp(a, p, w)      torch._foreach_lerp_(averages, params, w)
#   a = p                  the first update (torch's copy_), and copied buffers
# with the weight w cast to the element type first. The weight comes from
# cyoptim.averaging: 1 - decay (EMA) or the float32 value 1/(n+1) (SWA).
#
# lerp is written as torch's vectorized CPU kernel computes it (ATen's
# lerp_vec), with one rounding per element:
#   |w| < 0.5:  fma(w, p - a, a)
#   otherwise:  fma(w - 1, p - a, p)
# (torch's scalar formula p - (p - a)*(1 - w) is the same value before
# rounding.) fma() is correctly rounded wherever it runs (an FMA instruction
# in the AVX2 and AVX-512 builds, where the loop vectorizes; glibc's fma in
# the baseline build, one call per element), so every SIMD variant gives the
# same bits, and those of torch on CPUs with FMA.
#
# One AveragingGroup holds the averages of one dtype and the arrays they
# follow, as pointer tables over runs (common.pxi's vocabulary): a run is a
# stretch where both sides are contiguous, so neighbouring tensors whose
# sources lie back to back (a ParamBuffer) merge into one run (the averages
# of a group are one block). An update is ONE call: run_pieces hands the runs'
# slices to the work-sharing pool. Element-wise, so bitwise the same for any
# thread count.


cdef inline void average_elements(floating* avg, const floating* src, int64_t n,
                                  floating weight) noexcept nogil:
    """avg = lerp(avg, src, weight), element by element, as torch's lerp_vec."""
    cdef int64_t i
    for i in range(n):
        avg[i] = lerp_fused(avg[i], src[i], weight)


cdef struct AveragingArgs:
    char** averages               # per run: the averages' data
    char** sources                # per run: the followed arrays' data
    const int64_t* offsets        # per run: its start in the group's flat order
    double weight
    bint copy                     # copy the sources instead of averaging
    bint is_double


cdef void _average_piece(const void* args, Py_ssize_t run, int64_t start,
                         int64_t count) noexcept nogil:
    cdef const AveragingArgs* a = <const AveragingArgs*> args
    cdef int itemsize = 8 if a.is_double else 4
    cdef char* avg = a.averages[run] + start * itemsize
    cdef const char* src = a.sources[run] + start * itemsize
    if a.copy:
        memcpy(avg, src, count * itemsize)
    elif a.is_double:
        average_elements(<double*> avg, <const double*> src, count, a.weight)
    else:
        average_elements(<float*> avg, <const float*> src, count, <float> a.weight)


cdef class AveragingGroup:
    """Averages of one dtype and the arrays they follow, compiled to pointer tables.

    averages: C-contiguous, aligned, writeable arrays of one dtype.    # OUT
    sources: arrays of the same dtype, shapes and layout (read only).  # IN
    The group keeps references to both lists, so the pointers stay valid.
    """
    cdef readonly object dtype
    cdef readonly Py_ssize_t n_tensors
    cdef readonly Py_ssize_t n_runs
    cdef readonly int64_t total_elements
    cdef readonly tuple averages, sources
    cdef object _avg_ptrs, _src_ptrs, _offsets
    cdef char** c_avg
    cdef char** c_src
    cdef int64_t* c_offsets
    cdef bint is_double

    def __init__(self, list averages, list sources):
        cdef Py_ssize_t k, r = 0
        cdef int64_t size
        if len(averages) != len(sources) or not averages:
            raise ValueError("AveragingGroup needs one source per average, at least one")
        self.dtype = averages[0].dtype
        if self.dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
            raise TypeError(f"AveragingGroup: dtype {self.dtype} is not float32 or float64")
        for k in range(len(averages)):
            self._check(averages[k], f"average {k}", True)
            self._check(sources[k], f"source {k}", False)
            if averages[k].shape != sources[k].shape:
                raise ValueError(f"AveragingGroup: average {k} has shape {averages[k].shape}, "
                                 f"its source {sources[k].shape}")
        self.averages = tuple(averages)
        self.sources = tuple(sources)
        self.n_tensors = len(averages)
        self.is_double = self.dtype == np.dtype(np.float64)
        itemsize = self.dtype.itemsize
        # Runs: a tensor joins the previous run when both its average and its
        # source continue that run's memory.
        self._avg_ptrs = np.zeros(self.n_tensors, dtype=np.intp)
        self._src_ptrs = np.zeros(self.n_tensors, dtype=np.intp)
        self._offsets = np.zeros(self.n_tensors + 1, dtype=np.int64)
        ends = None
        for k in range(self.n_tensors):
            a, s = averages[k].ctypes.data, sources[k].ctypes.data
            size = averages[k].size
            if ends is None or ends != (a, s):
                self._avg_ptrs[r] = a
                self._src_ptrs[r] = s
                self._offsets[r + 1] = self._offsets[r]
                r += 1
            self._offsets[r] += size
            ends = (a + size * itemsize, s + size * itemsize)
        self.n_runs = r
        self.total_elements = self._offsets[r]
        self.c_avg = <char**> cnp.PyArray_DATA(self._avg_ptrs)
        self.c_src = <char**> cnp.PyArray_DATA(self._src_ptrs)
        self.c_offsets = <int64_t*> cnp.PyArray_DATA(self._offsets)

    cdef _check(self, object x, str name, bint writeable):
        if (not cnp.PyArray_Check(x) or x.dtype != self.dtype
                or not cnp.PyArray_ISNOTSWAPPED(<cnp.ndarray> x)
                or not cnp.PyArray_IS_C_CONTIGUOUS(<cnp.ndarray> x)
                or not cnp.PyArray_ISALIGNED(<cnp.ndarray> x)
                or (writeable and not cnp.PyArray_ISWRITEABLE(<cnp.ndarray> x))):
            raise ValueError(f"AveragingGroup: {name} must be a C-contiguous, aligned"
                             f"{', writeable' if writeable else ''} {self.dtype} array")

    cdef void _run(self, double weight, bint copy, int n_threads) noexcept nogil:
        cdef AveragingArgs a
        a.averages = self.c_avg
        a.sources = self.c_src
        a.offsets = self.c_offsets
        a.weight = weight
        a.copy = copy
        a.is_double = self.is_double
        n_threads = _effective_threads(self.total_elements, n_threads, COST_LIGHT)
        run_pieces(_average_piece, &a, self.c_offsets, self.n_runs, n_threads)

    def lerp(self, double weight, int n_threads=0):
        """averages = lerp(averages, sources, weight); weight cast to the dtype first.

        n_threads: requested threads (<= 0: OpenMP's maximum)."""
        with nogil:
            self._run(weight, False, n_threads)

    def copy(self, int n_threads=0):
        """averages = sources."""
        with nogil:
            self._run(0.0, True, n_threads)
