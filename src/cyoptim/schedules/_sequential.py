"""SequentialLR: run schedulers one after another at milestones."""

from bisect import bisect_right

from ._base import check_optimizer
from ._checks import check_boundaries
from ._composite import CompositeScheduler


class SequentialLR(CompositeScheduler):
    r"""Hand the optimizer from one scheduler to the next at each milestone.

    ``schedulers[i]`` drives the rates from ``milestones[i-1]`` on, restarted
    at its own step 0 there (torch's semantics; the class counterpart of
    :func:`~cyoptim.schedules.join_schedules`). For example 5 steps of linear
    warmup then cosine decay::

        warmup = LinearLR(opt, start_factor=0.01, total_iters=5)
        cosine = CosineAnnealingLR(opt, T_max=95)
        sched = SequentialLR(opt, [warmup, cosine], milestones=[5])

    Args:
        optimizer: the cyoptim optimizer all the schedulers drive.
        schedulers (list): schedulers of this package (not ReduceLROnPlateau).
        milestones (list of int): sorted steps, one fewer than schedulers.
        last_epoch (int): index of the last step (default -1).
    """

    def __init__(self, optimizer, schedulers, milestones, last_epoch=-1):
        self.optimizer = check_optimizer(optimizer)
        schedulers = list(schedulers)
        if len(schedulers) < 1:
            raise ValueError("SequentialLR expects at least one scheduler, but got no scheduler.")
        schedulers = self._check_schedulers(optimizer, schedulers)
        milestones = check_boundaries(milestones, "milestones")
        if len(milestones) != len(schedulers) - 1:
            raise ValueError(
                f"Sequential Schedulers expects number of schedulers provided to be "
                f"one more than the number of milestone points, but got number of "
                f"schedulers {len(schedulers)} and the number of milestones to be "
                f"equal to {len(milestones)}"
            )
        self._schedulers = schedulers
        self._milestones = milestones
        self.last_epoch = last_epoch + 1
        for group in optimizer.param_groups:  # undo the schedulers' first steps
            group["lr"] = group["initial_lr"]
        for scheduler in schedulers:
            scheduler.last_epoch -= 1
        idx = bisect_right(milestones, 0)
        schedulers[idx]._initial_step()
        self._last_lr = schedulers[idx].get_last_lr()

    def step(self):
        """Advance one step with the scheduler in charge (restarting it at a milestone).

        If that scheduler refuses the step (param groups added to the optimizer
        that it cannot carry along), the ValueError leaves everything unchanged.
        """
        epoch = self.last_epoch + 1
        idx = bisect_right(self._milestones, epoch)
        scheduler = self._schedulers[idx]
        if idx > 0 and self._milestones[idx - 1] == epoch:
            scheduler._update_lr(0)
        else:
            scheduler.step()
        self.last_epoch = epoch
        self._last_lr = scheduler.get_last_lr()
