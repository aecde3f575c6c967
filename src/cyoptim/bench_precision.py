"""Adam(W) steps in fewer bytes, side by side in one run (``python -m cyoptim
bench --precision``).

One model-sized tensor (64M params by default) is stepped by each
implementation in turn; each row reports the median step time as Mparam/s,
the bytes the optimizer holds per param (measured: the arrays and tensors of
its state), and the bytes one step moves per param (what its storage implies:
param and states read and written, the grad read). Rows:

- cyoptim (NumPy arrays): float32; bfloat16 params with float32 master
  weights; float32 params with bfloat16 states; float32 params with int8
  states; bfloat16 params with master weights and int8 states.
- torch.optim.AdamW(fused=True) on float32 and on bfloat16 tensors.
- DeepSpeedCPUAdam with bfloat16 params (float32 states), bitsandbytes'
  AdamW8bit and torchao's AdamW8bit on CPU tensors: when installed.

A peer that is not installed, or fails on this machine, gets a row saying why.

Per row the table gives what decides the speed of a mode on any machine:

- moved B/param: the bytes one step must move per param (its storage);
- in-cache ns/param/core: the compute cost, one thread on a tensor that
  fits in the cache (IN_CACHE_PARAMS);
- Mparam/s at the large size (every thread), and the GB/s that implies;
- bound above GB/s/core: moved / (ns per param per core). A core that gets
  more memory bandwidth than this cannot feed on it: the mode is
  compute-bound there, memory-bound below.

A machine of C cores and B GB/s steps at most
min(C / t, B / m) params per second (t: the in-cache time per param per
core, m: the bytes moved per param); ``--project C,B`` prints that
projection. A cell that cannot be right is flagged, never printed
silently: a figure above the memory probe's (``above probe``: out of cache a
step cannot move more bytes than the probe streams), or rounds that differ by
more than UNSTEADY_RATIO (``unsteady``: the machine was busy during them).
"""

import contextlib
import gc
import statistics
import time
import traceback

import numpy as np

from . import precision, quantization
from .loadbench import thread_count

HYPER = dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2)
IN_CACHE_PARAMS = 1 << 16  # 64k params: every mode's arrays fit in a core's L2
UNSTEADY_RATIO = 2.0  # slowest round / fastest round above this: flagged
PLAUSIBLE_MAX_SHARE = 1.1  # out of cache a step cannot stream much faster than the probe


def _cyoptim_row(label, n, param_dtype, **options):
    import cyoptim

    rng = np.random.default_rng(0)
    param = rng.standard_normal(n, dtype=np.float32).astype(param_dtype)
    grad = (rng.standard_normal(n, dtype=np.float32) * 1e-2).astype(param_dtype)
    opt = cyoptim.AdamW([param], **HYPER, **options)

    def step():
        opt.step([grad])

    return label, step, lambda: cyoptim.state_bytes(opt)


def _torch_params(n, dtype):
    import torch

    g = torch.Generator().manual_seed(0)
    p = torch.randn(n, generator=g).to(dtype)
    p.grad = (torch.randn(n, generator=g) * 1e-2).to(dtype)
    return p


def _torch_state_bytes(opt):
    import torch

    total = 0
    for entry in opt.state.values():
        for value in entry.values():
            if isinstance(value, torch.Tensor):
                total += _tensor_bytes(value)
    return total


def _tensor_bytes(t):
    """Bytes of a tensor, or of the plain tensors inside a tensor subclass
    (torchao keeps 8-bit states as subclasses holding codes and scales)."""
    inner = getattr(t, "__tensor_flatten__", None)
    if inner is not None and type(t).__name__ != "Tensor":
        names, _ = t.__tensor_flatten__()
        return sum(_tensor_bytes(getattr(t, name)) for name in names)
    return t.numel() * t.element_size()


def _torch_row(label, n, dtype_name, make):
    import torch

    p = _torch_params(n, getattr(torch, dtype_name))
    opt = make(p)

    def step():
        opt.step()

    return label, step, lambda: _torch_state_bytes(opt)


