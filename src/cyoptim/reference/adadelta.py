"""NumPy reference of Adadelta (see cyoptim.optimizers.adadelta for the update rule)."""

import numpy as np

from ..optimizers import adadelta as fast
from ._base import ReferenceMixin, effective_grad


def _decay_add_square(avg, x, rho, tmp):
    """avg <- avg*rho + ((1 - rho)*x)*x, torch's mul_(rho).addcmul_(x, x, value=1 - rho)."""
    avg *= rho
    np.multiply(x, 1 - rho, out=tmp)
    tmp *= x
    avg += tmp


class Adadelta(ReferenceMixin, fast.Adadelta):
    """cyoptim.Adadelta computed with NumPy ufuncs."""

    def _update(self, group, plan, blocks, grads, n_threads):
        lr, rho, eps = group["lr"], group["rho"], group["eps"]
        names = self._state_names(group)
        for _, p, g, state, _, (a, b, c) in self._tensors(plan, blocks, grads, names):
            g = effective_grad(g, p, group["weight_decay"], group["maximize"], a, b)
            v, u = state["square_avg"], state["acc_delta"]
            _decay_add_square(v, g, rho, b)
            np.add(v, eps, out=b)
            np.sqrt(b, out=b)  # std
            np.add(u, eps, out=c)
            np.sqrt(c, out=c)  # delta
            c /= b
            c *= g
            _decay_add_square(u, c, rho, b)
            np.multiply(c, -lr, out=b)
            p += b
