"""Throughput of optimizer steps: cyoptim against NumPy, torch and DeepSpeed.

``python -m cyoptim bench`` prints, for each optimizer and model layout, the
parameters updated per second (Mparam/s) by each implementation measured side
by side in one process, and cyoptim's speed-up over each. The same steppers
drive the pytest-benchmark suite in ``benchmarks/``.

Implementations:
- ``cyoptim``: this library (one kernel call per param group).
- ``numpy``: ``cyoptim.reference``, the NumPy twin (in-place ufuncs).
- ``torch-fused``: ``torch.optim`` with ``fused=True``, for the optimizers
  torch has a fused CPU kernel for (SGD, Adam, AdamW, Adagrad).
- ``torch-default``: ``torch.optim`` as constructed by default (on CPU: the
  single-tensor loop).
- ``deepspeed``: ``DeepSpeedCPUAdam`` (Adam and AdamW only), when installed.

The command shows a progress line per cell on stderr, names the peers it
skipped and why (not installed), accepts the demo's optimizer names
(``DEMO_ALIASES``), and warns when the bandwidth probe's figure cannot be the
machine's memory bandwidth (:func:`bandwidth_warnings`). Bad arguments are
usage errors (exit status 2).
"""

import argparse
import gc
import glob
import importlib
import math
import os
import statistics
import sys
import time

import numpy as np

from . import _threads, registry
from .bench_precision import PLAUSIBLE_MAX_SHARE
from .buffer import ParamBuffer

# Per registry row: (constructor kwargs, arrays streamed per step: reads +
# writes of param-sized arrays).
BENCH_SETTINGS = {
    "SGD": ({"momentum": 0.9}, 3 + 2),
    "Adagrad": ({}, 3 + 2),
    "RMSprop": ({"momentum": 0.9, "centered": True}, 5 + 4),
    "Adadelta": ({}, 4 + 3),
    "Adam": ({}, 4 + 3),
    "AdamW": ({}, 4 + 3),
    "Adamax": ({}, 4 + 3),
    "NAdam": ({}, 4 + 3),
    "RAdam": ({}, 4 + 3),
    "Lion": ({}, 3 + 2),
    "LAMB": ({"weight_decay": 1e-2}, (4 + 3) + (2 + 1)),
    "Rprop": ({}, 4 + 3),
    "ASGD": ({"t0": 0.0}, 3 + 2),
    "Adafactor": ({}, 4 + 4),
}

# name -> (cyoptim class name, kwargs, torch class name or None, torch has a fused
# CPU kernel, arrays streamed per step), for every registry row.
OPTIMIZERS = {
    row.name.lower(): (
        row.name,
        dict(BENCH_SETTINGS[row.name][0]),
        row.name if row.in_torch else None,
        row.torch_fused,
        BENCH_SETTINGS[row.name][1],
    )
    for row in registry.OPTIMIZERS
}
DEFAULT_OPTIMIZERS = ("adam", "sgd")

# name -> (sizes of the separate arrays, whether they live in one ParamBuffer)
LAYOUTS = {
    "10k": ([10_000], False),
    "1M": ([1_000_000], False),
    "16M": ([16_000_000], False),
    "500x2k": ([2_000] * 500, False),
    "500x2k-buffer": ([2_000] * 500, True),
}
DEFAULT_LAYOUTS = tuple(LAYOUTS)
IMPLEMENTATIONS = ("cyoptim", "numpy", "torch-fused", "torch-default", "deepspeed")

# The demo's optimizer names (``python -m cyoptim demo --optimizers``, its table's
# labels) that are not rows of OPTIMIZERS: the row they are measured as, and the
# options that row adds. The bench's "sgd" row is SGD with momentum 0.9, the demo's
# "momentum" (the demo's "sgd" has no momentum; it steps like the same kernel).
DEMO_ALIASES = {
    "momentum": ("sgd", {}),
    "sgd+momentum": ("sgd", {}),
    "nesterov": ("sgd", {"nesterov": True}),
}

# Sanity bounds of the bandwidth probe's figure and of the cells compared with it.
PLAUSIBLE_MIN_GBS = 5.0  # a busy or throttled machine reads below this


def optimizer_spec(name):
    """The OPTIMIZERS entry of a row, or of a demo alias that adds options to one."""
    if name in OPTIMIZERS:
        return OPTIMIZERS[name]
    base, options = DEMO_ALIASES[name]
    class_name, kwargs, torch_name, torch_fused, arrays = OPTIMIZERS[base]
    return class_name, {**kwargs, **options}, torch_name, torch_fused, arrays


