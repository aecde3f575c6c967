# Blockwise dynamic 8-bit quantization (cyoptim.quantization is the
# definition, bitwise): the chunk functions staged kernels call on int8
# optimizer states (staging.pxi), one block of QBLOCK elements at a time.
#
# Quantizing without a search: y's float32 bits (sign aside) shifted right
# give a bucket that holds at most one decision threshold (checked when the
# tables are built), so the code is the bucket's count of thresholds below it
# plus one comparison with that threshold. Both come from one 32-bit table
# entry (the threshold's upper bits are the bucket's, y's own): a few integer
# operations and one table load per element, which the AVX2 and AVX-512
# builds do as gathers (the table, 25 KB, stays in L1). Dequantizing is a
# gather of the 256 map values. Every build computes the same codes and values.

from libc.stdint cimport uint8_t, int32_t, uint32_t

cdef extern from "quant.h":
    float cyoptim_absmax(const float* x, int64_t n) noexcept nogil
    void cyoptim_quantize(const float* x, int64_t n, float inverse, const uint32_t* table,
                          int32_t first_key, int32_t n_buckets, uint8_t* codes) noexcept nogil
    int CYOPTIM_BUCKET_SHIFT
    void cyoptim_dequantize(const uint8_t* codes, float absmax, const float* values,
                            float* out, int64_t n) noexcept nogil

cpdef enum QuantBlock:             # cpdef: cyoptim.precision reads it from here
    QBLOCK = 256                  # elements per block (and per staging chunk: staging.pxi)

cdef enum:
    QMAP_MAX_BUCKETS = 8192       # room for 2 * N_BUCKETS (cyoptim.quantization)


cdef struct QuantMap:
    float values[256]             # the dynamic map, ascending
    float thresholds[256]         # midpoints of neighbouring values; [255] = inf
    uint32_t table[QMAP_MAX_BUCKETS]  # per bucket of |y|, then of -|y|: (thresholds
                                      # below it) << 16 | the low bits of the one inside (quant.h)
    int32_t first_key             # the bits >> shift of bucket 0
    int32_t n_buckets


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
    cyoptim_quantize(values, n, 0 if absmax == 0 else 1 / absmax, m.table, m.first_key,
                     m.n_buckets, codes)
    return absmax


cdef _fill_map(QuantMap* m, bint signed):
    from cyoptim import quantization
    values = quantization.dynamic_map(signed)
    thresholds = quantization.thresholds(signed)
    first_key, below = quantization.bucket_tables(signed)
    if below.size > QMAP_MAX_BUCKETS:
        raise RuntimeError("quantization bucket table larger than QMAP_MAX_BUCKETS")
    if quantization.BUCKET_SHIFT != CYOPTIM_BUCKET_SHIFT:
        raise RuntimeError("quant.h's CYOPTIM_BUCKET_SHIFT is not quantization.BUCKET_SHIFT")
    cdef Py_ssize_t i, n_buckets = below.size // 2
    cdef uint32_t low_mask = (1 << CYOPTIM_BUCKET_SHIFT) - 1, bits
    for i in range(256):
        m.values[i] = values[i]
        m.thresholds[i] = thresholds[i]
    # The threshold a bucket's count is followed by (infinity past the last)
    # lies inside the bucket when its bits but the low ones are the bucket's.
    following = thresholds[np.minimum(below, 255)]
    following_bits = following.view(np.uint32)
    keys = np.concatenate([np.arange(n_buckets) + first_key] * 2).astype(np.uint32)
    negative = np.arange(below.size) >= n_buckets
    inside = (((following_bits & 0x7FFFFFFF) >> CYOPTIM_BUCKET_SHIFT) == keys) & (
        (following < 0) == negative) & np.isfinite(following)
    # Clamped buckets (the ends of either half) take y beyond them: no threshold there.
    ends = [0, n_buckets - 1, n_buckets, 2 * n_buckets - 1]
    if inside[ends].any():
        raise RuntimeError("a threshold in an end bucket of the quantization table")
    for i in range(below.size):
        if inside[i]:
            bits = following_bits[i] & low_mask
        else:
            bits = 0 if negative[i] else low_mask
        m.table[i] = (<uint32_t> below[i] << CYOPTIM_BUCKET_SHIFT) | bits
    m.first_key = first_key
    m.n_buckets = n_buckets


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
