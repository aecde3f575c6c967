"""Optimizer step time on real models' parameter lists: cyoptim.torch against its peers.

    python -m cyoptim.torch.bench [--models bert-ish,many-small] [--rounds 5]
    python -m cyoptim.torch.bench --optimizer muon [--models transformer-block]

For each model (built locally with random weights: nothing is downloaded) the
AdamW step over the model's own parameter tensors, with random grads, is timed
for each implementation, side by side in one process, in interleaved rounds
(median of the rounds):

- ``cyoptim.torch``: ``cyoptim.torch.AdamW`` (one kernel call per group);
- ``torch-default``: ``torch.optim.AdamW(foreach=False)`` (torch's CPU default);
- ``torch-foreach``: ``torch.optim.AdamW(foreach=True)``;
- ``torch-fused``: ``torch.optim.AdamW(fused=True)``;
- ``deepspeed``: ``DeepSpeedCPUAdam(adamw_mode=True)``, when it installs and builds.

Models: ``bert-ish`` (a 10.6M-param, 135-tensor BERT from a transformers
config), ``bert-base`` and ``gpt2-small`` (transformers' default configs),
``resnet-ish`` (ResNet-18's conv and batch-norm shapes, made with torch.nn),
``many-small`` (400 tensors of 256 to 4096 elements). The transformers
models need ``pip install transformers``; without it they are skipped.

``--pause-ms MS`` sleeps before each implementation's turn in a round. Why:
torch, torch's fused kernels and DeepSpeed share one OpenMP runtime whose
worker threads keep spinning for milliseconds after their work, while
cyoptim's helpers run on their own pool; on a machine with few cores, an
implementation timed right after an OpenMP one shares the cores with those
spinning workers. Without a pause (the default) the figures include that
cost, as a training loop does after torch's backward pass; with a pause of
50 ms every implementation starts with the other runtimes' workers asleep.

``--train-step`` also times one whole training step of the bert-ish model
(forward, backward, optimizer step) to show the step's share.

``--optimizer muon`` times Muon instead, over the 2-d params of each model
(the hidden matrices Muon is for; defaults: ``transformer-block``, two
torch.nn.TransformerEncoderLayer of GPT-2 small's width, and ``bert-ish``):
``cyoptim.torch.Muon`` against ``torch.optim.Muon`` (``torch-default``: torch
has no foreach or fused Muon), both with lr 0.02 and their defaults.
"""

import argparse
import statistics
import sys
import time

import torch

from .._cli import HelpFormatter, int_at_least, non_negative_float

IMPLEMENTATIONS = ("cyoptim.torch", "torch-default", "torch-foreach", "torch-fused", "deepspeed")


def _bert(**config):
    from transformers import BertConfig, BertModel

    return BertModel(BertConfig(**config))


def _gpt2():
    from transformers import GPT2Config, GPT2LMHeadModel

    return GPT2LMHeadModel(GPT2Config())


def _resnet_ish():
    """ResNet-18's parameter shapes (conv weights, batch-norm scales and shifts, head)."""
    layers = [torch.nn.Conv2d(3, 64, 7, bias=False), torch.nn.BatchNorm2d(64)]
    width = 64
    for out in (64, 128, 256, 512):
        for block in range(2):
            first = width
            layers += [
                torch.nn.Conv2d(first, out, 3, bias=False),
                torch.nn.BatchNorm2d(out),
                torch.nn.Conv2d(out, out, 3, bias=False),
                torch.nn.BatchNorm2d(out),
            ]
            if block == 0 and first != out:
                layers += [torch.nn.Conv2d(first, out, 1, bias=False), torch.nn.BatchNorm2d(out)]
            width = out
    layers.append(torch.nn.Linear(512, 1000))
    return torch.nn.Sequential(*layers)


def _many_small():
    sizes = [256 * (1 + k % 16) for k in range(400)]
    return torch.nn.ParameterList([torch.nn.Parameter(torch.randn(n)) for n in sizes])


def _transformer_block():
    """Two encoder layers of GPT-2 small's width (768, 12 heads, 3072 hidden), torch.nn."""
    layer = dict(d_model=768, nhead=12, dim_feedforward=3072, batch_first=True)
    return torch.nn.TransformerEncoder(
        torch.nn.TransformerEncoderLayer(**layer), 2, enable_nested_tensor=False
    )