def unavailable_reason(module):
    """None when `module` imports, else why not ("not installed", or the import error)."""
    try:
        importlib.import_module(module)
        return None
    except ModuleNotFoundError as error:
        if error.name and error.name.split(".")[0] == module.split(".")[0]:
            return "not installed"
        return f"import failed: {error}"
    except Exception as error:
        return f"import failed: {type(error).__name__}: {error}"


def installed(module):
    return unavailable_reason(module) is None


def _arrays(sizes, in_buffer, dtype, seed):
    rng = np.random.default_rng(seed)
    if in_buffer:
        buf = ParamBuffer([(n,) for n in sizes], dtype)
        params, grads = buf.params, buf.grads
    else:
        params = [np.empty(n, dtype) for n in sizes]
        grads = [np.empty(n, dtype) for n in sizes]
    for p, g in zip(params, grads):
        p[:] = rng.standard_normal(p.size)
        g[:] = rng.standard_normal(g.size) * 1e-2
    return params, grads


def load_steppers(optimizers, layouts, dtype=np.float32):
    """{(optimizer, layout): (cyoptim's step, params it steps)}: the cells of
    `bench --background-load` (cyoptim.loadbench.measure_under_load)."""
    return {
        (optimizer, layout): (
            make_stepper("cyoptim", optimizer, layout, dtype),
            sum(LAYOUTS[layout][0]),
        )
        for optimizer in optimizers
        for layout in layouts
    }


def make_stepper(implementation, optimizer, layout, dtype=np.float32, seed=0):
    """A zero-argument function that performs one optimizer step, or None if the
    implementation is not available for this optimizer."""
    class_name, kwargs, torch_name, torch_fused, _ = optimizer_spec(optimizer)
    sizes, in_buffer = LAYOUTS[layout]
    params, grads = _arrays(sizes, in_buffer, dtype, seed)
    if implementation in ("cyoptim", "numpy"):
        import cyoptim
        import cyoptim.reference

        module = cyoptim if implementation == "cyoptim" else cyoptim.reference
        opt = getattr(module, class_name)(params, **kwargs)
        return lambda: opt.step(grads)
    if implementation in ("torch-fused", "torch-default"):
        fused = implementation == "torch-fused"
        if torch_name is None or (fused and not torch_fused) or not installed("torch"):
            return None
        import torch

        tensors = [torch.from_numpy(p) for p in params]
        for t, g in zip(tensors, grads):
            t.grad = torch.from_numpy(g)
        extra = {"fused": True} if fused else {}
        opt = getattr(torch.optim, torch_name)(tensors, **extra, **kwargs)
        return opt.step
    if implementation == "deepspeed":
        if optimizer not in ("adam", "adamw") or not installed("deepspeed"):
            return None
        import torch
        from deepspeed.ops.adam import DeepSpeedCPUAdam

        tensors = [torch.from_numpy(p) for p in params]
        for t, g in zip(tensors, grads):
            t.grad = torch.from_numpy(g)
        opt = DeepSpeedCPUAdam(
            tensors,
            adamw_mode=(optimizer == "adamw"),
            weight_decay=0.0 if optimizer == "adam" else 1e-2,
        )
        return opt.step
    raise ValueError(f"unknown implementation {implementation!r}")


def time_per_step(step, min_seconds=0.2, repeats=7):
    """Median seconds per step over `repeats` batches of steps."""
    step()
    start = time.perf_counter()
    step()
    once = max(time.perf_counter() - start, 1e-7)
    per_batch = max(1, int(min_seconds / repeats / once))
    times = []
    gc.disable()
    try:
        for _ in range(repeats):
            start = time.perf_counter()
            for _ in range(per_batch):
                step()
            times.append((time.perf_counter() - start) / per_batch)
    finally:
        gc.enable()
    return statistics.median(times)


def bandwidth_probe(megabytes=768, min_seconds=0.3):
    """GB/s of a threaded stream that moves memory like an Adam step (read four
    float32 arrays, update three in place) over `megabytes` in all."""
    from . import _dispatch

    n_elements = megabytes * 1_000_000 // 16
    a, b, c = (np.ones(n_elements, np.float32) for _ in range(3))
    d = np.full(n_elements, 1e-9, np.float32)
    # The best of several medians, as STREAM reports: the machine's capability.
    seconds = min(
        time_per_step(
            lambda: _dispatch.kernels.stream_update(a, b, c, d, -1e-9, _threads.requested()),
            min_seconds / 3,
            repeats=5,
        )
        for _ in range(3)
    )
    return 28 * n_elements / seconds / 1e9


