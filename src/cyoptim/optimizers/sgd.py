"""Stochastic gradient descent with momentum, dampening and Nesterov momentum."""

from ..optimizer import Optimizer, TensorState


class SGD(Optimizer):
    r"""SGD, optionally with (Nesterov) momentum; the update of ``torch.optim.SGD``.

    .. math::
        g_t &= \pm\nabla_\theta f_t(\theta_{t-1}) + \lambda\theta_{t-1} \\
        b_t &= \begin{cases} g_t & t = 1 \\ \mu b_{t-1} + (1-\tau) g_t & t > 1\end{cases} \\
        g_t &\leftarrow g_t + \mu b_t \text{ (nesterov)}, \quad b_t \text{ (otherwise)} \\
        \theta_t &= \theta_{t-1} - \gamma g_t

    (the minus sign on the gradient when ``maximize``; the momentum lines only
    when ``momentum != 0``.)

    Args:
        params: arrays, or dicts with "params" and per-group overrides.
        lr (float): learning rate :math:`\gamma` (default 1e-3).
        momentum (float): :math:`\mu` (default 0).
        dampening (float): :math:`\tau` (default 0); not applied at the first step.
        weight_decay (float): L2 penalty :math:`\lambda` added to the gradient (default 0).
        nesterov (bool): Nesterov momentum (needs momentum > 0 and dampening = 0).
        maximize (bool): maximize the objective instead of minimizing it.

    State per param: ``momentum_buffer`` (when momentum != 0).

    Example:
        >>> import numpy as np, cyoptim
        >>> w = np.ones(3, np.float32)
        >>> opt = cyoptim.SGD([w], lr=0.1, momentum=0.9)
        >>> opt.step([np.full(3, 0.5, np.float32)])
        >>> w
        array([0.95, 0.95, 0.95], dtype=float32)

    Warning:
        Momentum conventions differ: Sutskever et al. and torch scale the buffer
        update by the learning rate at the parameter update (as here), some
        frameworks (Caffe, older Keras) fold ``lr`` into the buffer.
    """

    kernel = "sgd"
    # Whether a param's momentum buffer has started (torch: whether its state
    # holds "momentum_buffer"); the first step with momentum copies the grad.
    _tensor_state = {"momentum_started": TensorState(0.0, 0.0, 1.0, exported=False)}

    _exports_step = False

    def __init__(
        self,
        params,
        lr=1e-3,
        momentum=0.0,
        dampening=0.0,
        weight_decay=0.0,
        nesterov=False,
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
                momentum=momentum,
                dampening=dampening,
                weight_decay=weight_decay,
                nesterov=nesterov,
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
        if group["momentum"] < 0.0:
            raise ValueError(f"Invalid momentum value: {group['momentum']}")
        if group["weight_decay"] < 0.0:
            raise ValueError(f"Invalid weight_decay value: {group['weight_decay']}")
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")

    def _state_names(self, group):
        return ("momentum_buffer",) if group["momentum"] != 0 else ()

    def _required_state_names(self, group):
        return ()  # a param that has not stepped with momentum has no buffer

    def _exports_block(self, name, blocks, k):
        if name == "momentum_buffer" or name == "momentum_buffer_absmax":
            return blocks["momentum_started"][k] != 0
        return True

    def _loaded_tensor_state(self, name, entry):
        return 1.0 if "momentum_buffer" in entry else 0.0
