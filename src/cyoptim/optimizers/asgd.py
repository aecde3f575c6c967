"""ASGD: stochastic gradient descent with a decaying rate and an average of the iterates."""

import numbers

from ..optimizer import Optimizer, TensorState


class ASGD(Optimizer):
    r"""Averaged SGD (Polyak and Juditsky, 1992); the update of ``torch.optim.ASGD``.

    SGD with a slowly decaying rate :math:`\eta_t`, which also keeps
    :math:`\bar\theta` (state ``ax``), the running average of the iterates
    from step :math:`t_0` on. The params themselves are the plain SGD
    iterates: to evaluate the averaged model, copy ``ax`` into them.
    Per element, with :math:`g_t` negated first when ``maximize``:

    .. math::
        g_t &\leftarrow g_t + \lambda_{wd}\,\theta_{t-1} \\
        \theta_t &= \theta_{t-1} (1 - \lambda \eta_t) - \eta_t g_t \\
        \bar\theta_t &= \begin{cases}
            \bar\theta_{t-1} + \mu_t (\theta_t - \bar\theta_{t-1}) & \mu_t \ne 1 \\
            \theta_t & \mu_t = 1 \end{cases}

    and per param, after its update (:math:`t` its step count):

    .. math::
        \eta_{t+1} = \frac{\gamma}{(1 + \lambda \gamma t)^{\alpha}}, \qquad
        \mu_{t+1} = \frac{1}{\max(1,\ t - t_0)}

    with :math:`\eta_1 = \gamma` and :math:`\mu_1 = 1`. So (for a whole
    :math:`t_0`) :math:`\bar\theta` equals the params up to step
    :math:`t_0 + 2`, and from there on is the average of the params since
    that step.

    Args:
        params: arrays, or dicts with "params" and per-group overrides.
        lr (float): learning rate :math:`\gamma` (default 1e-2).
        lambd (float): decay term :math:`\lambda` (default 1e-4).
        alpha (float): power :math:`\alpha` of the rate's decay (default 0.75).
        t0 (float): the step :math:`t_0` from which to average (default 1e6).
        weight_decay (float): L2 penalty :math:`\lambda_{wd}` (default 0).
        maximize (bool): maximize the objective instead of minimizing it
            (keyword-only here: torch's positional order has ``foreach`` before it).

    State per param: ``step``, ``eta`` (:math:`\eta` of the next step, a
    float), ``mu`` (:math:`\mu` of the next step, a float), ``ax``
    (:math:`\bar\theta`).

    ``eta`` and ``mu`` are rounded to float32 every step, also for float64
    params, exactly as torch keeps them (0-dim tensors of its default dtype,
    float32): the rate the params see is float32(:math:`\eta_t`). (torch under
    ``torch.set_default_dtype(torch.float64)`` keeps them in float64 instead,
    and so does ``cyoptim.torch.ASGD``, which follows the dtype of the state's
    tensors.) The new :math:`\eta` uses the group's lr of this step, so a
    schedule acts through it one step late, as in torch.

    Example:
        >>> import numpy as np, cyoptim
        >>> w = np.ones(2)
        >>> opt = cyoptim.ASGD([w], lr=0.1, t0=0)
        >>> for _ in range(3):
        ...     opt.step([np.array([1.0, -1.0])])
        >>> w.round(6)
        array([0.699975, 1.299965])
        >>> opt.state[0]["ax"].round(6)      # the average of the params after steps 2 and 3
        array([0.749979, 1.249971])
        >>> opt.state[0]["mu"], opt.state[0]["eta"]       # float32 values, for step 4
        (0.3333333432674408, 0.09999775141477585)

    Reference: Polyak and Juditsky, "Acceleration of stochastic approximation
    by averaging", SIAM J. Control Optim. 30(4), 1992,
    https://doi.org/10.1137/0330046
    """

    kernel = "asgd"
    _tensor_state = {
        "eta": TensorState(initial=0.0, low=0.0, high=float("inf")),
        "mu": TensorState(initial=1.0, low=0.0, high=1.0),
    }

    def __init__(
        self,
        params,
        lr=1e-2,
        lambd=1e-4,
        alpha=0.75,
        t0=1e6,
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
            dict(
                lr=lr,
                lambd=lambd,
                alpha=alpha,
                t0=t0,
                weight_decay=weight_decay,
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
        if not 0.0 <= group["weight_decay"]:
            raise ValueError(f"Invalid weight_decay value: {group['weight_decay']}")
        for name in ("lambd", "alpha", "t0"):  # torch checks none of them
            if not isinstance(group[name], numbers.Real):
                raise TypeError(f"{name} must be a real number, got {group[name]!r}")

    def _state_names(self, group):
        return ("ax",)