def rows():
    """(label, bytes moved per param, builder) of every row; a builder takes
    the number of params."""
    import importlib.util

    bf16 = precision.BFLOAT16
    out = [
        (
            "cyoptim float32",
            4 + 4 + 4 + 8 + 8,
            lambda size: _cyoptim_row("cyoptim float32", size, np.float32),
        ),
        (
            "cyoptim bf16 params + fp32 master",
            2 + 2 + 8 + 16,
            lambda size: _cyoptim_row(
                "cyoptim bf16 params + fp32 master", size, bf16, master_weights=True
            ),
        ),
        (
            "cyoptim fp32 params + bf16 states",
            8 + 4 + 8,
            lambda size: _cyoptim_row(
                "cyoptim fp32 params + bf16 states", size, np.float32, state_dtype="bfloat16"
            ),
        ),
        (
            "cyoptim fp32 params + int8 states",
            8 + 4 + 4,
            lambda size: _cyoptim_row(
                "cyoptim fp32 params + int8 states", size, np.float32, state_dtype="int8"
            ),
        ),
        (
            "cyoptim bf16 + master + int8 states",
            2 + 2 + 8 + 4,
            lambda size: _cyoptim_row(
                "cyoptim bf16 + master + int8 states",
                size,
                bf16,
                master_weights=True,
                state_dtype="int8",
            ),
        ),
    ]
    if importlib.util.find_spec("torch") is None:
        return out
    import torch

    out += [
        (
            "torch fused float32",
            28,
            lambda size: _torch_row(
                "torch fused float32",
                size,
                "float32",
                lambda p: torch.optim.AdamW([p], **HYPER, fused=True),
            ),
        ),
        (
            "torch fused bfloat16",
            14,
            lambda size: _torch_row(
                "torch fused bfloat16",
                size,
                "bfloat16",
                lambda p: torch.optim.AdamW([p], **HYPER, fused=True),
            ),
        ),
    ]
    if importlib.util.find_spec("deepspeed") is not None:

        def deepspeed(p):
            from deepspeed.ops.adam import DeepSpeedCPUAdam

            return DeepSpeedCPUAdam([p], **HYPER, adamw_mode=True, fp32_optimizer_states=True)

        out.append(
            (
                "DeepSpeedCPUAdam bf16 params",
                2 + 2 + 2 + 16,
                lambda size: _torch_row(
                    "DeepSpeedCPUAdam bf16 params", size, "bfloat16", deepspeed
                ),
            )
        )
    if importlib.util.find_spec("bitsandbytes") is not None:

        def bnb(p):
            import bitsandbytes as bnb

            return bnb.optim.AdamW8bit([p], **HYPER)

        out.append(
            (
                "bitsandbytes AdamW8bit",
                8 + 4 + 4,
                lambda size: _torch_row("bitsandbytes AdamW8bit", size, "float32", bnb),
            )
        )
    if importlib.util.find_spec("torchao") is not None:

        def torchao(p):
            from torchao.optim import AdamW8bit

            return AdamW8bit([p], **HYPER)

        out.append(
            (
                "torchao AdamW8bit",
                8 + 4 + 4,
                lambda size: _torch_row("torchao AdamW8bit", size, "float32", torchao),
            )
        )
    return out


@contextlib.contextmanager
def one_thread():
    """Every runtime that steps a row on one thread: cyoptim's kernels and
    torch's intra-op pool (when torch is loaded)."""
    import sys

    torch = sys.modules.get("torch")
    saved_torch = torch.get_num_threads() if torch is not None else None
    if torch is not None:
        torch.set_num_threads(1)
    try:
        with thread_count(1):
            yield
    finally:
        if torch is not None:
            torch.set_num_threads(saved_torch)


def _rounds(step, min_seconds, repeats):
    """Seconds per step of each round (each at least min_seconds / repeats)."""
    step()  # creates the state (and compiles, torchao)
    times = []
    for _ in range(repeats):
        count, start = 0, time.perf_counter()
        while True:
            step()
            count += 1
            elapsed = time.perf_counter() - start
            if elapsed >= min_seconds / repeats:
                break
        times.append(elapsed / count)
    return times


