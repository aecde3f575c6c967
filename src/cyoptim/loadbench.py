"""Step throughput beside busy processes: ``python -m cyoptim bench --background-load N``.

A machine is rarely idle: data loaders, another training run, a browser. A
parallel step that waits for a descheduled thread can then be slower than
one thread. For each cell this measures cyoptim on one thread and on its
default thread count, first on a quiet machine, then with N processes that
spin (``while True: pass``) beside it, and reports the loaded figure against
the one-thread figure. Throughput here is total params over total time (a
mean), so the slow steps count in full, as they do in a training loop.
"""

import contextlib
import subprocess
import sys
import time

from . import _threads

BUSY_LOOP = "while True: pass"


@contextlib.contextmanager
def busy_processes(n):
    """n Python processes spinning on the CPU for the duration of the block."""
    procs = [subprocess.Popen([sys.executable, "-c", BUSY_LOOP]) for _ in range(n)]
    try:
        time.sleep(0.2)  # let them start spinning
        yield procs
    finally:
        for proc in procs:
            proc.kill()
        for proc in procs:
            proc.wait()


@contextlib.contextmanager
def thread_count(n):
    """Kernels use n threads inside the block (None: the default)."""
    saved = _threads.requested()
    _threads.set_num_threads(n)
    try:
        yield
    finally:
        _threads.set_num_threads(saved)


def mean_throughput(step, n_params, seconds):
    """Mparam/s over as many steps as fit in `seconds` (a mean: slow steps count)."""
    step()
    steps, start = 0, time.perf_counter()
    while True:
        step()
        steps += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return n_params * steps / elapsed / 1e6


def _cells(steppers, seconds, progress, label):
    """{(optimizer, layout): {"one": Mparam/s on 1 thread, "all": on the threads asked for}}."""
    out = {}
    for (optimizer, layout), (step, n) in steppers.items():
        if progress is not None:
            progress(len(out), len(steppers), optimizer, f"{layout} ({label})")
        with thread_count(1):
            one = mean_throughput(step, n, seconds)
        default = mean_throughput(step, n, seconds)  # the threads asked for
        out[(optimizer, layout)] = {"one": one, "all": default}
    return out


def measure_under_load(steppers, n_busy, seconds=0.5, progress=None):
    """Rows of {"optimizer", "layout", "idle_one", "idle", "busy_one", "busy"} (Mparam/s).

    steppers: {(optimizer, layout): (a function taking one step, params it steps)},
    as cyoptim.bench.load_steppers makes them.
    """
    idle = _cells(steppers, seconds, progress, "idle")
    with busy_processes(n_busy):
        busy = _cells(steppers, seconds, progress, f"{n_busy} busy")
    return [
        {
            "optimizer": o,
            "layout": la,
            "idle_one": idle[(o, la)]["one"],
            "idle": idle[(o, la)]["all"],
            "busy_one": busy[(o, la)]["one"],
            "busy": busy[(o, la)]["all"],
        }
        for (o, la) in idle
    ]


def format_load_table(rows, n_busy, threads):
    """The table `bench --background-load` prints."""
    head = (
        f"{'optimizer':10s} {'layout':14s} {'1 thread':>9s} {f'{threads} threads':>11s} "
        f"{'1 thr, busy':>12s} {f'{threads} thr, busy':>14s} {'busy / 1 thread':>16s}"
    )
    lines = [
        f"Mparam/s (mean over the run), idle and beside {n_busy} busy process(es); "
        f"the last column is the busy {threads}-thread figure over the idle 1-thread one",
        head,
        "-" * len(head),
    ]
    for r in rows:
        lines.append(
            f"{r['optimizer']:10s} {r['layout']:14s} {r['idle_one']:9,.0f} "
            f"{r['idle']:11,.0f} {r['busy_one']:12,.0f} {r['busy']:14,.0f} "
            f"{r['busy'] / r['idle_one']:15.2f}x"
        )
    return "\n".join(lines)
