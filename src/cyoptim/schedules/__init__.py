"""Learning-rate schedules: pure functions of the step count, and torch-style classes.

Pure schedules (optax style): a factory validates its arguments and returns a
callable ``step -> value``; nothing is stored between calls, and schedules
compose (``join_schedules``)::

    >>> from cyoptim import schedules
    >>> lr = schedules.warmup_cosine_decay(0.0, 0.1, warmup_steps=100, decay_steps=1000)
    >>> lr(0), lr(100), lr(1000)
    (0.0, 0.1, 0.0)

Scheduler classes (torch.optim.lr_scheduler's names, arguments and defaults)
write ``group["lr"]`` of every param group of a cyoptim optimizer; each group
keeps its own base rate in ``group["initial_lr"]``, so per-layer rates keep
their ratios. They reproduce torch 2.13's learning-rate sequences (to ~1e-12
relative; most are closed-form adapters over the functions here, see each
class). Unlike torch's chainable schedulers they compute the rate from the base
rate, not from the current ``group["lr"]``: to combine schedules, use
``SequentialLR``, ``ChainedScheduler`` (torch's composition, step by step) or
``join_schedules`` + ``LambdaLR``, not two schedulers stepping the same
optimizer on their own. ``MultiplicativeLR`` and ``SWALR`` scale the current
rate by nature, step by step as torch.
"""

from ._basic import (
    constant_schedule,
    exponential_decay,
    linear_schedule,
    linear_warmup,
    multistep_decay,
    piecewise_constant,
    polynomial_schedule,
    step_decay,
)
from ._cosine import cosine_decay, cosine_warm_restarts, warmup_cosine_decay
from ._cycles import cyclic_schedule, one_cycle_momentum, one_cycle_schedule
from ._join import join_schedules

__all__ = [
    "constant_schedule",
    "cosine_decay",
    "cosine_warm_restarts",
    "cyclic_schedule",
    "exponential_decay",
    "join_schedules",
    "linear_schedule",
    "linear_warmup",
    "multistep_decay",
    "one_cycle_momentum",
    "one_cycle_schedule",
    "piecewise_constant",
    "polynomial_schedule",
    "step_decay",
    "warmup_cosine_decay",
]

from ._base import LRScheduler
from ._chained import ChainedScheduler
from ._cosine_lr import CosineAnnealingLR, CosineAnnealingWarmRestarts
from ._cyclic_lr import CyclicLR, OneCycleLR
from ._decay_lr import (
    ConstantLR,
    ExponentialLR,
    LambdaLR,
    LinearLR,
    MultiplicativeLR,
    MultiStepLR,
    PolynomialLR,
    StepLR,
)
from ._plateau import ReduceLROnPlateau
from ._sequential import SequentialLR
from ._swa import SWALR

__all__ += [
    "ChainedScheduler",
    "ConstantLR",
    "CosineAnnealingLR",
    "CosineAnnealingWarmRestarts",
    "CyclicLR",
    "ExponentialLR",
    "LRScheduler",
    "LambdaLR",
    "LinearLR",
    "MultiStepLR",
    "MultiplicativeLR",
    "OneCycleLR",
    "PolynomialLR",
    "ReduceLROnPlateau",
    "SWALR",
    "SequentialLR",
    "StepLR",
]
