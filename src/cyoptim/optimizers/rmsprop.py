"""RMSprop: divide the gradient by a running root mean square, optionally centered."""

from ..optimizer import Optimizer


class RMSprop(Optimizer):
    r"""RMSprop (Hinton, lecture 6e), centered as in Graves (2013); ``torch.optim.RMSprop``.

    .. math::
        g_t &= \pm\nabla_\theta f_t(\theta_{t-1}) + \lambda\theta_{t-1} \\
        v_t &= \alpha v_{t-1} + (1-\alpha) g_t^2 \\
        \bar g_t &= \alpha \bar g_{t-1} + (1-\alpha) g_t
            \quad(\text{centered, as } \mathrm{lerp}(\bar g, g, 1-\alpha)) \\
        d_t &= \sqrt{v_t - \bar g_t^2} + \epsilon \text{ (centered)}, \quad
               \sqrt{v_t} + \epsilon \text{ (otherwise)} \\
        b_t &= \mu b_{t-1} + g_t / d_t, \quad \theta_t = \theta_{t-1} - \gamma b_t
               \quad\text{if } \mu > 0 \\
        \theta_t &= \theta_{t-1} - \gamma\, g_t / d_t \quad\text{otherwise}

    (the minus sign on the gradient when ``maximize``; all state starts at 0.)

    Args:
        params: arrays, or dicts with "params" and per-group overrides.
        lr (float): learning rate :math:`\gamma` (default 1e-2).
        alpha (float): smoothing constant :math:`\alpha` (default 0.99).
        eps (float): :math:`\epsilon`, added outside the square root (default 1e-8).
        weight_decay (float): L2 penalty :math:`\lambda` added to the gradient (default 0).
        momentum (float): :math:`\mu` (default 0).
        centered (bool): normalize by an estimate of the gradient's variance,
            :math:`v - \bar g^2`, instead of its second moment (default False).
        maximize (bool): maximize the objective instead of minimizing it.

    State per param: ``step``, ``square_avg``, ``momentum_buffer`` (when
    momentum > 0) and ``grad_avg`` (when centered).

    Example:
        >>> import numpy as np, cyoptim
        >>> w = np.zeros(2, np.float32)
        >>> opt = cyoptim.RMSprop([w], lr=0.01, alpha=0.75, eps=0.0)
        >>> opt.step([np.array([1.0, -4.0], np.float32)])
        >>> w
        array([-0.02,  0.02], dtype=float32)

    Warning:
        Frameworks place epsilon differently: torch and this class divide by
        :math:`\sqrt{v} + \epsilon`; Keras (and TensorFlow) and optax's
        ``rmsprop`` divide by :math:`\sqrt{v + \epsilon}`, which differs
        noticeably while :math:`v` is small. Keras also calls :math:`\alpha`
        ``rho`` and defaults it to 0.9.

    References: Hinton, Srivastava & Swersky, "Neural Networks for Machine
    Learning", lecture 6e,
    https://www.cs.toronto.edu/~tijmen/csc321/slides/lecture_slides_lec6.pdf;
    Graves, "Generating Sequences With Recurrent Neural Networks" (2013),
    https://arxiv.org/abs/1308.0850
    """

    kernel = "rmsprop"

    def __init__(
        self,
        params,
        lr=1e-2,
        alpha=0.99,
        eps=1e-8,
        weight_decay=0.0,
        momentum=0.0,
        centered=False,
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
                alpha=alpha,
                eps=eps,
                weight_decay=weight_decay,
                momentum=momentum,
                centered=centered,
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
        if not 0.0 <= group["eps"]:
            raise ValueError(f"Invalid epsilon value: {group['eps']}")
        if not 0.0 <= group["momentum"]:
            raise ValueError(f"Invalid momentum value: {group['momentum']}")
        if not 0.0 <= group["weight_decay"]:
            raise ValueError(f"Invalid weight_decay value: {group['weight_decay']}")
        if not 0.0 <= group["alpha"]:
            raise ValueError(f"Invalid alpha value: {group['alpha']}")

    def _state_names(self, group):
        return (
            ("square_avg",)
            + (("momentum_buffer",) if group["momentum"] > 0 else ())
            + (("grad_avg",) if group["centered"] else ())
        )
