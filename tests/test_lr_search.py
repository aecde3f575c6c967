"""cyoptim.lr_search and ``python -m cyoptim lr-search``: the plan, early stopping,
resuming from the results file, refusals, the table and plot, the command end to end."""

import contextlib
import doctest
import io
import json
import math

import numpy as np
import pytest
from test_demo import PNG_MAGIC, run_cli

import cyoptim
from cyoptim import __main__ as cli
from cyoptim import demo
from cyoptim.examples import load_digits_dataset
from cyoptim.search import ResultsFileError, Trial, lr_plan


def numbers(result):
    """A search's trials without their timings: what a seed must reproduce."""
    return [{k: v for k, v in t.to_dict().items() if k != "seconds"} for t in result.trials]


class Quadratic:
    """A least-squares problem trained by SGD, one full-batch step per epoch.

    ``train_fn(lr)`` is a generator that starts from the current ``w`` (the
    search resets it), yields ``(val_loss, val_accuracy)`` per epoch and
    records what it saw: the starting weights, the epochs trained, whether
    the search closed it.
    """

    def __init__(self, seed=0, epochs=30):
        rng = np.random.default_rng(seed)
        self.X, self.Xv = rng.standard_normal((64, 4)), rng.standard_normal((32, 4))
        true = rng.standard_normal(4)
        self.y = self.X @ true + 0.3 * rng.standard_normal(64)
        self.yv = self.Xv @ true + 0.3 * rng.standard_normal(32)
        self.w = rng.standard_normal(4)  # the model: reset by the search
        self.epochs = epochs
        self.calls, self.starts, self.trained, self.closed = [], [], [], []

    def train_fn(self, lr):
        self.calls.append(lr)
        self.starts.append(self.w.copy())
        opt = cyoptim.SGD([self.w], lr=lr)
        trained = 0
        try:
            for _ in range(self.epochs):
                r = self.X @ self.w - self.y
                opt.step([2 / len(r) * self.X.T @ r])
                trained += 1
                rv = self.Xv @ self.w - self.yv
                yield float(rv @ rv / len(rv)), float(np.mean(np.abs(rv) < 0.5))
        finally:
            self.trained.append(trained)
            self.closed.append(True)


def scripted(losses_by_lr):
    """A train_fn that yields fixed validation losses (accuracy 1 - loss) for each lr."""

    def train_fn(lr):
        for loss in losses_by_lr[lr]:
            yield loss, 1.0 - loss

    return train_fn


# ----------------------------------------------------------------------------- the plan
def test_random_mode_is_reproducible_from_its_seed():
    runs = []
    for seed in (3, 3, 4):
        problem = Quadratic()
        runs.append(
            cyoptim.lr_search(
                problem.train_fn,
                mode="random",
                trials=6,
                seed=seed,
                lr_range=(1e-3, 0.5),
                params=[problem.w],
                progress=False,
            )
        )
    assert numbers(runs[0]) == numbers(runs[1])
    assert runs[0].lrs.tolist() == lr_plan(mode="random", trials=6, seed=3, lr_range=(1e-3, 0.5))
    assert not np.array_equal(runs[0].lrs, runs[2].lrs)
    # a longer search with the same seed begins with the same rates
    assert (
        lr_plan(mode="random", trials=10, seed=3, lr_range=(1e-3, 0.5))[:6] == runs[0].lrs.tolist()
    )


def test_random_rates_are_log_uniform_in_the_range():
    lrs = np.array(lr_plan(mode="random", trials=4000, seed=0, lr_range=(1e-6, 1.0)))
    assert lrs.min() >= 1e-6 and lrs.max() <= 1.0
    per_decade = np.histogram(np.log10(lrs), bins=6, range=(-6, 0))[0] / lrs.size
    np.testing.assert_allclose(per_decade, 1 / 6, atol=0.03)  # uniform in log10(lr)
    assert np.mean(lrs < 1e-3) == pytest.approx(0.5, abs=0.03)  # not uniform in lr


