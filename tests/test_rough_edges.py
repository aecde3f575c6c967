"""The everyday rough edges of a fresh clone (issue 13, item 4).

Bad command-line values are usage errors (exit status 2, no traceback) found
before any work starts; the bench reports progress, skipped peers and
implausible bandwidth figures; lr-find warns about too short a test; the demo
says loudly when its data set is synthetic.
"""

import os
import subprocess
import sys

import numpy as np
import pytest

import cyoptim
from cyoptim import __main__ as cli
from cyoptim import bench, demo
from cyoptim.examples.optimizers import BY_KEY


def cli_env(**extra):
    """Environment for a subprocess that imports this very cyoptim."""
    src = os.path.dirname(os.path.dirname(os.path.abspath(cyoptim.__file__)))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([src] + [p for p in [env.get("PYTHONPATH")] if p])
    env.update(extra)
    return env


def run_cli(*args, cwd, **env):
    return subprocess.run(
        [sys.executable, "-m", "cyoptim", *args],
        capture_output=True,
        text=True,
        env=cli_env(**env),
        cwd=cwd,
        timeout=300,
    )


def assert_usage_error(proc, *phrases):
    """Exit status 2, argparse's usage line, the phrases on stderr, no traceback."""
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert "usage:" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    for phrase in phrases:
        assert phrase in proc.stderr, proc.stderr


def usage_error(main, argv, capsys):
    """Run a command's main in this process; returns stderr of its usage error (exit 2)."""
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "usage:" in err
    return err


# ----------------------------------------------------------------- cyoptim.reference
def test_reference_after_import_cyoptim(tmp_path):
    """The README lists cyoptim.reference: it must work after a plain `import cyoptim`."""
    code = "import cyoptim\nprint(cyoptim.reference.Adam.__name__)\n"
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=cli_env(),
        cwd=tmp_path,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "Adam"


# ----------------------------------------------------------------- demo / lr-find --out
def test_demo_out_naming_a_file_is_a_usage_error_before_training(tmp_path):
    taken = tmp_path / "taken"
    taken.write_text("not a folder")
    proc = run_cli(
        "demo",
        "--optimizers",
        "sgd",
        "--epochs",
        "1",
        "--no-progress",
        "--out",
        str(taken),
        cwd=tmp_path,
    )
    assert_usage_error(proc, "argument --out", "is an existing file, not a folder")
    assert "optimizer" not in proc.stdout  # no table: nothing was trained
    assert taken.read_text() == "not a folder"


def test_lr_find_out_below_a_file_is_a_usage_error(tmp_path):
    taken = tmp_path / "taken"
    taken.write_text("")
    proc = run_cli("lr-find", "--num-iter", "60", "--out", str(taken / "sub"), cwd=tmp_path)
    assert_usage_error(proc, "argument --out", "cannot create the output folder")
    assert "suggested learning rate" not in proc.stdout


def test_out_with_an_output_name_taken_by_a_folder(tmp_path, capsys):
    (tmp_path / "results.json").mkdir()
    err = usage_error(cli.main, ["demo", "--out", str(tmp_path)], capsys)
    assert "results.json" in err and "a folder of that name is in the way" in err
    (tmp_path / "lr_find.png").mkdir()
    err = usage_error(cli.main, ["lr-find", "--out", str(tmp_path)], capsys)
    assert "lr_find.png" in err


def test_run_demo_checks_out_before_training(tmp_path, monkeypatch):
    def no_training(*args, **kwargs):
        raise AssertionError("trained although --out cannot be written")

    monkeypatch.setattr(demo, "train", no_training)
    taken = tmp_path / "taken"
    taken.write_text("")
    with pytest.raises(ValueError, match="is an existing file, not a folder"):
        demo.run_demo(["sgd"], epochs=1, out=str(taken), progress=False)
    with pytest.raises(ValueError, match="is an existing file, not a folder"):
        demo.run_lr_find("sgd", out=str(taken), num_iter=60)


def test_out_is_created_when_missing(tmp_path):
    out = tmp_path / "a" / "b"
    demo.check_output_dir(str(out), demo.DEMO_FILES)
    assert out.is_dir() and list(out.iterdir()) == []


# ----------------------------------------------------------------- numeric options
def test_negative_seed_is_a_usage_error_not_a_numpy_traceback(tmp_path):
    proc = run_cli("demo", "--seed", "-5", "--out", str(tmp_path), cwd=tmp_path)
    assert_usage_error(proc, "argument --seed", "expected an integer >= 0, got '-5'")


