"""The scheduler base class: torch's LRScheduler protocol over pure schedules.

A scheduler owns an optimizer and a step counter (``last_epoch``). At every
``step()`` it evaluates one pure schedule per param group at ``last_epoch``
and writes the value to ``group["lr"]``. Subclasses implement
``_schedule(base_lr, index)`` (the group's schedule, built from the group's
base rate) or, when torch's sequence is not a closed form, ``get_lr()``.

Inside a ``ChainedScheduler`` each scheduler takes its steps as torch's do
there: torch's chainable schedulers scale the group's current rate, which the
schedulers before them in the chain have just set. Those set ``_chainable``
and give torch's recursive form in ``_chained_lr``; the others compute their
rates as alone (``get_lr``).
"""

import pickle
import sys
import types

from ..optimizer import Optimizer
from ._checks import check_int


def check_optimizer(optimizer):
    """Schedulers drive cyoptim optimizers only (torch's check, torch's wording)."""
    if not isinstance(optimizer, Optimizer):
        raise TypeError(
            f"{type(optimizer).__name__} is not an Optimizer (schedulers in "
            f"cyoptim.schedules need a cyoptim optimizer)"
        )
    return optimizer


def format_param(name, optimizer, param):
    """One value per param group: a scalar repeated, or a list of the right length."""
    if isinstance(param, (list, tuple)):
        if len(param) != len(optimizer.param_groups):
            raise ValueError(
                f"{name} must have the same length as optimizer.param_groups. "
                f"{name} has {len(param)} values, param_groups has "
                f"{len(optimizer.param_groups)}."
            )
        return list(param)
    return [param] * len(optimizer.param_groups)


def _pickled_by_name(fn):
    """Whether pickle can save function ``fn``: by its module and qualified name."""
    target = sys.modules.get(fn.__module__)
    for part in fn.__qualname__.split("."):
        target = getattr(target, part, None)
    return target is fn


class _UnpicklableFunction:
    """Stands in the pickled state of a scheduler for a lambda or nested function.

    Pickling it raises a PicklingError that says which attribute of which
    scheduler is the problem (pickle saves functions by name, so a lambda or a
    closure, such as the pure schedules of cyoptim.schedules, cannot be
    saved). ``copy.deepcopy`` and ``copy.copy`` get the function itself back:
    they need no pickling.
    """

    def __init__(self, fn, owner, attribute):
        self.fn, self.owner, self.attribute = fn, owner, attribute

    def __reduce__(self):
        raise pickle.PicklingError(
            f"{self.owner} cannot be pickled: its function {self.fn.__qualname__!r} (in "
            f"{self.attribute}) is a lambda or a nested function, which pickle cannot save "
            f"(it saves functions by name; the pure schedules of cyoptim.schedules are "
            f"nested functions too). Use a function defined at module level or a callable "
            f"object, or save the scheduler's state_dict() instead; copy.deepcopy works as "
            f"it is"
        )

    def __deepcopy__(self, memo):
        return self.fn


def _guard_functions(value, owner, attribute):
    """``value`` with each function pickle cannot save replaced by a stand-in."""
    if isinstance(value, list):
        return [_guard_functions(v, owner, attribute) for v in value]
    if isinstance(value, types.FunctionType) and not _pickled_by_name(value):
        return _UnpicklableFunction(value, owner, attribute)
    return value


def _unguard_functions(value):
    if isinstance(value, list):
        return [_unguard_functions(v) for v in value]
    return value.fn if isinstance(value, _UnpicklableFunction) else value


