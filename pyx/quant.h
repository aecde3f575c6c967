/* The loops of blockwise int8 quantization (pyx/quantize.pxi), in C.
 * cyoptim.quantization is their definition, bitwise. gcc does not vectorize
 * the table lookups (a byte-indexed load, a computed index) by itself, so the
 * AVX2 and AVX-512 builds gather explicitly (measured on an AVX-512 Xeon:
 * faster than holding the tables in registers and searching them by
 * permutes); every build computes the same codes and values. */
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

/* The quantizer's table: one 32-bit entry per bucket (positive buckets, then
 * negative ones), (count << 16) | low: count = the thresholds below the
 * bucket, low = the low 16 bits of the threshold inside it (a bucket holds at
 * most one, and its upper 16 bits are the bucket's, sign included), or a
 * sentinel no y of the bucket is above (0xFFFF for positive buckets, 0 for
 * negative ones). One table load per element (a gather in the SIMD builds):
 * code = count + (threshold < y), NaN y -> 255. CYOPTIM_BUCKET_SHIFT must be
 * cyoptim.quantization.BUCKET_SHIFT (checked when the table is built). */
#define CYOPTIM_BUCKET_SHIFT 16
#define CYOPTIM_LOW_MASK 0xFFFFu

static inline uint8_t cyoptim_code(float y, const uint32_t* table, int32_t first_key,
                                   int32_t n_buckets) {
    uint32_t u;
    memcpy(&u, &y, sizeof u);
    int32_t bucket = (int32_t) ((u & 0x7FFFFFFFu) >> CYOPTIM_BUCKET_SHIFT) - first_key;
    bucket = bucket < 0 ? 0 : bucket;
    bucket = bucket > n_buckets - 1 ? n_buckets - 1 : bucket;
    bucket += (int32_t) (u >> 31) * n_buckets;
    uint32_t entry = table[bucket];
    uint32_t tbits = (u & ~CYOPTIM_LOW_MASK) | (entry & CYOPTIM_LOW_MASK);
    float threshold;
    memcpy(&threshold, &tbits, sizeof threshold);
    return (uint8_t) (y != y ? 255 : (entry >> CYOPTIM_BUCKET_SHIFT) + (threshold < y));
}

/* codes[i] = the number of thresholds below y = x[i] * inverse (255 for a
 * NaN y), by cyoptim_code. */
