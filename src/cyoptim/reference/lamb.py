"""NumPy reference of LAMB (see cyoptim.optimizers.lamb for the update rule)."""

import math

import numpy as np

from ..optimizers import lamb as fast
from ._base import ReferenceMixin
from ._chunks import sum_sq


class LAMB(ReferenceMixin, fast.LAMB):
    """cyoptim.LAMB computed with NumPy ufuncs (norms: the kernels' chunked sums)."""

    def _update(self, group, plan, blocks, grads, n_threads):
        lr, eps, wd = group["lr"], group["eps"], group["weight_decay"]
        beta1, beta2 = group["betas"]
        names = ("exp_avg", "exp_avg_sq")
        for _, p, g, state, step, (u, b, _) in self._tensors(plan, blocks, grads, names):
            m, v = state["exp_avg"], state["exp_avg_sq"]
            if group["maximize"]:
                g = np.negative(g, out=b)
            np.multiply(g, 1 - beta1, out=u)
            m *= beta1
            m += u
            np.multiply(g, g, out=u)
            u *= 1 - beta2
            v *= beta2
            v += u
            np.divide(v, 1 - beta2**step, out=b)
            np.sqrt(b, out=b)
            b += eps
            np.divide(m, 1 - beta1**step, out=u)
            u /= b
            if wd != 0:
                np.multiply(p, wd, out=b)
                u += b
            param_norm, update_norm = math.sqrt(sum_sq(p)), math.sqrt(sum_sq(u))
            ratio = 1.0 if param_norm == 0 or update_norm == 0 else param_norm / update_norm
            u *= -(lr * ratio)
            p += u
