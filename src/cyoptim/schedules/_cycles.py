"""Cyclical schedules: triangular / exp_range cycles (CLR) and the one-cycle policy."""

import math

from ._basic import anneal_linear
from ._checks import check_choice, check_int, check_nonnegative, check_positive, check_real
from ._cosine import anneal_cos

CYCLIC_MODES = ("triangular", "triangular2", "exp_range")
ANNEAL_STRATEGIES = {"cos": anneal_cos, "linear": anneal_linear}


def _triangular_scale(x):
    return 1.0


def _triangular2_scale(x):
    return 1 / (2.0 ** (x - 1))


def cyclic_scale(mode, gamma):
    """(scale_fn, scale_mode) of one of torch's built-in CLR modes."""
    check_choice(mode, "mode", CYCLIC_MODES)
    if mode == "triangular":
        return _triangular_scale, "cycle"
    if mode == "triangular2":
        return _triangular2_scale, "cycle"
    return (lambda x: gamma**x), "iterations"


def cyclic_curve(start, peak, step_size_up, step_size_down, scale_fn, scale_mode):
    """The CLR curve from ``start`` to ``peak`` and back, without checks on the values.

    Also used with ``peak < start`` for the momentum, which cycles inversely.
    """
    total_size = float(step_size_up + step_size_down)
    step_ratio = step_size_up / total_size

    def schedule(step):
        cycle = math.floor(1 + step / total_size)
        x = 1.0 + step / total_size - cycle
        if x <= step_ratio:
            scale_factor = x / step_ratio
        else:
            scale_factor = (x - 1) / (step_ratio - 1)
        base_height = (peak - start) * scale_factor
        return start + base_height * scale_fn(cycle if scale_mode == "cycle" else step)

    return schedule


def check_cyclic_args(step_size_up, step_size_down, mode, gamma, scale_fn, scale_mode):
    """Validate the CLR arguments; return (step_size_up, step_size_down, scale_fn, scale_mode)."""
    step_size_up = check_positive(step_size_up, "step_size_up")
    if step_size_down is None:
        step_size_down = step_size_up
    step_size_down = check_nonnegative(step_size_down, "step_size_down")
    if scale_fn is None:
        scale_fn, scale_mode = cyclic_scale(mode, check_positive(gamma, "gamma"))
    elif not callable(scale_fn):
        raise TypeError(f"scale_fn must be callable, got {type(scale_fn).__name__}")
    check_choice(scale_mode, "scale_mode", ("cycle", "iterations"))
    return step_size_up, step_size_down, scale_fn, scale_mode


def cyclic_schedule(
    base_value,
    max_value,
    step_size_up=2000,
    step_size_down=None,
    mode="triangular",
    gamma=1.0,
    scale_fn=None,
    scale_mode="cycle",
):
    r"""Cyclical learning rate (CLR, Smith 2017; torch's ``CyclicLR``).

    With :math:`L = s_{up} + s_{down}`, cycle :math:`c = \lfloor 1 + t/L \rfloor`,
    position :math:`x = 1 + t/L - c \in [0, 1)` and :math:`r = s_{up}/L`:

    .. math::
        h(x) = \begin{cases} x / r & x \le r \\ (x - 1)/(r - 1) & x > r \end{cases},
        \qquad v(t) = v_{base} + (v_{max} - v_{base})\, h(x)\, \sigma

    where the amplitude scale :math:`\sigma` is 1 (``"triangular"``),
    :math:`1/2^{c-1}` (``"triangular2"``), :math:`\gamma^t` (``"exp_range"``) or
    ``scale_fn(c)`` / ``scale_fn(t)`` (custom, per ``scale_mode``).

    Reference: Smith, "Cyclical Learning Rates for Training Neural Networks",
    https://arxiv.org/abs/1506.01186

    Example:
        >>> s = cyclic_schedule(0.1, 1.0, step_size_up=2, mode="triangular2")
        >>> [round(s(t), 3) for t in range(9)]
        [0.1, 0.55, 1.0, 0.55, 0.1, 0.325, 0.55, 0.325, 0.1]
    """
    base_value = check_real(base_value, "base_value")
    max_value = check_real(max_value, "max_value")
    if max_value < base_value:
        raise ValueError(f"max_value ({max_value}) must be >= base_value ({base_value})")
    args = check_cyclic_args(step_size_up, step_size_down, mode, gamma, scale_fn, scale_mode)
    return cyclic_curve(base_value, max_value, *args)


