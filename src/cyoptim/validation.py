"""Hyperparameter checks shared by several optimizers, with torch's wording."""

import numbers


def validate_adam_family(group):
    """torch's checks for lr, eps, betas and weight_decay (shared by the Adam family)."""
    if not 0.0 <= group["lr"]:
        raise ValueError(f"Invalid learning rate: {group['lr']}")
    if not 0.0 <= group["eps"]:
        raise ValueError(f"Invalid epsilon value: {group['eps']}")
    betas = group["betas"]
    if len(betas) != 2:
        raise ValueError(f"betas must be a pair of floats, got {betas!r}")
    if not 0.0 <= betas[0] < 1.0:
        raise ValueError(f"Invalid beta parameter at index 0: {betas[0]}")
    if not 0.0 <= betas[1] < 1.0:
        raise ValueError(f"Invalid beta parameter at index 1: {betas[1]}")
    if not 0.0 <= group["weight_decay"]:
        raise ValueError(f"Invalid weight_decay value: {group['weight_decay']}")


def validate_pair(group, name):
    """Check the group's ``name`` (Rprop's ``etas``, ...): ValueError unless it
    has two items, TypeError unless they are real numbers (torch finds out at
    its first step)."""
    pair = group[name]
    if isinstance(pair, (str, bytes)) or not hasattr(pair, "__len__") or len(pair) != 2:
        raise ValueError(f"{name} must be a pair of floats, got {pair!r}")
    if not all(isinstance(x, numbers.Real) for x in pair):
        raise TypeError(f"{name} must be a pair of floats, got {pair!r}")
