"""Measure where a 2-thread step starts to beat a 1-thread step.

Usage: python tools/thread_threshold.py [--optimizer adam]

For sizes from 4k to 512k float32 elements it times one step on 1 thread and
on every thread OpenMP offers (with the one-thread threshold disabled), and
prints both; PARALLEL_MIN_WORK and the costs in pyx/common.pxi are set from this.
"""

import argparse
import timeit

import numpy as np

import cyoptim
from cyoptim import _dispatch


def step_seconds(cls, n, threads):
    p = np.zeros(n, np.float32)
    g = np.full(n, 0.01, np.float32)
    opt = cls([p])
    cyoptim.set_num_threads(threads)
    opt.step([g])
    number = max(10, 2_000_000 // n)
    return min(timeit.repeat(lambda: opt.step([g]), number=number, repeat=7)) / number


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--optimizer", default="Adam")
    args = parser.parse_args()
    cls = getattr(cyoptim, args.optimizer)
    kernels = _dispatch.kernels
    saved = kernels.parallel_min_work()
    most = cyoptim.get_num_threads()
    kernels.parallel_min_work(2)
    try:
        print(f"{args.optimizer}, float32, {most} threads available; us per step")
        print(f"{'elements':>9s} {'1 thread':>9s} {f'{most} threads':>10s}")
        for n in [4096 * 2**k for k in range(8)]:
            one = step_seconds(cls, n, 1)
            many = step_seconds(cls, n, most)
            print(
                f"{n:9d} {one * 1e6:9.1f} {many * 1e6:10.1f}{'  <- threads win' if many < one else ''}"
            )
    finally:
        kernels.parallel_min_work(saved)
        cyoptim.set_num_threads(None)


if __name__ == "__main__":
    main()
