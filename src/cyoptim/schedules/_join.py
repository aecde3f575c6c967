"""Composition of schedules: one after another at given boundaries."""

from bisect import bisect_right

from ._checks import check_boundaries


def join_schedules(schedules, boundaries):
    r"""Run ``schedules[i]`` between ``boundaries[i-1]`` and ``boundaries[i]``.

    Each schedule sees the steps counted from the start of its own segment
    (optax's ``join_schedules``):

    .. math::
        v(t) = s_i(t - b_{i-1}) \quad \text{for } b_{i-1} \le t < b_i
        \qquad (b_{-1} = 0,\ b_n = \infty)

    Args:
        schedules: callables ``step -> value``, one more than boundaries.
        boundaries: strictly increasing step counts where the next schedule
            takes over (at the boundary itself the next one is used, at its
            step 0).

    Example (5 steps of warmup, then cosine decay over 95 steps)::

        >>> from cyoptim.schedules import join_schedules, linear_warmup, cosine_decay
        >>> s = join_schedules([linear_warmup(0.1, 5), cosine_decay(0.1, 95)], [5])
        >>> s(0), s(5), s(100)
        (0.0, 0.1, 0.0)
    """
    schedules = list(schedules)
    boundaries = check_boundaries(boundaries, "boundaries", strict=True)
    if len(schedules) != len(boundaries) + 1:
        raise ValueError(
            f"join_schedules needs one more schedule than boundaries, got "
            f"{len(schedules)} schedules and {len(boundaries)} boundaries"
        )
    for i, s in enumerate(schedules):
        if not callable(s):
            raise TypeError(
                f"schedules[{i}] must be callable (step -> value), got {type(s).__name__}"
            )
    starts = [0] + boundaries

    def schedule(step):
        i = bisect_right(boundaries, step)
        return schedules[i](step - starts[i])

    return schedule
