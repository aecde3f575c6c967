# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# The avx2 build of the kernels: setup.py compiles this file with the avx2 target flags.
include "kernels.pxi"
