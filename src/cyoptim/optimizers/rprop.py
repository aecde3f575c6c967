"""Rprop: resilient backpropagation, a per-element step size driven by gradient signs."""

from ..optimizer import Optimizer
from ..validation import validate_pair


class Rprop(Optimizer):
    r"""Rprop (Riedmiller and Braun, 1993); the update of ``torch.optim.Rprop``.

    Every element has its own step size :math:`\eta`, which grows while the
    gradient keeps its sign and shrinks when it flips; the param moves by
    :math:`\eta` against the sign of the gradient, whatever its magnitude.
    Per element, with :math:`g_t` negated first when ``maximize``:

    .. math::
        s_t &= \mathrm{sign}(g_t\, g_{\mathrm{prev}}) \\
        \eta_t &= \mathrm{clamp}\bigl(\eta_{t-1} \cdot
            \{\eta_+ \text{ if } s_t > 0;\ \eta_- \text{ if } s_t < 0;\ 1 \text{ otherwise}\},
            \ \Gamma_{\min},\ \Gamma_{\max}\bigr) \\
        g_t &\leftarrow 0 \quad\text{where } s_t < 0 \\
        \theta_t &= \theta_{t-1} - \eta_t\, \mathrm{sign}(g_t), \qquad
        g_{\mathrm{prev}} \leftarrow g_t

    with :math:`\eta_0 = \gamma` (the learning rate) and
    :math:`g_{\mathrm{prev}} = 0` at a param's first step, so the first step
    moves every element by :math:`\mathrm{clamp}(\gamma)`. As in torch,
    ``sign`` of NaN is 0: a NaN gradient element leaves its param element and
    step size alone (and is kept in ``prev``). A zeroed gradient (after a
    flip) leaves the step size as it is at the next step.

    Args:
        params: arrays, or dicts with "params" and per-group overrides.
        lr (float): the initial step size :math:`\gamma` of every element
            (default 1e-2); it plays no part after a param's first step, so
            learning-rate schedules have no effect on params that have stepped.
        etas (tuple): :math:`(\eta_-, \eta_+)`, the factors that shrink and
            grow a step size, :math:`0 < \eta_- < 1 < \eta_+` (default (0.5, 1.2)).
        step_sizes (tuple): :math:`(\Gamma_{\min}, \Gamma_{\max})`, the
            bounds of the step sizes (default (1e-6, 50)).
        maximize (bool): maximize the objective instead of minimizing it.

    State per param: ``step``, ``prev`` (the last gradient, zeroed where its
    sign flipped), ``step_size`` (:math:`\eta`).

    Every operation is exact or one rounding that torch does too, so params
    and state equal torch's bit for bit, in float32 and float64.

    Example:
        >>> import numpy as np, cyoptim
        >>> w = np.zeros(3)
        >>> opt = cyoptim.Rprop([w], lr=0.1)
        >>> for g in ([1.0, -2.0, 0.0], [3.0, 1.0, 0.0]):
        ...     opt.step([np.array(g)])
        >>> w.round(6)              # same sign twice: 0.1 + 0.12; flipped: 0.1 then nothing
        array([-0.22,  0.1 ,  0.  ])
        >>> opt.state[0]["step_size"]
        array([0.12, 0.05, 0.1 ])

    Warning:
        Rprop is a full-batch method: its sign rule assumes the gradient's
        sign is meaningful step to step, which minibatch noise breaks (RMSprop
        was proposed as its minibatch version).

    Reference: Riedmiller and Braun, "A direct adaptive method for faster
    backpropagation learning: the RPROP algorithm", IEEE ICNN 1993,
    https://doi.org/10.1109/ICNN.1993.298623
    """

    kernel = "rprop"

    def __init__(
        self,
        params,
        lr=1e-2,
        etas=(0.5, 1.2),
        step_sizes=(1e-6, 50),
        *,
        maximize=False,
        master_weights=False,
        state_dtype=None,
        stochastic_rounding=False,
        seed=None,
    ):
        super().__init__(
            params,
            dict(lr=lr, etas=_tuple(etas), step_sizes=_tuple(step_sizes), maximize=maximize),
            master_weights=master_weights,
            state_dtype=state_dtype,
            stochastic_rounding=stochastic_rounding,
            seed=seed,
        )

    def _validate_hyperparameters(self, group):
        if not 0.0 <= group["lr"]:
            raise ValueError(f"Invalid learning rate: {group['lr']}")
        validate_pair(group, "etas")
        etaminus, etaplus = group["etas"]
        if not 0.0 < etaminus < 1.0 < etaplus:
            raise ValueError(f"Invalid eta values: {etaminus}, {etaplus}")
        validate_pair(group, "step_sizes")

    def _state_names(self, group):
        return ("prev", "step_size")


def _tuple(value):
    """A list or tuple as a tuple; anything else as it is, for validation to refuse."""
    return tuple(value) if isinstance(value, (list, tuple)) else value
