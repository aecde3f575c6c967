"""Early stopping: stop training when a validation metric stops improving."""

import numbers

import numpy as np


class EarlyStopping:
    r"""Signal a stop after ``patience`` checks without improvement; keep the best params.

    A value :math:`a` improves on the best :math:`b` when :math:`a < b - \delta`
    (``mode="min"``) or :math:`a > b + \delta` (``mode="max"``), with
    :math:`\delta` = ``min_delta``. NaN never improves. The first value always does.

    Args:
        patience (int): checks without improvement tolerated (>= 0); the check
            that makes ``num_bad_epochs`` reach ``patience`` returns True (with
            ``patience=0``, the first one that does not improve).
        min_delta (float): smallest change that counts as an improvement (>= 0).
        mode (str): "min" (a loss, default) or "max" (an accuracy).
        restore_best (bool): keep copies of the params passed with the best
            metric, for :meth:`restore` (default True).

    Attributes:
        best: best metric so far (inf / -inf before the first step).
        best_epoch (int): index (0-based) of the step that gave ``best``; -1 before.
        num_bad_epochs (int): steps since the last improvement.
        should_stop (bool): whether the last step said stop.

    Example:
        >>> import numpy as np, cyoptim
        >>> w = np.zeros(2)
        >>> es = cyoptim.EarlyStopping(patience=2)
        >>> for epoch, val_loss in enumerate([0.9, 0.5, 0.6, 0.7, 0.4]):
        ...     w += 1.0                              # "training"
        ...     if es.step(val_loss, [w]):
        ...         break
        >>> es.best, es.best_epoch, epoch
        (0.5, 1, 3)
        >>> es.restore([w]); w
        array([2., 2.])
    """

    def __init__(self, patience, min_delta=0.0, mode="min", restore_best=True):
        if (
            isinstance(patience, bool)
            or not isinstance(patience, numbers.Integral)
            or patience < 0
        ):
            raise ValueError(f"patience must be an integer >= 0, got {patience!r}")
        if (
            isinstance(min_delta, bool)
            or not isinstance(min_delta, numbers.Real)
            or not min_delta >= 0
        ):
            raise ValueError(f"min_delta must be a number >= 0, got {min_delta!r}")
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
        self.patience = int(patience)
        self.min_delta = float(min_delta)
        self.mode = mode
        self.restore_best = bool(restore_best)
        self.reset()

    def reset(self):
        """Forget everything seen so far."""
        self.best = np.inf if self.mode == "min" else -np.inf
        self.best_epoch = -1
        self.num_bad_epochs = 0
        self.should_stop = False
        self._epoch = -1
        self._best_params = None

    def is_better(self, value):
        """Whether ``value`` improves on ``best`` by more than ``min_delta``."""
        if self.best_epoch < 0:
            return value == value  # anything but NaN
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def step(self, metric, params=None):
        """Record this epoch's metric; return True when training should stop.

        Args:
            metric (float): the monitored value (e.g. the validation loss).
            params (list of ndarray, optional): the model's arrays; with
                ``restore_best`` a copy is kept when ``metric`` is the best so far.
        """
        metric = float(metric)
        self._epoch += 1
        if self.is_better(metric):
            self.best = metric
            self.best_epoch = self._epoch
            self.num_bad_epochs = 0
            if self.restore_best and params is not None:
                self._best_params = [np.array(p, copy=True) for p in params]
        else:
            self.num_bad_epochs += 1
        self.should_stop = self.num_bad_epochs >= self.patience and self.num_bad_epochs > 0
        return self.should_stop

    def restore(self, params):
        """Copy the params saved at the best metric back into ``params`` (in place)."""
        if not self.restore_best:
            raise RuntimeError("EarlyStopping(restore_best=False) keeps no params to restore")
        if self._best_params is None:
            raise RuntimeError("no params saved yet: pass params to step() with the metric")
        params = list(params)
        if len(params) != len(self._best_params):
            raise ValueError(
                f"expected {len(self._best_params)} params (as passed to step), got {len(params)}"
            )
        for i, (p, saved) in enumerate(zip(params, self._best_params)):
            if not isinstance(p, np.ndarray) or p.shape != saved.shape:
                raise ValueError(
                    f"param {i} must be an array of shape {saved.shape}, got "
                    f"{getattr(p, 'shape', type(p).__name__)}"
                )
        for p, saved in zip(params, self._best_params):
            np.copyto(p, saved)

    def state_dict(self):
        """Counters, best value and the saved params (copies)."""
        state = dict(self.__dict__)
        if self._best_params is not None:
            state["_best_params"] = [p.copy() for p in self._best_params]
        return state

    def load_state_dict(self, state_dict):
        """Restore a state saved by ``state_dict()``."""
        self.__dict__.update(state_dict)
