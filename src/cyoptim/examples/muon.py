"""Muon for the hidden weight matrices, AdamW for the rest: the usual recipe.

Muon orthogonalizes the update of a weight matrix; it is meant for the
matrices between hidden layers. The input layer (it sees the raw features),
the output layer, biases, gains and embeddings are trained with AdamW
(Jordan et al.; torch.optim.Muon's documentation says the same). In cyoptim
that is two optimizers over two parts of one model::

    import cyoptim
    from cyoptim.examples import MLP

    model = MLP(sizes=(64, 128, 64, 10))
    hidden = hidden_matrices(model)                 # [1]: W2, between the hidden layers
    muon = cyoptim.Muon([model.params[k] for k in hidden], lr=0.02)
    rest = [k for k in range(len(model.params)) if k not in hidden]
    adamw = cyoptim.AdamW([model.params[k] for k in rest], lr=3e-3)
    ...
    model.loss_and_grad(x, y)                        # fills model.grads
    muon.step([model.grads[k] for k in hidden])
    adamw.step([model.grads[k] for k in rest])

:class:`MuonWithAdamW` does exactly that behind one ``step(grads)`` taking the
model's grads, so the examples' training loop can drive it;
``python -m cyoptim.examples.muon`` trains the digits MLP with it and with
AdamW alone, and prints both test accuracies. Each optimizer stays a
cyoptim optimizer of its own: give each its schedule, ``state_dict`` and
checkpoint (``opt.muon``, ``opt.adamw``).

The same recipe for a ``torch.nn`` model, with ``cyoptim.torch``
(:func:`torch_optimizers`)::

    muon, adamw = torch_optimizers(model)           # cot.Muon, cot.AdamW
    for x, y in loader:
        muon.zero_grad(); adamw.zero_grad()
        loss_fn(model(x), y).backward()
        muon.step(); adamw.step()
"""

import argparse

from .. import AdamW, Muon
from .data import load_digits_dataset
from .mlp import MLP
from .training import train


def hidden_matrices(model):
    """Indices (in ``model.params``) of the weight matrices between hidden layers:
    every layer's ``W`` except the first (input) and the last (output)."""
    return [2 * layer for layer in range(1, model.n_layers - 1)]


class MuonWithAdamW:
    """Muon over the hidden weight matrices of a model, AdamW over its other params.

    Args:
        model: an :class:`~cyoptim.examples.MLP` (its params ``[W1, b1, ...]``).
        muon_options: :class:`cyoptim.Muon` arguments (default ``lr=0.02``, Muon's
            defaults otherwise).
        adamw_options: :class:`cyoptim.AdamW` arguments (default ``lr=3e-3``).

    Attributes:
        muon, adamw: the two optimizers (AdamW's params keep the model's order).
        hidden, rest: the indices in ``model.params`` each one updates.

    Example:
        >>> import numpy as np
        >>> from cyoptim.examples import MLP
        >>> from cyoptim.examples.muon import MuonWithAdamW
        >>> model = MLP(sizes=(4, 8, 8, 3), seed=0)
        >>> opt = MuonWithAdamW(model)
        >>> opt.hidden, opt.rest
        ([2], [0, 1, 3, 4, 5])
        >>> loss = model.loss_and_grad(np.ones((5, 4), np.float32), np.array([0, 1, 2, 0, 1]))
        >>> opt.step(model.grads)
    """

    def __init__(self, model, muon_options=None, adamw_options=None):
        self.hidden = hidden_matrices(model)
        self.rest = [k for k in range(len(model.params)) if k not in self.hidden]
        self.muon = Muon(
            [model.params[k] for k in self.hidden], **{"lr": 0.02, **(muon_options or {})}
        )
        self.adamw = AdamW(
            [model.params[k] for k in self.rest], **{"lr": 3e-3, **(adamw_options or {})}
        )

    def step(self, grads):
        """One step of both optimizers; grads: one per model param, in order."""
        self.muon.step([grads[k] for k in self.hidden])
        self.adamw.step([grads[k] for k in self.rest])


def torch_optimizers(model, muon_options=None, adamw_options=None):
    """The recipe for a ``torch.nn`` model: ``cyoptim.torch.Muon`` over its weight
    matrices between hidden layers (every 2-d param but the first and the last,
    in ``model.parameters()`` order: the input and output layers),
    ``cyoptim.torch.AdamW`` over the rest. Options and defaults as
    :class:`MuonWithAdamW`. Returns ``(muon, adamw)``, both over named params
    (errors name them); step both after each backward."""
    import cyoptim.torch as cot

    named = list(model.named_parameters())
    matrices = [name for name, p in named if p.ndim == 2]
    hidden = set(matrices[1:-1])
    muon = cot.Muon(
        [(n, p) for n, p in named if n in hidden], **{"lr": 0.02, **(muon_options or {})}
    )
    adamw = cot.AdamW(
        [(n, p) for n, p in named if n not in hidden], **{"lr": 3e-3, **(adamw_options or {})}
    )
    return muon, adamw


def compare(epochs=20, batch_size=32, seed=0, sizes=(64, 128, 64, 10), progress=False):
    """Train the digits MLP with Muon + AdamW and with AdamW alone (lr 3e-3, the
    demo's tuned rate); return {label: History}."""
    dataset = load_digits_dataset(seed=seed)
    histories = {}
    for label in ("Muon + AdamW", "AdamW"):
        model = MLP(sizes=sizes, seed=seed)
        optimizer = (
            MuonWithAdamW(model) if label == "Muon + AdamW" else AdamW(model.params, lr=3e-3)
        )
        histories[label] = train(
            model,
            optimizer,
            dataset,
            epochs,
            batch_size,
            seed,
            description=label,
            progress=progress,
        )
    return histories


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    for label, history in compare(epochs=args.epochs, seed=args.seed).items():
        print(
            f"{label:<13} test accuracy {history.accuracy[-1]:.3f}  "
            f"final training loss {history.loss[-1]:.4f}  "
            f"optimizer steps {history.step_seconds:.2f} s"
        )


if __name__ == "__main__":
    main()
