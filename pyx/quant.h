/* The loops of blockwise int8 quantization (pyx/quantize.pxi), in C.
 * cyoptim.quantization is their definition, bitwise. gcc does not vectorize
 * the two table lookups (a byte-indexed load, a computed index) by itself, so
 * the AVX2 and AVX-512 builds gather explicitly; every build computes the
 * same codes and values. */
#ifndef CYOPTIM_QUANT_H
#define CYOPTIM_QUANT_H

#include <math.h>
#include <stdint.h>
#include <string.h>
#if defined(__AVX2__) || defined(__AVX512F__)
#include <immintrin.h>
#endif

#define CYOPTIM_LANES 16

/* The largest magnitude of x[0:n]; NaN when any element is NaN. The bits of
 * |x| order as unsigned integers as the magnitudes do, with NaN above
 * infinity: an integer maximum (16 lanes, a loop gcc vectorizes in every
 * build), which does not depend on the order. */
static inline float cyoptim_absmax(const float* x, int64_t n) {
    int32_t lanes[CYOPTIM_LANES] = {0};
    int64_t i = 0;
    for (; i + CYOPTIM_LANES <= n; i += CYOPTIM_LANES)
        for (int j = 0; j < CYOPTIM_LANES; j++) {
            int32_t u;
            memcpy(&u, x + i + j, sizeof u);
            u &= 0x7FFFFFFF;
            lanes[j] = u > lanes[j] ? u : lanes[j];
        }
    for (; i < n; i++) {
        int32_t u;
        memcpy(&u, x + i, sizeof u);
        u &= 0x7FFFFFFF;
        lanes[0] = u > lanes[0] ? u : lanes[0];
    }
    int32_t most = 0;
    for (int j = 0; j < CYOPTIM_LANES; j++)
        most = lanes[j] > most ? lanes[j] : most;
    if (most > 0x7F800000)
        return NAN;
    float out;
    memcpy(&out, &most, sizeof out);
    return out;
}

static inline uint8_t cyoptim_code(float y, const int32_t* below, const float* thresholds,
                                   int32_t first_key, int32_t n_buckets, int shift) {
    /* thresholds: per bucket, the first threshold not below it */
    uint32_t u;
    memcpy(&u, &y, sizeof u);
    int32_t bucket = (int32_t) ((u & 0x7FFFFFFFu) >> shift) - first_key;
    bucket = bucket < 0 ? 0 : bucket;
    bucket = bucket > n_buckets - 1 ? n_buckets - 1 : bucket;
    bucket += (int32_t) (u >> 31) * n_buckets;
    return (uint8_t) (y != y ? 255 : below[bucket] + (thresholds[bucket] < y));
}

/* The 255 finite thresholds in the order a branchless binary search reads
 * them, for the AVX-512 quantizer: level k (1..8) decides bit 8 - k of the
 * code, knowing the k - 1 bits above it (p), by comparing with
 * thresholds[p * 2^(9-k) + 2^(8-k) - 1]; its table starts at
 * cyoptim_search_offset(k) (levels 1..5 padded to 16 floats: one register). */
#define CYOPTIM_SEARCH_FLOATS 304
static inline int cyoptim_search_offset(int level) {
    return level <= 5 ? 16 * (level - 1) : 80 + 32 * ((1 << (level - 6)) - 1);
}

static inline void cyoptim_search_tables(const float* thresholds, float* search) {
    for (int i = 0; i < CYOPTIM_SEARCH_FLOATS; i++)
        search[i] = INFINITY;
    for (int level = 1; level <= 8; level++)
        for (int p = 0; p < 1 << (level - 1); p++)
            search[cyoptim_search_offset(level) + p] =
                thresholds[p * (1 << (9 - level)) + (1 << (8 - level)) - 1];
}

#if defined(__AVX512F__)
/* The code of 16 values y, thresholds held in registers: 8 comparisons, each
 * with the threshold a permute picks by the bits decided so far. "y not <=
 * threshold" is "threshold < y" except for NaN, which is above every one:
 * 255, as in the definition. */
