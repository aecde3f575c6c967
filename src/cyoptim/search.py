"""Learning-rate search: a grid or random search, each trial early-stopped on the validation loss.

What the lessons this project grew from teach next to the LR range test
(:class:`cyoptim.LRFinder`): train once per candidate learning rate, score
each run on a validation set, keep the best. :func:`lr_search` runs the
trials, stops each one when its validation loss stops improving
(:class:`cyoptim.EarlyStopping`), and can save every finished trial to a
JSON results file, so an interrupted search resumes where it stopped.
``python -m cyoptim lr-search`` runs it on the demo's digits MLP.
"""

import json
import math
import numbers
import os
import time
from dataclasses import asdict, dataclass

import numpy as np

from .checkpoint import _fspath, _write_atomically
from .early_stopping import EarlyStopping

MODES = ("grid", "random")
DEFAULT_TRIALS = 11
DEFAULT_LR_RANGE = (1e-5, 1.0)  # with 11 trials, the grid is every half decade
FORMAT = "cyoptim.lr_search"
VERSION = 1
# Why a trial ended: early stopping, the epoch cap, a non-finite validation
# loss, or train_fn's epochs ran out.
STOP_REASONS = ("patience", "max_epochs", "diverged", "finished")


class ResultsFileError(ValueError):
    """A results file that :func:`lr_search` cannot resume from: unreadable, or from
    a search with other settings (the message says which and what to do)."""


@dataclass(frozen=True)
class Trial:
    """One training run of a learning-rate search.

    Attributes:
        index (int): position in the search's plan (0-based; the order of the runs).
        lr (float): the learning rate.
        val_loss (float or None): the best (lowest) validation loss; None when
            no epoch gave a finite one.
        val_accuracy (float or None): the validation accuracy at that epoch
            (None when ``train_fn`` reports none).
        epochs (int): epochs trained.
        best_epoch (int or None): the epoch of ``val_loss``, counted from 1.
        stopped (str): why the trial ended: ``"patience"`` (early stopping),
            ``"max_epochs"``, ``"diverged"`` (a non-finite validation loss) or
            ``"finished"`` (``train_fn`` yielded no more epochs).
        seconds (float): wall time of the trial.
        val_losses, val_accuracies (tuple): per epoch; None where not finite
            (or not reported).
    """

    index: int
    lr: float
    val_loss: float | None
    val_accuracy: float | None
    epochs: int
    best_epoch: int | None
    stopped: str
    seconds: float
    val_losses: tuple
    val_accuracies: tuple

    def to_dict(self):
        """The trial as JSON-ready values (the form of the results file)."""
        record = asdict(self)
        record["val_losses"] = list(self.val_losses)
        record["val_accuracies"] = list(self.val_accuracies)
        return record

    @classmethod
    def from_dict(cls, record):
        """A trial from :meth:`to_dict`'s form; ValueError when something does not fit."""
        if not isinstance(record, dict) or set(record) != _TRIAL_KEYS:
            raise ValueError(
                f"a trial must be an object with the keys {', '.join(sorted(_TRIAL_KEYS))}"
            )
        if record["stopped"] not in STOP_REASONS:
            raise ValueError(f"unknown stop reason {record['stopped']!r}")
        try:
            return cls(
                int(record["index"]),
                float(record["lr"]),
                _optional_number(record["val_loss"]),
                _optional_number(record["val_accuracy"]),
                int(record["epochs"]),
                None if record["best_epoch"] is None else int(record["best_epoch"]),
                record["stopped"],
                float(record["seconds"]),
                tuple(_optional_number(v) for v in record["val_losses"]),
                tuple(_optional_number(v) for v in record["val_accuracies"]),
            )
        except (TypeError, ValueError) as error:
            raise ValueError(f"a trial holds a value of the wrong kind ({error})") from None


_TRIAL_KEYS = frozenset(Trial.__dataclass_fields__)


