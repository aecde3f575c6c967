"""NumPy reference of Adagrad (see cyoptim.optimizers.adagrad for the update rule)."""

import numpy as np

from ..optimizers import adagrad as fast
from ._base import ReferenceMixin, effective_grad


class Adagrad(ReferenceMixin, fast.Adagrad):
    """cyoptim.Adagrad computed with NumPy ufuncs."""

    def _update(self, group, plan, blocks, grads, n_threads):
        lr, lr_decay, eps = group["lr"], group["lr_decay"], group["eps"]
        for _, p, g, state, step, (a, b, c) in self._tensors(plan, blocks, grads, ("sum",)):
            g = effective_grad(g, p, group["weight_decay"], group["maximize"], a, b)
            s = state["sum"]
            np.multiply(g, g, out=b)
            s += b
            clr = lr / (1 + (step - 1) * lr_decay)
            np.sqrt(s, out=c)
            c += eps
            np.multiply(g, -clr, out=b)
            b /= c
            p += b
