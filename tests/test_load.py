"""Under load: a step beside busy processes gives the same bits, and the load
benchmark reports every cell (it asserts results, never times)."""

import multiprocessing
import sys

import numpy as np
import pytest
from optim_harness import grad_sequence, large_params, threads

import cyoptim
from cyoptim import _dispatch, bench, loadbench


def run(cls, kwargs, n_threads, dtype=np.float32):
    params = large_params(dtype)
    with threads(n_threads):
        opt = cls(params, **kwargs)
        for grads in grad_sequence(params, steps=6, skip=False):
            opt.step(grads)
    return params


def test_steps_beside_a_busy_process_give_the_same_bits():
    """The work-sharing pool hands slices to whichever thread is free: the bits
    must not depend on which one ran where, with another process on the cores."""
    cases = [
        (cyoptim.Adam, dict(amsgrad=True)),
        (cyoptim.SGD, dict(momentum=0.9)),
        (cyoptim.LAMB, dict(weight_decay=0.1)),
        (cyoptim.NAdam, {}),
    ]
    expected = [run(cls, kwargs, 1) for cls, kwargs in cases]
    with loadbench.busy_processes(1):
        for _ in range(3):
            for (cls, kwargs), want in zip(cases, expected):
                got = run(cls, kwargs, 2)
                for a, b in zip(got, want):
                    np.testing.assert_array_equal(a, b)
    if sys.platform != "win32":  # POSIX threads: the pool ran
        assert _dispatch.kernels.pool_helpers() >= 1


def test_clipping_beside_a_busy_process_gives_the_same_norm():
    grads = large_params(np.float64)
    with threads(1):
        want = cyoptim.clip_grad_norm_([g.copy() for g in grads], 1.0)
    with loadbench.busy_processes(1), threads(2):
        got = cyoptim.clip_grad_norm_([g.copy() for g in grads], 1.0)
    assert got == want


def test_busy_processes_are_stopped():
    with loadbench.busy_processes(2) as procs:
        assert all(p.poll() is None for p in procs)
    assert all(p.poll() is not None for p in procs)


def test_load_table_has_every_cell():
    steppers = bench.load_steppers(["sgd", "adam"], ["10k"])
    rows = loadbench.measure_under_load(steppers, 1, seconds=0.02)
    assert [(r["optimizer"], r["layout"]) for r in rows] == [("sgd", "10k"), ("adam", "10k")]
    for r in rows:
        assert all(r[k] > 0 for k in ("idle_one", "idle", "busy_one", "busy"))
    table = loadbench.format_load_table(rows, 1, 2)
    assert "busy / 1 thread" in table and table.count("\n") == 4


def test_bench_background_load_option(capsys):
    assert (
        bench.main(
            [
                "--optimizers",
                "sgd",
                "--layouts",
                "10k",
                "--with",
                "cyoptim",
                "--seconds",
                "0.02",
                "--probe-mb",
                "8",
                "--no-progress",
                "--background-load",
                "1",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "beside 1 busy process" in out and "busy / 1 thread" in out


@pytest.mark.skipif(
    "fork" not in multiprocessing.get_all_start_methods(), reason="this platform cannot fork"
)
def test_pool_works_in_a_forked_child():
    """A child process starts with no helper threads; its steps still run (and agree)."""
    run(cyoptim.Adam, {}, 2)  # the parent's pool has started its helpers
    with multiprocessing.get_context("fork").Pool(1) as pool:
        got = pool.apply(run, (cyoptim.Adam, {}, 2))
    for a, b in zip(got, run(cyoptim.Adam, {}, 1)):
        np.testing.assert_array_equal(a, b)
