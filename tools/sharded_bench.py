"""Optimizer step throughput of an FSDP2-sharded model's state, over 1 and 2 processes.

Usage (from the repository root, after building the kernels in place):
    PYTHONPATH=src python tools/sharded_bench.py [--layers 12] [--width 2048]
        [--rounds 7] [--layouts 1x1,1x2,2x1] [--implementations cyoptim.torch,torch-default]

The model is a stack of ``--layers`` Linear(width, width) layers (12 x 2048:
50.4M params), each wrapped by FSDP2's ``fully_shard`` with
``CPUOffloadPolicy``, so each rank holds 1/N of every param, grad and AdamW
state tensor, on the CPU, and steps only that. For each layout
``PROCESSESxTHREADS`` the script starts ``torchrun --nproc_per_node
PROCESSES`` (gloo) with ``THREADS`` threads per process (cyoptim's and
torch's); each rank runs one forward and backward (real FSDP2 grads, DTensors,
whose local values are then replaced by standard-normal ones: the stack's own
grads vanish into denormal floats, which slow all arithmetic many times) and
then times ``opt.step()`` alone, ranks in lockstep (barrier, step, barrier;
the slowest rank's time is the step's), median of ``--rounds`` after a warm-up
step, the implementations alternating round by round:

- ``cyoptim.torch``: ``cyoptim.torch.AdamW`` (one kernel call over the local shards);
- ``torch-default``: ``torch.optim.AdamW()`` (on CPU: its single-tensor loop);
- ``torch-foreach``: ``torch.optim.AdamW(foreach=True)``;
- ``torch-fused``: ``torch.optim.AdamW(fused=True)``.

It prints, per layout and implementation, the step's wall time, the
throughput (params of the whole model stepped per second) and each rank's
AdamW state (exp_avg and exp_avg_sq of its shards). No collective runs inside
a step: FSDP2 reduce-scatters the grads in backward and all-gathers the params
in forward, and the optimizer touches local memory only.

Run as a rank (torchrun sets RANK), the script is the worker.
"""

import argparse
import os
import signal
import statistics
import subprocess
import sys
import time

IMPLEMENTATIONS = ("cyoptim.torch", "torch-default", "torch-foreach", "torch-fused")


def make_optimizer(name, params):
    import torch

    import cyoptim.torch as cot

    options = {"lr": 1e-4, "weight_decay": 0.01}
    if name == "cyoptim.torch":
        return cot.AdamW(params, **options)
    extra = {
        "torch-default": {},
        "torch-foreach": {"foreach": True},
        "torch-fused": {"fused": True},
    }[name]
    return torch.optim.AdamW(params, **options, **extra)


