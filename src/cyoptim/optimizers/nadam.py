"""NAdam: Adam with Nesterov momentum and a momentum schedule."""

from ..optimizer import Optimizer, TensorState
from ..validation import validate_adam_family


class NAdam(Optimizer):
    r"""NAdam (Dozat, 2016); the update of ``torch.optim.NAdam``.

    .. math::
        \theta &\leftarrow \theta (1 - \gamma\lambda) \quad\text{(decoupled decay)}, \qquad
        g_t \leftarrow g_t + \lambda\theta \quad\text{(coupled decay)} \\
        \mu_t &= \beta_1 \left(1 - \tfrac12\, 0.96^{t\psi}\right), \qquad
        \mu_{t+1} = \beta_1 \left(1 - \tfrac12\, 0.96^{(t+1)\psi}\right), \qquad
        \Pi_t = \Pi_{t-1}\,\mu_t \\
        m_t &= \beta_1 m_{t-1} + (1-\beta_1) g_t \quad(\text{as } \mathrm{lerp}(m, g, 1-\beta_1)) \\
        v_t &= \beta_2 v_{t-1} + (1-\beta_2) g_t^2, \qquad
        d_t = \sqrt{v_t / (1-\beta_2^t)} + \epsilon \\
        \theta_t &= \theta_{t-1} - \gamma\,\frac{1-\mu_t}{1-\Pi_t}\,\frac{g_t}{d_t}
                    - \gamma\,\frac{\mu_{t+1}}{1-\Pi_t\,\mu_{t+1}}\,\frac{m_t}{d_t}

    (the gradient negated first when ``maximize``; the two parameter updates
    are applied one after the other, as torch does.)

    Args:
        params: arrays, or dicts with "params" and per-group overrides.
        lr (float): learning rate :math:`\gamma` (default 2e-3).
        betas (tuple): :math:`(\beta_1, \beta_2)` (default (0.9, 0.999)).
        eps (float): :math:`\epsilon`, added after the square root of the
            bias-corrected :math:`v` (default 1e-8).
        weight_decay (float): :math:`\lambda` (default 0).
        momentum_decay (float): :math:`\psi` of the momentum schedule (default 4e-3).
        decoupled_weight_decay (bool): decay the weights directly (NAdamW)
            instead of adding :math:`\lambda\theta` to the gradient.
        maximize (bool): maximize the objective instead of minimizing it.

    State per param: ``step``, ``mu_product`` (:math:`\Pi_t`, a float),
    ``exp_avg``, ``exp_avg_sq``.

    ``mu_product`` is accumulated exactly as torch accumulates it with its
    default dtype: in float32 (``mu_t`` rounded to float32, the product rounded
    to float32 each step), so results match torch to the last bit of the step
    sizes; it is kept per param and saved and restored by ``state_dict``.

    Example:
        >>> import numpy as np, cyoptim
        >>> w = np.zeros(2)
        >>> opt = cyoptim.NAdam([w], lr=0.1)
        >>> opt.step([np.array([1.0, -1.0])])
        >>> w.round(6)
        array([-0.105645,  0.105645])
        >>> opt.state_dict()["state"][0]["mu_product"]      # mu_1, rounded to float32
        0.4500734806060791

    Warning:
        Frameworks disagree on the schedule: Keras 3's ``Nadam`` uses
        :math:`\mu_t = \beta_1(1 - \tfrac12\, 0.96^{t})` (no
        ``momentum_decay``: the momentum warms up within tens of steps instead of
        thousands) and adds :math:`\epsilon` (default 1e-7) to
        :math:`\sqrt{\hat v_t}`; optax's ``nadam`` has no :math:`\mu_t` schedule
        at all (constant :math:`\beta_1`, Nesterov look-ahead on the
        bias-corrected :math:`\hat m_t`). Only torch's rule is implemented here.

    Reference: Dozat, "Incorporating Nesterov Momentum into Adam", ICLR 2016
    workshop, https://openreview.net/forum?id=OM0jvwB8jIp57ZJjtNEZ
    """

    kernel = "nadam"
    _tensor_state = {"mu_product": TensorState(initial=1.0, low=0.0, high=1.0)}

    def __init__(
        self,
        params,
        lr=2e-3,
        betas=(0.9, 0.999),
        eps=1e-8,
        weight_decay=0.0,
        momentum_decay=4e-3,
        *,
        decoupled_weight_decay=False,
        maximize=False,
        master_weights=False,
        state_dtype=None,
        stochastic_rounding=False,
        seed=None,
    ):
        super().__init__(
            params,
            dict(
                lr=lr,
                betas=tuple(betas),
                eps=eps,
                weight_decay=weight_decay,
                momentum_decay=momentum_decay,
                decoupled_weight_decay=decoupled_weight_decay,
                maximize=maximize,
            ),
            master_weights=master_weights,
            state_dtype=state_dtype,
            stochastic_rounding=stochastic_rounding,
            seed=seed,
        )

    def _validate_hyperparameters(self, group):
        validate_adam_family(group)
        if not 0.0 <= group["momentum_decay"]:
            raise ValueError(f"Invalid momentum_decay value: {group['momentum_decay']}")

    def _state_names(self, group):
        return ("exp_avg", "exp_avg_sq")
