"""The benchmark command runs end to end and reports what it measured."""

import subprocess
import sys

import numpy as np
import pytest

from cyoptim import bench


def test_steppers_step_their_implementation():
    for implementation in ("cyoptim", "numpy"):
        step = bench.make_stepper(implementation, "adam", "10k")
        step()
    assert bench.make_stepper("torch-fused", "lion", "10k") is None  # torch has no Lion
    assert bench.make_stepper("deepspeed", "sgd", "10k") is None  # DeepSpeed: Adam only


def test_steppers_really_update_params():
    params, grads = bench._arrays([1000, 7], True, np.float32, 0)
    assert not np.shares_memory(params[0], grads[0]) and params[0].dtype == np.float32
    step = bench.make_stepper("cyoptim", "sgd", "500x2k-buffer")
    step()


def test_table_lists_speedups_and_bandwidth_share():
    rows = [
        {
            "optimizer": "adam",
            "layout": "1M",
            "params": 10**6,
            "bytes_per_param": 28,
            "cyoptim": 2000.0,
            "numpy": 400.0,
            "torch-fused": None,
        }
    ]
    table = bench.format_table(rows, ["cyoptim", "numpy", "torch-fused"], bandwidth=56.0)
    header, rule, line = table.splitlines()
    assert "vs numpy" in header and "of limit" in header
    assert "5.0x" in line and "56.0" in line and "100%" in line and " - " in line


def test_bench_command_prints_the_table():
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "cyoptim",
            "bench",
            "--optimizers",
            "sgd,lion",
            "--layouts",
            "10k,500x2k-buffer",
            "--with",
            "cyoptim,numpy",
            "--seconds",
            "0.02",
            "--probe-mb",
            "16",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert "memory bandwidth probe" in lines[1]
    rows = [line.split() for line in lines if line.startswith(("sgd", "lion"))]
    assert [(r[0], r[1]) for r in rows] == [
        ("sgd", "10k"),
        ("sgd", "500x2k-buffer"),
        ("lion", "10k"),
        ("lion", "500x2k-buffer"),
    ]
    for r in rows:
        assert float(r[2].replace(",", "")) > 0 and r[4].endswith("x")


def test_bench_command_refuses_unknown_names(capsys):
    with pytest.raises(SystemExit) as exit_info:
        bench.main(["--optimizers", "adamm"])
    assert exit_info.value.code == 2  # a usage error, like the other commands
    assert "unknown optimizer: adamm" in capsys.readouterr().err


# ----------------------------------------------------------------- bench --precision
from cyoptim import bench_precision  # noqa: E402


def _precision_result(label="cyoptim float32", moved=28, mparams=1000.0, ns=0.5, rounds=None):
    return dict(
        label=label,
        moved=moved,
        state_bytes=8.0,
        mparams_per_s=mparams,
        rounds=rounds or [mparams] * 3,
        ms=1.0,
        ns_per_param_core=ns,
    )


def test_precision_rows_measure_every_column():
    """A real (small) run of two cyoptim modes: every column measured and positive."""
    results = bench_precision.measure(
        n=20_000,
        min_seconds=0.05,
        repeats=3,
        labels={"cyoptim float32", "cyoptim fp32 params + int8 states"},
        progress=lambda text: None,
        in_cache=8192,
    )
    assert [r["label"] for r in results] == [
        "cyoptim float32",
        "cyoptim fp32 params + int8 states",
    ]
    for r in results:
        assert "error" not in r
        assert r["mparams_per_s"] > 0 and r["ns_per_param_core"] > 0 and len(r["rounds"]) == 3
    assert results[0]["moved"] == 28 and results[1]["moved"] == 16
    assert results[1]["state_bytes"] < results[0]["state_bytes"]
    table = bench_precision.format_table(results, 20_000, probe_gbs=1e6, project=(64, 300.0))
    assert "bound above" in table and "projection for 64 cores and 300 GB/s" in table


def test_precision_derived_columns_follow_the_formula():
    r = _precision_result(moved=28, mparams=2000.0, ns=0.5)
    gbs, bound = bench_precision.derived(r)
    assert gbs == pytest.approx(56.0)  # 2e9 params/s * 28 B
    assert bound == pytest.approx(56.0)  # 28 B per 0.5 ns
    # 64 cores: compute 128 Gparam/s; 300 GB/s: 10.7 Gparam/s -> memory-bound.
    value, kind = bench_precision.projection(r, 64, 300.0)
    assert kind == "memory" and value == pytest.approx(300e3 / 28)
    # 2 cores at 2 ns per param: 1 Gparam/s, below 300 GB/s / 28 B -> compute-bound.
    value, kind = bench_precision.projection(_precision_result(ns=2.0), 2, 300.0)
    assert kind == "compute" and value == pytest.approx(1000.0)


def test_precision_implausible_cells_are_flagged():
    steady = _precision_result(mparams=1000.0)  # 28 GB/s
    assert bench_precision.flags(steady, probe_gbs=50.0) == []
    above = bench_precision.flags(_precision_result(mparams=3000.0), probe_gbs=50.0)
    assert len(above) == 1 and above[0].startswith("above probe")
    unsteady = bench_precision.flags(
        _precision_result(mparams=900.0, rounds=[1.0, 900.0, 950.0]), probe_gbs=50.0
    )
    assert len(unsteady) == 1 and unsteady[0].startswith("unsteady")
    table = bench_precision.format_table(
        [_precision_result(mparams=3000.0), dict(label="torchao AdamW8bit", error="missing")],
        1 << 20,
        probe_gbs=50.0,
    )
    assert "! above probe" in table and "unavailable: missing" in table


def test_bench_precision_command_line(capsys):
    assert (
        bench.main(
            [
                "--precision",
                "--params",
                "8192",
                "--seconds",
                "0.5",
                "--probe-mb",
                "64",
                "--project",
                "8,100",
                "--no-progress",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "cyoptim fp32 params + int8 states" in out and "memory probe:" in out
    assert "projection for 8 cores and 100 GB/s" in out
    with pytest.raises(SystemExit):
        bench.main(["--precision", "--project", "0,100"])