def bytes_per_param(optimizer, dtype):
    """Bytes an optimizer step must move per parameter (each array read or written once)."""
    return optimizer_spec(optimizer)[4] * np.dtype(dtype).itemsize


def measure(
    optimizers,
    layouts,
    implementations,
    dtype=np.float32,
    min_seconds=0.2,
    rounds=5,
    progress=None,
):
    """Rows of {"optimizer", "layout", "params", "bytes_per_param", impl: Mparam/s or None}.

    The implementations of one cell are timed in turns, round after round, and
    each keeps the median of its rounds: a slow spell of a noisy machine then
    hits all of them alike instead of whichever ran during it.

    ``progress(done, total, optimizer, layout)``, if given, is called before
    each cell is measured.
    """
    rows = []
    total = len(optimizers) * len(layouts)
    for optimizer in optimizers:
        for layout in layouts:
            if progress is not None:
                progress(len(rows), total, optimizer, layout)
            n = sum(LAYOUTS[layout][0])
            steppers = {i: make_stepper(i, optimizer, layout, dtype) for i in implementations}
            times = {i: [] for i, step in steppers.items() if step is not None}
            for _ in range(rounds):
                for i in times:
                    times[i].append(time_per_step(steppers[i], min_seconds / rounds, repeats=3))
            row = {
                "optimizer": optimizer,
                "layout": layout,
                "params": n,
                "bytes_per_param": bytes_per_param(optimizer, dtype),
            }
            for i in implementations:
                row[i] = n / statistics.median(times[i]) / 1e6 if i in times else None
            rows.append(row)
            del steppers
            gc.collect()
    return rows


def format_table(rows, implementations, bandwidth=None):
    """The table `python -m cyoptim bench` prints; bandwidth (GB/s) adds the
    GB/s cyoptim moves and its share of that limit."""
    others = [i for i in implementations if i != "cyoptim"]
    header = (
        ["optimizer", "layout"]
        + [f"{i} Mp/s" for i in implementations]
        + [f"vs {i}" for i in others]
    )
    if bandwidth:
        header += ["cyoptim GB/s", "of limit"]
    lines = []
    for row in rows:
        ours = row["cyoptim"]
        cells = [row["optimizer"], row["layout"]]
        cells += ["-" if row[i] is None else f"{row[i]:,.0f}" for i in implementations]
        cells += [
            "-" if row[i] is None or ours is None else f"{ours / row[i]:.1f}x" for i in others
        ]
        if bandwidth:
            gbs = ours * row["bytes_per_param"] / 1e3
            cells += [f"{gbs:,.1f}", f"{gbs / bandwidth:.0%}"]
        lines.append(cells)
    widths = [max(len(str(c)) for c in column) for column in zip(header, *lines)]
    fmt = "  ".join(f"{{:{'<' if k < 2 else '>'}{w}}}" for k, w in enumerate(widths))
    out = [fmt.format(*header), fmt.format(*("-" * w for w in widths))]
    out += [fmt.format(*cells) for cells in lines]
    return "\n".join(out)


def last_level_cache_bytes():
    """Size of the largest CPU cache (Linux sysfs), or None when unknown."""
    best = None
    for index in glob.glob("/sys/devices/system/cpu/cpu0/cache/index*"):
        try:
            with open(os.path.join(index, "size")) as f:
                text = f.read().strip()
        except OSError:
            continue
        units = {"K": 1024, "M": 1024**2, "G": 1024**3}
        try:
            size = int(text[:-1]) * units[text[-1]] if text[-1] in units else int(text)
        except (ValueError, IndexError):
            continue
        best = size if best is None else max(best, size)
    return best


