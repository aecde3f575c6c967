"""Cosine decay, cosine with warm restarts (SGDR), warmup + cosine."""

import math

from ._basic import linear_schedule
from ._checks import check_int, check_real
from ._join import join_schedules


def anneal_cos(start, end, pct):
    r"""Half-cosine from ``start`` (pct=0) to ``end`` (pct=1), torch's order of operations.

    .. math:: \text{end} + \tfrac12(\text{start} - \text{end})(1 + \cos(\pi\,\text{pct}))
    """
    return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)


def cosine_decay(init_value, decay_steps, alpha=0.0, *, end_value=None):
    r"""Cosine decay from ``init_value`` to ``alpha * init_value`` (optax's ``cosine_decay_schedule``).

    .. math::
        v(t) = v_1 + \frac{v_0 - v_1}{2}\left(1 + \cos\frac{\pi \min(t, T)}{T}\right),
        \qquad v_1 = \alpha v_0

    constant :math:`v_1` after ``decay_steps`` (:math:`T`). ``end_value``, if
    given, sets :math:`v_1` directly (torch's ``eta_min``) instead of ``alpha``.

    Reference: Loshchilov & Hutter, "SGDR", https://arxiv.org/abs/1608.03983

    Example:
        >>> s = cosine_decay(1.0, decay_steps=10)
        >>> s(0), s(5), s(10), s(20)
        (1.0, 0.5, 0.0, 0.0)
    """
    init_value = check_real(init_value, "init_value")
    decay_steps = check_int(decay_steps, "decay_steps", 1)
    if end_value is None:
        end_value = check_real(alpha, "alpha") * init_value
    else:
        end_value = check_real(end_value, "end_value")
    return lambda step: anneal_cos(
        init_value, end_value, min(max(step, 0), decay_steps) / decay_steps
    )


def cosine_warm_restarts(init_value, first_period, period_mult=1, min_value=0.0):
    r"""Cosine annealing with warm restarts, SGDR (torch's ``CosineAnnealingWarmRestarts``).

    .. math::
        v(t) = v_{min} + \frac{v_0 - v_{min}}{2}\left(1 + \cos\frac{\pi T_{cur}}{T_i}\right)

    where the periods are :math:`T_0, T_0 m, T_0 m^2, \dots` (``first_period``,
    ``period_mult``), :math:`T_i` is the period that contains step :math:`t` and
    :math:`T_{cur}` the steps since it began: each restart jumps back to ``init_value``.

    Reference: Loshchilov & Hutter, "SGDR", https://arxiv.org/abs/1608.03983

    Example:
        >>> s = cosine_warm_restarts(1.0, first_period=4, period_mult=2)
        >>> s(0), s(2), s(4), s(8), s(12)
        (1.0, 0.5, 1.0, 0.5, 1.0)
    """
    init_value = check_real(init_value, "init_value")
    first_period = check_int(first_period, "first_period", 1)
    period_mult = check_int(period_mult, "period_mult", 1)
    min_value = check_real(min_value, "min_value")

    def schedule(step):
        t_cur, t_i = step, first_period
        if period_mult == 1:
            t_cur = step % first_period
        else:
            while t_cur >= t_i:  # O(log t): the periods grow geometrically
                t_cur -= t_i
                t_i *= period_mult
        return min_value + (init_value - min_value) * (1 + math.cos(math.pi * t_cur / t_i)) / 2

    return schedule


def warmup_cosine_decay(init_value, peak_value, warmup_steps, decay_steps, end_value=0.0):
    r"""Linear warmup to ``peak_value``, then cosine decay to ``end_value`` (as optax).

    .. math::
        v(t) = \begin{cases}
          v_0 + (v_{peak} - v_0)\, t / W & t < W \\
          v_1 + \frac{v_{peak} - v_1}{2}\left(1 + \cos\frac{\pi (t - W)}{T - W}\right) & W \le t \le T \\
          v_1 & t > T
        \end{cases}

    ``decay_steps`` (:math:`T`) counts the whole schedule, warmup included.

    Example:
        >>> s = warmup_cosine_decay(0.0, 1.0, warmup_steps=10, decay_steps=110)
        >>> s(0), s(5), s(10), s(110)
        (0.0, 0.5, 1.0, 0.0)
    """
    warmup_steps = check_int(warmup_steps, "warmup_steps", 0)
    decay_steps = check_int(decay_steps, "decay_steps", 1)
    if decay_steps <= warmup_steps:
        raise ValueError(
            f"decay_steps ({decay_steps}) counts the warmup too and must be "
            f"greater than warmup_steps ({warmup_steps})"
        )
    cosine = cosine_decay(peak_value, decay_steps - warmup_steps, end_value=end_value)
    if warmup_steps == 0:
        return cosine
    return join_schedules(
        [linear_schedule(init_value, peak_value, warmup_steps), cosine], [warmup_steps]
    )
