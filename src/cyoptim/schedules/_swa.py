"""SWALR: anneal each group's rate to a constant for stochastic weight averaging."""

import math

from ._base import LRScheduler, check_optimizer, format_param
from ._checks import check_int, check_real

SWA_ANNEAL_STRATEGIES = ("cos", "linear")


def swa_anneal_fraction(t, strategy):
    r"""How far along the anneal is at fraction ``t`` of it: ``t`` (linear) or
    :math:`(1 - \cos \pi t)/2` (cos), torch's SWALR formulas."""
    if strategy == "linear":
        return t
    return (1 - math.cos(math.pi * t)) / 2


class SWALR(LRScheduler):
    r"""Anneal each group's rate to ``swa_lr`` in ``anneal_epochs`` steps, then hold it.

    With :math:`\alpha_t = a(\min(1, t / E))` (:math:`a` the linear or cosine
    anneal, :math:`E` = ``anneal_epochs``), step :math:`t` sets

    .. math::
        \eta_t = \alpha_t \, \eta_{swa} + (1 - \alpha_t)\, \eta_{start},
        \qquad \eta_{start} = \frac{\eta_{t-1} - \alpha_{t-1}\eta_{swa}}{1 - \alpha_{t-1}}

    (:math:`\eta_{start} = \eta_{swa}` once :math:`\alpha_{t-1} = 1`): torch's
    rule, which reads the group's current rate and recovers the rate the
    anneal started from, so SWALR takes over from whatever rate another
    scheduler left (as in torch's recipe: a cosine schedule until the SWA
    phase, then SWALR). Because it reads the current rate, it is computed
    step by step as torch does, not from a closed form, and its rates are
    bitwise torch's. ``anneal_epochs=0`` sets ``swa_lr`` at once. The step
    count :math:`t` is the number of ``step()`` calls since construction
    (torch counts those, not ``last_epoch``).

    Writes ``group["swa_lr"]`` of every param group, as torch.

    Args:
        optimizer: a cyoptim optimizer.
        swa_lr (float or list): the rate to anneal to (per group).
        anneal_epochs (int): steps of the anneal (default 10, >= 0).
        anneal_strategy (str): "cos" (default) or "linear".
        last_epoch (int): see :class:`LRScheduler` (default -1).

    Example (averaging the weights while the rate is held):
        >>> import numpy as np, cyoptim
        >>> w = np.zeros(3)
        >>> opt = cyoptim.SGD([w], lr=0.1)
        >>> swa = cyoptim.AveragedParams([w], mode="swa")
        >>> sched = cyoptim.schedules.SWALR(opt, swa_lr=0.05, anneal_epochs=2,
        ...                                 anneal_strategy="linear")
        >>> for _ in range(3):
        ...     opt.step([np.ones(3)])
        ...     swa.update()
        ...     sched.step()
        >>> [round(lr, 12) for lr in sched.get_last_lr()], swa.n_averaged
        ([0.05], 3)

    Reference: Izmailov et al., "Averaging Weights Leads to Wider Optima and
    Better Generalization", https://arxiv.org/abs/1803.05407
    """

    def __init__(self, optimizer, swa_lr, anneal_epochs=10, anneal_strategy="cos", last_epoch=-1):
        check_optimizer(optimizer)
        swa_lrs = [check_real(lr, "swa_lr") for lr in format_param("swa_lr", optimizer, swa_lr)]
        if anneal_strategy not in SWA_ANNEAL_STRATEGIES:
            raise ValueError(
                f"anneal_strategy must be one of 'cos' or 'linear', instead got {anneal_strategy}"
            )
        if (
            isinstance(anneal_epochs, bool)
            or not isinstance(anneal_epochs, int)
            or anneal_epochs < 0
        ):
            raise ValueError(f"anneal_epochs must be equal or greater than 0, got {anneal_epochs}")
        check_int(last_epoch, "last_epoch", -1)
        self._anneal_strategy = anneal_strategy
        self.anneal_epochs = anneal_epochs
        for lr, group in zip(swa_lrs, optimizer.param_groups, strict=True):
            group["swa_lr"] = lr
        super().__init__(optimizer, last_epoch)

    def _alpha(self, step):
        t = max(0, min(1, step / max(1, self.anneal_epochs)))
        return swa_anneal_fraction(t, self._anneal_strategy)

    @staticmethod
    def _start_lr(lr, swa_lr, alpha):
        """The rate the anneal started from, recovered from the rate at alpha."""
        if alpha == 1:
            return swa_lr
        return (lr - alpha * swa_lr) / (1 - alpha)

    def get_lr(self):
        """The rates of step ``_step_count`` from the groups' current rates (torch's get_lr)."""
        step = self._step_count
        if self.anneal_epochs == 0:
            step = max(1, step)
        previous, alpha = self._alpha(step - 1), self._alpha(step)
        groups = self.optimizer.param_groups
        return [
            group["swa_lr"] * alpha
            + self._start_lr(group["lr"], group["swa_lr"], previous) * (1 - alpha)
            for group in groups
        ]
