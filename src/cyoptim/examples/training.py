"""The training loop of the examples: minibatches in a seeded order, timed steps.

:func:`train` fits a model (anything with ``loss_and_grad``, ``loss``,
``accuracy`` and ``grads``, like :class:`~cyoptim.examples.MLP`) with one
optimizer, and records per epoch the loss on the whole training set and the
accuracy on the test set. It times the whole run and, separately, the calls
to ``optimizer.step``, so the demo can show what share of a training step the
optimizer costs. Its loop is :func:`train_epochs`, a generator that yields
after every pass over the data, which the learning-rate search drives one
epoch at a time.
"""

import contextlib
import time
from dataclasses import dataclass, field

import numpy as np

from .optional import progress_bar

# Index of the batch-order stream in a run's seed sequence (the split and the
# initial weights use the seed itself).
BATCH_ORDER_STREAM = 1


def batch_order(seed):
    """The random generator that orders the minibatches of a run seeded with `seed`."""
    return np.random.default_rng([seed, BATCH_ORDER_STREAM])


def minibatches(n, batch_size, rng):
    """Index arrays covering range(n) once, in an order drawn from rng (last one may be short)."""
    order = rng.permutation(n)
    for start in range(0, n, batch_size):
        yield order[start : start + batch_size]


def steps_per_epoch(n, batch_size):
    """Number of minibatches in one pass over n rows."""
    return -(-n // batch_size)


@dataclass
class History:
    """What :func:`train` measured.

    Attributes:
        loss: training-set loss after each epoch (NaN once diverged).
        accuracy: test-set accuracy after each epoch.
        seconds: wall time of the whole run (steps and per-epoch evaluation).
        step_seconds: time spent inside ``optimizer.step``.
        diverged: the loss became NaN or infinite and training stopped.
        averaged_accuracy: test-set accuracy of the averaged weights after
            each epoch (empty without an averager).
    """

    loss: list = field(default_factory=list)
    accuracy: list = field(default_factory=list)
    averaged_accuracy: list = field(default_factory=list)
    seconds: float = 0.0
    step_seconds: float = 0.0
    diverged: bool = False


@contextlib.contextmanager
def weights_of(model, params):
    """Inside the block the model computes with ``params`` (arrays shaped like
    ``model.params``, such as an averager's), then gets its own weights back."""
    saved = [p.copy() for p in model.params]
    for p, value in zip(model.params, params, strict=True):
        p[...] = value
    try:
        yield model
    finally:
        for p, value in zip(model.params, saved):
            p[...] = value


def train(
    model,
    optimizer,
    dataset,
    epochs,
    batch_size,
    seed,
    schedule=None,
    description="training",
    progress=True,
    averager=None,
):
    """Fit `model` with `optimizer` on `dataset`; return a :class:`History`.

    Args:
        model: has ``loss_and_grad(x, y)`` (fills ``model.grads``), ``loss`` and ``accuracy``.
        optimizer: a cyoptim optimizer over the model's params.
        dataset: a :class:`~cyoptim.examples.Dataset`.
        epochs, batch_size: length of the run and minibatch size.
        seed: seeds the minibatch order (the same for every optimizer).
        schedule: an LR schedule whose ``step()`` is called after every batch, or None.
        description: label of the progress bar.
        progress: show a tqdm bar when tqdm is installed.
        averager: a :class:`cyoptim.AveragedParams` over the model's params, or
            None; updated after every step, its weights' test accuracy recorded
            after every epoch.

    A run whose loss becomes NaN or infinite stops at the end of that epoch,
    with ``diverged`` set; its remaining epochs are not recorded.
    """
    x, y = dataset.x_train, dataset.y_train
    bar = progress_bar(epochs * steps_per_epoch(len(y), batch_size), description, progress)
    history = History()

    def timed_step(grads):
        tick = time.perf_counter()
        optimizer.step(grads)
        history.step_seconds += time.perf_counter() - tick
        if averager is not None:
            averager.update()

    start = time.perf_counter()
    try:
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            passes = train_epochs(
                model, timed_step, x, y, batch_size, seed, schedule, on_batch=bar.update
            )
            for _ in zip(range(epochs), passes):
                loss = model.loss(x, y)
                history.loss.append(loss)
                history.accuracy.append(model.accuracy(dataset.x_test, dataset.y_test))
                if averager is not None:
                    with weights_of(model, averager.params):
                        history.averaged_accuracy.append(
                            model.accuracy(dataset.x_test, dataset.y_test)
                        )
                bar.set_postfix_str(f"loss {loss:.4f}")
                if not np.isfinite(loss):
                    history.diverged = True
                    break
    finally:
        bar.close()
    history.seconds = time.perf_counter() - start
    return history


def train_epochs(model, step, x, y, batch_size, seed, schedule=None, on_batch=None):
    """Train `model` on (x, y) one pass at a time: a generator that yields after each pass.

    Endless: the caller decides how many passes to take (``zip(range(n), ...)``,
    or the learning-rate search's early stopping) and evaluates the model
    between them.

    Args:
        model: has ``loss_and_grad(x, y)``, which fills ``model.grads``.
        step: called with ``model.grads`` after every batch (``optimizer.step``).
        x, y: the training rows.
        batch_size: minibatch size.
        seed: seeds the minibatch order (:func:`batch_order`): the same for
            every run with this seed.
        schedule: an LR schedule whose ``step()`` is called after every batch, or None.
        on_batch: called with no argument after every batch (a progress bar's update).

    Yields:
        The number of passes completed (1, 2, ...).
    """
    rng = batch_order(seed)
    passes = 0
    while True:
        for rows in minibatches(len(y), batch_size, rng):
            model.loss_and_grad(x[rows], y[rows])
            step(model.grads)
            if schedule is not None:
                schedule.step()
            if on_batch is not None:
                on_batch()
        passes += 1
        yield passes
