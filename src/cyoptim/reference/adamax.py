"""NumPy reference of Adamax (see cyoptim.optimizers.adamax for the update rule)."""

import numpy as np

from ..optimizers import adamax as fast
from ._base import ReferenceMixin, effective_grad, lerp_


class Adamax(ReferenceMixin, fast.Adamax):
    """cyoptim.Adamax computed with NumPy ufuncs."""

    def _update(self, group, plan, blocks, grads, n_threads):
        lr, eps = group["lr"], group["eps"]
        beta1, beta2 = group["betas"]
        names = self._state_names(group)
        for _, p, g, state, step, (a, b, c) in self._tensors(plan, blocks, grads, names):
            g = effective_grad(g, p, group["weight_decay"], group["maximize"], a, b)
            m, u = state["exp_avg"], state["exp_inf"]
            lerp_(m, g, 1 - beta1, b)
            u *= beta2
            np.abs(g, out=b)
            b += eps
            np.maximum(u, b, out=u)  # NaN in either wins, as torch.maximum
            clr = lr / (1 - beta1**step)
            np.multiply(m, -clr, out=c)
            c /= u
            p += c
