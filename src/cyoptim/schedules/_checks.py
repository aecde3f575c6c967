"""Argument checks shared by the schedules and the scheduler classes.

Each raises ValueError (TypeError for a wrong type) naming the argument, so a
schedule fails when it is built, not steps later in a training loop.
"""

import math
import numbers


def check_real(value, name):
    """A finite real number (bools refused)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    return value


def check_nonnegative(value, name):
    if check_real(value, name) < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")
    return value


def check_positive(value, name):
    if check_real(value, name) <= 0:
        raise ValueError(f"{name} must be > 0, got {value}")
    return value


def check_int(value, name, minimum):
    """An integer >= minimum (bools refused)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value}")
    return int(value)


def check_choice(value, name, choices):
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}")
    return value


def check_boundaries(boundaries, name, strict=False):
    """A list of integer steps >= 0 in increasing (non-decreasing) order."""
    boundaries = [check_int(b, f"{name}[{i}]", 0) for i, b in enumerate(boundaries)]
    for a, b in zip(boundaries, boundaries[1:]):
        if b < a or (strict and b == a):
            order = "strictly increasing" if strict else "sorted (non-decreasing)"
            raise ValueError(f"{name} must be {order}, got {boundaries}")
    return boundaries