class LRSearchResult:
    """What :func:`lr_search` found.

    ``print(result)`` shows a table of every trial by learning rate, the best
    one marked with ``*``.

    Attributes:
        trials (list of Trial): every trial, in the order of the plan.
        best (Trial or None): the trial with the lowest validation loss (the
            earlier one on a tie); None when no trial had a finite one.
        search (dict): the search's settings, as in the results file
            (``mode``, ``lrs``, ``seed``, ``patience``, ...).
        resumed (int): trials read from the results file rather than run.
    """

    def __init__(self, trials, search, resumed=0):
        self.trials = list(trials)
        self.search = search
        self.resumed = resumed
        finite = [t for t in self.trials if t.val_loss is not None]
        self.best = min(finite, key=lambda t: (t.val_loss, t.index)) if finite else None

    @property
    def lrs(self):
        """The learning rate of every trial, in the order of the plan."""
        return np.array([t.lr for t in self.trials])

    def __repr__(self):
        best = "None" if self.best is None else f"{self.best.lr:.3g}"
        return (
            f"LRSearchResult(mode={self.search['mode']!r}, trials={len(self.trials)}, "
            f"best_lr={best})"
        )

    def __str__(self):
        search = self.search
        if search["lr_range"] is None:
            source = "given lrs"
        else:
            low, high = search["lr_range"]
            source = f"lr {low:g} to {high:g}"
            if search["mode"] == "random":
                source += f", seed {search['seed']}"
        title = (
            f"lr search: {search['mode']}, {len(self.trials)} trials ({source})\n"
            f"each trial: early stopping on the validation loss, patience "
            f"{search['patience']}"
            + ("" if search["max_epochs"] is None else f", at most {search['max_epochs']} epochs")
        )
        header = (
            f"  {'trial':>5}{'lr':>11}{'val loss':>11}{'val acc':>9}{'epochs':>8}"
            f"{'best at':>9}  stopped"
        )
        lines = [title, header, "-" * (len(header) + 4)]
        for t in sorted(self.trials, key=lambda t: (t.lr, t.index)):
            mark = "* " if t is self.best else "  "
            loss = (
                ("diverged" if t.stopped == "diverged" else "-")
                if t.val_loss is None
                else f"{t.val_loss:.4f}"
            )
            accuracy = "-" if t.val_accuracy is None else f"{t.val_accuracy:.4f}"
            best_epoch = "-" if t.best_epoch is None else str(t.best_epoch)
            lines.append(
                f"{mark}{t.index:>5}{t.lr:>11.3e}{loss:>11}{accuracy:>9}"
                f"{t.epochs:>8}{best_epoch:>9}  {t.stopped}"
            )
        lines.append(
            "* best: lowest validation loss"
            if self.best is not None
            else "no trial reached a finite validation loss"
        )
        return "\n".join(lines)

    def plot(self, ax=None, suggestion=None):
        """Validation accuracy against the rate (log axis), the best marked; returns the Axes.

        Without any accuracy (``train_fn`` yields losses only) it draws the
        best validation loss instead. Trials with nothing to draw (diverged at
        once) are marked with an ``x`` on the lr axis.

        Args:
            ax: a matplotlib Axes; None makes a new figure with
                ``matplotlib.pyplot`` (imported only then). Given an Axes,
                pyplot is never imported.
            suggestion: the LR range test's suggestion, drawn as a vertical
                line: a learning rate, or an :class:`~cyoptim.lr_finder.LRFinderResult`
                (its ``suggestion``); None draws none.
        """
        from .lr_finder import new_axes

        ax = new_axes(ax, "LRSearchResult.plot")
        use_accuracy = any(t.val_accuracy is not None for t in self.trials)
        name = "val_accuracy" if use_accuracy else "val_loss"
        trials = sorted(self.trials, key=lambda t: (t.lr, t.index))
        drawn = [t for t in trials if getattr(t, name) is not None]
        ax.plot(
            [t.lr for t in drawn],
            [getattr(t, name) for t in drawn],
            "o-",
            label=f"{self.search['mode']} search, {len(trials)} trials",
        )
        missing = [t.lr for t in trials if getattr(t, name) is None]
        if missing:
            ax.plot(
                missing,
                [0.0] * len(missing),
                "kx",
                clip_on=False,
                transform=ax.get_xaxis_transform(),
                label="nothing to draw (diverged)",
            )
        if self.best is not None and getattr(self.best, name) is not None:
            ax.plot(
                self.best.lr,
                getattr(self.best, name),
                "r*",
                markersize=14,
                label=f"best: {self.best.lr:.2e}",
            )
        suggestion = getattr(suggestion, "suggestion", suggestion)
        if suggestion is not None:
            ax.axvline(
                suggestion, color="g", linestyle="--", label=f"LR range test: {suggestion:.2e}"
            )
        ax.set_xscale("log")
        ax.set_xlabel("learning rate")
        ax.set_ylabel(
            "validation accuracy (at the best epoch)" if use_accuracy else "best validation loss"
        )
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
        return ax

    def to_dict(self):
        """The results file's document: format, settings, every trial, the best trial's index."""
        return {
            "format": FORMAT,
            "version": VERSION,
            "search": self.search,
            "trials": [t.to_dict() for t in self.trials],
            "best": None if self.best is None else self.best.index,
        }


