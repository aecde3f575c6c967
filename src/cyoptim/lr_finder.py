"""The learning-rate range test (Smith 2017; fastai's and torch-lr-finder's ``lr_find``).

Train for a few steps while the rate grows from tiny to huge, watch the
(smoothed) loss, and pick a rate where it falls fastest. The run changes
nothing for good: params, optimizer state and rates are restored bitwise.
"""

import math

import numpy as np

from .optimizer import Optimizer
from .schedules import exponential_decay, linear_schedule

DEFAULT_SMOOTH = 0.05  # weight of the new loss in the moving average
SKIP_END = 5  # steps before the end that the suggestions ignore (the blow-up)


def min_meaningful_iters(smooth=DEFAULT_SMOOTH):
    """Fewest steps of a range test whose suggestion means something.

    The smoothed loss is a moving average that trails the raw loss by about
    ``1/smooth`` steps (20 at the default), and the suggestions ignore the
    first ``num_iter // 10`` and the last ``SKIP_END`` steps. With fewer than
    three spans of the average (60 steps at the default) the smoothed curve is
    mostly the average's start-up and its lag shifts the steepest point by a
    large part of the range. Returns at least enough steps to leave 2 after
    the skips.
    """
    if not 0 <= smooth < 1:
        raise ValueError(f"smooth must be in [0, 1), got {smooth!r}")
    spans = math.ceil(3 / smooth) if smooth > 0 else 0
    return max(spans, SKIP_END + 3)


def steepest_index(lrs, losses):
    """Index of the most negative slope of loss vs log10(lr); None with < 2 points."""
    if len(losses) < 2:
        return None
    return int(np.argmin(np.gradient(np.asarray(losses), np.log10(lrs))))


def valley_span(losses):
    """(first, last) index of the longest strictly decreasing subsequence of losses.

    Among equally long ones, the one that ends first; each point's predecessor is
    the earliest of the longest chains it can extend. O(n^2) comparisons.
    """
    losses = np.asarray(losses, dtype=np.float64)
    n = losses.size
    length = np.ones(n, dtype=np.int64)
    previous = np.full(n, -1, dtype=np.int64)
    for i in range(1, n):
        higher = np.flatnonzero(losses[:i] > losses[i])
        if higher.size:
            k = higher[np.argmax(length[higher])]
            length[i] = length[k] + 1
            previous[i] = k
    last = int(np.argmax(length)) if n else 0
    first = last
    while n and previous[first] >= 0:
        first = int(previous[first])
    return first, last


def new_axes(ax, owner):
    """`ax` itself, or with ``ax=None`` the Axes of a new ``matplotlib.pyplot`` figure.

    pyplot is imported only then (matplotlib is an optional dependency), so a
    caller who passes an Axes keeps its backend and open figures untouched.
    `owner` names the plotting method in the error raised without matplotlib.
    """
    if ax is not None:
        return ax
    try:
        import matplotlib.pyplot as plt
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError(f"{owner} needs matplotlib: pip install matplotlib") from error
    return plt.subplots()[1]


