"""NumPy reference of NAdam (see cyoptim.optimizers.nadam for the update rule)."""

import numpy as np

from ..optimizers import nadam as fast
from ._adam_family import update_moments_
from ._base import ReferenceMixin


class NAdam(ReferenceMixin, fast.NAdam):
    """cyoptim.NAdam computed with NumPy ufuncs."""

    def _update(self, group, plan, blocks, grads, n_threads):
        lr, eps = group["lr"], group["eps"]
        beta1, beta2 = group["betas"]
        momentum_decay = group["momentum_decay"]
        mu_products = blocks["mu_product"]
        names = self._state_names(group)
        for k, p, g, state, step, (a, b, c) in self._tensors(plan, blocks, grads, names):
            m, v = state["exp_avg"], state["exp_avg_sq"]
            g = update_moments_(p, g, m, v, group, a, b)
            mu = beta1 * (1.0 - 0.5 * (0.96 ** (step * momentum_decay)))
            mu_next = beta1 * (1.0 - 0.5 * (0.96 ** ((step + 1) * momentum_decay)))
            # torch's float32 scalar tensor: mu_product *= mu
            mu_product = float(np.float32(mu_products[k]) * np.float32(mu))
            mu_products[k] = mu_product
            np.divide(v, 1 - beta2**step, out=c)
            np.sqrt(c, out=c)
            c += eps
            np.multiply(g, -lr * (1.0 - mu) / (1.0 - mu_product), out=b)
            b /= c
            p += b
            np.multiply(m, (-lr * mu_next) / (1.0 - mu_product * mu_next), out=b)
            b /= c
            p += b