def lr_search(
    train_fn,
    lrs=None,
    mode="grid",
    trials=None,
    seed=0,
    *,
    lr_range=None,
    patience=3,
    min_delta=0.0,
    max_epochs=None,
    params=None,
    results_file=None,
    settings=None,
    progress=True,
):
    r"""Search the learning rate: one training run per candidate, early-stopped, best marked.

    **The plan.** ``mode="grid"`` runs the given ``lrs`` in their order, or
    without them ``trials`` rates spaced evenly in log scale over ``lr_range``
    (both ends included). ``mode="random"`` draws ``trials`` rates
    log-uniformly from ``lr_range``,

    .. math:: \eta_k = \exp(u_k),\quad u_k \sim U(\ln \eta_{lo}, \ln \eta_{hi}),

    with ``np.random.default_rng(seed)``: the same seed gives the same rates
    (and a longer search with the same seed begins with the same ones).

    **The train_fn contract.** ``train_fn(lr)`` trains a model from its
    initial weights with learning rate ``lr`` and returns an iterator over
    epochs, best written as a generator: after each epoch it yields
    ``(val_loss, val_accuracy)``, or only ``val_loss``, measured on a
    validation set (never the test set); ``val_accuracy`` may be None. The
    search monitors the validation loss with :class:`cyoptim.EarlyStopping`
    (``patience``, ``min_delta``) and stops asking for epochs when it says
    stop, when ``max_epochs`` epochs are done, or at a non-finite loss; then it
    closes the generator (its ``finally`` blocks run). A trial's result is its
    best validation loss and the accuracy at that epoch. A ``train_fn`` that
    returns a list instead trains every epoch before the search sees one;
    the search still reads only as far as early stopping allows.

    Every trial must start from the same weights. Pass the model's arrays as
    ``params`` and the search sees to it: it copies them before the first
    trial, writes the copy back (in place) before every trial, and once more
    when the search ends or fails. Otherwise ``train_fn`` must build its
    model from the same initial weights itself. A search is reproducible when
    ``train_fn`` is (the same batches in the same order for the same ``lr``).

    **Resuming.** With ``results_file``, the search writes a JSON document
    (atomically) before the first trial and after each one: its settings and
    every finished trial. Run it again with the same arguments and file, and
    the trials found there are not run again. A file from a search with other
    settings (mode, rates, seed, patience, ``settings``, ...) is refused with
    a ValueError that names the differences. A trial interrupted halfway is
    run again from its start.

    Args:
        train_fn (callable): ``train_fn(lr) -> iterator`` of per-epoch
            ``(val_loss, val_accuracy)`` or ``val_loss``, as above.
        lrs (sequence of float, optional): the rates of a grid search
            (positive, finite).
        mode (str): ``"grid"`` (default) or ``"random"``.
        trials (int, optional): how many rates; default ``len(lrs)``, or 11.
        seed (int): seeds the random draws (>= 0; default 0).
        lr_range (tuple, optional): ``(low, high)``, ``0 < low < high``, for a
            random search or a grid without ``lrs``; default ``(1e-5, 1.0)``.
        patience (int): epochs without improvement of the validation loss
            before a trial stops (>= 0; default 3).
        min_delta (float): smallest decrease that counts as an improvement (>= 0).
        max_epochs (int, optional): cap on the epochs of a trial (>= 1);
            None leaves the length to ``train_fn`` and early stopping.
        params (list of ndarray, optional): the model's arrays, reset to
            their initial values before each trial (see above).
        results_file (str or os.PathLike, optional): the JSON file to write
            and to resume from; its folder must exist.
        settings (dict, optional): JSON values that describe what
            ``train_fn`` does (optimizer, model, data, batch size, ...); stored
            in the results file and compared on resume, so that a file of
            another experiment is refused.
        progress (bool): a progress bar over the trials (tqdm, when
            installed) showing the running trial's epoch and loss.

    Returns:
        LRSearchResult: ``.trials``, ``.best``; ``print(result)`` shows the
        table and ``result.plot()`` draws accuracy against the rate.

    Raises:
        TypeError, ValueError: bad arguments (before any training), or a
            ``train_fn`` whose epochs are not numbers.
        ResultsFileError: (a ValueError) the results file is unreadable or
            from a search with other settings; nothing is trained.

    Example:
        >>> import numpy as np, cyoptim
        >>> w = np.zeros(2)
        >>> target = np.array([1.0, -1.0])
        >>> def train_fn(lr):
        ...     opt = cyoptim.SGD([w], lr=lr)
        ...     for epoch in range(100):
        ...         opt.step([2 * (w - target)])
        ...         yield float(np.sum((w - target) ** 2))     # the validation loss
        >>> result = cyoptim.lr_search(train_fn, lrs=[1e-3, 1e-2, 0.1, 1.5], params=[w],
        ...                            progress=False)
        >>> result.best.lr, [t.stopped for t in result.trials], w.tolist()
        (0.1, ['finished', 'finished', 'finished', 'patience'], [0.0, 0.0])
    """
    if not callable(train_fn):
        raise TypeError(
            "train_fn must be callable: train_fn(lr) -> per-epoch "
            "(val_loss, val_accuracy), e.g. a generator"
        )
    _check_int("seed", seed, 0)
    plan, lr_range = _plan(lrs, mode, trials, seed, lr_range)
    _check_int("patience", patience, 0)
    if (
        isinstance(min_delta, bool)
        or not isinstance(min_delta, numbers.Real)
        or not min_delta >= 0
        or not math.isfinite(min_delta)
    ):
        raise ValueError(f"min_delta must be a finite number >= 0, got {min_delta!r}")
    if max_epochs is not None:
        _check_int("max_epochs", max_epochs, 1)
    params = _check_params(params)
    search = {
        "mode": mode,
        "lrs": plan,
        "lr_range": lr_range,
        "seed": int(seed),
        "patience": int(patience),
        "min_delta": float(min_delta),
        "max_epochs": None if max_epochs is None else int(max_epochs),
        "settings": _json_copy(settings),
    }
    done = {}
    if results_file is not None:
        results_file = _fspath(results_file)
        folder = os.path.dirname(os.path.abspath(results_file))
        if not os.path.isdir(folder):
            raise FileNotFoundError(
                f"cannot write the results file {results_file}: the folder {folder} does not exist"
            )
        if os.path.exists(results_file):
            done = {t.index: t for t in _read_results(results_file, search)}
        _write_results(results_file, search, done)
    resumed = len(done)
    initial = [p.copy() for p in params]

    from .examples.optional import progress_bar

    bar = progress_bar(len(plan), "lr search", progress, unit="trial", initial=resumed)
    try:
        for index, lr in enumerate(plan):
            if index in done:
                continue
            for p, saved in zip(params, initial):
                np.copyto(p, saved)

            def report(epoch, loss, lr=lr):
                # redrawn at most every tqdm mininterval (update(0)), not every epoch
                bar.set_postfix_str(
                    f"lr {lr:.2e}, epoch {epoch}, val loss {loss:.4g}", refresh=False
                )
                bar.update(0)

            done[index] = _run_trial(train_fn, index, lr, patience, min_delta, max_epochs, report)
            if results_file is not None:
                _write_results(results_file, search, done)
            bar.update()
    finally:
        bar.close()
        for p, saved in zip(params, initial):
            np.copyto(p, saved)
    return LRSearchResult([done[i] for i in range(len(plan))], search, resumed)


