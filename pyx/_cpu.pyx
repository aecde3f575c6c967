# cython: language_level=3
"""CPU features and OpenMP facts, compiled once for the baseline target.

This module decides nothing: cyoptim._dispatch reads these facts to choose the
kernel variant, and cyoptim._threads to choose the default thread count.
"""

cdef extern from "compat.h":
    int cyoptim_openmp_enabled() nogil
    int cyoptim_omp_max_threads() nogil
    int cyoptim_cpu_has_avx2() nogil
    int cyoptim_cpu_has_avx512() nogil
    const char* CYOPTIM_BUILT_VARIANTS


def openmp_enabled():
    """True when this build was compiled with OpenMP."""
    return bool(cyoptim_openmp_enabled())


def omp_max_threads():
    """OpenMP's current maximum thread count (1 in a serial build)."""
    return cyoptim_omp_max_threads()


def cpu_supports():
    """The SIMD variants this CPU can run, best first."""
    variants = []
    if cyoptim_cpu_has_avx512():
        variants.append("avx512")
    if cyoptim_cpu_has_avx2():
        variants.append("avx2")
    variants.append("baseline")
    return variants


def intended_variants():
    """The variants setup.py compiled (all of them unless CYOPTIM_SIMD_VARIANTS limited it)."""
    return (<bytes> CYOPTIM_BUILT_VARIANTS).decode().split(",")
