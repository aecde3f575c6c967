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
"""

import argparse
import gc
import importlib
import statistics
import sys
import time

import numpy as np

from . import _threads, registry
from .buffer import ParamBuffer

# name -> (cyoptim class name, kwargs, torch class name or None, torch has a fused
# CPU kernel, arrays streamed per step: reads + writes of param-sized arrays),
# from the registry.
OPTIMIZERS = {row.name.lower(): (row.name, dict(row.bench[0]), row.name if row.torch else None,
                                 row.torch_fused, row.bench[1])
              for row in registry.OPTIMIZERS}
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


def installed(module):
    try:
        importlib.import_module(module)
        return True
    except Exception:
        return False


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


def make_stepper(implementation, optimizer, layout, dtype=np.float32, seed=0):
    """A zero-argument function that performs one optimizer step, or None if the
    implementation is not available for this optimizer."""
    class_name, kwargs, torch_name, torch_fused, _ = OPTIMIZERS[optimizer]
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
        opt = DeepSpeedCPUAdam(tensors, adamw_mode=(optimizer == "adamw"),
                               weight_decay=0.0 if optimizer == "adam" else 1e-2)
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
    seconds = min(time_per_step(
        lambda: _dispatch.kernels.stream_update(a, b, c, d, -1e-9, _threads.requested()),
        min_seconds / 3, repeats=5) for _ in range(3))
    return 28 * n_elements / seconds / 1e9


def bytes_per_param(optimizer, dtype):
    """Bytes an optimizer step must move per parameter (each array read or written once)."""
    return OPTIMIZERS[optimizer][4] * np.dtype(dtype).itemsize


def measure(optimizers, layouts, implementations, dtype=np.float32, min_seconds=0.2,
            rounds=5):
    """Rows of {"optimizer", "layout", "params", "bytes_per_param", impl: Mparam/s or None}.

    The implementations of one cell are timed in turns, round after round, and
    each keeps the median of its rounds: a slow spell of a noisy machine then
    hits all of them alike instead of whichever ran during it.
    """
    rows = []
    for optimizer in optimizers:
        for layout in layouts:
            n = sum(LAYOUTS[layout][0])
            steppers = {i: make_stepper(i, optimizer, layout, dtype) for i in implementations}
            times = {i: [] for i, step in steppers.items() if step is not None}
            for _ in range(rounds):
                for i in times:
                    times[i].append(time_per_step(steppers[i], min_seconds / rounds, repeats=3))
            row = {"optimizer": optimizer, "layout": layout, "params": n,
                   "bytes_per_param": bytes_per_param(optimizer, dtype)}
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
    header = (["optimizer", "layout"] + [f"{i} Mp/s" for i in implementations]
              + [f"vs {i}" for i in others])
    if bandwidth:
        header += ["cyoptim GB/s", "of limit"]
    lines = []
    for row in rows:
        ours = row["cyoptim"]
        cells = [row["optimizer"], row["layout"]]
        cells += ["-" if row[i] is None else f"{row[i]:,.0f}" for i in implementations]
        cells += ["-" if row[i] is None or ours is None
                  else f"{ours / row[i]:.1f}x" for i in others]
        if bandwidth:
            gbs = ours * row["bytes_per_param"] / 1e3
            cells += [f"{gbs:,.1f}", f"{gbs / bandwidth:.0%}"]
        lines.append(cells)
    widths = [max(len(str(c)) for c in column) for column in zip(header, *lines)]
    fmt = "  ".join(f"{{:{'<' if k < 2 else '>'}{w}}}" for k, w in enumerate(widths))
    out = [fmt.format(*header), fmt.format(*("-" * w for w in widths))]
    out += [fmt.format(*cells) for cells in lines]
    return "\n".join(out)


def _choices(text, allowed, what):
    """Names from a comma-separated list, matched case-insensitively."""
    by_lower = {name.lower(): name for name in allowed}
    names = [n.strip().lower() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in by_lower]
    if unknown:
        raise SystemExit(f"unknown {what}: {', '.join(unknown)}; choose from {', '.join(allowed)}")
    return [by_lower[n] for n in names]


def main(argv=None):
    import cyoptim

    parser = argparse.ArgumentParser(prog="python -m cyoptim bench",
                                     description="Optimizer step throughput, side by side.")
    parser.add_argument("--optimizers", default=",".join(DEFAULT_OPTIMIZERS),
                        help=f"comma-separated, from: {', '.join(OPTIMIZERS)}, or 'all'")
    parser.add_argument("--layouts", default=",".join(DEFAULT_LAYOUTS),
                        help=f"comma-separated, from: {', '.join(LAYOUTS)}")
    parser.add_argument("--with", dest="implementations", default=",".join(IMPLEMENTATIONS),
                        help="implementations to compare (missing ones are skipped)")
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for cyoptim (default: OpenMP's maximum)")
    parser.add_argument("--seconds", type=float, default=0.2,
                        help="measuring time per cell (default 0.2)")
    parser.add_argument("--probe-mb", type=int, default=768,
                        help="size of the memory-bandwidth probe (default 768 MB)")
    args = parser.parse_args(argv)
    optimizers = (list(OPTIMIZERS) if args.optimizers == "all"
                  else _choices(args.optimizers, OPTIMIZERS, "optimizer"))
    layouts = _choices(args.layouts, LAYOUTS, "layout")
    implementations = _choices(args.implementations, IMPLEMENTATIONS, "implementation")
    if "cyoptim" not in implementations:
        implementations.insert(0, "cyoptim")
    implementations = [i for i in implementations
                       if i in ("cyoptim", "numpy") or installed(i.split("-")[0])]
    if args.threads is not None:
        cyoptim.set_num_threads(args.threads)
    print(f"cyoptim {cyoptim.__version__}: SIMD {cyoptim.simd_info()}, "
          f"{_threads.get_num_threads()} threads, {args.dtype}; Mparam/s, median of "
          f"rounds that take turns between implementations")
    bandwidth = bandwidth_probe(args.probe_mb)
    print(f"memory bandwidth probe (threaded stream like an Adam step, {args.probe_mb} MB): "
          f"{bandwidth:.1f} GB/s; GB/s below counts each param-sized array read or "
          f"written once")
    rows = measure(optimizers, layouts, implementations, np.dtype(args.dtype), args.seconds)
    print(format_table(rows, implementations, bandwidth))
    return 0


if __name__ == "__main__":
    sys.exit(main())
