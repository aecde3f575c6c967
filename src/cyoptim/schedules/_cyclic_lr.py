"""CyclicLR and OneCycleLR: schedulers that also cycle the momentum.

With ``cycle_momentum=True`` they write the momentum of every group at each
step, inversely to the rate: ``group["momentum"]`` for optimizers with a
``momentum`` hyperparameter (SGD), else the first element of
``group["betas"]`` (the Adam family; the tuple is replaced, not mutated).
"""

import types

from ._base import LRScheduler, check_optimizer, format_param
from ._checks import check_choice
from ._cycles import (
    ANNEAL_STRATEGIES,
    check_cyclic_args,
    cyclic_curve,
    one_cycle_phases,
    phased_anneal,
)


def momentum_key(optimizer):
    """'betas' or 'momentum': where the optimizer keeps its momentum (torch's rule)."""
    if "momentum" not in optimizer.defaults and "betas" not in optimizer.defaults:
        raise ValueError(
            "optimizer must support momentum or beta1 with `cycle_momentum` option enabled"
        )
    return "betas" if "betas" in optimizer.defaults else "momentum"


def set_momentum(group, key, value):
    if key == "betas":
        group["betas"] = (value, *group["betas"][1:])
    else:
        group["momentum"] = value


class CyclicLR(LRScheduler):
    r"""Cyclical learning rate (CLR): the rate cycles between ``base_lr`` and ``max_lr``.

    .. math::
        \eta_t = \eta_{base} + (\eta_{max} - \eta_{base})\, h(x_t)\, \sigma,
        \qquad m_t = m_{max} - (m_{max} - m_{base})\, h(x_t)\, \sigma

    with the triangle :math:`h` and amplitude scale :math:`\sigma` of
    :func:`~cyoptim.schedules.cyclic_schedule`, over which this class is an
    adapter (one schedule per group, and one for its momentum).

    Args:
        optimizer: a cyoptim optimizer.
        base_lr (float or list): lower rate of the cycle (per group); written
            to the groups at construction.
        max_lr (float or list): upper rate of the cycle (>= base_lr).
        step_size_up (int): steps of the rising half (default 2000).
        step_size_down (int): steps of the falling half (default: step_size_up).
        mode (str): "triangular", "triangular2" or "exp_range" (ignored when
            scale_fn is given).
        gamma (float): base of the "exp_range" scale :math:`\gamma^t` (default 1).
        scale_fn (callable): custom amplitude scale, ``x -> [0, 1]``.
        scale_mode (str): "cycle" or "iterations": the argument of scale_fn.
        cycle_momentum (bool): cycle the momentum inversely (default True).
        base_momentum (float or list): momentum at the top of the rate (default 0.8).
        max_momentum (float or list): momentum at the bottom of the rate (default 0.9).
        last_epoch (int): see :class:`LRScheduler` (default -1).

    Reference: Smith, "Cyclical Learning Rates for Training Neural Networks",
    https://arxiv.org/abs/1506.01186
    """

    _unsaved = ("optimizer", "_scale_fn_custom")

    def __init__(
        self,
        optimizer,
        base_lr,
        max_lr,
        step_size_up=2000,
        step_size_down=None,
        mode="triangular",
        gamma=1.0,
        scale_fn=None,
        scale_mode="cycle",
        cycle_momentum=True,
        base_momentum=0.8,
        max_momentum=0.9,
        last_epoch=-1,
    ):
        self.optimizer = check_optimizer(optimizer)
        base_lrs = format_param("base_lr", optimizer, base_lr)
        self.max_lrs = format_param("max_lr", optimizer, max_lr)
        for i, (low, high) in enumerate(zip(base_lrs, self.max_lrs)):
            if high < low:
                raise ValueError(f"max_lr ({high}) must be >= base_lr ({low}) (param group {i})")
        if mode not in ("triangular", "triangular2", "exp_range") and scale_fn is None:
            raise ValueError("mode is invalid and scale_fn is None")
        check_cyclic_args(step_size_up, step_size_down, mode, gamma, scale_fn, scale_mode)
        self.step_size_up = step_size_up
        self.step_size_down = step_size_down
        self.mode = mode
        self.gamma = gamma
        self._scale_fn_custom = scale_fn
        self.scale_mode = scale_mode
        self.cycle_momentum = cycle_momentum
        if cycle_momentum:
            self.momentum_key = momentum_key(optimizer)
            self.base_momentums = format_param("base_momentum", optimizer, base_momentum)
            self.max_momentums = format_param("max_momentum", optimizer, max_momentum)
        if last_epoch == -1:
            for lr, group in zip(base_lrs, optimizer.param_groups):
                group["lr"] = lr
            if cycle_momentum:
                for high, low, group in zip(
                    self.max_momentums, self.base_momentums, optimizer.param_groups
                ):
                    set_momentum(group, self.momentum_key, high)
                    group["max_momentum"] = high
                    group["base_momentum"] = low
        super().__init__(optimizer, last_epoch)
        self.base_lrs = base_lrs

    def _curve(self, start, peak):
        args = check_cyclic_args(
            self.step_size_up,
            self.step_size_down,
            self.mode,
            self.gamma,
            self._scale_fn_custom,
            self.scale_mode,
        )
        return cyclic_curve(start, peak, *args)

    def _schedule(self, base_lr, index):
        return self._curve(base_lr, self.max_lrs[index])

    def get_lr(self):
        """The rates at ``last_epoch``; also writes the cycled momentum to the groups."""
        if self.cycle_momentum:
            for group, low, high in zip(
                self.optimizer.param_groups, self.base_momentums, self.max_momentums
            ):
                set_momentum(group, self.momentum_key, self._curve(high, low)(self.last_epoch))
        return super().get_lr()

    def state_dict(self):
        state = super().state_dict()
        fn = self._scale_fn_custom
        state["_scale_fn_custom"] = (
            None if fn is None or isinstance(fn, types.FunctionType) else fn.__dict__.copy()
        )
        return state

    def load_state_dict(self, state_dict):
        state = dict(state_dict)
        saved = state.pop("_scale_fn_custom", None)
        super().load_state_dict(state)
        if saved is not None:
            self._scale_fn_custom.__dict__.update(saved)


