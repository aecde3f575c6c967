"""The demo: train one small MLP on the 8x8 digits with every optimizer, and compare.

``python -m cyoptim demo`` (or :func:`run_demo`) trains
:class:`cyoptim.examples.MLP` (64-128-64-10, ReLU, float32) with each optimizer
in turn, from the same initial weights and in the same minibatch order, prints
a table (lr, final training loss, test accuracy, wall time, share of the time
spent in ``optimizer.step``) and writes ``results.json`` and ``demo.png``.
``python -m cyoptim lr-find`` (or :func:`run_lr_find`) runs an LR range test
and writes ``lr_find.png``. ``python -m cyoptim lr-search`` (or
:func:`run_lr_search`) searches one optimizer's learning rate on a
validation split (:func:`cyoptim.lr_search`) and writes ``lr_search.json``
and ``lr_search.png``.

Reproducibility: a seed fixes the split, the initial weights and the
minibatch order; the kernels are deterministic for any thread count
(docs/contract.md §4), and BLAS runs on one thread when threadpoolctl is installed,
so a seed gives the same numbers on every run and every ``threads`` value
(timings aside).
"""

import contextlib
import gc
import json
import os
import sys
import tempfile

import numpy as np

import cyoptim

from . import _threads, schedules
from .examples import MLP, load_digits_dataset, validation_split
from .examples.optimizers import select_optimizers
from .examples.optional import single_threaded_blas
from .examples.plot import plot_lr_find, plot_lr_search, plot_training_curves
from .examples.training import batch_order, minibatches, steps_per_epoch, train, train_epochs
from .lr_finder import DEFAULT_SMOOTH, SKIP_END, min_meaningful_iters
from .search import lr_plan

SCHEDULES = ("cosine", "onecycle")
DEFAULT_EPOCHS = 20
DEFAULT_BATCH_SIZE = 32
DEFAULT_OUT = "./cyoptim-demo"
DEMO_FILES = ("results.json", "demo.png")
LR_FIND_FILES = ("lr_find.png",)
LR_SEARCH_FILES = ("lr_search.json", "lr_search.png")
DEFAULT_PATIENCE = 3
VALIDATION_FRACTION = 0.2


def run_demo(
    optimizers=None,
    epochs=DEFAULT_EPOCHS,
    batch_size=DEFAULT_BATCH_SIZE,
    schedule=None,
    seed=0,
    threads=None,
    out=DEFAULT_OUT,
    progress=True,
    ema=None,
):
    """Train the digits MLP with each optimizer; print a table, write results.json and demo.png.

    Args:
        optimizers: keys such as ``["adam", "sgd"]`` (see
            ``cyoptim.examples.optimizers.CHOICES``), or None for every optimizer.
        epochs: passes over the training set.
        batch_size: minibatch size.
        schedule: None, ``"cosine"`` (cosine annealing to 0 over the run) or
            ``"onecycle"`` (one cycle peaking at each optimizer's lr); the
            schedule steps after every batch (``cyoptim.schedules``).
        seed: fixes the split, the initial weights and the minibatch order.
        threads: kernel threads (``cyoptim.set_num_threads``) during the run;
            None keeps the current setting.
        out: directory for results.json and demo.png (created if needed).
        progress: show a progress bar (needs tqdm) and a line per optimizer.
        ema: None, or an EMA decay in [0, 1]: also keep an exponential moving
            average of the weights (``cyoptim.AveragedParams``, torch's
            ``AveragedModel`` EMA rule), updated after every step, and report
            its test accuracy beside the raw weights'.

    Returns:
        The document written to results.json: metadata and a ``"results"`` list
        with, per optimizer, ``optimizer``, ``lr``, ``final_loss``,
        ``test_accuracy``, ``seconds``, ``step_seconds``, ``diverged`` and the
        per-epoch ``loss`` (training set) and ``accuracy`` (test set); with
        ``ema`` also ``ema_test_accuracy`` and the per-epoch ``ema_accuracy``.

    Example:
        >>> from cyoptim.demo import run_demo
        >>> doc = run_demo(["adam", "sgd"], epochs=2, out="/tmp/demo", progress=False)
        ... # doctest: +SKIP
    """
    _check_positive(epochs=epochs, batch_size=batch_size)
    _check_seed(seed)
    choices = select_optimizers(optimizers)
    make_schedule = _schedule_factory(schedule)
    ema = _check_ema(ema)
    check_output_dir(out, DEMO_FILES)  # before training, not after
    dataset = _load_dataset(seed)
    total_steps = epochs * steps_per_epoch(len(dataset.y_train), batch_size)
    model = MLP(seed=seed)  # every optimizer starts from these weights
    initial_weights = model.buffer.data.copy()
    results = []
    with _kernel_threads(threads) as used_threads, single_threaded_blas(), _quiet_gc():
        _warm_up(model, dataset, batch_size)
        for choice in choices:
            model.buffer.data[...] = initial_weights
            optimizer = choice.build(model.params)
            averager = (
                None
                if ema is None
                else cyoptim.AveragedParams(model.params, mode="ema", decay=ema)
            )
            history = train(
                model,
                optimizer,
                dataset,
                epochs,
                batch_size,
                seed,
                schedule=make_schedule(optimizer, choice.lr, total_steps),
                description=choice.label,
                progress=progress,
                averager=averager,
            )
            results.append(_result(choice, history))
            if progress:
                print(_summary_line(results[-1]), flush=True)
    doc = {
        "dataset": dataset.name,
        "n_train": len(dataset.y_train),
        "n_test": len(dataset.y_test),
        "model": {
            "sizes": list(model.sizes),
            "activation": model.activation,
            "dtype": str(model.dtype),
            "params": model.buffer.size,
        },
        "seed": seed,
        "epochs": epochs,
        "batch_size": batch_size,
        "schedule": schedule if schedule in SCHEDULES else None,
        "ema": ema,
        "simd": cyoptim.simd_info(),
        "threads": used_threads,
        "cyoptim_version": cyoptim.__version__,
        "numpy_version": np.__version__,
        "results": results,
    }
    print()
    print(format_table(results, title=table_title(doc)))
    _write_outputs(doc, out)
    return doc


