"""ReduceLROnPlateau: cut the rate when a metric stops improving."""

import math

from ._base import check_optimizer, format_param
from ._checks import check_int, check_nonnegative


class ReduceLROnPlateau:
    r"""Multiply the rates by ``factor`` after ``patience`` steps without improvement.

    A value :math:`a` improves on the best :math:`b` when (``mode="min"``)
    :math:`a < b(1 - \text{threshold})` (``"rel"``) or :math:`a < b - \text{threshold}`
    (``"abs"``); mirrored for ``"max"``. When the count of steps without
    improvement exceeds ``patience``, every group's rate becomes
    :math:`\max(\eta \cdot \text{factor}, \text{min\_lr})` (unless it would change
    by less than ``eps``), and ``cooldown`` steps follow in which bad steps are
    not counted. The same algorithm as torch's, step by step.

    Args:
        optimizer: a cyoptim optimizer.
        mode (str): "min" (default) or "max".
        factor (float): new_lr = lr * factor, in [0, 1) (default 0.1).
        patience (int): steps without improvement tolerated (default 10).
        threshold (float): significance of an improvement (default 1e-4).
        threshold_mode (str): "rel" (default) or "abs".
        cooldown (int): steps to wait after a reduction (default 0).
        min_lr (float or list): lower bound of the rates, per group (default 0).
        eps (float): reductions smaller than eps are skipped (default 1e-8).

    Example:
        >>> import numpy as np, cyoptim
        >>> opt = cyoptim.SGD([np.zeros(3)], lr=1.0)
        >>> sched = cyoptim.schedules.ReduceLROnPlateau(opt, patience=1)
        >>> for loss in [1.0, 0.5, 0.6, 0.7]:
        ...     sched.step(loss)
        >>> sched.get_last_lr()
        [0.1]
    """

    def __init__(
        self,
        optimizer,
        mode="min",
        factor=0.1,
        patience=10,
        threshold=1e-4,
        threshold_mode="rel",
        cooldown=0,
        min_lr=0,
        eps=1e-8,
    ):
        if factor >= 1.0:
            raise ValueError("Factor should be < 1.0.")
        self.factor = check_nonnegative(factor, "factor")
        self.optimizer = check_optimizer(optimizer)
        if isinstance(min_lr, (list, tuple)):
            if len(min_lr) != len(optimizer.param_groups):
                raise ValueError(
                    f"expected {len(optimizer.param_groups)} min_lrs, got {len(min_lr)}"
                )
            # torch's attributes: a list gives no default for groups added later
            self.default_min_lr = None
        else:
            self.default_min_lr = check_nonnegative(min_lr, "min_lr")
        self.min_lrs = [
            check_nonnegative(m, "min_lr") for m in format_param("min_lr", optimizer, min_lr)
        ]
        self.patience = check_int(patience, "patience", 0)
        self.cooldown = check_int(cooldown, "cooldown", 0)
        self.eps = check_nonnegative(eps, "eps")
        if mode not in ("min", "max"):
            raise ValueError(f"mode {mode} is unknown!")
        if threshold_mode not in ("rel", "abs"):
            raise ValueError(f"threshold mode {threshold_mode} is unknown!")
        self.mode = mode
        self.threshold = check_nonnegative(threshold, "threshold")
        self.threshold_mode = threshold_mode
        self.mode_worse = math.inf if mode == "min" else -math.inf
        self.last_epoch = 0
        self._last_lr = [group["lr"] for group in optimizer.param_groups]
        self.best = self.mode_worse
        self.cooldown_counter = 0
        self.num_bad_epochs = 0

    @property
    def in_cooldown(self):
        return self.cooldown_counter > 0

    def is_better(self, a, best):
        """Whether metric value ``a`` is a significant improvement on ``best``."""
        if self.threshold_mode == "rel":
            scale = 1.0 - self.threshold if self.mode == "min" else self.threshold + 1.0
            return a < best * scale if self.mode == "min" else a > best * scale
        if self.mode == "min":
            return a < best - self.threshold
        return a > best + self.threshold

    def step(self, metrics):
        """Record this step's metric (e.g. the validation loss) and cut the rates if due.

        Param groups added to the optimizer since construction get ``min_lr``
        when it was one number (torch's ``default_min_lr``); with a list of
        min_lrs a due cut raises torch's RuntimeError, before anything changes
        (set ``min_lrs`` to one value per group to go on).
        """
        current = float(metrics)
        best, bad, cooldown = self.best, self.num_bad_epochs + 1, self.cooldown_counter
        if self.is_better(current, best):
            best, bad = current, 0
        if cooldown > 0:
            cooldown, bad = cooldown - 1, 0
        cut = bad > self.patience
        min_lrs = self._min_lrs_for_groups() if cut else self.min_lrs
        self.last_epoch += 1
        self.best, self.num_bad_epochs, self.cooldown_counter = best, bad, cooldown
        if cut:
            self.min_lrs = min_lrs
            self._reduce_lr()
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def _min_lrs_for_groups(self):
        """One min_lr per current param group (torch 2.13's rule for added groups)."""
        n_groups = len(self.optimizer.param_groups)
        if n_groups == len(self.min_lrs):
            return self.min_lrs
        if self.default_min_lr is None:
            raise RuntimeError(
                f"The number of param groups in the `optimizer` ({n_groups}) differs from "
                f"when `ReduceLROnPlateau` was initialized ({len(self.min_lrs)}), usually "
                f"due to a new param group being added to the optimizer. Please modify the "
                f"`min_lrs` field to match the length of the `optimizer` param groups."
            )
        return [self.default_min_lr] * n_groups

    def _reduce_lr(self):
        for group, min_lr in zip(self.optimizer.param_groups, self.min_lrs, strict=True):
            old_lr = float(group["lr"])
            new_lr = max(old_lr * self.factor, min_lr)
            if old_lr - new_lr > self.eps:
                group["lr"] = new_lr

    def get_last_lr(self):
        """The rates after the last ``step``, one per param group."""
        return list(self._last_lr)

    def state_dict(self):
        """The scheduler's attributes except the optimizer."""
        return {key: value for key, value in self.__dict__.items() if key != "optimizer"}

    def load_state_dict(self, state_dict):
        """Restore attributes saved by ``state_dict()``."""
        self.__dict__.update(state_dict)
