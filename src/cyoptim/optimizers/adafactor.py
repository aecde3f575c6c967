"""Adafactor: second moments factored into row and column statistics."""

import numbers

from ..optimizer import Optimizer
from ..validation import validate_pair


class Adafactor(Optimizer):
    r"""Adafactor (Shazeer and Stern, 2018); the update of ``torch.optim.Adafactor``
    (torch 2.13).

    A param of two or more dims keeps its second moment as a row factor
    :math:`R` and a column factor :math:`C` of its last two dims (every
    leading dim is a batch of matrices): :math:`m + n` values per
    :math:`m \times n` matrix instead of :math:`mn`. A param of zero or one
    dim keeps an element-wise :math:`V`. The step size is relative to the
    param's RMS. Per param, at its step :math:`t`, with :math:`g_t` negated
    first when ``maximize``:

    .. math::
        \hat\beta_t &= 1 - t^{\tau}, \qquad \rho_t = \min(\gamma, 1/\sqrt{t}), \qquad
        \alpha_t = \max(\epsilon_2, \mathrm{RMS}(\theta_{t-1}))\, \rho_t \\
        \theta &\leftarrow \theta_{t-1}(1 - \gamma\lambda) \\
        R_t &= \mathrm{lerp}\bigl(R_{t-1}, \mathrm{mean}_j(g_t^2), 1-\hat\beta_t\bigr), \quad
        C_t = \mathrm{lerp}\bigl(C_{t-1}, \mathrm{mean}_i(g_t^2), 1-\hat\beta_t\bigr) \\
        \hat V_t &= \frac{R_t C_t}{\max(\mathrm{mean}_i(R_t), \epsilon_1)}
            \quad\text{(factored; else } \hat V_t = V_t =
            \mathrm{lerp}(V_{t-1}, g_t^2, 1-\hat\beta_t)\text{)} \\
        U_t &= g_t / \sqrt{\max(\hat V_t, \epsilon_1^2)} \\
        \theta_t &= \theta - \frac{\alpha_t}{\max(1, \mathrm{RMS}(U_t)/d)}\, U_t

    In torch's order of operations and roundings: in the param's precision,
    :math:`\mathrm{mean}_j(g^2)` is the row's 2-norm (rounded to the param's
    precision), squared, divided by :math:`n`; :math:`\hat V_t` is
    :math:`(R_i C_j) / m`; :math:`1/\sqrt{x}` is two roundings;
    :math:`\max(\hat V, \epsilon_1^2)` and :math:`\max(\mathrm{mean}, \epsilon_1)`
    keep a NaN (torch's ``clamp_``). In double: :math:`t^\tau`,
    :math:`\rho_t`, :math:`\alpha_t` and the final step :math:`-\alpha_t / \max(1, \cdot)`
    (:math:`\max` and :math:`\min` there are Python's: a NaN norm gives
    :math:`\epsilon_2` and 1), from norms rounded to the param's precision.
    Every norm, row, column and mean sum is computed in double and
    deterministically (fixed chunks and tiles combined in a fixed order), so
    results are bitwise the same for any thread count and agree with torch
    to the last bits of float rounding.

    Args:
        params: arrays, or dicts with "params" and per-group overrides.
        lr (float): :math:`\gamma`, the largest relative step size
            :math:`\rho_t`, and the weight decay's factor (default 1e-2).
        beta2_decay (float): :math:`\tau \le 0` (default -0.8).
        eps (tuple): :math:`(\epsilon_1, \epsilon_2)`; :math:`\epsilon_1` None
            means the machine epsilon of the params' dtype (default (None, 1e-3)).
        d (float): the clipping threshold of the update's RMS, :math:`\ge 1` (default 1).
        weight_decay (float): :math:`\lambda`, decoupled (default 0).
        maximize (bool): maximize the objective instead of minimizing it.

    State per param: ``step``; ``row_var`` (shape ``(..., m, 1)``) and
    ``col_var`` (shape ``(..., 1, n)``) for a param of shape ``(..., m, n)``,
    ``variance`` (the param's shape) for a param of zero or one dim: torch's
    names and shapes. Each is a view into one block per group.

    Example:
        >>> import numpy as np, cyoptim
        >>> w = np.ones((2, 3))
        >>> opt = cyoptim.Adafactor([w], lr=0.1)
        >>> opt.step([np.array([[1.0, 2.0, 2.0], [0.0, 0.0, 0.0]])])
        >>> opt.state[0]["row_var"].ravel(), opt.state[0]["col_var"].ravel()
        (array([3., 0.]), array([0.5, 2. , 2. ]))
        >>> w               # first step: V = g*g, so U = sign(g); alpha = RMS(w) * lr
        array([[0.9, 0.9, 0.9],
               [1. , 1. , 1. ]])

    Note:
        As torch's (and unlike the paper), ``lr`` caps :math:`\rho_t` and
        scales the weight decay, and :math:`\epsilon_1` is applied to the
        variance estimate and the update, not to the squared gradients.

    How it is computed: one kernel call per group, in three passes (norms and
    row and column sums; the update's RMS; the update), recomputing
    :math:`U_t` rather than storing it: no param-sized scratch memory.

    Reference: Shazeer and Stern, "Adafactor: Adaptive Learning Rates with
    Sublinear Memory Cost", https://arxiv.org/abs/1804.04235
    """

    kernel = "adafactor"

    def __init__(
        self,
        params,
        lr=1e-2,
        beta2_decay=-0.8,
        eps=(None, 1e-3),
        d=1.0,
        weight_decay=0.0,
        *,
        maximize=False,
    ):
        super().__init__(
            params,
            dict(
                lr=lr,
                beta2_decay=beta2_decay,
                eps=tuple(eps) if isinstance(eps, list) else eps,
                d=d,
                weight_decay=weight_decay,
                maximize=maximize,
            ),
        )

    def _validate_hyperparameters(self, group):
        if not 0.0 <= group["lr"]:
            raise ValueError(f"Learning rate should be >= 0 but is: {group['lr']}")
        if not 0.0 >= group["beta2_decay"]:
            raise ValueError(f"beta2_decay should be <= 0 but is: {group['beta2_decay']}")
        eps = group["eps"]
        if isinstance(eps, (str, bytes)) or not hasattr(eps, "__len__") or len(eps) != 2:
            raise ValueError(f"eps must be a pair (eps1 or None, eps2), got {eps!r}")
        eps1, _ = eps
        if eps1 is not None and not isinstance(eps1, numbers.Real):
            raise TypeError(f"eps1 must be a float or None, got {eps1!r}")
        if eps1 is not None and not 0.0 <= eps1:
            raise ValueError(f"epsilon1 should be >= 0 but is: {eps1}")
        validate_pair({"eps": (0.0, eps[1])}, "eps")
        if not 0.0 <= eps[1]:
            raise ValueError(f"epsilon2 should be >= 0 but is: {eps[1]}")
        if not 1.0 <= group["d"]:
            raise ValueError(f"Clipping threshold d should be >= 1 but is: {group['d']}")
        if not 0.0 <= group["weight_decay"]:
            raise ValueError(f"weight_decay should be >= 0 but is: {group['weight_decay']}")

    def _state_names(self, group):
        return ("row_var", "col_var", "variance")

    def _state_shape(self, name, shape):
        shape = tuple(shape)
        if len(shape) < 2:
            return shape if name == "variance" else None
        if name == "row_var":
            return shape[:-1] + (1,)
        if name == "col_var":
            return shape[:-2] + (1, shape[-1])
        return None