def _load_dataset(seed):
    """The digits split drawn from seed; says so when it is the synthetic stand-in."""
    dataset = load_digits_dataset(seed)
    if dataset.synthetic:
        print(
            "scikit-learn not installed: using a synthetic dataset "
            "(pip install scikit-learn for the 8x8 digits)"
        )
    return dataset


@contextlib.contextmanager
def _kernel_threads(threads):
    """Run the kernels on `threads` threads (None: unchanged) inside; yields the count."""
    previous = _threads.requested()
    if threads is not None:
        cyoptim.set_num_threads(threads)
    try:
        yield cyoptim.get_num_threads()
    finally:
        cyoptim.set_num_threads(previous)


@contextlib.contextmanager
def _quiet_gc():
    """Keep full garbage collections out of the timings.

    Importing scikit-learn leaves a large heap; a full collection over it takes
    tens of milliseconds and would land inside some optimizer's steps.
    gc.freeze() moves everything alive now out of the collector's view.
    """
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _warm_up(model, dataset, batch_size):
    """One forward/backward and step on throwaway weights, so that the first
    optimizer's timings do not include one-off costs (OpenMP's thread start,
    first touches of memory)."""
    saved = model.buffer.data.copy()
    optimizer = cyoptim.SGD(model.params, lr=0.0)
    for _ in range(50):
        model.loss_and_grad(dataset.x_train[:batch_size], dataset.y_train[:batch_size])
        optimizer.step(model.grads)
    model.buffer.data[...] = saved


def _check_positive(**values):
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")


def _check_ema(decay):
    """None, or an EMA decay: a number in [0, 1] (torch's range)."""
    if decay is None:
        return None
    if (
        isinstance(decay, bool)
        or not isinstance(decay, (int, float, np.integer, np.floating))
        or not 0 <= decay <= 1
    ):
        raise ValueError(f"ema must be a decay in [0, 1], got {decay!r}")
    return float(decay)


