"""NumPy reference of ASGD (see cyoptim.optimizers.asgd for the update rule)."""

import numpy as np

from ..optimizers import asgd as fast
from ._base import ReferenceMixin, effective_grad


class ASGD(ReferenceMixin, fast.ASGD):
    """cyoptim.ASGD computed with NumPy ufuncs."""

    def _update(self, group, plan, blocks, grads, n_threads):
        lr, lambd, alpha, t0 = group["lr"], group["lambd"], group["alpha"], group["t0"]
        etas, mus = blocks["eta"], blocks["mu"]
        for k, p, g, state, step, (a, b, _) in self._tensors(plan, blocks, grads, ("ax",)):
            if step == 1:  # the state torch creates now
                etas[k], mus[k] = float(np.float32(lr)), 1.0
            eta, mu = float(etas[k]), float(mus[k])
            g = effective_grad(g, p, group["weight_decay"], group["maximize"], a, b)
            p *= 1 - lambd * eta
            np.multiply(g, -eta, out=b)
            p += b
            ax = state["ax"]
            if mu != 1:
                np.subtract(p, ax, out=b)
                b *= mu
                ax += b
            else:
                np.copyto(ax, p)
            # torch's float32 scalar tensors: eta.copy_(...), mu.copy_(...)
            etas[k] = float(np.float32(lr / ((1 + lambd * lr * step) ** alpha)))
            mus[k] = float(np.float32(1 / max(1, step - t0)))
