"""Adadelta: a step size from the ratio of two running root mean squares."""

from ..optimizer import Optimizer


class Adadelta(Optimizer):
    r"""Adadelta (Zeiler, 2012); the update of ``torch.optim.Adadelta``.

    .. math::
        g_t &= \pm\nabla_\theta f_t(\theta_{t-1}) + \lambda\theta_{t-1} \\
        v_t &= \rho v_{t-1} + (1-\rho) g_t^2 \\
        \Delta_t &= \frac{\sqrt{u_{t-1} + \epsilon}}{\sqrt{v_t + \epsilon}}\, g_t \\
        u_t &= \rho u_{t-1} + (1-\rho) \Delta_t^2 \\
        \theta_t &= \theta_{t-1} - \gamma \Delta_t

    (the minus sign on the gradient when ``maximize``; :math:`v_0 = u_0 = 0`.)

    Args:
        params: arrays, or dicts with "params" and per-group overrides.
        lr (float): :math:`\gamma`, a factor on the update (default 1.0, the
            paper's method; it has no learning rate).
        rho (float): decay rate :math:`\rho` of both running averages (default 0.9).
        eps (float): :math:`\epsilon`, added inside both square roots (default 1e-6).
        weight_decay (float): L2 penalty :math:`\lambda` added to the gradient (default 0).
        maximize (bool): maximize the objective instead of minimizing it.

    State per param: ``step``, ``square_avg`` (:math:`v`) and ``acc_delta``
    (:math:`u`).

    Example:
        >>> import numpy as np, cyoptim
        >>> w = np.zeros(2)
        >>> opt = cyoptim.Adadelta([w], rho=0.5, eps=1.0)
        >>> opt.step([np.array([2.0, -2.0])])      # sqrt(0 + 1) / sqrt(2 + 1) * g
        >>> np.allclose(w, [-2 / 3 ** 0.5, 2 / 3 ** 0.5])
        True

    Warning:
        Epsilon sits inside both square roots, as in the paper, torch and Keras,
        but the defaults differ: Keras uses ``learning_rate=0.001``, ``rho=0.95``
        and ``epsilon=1e-7`` where torch and this class use 1.0, 0.9 and 1e-6.
        The first steps are about :math:`\sqrt{\epsilon}` in size, so epsilon
        matters more here than in other optimizers.

    Reference: Zeiler, "ADADELTA: An Adaptive Learning Rate Method" (2012),
    https://arxiv.org/abs/1212.5701
    """

    kernel = "adadelta"

    def __init__(
        self,
        params,
        lr=1.0,
        rho=0.9,
        eps=1e-6,
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
            dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay, maximize=maximize),
            master_weights=master_weights,
            state_dtype=state_dtype,
            stochastic_rounding=stochastic_rounding,
            seed=seed,
        )

    def _validate_hyperparameters(self, group):
        if not 0.0 <= group["lr"]:
            raise ValueError(f"Invalid learning rate: {group['lr']}")
        if not 0.0 <= group["rho"] <= 1.0:
            raise ValueError(f"Invalid rho value: {group['rho']}")
        if not 0.0 <= group["eps"]:
            raise ValueError(f"Invalid epsilon value: {group['eps']}")
        if not 0.0 <= group["weight_decay"]:
            raise ValueError(f"Invalid weight_decay value: {group['weight_decay']}")

    def _state_names(self, group):
        return ("square_avg", "acc_delta")
