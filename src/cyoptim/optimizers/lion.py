"""Lion: evolved sign momentum."""

from ..optimizer import Optimizer
from ..validation import validate_adam_family


class Lion(Optimizer):
    r"""Lion (Chen et al., 2023): the sign of an interpolated momentum.

    Per element, in the param's precision, in this order (optax's ``lion``):

    .. math::
        c_t &= (1-\beta_1)\, g_t + \beta_1 m_{t-1} \\
        \theta_t &= \theta_{t-1} + (-\gamma)\,\bigl(\mathrm{sign}(c_t)
                    + \lambda\theta_{t-1}\bigr) \\
        m_t &= (1-\beta_2)\, g_t + \beta_2 m_{t-1}

    with :math:`g_t` negated first when ``maximize``. ``sign`` is NumPy's:
    :math:`\pm 1`, :math:`+0` for a zero :math:`c_t` (so such an element only
    decays), and NaN for NaN (a NaN grad makes that param element NaN). The
    :math:`\lambda\theta` term is skipped when :math:`\lambda = 0`.

    Args:
        params: arrays, or dicts with "params" and per-group overrides.
        lr (float): learning rate :math:`\gamma` (default 1e-4).
        betas (tuple): :math:`(\beta_1, \beta_2)`: the interpolation used for
            the update and the decay of the momentum (default (0.9, 0.99)).
        weight_decay (float): :math:`\lambda`, decoupled: it scales with
            :math:`\gamma` (default 0).
        maximize (bool): maximize the objective instead of minimizing it.

    State per param: ``exp_avg`` (the momentum :math:`m`) only: Lion keeps no
    step count, so ``state_dict`` has no ``step`` entry.

    Example:
        >>> import numpy as np, cyoptim
        >>> w = np.zeros(3)
        >>> opt = cyoptim.Lion([w], lr=0.1)
        >>> opt.step([np.array([2.0, -0.5, 0.0])])
        >>> w
        array([-0.1,  0.1,  0. ])

    Warning:
        Every element moves by exactly :math:`\gamma` per step, so the update
        has a larger norm than Adam's: the paper recommends a learning rate
        3-10x smaller than AdamW's and a weight decay 3-10x larger (to keep
        :math:`\gamma\lambda` similar). torch has no Lion; lucidrains'
        lion-pytorch multiplies :math:`\theta` by :math:`1-\gamma\lambda`
        before the update (same math, other rounding), and ``torch.sign``
        maps NaN to 0 where this class (like NumPy and JAX) keeps NaN.

    Reference: Chen et al., "Symbolic Discovery of Optimization Algorithms",
    https://arxiv.org/abs/2302.06675
    """

    kernel = "lion"

    _exports_step = False

    def __init__(
        self,
        params,
        lr=1e-4,
        betas=(0.9, 0.99),
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
            dict(lr=lr, betas=tuple(betas), weight_decay=weight_decay, maximize=maximize),
            master_weights=master_weights,
            state_dtype=state_dtype,
            stochastic_rounding=stochastic_rounding,
            seed=seed,
        )

    def _validate_hyperparameters(self, group):
        validate_adam_family(dict(group, eps=0.0))  # Lion has no epsilon

    def _state_names(self, group):
        return ("exp_avg",)
