"""SequentialLR: run schedulers one after another at milestones."""

from bisect import bisect_right

from ._base import LRScheduler, check_optimizer
from ._checks import check_boundaries
from ._plateau import ReduceLROnPlateau


class SequentialLR:
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
        for i, scheduler in enumerate(schedulers):
            if isinstance(scheduler, ReduceLROnPlateau):
                raise ValueError(f"SequentialLR does not support `ReduceLROnPlateau` scheduler "
                                 f"as it requires additional kwargs to be specified when calling "
                                 f"`step`, but got one at index {i} in the given schedulers "
                                 f"sequence.")
            if not isinstance(scheduler, LRScheduler):
                raise TypeError(f"SequentialLR: scheduler at index {i} is a "
                                f"{type(scheduler).__name__}, not a cyoptim scheduler")
            if scheduler.optimizer is not optimizer:
                raise ValueError(f"SequentialLR expects all schedulers to belong to the same "
                                 f"optimizer, but got scheduler {type(scheduler).__name__} at "
                                 f"index {i} with a different one")
        milestones = check_boundaries(milestones, "milestones")
        if len(milestones) != len(schedulers) - 1:
            raise ValueError(f"Sequential Schedulers expects number of schedulers provided to be "
                             f"one more than the number of milestone points, but got number of "
                             f"schedulers {len(schedulers)} and the number of milestones to be "
                             f"equal to {len(milestones)}")
        self._schedulers = schedulers
        self._milestones = milestones
        self.last_epoch = last_epoch + 1
        for group in optimizer.param_groups:         # undo the schedulers' first steps
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

    def get_last_lr(self):
        """The rates written by the last ``step()``, one per param group."""
        return list(self._last_lr)

    def state_dict(self):
        """Own attributes plus the state_dict of every scheduler."""
        state = {key: value for key, value in self.__dict__.items()
                 if key not in ("optimizer", "_schedulers")}
        state["_schedulers"] = [s.state_dict() for s in self._schedulers]
        return state

    def load_state_dict(self, state_dict):
        """Restore a state saved by ``state_dict()`` (the schedulers' too)."""
        state = dict(state_dict)
        saved = state.pop("_schedulers")
        self.__dict__.update(state)
        for scheduler, sub in zip(self._schedulers, saved, strict=True):
            scheduler.load_state_dict(sub)
