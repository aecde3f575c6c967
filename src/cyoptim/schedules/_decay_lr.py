"""Decay schedulers whose torch sequence has a closed form: thin adapters.

Each class builds the pure schedule of a group from its base rate
(``group["initial_lr"]``) and evaluates it at ``last_epoch``. torch computes
most of these recursively (``lr * gamma`` from the current rate); the closed
form gives the same sequence to rounding (~1e-15 relative after 300 steps).

A param group added to the optimizer later has no base rate: as torch's
recursion does, each class carries it along from the rate it had when the
scheduler first saw it (``_added_group_lr``: that rate times the product of
torch's per-step factors since then, in closed form). Inside a
ChainedScheduler each class scales the group's current rate by torch's
per-step factor, in torch's arithmetic (``_chained_lr``).
"""

import types
from bisect import bisect_right

from ._base import LRScheduler
from ._basic import (
    exponential_decay,
    linear_schedule,
    multistep_decay,
    piecewise_constant,
    polynomial_schedule,
    step_decay,
)
from ._checks import check_int


class StepLR(LRScheduler):
    r"""Multiply each group's rate by ``gamma`` every ``step_size`` steps.

    .. math:: \eta_t = \eta_0 \, \gamma^{\lfloor t / \text{step\_size} \rfloor}

    Over :func:`~cyoptim.schedules.step_decay`.

    Args:
        optimizer: a cyoptim optimizer.
        step_size (int): period of the decay (>= 1).
        gamma (float): multiplicative factor (default 0.1).
        last_epoch (int): see :class:`LRScheduler` (default -1).

    Example:
        >>> import numpy as np, cyoptim
        >>> opt = cyoptim.SGD([np.zeros(3)], lr=1.0)
        >>> sched = cyoptim.schedules.StepLR(opt, step_size=2, gamma=0.5)
        >>> for _ in range(3):
        ...     sched.step()
        >>> sched.get_last_lr()
        [0.5]
    """

    def __init__(self, optimizer, step_size, gamma=0.1, last_epoch=-1):
        step_decay(1.0, step_size, gamma)  # validate before touching the optimizer
        self.step_size = step_size
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    _follows_added_groups = True

    def _schedule(self, base_lr, index):
        return step_decay(base_lr, self.step_size, self.gamma)

    def _added_group_lr(self, lr, since, step):
        return lr * self.gamma ** (step // self.step_size - since // self.step_size)

    _chainable = True

    def _chained_lr(self, lr, index, step):
        return lr * self.gamma if step != 0 and step % self.step_size == 0 else lr


class MultiStepLR(LRScheduler):
    r"""Multiply each group's rate by ``gamma`` at each milestone.

    .. math:: \eta_t = \eta_0 \, \gamma^{\#\{m \in \text{milestones} : m \le t\}}

    Over :func:`~cyoptim.schedules.multistep_decay` (a milestone listed twice
    decays twice, as in torch).

    Args:
        optimizer: a cyoptim optimizer.
        milestones (list of int): steps at which to decay.
        gamma (float): multiplicative factor (default 0.1).
        last_epoch (int): see :class:`LRScheduler` (default -1).
    """

    def __init__(self, optimizer, milestones, gamma=0.1, last_epoch=-1):
        self.milestones = sorted(milestones)
        multistep_decay(1.0, self.milestones, gamma)
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    _follows_added_groups = True

    def _schedule(self, base_lr, index):
        return multistep_decay(base_lr, self.milestones, self.gamma)

    def _added_group_lr(self, lr, since, step):
        passed = bisect_right(self.milestones, step) - bisect_right(self.milestones, since)
        return lr * self.gamma**passed

    _chainable = True

    def _chained_lr(self, lr, index, step):
        count = self.milestones.count(step)
        return lr * self.gamma**count if count else lr


class ExponentialLR(LRScheduler):
    r"""Multiply each group's rate by ``gamma`` every step.

    .. math:: \eta_t = \eta_0 \, \gamma^t

    Over :func:`~cyoptim.schedules.exponential_decay` (torch multiplies the
    current rate by ``gamma``; the closed form differs by rounding only).

    Args:
        optimizer: a cyoptim optimizer.
        gamma (float): multiplicative factor (>= 0).
        last_epoch (int): see :class:`LRScheduler` (default -1).
    """

    def __init__(self, optimizer, gamma, last_epoch=-1):
        exponential_decay(1.0, 1, gamma)
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    _follows_added_groups = True

    def _schedule(self, base_lr, index):
        return exponential_decay(base_lr, 1, self.gamma)

    def _added_group_lr(self, lr, since, step):
        return lr * self.gamma ** (step - since)

    _chainable = True

    def _chained_lr(self, lr, index, step):
        return lr if step == 0 else lr * self.gamma


class ConstantLR(LRScheduler):
    r"""Scale each group's rate by ``factor`` for the first ``total_iters`` steps.

    .. math:: \eta_t = \eta_0 \cdot (\text{factor if } t < \text{total\_iters} \text{ else } 1)

    Over :func:`~cyoptim.schedules.piecewise_constant`.

    Args:
        optimizer: a cyoptim optimizer.
        factor (float): scale in [0, 1] (default 1/3).
        total_iters (int): steps at the reduced rate (default 5, >= 1; torch
            also takes 0 and then keeps the factor forever).
        last_epoch (int): see :class:`LRScheduler` (default -1).
    """

    def __init__(self, optimizer, factor=1.0 / 3, total_iters=5, last_epoch=-1):
        if factor > 1.0 or factor < 0:
            raise ValueError("Constant multiplicative factor expected to be between 0 and 1.")
        self.factor = factor
        self.total_iters = check_int(total_iters, "total_iters", 1)
        super().__init__(optimizer, last_epoch)

    _follows_added_groups = True

    def _schedule(self, base_lr, index):
        return piecewise_constant([self.total_iters], [base_lr * self.factor, base_lr])

    def _added_group_lr(self, lr, since, step):
        # torch divides by the factor at total_iters, whatever the group's rate
        return lr * (1.0 / self.factor) if since < self.total_iters <= step else lr

    _chainable = True

    def _chained_lr(self, lr, index, step):
        if step == 0:
            return lr * self.factor
        return lr * (1.0 / self.factor) if step == self.total_iters else lr


class LinearLR(LRScheduler):
    r"""Scale each group's rate by a factor going linearly from ``start_factor`` to ``end_factor``.

    .. math::
        \eta_t = \eta_0 \left(f_s + (f_e - f_s)\frac{\min(t, T)}{T}\right)

    Over :func:`~cyoptim.schedules.linear_schedule` (torch multiplies the
    current rate by a ratio each step; same sequence to rounding). A linear
    warmup: ``LinearLR(opt, start_factor=0.01, total_iters=warmup_steps)``.

    Args:
        optimizer: a cyoptim optimizer.
        start_factor (float): factor at step 0, in (0, 1] (default 1/3).
        end_factor (float): factor from ``total_iters`` on, in [0, 1] (default 1).
        total_iters (int): :math:`T`, steps of the ramp (default 5, >= 1).
        last_epoch (int): see :class:`LRScheduler` (default -1).
    """

    def __init__(
        self, optimizer, start_factor=1.0 / 3, end_factor=1.0, total_iters=5, last_epoch=-1
    ):
        if start_factor > 1.0 or start_factor <= 0:
            raise ValueError(
                "Starting multiplicative factor expected to be greater than 0 "
                "and less or equal to 1."
            )
        if end_factor > 1.0 or end_factor < 0:
            raise ValueError("Ending multiplicative factor expected to be between 0 and 1.")
        self.start_factor = start_factor
        self.end_factor = end_factor
        self.total_iters = check_int(total_iters, "total_iters", 1)
        super().__init__(optimizer, last_epoch)

    _follows_added_groups = True

    def _schedule(self, base_lr, index):
        return linear_schedule(
            base_lr * self.start_factor, base_lr * self.end_factor, self.total_iters
        )

    def _added_group_lr(self, lr, since, step):
        if since >= self.total_iters:
            return lr
        # torch's factors telescope to factor(min(step, T)) / factor(since), with
        # factor(t) proportional to T * start + t * (end - start)
        slope = self.end_factor - self.start_factor
        start = self.total_iters * self.start_factor
        return lr * (start + min(step, self.total_iters) * slope) / (start + since * slope)

    _chainable = True

    def _chained_lr(self, lr, index, step):
        if step == 0:
            return lr * self.start_factor
        if step > self.total_iters:
            return lr
        slope = self.end_factor - self.start_factor
        return lr * (1.0 + slope / (self.total_iters * self.start_factor + (step - 1) * slope))


class PolynomialLR(LRScheduler):
    r"""Decay each group's rate polynomially to 0 in ``total_iters`` steps.

    .. math:: \eta_t = \eta_0 \left(1 - \frac{\min(t, T)}{T}\right)^{p}

    Over :func:`~cyoptim.schedules.polynomial_schedule` (torch's recursive
    form telescopes to the same values, to rounding).

    Args:
        optimizer: a cyoptim optimizer.
        total_iters (int): :math:`T` (default 5, >= 1).
        power (float): :math:`p` (default 1.0).
        last_epoch (int): see :class:`LRScheduler` (default -1).
    """

    def __init__(self, optimizer, total_iters=5, power=1.0, last_epoch=-1):
        polynomial_schedule(1.0, 0.0, power, total_iters)
        self.total_iters = total_iters
        self.power = power
        super().__init__(optimizer, last_epoch)

    _follows_added_groups = True

    def _schedule(self, base_lr, index):
        return polynomial_schedule(base_lr, 0.0, self.power, self.total_iters)

    def _added_group_lr(self, lr, since, step):
        if since >= self.total_iters:
            return lr
        left = (self.total_iters - min(step, self.total_iters)) / (self.total_iters - since)
        return lr * left**self.power

    _chainable = True

    def _chained_lr(self, lr, index, step):
        if step == 0 or step > self.total_iters:
            return lr
        T = self.total_iters
        return lr * ((1.0 - step / T) / (1.0 - (step - 1) / T)) ** self.power


class _UserLambdas:
    """The ``lr_lambda`` argument of LambdaLR and MultiplicativeLR (torch's checks,
    wording and state_dict: the ``__dict__`` of callable objects is saved, plain
    functions and lambdas are not)."""

    _unsaved: tuple[str, ...] = ("optimizer", "lr_lambdas")

    def __init__(self, optimizer, lr_lambda, last_epoch=-1):
        self._set_lambdas(optimizer, lr_lambda)
        super().__init__(optimizer, last_epoch)

    def _set_lambdas(self, optimizer, lr_lambda):
        n = len(optimizer.param_groups) if hasattr(optimizer, "param_groups") else 1
        if isinstance(lr_lambda, (list, tuple)):
            if len(lr_lambda) != n:
                raise ValueError(f"Expected {n} lr_lambdas, but got {len(lr_lambda)}")
            self.lr_lambdas = list(lr_lambda)
        else:
            self.lr_lambdas = [lr_lambda] * n
        for fn in self.lr_lambdas:
            if not callable(fn):
                raise TypeError(f"lr_lambda should be a function, but got {type(fn).__name__}")

    def state_dict(self):
        state = super().state_dict()
        state["lr_lambdas"] = [
            None if isinstance(fn, types.FunctionType) else fn.__dict__.copy()
            for fn in self.lr_lambdas
        ]
        return state

    def load_state_dict(self, state_dict):
        state = dict(state_dict)
        saved = state.pop("lr_lambdas", [None] * len(self.lr_lambdas))
        super().load_state_dict(state)
        for fn, attributes in zip(self.lr_lambdas, saved):
            if attributes is not None:
                fn.__dict__.update(attributes)


class LambdaLR(_UserLambdas, LRScheduler):
    r"""Each group's base rate times a user function of the step.

    .. math:: \eta_t = \eta_0 \, \lambda(t)

    Any pure schedule of :mod:`cyoptim.schedules` built with ``init_value=1``
    works as ``lr_lambda``.

    Args:
        optimizer: a cyoptim optimizer.
        lr_lambda (callable or list): ``step -> factor``, or one per param group.
        last_epoch (int): see :class:`LRScheduler` (default -1).

    ``state_dict`` saves the ``__dict__`` of callable objects, not plain
    functions or lambdas (as torch).
    """

    def _schedule(self, base_lr, index):
        fn = self.lr_lambdas[index]
        return lambda step: base_lr * fn(step)


class MultiplicativeLR(_UserLambdas, LRScheduler):
    r"""Multiply each group's current rate by a user function of the step.

    .. math:: \eta_t = \eta_{t-1} \, \lambda(t) \quad (t \ge 1), \qquad \eta_0 = \text{the group's rate}

    torch's rule, step by step: each ``step()`` scales ``group["lr"]`` as it
    is, so the rate is the base rate times :math:`\prod_{k=1}^{t} \lambda(k)`
    unless something else changes it in between. Not a closed form: the
    product runs over every step, and ``lr_lambda`` may keep state.

    Args:
        optimizer: a cyoptim optimizer.
        lr_lambda (callable or list): ``step -> factor``, or one per param group.
        last_epoch (int): see :class:`LRScheduler` (default -1).

    ``state_dict`` saves the ``__dict__`` of callable objects, not plain
    functions or lambdas (as torch).

    Example:
        >>> import numpy as np, cyoptim
        >>> opt = cyoptim.SGD([np.zeros(3)], lr=1.0)
        >>> sched = cyoptim.schedules.MultiplicativeLR(opt, lambda step: 0.5)
        >>> for _ in range(3):
        ...     sched.step()
        >>> sched.get_last_lr()
        [0.125]
    """

    def get_lr(self):
        """The rates at ``last_epoch``: each group's current rate times its factor."""
        groups = self.optimizer.param_groups
        if self._step_count == 0:  # torch's initial step keeps the rates
            return [group["lr"] for group in groups]
        return [
            group["lr"] * fn(self.last_epoch)
            for fn, group in zip(self.lr_lambdas, groups, strict=True)
        ]
