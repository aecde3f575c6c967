# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# The baseline build of the kernels: setup.py compiles this file with the baseline target flags.
include "kernels.pxi"
