"""Piecewise, step, exponential, linear and polynomial schedules.

A schedule is a pure function ``step -> value`` of the (integer, >= 0) step
count, built and validated by the factories below, as in optax. Nothing is
stored between calls: calling a schedule twice with the same step gives the
same value, in any order.
"""

import math
from bisect import bisect_right

from ._checks import check_boundaries, check_int, check_nonnegative, check_positive, check_real


def anneal_linear(start, end, pct):
    """Linear interpolation from ``start`` (pct=0) to ``end`` (pct=1), torch's order."""
    return (end - start) * pct + start


def constant_schedule(value):
    """A schedule that always returns ``value``.

    Example:
        >>> constant_schedule(0.1)(1000)
        0.1
    """
    value = check_real(value, "value")
    return lambda step: value


def piecewise_constant(boundaries, values):
    r"""Piecewise-constant schedule that changes value *at* each boundary.

    .. math::
        v(t) = \text{values}[i], \quad i = \#\{b \in \text{boundaries} : b \le t\}

    so ``values[0]`` holds for ``t < boundaries[0]``, ``values[1]`` from
    ``boundaries[0]`` on, and so on (``len(values) == len(boundaries) + 1``).
    Boundaries must be sorted; a repeated boundary skips the values between.

    Note: optax's ``piecewise_constant_schedule`` changes value one step later
    (``b < t``) and takes scales, not values; this follows torch's milestones.

    Example:
        >>> s = piecewise_constant([10, 20], [1.0, 0.5, 0.25])
        >>> s(9), s(10), s(25)
        (1.0, 0.5, 0.25)
    """
    boundaries = check_boundaries(boundaries, "boundaries")
    values = [check_real(v, f"values[{i}]") for i, v in enumerate(values)]
    if len(values) != len(boundaries) + 1:
        raise ValueError(
            f"piecewise_constant needs one more value than boundaries, got "
            f"{len(values)} values and {len(boundaries)} boundaries"
        )
    return lambda step: values[bisect_right(boundaries, step)]


def multistep_decay(init_value, milestones, gamma=0.1):
    r"""Multiply by ``gamma`` at each milestone (torch's ``MultiStepLR``).

    .. math:: v(t) = v_0 \, \gamma^{\#\{m \in \text{milestones} : m \le t\}}

    A milestone listed twice multiplies by ``gamma`` twice.

    Example:
        >>> s = multistep_decay(1.0, [2, 4], gamma=0.5)
        >>> [s(t) for t in range(6)]
        [1.0, 1.0, 0.5, 0.5, 0.25, 0.25]
    """
    init_value = check_real(init_value, "init_value")
    gamma = check_real(gamma, "gamma")
    milestones = sorted(check_int(m, "milestone", 0) for m in milestones)
    values = [init_value * gamma**k for k in range(len(milestones) + 1)]
    return piecewise_constant(milestones, values)


def exponential_decay(
    init_value, transition_steps, decay_rate, transition_begin=0, staircase=False, end_value=None
):
    r"""Exponential decay (optax's ``exponential_decay``).

    .. math::
        v(t) = v_0 \, r^{p}, \quad p = \frac{\max(t - t_b, 0)}{T}
        \quad (\lfloor p \rfloor \text{ when staircase})

    clipped at ``end_value`` (from below when decaying, from above when
    growing) if given. ``transition_steps`` is :math:`T`, ``decay_rate`` is
    :math:`r`, ``transition_begin`` is :math:`t_b`.

    Example:
        >>> s = exponential_decay(1.0, transition_steps=2, decay_rate=0.5)
        >>> s(0), s(2), s(3)
        (1.0, 0.5, 0.3535533905932738)
    """
    init_value = check_real(init_value, "init_value")
    transition_steps = check_positive(transition_steps, "transition_steps")
    decay_rate = check_nonnegative(decay_rate, "decay_rate")
    transition_begin = check_int(transition_begin, "transition_begin", 0)
    if end_value is not None:
        end_value = check_real(end_value, "end_value")
        clip = min if decay_rate > 1 else max

    def schedule(step):
        p = max(step - transition_begin, 0) / transition_steps
        if staircase:
            p = math.floor(p)
        value = init_value * decay_rate**p
        return value if end_value is None else clip(value, end_value)

    return schedule


def step_decay(init_value, step_size, gamma=0.1):
    r"""Multiply by ``gamma`` every ``step_size`` steps (torch's ``StepLR``).

    .. math:: v(t) = v_0 \, \gamma^{\lfloor t / s \rfloor}

    Example:
        >>> s = step_decay(1.0, step_size=3, gamma=0.1)
        >>> s(2), s(3), s(6)
        (1.0, 0.1, 0.010000000000000002)
    """
    step_size = check_int(step_size, "step_size", 1)
    return exponential_decay(init_value, step_size, check_real(gamma, "gamma"), staircase=True)


def _ramp(init_value, end_value, transition_steps, transition_begin):
    """Checked end values and ``step -> min(max(t - t_b, 0), T) / T`` of a transition."""
    init_value = check_real(init_value, "init_value")
    end_value = check_real(end_value, "end_value")
    transition_steps = check_int(transition_steps, "transition_steps", 1)
    transition_begin = check_int(transition_begin, "transition_begin", 0)

    def fraction(step):
        return min(max(step - transition_begin, 0), transition_steps) / transition_steps

    return init_value, end_value, fraction


def polynomial_schedule(init_value, end_value, power, transition_steps, transition_begin=0):
    r"""Polynomial decay from ``init_value`` to ``end_value`` (optax's signature).

    .. math::
        v(t) = (v_0 - v_1)\left(1 - \frac{\min(\max(t - t_b, 0), T)}{T}\right)^{k} + v_1

    with power :math:`k`; constant ``end_value`` after ``transition_begin +
    transition_steps``. ``power=1`` is a linear ramp.

    Example:
        >>> s = polynomial_schedule(1.0, 0.0, power=2, transition_steps=4)
        >>> s(0), s(2), s(4), s(9)
        (1.0, 0.25, 0.0, 0.0)
    """
    init_value, end_value, fraction = _ramp(
        init_value, end_value, transition_steps, transition_begin
    )
    power = check_real(power, "power")
    return lambda step: (init_value - end_value) * (1.0 - fraction(step)) ** power + end_value


def linear_schedule(init_value, end_value, transition_steps, transition_begin=0):
    r"""Linear ramp from ``init_value`` to ``end_value`` over ``transition_steps``.

    .. math::
        v(t) = v_0 + (v_1 - v_0)\,\frac{\min(\max(t - t_b, 0), T)}{T}

    Constant before ``transition_begin`` and after the ramp.

    Example:
        >>> s = linear_schedule(0.0, 1.0, transition_steps=4)
        >>> s(0), s(1), s(4), s(100)
        (0.0, 0.25, 1.0, 1.0)
    """
    init_value, end_value, fraction = _ramp(
        init_value, end_value, transition_steps, transition_begin
    )
    return lambda step: anneal_linear(init_value, end_value, fraction(step))


def linear_warmup(peak_value, warmup_steps, init_value=0.0):
    r"""Linear warmup from ``init_value`` to ``peak_value`` in ``warmup_steps``.

    .. math:: v(t) = v_0 + (v_{peak} - v_0)\,\min(t, W) / W

    Join it with a decay (``join_schedules``) or use ``warmup_cosine_decay``.

    Example:
        >>> s = linear_warmup(1.0, warmup_steps=4)
        >>> s(0), s(2), s(10)
        (0.0, 0.5, 1.0)
    """
    return linear_schedule(init_value, peak_value, warmup_steps)