class OneCycleLR(LRScheduler):
    r"""The one-cycle policy: warm up to ``max_lr``, then anneal far below the start.

    Per group, the rate goes from ``initial_lr = max_lr / div_factor`` to
    ``max_lr`` in the first ``pct_start`` of the steps, then to ``min_lr =
    initial_lr / final_div_factor`` (with ``three_phase``: back to
    ``initial_lr`` symmetrically, then to ``min_lr``); the momentum does the
    opposite between ``max_momentum`` and ``base_momentum``. Phase :math:`i`
    ends at step :math:`e_i` and

    .. math:: \eta_t = \mathrm{anneal}(a_i, b_i, (t - e_{i-1}) / (e_i - e_{i-1}))

    with a cosine or linear anneal: the adapter over
    :func:`~cyoptim.schedules.one_cycle_schedule` and
    :func:`~cyoptim.schedules.one_cycle_momentum`, reading ``initial_lr``,
    ``max_lr``, ``min_lr`` (and ``max_momentum``, ``base_momentum``) from
    each group as torch does. Stepping past ``total_steps`` raises ValueError.

    Args:
        optimizer: a cyoptim optimizer.
        max_lr (float or list): peak rate (per group).
        total_steps (int): steps in the cycle; or give ``epochs`` and
            ``steps_per_epoch``.
        epochs (int), steps_per_epoch (int): total_steps = epochs * steps_per_epoch.
        pct_start (float): fraction of the steps spent rising (default 0.3).
        anneal_strategy (str): "cos" (default) or "linear".
        cycle_momentum (bool): cycle the momentum inversely (default True).
        base_momentum (float or list): momentum at the peak rate (default 0.85).
        max_momentum (float or list): momentum at the start and end (default 0.95).
        div_factor (float): initial_lr = max_lr / div_factor (default 25).
        final_div_factor (float): min_lr = initial_lr / final_div_factor (default 1e4).
        three_phase (bool): the paper's three phases instead of fastai's two.
        last_epoch (int): see :class:`LRScheduler` (default -1).

    Reference: Smith & Topin, "Super-Convergence", https://arxiv.org/abs/1708.07120
    """

    def __init__(
        self,
        optimizer,
        max_lr,
        total_steps=None,
        epochs=None,
        steps_per_epoch=None,
        pct_start=0.3,
        anneal_strategy="cos",
        cycle_momentum=True,
        base_momentum=0.85,
        max_momentum=0.95,
        div_factor=25.0,
        final_div_factor=1e4,
        three_phase=False,
        last_epoch=-1,
    ):
        self.optimizer = check_optimizer(optimizer)
        if total_steps is not None:
            if (
                isinstance(total_steps, bool)
                or not isinstance(total_steps, int)
                or total_steps <= 0
            ):
                raise ValueError(f"Expected positive integer total_steps, but got {total_steps}")
            self.total_steps = total_steps
        elif epochs is not None and steps_per_epoch is not None:
            if not isinstance(epochs, int) or epochs <= 0:
                raise ValueError(f"Expected positive integer epochs, but got {epochs}")
            if not isinstance(steps_per_epoch, int) or steps_per_epoch <= 0:
                raise ValueError(
                    f"Expected positive integer steps_per_epoch, but got {steps_per_epoch}"
                )
            self.total_steps = epochs * steps_per_epoch
        else:
            raise ValueError("You must define either total_steps OR (epochs AND steps_per_epoch)")
        self._phase_ends = one_cycle_phases(self.total_steps, pct_start, three_phase)
        self.anneal_strategy = check_choice(
            anneal_strategy, "anneal_strategy", tuple(ANNEAL_STRATEGIES)
        )
        self.three_phase = three_phase
        if not div_factor > 0 or not final_div_factor > 0:
            raise ValueError(
                f"div_factor and final_div_factor must be > 0, got "
                f"{div_factor} and {final_div_factor}"
            )
        max_lrs = format_param("max_lr", optimizer, max_lr)
        if last_epoch == -1:
            for lr, group in zip(max_lrs, optimizer.param_groups):
                group["initial_lr"] = lr / div_factor
                group["max_lr"] = lr
                group["min_lr"] = group["initial_lr"] / final_div_factor
        self.cycle_momentum = cycle_momentum
        if cycle_momentum:
            self.momentum_key = momentum_key(optimizer)
            max_momentums = format_param("max_momentum", optimizer, max_momentum)
            base_momentums = format_param("base_momentum", optimizer, base_momentum)
            if last_epoch == -1:
                for high, low, group in zip(max_momentums, base_momentums, optimizer.param_groups):
                    set_momentum(group, self.momentum_key, high)
                    group["max_momentum"] = high
                    group["base_momentum"] = low
        super().__init__(optimizer, last_epoch)

    def _anneal(self, group, names):
        return phased_anneal(
            self.total_steps, self._phase_ends, [group[n] for n in names], self.anneal_strategy
        )

    def _schedule(self, base_lr, index):
        names = (
            ["initial_lr", "max_lr", "initial_lr", "min_lr"]
            if self.three_phase
            else ["initial_lr", "max_lr", "min_lr"]
        )
        return self._anneal(self.optimizer.param_groups[index], names)

    def get_lr(self):
        """The rates at ``last_epoch``; also writes the cycled momentum to the groups."""
        lrs = super().get_lr()  # raises past total_steps before anything is written
        if self.cycle_momentum:
            names = ["max_momentum", "base_momentum", "max_momentum"] + (
                ["max_momentum"] if self.three_phase else []
            )
            for group in self.optimizer.param_groups:
                set_momentum(group, self.momentum_key, self._anneal(group, names)(self.last_epoch))
        return lrs
