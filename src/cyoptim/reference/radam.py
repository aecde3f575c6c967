"""NumPy reference of RAdam (see cyoptim.optimizers.radam for the update rule)."""

import numpy as np

from ..optimizers import radam as fast
from ._adam_family import update_moments_
from ._base import ReferenceMixin


class RAdam(ReferenceMixin, fast.RAdam):
    """cyoptim.RAdam computed with NumPy ufuncs."""

    def _update(self, group, plan, blocks, grads, n_threads):
        lr, eps = group["lr"], group["eps"]
        beta1, beta2 = group["betas"]
        names = self._state_names(group)
        for _, p, g, state, step, (a, b, c) in self._tensors(plan, blocks, grads, names):
            m, v = state["exp_avg"], state["exp_avg_sq"]
            update_moments_(p, g, m, v, group, a, b)
            bias_correction1 = 1 - beta1**step
            bias_correction2 = 1 - beta2**step
            np.divide(m, bias_correction1, out=b)  # m_hat
            b *= lr
            rho_inf = 2 / (1 - beta2) - 1
            rho_t = rho_inf - 2 * step * (beta2**step) / bias_correction2
            if rho_t > 5.0:
                rect = (
                    (rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)
                ) ** 0.5
                np.sqrt(v, out=c)
                c += eps
                np.reciprocal(c, out=c)  # torch: float / tensor
                c *= bias_correction2**0.5
                b *= c
                b *= rect
            p -= b