def test_grid_mode_takes_the_given_rates_or_a_log_spaced_grid():
    assert lr_plan([0.3, 1e-3, 0.01]) == [0.3, 1e-3, 0.01]  # in the order given
    default = lr_plan()
    assert len(default) == 11 and default[0] == 1e-5 and default[-1] == 1.0
    np.testing.assert_allclose(np.diff(np.log10(default)), 0.5)  # every half decade
    assert lr_plan(trials=3, lr_range=(1e-4, 1e-2)) == np.geomspace(1e-4, 1e-2, 3).tolist()
    assert lr_plan(trials=4, seed=5) == lr_plan(trials=4, seed=6)  # a grid ignores seed
    problem = Quadratic()
    result = cyoptim.lr_search(
        problem.train_fn, lrs=[0.05, 1e-3, 0.2], params=[problem.w], progress=False
    )
    assert problem.calls == [0.05, 1e-3, 0.2]
    assert [t.index for t in result.trials] == [0, 1, 2]
    assert result.lrs.tolist() == [0.05, 1e-3, 0.2]


# ----------------------------------------------------------------------------- trials
def test_each_trial_is_early_stopped_on_the_validation_loss():
    nan = float("nan")
    losses = {
        0.1: [1.0, 0.8, 0.9, 0.85, 0.5],  # patience 2: stops at the 4th
        0.2: [1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4],  # max_epochs 6
        0.3: [1.0, 0.7, nan, 0.1],  # a NaN: diverged, the 4th unseen
        0.4: [0.9, 0.95],  # train_fn ends
        0.5: [math.inf],
    }  # diverged at once
    result = cyoptim.lr_search(
        scripted(losses), lrs=list(losses), patience=2, max_epochs=6, progress=False
    )
    summary = [
        (t.stopped, t.epochs, t.best_epoch, t.val_loss, t.val_accuracy) for t in result.trials
    ]
    assert summary == [
        ("patience", 4, 2, 0.8, pytest.approx(0.2)),
        ("max_epochs", 6, 6, 0.5, 0.5),
        ("diverged", 3, 2, 0.7, pytest.approx(0.3)),
        ("finished", 2, 1, 0.9, pytest.approx(0.1)),
        ("diverged", 1, None, None, None),
    ]
    assert result.trials[2].val_losses == (1.0, 0.7, None)
    assert result.best is result.trials[1]  # the lowest validation loss
    # The same decisions as cyoptim.EarlyStopping on those losses.
    stopper = cyoptim.EarlyStopping(patience=2)
    assert [stopper.step(v) for v in losses[0.1][:4]] == [False] * 3 + [True]


def test_min_delta_and_losses_without_accuracy():
    losses = [1.0, 0.95, 0.9, 0.89, 0.88, 0.87]

    def train_fn(lr):
        yield from losses  # losses only: no accuracy

    plain = cyoptim.lr_search(train_fn, lrs=[0.1], patience=1, progress=False).trials[0]
    strict = cyoptim.lr_search(
        train_fn, lrs=[0.1], patience=1, min_delta=0.02, progress=False
    ).trials[0]
    assert (plain.epochs, plain.best_epoch, plain.val_accuracy) == (6, 6, None)
    assert (strict.epochs, strict.best_epoch, strict.val_loss) == (4, 3, 0.9)


def test_the_search_stops_pulling_epochs_and_closes_the_generator():
    problem = Quadratic(epochs=1000)
    result = cyoptim.lr_search(
        problem.train_fn,
        lrs=[0.05, 0.9, 1.5],
        max_epochs=25,
        patience=2,
        params=[problem.w],
        progress=False,
    )
    # epochs trained by each generator == epochs the search recorded: none ran ahead
    assert problem.trained == [t.epochs for t in result.trials]
    assert problem.closed == [True] * 3
    assert [t.stopped for t in result.trials][0] == "max_epochs"
    assert result.trials[2].stopped in ("patience", "diverged")


def test_every_trial_starts_from_the_same_weights_and_the_params_are_restored():
    problem = Quadratic()
    initial = problem.w.copy()
    cyoptim.lr_search(
        problem.train_fn,
        mode="random",
        trials=4,
        lr_range=(1e-3, 0.3),
        params=[problem.w],
        progress=False,
    )
    for start in problem.starts:
        assert np.array_equal(start, initial)
    assert np.array_equal(problem.w, initial)

    def fails_in_the_second_trial(lr):
        problem.w += 1.0
        if lr == 0.2:
            raise RuntimeError("out of memory")
        yield 1.0

    with pytest.raises(RuntimeError, match="out of memory"):
        cyoptim.lr_search(
            fails_in_the_second_trial, lrs=[0.1, 0.2], params=[problem.w], progress=False
        )
    assert np.array_equal(problem.w, initial)  # restored after a failure too