def one_cycle_phases(total_steps, pct_start, three_phase):
    """The last step of each phase of the one-cycle policy, as torch computes them."""
    total_steps = check_int(total_steps, "total_steps", 1)
    pct_start = check_real(pct_start, "pct_start")
    if not 0 <= pct_start <= 1:
        raise ValueError(f"Expected float between 0 and 1 pct_start, but got {pct_start}")
    if three_phase:
        ends = [
            float(pct_start * total_steps) - 1,
            float(2 * pct_start * total_steps) - 2,
            total_steps - 1,
        ]
    else:
        ends = [float(pct_start * total_steps) - 1, total_steps - 1]
    starts = [0.0] + ends[:-1]
    if any(end <= start for start, end in zip(starts, ends)):
        raise ValueError(
            f"pct_start={pct_start} with total_steps={total_steps} leaves a "
            f"phase of the one-cycle schedule without steps (phase ends "
            f"{ends}); use more total_steps or a pct_start further from 0 and 1"
        )
    return ends


def phased_anneal(total_steps, ends, values, anneal_strategy):
    """Anneal from values[i] to values[i+1] during phase i (torch's OneCycleLR loop)."""
    anneal = ANNEAL_STRATEGIES[
        check_choice(anneal_strategy, "anneal_strategy", tuple(ANNEAL_STRATEGIES))
    ]
    last = len(ends) - 1

    def schedule(step):
        if step > total_steps:
            raise ValueError(
                f"Tried to step {step} times. The specified number of total steps is {total_steps}"
            )
        start_step = 0.0
        for i, end_step in enumerate(ends):
            if step <= end_step or i == last:
                pct = (step - start_step) / (end_step - start_step)
                return anneal(values[i], values[i + 1], pct)
            start_step = end_step

    return schedule


def one_cycle_schedule(
    total_steps,
    max_value,
    pct_start=0.3,
    anneal_strategy="cos",
    div_factor=25.0,
    final_div_factor=1e4,
    three_phase=False,
):
    r"""The one-cycle policy (Smith & Topin 2017; torch's ``OneCycleLR``).

    From :math:`v_0 = v_{max}/d` up to :math:`v_{max}` during the first
    ``pct_start`` of ``total_steps``, then down to :math:`v_{min} = v_0/d_f`
    (cosine or linear anneal). With ``three_phase`` it comes back down to
    :math:`v_0` symmetrically, then anneals to :math:`v_{min}` in a third phase.
    Phase :math:`i` ends at step :math:`e_i` (:math:`pT - 1`, then :math:`2pT - 2`
    for three phases, and :math:`T - 1`) and

    .. math:: v(t) = \mathrm{anneal}(a_i, b_i, (t - e_{i-1}) / (e_i - e_{i-1}))

    Steps past ``total_steps`` raise ValueError (as torch does).

    Reference: Smith & Topin, "Super-Convergence", https://arxiv.org/abs/1708.07120

    Example:
        >>> s = one_cycle_schedule(100, max_value=1.0)
        >>> round(s(0), 12), s(29), round(s(99), 12)
        (0.04, 1.0, 4e-06)
    """
    max_value = check_real(max_value, "max_value")
    initial = max_value / check_positive(div_factor, "div_factor")
    minimum = initial / check_positive(final_div_factor, "final_div_factor")
    values = (
        [initial, max_value, initial, minimum] if three_phase else [initial, max_value, minimum]
    )
    return phased_anneal(
        total_steps, one_cycle_phases(total_steps, pct_start, three_phase), values, anneal_strategy
    )


def one_cycle_momentum(
    total_steps,
    base_momentum=0.85,
    max_momentum=0.95,
    pct_start=0.3,
    anneal_strategy="cos",
    three_phase=False,
):
    r"""The momentum of the one-cycle policy: the inverse of the rate's curve.

    From ``max_momentum`` down to ``base_momentum`` while the rate rises, back
    up to ``max_momentum`` while it falls (and constant in the third phase).

    Example:
        >>> m = one_cycle_momentum(100)
        >>> m(0), m(29), m(99)
        (0.95, 0.85, 0.95)
    """
    base_momentum = check_real(base_momentum, "base_momentum")
    max_momentum = check_real(max_momentum, "max_momentum")
    values = [max_momentum, base_momentum, max_momentum] + ([max_momentum] if three_phase else [])
    return phased_anneal(
        total_steps, one_cycle_phases(total_steps, pct_start, three_phase), values, anneal_strategy
    )
