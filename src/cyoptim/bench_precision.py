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
"""

import gc
import statistics
import time
import traceback

import numpy as np

from . import precision, quantization

HYPER = dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2)


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


def rows(n):
    """(label, bytes moved per param, builder) of every row."""
    import importlib.util

    bf16 = precision.BFLOAT16
    out = [
        (
            "cyoptim float32",
            4 + 4 + 4 + 8 + 8,
            lambda: _cyoptim_row("cyoptim float32", n, np.float32),
        ),
        (
            "cyoptim bf16 params + fp32 master",
            2 + 2 + 8 + 16,
            lambda: _cyoptim_row(
                "cyoptim bf16 params + fp32 master", n, bf16, master_weights=True
            ),
        ),
        (
            "cyoptim fp32 params + bf16 states",
            8 + 4 + 8,
            lambda: _cyoptim_row(
                "cyoptim fp32 params + bf16 states", n, np.float32, state_dtype="bfloat16"
            ),
        ),
        (
            "cyoptim fp32 params + int8 states",
            8 + 4 + 4,
            lambda: _cyoptim_row(
                "cyoptim fp32 params + int8 states", n, np.float32, state_dtype="int8"
            ),
        ),
        (
            "cyoptim bf16 + master + int8 states",
            2 + 2 + 8 + 4,
            lambda: _cyoptim_row(
                "cyoptim bf16 + master + int8 states",
                n,
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
            lambda: _torch_row(
                "torch fused float32",
                n,
                "float32",
                lambda p: torch.optim.AdamW([p], **HYPER, fused=True),
            ),
        ),
        (
            "torch fused bfloat16",
            14,
            lambda: _torch_row(
                "torch fused bfloat16",
                n,
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
                lambda: _torch_row("DeepSpeedCPUAdam bf16 params", n, "bfloat16", deepspeed),
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
                lambda: _torch_row("bitsandbytes AdamW8bit", n, "float32", bnb),
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
                lambda: _torch_row("torchao AdamW8bit", n, "float32", torchao),
            )
        )
    return out


def measure(n=1 << 26, min_seconds=1.0, repeats=5, labels=None, progress=print):
    """One result dict per row: label, Mparam/s (median), state bytes per
    param (measured), bytes moved per param (implied), or the error."""
    results = []
    for label, moved, build in rows(n):
        if labels is not None and label not in labels:
            continue
        progress(f"  {label} ...")
        try:
            label, step, held = build()
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
            seconds = statistics.median(times)
            results.append(
                dict(
                    label=label,
                    mparams_per_s=n / seconds / 1e6,
                    ms=seconds * 1e3,
                    state_bytes=held() / n,
                    moved=moved,
                )
            )
        except Exception as error:  # a peer that fails here gets a row
            results.append(dict(label=label, error=f"{type(error).__name__}: {error}"[:90]))
            traceback.print_exc(limit=1)
        finally:
            build = step = held = None
            gc.collect()
    return results


def format_table(results, n):
    lines = [
        f"Adam(W) step on one tensor of {n:,} params (int8 blocks of {quantization.QBLOCK})",
        f"{'implementation':38s} {'ms/step':>9s} {'Mparam/s':>9s} "
        f"{'state B/param':>14s} {'moved B/param':>14s}",
    ]
    base = next((r for r in results if r["label"] == "cyoptim float32" and "error" not in r), None)
    for r in results:
        if "error" in r:
            lines.append(f"{r['label']:38s} unavailable: {r['error']}")
            continue
        ratio = (
            f"  ({r['mparams_per_s'] / base['mparams_per_s']:.2f}x cyoptim float32)"
            if base is not None and r is not base
            else ""
        )
        lines.append(
            f"{r['label']:38s} {r['ms']:9.1f} {r['mparams_per_s']:9.0f} "
            f"{r['state_bytes']:14.2f} {r['moved']:14d}{ratio}"
        )
    return "\n".join(lines)


def main(n=1 << 26, seconds=1.0, progress=True):
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
    print(format_table(results, n))
    return results