class LRFinderResult:
    """What ``LRFinder.run`` measured.

    Attributes:
        lrs (ndarray): the rate of each step (of the group with the largest
            rate; the other groups ran at their usual ratio to it).
        losses (ndarray): smoothed losses (bias-corrected moving average).
        raw_losses (ndarray): losses as returned by ``loss_and_grads``.
        suggestion (float or None): the rate at the steepest descent of the
            smoothed loss against log10(lr); None with fewer than 2 steps.
        valley (float or None): fastai's "valley" rate: 2/3 of the way (in
            steps) through the longest descending stretch of the smoothed
            curve; None when the loss never decreased.
        diverged (bool): whether the run stopped early because the loss blew up.

    Like fastai, both suggestions ignore the first ``skip_start`` steps (where
    the loss has hardly moved and batch noise dominates the slope) and the last
    ``skip_end`` (the blow-up); ``LRFinder.run`` skips ``num_iter // 10`` and 5.
    With fewer than 2 steps left, they use all steps.
    """

    def __init__(self, lrs, losses, raw_losses, diverged, skip_start=0, skip_end=0):
        self.lrs = np.asarray(lrs, dtype=np.float64)
        self.losses = np.asarray(losses, dtype=np.float64)
        self.raw_losses = np.asarray(raw_losses, dtype=np.float64)
        self.diverged = diverged
        n = self.lrs.size
        lo, hi = (skip_start, n - skip_end) if n - skip_end - skip_start >= 2 else (0, n)
        lrs, losses = self.lrs[lo:hi], self.losses[lo:hi]
        steep = steepest_index(lrs, losses)
        self.suggestion = None if steep is None else float(lrs[steep])
        first, last = valley_span(losses)
        self.valley = None if last == first else float(lrs[first + round(2 * (last - first) / 3)])

    def plot(self, ax=None, log_lr=True):
        """Smoothed loss against the rate, suggestion and valley marked; returns the Axes.

        Draws on `ax` (any matplotlib Axes). With ``ax=None`` it makes a new
        figure with ``matplotlib.pyplot``, imported only then (matplotlib is an
        optional dependency); given an Axes, pyplot is never imported, so the
        caller's backend and open figures are left alone.
        """
        ax = new_axes(ax, "LRFinderResult.plot")
        ax.plot(self.lrs, self.losses, label="smoothed loss")
        for lr, name, style in (
            (self.suggestion, "steepest", "ro"),
            (self.valley, "valley", "g^"),
        ):
            if lr is not None:
                i = int(np.flatnonzero(self.lrs == lr)[0])
                ax.plot(lr, self.losses[i], style, label=f"{name}: {lr:.2e}")
        if log_lr:
            ax.set_xscale("log")
        ax.set_xlabel("learning rate")
        ax.set_ylabel("loss")
        ax.legend()
        return ax

    def __repr__(self):
        return (
            f"LRFinderResult(steps={self.lrs.size}, suggestion={self.suggestion}, "
            f"valley={self.valley}, diverged={self.diverged})"
        )


class _Snapshot:
    """Everything a range test changes: param values, optimizer state, group settings."""

    def __init__(self, optimizer):
        self.optimizer = optimizer
        self.params = [np.copy(p) for group in optimizer.param_groups for p in group["params"]]
        self.state = optimizer.state_dict()  # arrays are copies
        self.groups = [
            {k: v for k, v in group.items() if k != "params"} for group in optimizer.param_groups
        ]

    def restore(self):
        optimizer = self.optimizer
        # load_state_dict accepts only the optimizer's own hyperparameters; keys
        # added by schedulers (initial_lr, max_lr, ...) come back with the groups.
        state = dict(self.state)
        state["param_groups"] = [
            {k: v for k, v in group.items() if k == "params" or k in optimizer.defaults}
            for group in self.state["param_groups"]
        ]
        optimizer.load_state_dict(state)
        for group, saved in zip(optimizer.param_groups, self.groups):
            for key in [k for k in group if k != "params" and k not in saved]:
                del group[key]
            group.update(saved)
        params = [p for group in optimizer.param_groups for p in group["params"]]
        for p, saved in zip(params, self.params):
            np.copyto(p, saved)


