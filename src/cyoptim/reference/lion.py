"""NumPy reference of Lion (see cyoptim.optimizers.lion for the update rule)."""

import numpy as np

from ..optimizers import lion as fast
from ._base import ReferenceMixin


class Lion(ReferenceMixin, fast.Lion):
    """cyoptim.Lion computed with NumPy ufuncs."""

    def _update(self, group, plan, blocks, grads, n_threads):
        lr, wd = group["lr"], group["weight_decay"]
        beta1, beta2 = group["betas"]
        for _, p, g, state, _, (a, b, c) in self._tensors(plan, blocks, grads, ("exp_avg",)):
            m = state["exp_avg"]
            if group["maximize"]:
                g = np.negative(g, out=a)
            np.multiply(g, 1 - beta1, out=b)
            np.multiply(m, beta1, out=c)
            b += c
            np.sign(b, out=b)
            if wd != 0:
                np.multiply(p, wd, out=c)
                b += c
            b *= -lr
            p += b
            m *= beta2
            np.multiply(g, 1 - beta2, out=c)
            m += c