#define CYOPTIM_DECIDE(up, threshold) \
        up = _mm512_cmp_ps_mask(y, (threshold), _CMP_NLE_UQ); \
        p = _mm512_add_epi32(p, p); \
        p = _mm512_mask_add_epi32(p, up, p, one)
#endif

/* codes[i] = the number of thresholds below y = x[i] * inverse (255 for a
 * NaN y): the bucket of y's bits (sign aside) holds at most one threshold;
 * per bucket (positive buckets, then negative ones) below[] counts the
 * thresholds under it and thresholds[] is the next one, so the two table
 * loads are independent. */
static inline void cyoptim_quantize(const float* x, int64_t n, float inverse,
                                    const int32_t* below, const float* thresholds,
                                    int32_t first_key, int32_t n_buckets, int shift,
                                    const float* search, uint8_t* codes) {
    int64_t i = 0;
#if defined(__AVX512F__)
    const __m512 vinverse = _mm512_set1_ps(inverse);
    const __m512i one = _mm512_set1_epi32(1);
    const float* level6 = search + cyoptim_search_offset(6);
    const float* level7 = search + cyoptim_search_offset(7);
    const float* level8 = search + cyoptim_search_offset(8);
    const __m512 t1 = _mm512_set1_ps(search[0]), t2 = _mm512_loadu_ps(search + 16);
    const __m512 t3 = _mm512_loadu_ps(search + 32), t4 = _mm512_loadu_ps(search + 48);
    const __m512 t5 = _mm512_loadu_ps(search + 64);
    const __m512 t6a = _mm512_loadu_ps(level6), t6b = _mm512_loadu_ps(level6 + 16);
    __m512 t7[4], t8[8];
    for (int k = 0; k < 4; k++)
        t7[k] = _mm512_loadu_ps(level7 + 16 * k);
    for (int k = 0; k < 8; k++)
        t8[k] = _mm512_loadu_ps(level8 + 16 * k);
    for (; i + 16 <= n; i += 16) {
        __m512 y = _mm512_mul_ps(_mm512_loadu_ps(x + i), vinverse);
        __mmask16 high = _mm512_cmp_ps_mask(y, t1, _CMP_NLE_UQ);      /* bit 7 */
        __m512i p = _mm512_maskz_mov_epi32(high, one);
        __mmask16 second, up;                                           /* bit 6 */
        CYOPTIM_DECIDE(second, _mm512_permutexvar_ps(p, t2));
        CYOPTIM_DECIDE(up, _mm512_permutexvar_ps(p, t3));
        CYOPTIM_DECIDE(up, _mm512_permutexvar_ps(p, t4));
        CYOPTIM_DECIDE(up, _mm512_permutexvar_ps(p, t5));
        CYOPTIM_DECIDE(up, _mm512_permutex2var_ps(t6a, p, t6b));
        /* 64 and 128 entries: permutes over 32, chosen by the bits above */
        CYOPTIM_DECIDE(up, _mm512_mask_blend_ps(high, _mm512_permutex2var_ps(t7[0], p, t7[1]),
                                                _mm512_permutex2var_ps(t7[2], p, t7[3])));
        __m512 low = _mm512_mask_blend_ps(second, _mm512_permutex2var_ps(t8[0], p, t8[1]),
                                          _mm512_permutex2var_ps(t8[2], p, t8[3]));
        __m512 top = _mm512_mask_blend_ps(second, _mm512_permutex2var_ps(t8[4], p, t8[5]),
                                          _mm512_permutex2var_ps(t8[6], p, t8[7]));
        CYOPTIM_DECIDE(up, _mm512_mask_blend_ps(high, low, top));
        _mm_storeu_si128((__m128i*) (codes + i), _mm512_cvtepi32_epi8(p));
    }
#elif defined(__AVX2__)
    const __m256 vinverse = _mm256_set1_ps(inverse);
    const __m256i magnitude = _mm256_set1_epi32(0x7FFFFFFF), vfirst = _mm256_set1_epi32(first_key);
    const __m256i zero = _mm256_setzero_si256(), vlast = _mm256_set1_epi32(n_buckets - 1);
    const __m256i vbuckets = _mm256_set1_epi32(n_buckets), nan_code = _mm256_set1_epi32(255);
    const __m128i vshift = _mm_cvtsi32_si128(shift);
    const __m256i pack = _mm256_setr_epi8(0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
                                          0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1);
    for (; i + 8 <= n; i += 8) {
        __m256 y = _mm256_mul_ps(_mm256_loadu_ps(x + i), vinverse);
        __m256i u = _mm256_castps_si256(y);
        __m256i bucket = _mm256_sub_epi32(_mm256_srl_epi32(_mm256_and_si256(u, magnitude), vshift), vfirst);
        bucket = _mm256_min_epi32(_mm256_max_epi32(bucket, zero), vlast);
        /* negative y: the second half of the table */
        bucket = _mm256_add_epi32(bucket, _mm256_and_si256(_mm256_srai_epi32(u, 31), vbuckets));
        __m256i lower = _mm256_i32gather_epi32(below, bucket, 4);
        __m256 t = _mm256_i32gather_ps(thresholds, bucket, 4);
        __m256i up = _mm256_castps_si256(_mm256_cmp_ps(t, y, _CMP_LT_OQ));   /* -1 where up */
        __m256i code = _mm256_sub_epi32(lower, up);
        code = _mm256_blendv_epi8(code, nan_code, _mm256_castps_si256(_mm256_cmp_ps(y, y, _CMP_UNORD_Q)));
        __m256i bytes = _mm256_shuffle_epi8(code, pack);
        uint32_t low = (uint32_t) _mm256_extract_epi32(bytes, 0);
        uint32_t high = (uint32_t) _mm256_extract_epi32(bytes, 4);
        memcpy(codes + i, &low, 4);
        memcpy(codes + i + 4, &high, 4);
    }
#endif
    for (; i < n; i++)
        codes[i] = cyoptim_code(x[i] * inverse, below, thresholds, first_key, n_buckets, shift);
}

