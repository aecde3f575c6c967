"""NumPy reference of NAdam (see cyoptim.nadam for the update rule)."""

import numpy as np

from .. import nadam as fast
from ._base import ReferenceMixin, effective_grad, lerp_


class NAdam(ReferenceMixin, fast.NAdam):
    """cyoptim.NAdam computed with NumPy ufuncs."""

    def _update(self, group, plan, blocks, grads, n_threads):
        lr, eps, wd = group["lr"], group["eps"], group["weight_decay"]
        beta1, beta2 = group["betas"]
        momentum_decay, decoupled = group["momentum_decay"], group["decoupled_weight_decay"]
        mu_products = self._mu_products[self._group_index(plan)]
        names = self._state_names(group)
        for k, p, g, state, step, (a, b, c) in self._tensors(plan, blocks, grads, names):
            bias_correction2 = 1 - beta2 ** step
            if wd != 0 and decoupled:
                p *= 1 - lr * wd
            g = effective_grad(g, p, 0 if decoupled else wd, group["maximize"], a, b)
            mu = beta1 * (1.0 - 0.5 * (0.96 ** (step * momentum_decay)))
            mu_next = beta1 * (1.0 - 0.5 * (0.96 ** ((step + 1) * momentum_decay)))
            # torch's float32 scalar tensor: mu_product *= mu
            mu_product = float(np.float32(mu_products[k]) * np.float32(mu))
            mu_products[k] = mu_product
            m, v = state["exp_avg"], state["exp_avg_sq"]
            lerp_(m, g, 1 - beta1, b)
            v *= beta2
            np.multiply(g, 1 - beta2, out=b)
            b *= g
            v += b
            np.divide(v, bias_correction2, out=c)
            np.sqrt(c, out=c)
            c += eps
            np.multiply(g, -lr * (1.0 - mu) / (1.0 - mu_product), out=b)
            b /= c
            p += b
            np.multiply(m, (-lr * mu_next) / (1.0 - mu_product * mu_next), out=b)
            b /= c
            p += b