class LRFinder:
    r"""Learning-rate range test: ramp the rate, record the loss, suggest a rate.

    At step :math:`i` of :math:`n` the rate is

    .. math::
        \eta_i = \eta_s (\eta_e / \eta_s)^{i/(n-1)} \ (\text{"exp"}), \qquad
        \eta_i = \eta_s + (\eta_e - \eta_s)\, i/(n-1) \ (\text{"linear"})

    for the param group with the largest rate; every other group runs at its
    usual ratio to that one (per-layer rates keep their ratios; if all rates
    are 0, every group gets :math:`\eta_i`). The loss is smoothed with a
    bias-corrected exponential moving average whose weight of the new value is
    ``smooth`` :math:`= s`:

    .. math::
        a_i = (1 - s)\, a_{i-1} + s\, \ell_i, \qquad \bar\ell_i = a_i / (1 - (1-s)^{i+1})

    (``smooth=0`` keeps the raw losses). The run stops after the step whose
    smoothed loss exceeds ``diverge_th`` times the best one (that step is kept
    in the result), or at a non-finite loss (that step is dropped).

    Afterwards params (the caller's arrays, via ``np.copyto``), optimizer state
    and every group setting are exactly as before, also when
    ``loss_and_grads`` raises.

    Args:
        optimizer (cyoptim.Optimizer): the optimizer to test.
        loss_and_grads (callable): ``() -> (loss, grads)`` for the current
            params, on a fresh batch each call: the user's forward and backward
            pass; ``grads`` is what ``optimizer.step`` takes.

    Example:
        >>> import numpy as np, cyoptim
        >>> w = np.zeros(3)
        >>> target = np.array([1.0, -2.0, 3.0])
        >>> def loss_and_grads():
        ...     r = w - target
        ...     return float(r @ r), [2 * r]
        >>> opt = cyoptim.SGD([w], lr=0.01)
        >>> result = cyoptim.LRFinder(opt, loss_and_grads).run(1e-4, 10, num_iter=50)
        >>> 1e-3 < result.suggestion < 1.0, w.tolist()
        (True, [0.0, 0.0, 0.0])

    Reference: Smith, "Cyclical Learning Rates for Training Neural Networks",
    section 3.3, https://arxiv.org/abs/1506.01186
    """

    def __init__(self, optimizer, loss_and_grads):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(
                f"{type(optimizer).__name__} is not an Optimizer (LRFinder needs "
                f"a cyoptim optimizer)"
            )
        if not callable(loss_and_grads):
            raise TypeError("loss_and_grads must be callable: () -> (loss, grads)")
        self.optimizer = optimizer
        self.loss_and_grads = loss_and_grads

    @staticmethod
    def _ramp(start_lr, end_lr, num_iter, step_mode):
        for name, value in (("start_lr", start_lr), ("end_lr", end_lr)):
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not math.isfinite(value)
                or value <= 0
            ):
                raise ValueError(f"{name} must be a positive finite number, got {value!r}")
        if start_lr >= end_lr:
            raise ValueError(f"start_lr ({start_lr}) must be smaller than end_lr ({end_lr})")
        if isinstance(num_iter, bool) or not isinstance(num_iter, int) or num_iter < 2:
            raise ValueError(f"num_iter must be an integer >= 2, got {num_iter!r}")
        if step_mode == "exp":
            return exponential_decay(start_lr, num_iter - 1, end_lr / start_lr)
        if step_mode == "linear":
            return linear_schedule(start_lr, end_lr, num_iter - 1)
        raise ValueError(f"step_mode must be 'exp' or 'linear', got {step_mode!r}")

    def run(
        self,
        start_lr=1e-7,
        end_lr=10,
        num_iter=100,
        step_mode="exp",
        smooth=DEFAULT_SMOOTH,
        diverge_th=5,
    ):
        """Run the range test and return an :class:`LRFinderResult`.

        Args:
            start_lr (float): first rate (> 0).
            end_lr (float): last rate (> start_lr).
            num_iter (int): steps, >= 2 (fewer if the loss diverges first).
            step_mode (str): "exp" (geometric ramp, default) or "linear".
            smooth (float): weight of the new loss in the moving average, in
                [0, 1); 0 disables smoothing.
            diverge_th (float): stop when the smoothed loss exceeds
                ``diverge_th`` times the best smoothed loss (> 1).
        """
        ramp = self._ramp(start_lr, end_lr, num_iter, step_mode)
        if isinstance(smooth, bool) or not isinstance(smooth, (int, float)) or not 0 <= smooth < 1:
            raise ValueError(f"smooth must be in [0, 1), got {smooth!r}")
        if (
            isinstance(diverge_th, bool)
            or not isinstance(diverge_th, (int, float))
            or not diverge_th > 1
        ):
            raise ValueError(f"diverge_th must be a number > 1, got {diverge_th!r}")
        groups = self.optimizer.param_groups
        top = max(group["lr"] for group in groups)
        ratios = [group["lr"] / top if top > 0 else 1.0 for group in groups]
        snapshot = _Snapshot(self.optimizer)
        lrs, losses, raw = [], [], []
        average, best, diverged = 0.0, math.inf, False
        try:
            for i in range(num_iter):
                lr = ramp(i)
                for group, ratio in zip(groups, ratios):
                    group["lr"] = lr * ratio
                loss, grads = self.loss_and_grads()
                loss = float(loss)
                if not math.isfinite(loss):
                    diverged = True
                    break
                self.optimizer.step(grads)
                average = (1 - smooth) * average + smooth * loss
                smoothed = average / (1 - (1 - smooth) ** (i + 1)) if smooth else loss
                lrs.append(lr)
                raw.append(loss)
                losses.append(smoothed)
                best = min(best, smoothed)
                if smoothed > diverge_th * best:
                    diverged = True
                    break
        finally:
            snapshot.restore()
        return LRFinderResult(
            lrs, losses, raw, diverged, skip_start=num_iter // 10, skip_end=SKIP_END
        )
