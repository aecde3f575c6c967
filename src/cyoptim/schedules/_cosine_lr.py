"""Cosine schedulers: CosineAnnealingLR and CosineAnnealingWarmRestarts (SGDR)."""

import math

from ._base import LRScheduler
from ._checks import check_int, check_real
from ._cosine import cosine_decay, cosine_warm_restarts


class CosineAnnealingLR(LRScheduler):
    r"""Cosine annealing from each group's base rate to ``eta_min`` in ``T_max`` steps.

    .. math::
        \eta_t = \eta_{min} + \frac{\eta_0 - \eta_{min}}{2}
                 \left(1 + \cos\frac{\pi t}{T_{max}}\right)

    As torch's, the curve does not stop at :math:`T_{max}`: it rises back to
    :math:`\eta_0` over the next :math:`T_{max}` steps (period :math:`2T_{max}`).
    This class is :func:`~cyoptim.schedules.cosine_decay` at the step
    reflected into :math:`[0, T_{max}]`. torch computes the rate recursively
    from the previous one; both agree to ~1e-13 of the base rate (the
    recursion loses a little precision near :math:`\eta_{min}`).

    Args:
        optimizer: a cyoptim optimizer.
        T_max (int): steps of the half period (>= 1).
        eta_min (float): minimum rate (default 0).
        last_epoch (int): see :class:`LRScheduler` (default -1).
    """

    def __init__(self, optimizer, T_max, eta_min=0.0, last_epoch=-1):
        self.T_max = check_int(T_max, "T_max", 1)
        self.eta_min = check_real(eta_min, "eta_min")
        super().__init__(optimizer, last_epoch)

    _follows_added_groups = True

    def _schedule(self, base_lr, index):
        cosine = cosine_decay(base_lr, self.T_max, end_value=self.eta_min)
        period = 2 * self.T_max

        def schedule(step):
            t = step % period
            return cosine(min(t, period - t))

        return schedule

    def _cosine_term(self, step):
        return 1 + math.cos(math.pi * step / self.T_max)

    def _added_group_lr(self, lr, since, step):
        # torch's recursion: (lr - eta_min) scales by the ratio of the cosine terms
        return self.eta_min + (lr - self.eta_min) * self._cosine_term(step) / self._cosine_term(
            since
        )

    _chainable = True

    def _chained_lr(self, lr, index, step):
        # torch's get_lr: after each minimum it climbs back by a step of the base rate
        if step == 0:
            return lr
        if (step - 1 - self.T_max) % (2 * self.T_max) == 0:
            return (
                lr
                + (self.base_lrs[index] - self.eta_min) * (1 - math.cos(math.pi / self.T_max)) / 2
            )
        return (
            self._cosine_term(step) / self._cosine_term(step - 1) * (lr - self.eta_min)
            + self.eta_min
        )

    def _check_added_groups_step(self, step):
        # After each minimum torch climbs back with each group's base rate, which a
        # group added later does not have: torch 2.13 fails there (zip, strict).
        if (step - 1 - self.T_max) % (2 * self.T_max) == 0:
            raise ValueError(
                f"CosineAnnealingLR cannot take step {step} with param groups added after it "
                f"was built: past the minimum at step {step - 1} the rate climbs back towards "
                f"each group's base rate, which an added group does not have (torch 2.13 "
                f"fails there too); build a new scheduler after add_param_group"
            )


class CosineAnnealingWarmRestarts(LRScheduler):
    r"""Cosine annealing with warm restarts (SGDR).

    .. math::
        \eta_t = \eta_{min} + \frac{\eta_0 - \eta_{min}}{2}
                 \left(1 + \cos\frac{\pi T_{cur}}{T_i}\right)

    :math:`T_i` is the current period (``T_0``, then ``T_0 * T_mult``, ...) and
    :math:`T_{cur}` the steps since the last restart. Over
    :func:`~cyoptim.schedules.cosine_warm_restarts`; torch's integer stepping
    gives the same values. (torch's ``step(epoch)`` with a fractional epoch is
    not supported: call ``step()`` once per batch with a ``T_0`` in batches.)

    Args:
        optimizer: a cyoptim optimizer.
        T_0 (int): steps until the first restart (>= 1).
        T_mult (int): factor by which the period grows at each restart (default 1).
        eta_min (float): minimum rate (default 0).
        last_epoch (int): see :class:`LRScheduler` (default -1).

    Reference: Loshchilov & Hutter, "SGDR", https://arxiv.org/abs/1608.03983
    """

    def __init__(self, optimizer, T_0, T_mult=1, eta_min=0.0, last_epoch=-1):
        if isinstance(T_0, bool) or not isinstance(T_0, int) or T_0 <= 0:
            raise ValueError(f"Expected positive integer T_0, but got {T_0}")
        if isinstance(T_mult, bool) or not isinstance(T_mult, int) or T_mult < 1:
            raise ValueError(f"Expected integer T_mult >= 1, but got {T_mult}")
        if isinstance(eta_min, bool) or not isinstance(eta_min, (float, int)):
            raise ValueError(
                f"Expected float or int eta_min, but got {eta_min} of type {type(eta_min)}"
            )
        self.T_0 = T_0
        self.T_mult = T_mult
        self.eta_min = eta_min
        super().__init__(optimizer, last_epoch)

    def _schedule(self, base_lr, index):
        return cosine_warm_restarts(base_lr, self.T_0, self.T_mult, self.eta_min)
