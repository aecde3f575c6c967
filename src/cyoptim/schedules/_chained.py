"""ChainedScheduler: several schedulers of one optimizer, stepped together as torch chains them."""

from ._base import check_optimizer
from ._composite import CompositeScheduler


class ChainedScheduler(CompositeScheduler):
    r"""Step several schedulers of one optimizer together; each acts on the rate the one before set.

    ``step()`` steps the schedulers in order, as torch's ``ChainedScheduler``.
    Inside the chain each takes torch's own step rule:

    - torch's chainable schedulers scale each group's *current* rate by their
      per-step factor (``StepLR``, ``MultiStepLR``, ``ExponentialLR``,
      ``ConstantLR``, ``LinearLR``, ``PolynomialLR``, ``MultiplicativeLR``;
      ``CosineAnnealingLR`` moves the rate by its recursive cosine step;
      ``SWALR`` anneals from the current rate), in torch's arithmetic, so the
      factors multiply: ``ConstantLR(factor=0.1, total_iters=20)`` chained
      with ``ExponentialLR(gamma=0.9)`` gives :math:`0.1 \cdot 0.9^t \eta_0`
      for :math:`t < 20` and :math:`0.9^t \eta_0` after;
    - the others set the rate from their base rates (``LambdaLR``,
      ``CyclicLR``, ``OneCycleLR``, ``CosineAnnealingWarmRestarts``), as when
      alone, and the schedulers after them in the chain scale that.

    (Alone, the classes of this package compute their rates from the base
    rates in closed form; only a chain composes them.)

    Build the schedulers just before the chain, in chain order, as torch's
    examples do: each has already taken its first step, which here computes
    from the base rate alone; the chain redoes those first steps in order from
    each group's ``initial_lr``, which leaves the rates torch's construction
    leaves. Schedulers that have stepped before are taken as they are.

    Args:
        schedulers (list): schedulers of this package over one optimizer (not
            ``ReduceLROnPlateau``, ``SequentialLR`` or another chain).
        optimizer: the cyoptim optimizer (default: the first scheduler's).

    Example (torch's documentation example):
        >>> import numpy as np, cyoptim
        >>> from cyoptim import schedules
        >>> opt = cyoptim.SGD([np.zeros(3)], lr=0.05)
        >>> constant = schedules.ConstantLR(opt, factor=0.1, total_iters=2)
        >>> decay = schedules.ExponentialLR(opt, gamma=0.9)
        >>> sched = schedules.ChainedScheduler([constant, decay], optimizer=opt)
        >>> rates = [sched.get_last_lr()[0]]
        >>> for _ in range(3):
        ...     sched.step()
        ...     rates.append(sched.get_last_lr()[0])
        >>> [round(lr, 6) for lr in rates]      # 0.05 * 0.1, * 0.9, / 0.1 * 0.9, * 0.9
        [0.005, 0.0045, 0.0405, 0.03645]

    ``state_dict()`` holds every scheduler's state; the current rates live in
    the optimizer's param groups (save its state too), as in torch. A step
    that one of the schedulers refuses raises with every scheduler and rate
    as before.
    """

    def __init__(self, schedulers, optimizer=None):
        schedulers = list(schedulers)
        name = type(self).__name__
        if len(schedulers) < 1:
            raise ValueError(
                f"{name} expects at least one scheduler to be chained, but got no scheduler."
            )
        for i, scheduler in enumerate(schedulers):
            if not hasattr(scheduler, "optimizer"):
                raise TypeError(f"{name} at index {i} should have `optimizer` as its attribute.")
        optimizer = check_optimizer(schedulers[0].optimizer if optimizer is None else optimizer)
        self._schedulers = self._check_schedulers(optimizer, schedulers)
        self.optimizer = optimizer
        if all(s.last_epoch == 0 and s._step_count == 1 for s in schedulers):
            for group in optimizer.param_groups:
                group["lr"] = group["initial_lr"]
            for scheduler in _distinct(schedulers):
                scheduler._chain_step(initial=True)
        self._last_lr = [group["lr"] for group in optimizer.param_groups]

    def step(self):
        """Step every scheduler in order, each from the rates the one before wrote."""
        groups = self.optimizer.param_groups
        saved = (
            [dict(s.__dict__) for s in self._schedulers],
            [{k: v for k, v in g.items() if k != "params"} for g in groups],
        )
        try:
            for scheduler in self._schedulers:
                scheduler._chain_step()
        except BaseException:
            for scheduler, attributes in zip(self._schedulers, saved[0]):
                scheduler.__dict__.clear()
                scheduler.__dict__.update(attributes)
            for group, hyper in zip(groups, saved[1]):
                group.update(hyper)
            raise
        self._last_lr = [group["lr"] for group in groups]


def _distinct(items):
    """items without repeats (by identity), in order."""
    seen = set()
    return [x for x in items if not (id(x) in seen or seen.add(id(x)))]