def bandwidth_warnings(bandwidth, rows, probe_mb, cache_bytes):
    """Warnings about a bandwidth figure that cannot be the machine's memory bandwidth.

    Args:
        bandwidth: the probe's GB/s.
        rows: measured rows (see :func:`measure`).
        probe_mb: megabytes the probe streamed.
        cache_bytes: size of the last-level cache, or None when unknown.

    Returns:
        A list of messages (empty when everything looks plausible).
    """
    warnings = []
    if bandwidth < PLAUSIBLE_MIN_GBS:
        warnings.append(
            f"the bandwidth probe read only {bandwidth:.1f} GB/s, below what any current "
            f"machine streams ({PLAUSIBLE_MIN_GBS:g} GB/s or more): it was probably slowed "
            f"down (a busy or throttled machine); the 'of limit' column is not meaningful"
        )
    if cache_bytes is not None and probe_mb * 1e6 < 2 * cache_bytes:
        warnings.append(
            f"the bandwidth probe's {probe_mb} MB fit in the {cache_bytes / 2**20:.0f} MiB "
            f"last-level cache: it measured cache, not memory, bandwidth (use --probe-mb "
            f"{max(768, math.ceil(2 * cache_bytes / 1e6))} or more)"
        )
    for row in rows:
        # Each array is read at least as often as written: its arrays hold at least
        # half the bytes a step moves.
        arrays = row["params"] * row["bytes_per_param"] / 2
        if row["cyoptim"] is None or cache_bytes is None or arrays <= cache_bytes:
            continue
        share = row["cyoptim"] * row["bytes_per_param"] / 1e3 / bandwidth
        if share > PLAUSIBLE_MAX_SHARE:
            warnings.append(
                f"{row['optimizer']} {row['layout']} works on {arrays / 1e6:,.0f} MB or more, "
                f"beyond the {cache_bytes / 2**20:.0f} MiB cache, yet streams at {share:.0%} "
                f"of the probe's figure: the probe underestimated the machine (run again, "
                f"with the machine otherwise idle)"
            )
    return warnings


def build_parser():
    """The argparse parser of ``python -m cyoptim bench``."""
    from ._cli import HelpFormatter, int_at_least, positive_float

    parser = argparse.ArgumentParser(
        prog="python -m cyoptim bench",
        formatter_class=HelpFormatter,
        description="Optimizer step throughput, side by side: cyoptim against NumPy, "
        "torch and DeepSpeed (peers that are not installed are skipped).",
    )
    parser.add_argument(
        "--optimizers",
        default=",".join(DEFAULT_OPTIMIZERS),
        help=f"comma-separated, from: {', '.join(OPTIMIZERS)}, or 'all'; "
        f"also the demo's names {', '.join(DEMO_ALIASES)} (sgd here is "
        f"SGD with momentum 0.9) (default: %(default)s)",
    )
    parser.add_argument(
        "--layouts",
        default=",".join(DEFAULT_LAYOUTS),
        help=f"comma-separated, from: {', '.join(LAYOUTS)} (default: %(default)s)",
    )
    parser.add_argument(
        "--with",
        dest="implementations",
        default=",".join(IMPLEMENTATIONS),
        help="implementations to compare; those not installed are skipped (default: %(default)s)",
    )
    parser.add_argument(
        "--dtype", choices=["float32", "float64"], default="float32", help="(default: %(default)s)"
    )
    parser.add_argument(
        "--threads",
        type=int_at_least(0),
        default=None,
        help="threads for cyoptim (default: OpenMP's maximum; 0 means the same)",
    )
    parser.add_argument(
        "--seconds",
        type=positive_float,
        default=0.2,
        help="measuring time per cell (default: %(default)s)",
    )
    parser.add_argument(
        "--probe-mb",
        type=int_at_least(1),
        default=768,
        help="megabytes streamed by the memory-bandwidth probe (default: %(default)s)",
    )
    parser.add_argument(
        "--background-load",
        type=int_at_least(0),
        default=0,
        metavar="N",
        help="also measure cyoptim beside N busy processes (and on one "
        "thread), against its own one-thread figure (default: "
        "%(default)s, none)",
    )
    parser.add_argument(
        "--precision",
        action="store_true",
        help="instead: Adam(W) with 16-bit params, master weights, bfloat16 "
        "and int8 states, against torch fused on bfloat16, "
        "DeepSpeedCPUAdam, bitsandbytes and torchao (8-bit)",
    )
    parser.add_argument(
        "--params",
        type=int_at_least(4096),
        default=1 << 26,
        help="with --precision: params of the tensor stepped (default: %(default)s, 64M)",
    )
    parser.add_argument(
        "--project",
        type=_machine,
        default=None,
        metavar="CORES,GBS",
        help="with --precision: also project each mode onto a machine of CORES "
        "cores and GBS GB/s of memory bandwidth (e.g. 64,300)",
    )
    parser.add_argument(
        "--no-progress", dest="progress", action="store_false", help="no progress lines on stderr"
    )
    return parser


def _machine(text):
    """argparse type of --project: "CORES,GBS", both positive."""
    try:
        cores, gbs = text.split(",")
        cores, gbs = int(cores), float(gbs)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected CORES,GBS (e.g. 64,300), got {text!r}"
        ) from None
    if cores < 1 or not gbs > 0:
        raise argparse.ArgumentTypeError(f"CORES and GBS must be positive, got {text!r}")
    return cores, gbs