class LRScheduler:
    """Base class of the schedulers (see the module docstring).

    Args:
        optimizer (cyoptim.Optimizer): the optimizer whose rates to set.
        last_epoch (int): index of the last step taken; -1 (default) starts the
            schedule and records each group's current ``lr`` as its
            ``initial_lr``. A value >= 0 resumes a run: the groups must already
            have ``initial_lr`` (restore the optimizer's state first).
    """

    # attributes left out of state_dict (callables, the optimizer)
    _unsaved: tuple[str, ...] = ("optimizer",)
    # Whether param groups added after construction are carried along, as torch's
    # recursive form of the same scheduler does (subclasses that can say True and
    # implement _added_group_lr).
    _follows_added_groups = False

    def __init__(self, optimizer, last_epoch=-1):
        self.optimizer = check_optimizer(optimizer)
        last_epoch = check_int(last_epoch, "last_epoch", -1)
        if last_epoch == -1:
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])
        else:
            for i, group in enumerate(optimizer.param_groups):
                if "initial_lr" not in group:
                    raise KeyError(
                        f"param 'initial_lr' is not specified in param_groups[{i}] "
                        f"when resuming scheduler with last_epoch >= 0"
                    )
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        # (rate when first seen, step when first seen) of each group added later
        self._added_groups = []
        self.last_epoch = last_epoch
        self._initial_step()

    def _initial_step(self):
        self._step_count = 0
        self.step()

    def _schedule(self, base_lr, index):
        """The pure schedule (step -> lr) of param group ``index``."""
        raise NotImplementedError

    def _added_group_lr(self, lr, since, step):
        """The rate at ``step`` of a group added later, whose rate was ``lr`` at step
        ``since``: torch's recursive update applied to it from ``since + 1`` on."""
        raise NotImplementedError

    def _check_added_groups_step(self, step):
        """Raise ValueError if torch cannot carry added groups to ``step``."""

    # Whether torch computes the rate from the group's current rate (its
    # chainable schedulers); those implement _chained_lr.
    _chainable = False

    def _chained_lr(self, lr, index, step):
        """torch's rate of group ``index`` at ``step`` from its current rate ``lr``:
        the recursive form of torch's ``get_lr`` (step 0: the initial step)."""
        raise NotImplementedError

    def _chain_rates(self):
        """The rates at ``last_epoch`` when this scheduler steps inside a ChainedScheduler."""
        if not self._chainable:
            return self.get_lr()
        return [
            self._chained_lr(group["lr"], i, self.last_epoch)
            for i, group in enumerate(self.optimizer.param_groups)
        ]

    def _chain_step(self, initial=False):
        """``step()`` as a ChainedScheduler takes it (``initial``: redo the step the
        constructor took, at step 0, from the groups' current rates)."""
        if initial:
            self._step_count = 0
        self._update_lr(0 if initial else None, chained=True)
        self._step_count += 1

    def get_lr(self):
        """The rates of all groups at ``last_epoch`` (use ``get_last_lr()`` to read them)."""
        rates = [
            self._schedule(base_lr, i)(self.last_epoch) for i, base_lr in enumerate(self.base_lrs)
        ]
        rates += [
            self._added_group_lr(lr, since, self.last_epoch) for lr, since in self._added_groups
        ]
        return rates

    def step(self):
        """Advance one step and write the new rates to the param groups.

        Call it after ``optimizer.step(grads)``, as with torch. A step the
        scheduler cannot take (see the module docstring on added param groups)
        raises ValueError and changes nothing.
        """
        self._update_lr()
        self._step_count += 1

    def _update_lr(self, epoch=None, chained=False):
        """Go to step ``epoch`` (the next step when None) and write its rates
        (``chained``: as inside a ChainedScheduler).

        Everything is checked and computed before anything is written: on an
        error the param groups and the scheduler are as before.
        """
        step = self.last_epoch + 1 if epoch is None else epoch
        added = self._groups_for_step(step, restart=epoch is not None)
        previous = self.last_epoch, self._added_groups
        self.last_epoch, self._added_groups = step, added
        try:
            rates = self._chain_rates() if chained else self.get_lr()
        except BaseException:
            self.last_epoch, self._added_groups = previous
            raise
        for group, lr in zip(self.optimizer.param_groups, rates, strict=True):
            group["lr"] = lr
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def _groups_for_step(self, step, restart):
        """The added groups to carry to ``step``, the new ones included.

        Raises ValueError (nothing changed yet) when the optimizer has fewer
        groups than before, or groups this scheduler cannot carry along.
        """
        groups = self.optimizer.param_groups
        known = len(self.base_lrs) + len(self._added_groups)
        if not self._added_groups and len(groups) == len(self.base_lrs):
            return []
        name = type(self).__name__
        if len(groups) < known:
            raise ValueError(
                f"{name}: the optimizer has {len(groups)} param groups, fewer "
                f"than the {known} this scheduler drives; build a new scheduler"
            )
        if not self._follows_added_groups:
            raise ValueError(
                f"{name} was built for {len(self.base_lrs)} param group(s) and the optimizer "
                f"now has {len(groups)}: {name} cannot carry along param groups added "
                f"after it was built (neither can torch 2.13's); build the scheduler after "
                f"add_param_group, resuming with last_epoch and each group's initial_lr"
            )
        if restart:
            raise ValueError(
                f"{name} cannot restart (as SequentialLR does at a milestone) "
                f"with param groups added after it was built: it needs their "
                f"base rates (torch 2.13 fails there too); build the schedulers "
                f"after add_param_group"
            )
        self._check_added_groups_step(step)
        return self._added_groups + [(group["lr"], self.last_epoch) for group in groups[known:]]

    def get_last_lr(self):
        """The rates written by the last ``step()``, one per param group."""
        return list(self._last_lr)

    def state_dict(self):
        """The scheduler's attributes except the optimizer (and plain functions).

        Save the optimizer's ``state_dict()`` with it: the base rates live in the
        param groups too (``initial_lr``).
        """
        return {key: value for key, value in self.__dict__.items() if key not in self._unsaved}

    def load_state_dict(self, state_dict):
        """Restore attributes saved by ``state_dict()``."""
        self.__dict__.update(state_dict)

    def __repr__(self):
        return f"{type(self).__name__}(last_epoch={self.last_epoch}, lr={self._last_lr})"

    def __getstate__(self):
        """Every attribute, the optimizer included (pickling a scheduler pickles its
        optimizer, as torch's do; ``copy.deepcopy((opt, sched))`` gives a copied
        scheduler that drives the copied optimizer).

        A user function among the attributes (``LambdaLR``'s ``lr_lambda``,
        ``CyclicLR``'s ``scale_fn``) that is a lambda or a nested function
        makes ``pickle.dumps`` raise a PicklingError naming it; deep copies
        work with any function.
        """
        state = dict(self.__dict__)
        for name in self._unsaved:
            if name != "optimizer" and name in state:
                state[name] = _guard_functions(state[name], type(self).__name__, name)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        for name in self._unsaved:  # copy.copy hands the stand-ins back
            if name != "optimizer" and name in state:
                self.__dict__[name] = _unguard_functions(state[name])