def _run_trial(train_fn, index, lr, patience, min_delta, max_epochs, report):
    """Train one rate until early stopping, the cap, divergence or train_fn's end."""
    stopper = EarlyStopping(patience, min_delta, restore_best=False)
    losses, accuracies = [], []
    stopped = "finished"
    start = time.perf_counter()
    epochs = train_fn(lr)
    try:
        epochs = iter(epochs)
    except TypeError:
        raise TypeError(
            f"train_fn(lr={lr!r}) returned a {type(epochs).__name__}, not an "
            f"iterator of per-epoch (val_loss, val_accuracy): write it as a "
            f"generator that yields after every epoch"
        ) from None
    try:
        for item in epochs:
            loss, accuracy = _epoch_result(item, lr, len(losses) + 1)
            losses.append(loss)
            accuracies.append(accuracy)
            report(len(losses), loss)
            if not math.isfinite(loss):
                stopped = "diverged"
                break
            if stopper.step(loss):
                stopped = "patience"
                break
            if max_epochs is not None and len(losses) >= max_epochs:
                stopped = "max_epochs"
                break
    finally:
        close = getattr(epochs, "close", None)
        if close is not None:
            close()
    seconds = time.perf_counter() - start
    best = stopper.best_epoch if losses and stopper.best_epoch >= 0 else None
    return Trial(
        index,
        float(lr),
        None if best is None else losses[best],
        None if best is None else _finite_or_none(accuracies[best]),
        len(losses),
        None if best is None else best + 1,
        stopped,
        seconds,
        tuple(_finite_or_none(v) for v in losses),
        tuple(_finite_or_none(v) for v in accuracies),
    )