def test_the_run_lr_search_trials_start_from_the_same_weights(tmp_path, monkeypatch, capsys):
    seen = []
    real = demo.train_epochs

    def spy(model, step, x, y, batch_size, seed, *args, **kwargs):
        seen.append((model.buffer.data.copy(), x.shape[0], seed))
        return real(model, step, x, y, batch_size, seed, *args, **kwargs)

    monkeypatch.setattr(demo, "train_epochs", spy)
    result = demo.run_lr_search(
        "sgd", lrs=[0.01, 0.1], max_epochs=2, out=str(tmp_path), progress=False
    )
    assert len(seen) == 2 and np.array_equal(seen[0][0], seen[1][0])
    n_train = len(load_digits_dataset(0).y_train)
    settings = result.search["settings"]
    assert seen[0][1] == settings["n_fit"] < n_train  # fitted rows: not all of them
    assert settings["n_fit"] + settings["n_validation"] == n_train  # the test set unused
    assert 0.5 < result.best.val_accuracy <= 1 and result.best.epochs == 2


# ----------------------------------------------------------------------------- resuming
def test_resume_after_an_interrupted_run(tmp_path):
    path = tmp_path / "search.json"
    arguments = dict(
        mode="random", trials=6, seed=1, lr_range=(1e-3, 0.5), max_epochs=20, progress=False
    )
    problem = Quadratic()

    def breaks_at_trial_3(lr):
        if len(problem.calls) == 3:
            raise KeyboardInterrupt
        return problem.train_fn(lr)

    with pytest.raises(KeyboardInterrupt):
        cyoptim.lr_search(breaks_at_trial_3, params=[problem.w], results_file=path, **arguments)
    saved = json.loads(path.read_text())
    assert [t["index"] for t in saved["trials"]] == [0, 1, 2]
    planned = saved["search"]["lrs"]

    problem.calls.clear()
    resumed = cyoptim.lr_search(
        problem.train_fn, params=[problem.w], results_file=path, **arguments
    )
    assert problem.calls == planned[3:]  # only the unfinished trials
    assert resumed.resumed == 3
    assert [t.to_dict() for t in resumed.trials[:3]] == saved["trials"]  # read, not rerun

    fresh_problem = Quadratic()
    fresh = cyoptim.lr_search(fresh_problem.train_fn, params=[fresh_problem.w], **arguments)
    assert numbers(resumed) == numbers(fresh)

    problem.calls.clear()  # a finished search: no work
    again = cyoptim.lr_search(problem.train_fn, params=[problem.w], results_file=path, **arguments)
    assert problem.calls == [] and again.resumed == 6 and numbers(again) == numbers(fresh)
    assert json.loads(path.read_text())["best"] == fresh.best.index


@pytest.mark.parametrize(
    "change, named",
    [
        (dict(seed=2), "seed: 1 in the file, 2 now"),
        (dict(mode="grid"), "mode: 'random' in the file, 'grid' now"),
        (dict(trials=5), "lrs: 4 rates in the file, 5 now"),
        (dict(patience=5), "patience: 3 in the file, 5 now"),
        (dict(max_epochs=None), "max_epochs: 10 in the file, None now"),
        (
            dict(settings={"optimizer": "sgd", "batch": 32}),
            "settings.optimizer: 'adam' in the file, 'sgd' now",
        ),
    ],
)
def test_a_results_file_from_other_settings_is_refused(tmp_path, change, named):
    path = tmp_path / "search.json"
    arguments = dict(
        mode="random",
        trials=4,
        seed=1,
        max_epochs=10,
        settings={"optimizer": "adam", "batch": 32},
        progress=False,
    )
    cyoptim.lr_search(scripted_everywhere, results_file=path, **arguments)
    before = path.read_bytes()
    calls = []
    with pytest.raises(ResultsFileError, match="other settings") as error:
        cyoptim.lr_search(
            lambda lr: calls.append(lr) or [1.0], results_file=path, **{**arguments, **change}
        )
    assert named in str(error.value)
    assert "delete this one to start over" in str(error.value)
    assert calls == [] and path.read_bytes() == before  # nothing run, nothing written


def scripted_everywhere(lr):
    yield 1.0 / (1 + lr)


@pytest.mark.parametrize(
    "content, reason",
    [
        ("{not json", "it is not JSON"),
        ('{"format": "something else"}', "not a results file of cyoptim.lr_search"),
        ('{"format": "cyoptim.lr_search", "version": 99}', "version 99"),
    ],
)
def test_an_unreadable_results_file_is_refused(tmp_path, content, reason):
    path = tmp_path / "search.json"
    path.write_text(content)
    with pytest.raises(ResultsFileError, match=reason):
        cyoptim.lr_search(scripted_everywhere, lrs=[0.1], results_file=path, progress=False)
    assert path.read_text() == content


