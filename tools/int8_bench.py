"""ns per param of an AdamW step with float32 states vs int8 states, side by
side in one process (int8 states cost quantization work per element).

Usage (from the repository root, after an in-place build):
    PYTHONPATH=src python tools/int8_bench.py [--variant avx512] [--rounds 5]

Rows: in cache (64k params, 1 thread) and large (64M params, 2 threads). Each
round times float32 then int8; the table gives the median over rounds and the
ratio int8 / float32 of those medians.
"""

import argparse
import statistics

import numpy as np

import cyoptim
from cyoptim import _dispatch
from cyoptim.loadbench import mean_throughput

CASES = (("in cache", 1 << 16, 1), ("large", 1 << 26, 2))


def make_step(n, state_dtype):
    rng = np.random.default_rng(0)
    param = rng.standard_normal(n, dtype=np.float32)
    grad = rng.standard_normal(n, dtype=np.float32) * np.float32(1e-2)
    options = {} if state_dtype == "float32" else {"state_dtype": state_dtype}
    opt = cyoptim.AdamW([param], lr=1e-3, weight_decay=1e-2, **options)
    opt.step([grad])  # creates the states
    return lambda: opt.step([grad])


def ns_per_param(step, n, seconds):
    return 1e3 / mean_throughput(step, n, seconds)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", default=None, help="SIMD variant (default: the best)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=0.3, help="per measurement")
    parser.add_argument("--large", type=int, default=CASES[1][1], help="params of the large case")
    args = parser.parse_args()
    variant = args.variant or _dispatch.variant
    print(f"SIMD {variant}")
    with _dispatch.use_variant(variant):
        for label, n, threads in (CASES[0], (CASES[1][0], args.large, CASES[1][2])):
            cyoptim.set_num_threads(threads)
            steps = {dtype: make_step(n, dtype) for dtype in ("float32", "int8")}
            times = {dtype: [] for dtype in steps}
            for _ in range(args.rounds):
                for dtype, step in steps.items():
                    times[dtype].append(ns_per_param(step, n, args.seconds))
            f32, i8 = (statistics.median(times[d]) for d in ("float32", "int8"))
            print(
                f"{label:9s} {n:>10,d} params {threads} thread(s): float32 {f32:7.3f} "
                f"ns/param, int8 {i8:7.3f} ns/param, int8/float32 {i8 / f32:5.2f}"
            )
            del steps


if __name__ == "__main__":
    main()