def _check_seed(seed):
    """NumPy's generators take integer seeds >= 0."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")


def check_output_dir(out, filenames=()):
    """Make sure the folder ``out`` exists (creating it) and ``filenames`` can be written in it.

    Called before any training, so that a bad ``--out`` fails at once instead
    of after the run.

    Raises:
        ValueError: naming the folder and what is wrong (an existing file, a
            parent that is a file, no permission, an output name taken by a folder).
    """
    if os.path.exists(out) and not os.path.isdir(out):
        raise ValueError(f"the output folder {out!r} is an existing file, not a folder")
    try:
        os.makedirs(out, exist_ok=True)
    except OSError as error:
        raise ValueError(
            f"cannot create the output folder {out!r}: {error.strerror or error}"
        ) from error
    for name in filenames:
        path = os.path.join(out, name)
        if os.path.isdir(path):
            raise ValueError(f"cannot write {path!r}: a folder of that name is in the way")
        if os.path.exists(path) and not os.access(path, os.W_OK):
            raise ValueError(f"cannot write {path!r}: permission denied")
    try:
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as error:
        raise ValueError(
            f"cannot write in the output folder {out!r}: {error.strerror or error}"
        ) from error


def _schedule_factory(schedule):
    """A function (optimizer, lr, total_steps) -> schedule or None, checked up front."""
    if schedule in (None, "none"):
        return lambda optimizer, lr, total_steps: None
    if schedule not in SCHEDULES:
        raise ValueError(
            f"unknown schedule {schedule!r}; choose from none, " + ", ".join(SCHEDULES)
        )
    if schedule == "cosine":
        return lambda optimizer, lr, total_steps: schedules.CosineAnnealingLR(
            optimizer, T_max=total_steps
        )
    # Only the lr cycles: cycling momentum would switch momentum on for plain SGD
    # and change beta1 of the Adam family, which is not what the table compares.
    return lambda optimizer, lr, total_steps: schedules.OneCycleLR(
        optimizer, max_lr=lr, total_steps=total_steps, cycle_momentum=False
    )


def _finite_or_none(value):
    """JSON has no NaN: a diverged loss is written as null."""
    return float(value) if np.isfinite(value) else None


def _result(choice, history):
    ema = (
        {
            "ema_test_accuracy": history.averaged_accuracy[-1],
            "ema_accuracy": history.averaged_accuracy,
        }
        if history.averaged_accuracy
        else {}
    )
    return {
        "optimizer": choice.label,
        "key": choice.key,
        "lr": choice.lr,
        "final_loss": _finite_or_none(history.loss[-1]),
        "test_accuracy": history.accuracy[-1],
        "seconds": history.seconds,
        "step_seconds": history.step_seconds,
        "diverged": history.diverged,
        "loss": [_finite_or_none(v) for v in history.loss],
        "accuracy": history.accuracy,
        **ema,
    }


def _format_loss(value):
    return "diverged" if value is None else f"{value:.4f}"


def _summary_line(result):
    ema = (
        f" (EMA weights {result['ema_test_accuracy']:.3f})"
        if "ema_test_accuracy" in result
        else ""
    )
    return (
        f"{result['optimizer']}: loss {_format_loss(result['final_loss'])}, "
        f"test accuracy {result['test_accuracy']:.3f}{ema} in {result['seconds']:.2f} s"
    )


def table_title(doc):
    """The line above the demo's table: the data and settings; loud when the data is synthetic."""
    epochs = doc["epochs"]
    settings = (
        f"MLP {'-'.join(map(str, doc['model']['sizes']))}, {doc['n_train']} train / "
        f"{doc['n_test']} test, {epochs} epoch{'s' if epochs != 1 else ''}, "
        f"batch {doc['batch_size']}, seed {doc['seed']}"
        + (f", EMA decay {doc['ema']:g}" if doc.get("ema") is not None else "")
    )
    if doc["dataset"] == "synthetic":
        return (
            "*** SYNTHETIC DATA, NOT THE 8x8 DIGITS: scikit-learn is not installed "
            "(pip install scikit-learn) ***\n" + settings
        )
    return f"8x8 digits (scikit-learn): {settings}"


def format_table(results, title=None):
    """The comparison table printed by the demo, as text (``title``: a line above it).

    With EMA results (``run_demo(ema=...)``) an ``EMA acc`` column follows
    ``test acc``: the test accuracy of the averaged weights."""
    ema = any("ema_test_accuracy" in r for r in results)
    header = (
        f"{'optimizer':<14}{'lr':>8}{'final loss':>12}{'test acc':>10}"
        + (f"{'EMA acc':>9}" if ema else "")
        + f"{'time (s)':>10}{'in step':>9}"
    )
    lines = ([title] if title else []) + [header, "-" * len(header)]
    for r in results:
        share = r["step_seconds"] / r["seconds"] if r["seconds"] > 0 else 0.0
        lines.append(
            f"{r['optimizer']:<14}{r['lr']:>8.3g}{_format_loss(r['final_loss']):>12}"
            f"{r['test_accuracy']:>10.4f}"
            + (f"{r.get('ema_test_accuracy', float('nan')):>9.4f}" if ema else "")
            + f"{r['seconds']:>10.2f}{share:>9.1%}"
        )
    return "\n".join(lines)


