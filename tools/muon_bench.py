"""Time one Muon step: cyoptim.Muon against torch.optim.Muon on the same matrices.

Usage (from the repository root, after building the kernels in place):
    PYTHONPATH=src python tools/muon_bench.py [--shapes 512x512,1024x4096] [--rounds 5]
        [--dtype float32] [--threads N]

A step is one param of each shape, with a fresh random grad; both run with their
defaults (nesterov, 5 Newton-Schulz steps) and lr 0.02. The two
implementations alternate, one step at a time, after one warm-up step each;
the table gives each one's median (and min) milliseconds per step and the
ratio of the medians. --threads sets torch's thread count, cyoptim's and the
BLAS's (threadpoolctl); by default each uses all cores. torch runs NS in
bfloat16 on CPU; cyoptim in float32 matmuls of NumPy's BLAS (see the Muon
docstring), so on CPUs without native bfloat16 matmuls the BLAS does the
same products faster.
"""

import argparse
import contextlib
import statistics
import time

import numpy as np

DEFAULT_SHAPES = "256x256,512x512,1024x1024,1024x4096,4096x1024,768x3072"


def parse_shapes(text):
    shapes = []
    for item in text.split(","):
        rows, cols = item.lower().split("x")
        shapes.append((int(rows), int(cols)))
    return shapes


def steppers(shape, dtype):
    """(cyoptim step, torch step) over one param of this shape, fresh grads each."""
    import torch

    import cyoptim

    rng = np.random.default_rng(0)
    param = rng.standard_normal(shape).astype(dtype)
    grads = [rng.standard_normal(shape).astype(dtype) for _ in range(4)]
    ours = cyoptim.Muon([param.copy()], lr=0.02)
    tensor = torch.tensor(param, requires_grad=True)
    theirs = torch.optim.Muon([tensor], lr=0.02)
    torch_grads = [torch.tensor(g) for g in grads]
    count = [0, 0]

    def step_ours():
        count[0] += 1
        ours.step([grads[count[0] % 4]])

    def step_theirs():
        count[1] += 1
        tensor.grad = torch_grads[count[1] % 4]
        theirs.step()

    return step_ours, step_theirs


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", default=DEFAULT_SHAPES)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args(argv)

    import torch

    import cyoptim

    limits = contextlib.nullcontext()
    if args.threads > 0:
        import threadpoolctl

        torch.set_num_threads(args.threads)
        cyoptim.set_num_threads(args.threads)
        limits = threadpoolctl.threadpool_limits(args.threads, user_api="blas")
    print(
        f"torch {torch.__version__} ({torch.get_num_threads()} threads), "
        f"cyoptim {cyoptim.__version__} ({cyoptim.simd_info()}), {args.dtype}, "
        f"{args.rounds} rounds"
    )
    header = f"{'shape':>11}  {'cyoptim ms':>14}  {'torch ms':>14}  {'torch / cyoptim':>15}"
    print(header)
    print("-" * len(header))
    with limits:
        for shape in parse_shapes(args.shapes):
            ours, theirs = steppers(shape, np.dtype(args.dtype))
            ours(), theirs()
            times = {ours: [], theirs: []}
            for _ in range(args.rounds):
                for step in (ours, theirs):
                    start = time.perf_counter()
                    step()
                    times[step].append((time.perf_counter() - start) * 1e3)
            a, b = statistics.median(times[ours]), statistics.median(times[theirs])
            cells = [
                f"{a:7.1f} ({min(times[ours]):5.1f})",
                f"{b:7.1f} ({min(times[theirs]):5.1f})",
                f"{b / a:14.2f}x",
            ]
            print(f"{'x'.join(map(str, shape)):>11}  " + "  ".join(cells))


if __name__ == "__main__":
    main()
