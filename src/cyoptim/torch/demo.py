"""``python -m cyoptim demo --framework torch``: the demo in PyTorch, side by side.

The demo's model (64-128-64-10, ReLU, float32) as a ``torch.nn.Sequential``,
trained with autograd on the same digits split, from the same initial weights
and in the same minibatch order, once with ``cyoptim.torch.<Name>`` and once
with ``torch.optim.<Name>`` (torch's default implementation), for each of the
demo's optimizers. The table gives the final training loss, the test
accuracy, the wall time and the time spent in ``optimizer.step()`` for both,
and the step's speed-up. Lion and LAMB have no torch.optim counterpart: their
torch columns stay empty.
"""

import time

import torch

from .. import _threads
from ..examples import load_digits_dataset
from ..examples.optimizers import select_optimizers
from ..examples.training import batch_order, minibatches

SIZES = (64, 128, 64, 10)


def make_model(seed):
    """The demo's MLP in torch (He-initialized like cyoptim.examples.MLP)."""
    torch.manual_seed(seed)
    layers = []
    for k, (fan_in, fan_out) in enumerate(zip(SIZES, SIZES[1:])):
        linear = torch.nn.Linear(fan_in, fan_out)
        torch.nn.init.kaiming_normal_(linear.weight, nonlinearity="relu")
        torch.nn.init.zeros_(linear.bias)
        layers.append(linear)
        if k < len(SIZES) - 2:
            layers.append(torch.nn.ReLU())
    return torch.nn.Sequential(*layers)


def train(model, optimizer, data, epochs, batch_size, seed):
    """Minibatch training; returns (final training loss, test accuracy, seconds, step seconds)."""
    x_train, y_train, x_test, y_test = data
    rng = batch_order(seed)
    step_seconds = 0.0
    start = time.perf_counter()
    for _ in range(epochs):
        for rows in minibatches(len(y_train), batch_size, rng):
            rows = torch.from_numpy(rows)
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(x_train[rows]), y_train[rows]).backward()
            t = time.perf_counter()
            optimizer.step()
            step_seconds += time.perf_counter() - t
    seconds = time.perf_counter() - start
    with torch.no_grad():
        loss = torch.nn.functional.cross_entropy(model(x_train), y_train).item()
        accuracy = (model(x_test).argmax(1) == y_test).double().mean().item()
    return loss, accuracy, seconds, step_seconds


def run_torch_demo(optimizers=None, epochs=20, batch_size=32, seed=0, threads=None):
    """Train the demo's MLP in torch with cyoptim.torch and torch.optim; print a table.

    Returns a list of dicts, one per optimizer and implementation: ``optimizer``,
    ``implementation`` ("cyoptim.torch" or "torch.optim"), ``lr``,
    ``final_loss``, ``test_accuracy``, ``seconds``, ``step_seconds``.
    """
    import cyoptim.torch as cot

    choices = select_optimizers(optimizers)
    dataset = load_digits_dataset(seed)
    if dataset.synthetic:
        print(
            "scikit-learn not installed: using a synthetic dataset "
            "(pip install scikit-learn for the 8x8 digits)"
        )
    data = (
        torch.from_numpy(dataset.x_train),
        torch.from_numpy(dataset.y_train),
        torch.from_numpy(dataset.x_test),
        torch.from_numpy(dataset.y_test),
    )
    previous = _threads.requested()
    if threads is not None:
        _threads.set_num_threads(threads)
    try:
        model = make_model(seed)
        initial = [p.detach().clone() for p in model.parameters()]
        results = []
        for choice in choices:
            name = choice.optimizer_class.__name__
            implementations = [("cyoptim.torch", getattr(cot, name))]
            if hasattr(torch.optim, name):
                implementations.append(("torch.optim", getattr(torch.optim, name)))
            for label, cls in implementations:
                with torch.no_grad():
                    for p, p0 in zip(model.parameters(), initial):
                        p.copy_(p0)
                optimizer = cls(model.parameters(), lr=choice.lr, **choice.options)
                loss, accuracy, seconds, step_seconds = train(
                    model, optimizer, data, epochs, batch_size, seed
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
                    )
                )
    finally:
        _threads.set_num_threads(previous)
    print(
        f"{dataset.name}: torch MLP {'-'.join(map(str, SIZES))}, {len(dataset.y_train)} "
        f"train / {len(dataset.y_test)} test, {epochs} epochs, batch {batch_size}, "
        f"seed {seed}, torch {torch.__version__}"
    )
    print(format_table(results))
    return results


def side_by_side(results, ours, theirs):
    """(label, lr, our result, theirs or None) per optimizer, in the results' order."""
    by_label = {}
    for r in results:
        by_label.setdefault((r["optimizer"], r["lr"]), {})[r["implementation"]] = r
    return [(label, lr, pair[ours], pair.get(theirs)) for (label, lr), pair in by_label.items()]


def format_table(results):
    """One line per optimizer: cyoptim.torch beside torch.optim."""
    header = (
        f"{'optimizer':<14}{'lr':>7}  {'loss':>7} {'acc':>7} {'step s':>7}  "
        f"{'torch loss':>10} {'acc':>7} {'step s':>7}  {'step speed-up':>13}"
    )
    lines = [header, "-" * len(header)]
    for label, lr, ours, theirs in side_by_side(results, "cyoptim.torch", "torch.optim"):
        line = (
            f"{label:<14}{lr:>7g}  {ours['final_loss']:>7.4f} "
            f"{ours['test_accuracy']:>7.4f} {ours['step_seconds']:>7.3f}  "
        )
        if theirs is None:
            line += f"{'-':>10} {'-':>7} {'-':>7}  {'-':>13}"
        else:
            speedup = theirs["step_seconds"] / max(ours["step_seconds"], 1e-12)
            line += (
                f"{theirs['final_loss']:>10.4f} {theirs['test_accuracy']:>7.4f} "
                f"{theirs['step_seconds']:>7.3f}  {speedup:>12.1f}x"
            )
        lines.append(line)
    return "\n".join(lines)


__all__ = ["run_torch_demo", "make_model", "format_table", "side_by_side"]
