"""NumPy reference of SGD (see cyoptim.optimizers.sgd for the update rule)."""

import numpy as np

from ..optimizers import sgd as fast
from ._base import ReferenceMixin, effective_grad


class SGD(ReferenceMixin, fast.SGD):
    """cyoptim.SGD computed with NumPy ufuncs."""

    def _update(self, group, plan, blocks, grads, n_threads):
        lr, momentum, dampening = group["lr"], group["momentum"], group["dampening"]
        names = self._state_names(group)
        started = blocks["momentum_started"]
        for k, p, g, state, _step, (a, b, _) in self._tensors(plan, blocks, grads, names):
            g = effective_grad(g, p, group["weight_decay"], group["maximize"], a, b)
            if momentum != 0:
                buf = state["momentum_buffer"]
                if not started[k]:
                    np.copyto(buf, g)
                    started[k] = 1
                else:
                    buf *= momentum
                    np.multiply(g, 1 - dampening, out=b)
                    buf += b
                if group["nesterov"]:
                    np.multiply(buf, momentum, out=b)
                    np.add(g, b, out=a)
                    g = a
                else:
                    g = buf
            np.multiply(g, -lr, out=b)
            p += b
