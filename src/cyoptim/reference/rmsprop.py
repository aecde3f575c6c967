"""NumPy reference of RMSprop (see cyoptim.optimizers.rmsprop for the update rule)."""

import numpy as np

from ..optimizers import rmsprop as fast
from ._base import ReferenceMixin, effective_grad, lerp_


class RMSprop(ReferenceMixin, fast.RMSprop):
    """cyoptim.RMSprop computed with NumPy ufuncs."""

    def _update(self, group, plan, blocks, grads, n_threads):
        lr, alpha, eps, momentum = group["lr"], group["alpha"], group["eps"], group["momentum"]
        names = self._state_names(group)
        for _, p, g, state, _, (a, b, c) in self._tensors(plan, blocks, grads, names):
            g = effective_grad(g, p, group["weight_decay"], group["maximize"], a, b)
            v = state["square_avg"]
            v *= alpha
            np.multiply(g, 1 - alpha, out=b)
            b *= g
            v += b
            if group["centered"]:
                ga = state["grad_avg"]
                lerp_(ga, g, 1 - alpha, b)
                np.multiply(ga, ga, out=b)
                np.subtract(v, b, out=c)
                np.sqrt(c, out=c)
            else:
                np.sqrt(v, out=c)
            c += eps
            if momentum > 0:
                buf = state["momentum_buffer"]
                buf *= momentum
                np.divide(g, c, out=b)
                buf += b
                np.multiply(buf, -lr, out=b)
            else:
                np.multiply(g, -lr, out=b)
                b /= c
            p += b
