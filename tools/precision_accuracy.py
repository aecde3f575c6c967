"""Final training loss with low-precision storage against float32 (issue 10, "Accuracy").

Trains two models with AdamW, for the same steps, from the same initial
weights and on the same minibatches, in four modes:

============  ==============================================================
float32       float32 params and states
bf16+master   bfloat16 params, ``master_weights=True`` (float32 master copy
              and float32 states)
bf16 states   float32 params, ``state_dtype="bfloat16"``
int8 states   float32 params, ``state_dtype="int8"`` (blockwise; tensors of
              4096 elements or more, the others keep float32 states)
============  ==============================================================

- ``digits``: the demo's MLP (:class:`cyoptim.examples.MLP`, 64-128-64-10
  ReLU) on scikit-learn's 8x8 digits, trained in NumPy by
  :func:`cyoptim.examples.training.train_epochs` with ``cyoptim.AdamW`` at the
  demo's settings (lr 3e-3, torch's default weight decay 1e-2, batch 32). NumPy has no fast
  bfloat16 matmul, so in the bf16+master mode the optimizer steps bfloat16
  params and the MLP computes in float32 at those bfloat16 values (exactly
  representable): the forward and backward pass see the rounded weights, the
  update goes to the float32 master copy.
- ``charlm``: a character-level causal transformer language model
  (``torch.nn.TransformerEncoder``, pre-norm, no dropout) on the source text
  of Python's ``argparse`` module (read from disk), trained by autograd with
  ``cyoptim.torch.AdamW`` (lr 3e-3, torch's weight decay 1e-2); in the
  bf16+master mode the whole model is bfloat16 and the loss is taken in
  float32.

The final loss is the mean minibatch training loss over the last 10% of the
steps; "vs float32" is its relative difference to the float32 run's. Every
mode uses the same hyperparameters (nothing is tuned per mode). "state B/param"
is ``cyoptim.state_bytes(opt)`` over the number of params; "int8" says how
many tensors (and params) hold int8 states.

    PYTHONPATH=src python tools/precision_accuracy.py
    PYTHONPATH=src python tools/precision_accuracy.py --models digits --digits-epochs 5
"""

import argparse
import sys
import time
from dataclasses import dataclass

import numpy as np

import cyoptim
from cyoptim.examples import MLP, load_digits_dataset
from cyoptim.examples.optimizers import BY_KEY
from cyoptim.examples.optional import single_threaded_blas
from cyoptim.examples.training import steps_per_epoch, train_epochs
from cyoptim.precision import BFLOAT16

MODES = {
    "float32": {},
    "bf16+master": {"master_weights": True},
    "bf16 states": {"state_dtype": "bfloat16"},
    "int8 states": {"state_dtype": "int8"},
}
MODELS = ("digits", "charlm")
TAIL = 0.1  # the final loss averages the last 10% of the steps
DIGITS_EPOCHS = 20  # the demo's default: 20 * 45 = 900 steps
LM_STEPS = 200
LM_SETTINGS = {"d_model": 128, "layers": 4, "heads": 4, "context": 64, "batch": 16, "lr": 3e-3}


@dataclass
class Run:
    """One model trained in one mode."""

    model: str
    mode: str
    losses: list  # minibatch training loss of every step
    params: int
    state_bytes: int
    int8_tensors: int
    int8_params: int
    tensors: int
    seconds: float

    @property
    def final_loss(self):
        return final_loss(self.losses)


def final_loss(losses, tail=TAIL):
    """Mean of the last `tail` share of the step losses (at least one step)."""
    n = max(1, round(len(losses) * tail))
    return float(np.mean(losses[-n:]))


def int8_counts(state_entries, sizes):
    """(tensors, params) whose state holds int8 codes (an ``<name>_absmax`` scale)."""
    flags = [any(str(k).endswith("_absmax") for k in entry) for entry in state_entries]
    return sum(flags), sum(n for n, flag in zip(sizes, flags) if flag)


# ------------------------------------------------------------------------ digits (NumPy)
class _RecordingModel:
    """The MLP as train_epochs sees it, keeping the loss of every minibatch."""

    def __init__(self, model):
        self.model = model
        self.grads = model.grads
        self.losses = []

    def loss_and_grad(self, x, y):
        loss = self.model.loss_and_grad(x, y)
        self.losses.append(loss)
        return loss