def _write_outputs(doc, out):
    os.makedirs(out, exist_ok=True)
    json_path = os.path.join(out, "results.json")
    with open(json_path, "w") as f:
        json.dump(doc, f, indent=2, allow_nan=False)
        f.write("\n")
    print(f"\nresults: {json_path}")
    dataset = (
        "SYNTHETIC data (no scikit-learn)" if doc["dataset"] == "synthetic" else doc["dataset"]
    )
    title = (
        f"cyoptim {doc['cyoptim_version']} on {dataset}: MLP "
        f"{'-'.join(map(str, doc['model']['sizes']))}, {doc['epochs']} epochs, "
        f"batch {doc['batch_size']}, schedule {doc['schedule'] or 'none'}"
        + (f", EMA {doc['ema']:g} dotted" if doc["ema"] is not None else "")
    )
    _report_plot(
        plot_training_curves(doc["results"], os.path.join(out, "demo.png"), title), "demo.png"
    )


def _report_plot(path, filename):
    """Print where a plot went, or that it was not drawn (path None: no matplotlib)."""
    if path is None:
        print(f"matplotlib not installed: {filename} not written (pip install matplotlib)")
    else:
        print(f"plot:    {path}")


def run_lr_find(
    optimizer="adam",
    out=DEFAULT_OUT,
    seed=0,
    batch_size=DEFAULT_BATCH_SIZE,
    start_lr=1e-6,
    end_lr=10.0,
    num_iter=100,
):
    """LR range test of one optimizer on the digits MLP; writes lr_find.png.

    Uses ``cyoptim.LRFinder(optimizer, loss_and_grads)``, where
    ``loss_and_grads()`` trains on the next minibatch: it returns the loss and
    the model's grads.

    Args:
        optimizer: a key of the demo's optimizers (default ``"adam"``).
        out: directory for lr_find.png (created if needed).
        seed: fixes the split, the initial weights and the minibatch order.
        batch_size: minibatch size.
        start_lr, end_lr, num_iter: the range and length of the test.

    Returns:
        The finder's result (``lrs``, ``losses``, ``suggestion``).
    """
    _check_positive(batch_size=batch_size, num_iter=num_iter)
    _check_seed(seed)
    (choice,) = select_optimizers([optimizer])
    check_output_dir(out, LR_FIND_FILES)  # before the run, not after
    _warn_if_too_short(num_iter)
    dataset = _load_dataset(seed)
    model = MLP(seed=seed)
    with single_threaded_blas():
        result = _range_test(choice, model, dataset, batch_size, seed, start_lr, end_lr, num_iter)
    if result.suggestion is None:
        print(f"{choice.label}: no suggestion (the loss did not fall over the range)")
    else:
        print(
            f"{choice.label}: suggested learning rate {result.suggestion:.3g} "
            f"(steepest descent)"
            + ("" if result.valley is None else f", valley {result.valley:.3g}")
            + f"; the demo uses {choice.lr:.3g}"
        )
    os.makedirs(out, exist_ok=True)
    _report_plot(
        plot_lr_find(
            result,
            os.path.join(out, "lr_find.png"),
            f"LR range test: {choice.label} on {dataset.name}",
        ),
        "lr_find.png",
    )
    return result


def _range_test(
    choice, model, dataset, batch_size, seed, start_lr=1e-6, end_lr=10.0, num_iter=100
):
    """``cyoptim.LRFinder`` on the training rows of `dataset`; the model is left as it was.

    ``loss_and_grads()`` trains on the next minibatch (in the seed's order):
    it returns the loss and the model's grads.
    """
    batches = _endless_minibatches(len(dataset.y_train), batch_size, seed)

    def loss_and_grads():
        rows = next(batches)
        loss = model.loss_and_grad(dataset.x_train[rows], dataset.y_train[rows])
        return loss, model.grads

    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        finder = cyoptim.LRFinder(choice.build(model.params, lr=start_lr), loss_and_grads)
        return finder.run(start_lr, end_lr, num_iter)