@pytest.mark.parametrize(
    "argv, phrase",
    [
        (["demo", "--seed", "-1"], "argument --seed"),
        (["demo", "--seed", "1.5"], "argument --seed"),
        (["demo", "--epochs", "0"], "argument --epochs"),
        (["demo", "--batch-size", "-3"], "argument --batch-size"),
        (["demo", "--threads", "-1"], "argument --threads"),
        (["lr-find", "--seed", "-5"], "argument --seed"),
        (["lr-find", "--num-iter", "1"], "argument --num-iter"),
        (["lr-find", "--start-lr", "-1"], "argument --start-lr"),
        (["lr-find", "--start-lr", "0"], "argument --start-lr"),
        (["lr-find", "--end-lr", "inf"], "argument --end-lr"),
        (["lr-find", "--end-lr", "nan"], "argument --end-lr"),
        (["lr-find", "--start-lr", "1", "--end-lr", "0.1"], "0 < --start-lr < --end-lr"),
    ],
)
def test_nonsense_numbers_are_usage_errors(argv, phrase, tmp_path, capsys):
    err = usage_error(cli.main, argv + ["--out", str(tmp_path)], capsys)
    assert phrase in err
    assert f"python -m cyoptim {argv[0]}" in err  # the subcommand's own usage
    assert list(tmp_path.iterdir()) == []


def test_run_demo_refuses_a_negative_seed(tmp_path):
    with pytest.raises(ValueError, match="seed must be an integer >= 0, got -5"):
        demo.run_demo(["sgd"], epochs=1, seed=-5, out=str(tmp_path), progress=False)