def test_a_tampered_trial_is_refused(tmp_path):
    path = tmp_path / "search.json"
    cyoptim.lr_search(scripted_everywhere, lrs=[0.1, 0.2], results_file=path, progress=False)
    doc = json.loads(path.read_text())
    doc["trials"][1]["lr"] = 0.3
    path.write_text(json.dumps(doc))
    with pytest.raises(ResultsFileError, match="trial 1 .lr 0.3. is not one of this search"):
        cyoptim.lr_search(scripted_everywhere, lrs=[0.1, 0.2], results_file=path, progress=False)
    del doc["trials"][1]["epochs"]
    path.write_text(json.dumps(doc))
    with pytest.raises(ResultsFileError, match="a trial must be an object with the keys"):
        cyoptim.lr_search(scripted_everywhere, lrs=[0.1, 0.2], results_file=path, progress=False)


def test_the_results_file_is_strict_json_with_every_trial(tmp_path):
    path = tmp_path / "search.json"
    result = cyoptim.lr_search(
        scripted({0.1: [1.0, 0.5], 1.0: [0.7, math.nan]}),
        lrs=[0.1, 1.0],
        results_file=path,
        progress=False,
    )
    doc = json.loads(path.read_text(), parse_constant=lambda name: pytest.fail(name))
    assert doc == result.to_dict()
    assert doc["trials"][1]["val_losses"] == [0.7, None]
    assert [Trial.from_dict(t) for t in doc["trials"]] == result.trials
    assert [p.name for p in tmp_path.iterdir()] == ["search.json"]  # no temporary left


# ----------------------------------------------------------------------------- bad input
def never_called(lr):
    raise AssertionError("trained despite bad arguments")


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(train_fn=3), TypeError, "train_fn must be callable"),
        (dict(mode="bayes"), ValueError, "mode must be 'grid' or 'random'"),
        (dict(lrs=[0.1, -1.0]), ValueError, r"lrs\[1\] must be a positive finite number"),
        (dict(lrs=[0.1, math.inf]), ValueError, r"lrs\[1\] must be a positive finite number"),
        (dict(lrs=[]), ValueError, "lrs is empty"),
        (dict(lrs="0.1"), TypeError, "lrs must be a sequence"),
        (dict(lrs=[0.1], mode="random"), ValueError, "lrs is for mode='grid'"),
        (dict(lrs=[0.1, 0.2], trials=3), ValueError, "trials=3 does not match the 2 lrs"),
        (dict(lrs=[0.1], lr_range=(1e-3, 1)), ValueError, "give lrs or lr_range, not both"),
        (dict(mode="random", trials=0), ValueError, "trials must be an integer >= 1"),
        (dict(mode="random", trials=2.0), ValueError, "trials must be an integer >= 1"),
        (dict(mode="random", lr_range=(1, 0.1)), ValueError, "lr_range needs low < high"),
        (dict(mode="random", lr_range=(0, 1)), ValueError, "low end must be a positive"),
        (dict(mode="random", lr_range=1.0), ValueError, r"lr_range must be \(low, high\)"),
        (dict(mode="random", seed=-1), ValueError, "seed must be an integer >= 0"),
        (dict(patience=-1), ValueError, "patience must be an integer >= 0"),
        (dict(min_delta=-0.1), ValueError, "min_delta must be a finite number >= 0"),
        (dict(max_epochs=0), ValueError, "max_epochs must be an integer >= 1"),
        (dict(params=np.zeros(3)), TypeError, "params must be a list of arrays"),
        (dict(params=[[0.0]]), TypeError, r"params\[0\] must be a NumPy array"),
        (dict(settings={"f": print}), TypeError, "settings must hold JSON values"),
        (dict(settings=[1]), TypeError, "settings must be a dict"),
    ],
)
def test_bad_arguments_are_refused_before_any_training(tmp_path, kwargs, error, match):
    kwargs = {"train_fn": never_called, "progress": False, **kwargs}
    with pytest.raises(error, match=match):
        cyoptim.lr_search(results_file=tmp_path / "search.json", **kwargs)
    assert not (tmp_path / "search.json").exists()


