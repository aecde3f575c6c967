# The kernel module, compiled once per SIMD variant (_kernels_<variant>.pyx).
#
# One kernel per algorithm; each is a def function taking a plan, the
# group's state blocks and its hyperparameters (keyword-only), and runs the
# whole group in one call with the GIL released. _optimizers.pxi is generated
# by setup.py from optimizers.pxi.tp and src/cyoptim/registry.py; it includes each
# algorithm's math (<name>.pxi). averaging.pxi holds the kernel of
# cyoptim.AveragedParams (EMA and SWA of the weights); lbfgs.pxi the vector
# work of cyoptim.LBFGS (dot products, axpy).

import numpy as np

include "common.pxi"
include "quantize.pxi"
include "staging.pxi"
include "plan.pxi"
include "tensor_plan.pxi"
include "reductions.pxi"
include "bfloat16.pxi"
include "lbfgs.pxi"
include "_optimizers.pxi"
include "bandwidth.pxi"
include "averaging.pxi"
