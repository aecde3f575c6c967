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