def test_read_only_params_and_a_missing_folder_are_refused(tmp_path):
    frozen = np.zeros(3)
    frozen.flags.writeable = False
    with pytest.raises(ValueError, match=r"params\[0\] is read-only"):
        cyoptim.lr_search(never_called, params=[frozen])
    with pytest.raises(FileNotFoundError, match="does not exist"):
        cyoptim.lr_search(never_called, results_file=tmp_path / "nowhere" / "search.json")


@pytest.mark.parametrize(
    "train_fn, match",
    [
        (lambda lr: 0.5, "returned a float, not an iterator"),
        (lambda lr: iter(["low"]), "yielded 'low' for epoch 1: expected val_loss or"),
        (lambda lr: iter([0.5, (0.4, "90%")]), r"yielded \(0.4, '90%'\) for epoch 2"),
        (lambda lr: iter([True]), "yielded True for epoch 1"),
    ],
)
def test_a_train_fn_that_breaks_the_contract_gets_a_clear_error(train_fn, match):
    with pytest.raises(TypeError, match=match):
        cyoptim.lr_search(train_fn, lrs=[0.1], progress=False)


# ----------------------------------------------------------------------------- output
def test_the_table_lists_every_trial_by_lr_and_marks_the_best():
    losses = {0.3: [0.6], 0.01: [0.2], 0.1: [0.2], 1.0: [math.nan]}
    result = cyoptim.lr_search(scripted(losses), lrs=list(losses), progress=False)
    assert result.best.lr == 0.01 and result.best.index == 1  # a tie: the earlier trial
    lines = str(result).splitlines()
    assert lines[0].startswith("lr search: grid, 4 trials (given lrs)")
    assert lines[1] == "each trial: early stopping on the validation loss, patience 3"
    rows = lines[4:-1]
    assert [float(row.split()[-6]) for row in rows] == [0.01, 0.1, 0.3, 1.0]  # by lr
    assert [row.startswith("* ") for row in rows] == [True, False, False, False]
    assert "diverged" in rows[-1] and lines[-1] == "* best: lowest validation loss"
    assert repr(result) == "LRSearchResult(mode='grid', trials=4, best_lr=0.01)"
    nothing = cyoptim.lr_search(scripted({0.1: [math.nan]}), lrs=[0.1], progress=False)
    assert nothing.best is None
    assert str(nothing).endswith("no trial reached a finite validation loss")


def test_the_plot_draws_accuracy_against_the_rate_with_the_range_tests_suggestion():
    pytest.importorskip("matplotlib")
    from matplotlib.figure import Figure

    losses = {1e-3: [0.9], 1e-2: [0.3], 1e-1: [0.5], 1.0: [math.nan]}
    result = cyoptim.lr_search(scripted(losses), lrs=[1e-1, 1e-3, 1.0, 1e-2], progress=False)
    ax = Figure().subplots()
    assert result.plot(ax, suggestion=0.02) is ax
    assert ax.get_xscale() == "log"
    curve, missing, best = ax.lines[:3]
    assert curve.get_xdata().tolist() == [1e-3, 1e-2, 1e-1]  # sorted by lr
    np.testing.assert_allclose(curve.get_ydata(), [0.1, 0.7, 0.5])  # accuracy at the best
    assert missing.get_xdata().tolist() == [1.0]
    assert (best.get_xdata(), best.get_ydata()) == (0.01, pytest.approx(0.7))
    assert list(ax.lines[3].get_xdata()) == [0.02, 0.02]  # the suggestion
    assert "LR range test: 2.00e-02" in [t.get_text() for t in ax.get_legend().get_texts()]
    finder_result = cyoptim.lr_finder.LRFinderResult(
        [1e-3, 1e-2, 0.1], [1.0, 0.5, 0.9], [1.0, 0.5, 0.9], False
    )
    ax = result.plot(Figure().subplots(), suggestion=finder_result)
    assert ax.lines[-1].get_xdata()[0] == finder_result.suggestion
    assert ax.get_ylabel().startswith("validation accuracy")


def test_progress_bar_and_docstring_examples():
    pytest.importorskip("tqdm")
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        cyoptim.lr_search(scripted({0.1: [0.5, 0.4]}), lrs=[0.1])
    assert "lr search:   0%" in err.getvalue() and "0/1 [" in err.getvalue()
    finder, runner = doctest.DocTestFinder(), doctest.DocTestRunner()
    tests = finder.find(cyoptim.search)
    assert sum(len(t.examples) for t in tests) >= 8
    for test in tests:
        runner.run(test)
    assert runner.failures == 0


