"""RAdam: Adam with a rectified adaptive learning rate."""

from ..optimizer import Optimizer
from ..validation import validate_adam_family


class RAdam(Optimizer):
    r"""RAdam (Liu et al., 2020); the update of ``torch.optim.RAdam``.

    .. math::
        \theta &\leftarrow \theta (1 - \gamma\lambda) \quad\text{(decoupled decay)}, \qquad
        g_t \leftarrow g_t + \lambda\theta \quad\text{(coupled decay)} \\
        m_t &= \beta_1 m_{t-1} + (1-\beta_1) g_t \quad(\text{as } \mathrm{lerp}(m, g, 1-\beta_1)) \\
        v_t &= \beta_2 v_{t-1} + (1-\beta_2) g_t^2, \qquad
        \hat m_t = m_t / (1-\beta_1^t) \\
        \rho_\infty &= \frac{2}{1-\beta_2} - 1, \qquad
        \rho_t = \rho_\infty - \frac{2 t \beta_2^t}{1-\beta_2^t} \\
        r_t &= \sqrt{\frac{(\rho_t-4)(\rho_t-2)\rho_\infty}{(\rho_\infty-4)(\rho_\infty-2)\rho_t}} \\
        \theta_t &= \begin{cases}
            \theta_{t-1} - \gamma\,\hat m_t\,\dfrac{\sqrt{1-\beta_2^t}}{\sqrt{v_t} + \epsilon}\,r_t
                & \rho_t > 5 \\
            \theta_{t-1} - \gamma\,\hat m_t & \text{otherwise}
        \end{cases}

    (the gradient negated first when ``maximize``.) With :math:`\beta_2 = 0.999`
    the first five steps of a param are unrectified (momentum SGD with bias
    correction); from the sixth on the adaptive, rectified step applies.

    Args:
        params: arrays, or dicts with "params" and per-group overrides.
        lr (float): learning rate :math:`\gamma` (default 1e-3).
        betas (tuple): :math:`(\beta_1, \beta_2)` (default (0.9, 0.999)).
        eps (float): :math:`\epsilon`, added to :math:`\sqrt{v_t}` (default 1e-8).
        weight_decay (float): :math:`\lambda` (default 0).
        maximize (bool): maximize the objective instead of minimizing it.
        decoupled_weight_decay (bool): decay the weights directly (as AdamW)
            instead of adding :math:`\lambda\theta` to the gradient.

    State per param: ``step``, ``exp_avg``, ``exp_avg_sq``.

    Example:
        >>> import numpy as np, cyoptim
        >>> w = np.zeros(2)
        >>> opt = cyoptim.RAdam([w], lr=0.1)
        >>> opt.step([np.array([1.0, -2.0])])      # step 1: unrectified, w -= lr * m_hat
        >>> w
        array([-0.1,  0.2])

    Warning:
        Frameworks disagree on when to rectify and where epsilon goes: torch and
        this class rectify when :math:`\rho_t > 5` and add :math:`\epsilon` to
        :math:`\sqrt{v_t}` before the bias correction; optax's ``radam``
        rectifies when :math:`\rho_t \ge` ``threshold`` (5.0) and adds
        :math:`\epsilon` to :math:`\sqrt{\hat v_t}`; the paper's Algorithm 2
        tests :math:`\rho_t > 4`. Early steps therefore differ between frameworks.

    Reference: Liu et al., "On the Variance of the Adaptive Learning Rate and
    Beyond", ICLR 2020, https://arxiv.org/abs/1908.03265
    """

    kernel = "radam"

    def __init__(
        self,
        params,
        lr=1e-3,
        betas=(0.9, 0.999),
        eps=1e-8,
        weight_decay=0.0,
        *,
        maximize=False,
        decoupled_weight_decay=False,
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
                maximize=maximize,
                decoupled_weight_decay=decoupled_weight_decay,
            ),
            master_weights=master_weights,
            state_dtype=state_dtype,
            stochastic_rounding=stochastic_rounding,
            seed=seed,
        )

    def _validate_hyperparameters(self, group):
        validate_adam_family(group)

    def _state_names(self, group):
        return ("exp_avg", "exp_avg_sq")
