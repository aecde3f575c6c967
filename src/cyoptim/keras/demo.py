"""``python -m cyoptim demo --framework keras``: the Keras lesson, side by side.

The demo's model (64-128-64-10, ReLU, float32, He-initialized) as a
``keras.Sequential``, compiled with ``SparseCategoricalCrossentropy`` and the
accuracy metric and trained with ``model.fit`` on the digits split, from the
same initial weights and with the same shuffling, once with
``cyoptim.keras.<Name>`` and once with ``keras.optimizers.<Name>``, for SGD,
RMSprop, Adam and AdamW (or the demo optimizers named). The table gives the
final training loss, the test accuracy, the training time (``fit``) and the
time spent in the optimizer (``optimizer.apply``: clipping, weight decay and
the update) for both. Rows Keras lacks (RAdam, Rprop, ASGD) leave the Keras
columns empty.
"""

import time

import keras
import torch

from .. import _threads
from ..examples import load_digits_dataset
from ..examples.optimizers import select_optimizers
from ..torch.demo import side_by_side
from . import _classes

SIZES = (64, 128, 64, 10)
DEFAULT_OPTIMIZERS = ("sgd", "rmsprop", "adam", "adamw")


def make_model(seed):
    """The demo's MLP in Keras."""
    keras.utils.set_random_seed(seed)
    layers = [keras.Input((SIZES[0],))]
    for k, width in enumerate(SIZES[1:]):
        last = k == len(SIZES) - 2
        layers.append(
            keras.layers.Dense(
                width, activation=None if last else "relu", kernel_initializer="he_normal"
            )
        )
    return keras.Sequential(layers)


class _TimedApply:
    """Wraps an optimizer's ``apply`` and adds up the time spent in it."""

    def __init__(self, apply):
        self.apply = apply
        self.seconds = 0.0

    def __call__(self, *args, **kwargs):
        start = time.perf_counter()
        try:
            return self.apply(*args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - start


def train(model, optimizer, dataset, epochs, batch_size, seed):
    """model.fit; returns (final training loss, test accuracy, seconds, optimizer seconds)."""
    timed = _TimedApply(optimizer.apply)
    optimizer.apply = timed
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    keras.utils.set_random_seed(seed)  # the same shuffling for every run
    start = time.perf_counter()
    model.fit(
        dataset.x_train,
        dataset.y_train,
        epochs=epochs,
        batch_size=batch_size,
        shuffle=True,
        verbose=0,
    )
    seconds = time.perf_counter() - start
    loss, _ = model.evaluate(dataset.x_train, dataset.y_train, batch_size=1024, verbose=0)
    _, accuracy = model.evaluate(dataset.x_test, dataset.y_test, batch_size=1024, verbose=0)
    return float(loss), float(accuracy), seconds, timed.seconds


def run_keras_demo(optimizers=None, epochs=20, batch_size=32, seed=0, threads=None):
    """Train the demo's MLP in Keras with cyoptim.keras and keras.optimizers; print a table.

    Returns a list of dicts, one per optimizer and implementation: ``optimizer``,
    ``implementation`` ("cyoptim.keras" or "keras.optimizers"), ``lr``,
    ``final_loss``, ``test_accuracy``, ``seconds``, ``step_seconds``.
    """
    import cyoptim.keras as ck

    choices = select_optimizers(list(optimizers or DEFAULT_OPTIMIZERS))
    dataset = load_digits_dataset(seed)
    if dataset.synthetic:
        print(
            "scikit-learn not installed: using a synthetic dataset "
            "(pip install scikit-learn for the 8x8 digits)"
        )
    previous = _threads.requested()
    if threads is not None:
        _threads.set_num_threads(threads)
    try:
        model = make_model(seed)
        initial = model.get_weights()
        results = []
        for choice in choices:
            name = choice.optimizer_class.__name__
            ours = getattr(ck, name)
            implementations = [("cyoptim.keras", ours)]
            keras_name = _classes.RULES[name].keras_name
            if keras_name is not None:
                implementations.append(("keras.optimizers", getattr(keras.optimizers, keras_name)))
            for label, cls in implementations:
                model.set_weights(initial)
                optimizer = cls(learning_rate=choice.lr, **choice.options)
                loss, accuracy, seconds, step_seconds = train(
                    model, optimizer, dataset, epochs, batch_size, seed
                )
                results.append(
                    dict(
                        optimizer=choice.label,
                        implementation=label,
                        lr=choice.lr,
                        final_loss=loss,
                        test_accuracy=accuracy,
                        seconds=seconds,
                        step_seconds=step_seconds,
                        rule=_classes.RULES[name].follows,
                    )
                )
    finally:
        _threads.set_num_threads(previous)
    print(
        f"{dataset.name}: Keras MLP {'-'.join(map(str, SIZES))}, {len(dataset.y_train)} "
        f"train / {len(dataset.y_test)} test, {epochs} epochs, batch {batch_size}, "
        f"seed {seed}, keras {keras.__version__} (torch {torch.__version__} backend)"
    )
    print(format_table(results))
    return results


def format_table(results):
    """One line per optimizer: cyoptim.keras beside keras.optimizers."""
    header = (
        f"{'optimizer':<14}{'lr':>7} {'rule':>6}  {'loss':>7} {'acc':>7} {'fit s':>7} "
        f"{'opt s':>7}  {'keras loss':>10} {'acc':>7} {'fit s':>7} {'opt s':>7}  "
        f"{'opt speed-up':>12}"
    )
    lines = [header, "-" * len(header)]
    for label, lr, ours, theirs in side_by_side(results, "cyoptim.keras", "keras.optimizers"):
        line = (
            f"{label:<14}{lr:>7g} {ours['rule']:>6}  {ours['final_loss']:>7.4f} "
            f"{ours['test_accuracy']:>7.4f} {ours['seconds']:>7.2f} "
            f"{ours['step_seconds']:>7.2f}  "
        )
        if theirs is None:
            line += f"{'-':>10} {'-':>7} {'-':>7} {'-':>7}  {'-':>12}"
        else:
            speedup = theirs["step_seconds"] / max(ours["step_seconds"], 1e-12)
            line += (
                f"{theirs['final_loss']:>10.4f} {theirs['test_accuracy']:>7.4f} "
                f"{theirs['seconds']:>7.2f} {theirs['step_seconds']:>7.2f}  "
                f"{speedup:>11.1f}x"
            )
        lines.append(line)
    lines.append(
        "rule: whose update rule the cyoptim.keras class follows (docs: "
        "help(cyoptim.keras.<Name>)); opt s: time in optimizer.apply"
    )
    return "\n".join(lines)


__all__ = ["run_keras_demo", "make_model", "format_table", "DEFAULT_OPTIMIZERS"]
