"""What every reference optimizer needs: per-param views of state and scratch space."""

import numpy as np


class ReferenceMixin:
    """Mixed in before the fast class; gives NumPy code per-param arrays."""

    def _tensors(self, plan, blocks, grads, names):
        """Yield (k, param, grad, state, step, scratch) for each param with a grad.

        state maps each name in ``names`` to the param's view of that block;
        scratch is three arrays of the param's shape for temporaries.
        """
        cache = self.__dict__.setdefault("_reference_cache", {})
        key = id(plan)
        if key not in cache:
            cache[key] = [np.empty(plan.total_elements, plan.dtype) for _ in range(3)]
        flats = cache[key]
        views = {name: self._views(plan, blocks[name], name) for name in names}
        offsets = plan.offsets
        for k, grad in enumerate(grads):
            if grad is None:
                continue
            param = plan.params[k]
            lo, hi = offsets[k], offsets[k + 1]
            scratch = [flat[lo:hi].reshape(param.shape) for flat in flats]
            yield (
                k,
                param,
                grad,
                {name: views[name][k] for name in names},
                float(plan.steps[k]),
                scratch,
            )


def lerp_(start, end, weight, tmp):
    """start <- torch.lerp(start, end, weight), in place; tmp is scratch."""
    weight = start.dtype.type(weight)  # torch computes 1 - weight in this precision
    np.subtract(end, start, out=tmp)
    if abs(weight) < 0.5:
        tmp *= weight
        start += tmp
    else:
        tmp *= 1 - weight
        np.subtract(end, tmp, out=start)


def effective_grad(grad, param, weight_decay, maximize, out, tmp):
    """The grad torch's optimizers use: negated if maximize, plus weight_decay * param.

    Returns ``grad`` itself when neither applies, else ``out`` holding the result
    (``tmp`` is scratch). Same rounding as torch: grad + (wd * param).
    """
    if maximize:
        np.negative(grad, out=out)
        grad = out
    if weight_decay != 0:
        np.multiply(param, weight_decay, out=tmp)
        np.add(grad, tmp, out=out)
        grad = out
    return grad
