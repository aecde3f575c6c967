"""Adagrad: per-coordinate learning rates from the running sum of squared gradients."""

from ..optimizer import Optimizer


class Adagrad(Optimizer):
    r"""Adagrad (Duchi et al., 2011); the update of ``torch.optim.Adagrad``.

    .. math::
        g_t &= \pm\nabla_\theta f_t(\theta_{t-1}) + \lambda\theta_{t-1} \\
        \tilde\gamma_t &= \gamma / (1 + (t-1)\eta) \\
        s_t &= s_{t-1} + g_t^2, \qquad s_0 = s_{\text{init}} \\
        \theta_t &= \theta_{t-1} - \tilde\gamma_t\, \frac{g_t}{\sqrt{s_t} + \epsilon}

    (the minus sign on the gradient when ``maximize``.) The decayed rate
    :math:`\tilde\gamma_t` is computed in double precision from the param's
    own step count.

    Args:
        params: arrays, or dicts with "params" and per-group overrides.
        lr (float): learning rate :math:`\gamma` (default 1e-2).
        lr_decay (float): :math:`\eta` (default 0).
        weight_decay (float): L2 penalty :math:`\lambda` added to the gradient (default 0).
        initial_accumulator_value (float): :math:`s_{\text{init}}`, the starting
            value of every element of ``sum`` (default 0). As in torch, the
            constructor's value fills every group's ``sum``; a per-group
            override is kept in the group but not used.
        eps (float): :math:`\epsilon`, added outside the square root (default 1e-10).
        maximize (bool): maximize the objective instead of minimizing it.

    State per param: ``step`` and ``sum``. Like every cyoptim optimizer, a
    param's state appears in ``state_dict()`` once it has taken a step (torch's
    Adagrad creates it in the constructor, with ``step`` 0 and ``sum`` filled
    with ``initial_accumulator_value``). The values agree: a param that has not
    stepped starts from ``initial_accumulator_value`` in both, and
    ``load_state_dict`` accepts torch-style entries with ``step`` 0.

    Example:
        >>> import numpy as np, cyoptim
        >>> w = np.zeros(3, np.float32)
        >>> opt = cyoptim.Adagrad([w], lr=0.5)
        >>> opt.step([np.array([2.0, -1.0, 0.0], np.float32)])
        >>> w
        array([-0.5,  0.5,  0. ], dtype=float32)

    Warning:
        Frameworks disagree on epsilon and the initial accumulator: torch and
        this class compute :math:`g/(\sqrt{s}+\epsilon)` starting from
        :math:`s_0 = 0`; Keras puts epsilon inside the square root,
        :math:`g/\sqrt{s+\epsilon}`, and starts its accumulator at 0.1.

    Reference: Duchi, Hazan & Singer, "Adaptive Subgradient Methods for Online
    Learning and Stochastic Optimization", JMLR 12 (2011),
    https://jmlr.org/papers/v12/duchi11a.html
    """

    kernel = "adagrad"

    def __init__(
        self,
        params,
        lr=1e-2,
        lr_decay=0.0,
        weight_decay=0.0,
        initial_accumulator_value=0.0,
        eps=1e-10,
        *,
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
                lr_decay=lr_decay,
                weight_decay=weight_decay,
                initial_accumulator_value=initial_accumulator_value,
                eps=eps,
                maximize=maximize,
            ),
            master_weights=master_weights,
            state_dtype=state_dtype,
            stochastic_rounding=stochastic_rounding,
            seed=seed,
        )

    def _validate_hyperparameters(self, group):
        if not 0.0 <= group["lr"]:
            raise ValueError(f"Invalid learning rate: {group['lr']}")
        if not 0.0 <= group["lr_decay"]:
            raise ValueError(f"Invalid lr_decay value: {group['lr_decay']}")
        if not 0.0 <= group["weight_decay"]:
            raise ValueError(f"Invalid weight_decay value: {group['weight_decay']}")
        if not 0.0 <= group["initial_accumulator_value"]:
            raise ValueError(
                f"Invalid initial_accumulator_value value: {group['initial_accumulator_value']}"
            )
        if not 0.0 <= group["eps"]:
            raise ValueError(f"Invalid epsilon value: {group['eps']}")

    def _state_names(self, group):
        return ("sum",)

    def _state_fill(self, name, group):
        # As torch: the constructor's value, whatever a group says.
        return self.defaults["initial_accumulator_value"]
