"""A small multilayer perceptron in NumPy, with its backward pass written by hand.

The model is what the demo trains: fully connected layers, ReLU or tanh between
them, softmax cross-entropy on top. Its params live in one
:class:`cyoptim.ParamBuffer`, so an optimizer over ``model.params`` steps the
whole model in one kernel call, and the backward pass writes straight into
``model.grads`` (the buffer's grad views) with ``out=`` and in-place ufuncs.
Intermediate arrays are allocated once per batch size and reused, so a
training step spends its time in arithmetic rather than in the allocator.

Layout: params are ``[W1, b1, W2, b2, ...]`` with ``W`` of shape
``(fan_in, fan_out)``; a layer computes ``x @ W + b``.
"""

import numpy as np

from ..buffer import ParamBuffer

ACTIVATIONS = ("relu", "tanh")


class _Workspace:
    """The intermediate arrays of one forward/backward pass over n rows."""

    def __init__(self, n, sizes, dtype):
        # hidden[l]: layer l's output, activated in place (the logits for the last layer).
        self.hidden = [np.empty((n, width), dtype) for width in sizes[1:]]
        # delta[l]: d loss / d hidden[l] for the hidden layers; probs: for the logits.
        self.delta = [np.empty((n, width), dtype) for width in sizes[1:-1]]
        self.scratch = [np.empty((n, width), dtype) for width in sizes[1:-1]]
        self.probs = np.empty((n, sizes[-1]), dtype)
        self.row_max = np.empty((n, 1), dtype)
        self.row_sum = np.empty((n, 1), dtype)
        self.rows = np.arange(n)