def measure(
    n=1 << 26,
    min_seconds=1.0,
    repeats=5,
    labels=None,
    progress=print,
    in_cache=IN_CACHE_PARAMS,
):
    """One result dict per row: label, Mparam/s (median of the rounds) and the
    rounds' Mparam/s at n params, in-cache ns per param on one thread, state
    bytes per param (measured), bytes moved per param (implied); or the error."""
    results = []
    for label, moved, build in rows():
        if labels is not None and label not in labels:
            continue
        progress(f"  {label} ...")
        step = held = small = None
        try:
            _, step, held = build(n)
            times = _rounds(step, min_seconds, repeats)
            state_bytes = held() / n
            step = held = None
            gc.collect()
            with one_thread():
                _, small, _ = build(in_cache)
                in_cache_seconds = statistics.median(_rounds(small, min_seconds / 2, repeats))
            seconds = statistics.median(times)
            results.append(
                dict(
                    label=label,
                    mparams_per_s=n / seconds / 1e6,
                    rounds=[n / t / 1e6 for t in times],
                    ms=seconds * 1e3,
                    ns_per_param_core=in_cache_seconds / in_cache * 1e9,
                    state_bytes=state_bytes,
                    moved=moved,
                )
            )
        except Exception as error:  # a peer that fails here gets a row
            results.append(dict(label=label, error=f"{type(error).__name__}: {error}"[:90]))
            traceback.print_exc(limit=1)
        finally:
            build = step = held = small = None
            gc.collect()
    return results


def derived(result):
    """GB/s the row's large-size figure implies, and the bandwidth per core above
    which the mode is compute-bound (GB/s): moved bytes / in-cache ns per param."""
    return (
        result["mparams_per_s"] * result["moved"] / 1e3,
        result["moved"] / result["ns_per_param_core"],
    )


def flags(result, probe_gbs=None):
    """Why a cell cannot be trusted: figures above the probe, unsteady rounds."""
    out = []
    gbs, _ = derived(result)
    if probe_gbs is not None and gbs > PLAUSIBLE_MAX_SHARE * probe_gbs:
        out.append(f"above probe ({gbs:.0f} > {probe_gbs:.0f} GB/s)")
    rounds = result["rounds"]
    if max(rounds) > UNSTEADY_RATIO * min(rounds):
        out.append(f"unsteady (rounds {min(rounds):.0f}-{max(rounds):.0f} Mparam/s)")
    return out


def projection(result, cores, gbs):
    """(Mparam/s, "memory" or "compute") of the row on a machine of `cores`
    cores and `gbs` GB/s: min(cores / t, B / m)."""
    compute = cores / result["ns_per_param_core"] * 1e3
    memory = gbs * 1e3 / result["moved"]
    return (memory, "memory") if memory <= compute else (compute, "compute")


def format_table(results, n, probe_gbs=None, project=None):
    """The table `bench --precision` prints; project: (cores, GB/s) or None."""
    lines = [
        f"Adam(W) step: {n:,} params (int8 blocks of {quantization.QBLOCK}); "
        f"in cache: {IN_CACHE_PARAMS:,} params on one thread",
        f"{'implementation':36s} {'moved':>6s} {'state':>6s} {'in-cache':>9s} "
        f"{'Mparam/s':>9s} {'GB/s':>6s} {'bound above':>12s}",
        f"{'':36s} {'B/par':>6s} {'B/par':>6s} {'ns/par/c':>9s} "
        f"{'(large)':>9s} {'':>6s} {'GB/s/core':>12s}",
    ]
    for r in results:
        if "error" in r:
            lines.append(f"{r['label']:36s} unavailable: {r['error']}")
            continue
        gbs, bound = derived(r)
        lines.append(
            f"{r['label']:36s} {r['moved']:6d} {r['state_bytes']:6.2f} "
            f"{r['ns_per_param_core']:9.3f} {r['mparams_per_s']:9.0f} {gbs:6.1f} {bound:12.1f}"
        )
        lines += [f"{'':36s} ! {flag}" for flag in flags(r, probe_gbs)]
    if probe_gbs is not None:
        lines.append(f"memory probe: {probe_gbs:.1f} GB/s")
    if project is not None:
        cores, machine_gbs = project
        lines.append(
            f"projection for {cores} cores and {machine_gbs:g} GB/s "
            f"({machine_gbs / cores:.1f} GB/s per core): min(cores / t, GB/s / moved)"
        )
        for r in results:
            if "error" not in r:
                value, bound = projection(r, cores, machine_gbs)
                lines.append(f"  {r['label']:34s} {value:9.0f} Mparam/s, {bound}-bound")
    return "\n".join(lines)


def main(n=1 << 26, seconds=1.0, progress=True, probe_gbs=None, project=None):
    import sys

    import cyoptim

    print(
        f"cyoptim {cyoptim.__version__}, SIMD {cyoptim.simd_info()}, "
        f"{cyoptim.get_num_threads()} threads"
    )
    results = measure(
        n,
        seconds,
        progress=(lambda text: print(text, file=sys.stderr, flush=True))
        if progress
        else (lambda text: None),
    )
    print(format_table(results, n, probe_gbs, project))
    return results
