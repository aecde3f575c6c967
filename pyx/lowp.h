/* 16-bit storage: bfloat16 and float16 to and from float32, and the counter
 * hash of stochastic rounding. Plain C so that gcc vectorizes the loops that
 * call them (pyx/staging.pxi); every SIMD variant rounds the same way.
 *
 * bfloat16 is the top half of a float32. Rounding to nearest even is torch's
 * c10::BFloat16 conversion: add 0x7FFF plus the lowest kept bit, drop the low
 * 16 bits; NaN becomes torch's quiet NaN 0x7FC0.
 * float16 goes through _Float16 (gcc >= 12 on x86-64): one vcvtps2ph with
 * F16C, libgcc's correctly rounded conversion without it.
 */
#ifndef CYOPTIM_LOWP_H
#define CYOPTIM_LOWP_H

#include <stdint.h>
#include <string.h>

static inline float cyoptim_bf16_load(uint16_t h) {
    uint32_t bits = (uint32_t) h << 16;
    float x;
    memcpy(&x, &bits, sizeof x);
    return x;
}

static inline uint16_t cyoptim_bf16_round(float x) {
    uint32_t bits;
    memcpy(&bits, &x, sizeof bits);
    uint32_t rounded = (bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16;
    return x != x ? (uint16_t) 0x7FC0u : (uint16_t) rounded;
}

/* Unbiased stochastic rounding: add 16 random bits below the kept ones and
 * truncate, so x rounds up with probability (its distance from the lower
 * bfloat16) / (the gap). */
static inline uint16_t cyoptim_bf16_stochastic(float x, uint32_t random) {
    uint32_t bits;
    memcpy(&bits, &x, sizeof bits);
    uint32_t rounded = (bits + (random & 0xFFFFu)) >> 16;
    return x != x ? (uint16_t) 0x7FC0u : (uint16_t) rounded;
}

static inline float cyoptim_f16_load(uint16_t h) {
    _Float16 v;
    memcpy(&v, &h, sizeof v);
    return (float) v;
}

static inline uint16_t cyoptim_f16_round(float x) {
    _Float16 v = (_Float16) x;
    uint16_t h;
    memcpy(&h, &v, sizeof h);
    return h;
}

/* float16 runs: gcc does not vectorize _Float16 conversions without
 * AVX512-FP16, so with F16C they go 8 at a time through vcvtph2ps/vcvtps2ph
 * (the same roundings as one at a time). */
#ifdef __F16C__
#include <immintrin.h>
#endif

static inline void cyoptim_f16_load_n(const uint16_t* src, float* out, int64_t n) {
    int64_t i = 0;
#ifdef __F16C__
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(out + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i*) (src + i))));
#endif
    for (; i < n; i++)
        out[i] = cyoptim_f16_load(src[i]);
}

static inline void cyoptim_f16_round_n(const float* x, uint16_t* out, int64_t n) {
    int64_t i = 0;
#ifdef __F16C__
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i*) (out + i),
                         _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
#endif
    for (; i < n; i++)
        out[i] = cyoptim_f16_round(x[i]);
}

/* A 32-bit integer hash with full avalanche (two multiply-xorshift rounds,
 * the "lowbias32" constants): random bits from a counter, with no state. */
static inline uint32_t cyoptim_hash32(uint32_t x) {
    x ^= x >> 16;
    x *= 0x7FEB352Du;
    x ^= x >> 15;
    x *= 0x846CA68Bu;
    x ^= x >> 16;
    return x;
}

#endif