class MLP:
    """A fully connected network with softmax cross-entropy loss.

    Args:
        sizes: layer widths, input first and number of classes last
            (default ``(64, 128, 64, 10)`` for 8x8 digits).
        activation: ``"relu"`` (He init) or ``"tanh"`` (Glorot init).
        dtype: float32 (default) or float64.
        seed: seeds the initial weights; the same seed gives the same model.

    Attributes:
        buffer: the :class:`cyoptim.ParamBuffer` holding params and grads.
        params, grads: ``buffer.params`` and ``buffer.grads``, ``[W1, b1, ...]``.

    Example:
        >>> import numpy as np, cyoptim
        >>> from cyoptim.examples import MLP
        >>> model = MLP(sizes=(4, 8, 3), seed=0)
        >>> opt = cyoptim.Adam(model.params, lr=1e-2)
        >>> x = np.ones((5, 4), np.float32); y = np.array([0, 1, 2, 0, 1])
        >>> loss = model.loss_and_grad(x, y)     # fills model.grads
        >>> opt.step(model.grads)                # one kernel call for the whole model
    """

    def __init__(self, sizes=(64, 128, 64, 10), activation="relu", dtype=np.float32, seed=0):
        sizes = tuple(int(s) for s in sizes)
        if len(sizes) < 2 or min(sizes) < 1:
            raise ValueError(f"sizes must list at least two positive widths, got {sizes}")
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
        self.sizes = sizes
        self.activation = activation
        shapes = []
        for fan_in, fan_out in zip(sizes, sizes[1:]):
            shapes += [(fan_in, fan_out), (fan_out,)]
        self.buffer = ParamBuffer(shapes, dtype)
        self.dtype = self.buffer.dtype
        self.params = self.buffer.params
        self.grads = self.buffer.grads
        self._workspaces = {}
        self.reset(seed)

    @property
    def n_layers(self):
        return len(self.sizes) - 1

    def reset(self, seed):
        """Draw the initial weights from `seed` (biases zero).

        He normal init (std ``sqrt(2 / fan_in)``) for ReLU, Glorot normal
        (std ``sqrt(2 / (fan_in + fan_out))``) for tanh. Drawn in float64 and
        rounded, so float32 and float64 models start from the same values.
        """
        rng = np.random.default_rng(seed)
        for W, b in zip(self.params[0::2], self.params[1::2]):
            fan_in, fan_out = W.shape
            fan = fan_in if self.activation == "relu" else fan_in + fan_out
            W[...] = rng.standard_normal(W.shape) * np.sqrt(2.0 / fan)
            b[...] = 0

    def _workspace(self, n):
        ws = self._workspaces.get(n)
        if ws is None:
            ws = self._workspaces[n] = _Workspace(n, self.sizes, self.dtype)
        return ws

    def _check_input(self, x):
        x = np.ascontiguousarray(x, dtype=self.dtype)
        if x.ndim != 2 or x.shape[1] != self.sizes[0]:
            raise ValueError(f"x must have shape (n, {self.sizes[0]}), got {x.shape}")
        return x

    def _forward(self, x):
        """Fill the workspace's hidden arrays; return the workspace (logits = hidden[-1])."""
        ws = self._workspace(x.shape[0])
        a = x
        for l in range(self.n_layers):
            W, b, h = self.params[2 * l], self.params[2 * l + 1], ws.hidden[l]
            np.matmul(a, W, out=h)
            h += b
            if l < self.n_layers - 1:
                if self.activation == "relu":
                    np.maximum(h, 0, out=h)
                else:
                    np.tanh(h, out=h)
            a = h
        return ws

    def forward(self, x):
        """The logits for inputs `x` of shape (n, sizes[0]), as a new array."""
        return self._forward(self._check_input(x)).hidden[-1].copy()

    def _softmax_cross_entropy(self, ws, y):
        """Mean cross-entropy; leaves the softmax probabilities in ws.probs."""
        logits, probs = ws.hidden[-1], ws.probs
        # ufunc.reduce with out= is the cheapest form for these small arrays.
        np.maximum.reduce(logits, axis=1, keepdims=True, out=ws.row_max)
        np.subtract(logits, ws.row_max, out=probs)
        picked = float(probs[ws.rows, y].sum())  # sum of the true classes' shifted logits
        np.exp(probs, out=probs)
        np.add.reduce(probs, axis=1, keepdims=True, out=ws.row_sum)
        probs /= ws.row_sum
        np.log(ws.row_sum, out=ws.row_sum)
        return (float(ws.row_sum.sum()) - picked) / len(y)

    def _check_labels(self, y, n):
        y = np.asarray(y)
        if y.shape != (n,) or not np.issubdtype(y.dtype, np.integer):
            raise ValueError(f"y must be {n} integer class labels, got {y.dtype} {y.shape}")
        if n and (y.min() < 0 or y.max() >= self.sizes[-1]):
            raise ValueError(
                f"labels must lie in [0, {self.sizes[-1]}), got [{y.min()}, {y.max()}]"
            )
        return y

    def loss(self, x, y):
        """Mean softmax cross-entropy of the model on (x, y); grads untouched."""
        x = self._check_input(x)
        y = self._check_labels(y, x.shape[0])
        return self._softmax_cross_entropy(self._forward(x), y)

    def loss_and_grad(self, x, y):
        """Mean softmax cross-entropy on (x, y); writes its gradient into ``self.grads``.

        Every grad is overwritten (not accumulated), so no zero_grad is needed.
        """
        x = self._check_input(x)
        n = x.shape[0]
        y = self._check_labels(y, n)
        ws = self._forward(x)
        loss = self._softmax_cross_entropy(ws, y)
        d = ws.probs  # d loss / d logits = (softmax - onehot) / n
        d[ws.rows, y] -= 1
        d *= self.dtype.type(1.0 / n)
        for l in reversed(range(self.n_layers)):
            a_prev = x if l == 0 else ws.hidden[l - 1]
            np.matmul(a_prev.T, d, out=self.grads[2 * l])
            np.sum(d, axis=0, out=self.grads[2 * l + 1])
            if l == 0:
                break
            d_prev = ws.delta[l - 1]
            np.matmul(d, self.params[2 * l].T, out=d_prev)
            self._activation_backward(a_prev, d_prev, ws.scratch[l - 1])
            d = d_prev
        return loss

    def _activation_backward(self, h, d, scratch):
        """d *= activation'(pre-activation), from the activated output h."""
        if self.activation == "relu":
            np.greater(h, 0, out=scratch)  # relu'(z) = [z > 0] = [h > 0]
        else:
            np.multiply(h, h, out=scratch)  # tanh'(z) = 1 - h^2
            np.subtract(1, scratch, out=scratch)
        d *= scratch

    def predict(self, x):
        """The predicted class of every row of x."""
        return np.argmax(self._forward(self._check_input(x)).hidden[-1], axis=1)

    def accuracy(self, x, y):
        """The fraction of rows of x whose predicted class is y."""
        return float(np.mean(self.predict(x) == np.asarray(y)))

    def __repr__(self):
        return (
            f"MLP(sizes={self.sizes}, activation={self.activation!r}, "
            f"dtype={self.dtype}, params={self.buffer.size})"
        )