# ----------------------------------------------------------------- lr-find
def test_lr_find_warns_when_num_iter_is_too_small(tmp_path):
    proc = run_cli(
        "lr-find", "--optimizer", "sgd", "--num-iter", "12", "--out", str(tmp_path), cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    assert "warning: --num-iter 12 is too few for a meaningful suggestion" in proc.stderr
    assert "use --num-iter 60 or more" in proc.stderr
    assert "suggested learning rate" in proc.stdout  # it still runs


def test_lr_find_does_not_warn_with_enough_steps(tmp_path, capsys):
    demo.run_lr_find("sgd", out=str(tmp_path), num_iter=cyoptim.lr_finder.min_meaningful_iters())
    captured = capsys.readouterr()
    assert "warning" not in captured.err and "suggested learning rate" in captured.out


def test_min_meaningful_iters_follows_the_smoothing():
    from cyoptim.lr_finder import SKIP_END, min_meaningful_iters

    assert min_meaningful_iters() == 60  # 3 spans of 1 / 0.05
    assert min_meaningful_iters(0.1) == 30
    n = min_meaningful_iters(0.0)  # no smoothing: the skips alone
    assert n - n // 10 - SKIP_END >= 2


def _help(argv, columns):
    proc = run_cli(*argv, "--help", cwd=None, COLUMNS=str(columns))
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.mark.parametrize("command", ["demo", "lr-find", "bench"])
def test_help_does_not_split_words(command):
    """Every word of the help wrapped narrow is a word of the help unwrapped."""
    words = set(_help([command], 1000).split())
    for columns in (40, 61, 80):
        narrow = _help([command], columns)
        assert set(narrow.split()) <= words, (
            f"COLUMNS={columns}: split words {set(narrow.split()) - words}"
        )
    if command == "lr-find":
        text = " ".join(_help([command], 61).split())
        assert ", ".join(BY_KEY) in text


# ----------------------------------------------------------------- synthetic data
def test_synthetic_data_is_in_the_table_title(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    doc = demo.run_demo(["sgd"], epochs=1, batch_size=64, out=str(tmp_path), progress=False)
    lines = capsys.readouterr().out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("optimizer"))
    title = "\n".join(lines[header - 2 : header])
    assert doc["dataset"] == "synthetic"
    assert "*** SYNTHETIC DATA, NOT THE 8x8 DIGITS" in title
    assert "pip install scikit-learn" in title


def test_digits_title_does_not_cry_synthetic():
    doc = {
        "dataset": "digits",
        "model": {"sizes": [64, 128, 64, 10]},
        "n_train": 1438,
        "n_test": 359,
        "epochs": 1,
        "batch_size": 32,
        "seed": 0,
    }
    title = demo.table_title(doc)
    assert title.startswith("8x8 digits") and "SYNTHETIC" not in title
    assert "1 epoch," in title
    table = demo.format_table([], title=title)
    assert table.splitlines()[0] == title and table.splitlines()[1].startswith("optimizer")


# ----------------------------------------------------------------- bench arguments
@pytest.mark.parametrize(
    "argv, phrase",
    [
        (["--seconds", "-1"], "argument --seconds"),
        (["--seconds", "0"], "argument --seconds"),
        (["--seconds", "nan"], "argument --seconds"),
        (["--probe-mb", "0"], "argument --probe-mb"),
        (["--probe-mb", "1.5"], "argument --probe-mb"),
        (["--probe-mb", "100000000"], "more than half of this machine's"),
        (["--threads", "-2"], "argument --threads"),
        (["--optimizers", "adamm"], "unknown optimizer: adamm"),
        (["--optimizers", ","], "unknown optimizer"),
        (["--layouts", "3M"], "unknown layout: 3m"),
        (["--with", "tensorflow"], "unknown implementation: tensorflow"),
        (["--dtype", "float16"], "argument --dtype"),
    ],
)
def test_bench_nonsense_is_a_usage_error(argv, phrase, capsys):
    err = usage_error(bench.main, argv, capsys)
    assert phrase in err and "python -m cyoptim bench" in err


def test_bench_usage_error_exit_status_from_the_command_line(tmp_path):
    proc = run_cli("bench", "--seconds", "-1", cwd=tmp_path)
    assert_usage_error(proc, "argument --seconds")
    proc = run_cli("bench", "--probe-mb", "0", cwd=tmp_path)
    assert_usage_error(proc, "argument --probe-mb")


def test_bench_help_prints_defaults():
    text = " ".join(_help(["bench"], 100).split())
    for default in (
        "(default: 0.2)",
        "(default: 768)",
        "(default: adam,sgd)",
        "(default: float32)",
        "(default: OpenMP's maximum",
    ):
        assert default in text


def test_bench_accepts_the_demo_names():
    assert bench.optimizer_spec("momentum") == bench.OPTIMIZERS["sgd"]
    name, kwargs, torch_name, fused, _ = bench.optimizer_spec("nesterov")
    assert (name, torch_name, fused) == ("SGD", "SGD", True)
    assert kwargs == {**bench.OPTIMIZERS["sgd"][1], "nesterov": True}
    for key in BY_KEY:  # every name the demo takes
        assert key in bench.OPTIMIZERS or key in bench.DEMO_ALIASES
    bench.make_stepper("cyoptim", "nesterov", "10k")()
    bench.make_stepper("numpy", "nesterov", "10k")()


def test_bench_shows_progress_skipped_peers_and_the_demo_names(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "deepspeed", None)  # as if not installed
    monkeypatch.setitem(sys.modules, "torch", None)
    assert (
        bench.main(
            [
                "--optimizers",
                "Momentum,nesterov",
                "--layouts",
                "10k",
                "--seconds",
                "0.01",
                "--probe-mb",
                "8",
            ]
        )
        == 0
    )
    out, err = capsys.readouterr()
    assert "[1/2] measuring momentum 10k" in err and "[2/2] measuring nesterov 10k" in err
    assert "skipped torch-fused: torch not installed (pip install torch)" in out
    assert "skipped torch-default: torch not installed" in out
    assert "skipped deepspeed: deepspeed not installed" in out
    rows = [line.split() for line in out.splitlines() if line.startswith(("momentum", "nes"))]
    assert [r[:2] for r in rows] == [["momentum", "10k"], ["nesterov", "10k"]]
    assert all(float(r[2].replace(",", "")) > 0 for r in rows)


def test_bench_no_progress(capsys):
    bench.main(
        [
            "--optimizers",
            "sgd",
            "--layouts",
            "10k",
            "--with",
            "cyoptim",
            "--seconds",
            "0.01",
            "--probe-mb",
            "8",
            "--no-progress",
        ]
    )
    assert capsys.readouterr().err == ""


# ----------------------------------------------------------------- bandwidth plausibility
def _row(optimizer, layout, mparams):
    n = sum(bench.LAYOUTS[layout][0])
    return {
        "optimizer": optimizer,
        "layout": layout,
        "params": n,
        "bytes_per_param": bench.bytes_per_param(optimizer, np.float32),
        "cyoptim": mparams,
    }


MiB = 2**20


def test_implausibly_low_probe_is_flagged():
    warnings = bench.bandwidth_warnings(2.3, [], 768, 32 * MiB)
    assert len(warnings) == 1 and "only 2.3 GB/s" in warnings[0]
    assert bench.bandwidth_warnings(50.0, [], 768, 32 * MiB) == []


def test_cell_beyond_the_probe_out_of_cache_is_flagged():
    # the case: 2.3 GB/s probe, an out-of-cache Adam step at "1601%"
    big = _row("adam", "16M", 2.3 * 16.01 * 1e3 / 28)
    warnings = bench.bandwidth_warnings(2.3, [big], 768, 32 * MiB)
    assert any("adam 16M" in w and "1601%" in w for w in warnings)
    in_cache = _row("adam", "1M", 2.3 * 3 * 1e3 / 28)  # 300%, but 28 MB < 32 MiB
    assert not any(
        "adam 1M" in w for w in bench.bandwidth_warnings(2.3, [in_cache], 768, 32 * MiB)
    )
    plausible = _row("adam", "16M", 50.0 * 0.8 * 1e3 / 28)  # 80%
    assert bench.bandwidth_warnings(50.0, [plausible], 768, 32 * MiB) == []
    assert bench.bandwidth_warnings(50.0, [big], 768, None) == []  # cache unknown


def test_probe_smaller_than_the_cache_is_flagged():
    warnings = bench.bandwidth_warnings(90.0, [], 16, 32 * MiB)
    assert len(warnings) == 1 and "fit in the 32 MiB last-level cache" in warnings[0]


def test_bench_prints_the_warnings(capsys, monkeypatch):
    monkeypatch.setattr(bench, "bandwidth_probe", lambda megabytes: 2.3)
    bench.main(
        [
            "--optimizers",
            "sgd",
            "--layouts",
            "10k",
            "--with",
            "cyoptim",
            "--seconds",
            "0.01",
            "--no-progress",
        ]
    )
    out = capsys.readouterr().out
    assert "warning: the bandwidth probe read only 2.3 GB/s" in out


def test_last_level_cache_size_is_sane():
    size = bench.last_level_cache_bytes()
    assert size is None or 64 * 1024 <= size <= 2**40


# ----------------------------------------------------------------- docs cite real files
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = ["README.md", "docs/demo.md", "docs/schedules.md"]
SOURCE_SUFFIXES = (".md", ".py", ".pxi", ".pyx", ".toml")
TOP_FOLDERS = (".ci/", "docs/", "tools/", "tests/", "benchmarks/", "src/", "pyx/")


def _repo_files():
    files = set()
    for root, dirs, names in os.walk(REPO):
        dirs[:] = [d for d in dirs if d not in (".git", "build", "__pycache__")]
        files.update(os.path.relpath(os.path.join(root, n), REPO) for n in names)
    return files


def cited_files(text):
    """Repository files a document names: link targets, paths under the top folders,
    and source-file names in inline code (``common.pxi``: found anywhere)."""
    import re

    paths = {t for t in re.findall(r"\]\(([^)#\s]+)\)", text) if "://" not in t}
    for token in re.findall(r"[\w./+-]+", text):
        if token.startswith(TOP_FOLDERS) and not token.endswith("/"):
            paths.add(token.rstrip("."))
    for code in re.findall(r"`([^`\s]+)`", text):
        if "/" in code and code.endswith(SOURCE_SUFFIXES) and not code.startswith("."):
            paths.add(code)
    # a file name, not a pattern such as `_kernels_<variant>.pyx` or a bare `.pxi`
    names = {c for c in re.findall(r"`([\w+-]+\.\w+)`", text) if c.endswith(SOURCE_SUFFIXES)}
    return paths, names


@pytest.mark.parametrize("doc", DOCS)
def test_docs_cite_only_files_that_exist(doc):
    path = os.path.join(REPO, doc)
    if not os.path.exists(os.path.join(REPO, "README.md")):
        pytest.skip("the documents are not beside the tests (tests run outside the repository)")
    files = _repo_files()
    basenames = {os.path.basename(f) for f in files}
    with open(path) as f:
        paths, names = cited_files(f.read())
    folder = os.path.dirname(doc)
    missing = sorted(
        p
        for p in paths
        if os.path.normpath(os.path.join(folder, p)) not in files
        and os.path.normpath(p) not in files
    )
    missing += sorted(n for n in names if n not in basenames)
    assert not missing, f"{doc} cites files that do not exist: {missing}"


def test_install_commands_work_from_a_clone():
    """No `pip install cyoptim...` (not on PyPI): from a clone it is `pip install .`."""
    import re

    for doc in DOCS:
        path = os.path.join(REPO, doc)
        if not os.path.exists(path):
            pytest.skip("the documents are not beside the tests")
        with open(path) as f:
            commands = re.findall(r"pip install ([^\s&#]+)", f.read())
        for target in commands:
            target = target.strip("\"'")
            target = target if target == "." else target.rstrip(")`.,;")  # prose punctuation
            assert target.startswith(".") or target.split("=")[0].split("[")[0] in (
                "torch",
                "scikit-learn",
                "matplotlib",
                "tqdm",
                "threadpoolctl",
            ), f"{doc}: `pip install {target}` does not work from a clone"
