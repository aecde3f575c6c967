"""NumPy reference of Adam and AdamW (see cyoptim.optimizers.adam for the update rule)."""

import numpy as np

from ..optimizers import adam as fast
from ._base import ReferenceMixin, effective_grad, lerp_


class Adam(ReferenceMixin, fast.Adam):
    """cyoptim.Adam computed with NumPy ufuncs."""

    def _update(self, group, plan, blocks, grads, n_threads):
        lr, eps, wd = group["lr"], group["eps"], group["weight_decay"]
        beta1, beta2 = group["betas"]
        amsgrad, decoupled = group["amsgrad"], group["decoupled_weight_decay"]
        names = self._state_names(group)
        for _, p, g, state, step, (a, b, c) in self._tensors(plan, blocks, grads, names):
            if wd != 0 and decoupled:
                p *= 1 - lr * wd
            g = effective_grad(g, p, 0 if decoupled else wd, group["maximize"], a, b)
            m, v = state["exp_avg"], state["exp_avg_sq"]
            lerp_(m, g, 1 - beta1, b)
            v *= beta2
            np.multiply(g, 1 - beta2, out=b)
            b *= g
            v += b
            if amsgrad:
                np.maximum(state["max_exp_avg_sq"], v, out=state["max_exp_avg_sq"])
                v = state["max_exp_avg_sq"]
            step_size = lr / (1 - beta1**step)
            bias_correction2_sqrt = (1 - beta2**step) ** 0.5
            np.sqrt(v, out=c)
            c /= bias_correction2_sqrt
            c += eps
            np.multiply(m, -step_size, out=b)
            b /= c
            p += b


class AdamW(Adam, fast.AdamW):
    """cyoptim.AdamW computed with NumPy ufuncs."""

    __init__ = fast.AdamW.__init__