static inline void cyoptim_quantize(const float* x, int64_t n, float inverse,
                                    const uint32_t* table, int32_t first_key,
                                    int32_t n_buckets, uint8_t* codes) {
    int64_t i = 0;
#if defined(__AVX512F__)
    const __m512 vinverse = _mm512_set1_ps(inverse);
    const __m512i magnitude = _mm512_set1_epi32(0x7FFFFFFF), vfirst = _mm512_set1_epi32(first_key);
    const __m512i zero = _mm512_setzero_si512(), vlast = _mm512_set1_epi32(n_buckets - 1);
    const __m512i vbuckets = _mm512_set1_epi32(n_buckets), one = _mm512_set1_epi32(1);
    const __m512i low = _mm512_set1_epi32(CYOPTIM_LOW_MASK), nan_code = _mm512_set1_epi32(255);
    for (; i + 16 <= n; i += 16) {
        __m512 y = _mm512_mul_ps(_mm512_loadu_ps(x + i), vinverse);
        __m512i u = _mm512_castps_si512(y);
        __m512i bucket = _mm512_sub_epi32(
            _mm512_srli_epi32(_mm512_and_si512(u, magnitude), CYOPTIM_BUCKET_SHIFT), vfirst);
        bucket = _mm512_min_epi32(_mm512_max_epi32(bucket, zero), vlast);
        bucket = _mm512_mask_add_epi32(bucket, _mm512_cmplt_epi32_mask(u, zero), bucket, vbuckets);
        __m512i entry = _mm512_i32gather_epi32(bucket, (const void*) table, 4);
        /* 0xCA: low ? entry : u, bitwise (the low bits from the entry, the rest from y) */
        __m512 t = _mm512_castsi512_ps(_mm512_ternarylogic_epi32(low, entry, u, 0xCA));
        __m512i code = _mm512_srli_epi32(entry, CYOPTIM_BUCKET_SHIFT);
        code = _mm512_mask_add_epi32(code, _mm512_cmp_ps_mask(t, y, _CMP_LT_OQ), code, one);
        code = _mm512_mask_mov_epi32(code, _mm512_cmp_ps_mask(y, y, _CMP_UNORD_Q), nan_code);
        _mm_storeu_si128((__m128i*) (codes + i), _mm512_cvtepi32_epi8(code));
    }
#elif defined(__AVX2__)
    const __m256 vinverse = _mm256_set1_ps(inverse);
    const __m256i magnitude = _mm256_set1_epi32(0x7FFFFFFF), vfirst = _mm256_set1_epi32(first_key);
    const __m256i zero = _mm256_setzero_si256(), vlast = _mm256_set1_epi32(n_buckets - 1);
    const __m256i vbuckets = _mm256_set1_epi32(n_buckets), nan_code = _mm256_set1_epi32(255);
    const __m256i low = _mm256_set1_epi32(CYOPTIM_LOW_MASK);
    const __m256i pack = _mm256_setr_epi8(0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
                                          0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1);
    for (; i + 8 <= n; i += 8) {
        __m256 y = _mm256_mul_ps(_mm256_loadu_ps(x + i), vinverse);
        __m256i u = _mm256_castps_si256(y);
        __m256i bucket = _mm256_sub_epi32(
            _mm256_srli_epi32(_mm256_and_si256(u, magnitude), CYOPTIM_BUCKET_SHIFT), vfirst);
        bucket = _mm256_min_epi32(_mm256_max_epi32(bucket, zero), vlast);
        /* negative y: the second half of the table */
        bucket = _mm256_add_epi32(bucket, _mm256_and_si256(_mm256_srai_epi32(u, 31), vbuckets));
        __m256i entry = _mm256_i32gather_epi32((const int*) table, bucket, 4);
        __m256 t = _mm256_castsi256_ps(_mm256_or_si256(_mm256_andnot_si256(low, u),
                                                       _mm256_and_si256(low, entry)));
        __m256i up = _mm256_castps_si256(_mm256_cmp_ps(t, y, _CMP_LT_OQ));   /* -1 where up */
        __m256i code = _mm256_sub_epi32(_mm256_srli_epi32(entry, CYOPTIM_BUCKET_SHIFT), up);
        code = _mm256_blendv_epi8(code, nan_code, _mm256_castps_si256(_mm256_cmp_ps(y, y, _CMP_UNORD_Q)));
        __m256i bytes = _mm256_shuffle_epi8(code, pack);
        uint32_t lo = (uint32_t) _mm256_extract_epi32(bytes, 0);
        uint32_t hi = (uint32_t) _mm256_extract_epi32(bytes, 4);
        memcpy(codes + i, &lo, 4);
        memcpy(codes + i + 4, &hi, 4);
    }
#endif
    for (; i < n; i++)
        codes[i] = cyoptim_code(x[i] * inverse, table, first_key, n_buckets);
}

/* out[i] = values[codes[i]] * absmax. */
static inline void cyoptim_dequantize(const uint8_t* codes, float absmax, const float* values,
                                      float* out, int64_t n) {
    int64_t i = 0;
#if defined(__AVX512F__)
    const __m512 scale = _mm512_set1_ps(absmax);
    for (; i + 16 <= n; i += 16) {
        __m512i index = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i*) (codes + i)));
        _mm512_storeu_ps(out + i, _mm512_mul_ps(_mm512_i32gather_ps(index, values, 4), scale));
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