def _names(parser, text, allowed, what):
    """Names from a comma-separated list, matched case-insensitively; usage error if unknown."""
    by_lower = {name.lower(): name for name in allowed}
    names = [n.strip().lower() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in by_lower]
    if unknown or not names:
        parser.error(
            f"unknown {what}: {', '.join(unknown) or repr(text)}; choose from {', '.join(allowed)}"
        )
    return list(dict.fromkeys(by_lower[n] for n in names))


def _optimizer_names(parser, text):
    """Rows to measure: OPTIMIZERS names, "all", or the demo's names (DEMO_ALIASES)."""
    if text.strip().lower() == "all":
        return list(OPTIMIZERS)
    return _names(parser, text, [*OPTIMIZERS, *DEMO_ALIASES], "optimizer")


def _available_peers(implementations):
    """(implementations that can run, notes on those skipped and why)."""
    kept, notes = [], []
    for implementation in implementations:
        module = implementation.split("-")[0]
        reason = None if implementation in ("cyoptim", "numpy") else unavailable_reason(module)
        if reason is None:
            kept.append(implementation)
        else:
            hint = (
                " (pip install torch)" if module == "torch" and reason == "not installed" else ""
            )
            notes.append(f"skipped {implementation}: {module} {reason}{hint}")
    return kept, notes


def _check_probe_fits(parser, probe_mb):
    """Usage error when the probe would need more than half the machine's memory."""
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return
    if probe_mb * 1e6 > memory / 2:
        parser.error(
            f"--probe-mb {probe_mb} needs more than half of this machine's "
            f"{memory / 1e9:.1f} GB of memory"
        )


def _probe(megabytes, progress):
    """bandwidth_probe(megabytes), saying so on stderr first when progress is shown."""
    if progress:
        print(f"probing memory bandwidth ({megabytes} MB) ...", file=sys.stderr, flush=True)
    return bandwidth_probe(megabytes)


def _print_progress(done, total, optimizer, layout):
    print(f"[{done + 1}/{total}] measuring {optimizer} {layout} ...", file=sys.stderr, flush=True)


def main(argv=None):
    """Run ``python -m cyoptim bench``; returns the exit status (usage errors exit 2)."""
    import cyoptim

    parser = build_parser()
    args = parser.parse_args(argv)
    if args.threads is not None:
        cyoptim.set_num_threads(args.threads)
    if args.precision:
        from . import bench_precision

        _check_probe_fits(parser, args.probe_mb)
        bench_precision.main(
            args.params,
            max(args.seconds, 0.5),
            progress=args.progress,
            probe_gbs=_probe(args.probe_mb, args.progress),
            project=args.project,
        )
        return 0
    optimizers = _optimizer_names(parser, args.optimizers)
    layouts = _names(parser, args.layouts, LAYOUTS, "layout")
    implementations = _names(parser, args.implementations, IMPLEMENTATIONS, "implementation")
    _check_probe_fits(parser, args.probe_mb)
    if "cyoptim" not in implementations:
        implementations.insert(0, "cyoptim")
    implementations, skipped = _available_peers(implementations)
    if args.threads is not None:
        cyoptim.set_num_threads(args.threads)
    print(
        f"cyoptim {cyoptim.__version__}: SIMD {cyoptim.simd_info()}, "
        f"{_threads.get_num_threads()} threads, {args.dtype}; Mparam/s, median of "
        f"rounds that take turns between implementations"
    )
    bandwidth = _probe(args.probe_mb, args.progress)
    print(
        f"memory bandwidth probe (threaded stream like an Adam step, {args.probe_mb} MB): "
        f"{bandwidth:.1f} GB/s; GB/s below counts each param-sized array read or "
        f"written once"
    )
    for note in skipped:
        print(note)
    rows = measure(
        optimizers,
        layouts,
        implementations,
        np.dtype(args.dtype),
        args.seconds,
        progress=_print_progress if args.progress else None,
    )
    print(format_table(rows, implementations, bandwidth))
    if any(row[i] is None for row in rows for i in implementations):
        print(
            "-: not available (torch has no Lion or LAMB, and fused kernels for SGD, "
            "Adam, AdamW and Adagrad only; DeepSpeed has Adam and AdamW only)"
        )
    for warning in bandwidth_warnings(bandwidth, rows, args.probe_mb, last_level_cache_bytes()):
        print(f"warning: {warning}")
    if args.background_load:
        from .loadbench import format_load_table, measure_under_load

        load_rows = measure_under_load(
            load_steppers(optimizers, layouts, np.dtype(args.dtype)),
            args.background_load,
            max(args.seconds, 0.2),
            progress=_print_progress if args.progress else None,
        )
        print()
        print(format_load_table(load_rows, args.background_load, _threads.get_num_threads()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
