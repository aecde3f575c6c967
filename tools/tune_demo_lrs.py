"""Sweep the learning rates of the demo's optimizers (the table in cyoptim/examples/optimizers.py).

For each optimizer and each lr of the grid, train the demo's MLP with the
demo's defaults on three seeds, score by the mean accuracy on a validation
split carved out of the training set (the demo's test set is never used),
and pick by the rule in the table's docstring: the plateau is every lr whose
mean accuracy is within 0.005 of the best (about the spread between seeds);
the pick is its middle lr, the lower of the two middle ones when the plateau
has an even length (the safe side of the cliff where training breaks).

    PYTHONPATH=src python tools/tune_demo_lrs.py                       # every optimizer
    PYTHONPATH=src python tools/tune_demo_lrs.py --optimizers lion --grid 1e-5,3e-5,1e-4,3e-4
"""

import argparse

import numpy as np

from cyoptim.examples import MLP, load_digits_dataset, validation_split
from cyoptim.examples.optimizers import select_optimizers
from cyoptim.examples.optional import single_threaded_blas
from cyoptim.examples.training import train

DEFAULT_GRID = "1e-4,3e-4,1e-3,3e-3,1e-2,3e-2,0.1,0.3,1,3"
SEEDS = (1, 2, 3)
PLATEAU = 0.005


def score(choice, lr, splits, epochs, batch_size):
    """Mean validation accuracy and loss (inf when diverged) over the seeds."""
    accuracies, losses = [], []
    for seed, split in splits.items():
        model = MLP(seed=seed)
        history = train(
            model,
            choice.build(model.params, lr=lr),
            split,
            epochs,
            batch_size,
            seed,
            progress=False,
        )
        with np.errstate(all="ignore"):
            loss = model.loss(split.x_test, split.y_test)
        accuracies.append(history.accuracy[-1])
        losses.append(loss if np.isfinite(loss) else np.inf)
    return float(np.mean(accuracies)), float(np.mean(losses))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--optimizers", default=None, help="comma-separated keys (default: all)")
    parser.add_argument("--grid", default=DEFAULT_GRID, help="comma-separated lrs")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args(argv)
    names = args.optimizers.split(",") if args.optimizers else None
    choices = select_optimizers(names)
    grid = sorted(float(v) for v in args.grid.split(","))
    splits = {seed: validation_split(load_digits_dataset(seed)) for seed in SEEDS}
    with single_threaded_blas():
        for choice in choices:
            rows = []
            for lr in grid:
                accuracy, loss = score(choice, lr, splits, args.epochs, args.batch_size)
                rows.append((lr, accuracy, loss))
                print(
                    f"{choice.key:<9} lr={lr:<8g} val_acc={accuracy:.4f} val_loss={loss:.4f}",
                    flush=True,
                )
            lr, accuracy, plateau = pick(rows)
            print(
                f"PICK {choice.key} lr={lr:g} val_acc={accuracy:.4f} plateau="
                + ",".join(f"{r[0]:g}" for r in plateau)
                + f" (the table has {choice.lr:g})",
                flush=True,
            )


def pick(rows):
    """(lr, accuracy, plateau) by the rule above; rows are (lr, accuracy, loss), lr ascending."""
    best = max(accuracy for _, accuracy, _ in rows)
    plateau = [row for row in rows if row[1] >= best - PLATEAU]
    lr, accuracy, _ = plateau[(len(plateau) - 1) // 2]
    return lr, accuracy, plateau


if __name__ == "__main__":
    main()