def train_digits(mode, epochs=DIGITS_EPOCHS, seed=0, dataset=None, batch_size=32):
    """Train the demo's MLP with cyoptim.AdamW (the demo's settings) in `mode`; a :class:`Run`."""
    dataset = load_digits_dataset(seed) if dataset is None else dataset
    model = MLP(seed=seed)
    choice = BY_KEY["adamw"]
    options = MODES[mode]
    if options.get("master_weights"):
        # The optimizer steps bfloat16 params; the MLP computes at their values.
        stepped = [p.astype(BFLOAT16) for p in model.params]
        for p, q in zip(model.params, stepped):
            p[...] = q

        def after_step():
            for p, q in zip(model.params, stepped):
                p[...] = q
    else:
        stepped = model.params

        def after_step():
            pass

    optimizer = choice.optimizer_class(stepped, lr=choice.lr, **choice.options, **options)

    def step(grads):
        optimizer.step(grads)
        after_step()

    recorder = _RecordingModel(model)
    start = time.perf_counter()
    with single_threaded_blas(), np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for _ in zip(
            range(epochs),
            train_epochs(recorder, step, dataset.x_train, dataset.y_train, batch_size, seed),
        ):
            pass
    seconds = time.perf_counter() - start
    sizes = [p.size for p in model.params]
    int8 = int8_counts([optimizer.state[k] for k in range(len(sizes))], sizes)
    return Run(
        "digits",
        mode,
        recorder.losses,
        sum(sizes),
        cyoptim.state_bytes(optimizer),
        *int8,
        len(sizes),
        seconds,
    )


# ------------------------------------------------------------------ char LM (torch)
def lm_text():
    """The training text: the source of Python's argparse module, as on disk."""
    with open(argparse.__file__, encoding="utf-8") as f:
        return f.read()


def build_lm(vocab, d_model, layers, heads, context):
    """A pre-norm causal transformer LM over `vocab` characters (float32)."""
    from torch import nn

    class CharLM(nn.Module):
        def __init__(self):
            super().__init__()
            self.tokens = nn.Embedding(vocab, d_model)
            self.positions = nn.Embedding(context, d_model)
            layer = nn.TransformerEncoderLayer(
                d_model, heads, 4 * d_model, dropout=0.0, batch_first=True, norm_first=True
            )
            self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
            self.norm = nn.LayerNorm(d_model)
            self.head = nn.Linear(d_model, vocab)

        def forward(self, x):
            h = self.tokens(x) + self.positions.weight[: x.shape[1]]
            mask = nn.Transformer.generate_square_subsequent_mask(x.shape[1], dtype=h.dtype)
            return self.head(self.norm(self.encoder(h, mask=mask, is_causal=True)))

    return CharLM()