BERT_ISH = dict(
    hidden_size=256,
    num_hidden_layers=8,
    num_attention_heads=4,
    intermediate_size=1024,
    vocab_size=16000,
)
MODELS = {
    "bert-ish": (lambda: _bert(**BERT_ISH), True),
    "many-small": (_many_small, False),
    "resnet-ish": (_resnet_ish, False),
    "bert-base": (lambda: _bert(), True),
    "gpt2-small": (_gpt2, True),
    "transformer-block": (_transformer_block, False),
}
DEFAULT_MODELS = ("bert-ish", "many-small", "resnet-ish", "gpt2-small")
OPTIMIZERS = ("adamw", "muon")
MUON_DEFAULT_MODELS = ("transformer-block", "bert-ish")


def _transformers_missing():
    try:
        import transformers  # noqa: F401
    except ImportError:
        return True
    return False


def make_optimizer(implementation, params, optimizer="adamw"):
    """An AdamW (or Muon) of this implementation over params, or a reason it is unavailable."""
    import cyoptim.torch as cot

    if optimizer == "muon":
        if implementation == "cyoptim.torch":
            return cot.Muon(params, lr=0.02)
        if implementation == "torch-default":
            return torch.optim.Muon(params, lr=0.02)
        return f"no {implementation} Muon"
    if implementation == "cyoptim.torch":
        return cot.AdamW(params)
    if implementation == "torch-default":
        return torch.optim.AdamW(params, foreach=False)
    if implementation == "torch-foreach":
        return torch.optim.AdamW(params, foreach=True)
    if implementation == "torch-fused":
        return torch.optim.AdamW(params, fused=True)
    try:
        from deepspeed.ops.adam import DeepSpeedCPUAdam

        return DeepSpeedCPUAdam(params, adamw_mode=True)
    except Exception as error:  # not installed, or its JIT build failed
        return f"{type(error).__name__}: {error}".splitlines()[0][:120]


def time_steps(optimizer, steps):
    start = time.perf_counter()
    for _ in range(steps):
        optimizer.step()
    return (time.perf_counter() - start) / steps


def measure_model(name, implementations, rounds, min_seconds=0.3, optimizer="adamw", pause=0.0):
    """Seconds per step of each implementation on one model (median of rounds);
    for Muon, over the model's 2-d params. ``pause``: seconds slept before each
    implementation's turn (lets other runtimes' spinning workers go to sleep)."""
    build = MODELS[name][0]
    torch.manual_seed(0)
    model = build()
    params = [
        p for p in model.parameters() if p.requires_grad and (optimizer != "muon" or p.ndim == 2)
    ]
    for p in params:
        p.grad = torch.randn_like(p)
    optimizers, skipped = {}, {}
    for implementation in implementations:
        opt = make_optimizer(implementation, params, optimizer)
        if isinstance(opt, str):
            skipped[implementation] = opt
            continue
        opt.step()  # state allocated, kernels built
        optimizers[implementation] = opt
    reps = {
        impl: max(1, int(min_seconds / max(time_steps(opt, 1), 1e-6)))
        for impl, opt in optimizers.items()
    }
    times = {impl: [] for impl in optimizers}
    for _ in range(rounds):
        for impl, opt in optimizers.items():
            if pause:
                time.sleep(pause)
            times[impl].append(time_steps(opt, reps[impl]))
    return dict(
        model=name,
        tensors=len(params),
        params=sum(p.numel() for p in params),
        seconds={impl: statistics.median(t) for impl, t in times.items()},
        skipped=skipped,
    )


def train_step_share(rounds=5, batch=16, length=128):
    """Seconds of forward+backward and of the optimizer step of the bert-ish model."""
    import cyoptim.torch as cot

    torch.manual_seed(0)
    model = _bert(**BERT_ISH)
    ids = torch.randint(0, BERT_ISH["vocab_size"], (batch, length))
    result = {}
    for label, opt in (
        ("cyoptim.torch", cot.AdamW(model.parameters())),
        ("torch-fused", torch.optim.AdamW(model.parameters(), fused=True)),
    ):
        forward, step = [], []
        for _ in range(rounds + 1):
            opt.zero_grad()
            t0 = time.perf_counter()
            model(ids).last_hidden_state.square().mean().backward()
            t1 = time.perf_counter()
            opt.step()
            t2 = time.perf_counter()
            forward.append(t1 - t0)
            step.append(t2 - t1)
        result[label] = (statistics.median(forward[1:]), statistics.median(step[1:]))
    return result