/* out[i] = values[codes[i]] * absmax. */
static inline void cyoptim_dequantize(const uint8_t* codes, float absmax, const float* values,
                                      float* out, int64_t n) {
    int64_t i = 0;
#if defined(__AVX512F__)
    /* the 256 values in 16 registers: 8 permutes over 32 entries, chosen by
     * code bits 5, 6 and 7 (taken from the bytes: bit 7 of c, c << 1, c << 2) */
    const __m512 scale = _mm512_set1_ps(absmax);
    __m512 v[16];
    for (int k = 0; k < 16; k++)
        v[k] = _mm512_loadu_ps(values + 16 * k);
    for (; i + 16 <= n; i += 16) {
        __m128i c = _mm_loadu_si128((const __m128i*) (codes + i));
        __m512i index = _mm512_cvtepu8_epi32(c);
        __mmask16 bit7 = _mm_movepi8_mask(c), bit6 = _mm_movepi8_mask(_mm_slli_epi16(c, 1));
        __mmask16 bit5 = _mm_movepi8_mask(_mm_slli_epi16(c, 2));
        __m512 q[4];
        for (int k = 0; k < 4; k++)
            q[k] = _mm512_mask_blend_ps(bit5, _mm512_permutex2var_ps(v[4 * k], index, v[4 * k + 1]),
                                        _mm512_permutex2var_ps(v[4 * k + 2], index, v[4 * k + 3]));
        __m512 value = _mm512_mask_blend_ps(bit7, _mm512_mask_blend_ps(bit6, q[0], q[1]),
                                            _mm512_mask_blend_ps(bit6, q[2], q[3]));
        _mm512_storeu_ps(out + i, _mm512_mul_ps(value, scale));
    }
#elif defined(__AVX2__)
    const __m256 scale = _mm256_set1_ps(absmax);
    for (; i + 8 <= n; i += 8) {
        __m256i index = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i*) (codes + i)));
        _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_i32gather_ps(values, index, 4), scale));
    }
#endif
    for (; i < n; i++)
        out[i] = values[codes[i]] * absmax;
}

#endif
