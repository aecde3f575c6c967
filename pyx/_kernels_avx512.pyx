# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# The avx512 build of the kernels: setup.py compiles this file with the avx512 target flags.
include "kernels.pxi"
