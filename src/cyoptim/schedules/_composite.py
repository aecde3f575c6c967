"""What SequentialLR and ChainedScheduler share: a list of schedulers of one optimizer."""

from ._base import LRScheduler
from ._plateau import ReduceLROnPlateau


class CompositeScheduler:
    """Base of the schedulers made of other schedulers (``_schedulers``)."""

    def _check_schedulers(self, optimizer, schedulers):
        """torch's checks (and wording) of the schedulers; returns them as a list."""
        name = type(self).__name__
        schedulers = list(schedulers)
        for i, scheduler in enumerate(schedulers):
            if isinstance(scheduler, ReduceLROnPlateau):
                raise ValueError(
                    f"{name} does not support `ReduceLROnPlateau` scheduler as it "
                    f"requires additional kwargs to be specified when calling "
                    f"`step`, but got one at index {i} in the given schedulers "
                    f"sequence."
                )
            if not isinstance(scheduler, LRScheduler):
                raise TypeError(
                    f"{name}: scheduler at index {i} is a "
                    f"{type(scheduler).__name__}, not a cyoptim scheduler "
                    f"(SequentialLR and ChainedScheduler do not nest)"
                )
            if scheduler.optimizer is not optimizer:
                raise ValueError(
                    f"{name} expects all schedulers to belong to the same "
                    f"optimizer, but got scheduler {type(scheduler).__name__} at "
                    f"index {i} with a different one"
                )
        return schedulers

    def get_last_lr(self):
        """The rates written by the last ``step()``, one per param group."""
        return list(self._last_lr)

    def state_dict(self):
        """Own attributes plus the state_dict of every scheduler."""
        state = {
            key: value
            for key, value in self.__dict__.items()
            if key not in ("optimizer", "_schedulers")
        }
        state["_schedulers"] = [s.state_dict() for s in self._schedulers]
        return state

    def load_state_dict(self, state_dict):
        """Restore a state saved by ``state_dict()`` (the schedulers' too)."""
        state = dict(state_dict)
        saved = state.pop("_schedulers")
        self.__dict__.update(state)
        for scheduler, sub in zip(self._schedulers, saved, strict=True):
            scheduler.load_state_dict(sub)
