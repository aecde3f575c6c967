"""NumPy reference of Muon (see cyoptim.optimizers.muon for the update rule)."""

import math

import numpy as np

from ..optimizers import muon as fast
from ._base import ReferenceMixin
from ._chunks import sum_sq
from ._fma import fma, fma32, lerp_fused_

bf16 = fast.round_bfloat16


def newton_schulz(u, coefficients, steps, eps):
    """torch's _zeropower_via_newtonschulz in NumPy: bfloat16 values in float32
    arrays, rounded where torch rounds; the same matrix products as cyoptim.Muon
    (so the same BLAS calls). Returns a new float32 array of u's shape."""
    a, b, c = (np.float32(v) for v in coefficients)
    x = bf16(u)
    tall = x.shape[0] > x.shape[1]
    if x.size == 0:
        return x
    x = bf16(x / np.float32(fast.normalizer(math.sqrt(sum_sq(x)), eps)))
    for _ in range(steps):
        w = x.T if tall else x  # torch iterates on the wide matrix w
        gram = bf16(w @ w.T)
        poly = bf16(fma32(b, gram, c * (gram @ gram.T)))  # torch's addmm: an fma
        # (a w + poly w), kept in x's layout: for a tall x, w = x^T and poly is
        # symmetric, so (poly w)^T = x poly.
        x = bf16(fma32(a, x, x @ poly if tall else poly @ x))
    return x


class Muon(ReferenceMixin, fast.Muon):
    """cyoptim.Muon computed with NumPy ufuncs and matmul."""

    def _update(self, group, plan, blocks, grads, n_threads):
        lr, momentum = group["lr"], group["momentum"]
        decay = 1 - lr * group["weight_decay"]
        for _, p, g, state, _, (u, _tmp, _) in self._tensors(
            plan, blocks, grads, ("momentum_buffer",)
        ):
            buf = state["momentum_buffer"]
            lerp_fused_(buf, g, 1 - momentum)
            if group["nesterov"]:
                np.copyto(u, g)
                lerp_fused_(u, buf, momentum)
            else:
                np.copyto(u, buf)
            ortho = newton_schulz(u, group["ns_coefficients"], group["ns_steps"], group["eps"])
            p *= p.dtype.type(decay)
            # torch's param.add_(update, alpha=-adjusted_lr): one fused multiply-add.
            neg_lr = p.dtype.type(-(lr * fast.lr_ratio(group["adjust_lr_fn"], p.shape)))
            p[...] = fma(neg_lr, ortho.astype(p.dtype, copy=False), p)