def run_lr_search(
    optimizer="adam",
    mode="grid",
    trials=None,
    lrs=None,
    lr_range=None,
    max_epochs=DEFAULT_EPOCHS,
    patience=DEFAULT_PATIENCE,
    batch_size=DEFAULT_BATCH_SIZE,
    seed=0,
    out=DEFAULT_OUT,
    results_file=None,
    progress=True,
):
    """Search one optimizer's learning rate on the digits MLP; writes lr_search.json and .png.

    :func:`cyoptim.lr_search` over the demo's model: the last 80% of the
    training rows are fitted and the first 20% are the validation set
    (:func:`~cyoptim.examples.validation_split`); the test set is never used.
    Every trial starts from the weights of ``MLP(seed=seed)`` and sees the
    minibatches in the same order; each epoch reports the validation loss
    and accuracy, and early stopping ends a trial. The LR range test (as in
    ``lr-find``, on the fitted rows from the same weights) gives the
    suggestion drawn on the plot beside the trials.

    Args:
        optimizer: a key of the demo's optimizers (default ``"adam"``); its
            other options are the demo's.
        mode, trials, lrs, lr_range: the plan, as in :func:`cyoptim.lr_search`.
        max_epochs: cap on the epochs of a trial (default: the demo's 20).
        patience: epochs without improvement of the validation loss before a
            trial stops (default 3).
        batch_size: minibatch size.
        seed: fixes the split, the initial weights, the minibatch order and
            the random draws of the rates.
        out: directory for lr_search.png, and for lr_search.json unless
            `results_file` names another file (created if needed).
        results_file: the JSON results file; run again with the same file and
            arguments, the search resumes where it stopped (a file from other
            settings is refused).
        progress: show a progress bar (needs tqdm).

    Returns:
        The :class:`cyoptim.search.LRSearchResult`.
    """
    _check_positive(batch_size=batch_size, max_epochs=max_epochs)
    _check_seed(seed)
    (choice,) = select_optimizers([optimizer])
    lr_plan(lrs, mode, trials, seed, lr_range)  # bad arguments fail before any work
    check_output_dir(out, LR_SEARCH_FILES)
    if results_file is None:
        results_file = os.path.join(out, "lr_search.json")
    dataset = _load_dataset(seed)
    split = validation_split(dataset, VALIDATION_FRACTION)
    model = MLP(seed=seed)

    def train_fn(lr):
        step = choice.build(model.params, lr=lr).step
        for _ in train_epochs(model, step, split.x_train, split.y_train, batch_size, seed):
            yield (
                model.loss(split.x_test, split.y_test),
                model.accuracy(split.x_test, split.y_test),
            )

    settings = {
        "optimizer": choice.key,
        "options": dict(choice.options),
        "dataset": dataset.name,
        "model": list(model.sizes),
        "n_fit": len(split.y_train),
        "n_validation": len(split.y_test),
        "batch_size": batch_size,
    }
    with single_threaded_blas(), np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        result = cyoptim.lr_search(
            train_fn,
            lrs,
            mode,
            trials,
            seed,
            lr_range=lr_range,
            patience=patience,
            max_epochs=max_epochs,
            params=model.params,
            results_file=results_file,
            settings=settings,
            progress=progress,
        )
        # The search left the weights as they were: the range test starts from them too.
        suggestion = _range_test(choice, model, split, batch_size, seed).suggestion
    print(
        f"{choice.label} on {dataset.name}: {len(split.y_train)} rows fitted, "
        f"{len(split.y_test)} for validation (the test set is not used)"
    )
    if result.resumed:
        print(f"{result.resumed} of {len(result.trials)} trials read from {results_file}")
    print(result)
    if result.best is not None:
        print(f"best: lr {result.best.lr:.3g}; the demo uses {choice.lr:.3g}")
    print(
        "LR range test: "
        + (
            "no suggestion"
            if suggestion is None
            else f"suggests {suggestion:.3g} (steepest descent)"
        )
    )
    print(f"\nresults: {results_file}")
    _report_plot(
        plot_lr_search(
            result,
            os.path.join(out, "lr_search.png"),
            f"lr search: {choice.label} on {dataset.name}, validation split",
            suggestion,
        ),
        "lr_search.png",
    )
    return result


def _warn_if_too_short(num_iter):
    """Say on stderr when the range test is too short for its suggestion to mean much."""
    needed = min_meaningful_iters()
    if num_iter < needed:
        print(
            f"warning: --num-iter {num_iter} is too few for a meaningful suggestion: the "
            f"loss is smoothed over about {1 / DEFAULT_SMOOTH:.0f} steps and the first "
            f"{num_iter // 10} and last {SKIP_END} steps are ignored; use --num-iter "
            f"{needed} or more (default 100)",
            file=sys.stderr,
            flush=True,
        )


def _endless_minibatches(n, batch_size, seed):
    rng = batch_order(seed)
    while True:
        yield from minibatches(n, batch_size, rng)


__all__ = [
    "SCHEDULES",
    "check_output_dir",
    "format_table",
    "run_demo",
    "run_lr_find",
    "run_lr_search",
    "table_title",
]
