"""The first half of torch's Adam-family steps (RAdam, NAdam), shared by their twins."""

import numpy as np

from ._base import effective_grad, lerp_


def update_moments_(p, g, m, v, group, a, b):
    """Weight decay (decoupled: p *= 1 - lr*wd; else g + wd*p), maximize, then
    m = lerp(m, g, 1 - beta1) and v = v*beta2 + ((1 - beta2)*g)*g, in place.

    Returns the effective grad (``g`` itself or ``a``; ``b`` is scratch).
    """
    lr, wd = group["lr"], group["weight_decay"]
    beta1, beta2 = group["betas"]
    decoupled = group["decoupled_weight_decay"]
    if wd != 0 and decoupled:
        p *= 1 - lr * wd
    g = effective_grad(g, p, 0 if decoupled else wd, group["maximize"], a, b)
    lerp_(m, g, 1 - beta1, b)
    v *= beta2
    np.multiply(g, 1 - beta2, out=b)
    b *= g
    v += b
    return g