def _epoch_result(item, lr, epoch):
    """(val_loss, val_accuracy or None) from what train_fn yielded for one epoch."""
    if isinstance(item, (tuple, list)) and len(item) == 2:
        loss, accuracy = item
    else:
        loss, accuracy = item, None
    if _is_number(loss) and (accuracy is None or _is_number(accuracy)):
        return float(loss), None if accuracy is None else float(accuracy)
    raise TypeError(
        f"train_fn(lr={lr!r}) yielded {item!r} for epoch {epoch}: expected "
        f"val_loss or (val_loss, val_accuracy), numbers (the accuracy may be None)"
    )


def _is_number(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _finite_or_none(value):
    return None if value is None or not math.isfinite(value) else float(value)


def _optional_number(value):
    if value is None:
        return None
    if not _is_number(value):
        raise TypeError(f"expected a number or null, got {value!r}")
    return float(value)


def _check_int(name, value, minimum):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


def _positive_rate(value, what):
    if not _is_number(value) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{what} must be a positive finite number, got {value!r}")
    return float(value)


def lr_plan(lrs=None, mode="grid", trials=None, seed=0, lr_range=None):
    """The learning rates :func:`lr_search` would try with these arguments, in order.

    Checks the arguments as ``lr_search`` does (ValueError or TypeError).

    Example:
        >>> from cyoptim.search import lr_plan
        >>> [f"{lr:.3g}" for lr in lr_plan(trials=5, lr_range=(1e-4, 1))]
        ['0.0001', '0.001', '0.01', '0.1', '1']
    """
    _check_int("seed", seed, 0)
    return _plan(lrs, mode, trials, seed, lr_range)[0]


def _plan(lrs, mode, trials, seed, lr_range):
    """(the list of rates to try, the lr_range used or None) after checking the arguments."""
    if mode not in MODES:
        raise ValueError(f"mode must be 'grid' or 'random', got {mode!r}")
    if trials is not None:
        _check_int("trials", trials, 1)
    if lrs is not None:
        if mode == "random":
            raise ValueError(
                "lrs is for mode='grid'; a random search draws its rates from lr_range=(low, high)"
            )
        if lr_range is not None:
            raise ValueError(
                "give lrs or lr_range, not both: a grid from lr_range is "
                "trials rates spaced evenly in log scale"
            )
        if isinstance(lrs, (str, bytes)) or not hasattr(lrs, "__len__"):
            raise TypeError(f"lrs must be a sequence of learning rates, got {type(lrs).__name__}")
        plan = [_positive_rate(lr, f"lrs[{i}]") for i, lr in enumerate(np.ravel(lrs).tolist())]
        if not plan:
            raise ValueError("lrs is empty: give at least one learning rate")
        if trials is not None and trials != len(plan):
            raise ValueError(
                f"trials={trials} does not match the {len(plan)} lrs given "
                f"(leave trials out with lrs)"
            )
        return plan, None
    if lr_range is None:
        lr_range = DEFAULT_LR_RANGE
    if (
        isinstance(lr_range, (str, bytes))
        or not hasattr(lr_range, "__len__")
        or len(lr_range) != 2
    ):
        raise ValueError(f"lr_range must be (low, high), got {lr_range!r}")
    low = _positive_rate(lr_range[0], "lr_range's low end")
    high = _positive_rate(lr_range[1], "lr_range's high end")
    if not low < high:
        raise ValueError(f"lr_range needs low < high, got ({low!r}, {high!r})")
    count = DEFAULT_TRIALS if trials is None else int(trials)
    if mode == "grid":
        plan = np.geomspace(low, high, count)
    else:
        rng = np.random.default_rng(seed)
        plan = np.exp(rng.uniform(math.log(low), math.log(high), size=count))
    return [float(lr) for lr in plan], [low, high]


def _check_params(params):
    if params is None:
        return []
    if isinstance(params, np.ndarray):
        raise TypeError("params must be a list of arrays (the model's), not one array")
    params = list(params)
    for i, p in enumerate(params):
        if not isinstance(p, np.ndarray):
            raise TypeError(f"params[{i}] must be a NumPy array, got {type(p).__name__}")
        if not p.flags.writeable:
            raise ValueError(
                f"params[{i}] is read-only: the search must reset it before every trial"
            )
    return params


def _json_copy(settings):
    """settings as it reads back from JSON (tuples become lists); TypeError if not JSON."""
    if settings is None:
        return None
    if not isinstance(settings, dict):
        raise TypeError(f"settings must be a dict of JSON values, got {type(settings).__name__}")
    try:
        return json.loads(json.dumps(settings, allow_nan=False))
    except (TypeError, ValueError) as error:
        raise TypeError(
            f"settings must hold JSON values only (numbers, strings, bools, "
            f"None, lists and dicts with string keys): {error}"
        ) from None


def _write_results(path, search, done):
    doc = LRSearchResult([done[i] for i in sorted(done)], search).to_dict()
    text = json.dumps(doc, indent=1, allow_nan=False) + "\n"
    _write_atomically(
        path, os.path.dirname(os.path.abspath(path)), lambda file: file.write(text.encode())
    )


def _read_results(path, search):
    """The finished trials of the results file at `path`, after checking it is this search's."""

    def refuse(reason):
        return ResultsFileError(
            f"cannot resume from the results file {path}: {reason}; use another "
            f"results file, or delete this one to start over"
        )

    try:
        with open(path, encoding="utf-8") as file:
            doc = json.load(file)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise refuse(f"it is not JSON ({error})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise refuse("it is not a results file of cyoptim.lr_search")
    if doc.get("version") != VERSION:
        raise refuse(f"it has version {doc.get('version')!r}; this cyoptim reads {VERSION}")
    saved = doc.get("search")
    if not isinstance(saved, dict):
        raise refuse("it has no search settings")
    differences = _differences("", saved, search)
    if differences:
        raise refuse(
            "it was written by a search with other settings (" + "; ".join(differences) + ")"
        )
    records = doc.get("trials")
    if not isinstance(records, list):
        raise refuse("it has no list of trials")
    trials = {}
    for record in records:
        try:
            trial = Trial.from_dict(record)
        except ValueError as error:
            raise refuse(str(error)) from None
        if (
            not 0 <= trial.index < len(search["lrs"])
            or trial.index in trials
            or trial.lr != search["lrs"][trial.index]
        ):
            raise refuse(
                f"its trial {trial.index} (lr {trial.lr!r}) is not one of this "
                f"search's, or appears twice"
            )
        trials[trial.index] = trial
    return list(trials.values())


def _differences(prefix, saved, now):
    """The settings that differ, as the refusal names them: nested keys joined by
    dots, a list of rates by its first difference."""
    found = []
    for key, value in now.items():
        name, old = prefix + key, saved.get(key)
        if key not in saved:
            found.append(f"{name}: none in the file, {value!r} now")
        elif old == value:
            continue
        elif isinstance(old, dict) and isinstance(value, dict):
            found += _differences(name + ".", old, value)
            found += [
                f"{name}.{k}: {old[k]!r} in the file, none now" for k in old if k not in value
            ]
        elif key == "lrs" and isinstance(old, list) and len(old) != len(value):
            found.append(f"lrs: {len(old)} rates in the file, {len(value)} now")
        elif key == "lrs" and isinstance(old, list):
            i = next(i for i, (a, b) in enumerate(zip(old, value)) if a != b)
            found.append(f"lrs: rate {i} is {old[i]!r} in the file, {value[i]!r} now")
        else:
            found.append(f"{name}: {old!r} in the file, {value!r} now")
    return found


__all__ = ["LRSearchResult", "ResultsFileError", "Trial", "lr_plan", "lr_search"]
