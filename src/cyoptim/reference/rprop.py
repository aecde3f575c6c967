"""NumPy reference of Rprop (see cyoptim.optimizers.rprop for the update rule)."""

import numpy as np

from ..optimizers import rprop as fast
from ._base import ReferenceMixin


def torch_sign(x, out):
    """out <- torch.sign(x): -1, 0 or 1, and 0 for NaN (np.sign keeps NaN)."""
    np.subtract(x > 0, x < 0, out=out, dtype=out.dtype)
    return out


class Rprop(ReferenceMixin, fast.Rprop):
    """cyoptim.Rprop computed with NumPy ufuncs."""

    def _update(self, group, plan, blocks, grads, n_threads):
        etaminus, etaplus = group["etas"]
        step_size_min, step_size_max = group["step_sizes"]
        for _, p, g, state, step, (a, b, c) in self._tensors(
            plan, blocks, grads, ("prev", "step_size")
        ):
            real = p.dtype.type
            prev, step_size = state["prev"], state["step_size"]
            if group["maximize"]:
                g = np.negative(g, out=a)
            np.multiply(g, prev, out=b)
            factor = c
            factor.fill(1)
            factor[b > 0] = real(etaplus)
            factor[b < 0] = real(etaminus)
            if step == 1:  # the state torch creates now
                step_size.fill(real(group["lr"]))
            step_size *= factor
            np.copyto(step_size, real(step_size_min), where=step_size <= real(step_size_min))
            np.copyto(step_size, real(step_size_max), where=step_size >= real(step_size_max))
            np.copyto(prev, g)
            prev[factor == real(etaminus)] = 0
            update = torch_sign(prev, out=b)
            np.negative(update, out=update)
            update *= step_size
            p += update
