"""Tests of the demo: run_demo, run_lr_find and ``python -m cyoptim`` end to end."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import cyoptim
import cyoptim.bench
from cyoptim import __main__ as cli
from cyoptim import schedules
from cyoptim.demo import format_table, run_demo, run_lr_find

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
RESULT_KEYS = {
    "optimizer",
    "key",
    "lr",
    "final_loss",
    "test_accuracy",
    "seconds",
    "step_seconds",
    "diverged",
    "loss",
    "accuracy",
}
TIMINGS = {"seconds", "step_seconds"}


def tiny_demo(out, **options):
    """run_demo with settings small enough for a unit test."""
    settings = dict(
        optimizers=["adam", "sgd"], epochs=1, batch_size=64, out=str(out), progress=False
    )
    settings.update(options)
    return run_demo(**settings)


def numbers(doc):
    """The results of a demo run without its timings: what a seed must reproduce."""
    return [{k: v for k, v in r.items() if k not in TIMINGS} for r in doc["results"]]


def check_results_file(path, labels, epochs):
    with open(path) as f:
        doc = json.load(f)
    for key in ("dataset", "seed", "epochs", "batch_size", "simd", "threads", "model"):
        assert key in doc
    assert "skipped" not in doc
    assert doc["simd"] == cyoptim.simd_info()
    assert doc["epochs"] == epochs
    assert [r["optimizer"] for r in doc["results"]] == labels
    for r in doc["results"]:
        assert set(r) == RESULT_KEYS
        assert len(r["loss"]) == len(r["accuracy"]) == epochs
        assert r["final_loss"] == r["loss"][-1] and r["test_accuracy"] == r["accuracy"][-1]
        assert 0 < r["final_loss"] < np.log(10)  # better than chance
        assert 0.1 < r["test_accuracy"] <= 1
        assert 0 < r["step_seconds"] < r["seconds"]
        assert r["lr"] > 0 and r["diverged"] is False
    return doc


def cli_env():
    """Environment for a subprocess that imports this very cyoptim."""
    src = os.path.dirname(os.path.dirname(os.path.abspath(cyoptim.__file__)))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([src] + [p for p in [env.get("PYTHONPATH")] if p])
    return env


def run_cli(*args, cwd):
    return subprocess.run(
        [sys.executable, "-m", "cyoptim", *args],
        capture_output=True,
        text=True,
        env=cli_env(),
        cwd=cwd,
        timeout=300,
    )


# ----------------------------------------------------------------------------- run_demo
def test_run_demo_writes_results_and_prints_a_table(tmp_path, capsys):
    doc = tiny_demo(tmp_path, epochs=2)
    printed = capsys.readouterr().out
    check_results_file(tmp_path / "results.json", ["Adam", "SGD"], epochs=2)
    with open(tmp_path / "results.json") as f:
        assert json.load(f) == doc
    assert format_table(doc["results"]) in printed
    assert str(tmp_path / "results.json") in printed
    for header in ("optimizer", "lr", "final loss", "test acc", "time (s)", "in step"):
        assert header in printed


def test_demo_png_is_a_plot(tmp_path, capsys):
    pytest.importorskip("matplotlib", reason="matplotlib not installed: no demo.png to check")
    tiny_demo(tmp_path)
    png = tmp_path / "demo.png"
    assert str(png) in capsys.readouterr().out
    data = png.read_bytes()
    assert data.startswith(PNG_MAGIC)
    assert len(data) > 20_000  # two panels with curves, legend and labels


def test_demo_without_matplotlib_skips_the_png(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    tiny_demo(tmp_path)
    assert "matplotlib not installed: demo.png not written" in capsys.readouterr().out
    assert not (tmp_path / "demo.png").exists()
    assert (tmp_path / "results.json").exists()


def test_demo_without_tqdm_still_reports_progress(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm", None)
    tiny_demo(tmp_path, progress=True)
    printed = capsys.readouterr().out
    assert "Adam: loss" in printed and "SGD: loss" in printed


def test_demo_without_scikit_learn_says_so(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    doc = tiny_demo(tmp_path)
    assert "scikit-learn not installed: using a synthetic dataset" in capsys.readouterr().out
    assert doc["dataset"] == "synthetic"


def test_same_seed_same_numbers_for_any_thread_count(tmp_path):
    one = tiny_demo(tmp_path / "one", optimizers=["adam", "momentum"], epochs=2, threads=1)
    two = tiny_demo(tmp_path / "two", optimizers=["adam", "momentum"], epochs=2, threads=2)
    again = tiny_demo(tmp_path / "again", optimizers=["adam", "momentum"], epochs=2, threads=1)
    assert (one["threads"], two["threads"]) == (1, 2)
    assert numbers(one) == numbers(two) == numbers(again)
    other_seed = tiny_demo(tmp_path / "seed1", optimizers=["adam", "momentum"], epochs=2, seed=1)
    assert numbers(other_seed) != numbers(one)


def test_threads_setting_is_restored(tmp_path):
    before = cyoptim._threads.requested()
    tiny_demo(tmp_path, optimizers=["sgd"], threads=1)
    assert cyoptim._threads.requested() == before


def test_default_settings_train_every_optimizer_well(tmp_path):
    """Issue's bar: Adam >= 0.95 on digits. (The under-a-minute wall time is a
    benchmark figure, shown by the demo's own table, not a unit-test assert.)"""
    doc = run_demo(out=str(tmp_path), progress=False)
    results = {r["key"]: r for r in doc["results"]}
    if doc["dataset"] == "digits":
        assert results["adam"]["test_accuracy"] >= 0.95
    for r in doc["results"]:
        assert not r["diverged"], r["optimizer"]
        assert r["test_accuracy"] >= 0.9, r["optimizer"]


