"""The installed build: OpenMP, SIMD variants, threads."""

import os
import subprocess
import sys

import numpy as np
import pytest

import cyoptim
from cyoptim import _cpu, _dispatch


def test_openmp_is_compiled_in():
    """A release build must not silently lose OpenMP.

    Skipped only when CYOPTIM_ALLOW_SERIAL=1 says a serial build is intended.
    """
    if os.environ.get("CYOPTIM_ALLOW_SERIAL") == "1":
        pytest.skip("CYOPTIM_ALLOW_SERIAL=1: serial build accepted")
    threadpoolctl = pytest.importorskip("threadpoolctl")
    assert cyoptim.simd_info().openmp
    pools = threadpoolctl.threadpool_info()
    assert any(p["user_api"] == "openmp" for p in pools), pools


def test_threadpoolctl_limits_are_honoured():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    if not cyoptim.simd_info().openmp:
        pytest.skip("serial build")
    with threadpoolctl.threadpool_limits(1, user_api="openmp"):
        assert cyoptim.get_num_threads() == 1


def test_set_num_threads():
    saved = cyoptim._threads.requested()
    try:
        cyoptim.set_num_threads(3)
        assert cyoptim.get_num_threads() == 3
        cyoptim.set_num_threads(None)
        assert cyoptim.get_num_threads() == _cpu.omp_max_threads()
        for bad in (-1, 1.5, "2", True):
            with pytest.raises(ValueError, match="non-negative integer"):
                cyoptim.set_num_threads(bad)
    finally:
        cyoptim.set_num_threads(saved)


def test_small_steps_run_on_one_thread():
    k = _dispatch.kernels
    assert k.effective_threads(10_000, 8) == 1
    assert k.effective_threads(10_000_000, 2) == 2
    assert k.effective_threads(10_000_000, 0) == min(_cpu.omp_max_threads(), 10_000_000)


def test_simd_info_reports_variant_in_use_and_available():
    info = cyoptim.simd_info()
    assert info in _dispatch.VARIANTS
    assert info == info["variant"] == info.variant
    assert info["available"][0] == info or os.environ.get("CYOPTIM_SIMD")
    assert "baseline" in info.available and set(info.available) <= set(info.built)
    assert set(info.available) <= set(info.cpu)
    # Every variant setup.py compiled is importable (an x86-64 wheel: all three).
    assert set(info.built) == set(_cpu.intended_variants())


def run_python(code, **env):
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=dict(os.environ, **env),
        timeout=120,
    )


def test_cyoptim_simd_forces_a_variant():
    out = run_python("import cyoptim; print(cyoptim.simd_info())", CYOPTIM_SIMD="baseline")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "baseline"


@pytest.mark.parametrize(
    "value,message",
    [("sse9", "unknown SIMD variant 'sse9'")]
    + [
        (v, "not supported by this CPU")
        for v in _dispatch.VARIANTS
        if v not in _cpu.cpu_supports()
    ],
)
def test_cyoptim_simd_unsupported_request_is_a_clear_error(value, message):
    out = run_python("import cyoptim", CYOPTIM_SIMD=value)
    assert out.returncode != 0
    assert f"CYOPTIM_SIMD={value}" in out.stderr and message in out.stderr


@pytest.mark.parametrize("variant", _dispatch.available_variants())
def test_every_variant_computes_the_same_bits(variant, dtype):
    """-ffp-contract=off: each variant does the same IEEE operations."""
    results = []
    for name in ("baseline", variant):
        p = np.linspace(-1, 1, 100_003).astype(dtype)
        with _dispatch.use_variant(name):
            opt = cyoptim.Adam([p], lr=1e-2, weight_decay=0.1)
        for t in range(3):
            opt.step([np.cos(p * (t + 1)).astype(dtype)])
        results.append(p)
    np.testing.assert_array_equal(results[0], results[1])
