"""Adam and AdamW."""

from ..optimizer import Optimizer
from ..validation import validate_adam_family


class Adam(Optimizer):
    r"""Adam (Kingma & Ba, 2015), with AMSGrad and decoupled weight decay options.

    The update of ``torch.optim.Adam``, in its order of operations:

    .. math::
        \theta &\leftarrow \theta (1 - \gamma\lambda) \quad\text{(decoupled decay)}, \qquad
        g_t \leftarrow g_t + \lambda\theta \quad\text{(coupled decay)} \\
        m_t &= \beta_1 m_{t-1} + (1-\beta_1) g_t \quad(\text{as } \mathrm{lerp}(m, g, 1-\beta_1)) \\
        v_t &= \beta_2 v_{t-1} + (1-\beta_2) g_t^2 \\
        \hat v_t &= \max(\hat v_{t-1}, v_t) \text{ (amsgrad)}, \quad v_t \text{ (otherwise)} \\
        \theta_t &= \theta_{t-1} - \frac{\gamma}{1-\beta_1^t}\,
                   \frac{m_t}{\sqrt{\hat v_t}/\sqrt{1-\beta_2^t} + \epsilon}

    Args:
        params: arrays, or dicts with "params" and per-group overrides.
        lr (float): learning rate :math:`\gamma` (default 1e-3).
        betas (tuple): :math:`(\beta_1, \beta_2)` (default (0.9, 0.999)).
        eps (float): :math:`\epsilon`, added after the bias correction of
            :math:`\sqrt{v}` (default 1e-8).
        weight_decay (float): :math:`\lambda` (default 0).
        amsgrad (bool): use the running maximum of :math:`v` (Reddi et al., 2018).
        maximize (bool): maximize the objective instead of minimizing it.
        decoupled_weight_decay (bool): decay the weights directly (AdamW) instead
            of adding :math:`\lambda\theta` to the gradient.

    State per param: ``step``, ``exp_avg``, ``exp_avg_sq`` and, with amsgrad,
    ``max_exp_avg_sq``.

    Example:
        >>> import numpy as np, cyoptim
        >>> w = np.zeros(4, np.float32)
        >>> opt = cyoptim.Adam([w], lr=0.1)
        >>> opt.step([np.ones(4, np.float32)])
        >>> w
        array([-0.1, -0.1, -0.1, -0.1], dtype=float32)

    Warning:
        Frameworks place epsilon differently: torch, optax and this class add it
        to :math:`\sqrt{v}/\sqrt{1-\beta_2^t}`; Keras and TensorFlow's Adam add
        an :math:`\hat\epsilon` to :math:`\sqrt{v}` before the bias correction,
        which changes results for small :math:`v`.

    Reference: Kingma & Ba, "Adam: A Method for Stochastic Optimization",
    https://arxiv.org/abs/1412.6980
    """

    kernel = "adam"

    def __init__(
        self,
        params,
        lr=1e-3,
        betas=(0.9, 0.999),
        eps=1e-8,
        weight_decay=0.0,
        amsgrad=False,
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
                amsgrad=amsgrad,
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
        if group["amsgrad"]:
            return ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")
        return ("exp_avg", "exp_avg_sq")


class AdamW(Adam):
    r"""AdamW (Loshchilov & Hutter, 2019): Adam with decoupled weight decay.

    The same update as :class:`Adam` with ``decoupled_weight_decay=True``: the
    parameter is multiplied by :math:`1 - \gamma\lambda` before the moment
    update, and :math:`\lambda` defaults to 1e-2. Equals ``torch.optim.AdamW``.

    Reference: Loshchilov & Hutter, "Decoupled Weight Decay Regularization",
    https://arxiv.org/abs/1711.05101
    """

    def __init__(
        self,
        params,
        lr=1e-3,
        betas=(0.9, 0.999),
        eps=1e-8,
        weight_decay=1e-2,
        amsgrad=False,
        *,
        maximize=False,
        master_weights=False,
        state_dtype=None,
        stochastic_rounding=False,
        seed=None,
    ):
        super().__init__(
            params,
            lr=lr,
            betas=betas,
            eps=eps,
            weight_decay=weight_decay,
            amsgrad=amsgrad,
            maximize=maximize,
            decoupled_weight_decay=True,
            master_weights=master_weights,
            state_dtype=state_dtype,
            stochastic_rounding=stochastic_rounding,
            seed=seed,
        )