def format_results(rows):
    peers = [impl for impl in IMPLEMENTATIONS if any(impl in r["seconds"] for r in rows)]
    width = max(12, 1 + max(len(r["model"]) for r in rows))
    header = (
        f"{'model':<{width}}{'tensors':>8}{'Mparams':>9}"
        + "".join(f"{impl + ' ms':>18}" for impl in peers)
        + f"{'best peer / ours':>18}"
    )
    lines = [header, "-" * len(header)]
    for r in rows:
        s = r["seconds"]
        line = f"{r['model']:<{width}}{r['tensors']:>8}{r['params'] / 1e6:>9.1f}"
        line += "".join(f"{s[impl] * 1e3:>18.2f}" if impl in s else f"{'-':>18}" for impl in peers)
        others = [s[impl] for impl in s if impl != "cyoptim.torch"]
        if others and "cyoptim.torch" in s:
            line += f"{min(others) / s['cyoptim.torch']:>17.2f}x"
        lines.append(line)
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m cyoptim.torch.bench",
        formatter_class=HelpFormatter,
        description="AdamW (or Muon) step time on real models' parameter lists: "
        "cyoptim.torch against torch.optim (default, foreach, fused) and "
        "DeepSpeedCPUAdam.",
    )
    parser.add_argument(
        "--optimizer",
        choices=OPTIMIZERS,
        default="adamw",
        help="adamw, or muon: Muon over each model's 2-d params, against "
        "torch.optim.Muon (default %(default)s)",
    )
    parser.add_argument(
        "--models",
        default=None,
        help="comma-separated, from "
        + ", ".join(MODELS)
        + " (default "
        + ",".join(DEFAULT_MODELS)
        + "; with --optimizer "
        "muon, " + ",".join(MUON_DEFAULT_MODELS) + ")",
    )
    parser.add_argument(
        "--rounds",
        type=int_at_least(1),
        default=5,
        help="interleaved rounds; the median counts (default %(default)s)",
    )
    parser.add_argument(
        "--implementations",
        default=",".join(IMPLEMENTATIONS),
        help="comma-separated, from " + ", ".join(IMPLEMENTATIONS) + " (default: all)",
    )
    parser.add_argument(
        "--pause-ms",
        type=non_negative_float,
        default=0.0,
        help="sleep before each implementation's turn, so that other "
        "runtimes' spinning OpenMP workers are asleep when it starts "
        "(default %(default)s: timed back to back, as in training)",
    )
    parser.add_argument(
        "--train-step",
        action="store_true",
        help="also time a whole training step of the bert-ish model",
    )
    args = parser.parse_args(argv)
    if args.models is None:
        args.models = ",".join(MUON_DEFAULT_MODELS if args.optimizer == "muon" else DEFAULT_MODELS)
    names = [n.strip() for n in args.models.split(",") if n.strip()]
    unknown = [n for n in names if n not in MODELS]
    if unknown or not names:
        parser.error(
            f"unknown model(s) {', '.join(unknown) or args.models!r}; choose from "
            + ", ".join(MODELS)
        )
    implementations = [n.strip() for n in args.implementations.split(",") if n.strip()]
    wrong = [n for n in implementations if n not in IMPLEMENTATIONS]
    if wrong or "cyoptim.torch" not in implementations:
        parser.error(
            "--implementations must name cyoptim.torch and others from "
            + ", ".join(IMPLEMENTATIONS)
        )
    print(
        f"{'Muon step, ' if args.optimizer == 'muon' else ''}torch {torch.__version__}, "
        f"{torch.get_num_threads()} torch threads"
        + (f", {args.pause_ms:g} ms pause before each turn" if args.pause_ms else "")
    )
    rows, skipped = [], {}
    for name in names:
        if MODELS[name][1] and _transformers_missing():
            print(f"{name}: skipped (pip install transformers)", file=sys.stderr)
            continue
        print(f"measuring {name} ...", file=sys.stderr, flush=True)
        row = measure_model(
            name, implementations, args.rounds, optimizer=args.optimizer, pause=args.pause_ms / 1e3
        )
        if not row["tensors"]:
            print(f"{name}: skipped (no 2-d params)", file=sys.stderr)
            continue
        skipped.update(row["skipped"])
        rows.append(row)
        print(format_results([row]).splitlines()[-1], file=sys.stderr, flush=True)
    print(format_results(rows))
    for impl, reason in skipped.items():
        print(f"{impl}: skipped ({reason})")
    if args.train_step and args.optimizer == "muon":
        print("--train-step: AdamW only")
    elif args.train_step:
        if _transformers_missing():
            print("--train-step: skipped (pip install transformers)")
        else:
            for label, (forward, step) in train_step_share(args.rounds).items():
                print(
                    f"bert-ish training step with {label}: forward+backward "
                    f"{forward * 1e3:.1f} ms, optimizer step {step * 1e3:.1f} ms "
                    f"({step / (forward + step):.0%} of the step)"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
