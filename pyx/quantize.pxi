# Blockwise dynamic 8-bit quantization (cyoptim.quantization is the
# definition, bitwise): the chunk functions staged kernels call on int8
# optimizer states (staging.pxi), one block of QBLOCK elements at a time.
#
# Quantizing without a search (baseline and AVX2): y's float32 bits (sign
# aside) shifted right give a bucket that holds at most one decision
# threshold (checked when the tables are built), so the code is the bucket's
# count of thresholds below it plus one comparison: a few integer operations
# and two table loads per element, which AVX2 does as gathers. AVX-512 holds
# the 255 thresholds in registers instead and binary-searches them with
# permutes (8 comparisons); its dequantizer permutes the 256 map values the
# same way. Every build computes the same codes and values.

from libc.stdint cimport uint8_t, int32_t, uint32_t

cdef extern from "quant.h":
    float cyoptim_absmax(const float* x, int64_t n) noexcept nogil
    void cyoptim_quantize(const float* x, int64_t n, float inverse, const int32_t* below,
                          const float* thresholds, int32_t first_key, int32_t n_buckets,
                          int shift, const float* search, uint8_t* codes) noexcept nogil
    void cyoptim_search_tables(const float* thresholds, float* search) noexcept nogil
    void cyoptim_dequantize(const uint8_t* codes, float absmax, const float* values,
                            float* out, int64_t n) noexcept nogil

cpdef enum QuantBlock:             # cpdef: cyoptim.precision reads it from here
    QBLOCK = 256                  # elements per block (and per staging chunk: staging.pxi)

cdef enum:
    QMAP_MAX_BUCKETS = 8192       # room for 2 * N_BUCKETS (cyoptim.quantization)
    QMAP_SEARCH_FLOATS = 304      # CYOPTIM_SEARCH_FLOATS (quant.h)


cdef struct QuantMap:
    float values[256]             # the dynamic map, ascending
    float thresholds[256]         # midpoints of neighbouring values; [255] = inf
    int32_t below[QMAP_MAX_BUCKETS]   # per bucket of |y|, then of -|y|: thresholds below it
    float next[QMAP_MAX_BUCKETS]      # per bucket: the first threshold not below it
    int32_t first_key             # the bits >> shift of bucket 0
    int32_t n_buckets
    int shift
    float search[QMAP_SEARCH_FLOATS]  # the thresholds in binary-search order (quant.h)


cdef QuantMap SIGNED_MAP
cdef QuantMap UNSIGNED_MAP


cdef inline void dequantize_chunk(const uint8_t* codes, float absmax, const QuantMap* m,
                                  float* out, int64_t n) noexcept nogil:
    """out[i] = map[codes[i]] * absmax."""
    cyoptim_dequantize(codes, absmax, m.values, out, n)


cdef inline float quantize_chunk(const float* values, int64_t n, const QuantMap* m,
                                 uint8_t* codes) noexcept nogil:
    """Write the codes of values[0:n] (one block); return its absmax."""
    cdef float absmax = cyoptim_absmax(values, n)
    cyoptim_quantize(values, n, 0 if absmax == 0 else 1 / absmax, m.below, m.next,
                     m.first_key, m.n_buckets, m.shift, m.search, codes)
    return absmax


cdef _fill_map(QuantMap* m, bint signed):
    from cyoptim import quantization
    values = quantization.dynamic_map(signed)
    thresholds = quantization.thresholds(signed)
    first_key, below = quantization.bucket_tables(signed)
    if below.size > QMAP_MAX_BUCKETS:
        raise RuntimeError("quantization bucket table larger than QMAP_MAX_BUCKETS")
    cdef Py_ssize_t i
    for i in range(256):
        m.values[i] = values[i]
        m.thresholds[i] = thresholds[i]
    for i in range(below.size):
        m.below[i] = below[i]
        m.next[i] = thresholds[below[i]]
    m.first_key = first_key
    m.n_buckets = below.size // 2
    m.shift = quantization.BUCKET_SHIFT
    cyoptim_search_tables(m.thresholds, m.search)


_fill_map(&SIGNED_MAP, True)
_fill_map(&UNSIGNED_MAP, False)


def quantize_chunks(x, bint signed=True):
    """(codes, absmax) of a float32 array, block by block, by the kernels'
    quantizer (for tests: cyoptim.quantization.quantize_blockwise is the
    definition)."""
    cdef float[::1] flat = np.ascontiguousarray(x, dtype=np.float32).reshape(-1)
    cdef int64_t n = flat.shape[0], start
    codes = np.empty(n, dtype=np.uint8)
    absmax = np.empty((n + QBLOCK - 1) // QBLOCK, dtype=np.float32)
    cdef uint8_t[::1] c = codes
    cdef float[::1] a = absmax
    cdef const QuantMap* m = &SIGNED_MAP if signed else &UNSIGNED_MAP
    with nogil:
        start = 0
        while start < n:
            a[start // QBLOCK] = quantize_chunk(&flat[start], min(<int64_t> QBLOCK, n - start),
                                                m, &c[start])
            start += QBLOCK
    return codes.reshape(np.shape(x)), absmax


def dequantize_chunks(codes, absmax, bint signed=True):
    """The float32 values of codes and their absmax, by the kernels' dequantizer."""
    cdef const uint8_t[::1] c = np.ascontiguousarray(codes, dtype=np.uint8).reshape(-1)
    cdef const float[::1] a = np.ascontiguousarray(absmax, dtype=np.float32)
    cdef int64_t n = c.shape[0], start
    if a.shape[0] != (n + QBLOCK - 1) // QBLOCK:
        raise ValueError("one absmax per block of QBLOCK codes")
    out = np.empty(n, dtype=np.float32)
    cdef float[::1] o = out
    cdef const QuantMap* m = &SIGNED_MAP if signed else &UNSIGNED_MAP
    with nogil:
        start = 0
        while start < n:
            dequantize_chunk(&c[start], a[start // QBLOCK], m, &o[start],
                             min(<int64_t> QBLOCK, n - start))
            start += QBLOCK
    return out.reshape(np.shape(codes))
