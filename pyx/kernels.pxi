# The kernel module, compiled once per SIMD variant (_kernels_<variant>.pyx).
#
# One kernel per algorithm; each is a def function taking a GroupPlan, the
# group's state blocks and the step's scalars, and runs the whole group in one
# call with the GIL released. Keep this list in step with cyoptim/_dispatch.py.

import numpy as np

include "common.pxi"
include "plan.pxi"
include "sgd.pxi"
include "adam.pxi"
include "adagrad.pxi"
include "rmsprop.pxi"
include "adadelta.pxi"
include "adamax.pxi"
include "nadam.pxi"
include "radam.pxi"
include "lion.pxi"
include "reductions.pxi"
include "lamb.pxi"
include "bandwidth.pxi"