def lm_batches(data, steps, batch, context, seed):
    """Token windows (steps, batch, context + 1) at offsets drawn from `seed`."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    starts = torch.randint(0, len(data) - context - 1, (steps, batch), generator=generator)
    return data[starts[..., None] + torch.arange(context + 1)]


def train_charlm(mode, steps=LM_STEPS, seed=0, **settings):
    """Train the char LM with cyoptim.torch.AdamW in `mode`; a :class:`Run`.

    `settings` override :data:`LM_SETTINGS` (``d_model``, ``layers``, ``heads``,
    ``context``, ``batch``, ``lr``)."""
    import torch
    import torch.nn.functional as F

    import cyoptim.torch as cot

    text = lm_text()
    chars = sorted(set(text))
    lookup = {c: i for i, c in enumerate(chars)}
    data = torch.tensor([lookup[c] for c in text])
    s = {**LM_SETTINGS, **settings}
    windows = lm_batches(data, steps, s["batch"], s["context"], seed)
    torch.manual_seed(seed)
    model = build_lm(len(chars), s["d_model"], s["layers"], s["heads"], s["context"])
    options = MODES[mode]
    if options.get("master_weights"):
        model = model.to(torch.bfloat16)
    params = list(model.parameters())
    optimizer = cot.AdamW(params, lr=s["lr"], **options)
    losses = []
    start = time.perf_counter()
    for window in windows:
        logits = model(window[:, :-1])
        loss = F.cross_entropy(logits.float().reshape(-1, len(chars)), window[:, 1:].reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    seconds = time.perf_counter() - start
    sizes = [p.numel() for p in params]
    int8 = int8_counts([optimizer.state[p] for p in params], sizes)
    return Run(
        "charlm",
        mode,
        losses,
        sum(sizes),
        cyoptim.state_bytes(optimizer),
        *int8,
        len(sizes),
        seconds,
    )


# ---------------------------------------------------------------------------- report
def relative_difference(run, reference):
    return (run.final_loss - reference.final_loss) / reference.final_loss


def format_table(runs):
    """The table: one row per run, the difference against its model's float32 run."""
    reference = {r.model: r for r in runs if r.mode == "float32"}
    header = (
        f"{'model':<8}{'mode':<13}{'steps':>6}{'final loss':>12}{'vs float32':>12}"
        f"{'state B/param':>15}{'int8 tensors (params)':>26}{'time (s)':>10}"
    )
    lines = [header, "-" * len(header)]
    for r in runs:
        ref = reference.get(r.model)
        diff = "" if ref is None or ref is r else f"{relative_difference(r, ref):+.2%}"
        int8 = (
            f"{r.int8_tensors}/{r.tensors} ({r.int8_params}/{r.params})"
            if r.mode == "int8 states"
            else "-"
        )
        lines.append(
            f"{r.model:<8}{r.mode:<13}{len(r.losses):>6}{r.final_loss:>12.5g}"
            f"{diff:>12}{r.state_bytes / r.params:>15.2f}{int8:>26}{r.seconds:>10.1f}"
        )
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--models", default=",".join(MODELS), help="comma-separated, from " + ", ".join(MODELS)
    )
    parser.add_argument(
        "--modes", default=",".join(MODES), help="comma-separated, from " + ", ".join(MODES)
    )
    parser.add_argument("--digits-epochs", type=int, default=DIGITS_EPOCHS)
    parser.add_argument("--lm-steps", type=int, default=LM_STEPS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch and cyoptim threads (default 1: on a shared machine "
        "2 threads wait on each other)",
    )
    args = parser.parse_args(argv)
    models = args.models.split(",")
    modes = args.modes.split(",")
    for name, chosen, known in (("model", models, MODELS), ("mode", modes, MODES)):
        unknown = [c for c in chosen if c not in known]
        if unknown:
            parser.error(f"unknown {name} {unknown[0]!r}; choose from {', '.join(known)}")
    cyoptim.set_num_threads(args.threads)
    runs = []
    if "digits" in models:
        dataset = load_digits_dataset(args.seed)
        if dataset.synthetic:
            print("scikit-learn not installed: the digits model trains on a synthetic dataset")
        n = steps_per_epoch(len(dataset.y_train), 32)
        print(
            f"digits: MLP 64-128-64-10 on {dataset.name}, cyoptim.AdamW lr "
            f"{BY_KEY['adamw'].lr:g}, {args.digits_epochs} epochs x {n} steps, batch 32, "
            f"seed {args.seed}",
            flush=True,
        )
        for mode in modes:
            runs.append(train_digits(mode, args.digits_epochs, args.seed, dataset))
    if "charlm" in models:
        import torch

        torch.set_num_threads(args.threads)
        s = LM_SETTINGS
        print(
            f"charlm: causal transformer d_model {s['d_model']}, {s['layers']} layers, "
            f"{s['heads']} heads, context {s['context']}, batch {s['batch']}, "
            f"cyoptim.torch.AdamW lr {s['lr']:g}, {args.lm_steps} steps on "
            f"{argparse.__file__} ({len(lm_text())} chars), seed {args.seed}",
            flush=True,
        )
        for mode in modes:
            runs.append(train_charlm(mode, args.lm_steps, args.seed))
            print(f"  {mode}: {runs[-1].seconds:.1f} s", file=sys.stderr, flush=True)
    print()
    print(format_table(runs))
    return runs


if __name__ == "__main__":
    main()
