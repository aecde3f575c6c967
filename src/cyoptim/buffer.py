"""ParamBuffer: all params of a model as views of one contiguous block."""

import math

import numpy as np

from .optimizer import SUPPORTED_DTYPES, aligned_zeros


class ParamBuffer:
    """Allocate params (and their grads) as views of two contiguous blocks.

    An optimizer over ``buffer.params`` sees that the params lie back to back,
    and when it is stepped with ``buffer.grads`` it updates the whole group in
    one long kernel loop: the fastest layout for models with many small arrays.

    Args:
        shapes: one shape (tuple or int) per param.
        dtype: float32 (default) or float64.

    Attributes:
        params: list of arrays, one per shape, views into ``data``.
        grads: list of arrays, one per shape, views into ``grad_data``.
        data, grad_data: the two flat blocks (64-byte aligned).

    Example:
        >>> import numpy as np, cyoptim
        >>> buf = cyoptim.ParamBuffer([(784, 256), (256,)])
        >>> W, b = buf.params
        >>> opt = cyoptim.Adam(buf.params, lr=1e-3)
        >>> buf.grads[0][:] = 0.1; buf.grads[1][:] = 0.1   # your backward pass writes here
        >>> opt.step(buf.grads)
    """

    def __init__(self, shapes, dtype=np.float32):
        dtype = np.dtype(dtype)
        if dtype not in SUPPORTED_DTYPES:
            raise TypeError(f"ParamBuffer dtype must be float32 or float64, got {dtype}")
        self.shapes = [self._shape(s, i) for i, s in enumerate(shapes)]
        if not self.shapes:
            raise ValueError("ParamBuffer needs at least one shape")
        sizes = [math.prod(s) for s in self.shapes]
        self.offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        self.size = int(self.offsets[-1])
        self.dtype = dtype
        self.data = aligned_zeros(self.size, dtype)
        self.grad_data = aligned_zeros(self.size, dtype)
        self.params = self._split(self.data)
        self.grads = self._split(self.grad_data)

    @staticmethod
    def _shape(shape, index):
        shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
        if any(not isinstance(d, (int, np.integer)) or d < 0 for d in shape):
            raise ValueError(f"shape {index} must be a tuple of non-negative ints, got {shape!r}")
        return tuple(int(d) for d in shape)

    def _split(self, block):
        return [
            block[self.offsets[k] : self.offsets[k + 1]].reshape(shape)
            for k, shape in enumerate(self.shapes)
        ]

    def zero_grad(self):
        """Set every grad to zero (one memset over the grad block)."""
        self.grad_data.fill(0)

    def __len__(self):
        return len(self.shapes)

    def __repr__(self):
        return f"ParamBuffer({len(self.shapes)} arrays, {self.size} {self.dtype} elements)"