def worker(args):
    import torch
    import torch.distributed as dist
    from torch.distributed.fsdp import CPUOffloadPolicy, fully_shard

    import cyoptim

    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    torch.set_num_threads(args.threads)
    cyoptim.set_num_threads(args.threads)
    torch.manual_seed(0)
    policy = CPUOffloadPolicy(pin_memory=False)  # pinning needs an accelerator
    models, optimizers = {}, {}
    names = [n for n in args.implementations.split(",") if n]
    skipped = {}
    for name in names:
        model = torch.nn.Sequential(
            *[torch.nn.Linear(args.width, args.width) for _ in range(args.layers)]
        )
        for layer in model:
            fully_shard(layer, offload_policy=policy)
        fully_shard(model, offload_policy=policy)
        model(torch.randn(4, args.width)).square().mean().backward()
        params = list(model.parameters())
        with torch.no_grad():
            # Unit-scale values in FSDP2's grads: a deep stack's own grads vanish
            # into denormal floats, which slow every implementation's arithmetic.
            for p in params:
                p.grad.to_local().normal_()
        try:
            opt = make_optimizer(name, params)
            opt.step()  # warm-up; creates the state
        except (RuntimeError, TypeError, ValueError) as error:
            skipped[name] = str(error).splitlines()[0][:100]
            continue
        models[name], optimizers[name] = model, opt
    times = {name: [] for name in optimizers}
    for _ in range(args.rounds):
        for name, opt in optimizers.items():
            dist.barrier()
            start = time.perf_counter()
            opt.step()
            elapsed = torch.tensor([time.perf_counter() - start], dtype=torch.float64)
            dist.all_reduce(elapsed, op=dist.ReduceOp.MAX)  # the slowest rank's
            times[name].append(elapsed.item())
    total = sum(p.numel() for p in next(iter(models.values())).parameters())
    for name, opt in optimizers.items():
        state = sum(
            v.to_local().nbytes
            for entry in opt.state.values()
            for k, v in entry.items()
            if k in ("exp_avg", "exp_avg_sq")
        )
        state_mb = torch.tensor([state / 2**20])
        gathered = [torch.zeros(1) for _ in range(world)]
        dist.all_gather(gathered, state_mb)
        if rank == 0:
            median = statistics.median(times[name])
            per_rank = "/".join(f"{t.item():.0f}" for t in gathered)
            print(
                f"RESULT {world} {args.threads} {name} {median * 1e3:.2f} "
                f"{min(times[name]) * 1e3:.2f} {total / median / 1e9:.3f} {per_rank}",
                flush=True,
            )
    if rank == 0:
        for name, why in skipped.items():
            print(f"SKIPPED {world} {args.threads} {name} {why}", flush=True)
    dist.barrier()
    dist.destroy_process_group()


def driver(args):
    rows = []
    for layout in args.layouts.split(","):
        processes, threads = (int(x) for x in layout.lower().split("x"))
        env = dict(os.environ, OMP_NUM_THREADS=str(threads))
        command = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            f"--nproc_per_node={processes}",
            os.path.abspath(__file__),
            "--threads",
            str(threads),
        ] + [a for a in sys.argv[1:]]
        # A session of its own, so that a timeout ends torchrun and its ranks.
        run = subprocess.Popen(
            command,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        try:
            stdout, stderr = run.communicate(timeout=args.timeout)
        except subprocess.TimeoutExpired:
            os.killpg(run.pid, signal.SIGKILL)
            run.communicate()
            sys.exit(f"{layout}: no result within {args.timeout} s")
        if run.returncode != 0:
            sys.exit(f"{layout} failed:\n{stderr[-3000:]}")
        for line in stdout.splitlines():
            if line.startswith(("RESULT", "SKIPPED")):
                rows.append(line.split(maxsplit=4 if line.startswith("SKIPPED") else 8))
    import torch

    params = args.layers * (args.width * args.width + args.width)
    print(
        f"torch {torch.__version__}, FSDP2 fully_shard(CPUOffloadPolicy) on gloo, "
        f"{args.layers} x Linear({args.width}, {args.width}): {params / 1e6:.1f}M params, "
        f"AdamW, median of {args.rounds} steps"
    )
    print(
        f"{'processes':>9} {'threads':>7}  {'implementation':<14} {'step ms':>8} "
        f"{'min ms':>7} {'Gparams/s':>9}  state MB per rank"
    )
    print("-" * 80)
    for row in rows:
        if row[0] == "SKIPPED":
            print(f"{row[1]:>9} {row[2]:>7}  {row[3]:<14} failed: {row[4]}")
        else:
            _, procs, threads, name, median, low, rate, state = row
            print(f"{procs:>9} {threads:>7}  {name:<14} {median:>8} {low:>7} {rate:>9}  {state}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--width", type=int, default=2048)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument(
        "--layouts", default="1x1,1x2,2x1", help="PROCESSESxTHREADS, comma-separated"
    )
    parser.add_argument("--implementations", default=",".join(IMPLEMENTATIONS))
    parser.add_argument(
        "--timeout",
        type=float,
        default=900,
        help="seconds for each layout's torchrun before it is ended",
    )
    parser.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if "RANK" in os.environ:
        worker(args)
    else:
        driver(args)


if __name__ == "__main__":
    main()
