"""Adamax: Adam with the infinity norm in place of the second moment."""

from ..optimizer import Optimizer
from ..validation import validate_adam_family


class Adamax(Optimizer):
    r"""Adamax (Kingma & Ba, 2015, §7.1); the update of ``torch.optim.Adamax``.

    .. math::
        g_t &= \pm\nabla_\theta f_t(\theta_{t-1}) + \lambda\theta_{t-1} \\
        m_t &= \beta_1 m_{t-1} + (1-\beta_1) g_t \quad(\text{as } \mathrm{lerp}(m, g, 1-\beta_1)) \\
        u_t &= \max(\beta_2 u_{t-1},\ |g_t| + \epsilon) \\
        \theta_t &= \theta_{t-1} - \frac{\gamma}{1-\beta_1^t}\,\frac{m_t}{u_t}

    (the minus sign on the gradient when ``maximize``.) Only the step size is
    bias-corrected; the max is NaN when either side is NaN, as ``torch.maximum``.

    Args:
        params: arrays, or dicts with "params" and per-group overrides.
        lr (float): learning rate :math:`\gamma` (default 2e-3).
        betas (tuple): :math:`(\beta_1, \beta_2)` (default (0.9, 0.999)).
        eps (float): :math:`\epsilon`, added to :math:`|g_t|` inside the max
            (default 1e-8).
        weight_decay (float): L2 penalty :math:`\lambda` added to the gradient (default 0).
        maximize (bool): maximize the objective instead of minimizing it.

    State per param: ``step``, ``exp_avg`` (:math:`m`), ``exp_inf`` (:math:`u`).

    Example:
        >>> import numpy as np, cyoptim
        >>> w = np.zeros(3)
        >>> opt = cyoptim.Adamax([w], lr=0.1, eps=0.0)
        >>> opt.step([np.array([2.0, -0.5, 1.0])])
        >>> w
        array([-0.1,  0.1, -0.1])

    Warning:
        Epsilon differs between frameworks: torch, optax and this class take
        :math:`\max(\beta_2 u, |g| + \epsilon)`; Keras and TensorFlow take
        :math:`u = \max(\beta_2 u, |g|)` and divide by :math:`u + \epsilon`
        (Keras' default epsilon is 1e-7), so the first steps of a parameter with
        tiny gradients differ.

    Reference: Kingma & Ba, "Adam: A Method for Stochastic Optimization", §7.1,
    https://arxiv.org/abs/1412.6980
    """

    kernel = "adamax"

    def __init__(
        self,
        params,
        lr=2e-3,
        betas=(0.9, 0.999),
        eps=1e-8,
        weight_decay=0.0,
        *,
        maximize=False,
        master_weights=False,
        state_dtype=None,
        stochastic_rounding=False,
        seed=None,
    ):
        super().__init__(
            params,
            dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, maximize=maximize),
            master_weights=master_weights,
            state_dtype=state_dtype,
            stochastic_rounding=stochastic_rounding,
            seed=seed,
        )

    def _validate_hyperparameters(self, group):
        validate_adam_family(group)

    def _state_names(self, group):
        return ("exp_avg", "exp_inf")