def test_bad_arguments_are_refused(tmp_path):
    with pytest.raises(ValueError, match="epochs must be a positive integer"):
        tiny_demo(tmp_path, epochs=0)
    with pytest.raises(ValueError, match="unknown schedule 'linear'"):
        tiny_demo(tmp_path, schedule="linear")
    with pytest.raises(ValueError, match="unknown optimizer"):
        tiny_demo(tmp_path, optimizers=["adamm"])


@pytest.mark.parametrize("schedule", ["cosine", "onecycle"])
def test_schedules_run(tmp_path, schedule):
    doc = tiny_demo(tmp_path, schedule=schedule, epochs=2)
    assert doc["schedule"] == schedule
    check_results_file(tmp_path / "results.json", ["Adam", "SGD"], epochs=2)


class RecordingSchedule:
    """Replaces the cyoptim.schedules classes: records its arguments and steps."""

    made = []

    def __init__(self, optimizer, **options):
        self.optimizer, self.options, self.steps = optimizer, options, 0
        RecordingSchedule.made.append(self)

    def step(self):
        self.steps += 1
        self.optimizer.param_groups[0]["lr"] *= 0.5


def test_schedule_is_built_per_optimizer_and_stepped_every_batch(tmp_path, monkeypatch):
    monkeypatch.setattr(schedules, "CosineAnnealingLR", RecordingSchedule)
    monkeypatch.setattr(schedules, "OneCycleLR", RecordingSchedule)
    monkeypatch.setattr(RecordingSchedule, "made", [])
    doc = tiny_demo(tmp_path, schedule="onecycle", epochs=2)
    steps = 2 * -(-doc["n_train"] // 64)
    made = RecordingSchedule.made
    assert [s.steps for s in made] == [steps, steps]
    assert [s.options for s in made] == [
        {"max_lr": r["lr"], "total_steps": steps, "cycle_momentum": False} for r in doc["results"]
    ]
    final_lr = made[0].optimizer.param_groups[0]["lr"]  # the schedule drove the lr
    assert final_lr == pytest.approx(doc["results"][0]["lr"] * 0.5**steps)
    monkeypatch.setattr(RecordingSchedule, "made", [])
    tiny_demo(tmp_path, schedule="cosine", optimizers=["sgd"])
    assert RecordingSchedule.made[0].options == {"T_max": -(-doc["n_train"] // 64)}


# ----------------------------------------------------------------------------- EMA
EMA_KEYS = {"ema_test_accuracy", "ema_accuracy"}


def raw_numbers(doc):
    """numbers() without the EMA's."""
    return [{k: v for k, v in r.items() if k not in EMA_KEYS} for r in numbers(doc)]


def test_ema_reports_the_averaged_weights_beside_the_raw(tmp_path, capsys):
    plain = tiny_demo(tmp_path / "plain", epochs=3)
    doc = tiny_demo(tmp_path / "ema", epochs=3, ema=0.9, progress=True)
    printed = capsys.readouterr().out
    assert doc["ema"] == 0.9 and plain["ema"] is None
    with open(tmp_path / "ema" / "results.json") as f:
        assert json.load(f) == doc
    for r in doc["results"]:
        assert set(r) == RESULT_KEYS | EMA_KEYS
        assert len(r["ema_accuracy"]) == 3 and r["ema_test_accuracy"] == r["ema_accuracy"][-1]
        assert 0.1 < r["ema_test_accuracy"] <= 1
        assert f"(EMA weights {r['ema_test_accuracy']:.3f})" in printed
    assert all(set(r) == RESULT_KEYS for r in plain["results"])
    # Averaging reads the weights, never changes the training.
    assert raw_numbers(doc) == numbers(plain)
    table = format_table(doc["results"])
    assert "EMA acc" in table.splitlines()[0] and table in printed
    assert "EMA acc" not in format_table(plain["results"])
    assert "EMA decay 0.9" in printed


def test_ema_decay_zero_is_the_raw_weights_and_one_the_first_step(tmp_path):
    follow = tiny_demo(tmp_path / "zero", epochs=3, ema=0.0)
    for r in follow["results"]:
        assert r["ema_accuracy"] == r["accuracy"]
    frozen = tiny_demo(tmp_path / "one", epochs=3, ema=1.0)
    for r in frozen["results"]:
        # the weights after the first step: the same at every epoch, far behind
        assert len(set(r["ema_accuracy"])) == 1
        assert r["ema_test_accuracy"] < r["test_accuracy"] - 0.2


def test_ema_numbers_are_the_same_for_any_thread_count(tmp_path):
    one = tiny_demo(tmp_path / "one", epochs=2, ema=0.95, threads=1)
    two = tiny_demo(tmp_path / "two", epochs=2, ema=0.95, threads=2)
    assert numbers(one) == numbers(two)


def test_weights_of_restores_the_model():
    from cyoptim.examples import MLP
    from cyoptim.examples.training import weights_of

    model = MLP(sizes=(4, 5, 3), seed=0)
    before = model.buffer.data.copy()
    other = [np.full(p.shape, 0.5, p.dtype) for p in model.params]
    with weights_of(model, other):
        assert all(np.all(p == 0.5) for p in model.params)
    np.testing.assert_array_equal(model.buffer.data, before)


@pytest.mark.parametrize("bad", [-0.1, 1.5, "0.9", True])
def test_bad_ema_is_refused(tmp_path, bad):
    with pytest.raises(ValueError, match="ema must be a decay in \\[0, 1\\]"):
        tiny_demo(tmp_path, ema=bad)


def test_cli_ema(tmp_path, capsys):
    out = tmp_path / "out"
    assert (
        cli.main(
            [
                "demo",
                "--optimizers",
                "sgd",
                "--epochs",
                "1",
                "--batch-size",
                "64",
                "--ema",
                "0.9",
                "--no-progress",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert "EMA acc" in capsys.readouterr().out
    with open(out / "results.json") as f:
        assert json.load(f)["ema"] == 0.9
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["demo", "--ema", "1.5", "--out", str(tmp_path)])
    assert exit_info.value.code == 2
    assert "argument --ema: expected a number in [0, 1], got '1.5'" in capsys.readouterr().err


# ----------------------------------------------------------------------------- lr-find
class FakeFinderResult:
    def __init__(self, lrs, losses):
        self.lrs, self.losses = lrs, losses
        self.suggestion = lrs[int(np.argmin(np.gradient(losses)))]
        self.valley = None

    def plot(self, ax):
        ax.plot(self.lrs, self.losses)


class FakeLRFinder:
    """Stands in for cyoptim.LRFinder: an exponential lr sweep over loss_and_grads()."""

    def __init__(self, optimizer, loss_and_grads):
        self.optimizer, self.loss_and_grads = optimizer, loss_and_grads

    def run(self, start_lr, end_lr, num_iter):
        lrs = list(np.geomspace(start_lr, end_lr, num_iter))
        losses = []
        for lr in lrs:
            self.optimizer.param_groups[0]["lr"] = lr
            loss, grads = self.loss_and_grads()
            losses.append(loss)
            self.optimizer.step(grads)
        return FakeFinderResult(lrs, losses)


def test_lr_find_feeds_the_finder_and_marks_its_suggestion(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(cyoptim, "LRFinder", FakeLRFinder)
    result = run_lr_find("adam", out=str(tmp_path), start_lr=1e-5, end_lr=1.0, num_iter=30)
    printed = capsys.readouterr().out
    assert len(result.losses) == 30 and np.isfinite(result.losses[0])
    assert result.losses[0] > min(result.losses)  # the minibatches train the MLP
    assert f"suggested learning rate {result.suggestion:.3g}" in printed
    pytest.importorskip("matplotlib", reason="matplotlib not installed: no lr_find.png")
    assert (tmp_path / "lr_find.png").read_bytes().startswith(PNG_MAGIC)


def test_lr_find_with_cyoptim_lr_finder(tmp_path, capsys):
    result = run_lr_find("sgd", out=str(tmp_path), num_iter=40)
    assert isinstance(result, cyoptim.lr_finder.LRFinderResult)
    assert 1e-6 <= result.suggestion <= 10
    printed = capsys.readouterr().out
    assert f"SGD: suggested learning rate {result.suggestion:.3g}" in printed
    if result.valley is not None:
        assert f"valley {result.valley:.3g}" in printed
    pytest.importorskip("matplotlib", reason="matplotlib not installed: no lr_find.png")
    data = (tmp_path / "lr_find.png").read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 10_000


# ----------------------------------------------------------------------------- CLI
def test_cli_demo_end_to_end(tmp_path):
    out = tmp_path / "out"
    proc = run_cli(
        "demo",
        "--optimizers",
        "adam,sgd",
        "--epochs",
        "2",
        "--batch-size",
        "64",
        "--threads",
        "2",
        "--out",
        str(out),
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert f"results: {out / 'results.json'}" in proc.stdout
    doc = check_results_file(out / "results.json", ["Adam", "SGD"], epochs=2)
    assert doc["threads"] == 2
    # The same seed in this process, on one thread, gives the same numbers.
    here = tiny_demo(tmp_path / "here", epochs=2, threads=1)
    assert numbers(here) == numbers(doc)


def test_cli_refuses_bad_arguments(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["demo", "--optimizers", "adam,adamz", "--out", str(tmp_path)])
    assert exit_info.value.code == 2
    assert "unknown optimizer(s) adamz" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["lr-find", "--start-lr", "1", "--end-lr", "0.1", "--out", str(tmp_path)])
    assert exit_info.value.code == 2
    assert "needs 0 < --start-lr < --end-lr" in capsys.readouterr().err


def test_cli_bench_hands_its_arguments_to_cyoptim_bench(monkeypatch):
    calls = []
    monkeypatch.setattr(cyoptim.bench, "main", lambda argv: calls.append(argv) or 3)
    assert cli.main(["bench", "--help", "--sizes", "10"]) == 3
    assert calls == [["--help", "--sizes", "10"]]


def test_cli_bench_does_not_import_the_demo(tmp_path):
    code = (
        "import contextlib, io, sys, cyoptim.__main__ as cli\n"
        "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
        "    cli.main(['bench', '--help'])\n"
        "print(sorted(m for m in sys.modules if m.startswith('cyoptim.')))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=cli_env(),
        cwd=tmp_path,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    loaded = proc.stdout.strip().splitlines()[-1]
    assert "'cyoptim.bench'" in loaded
    assert "cyoptim.demo" not in loaded and "cyoptim.examples" not in loaded
