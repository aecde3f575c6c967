"""NAdam: Adam with Nesterov momentum and a momentum schedule."""

import numpy as np

from .adam import validate_adam_family
from .optimizer import Optimizer


def _scalar(value):
    """A real number given as a Python or NumPy scalar (or 0-d array), else None."""
    if isinstance(value, bool) or np.ndim(value) != 0:
        return None
    value = np.asarray(value)
    if value.dtype.kind not in "fiu":
        return None
    return float(value)


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

    def __init__(self, params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 momentum_decay=4e-3, *, decoupled_weight_decay=False, maximize=False):
        self._mu_products = {}     # GroupPlan -> float64[n_tensors], float32 values
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps,
                                      weight_decay=weight_decay,
                                      momentum_decay=momentum_decay,
                                      decoupled_weight_decay=decoupled_weight_decay,
                                      maximize=maximize))

    def add_param_group(self, param_group):
        super().add_param_group(param_group)
        self._mu_products[self._plans[-1]] = np.ones(self._plans[-1].n_tensors)

    def _validate_hyperparameters(self, group):
        validate_adam_family(group)
        if not 0.0 <= group["momentum_decay"]:
            raise ValueError(f"Invalid momentum_decay value: {group['momentum_decay']}")

    def _state_names(self, group):
        return ("exp_avg", "exp_avg_sq")

    def _update(self, group, plan, blocks, grads, n_threads):
        beta1, beta2 = group["betas"]
        self._kernels.nadam(plan, blocks["exp_avg"], blocks["exp_avg_sq"],
                            self._mu_products[plan], group["lr"],
                            beta1, beta2, group["eps"], group["weight_decay"],
                            group["momentum_decay"], group["decoupled_weight_decay"],
                            group["maximize"], n_threads)

    # mu_product: per-param scalar state next to the arrays the base class keeps.
    def _param_slots(self):
        """(group plan, local index) of every param, by global param index."""
        return [(plan, k) for plan in self._plans for k in range(plan.n_tensors)]

    @property
    def state(self):
        state = super().state
        slots = self._param_slots()
        for index, entry in state.items():
            plan, k = slots[index]
            entry["mu_product"] = float(self._mu_products[plan][k])
        return state

    def load_state_dict(self, state_dict):
        self._loaded_mu = {}
        try:
            super().load_state_dict(state_dict)    # validates all, then writes
            loaded = {plan: np.ones(plan.n_tensors) for plan in self._plans}
            slots = self._param_slots()
            for index, value in self._loaded_mu.items():
                plan, k = slots[index]
                loaded[plan][k] = value
            self._mu_products = loaded
        finally:
            del self._loaded_mu

    def _check_param_state(self, entry, index, group, param):
        if isinstance(entry, dict):
            if "mu_product" not in entry:
                expected = set(self._state_names(group)) | {"step", "mu_product"}
                raise ValueError(f"state of param {index} has keys {sorted(entry)}; "
                                 f"expected {sorted(expected)} for this group's settings")
            value = _scalar(entry["mu_product"])
            if value is None or not 0.0 <= value <= 1.0:
                raise ValueError(f"state of param {index}: mu_product must be a number "
                                 f"in [0, 1], got {entry['mu_product']!r}")
            self._loaded_mu[index] = value
            entry = {name: v for name, v in entry.items() if name != "mu_product"}
        return super()._check_param_state(entry, index, group, param)
