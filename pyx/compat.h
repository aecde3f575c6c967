/* Build-time facts the Cython kernels need, with fallbacks so that every
 * configuration compiles: OpenMP may be missing (serial build), and CPU
 * feature probes exist only on x86 with GCC or Clang. */
#ifndef CYOPTIM_COMPAT_H
#define CYOPTIM_COMPAT_H

#ifdef _OPENMP
#include <omp.h>
static inline int cyoptim_openmp_enabled(void) { return 1; }
static inline int cyoptim_omp_max_threads(void) { return omp_get_max_threads(); }
#else
static inline int cyoptim_openmp_enabled(void) { return 0; }
static inline int cyoptim_omp_max_threads(void) { return 1; }
#endif

#ifndef CYOPTIM_BUILT_VARIANTS
#define CYOPTIM_BUILT_VARIANTS "baseline"
#endif

#if (defined(__x86_64__) || defined(_M_X64)) && (defined(__GNUC__) || defined(__clang__))
/* __builtin_cpu_supports also checks that the OS saves the wide registers. */
static inline int cyoptim_cpu_has_avx2(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")
        && __builtin_cpu_supports("f16c");
}
static inline int cyoptim_cpu_has_avx512(void) {
    __builtin_cpu_init();
    return cyoptim_cpu_has_avx2() && __builtin_cpu_supports("avx512f")
        && __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw")
        && __builtin_cpu_supports("avx512dq");
}
#else
static inline int cyoptim_cpu_has_avx2(void) { return 0; }
static inline int cyoptim_cpu_has_avx512(void) { return 0; }
#endif

#endif