# ----------------------------------------------------------------------------- the command
def test_cli_lr_search_end_to_end(tmp_path):
    pytest.importorskip("matplotlib")  # the command draws lr_search.png
    out = tmp_path / "out"
    args = (
        "lr-search",
        "--optimizer",
        "adam",
        "--mode",
        "random",
        "--trials",
        "3",
        "--max-epochs",
        "3",
        "--out",
        str(out),
    )
    proc = run_cli(*args, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "lr search: random, 3 trials (lr 1e-05 to 1, seed 0)" in proc.stdout
    assert "* best: lowest validation loss" in proc.stdout
    assert "LR range test: suggests" in proc.stdout
    assert "the test set is not used" in proc.stdout
    assert (out / "lr_search.png").read_bytes().startswith(PNG_MAGIC)
    doc = json.loads((out / "lr_search.json").read_text())
    assert doc["search"]["lrs"] == lr_plan(mode="random", trials=3, seed=0)
    assert doc["search"]["settings"]["optimizer"] == "adam"
    assert len(doc["trials"]) == 3 and doc["best"] in (0, 1, 2)
    # The same search in this process reads every trial back instead of training.
    result = demo.run_lr_search(
        "adam", mode="random", trials=3, max_epochs=3, out=str(out), progress=False
    )
    assert result.resumed == 3 and result.to_dict() == doc


def test_cli_lr_search_is_reproducible_and_resumes_after_ctrl_c(tmp_path, monkeypatch, capsys):
    args = ["lr-search", "--lrs", "1e-3,1e-2,0.1", "--max-epochs", "2", "--no-progress"]
    assert cli.main(args + ["--out", str(tmp_path / "whole")]) == 0
    whole = json.loads((tmp_path / "whole" / "lr_search.json").read_text())
    real, started = demo.train_epochs, []

    def interrupted_in_trial_2(*arguments, **kwargs):
        started.append(1)
        if len(started) == 2:
            raise KeyboardInterrupt
        return real(*arguments, **kwargs)

    monkeypatch.setattr(demo, "train_epochs", interrupted_in_trial_2)
    results = tmp_path / "elsewhere.json"
    parted = args + ["--out", str(tmp_path / "parted"), "--results", str(results)]
    assert cli.main(parted) == 130
    assert "run the same command again to resume" in capsys.readouterr().err
    assert len(json.loads(results.read_text())["trials"]) == 1
    monkeypatch.setattr(demo, "train_epochs", real)
    assert cli.main(parted) == 0
    assert "1 of 3 trials read from" in capsys.readouterr().out
    resumed = json.loads(results.read_text())
    assert numbers(
        cyoptim.search.LRSearchResult(
            [Trial.from_dict(t) for t in resumed["trials"]], resumed["search"]
        )
    ) == numbers(
        cyoptim.search.LRSearchResult(
            [Trial.from_dict(t) for t in whole["trials"]], whole["search"]
        )
    )
    # other settings, same file: refused, exit status 1
    assert cli.main(parted + ["--patience", "1"]) == 1
    assert "patience: 3 in the file, 1 now" in capsys.readouterr().err


@pytest.mark.parametrize(
    "args, message",
    [
        (["--mode", "random", "--lrs", "0.1,1"], "--lrs is for --mode grid"),
        (["--lrs", "0.1,1", "--trials", "3"], "--trials 3 does not match the 2 rates of --lrs"),
        (["--lrs", "0.1,1", "--min-lr", "1e-3"], "give --lrs or --min-lr/--max-lr, not both"),
        (["--min-lr", "1", "--max-lr", "0.1"], "needs --min-lr < --max-lr, got 1 and 0.1"),
        (["--max-lr", "1e-6"], "needs --min-lr < --max-lr, got 1e-05 and 1e-06"),
        (["--lrs", "0.1,-1"], "expected a finite number > 0, got '-1'"),
        (["--trials", "0"], "expected an integer >= 1"),
        (["--patience", "-1"], "expected an integer >= 0"),
        (["--optimizer", "adamz"], "invalid choice: 'adamz'"),
        (["--results", "/nonexistent-folder/x.json"], "the folder /nonexistent-folder does not"),
    ],
)
def test_cli_lr_search_refuses_bad_arguments(tmp_path, capsys, args, message):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["lr-search", "--out", str(tmp_path / "out")] + args)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out" / "lr_search.json").exists()
