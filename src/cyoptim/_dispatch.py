"""Choose the SIMD variant of the kernels at import.

setup.py builds the same kernel source for several targets as
cyoptim._kernels_<variant>. The best variant that is both built and supported
by this CPU is used, unless the environment variable CYOPTIM_SIMD names one.
"""

import contextlib
import importlib
import importlib.util
import os
from typing import Any

from ._cpu import cpu_supports, openmp_enabled

VARIANTS = ("avx512", "avx2", "baseline")  # best first

kernels: Any = None  # the kernel module in use, set by _select() below
variant = None


class SimdInfo(str):
    """The name of the variant in use ("avx512", "avx2" or "baseline").

    Also carries ``available`` (variants built into this install that this CPU
    runs, best first), ``built`` and ``cpu`` (what the CPU supports), and
    ``openmp`` (whether the kernels were compiled with OpenMP). Indexing with
    those names works too: ``simd_info()["available"]``.
    """

    _fields = ("variant", "available", "built", "cpu", "openmp")

    def __new__(cls, name, available, built, cpu, openmp):
        self = super().__new__(cls, name)
        self.variant, self.available, self.built = name, available, built
        self.cpu, self.openmp = cpu, openmp
        return self

    def __getitem__(self, key):
        if isinstance(key, str):
            if key not in self._fields:
                raise KeyError(key)
            return getattr(self, key)
        return super().__getitem__(key)


def built_variants():
    return [v for v in VARIANTS if importlib.util.find_spec(f"cyoptim._kernels_{v}") is not None]


def available_variants():
    cpu = cpu_supports()
    return [v for v in built_variants() if v in cpu]


def _load(name):
    if name not in VARIANTS:
        raise ValueError(f"unknown SIMD variant {name!r}; choose from {list(VARIANTS)}")
    if name not in cpu_supports():
        raise RuntimeError(
            f"SIMD variant {name!r} is not supported by this CPU (supported: {cpu_supports()})"
        )
    if name not in built_variants():
        raise RuntimeError(
            f"SIMD variant {name!r} is not built into this install (built: {built_variants()})"
        )
    return importlib.import_module(f"cyoptim._kernels_{name}")


def _select():
    global kernels, variant
    forced = os.environ.get("CYOPTIM_SIMD", "").strip().lower()
    name = forced or available_variants()[0]
    try:
        kernels = _load(name)
    except (ValueError, RuntimeError) as exc:
        raise ImportError(f"CYOPTIM_SIMD={forced}: {exc}") from None
    variant = name


@contextlib.contextmanager
def use_variant(name):
    """Make optimizers created inside the block use one variant (for tests and benchmarks)."""
    global kernels, variant
    saved = kernels, variant
    kernels, variant = _load(name), name
    try:
        yield kernels
    finally:
        kernels, variant = saved


def simd_info():
    """The kernel variant in use; see SimdInfo for what else it reports."""
    return SimdInfo(
        variant, available_variants(), built_variants(), cpu_supports(), openmp_enabled()
    )


_select()
