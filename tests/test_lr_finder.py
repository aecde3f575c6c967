"""LRFinder: the ramp, smoothing, divergence stop, suggestions, and a bitwise restore."""

import math
import sys

import numpy as np
import pytest

import cyoptim
from cyoptim import schedules as S
from cyoptim.lr_finder import LRFinderResult, valley_span


def _regression(dtype=np.float64, seed=0):
    """A linear least-squares problem on mini-batches: (params, loss_and_grads)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(512, 8)).astype(dtype)
    y = (X @ rng.normal(size=8) + 0.1 * rng.normal(size=512)).astype(dtype)
    W = (0.1 * rng.normal(size=8)).astype(dtype)
    b = np.zeros(1, dtype)
    batches = np.random.default_rng(seed + 1)

    def loss_and_grads():
        idx = batches.integers(0, 512, 32)
        r = X[idx] @ W + b - y[idx]
        return float(r @ r / 32), [
            (2 / 32 * X[idx].T @ r).astype(dtype),
            np.array([2 / 32 * r.sum()], dtype),
        ]

    return [W, b], loss_and_grads


def _optimizers(W, b):
    return {
        "sgd": lambda: cyoptim.SGD(
            [{"params": [W], "lr": 0.01}, {"params": [b], "lr": 0.001}], lr=0.01, momentum=0.9
        ),
        "adam": lambda: cyoptim.Adam([{"params": [W]}, {"params": [b], "lr": 3e-4}], lr=1e-3),
    }


def _train(opt, loss_and_grads, steps):
    for _ in range(steps):
        opt.step(loss_and_grads()[1])


@pytest.mark.parametrize("kind", ["sgd", "adam"])
@pytest.mark.parametrize("warm", [False, True])
def test_run_restores_everything_bitwise(kind, warm):
    """After the test, training continues exactly as if it had never run."""
    runs = []
    for with_finder in (False, True):
        (W, b), loss_and_grads = _regression()
        opt = _optimizers(W, b)[kind]()
        if warm:  # optimizer state exists
            _train(opt, loss_and_grads, 5)
            S.StepLR(opt, step_size=3)  # adds initial_lr to the groups
        before_groups = [{k: v for k, v in g.items() if k != "params"} for g in opt.param_groups]
        before_params = [np.copy(W), np.copy(b)]
        before_state = opt.state_dict()
        if with_finder:
            _, finder_batches = _regression(seed=7)  # its own batches: same data stream after
            result = cyoptim.LRFinder(opt, finder_batches).run(1e-5, 10, num_iter=60)
            assert len(result.lrs) >= 10
            assert W is opt.param_groups[0]["params"][0]  # the caller's arrays
            assert np.array_equal(W, before_params[0]) and np.array_equal(b, before_params[1])
            after_state = opt.state_dict()
            assert after_state["param_groups"] == before_state["param_groups"]
            assert after_state["state"].keys() == before_state["state"].keys()
            for i, entry in before_state["state"].items():
                for name, value in entry.items():
                    assert np.array_equal(after_state["state"][i][name], value), (i, name)
            assert [
                {k: v for k, v in g.items() if k != "params"} for g in opt.param_groups
            ] == before_groups
        _train(opt, loss_and_grads, 10)
        runs.append((W.copy(), b.copy()))
    assert np.array_equal(runs[0][0], runs[1][0]) and np.array_equal(runs[0][1], runs[1][1])


def test_restores_after_an_exception():
    (W, b), loss_and_grads = _regression()
    opt = _optimizers(W, b)["sgd"]()
    saved = np.copy(W)
    calls = []

    def failing():
        calls.append(1)
        if len(calls) == 4:
            raise RuntimeError("bad batch")
        return loss_and_grads()

    with pytest.raises(RuntimeError, match="bad batch"):
        cyoptim.LRFinder(opt, failing).run(1e-3, 1.0, num_iter=10)
    assert np.array_equal(W, saved)
    assert [g["lr"] for g in opt.param_groups] == [0.01, 0.001]


@pytest.mark.parametrize("step_mode", ["exp", "linear"])
def test_ramp_and_group_ratios(step_mode):
    seen = []
    w, v = np.zeros(2), np.zeros(2)
    opt = cyoptim.SGD([{"params": [w], "lr": 0.2}, {"params": [v], "lr": 0.05}], lr=0.1)

    def loss_and_grads():
        seen.append([g["lr"] for g in opt.param_groups])
        return 1.0, [np.zeros(2), np.zeros(2)]

    result = cyoptim.LRFinder(opt, loss_and_grads).run(1e-4, 1.0, num_iter=5, step_mode=step_mode)
    expected = np.geomspace(1e-4, 1.0, 5) if step_mode == "exp" else np.linspace(1e-4, 1.0, 5)
    np.testing.assert_allclose(result.lrs, expected, rtol=1e-14)
    seen = np.array(seen)
    np.testing.assert_allclose(seen[:, 0], expected, rtol=1e-14)
    np.testing.assert_allclose(seen[:, 1] / seen[:, 0], 0.25, rtol=1e-14)
    assert [g["lr"] for g in opt.param_groups] == [0.2, 0.05]


def _scripted(losses):
    """An optimizer and a loss_and_grads returning the given losses in turn."""
    w = np.zeros(1)
    opt = cyoptim.SGD([w], lr=0.1)
    it = iter(losses)
    return opt, lambda: (next(it), [np.zeros(1)])


def test_smoothing_is_bias_corrected_ema():
    raw = [4.0, 2.0, 3.0, 1.0]
    opt, fn = _scripted(raw)
    result = cyoptim.LRFinder(opt, fn).run(1e-3, 1.0, num_iter=4, smooth=0.5, diverge_th=100)
    a, expected = 0.0, []
    for i, loss in enumerate(raw):
        a = 0.5 * a + 0.5 * loss
        expected.append(a / (1 - 0.5 ** (i + 1)))
    assert expected[0] == 4.0
    np.testing.assert_allclose(result.losses, expected, rtol=1e-15)
    np.testing.assert_array_equal(result.raw_losses, raw)
    opt, fn = _scripted(raw)
    unsmoothed = cyoptim.LRFinder(opt, fn).run(1e-3, 1.0, num_iter=4, smooth=0, diverge_th=100)
    np.testing.assert_array_equal(unsmoothed.losses, raw)


def test_stops_when_loss_diverges():
    raw = [1.0, 0.8, 0.5, 0.6, 1.9, 2.6, 1.0, 1.0]
    opt, fn = _scripted(raw)
    result = cyoptim.LRFinder(opt, fn).run(1e-3, 1.0, num_iter=8, smooth=0, diverge_th=4)
    assert result.diverged and len(result.lrs) == 6  # 2.6 > 4 * 0.5: kept, then stop
    opt, fn = _scripted([1.0, 0.9, float("nan"), 0.1])
    result = cyoptim.LRFinder(opt, fn).run(1e-3, 1.0, num_iter=4)
    assert result.diverged and result.raw_losses.tolist() == [1.0, 0.9]
    opt, fn = _scripted([1.0, 0.9, 0.8])
    assert not cyoptim.LRFinder(opt, fn).run(1e-3, 1.0, num_iter=3).diverged


def test_suggestion_is_steepest_descent_in_log_lr():
    lrs = np.geomspace(1e-5, 1.0, 6)  # log10 lr = -5 .. 0, uniform
    losses = [5.0, 4.9, 4.5, 2.0, 0.5, 0.4]  # steepest fall around index 3
    result = LRFinderResult(lrs, losses, losses, diverged=False)
    slopes = np.gradient(losses, np.log10(lrs))
    assert np.argmin(slopes) == 3
    assert result.suggestion == lrs[3]


def test_valley_is_two_thirds_through_longest_descent():
    # longest strictly decreasing subsequence: indices 1..7 (a bump at 4 is skipped)
    losses = [5.0, 9.0, 8.0, 7.0, 8.5, 6.0, 5.5, 4.0, 6.0, 9.0]
    assert valley_span(losses) == (1, 7)
    lrs = np.geomspace(1e-4, 1.0, len(losses))
    result = LRFinderResult(lrs, losses, losses, diverged=False)
    assert result.valley == lrs[1 + 4]  # 1 + round(2/3 * 6)
    rising = LRFinderResult(lrs[:3], [1.0, 2.0, 3.0], [1.0, 2.0, 3.0], diverged=True)
    assert rising.valley is None
    single = LRFinderResult(lrs[:1], [1.0], [1.0], diverged=True)
    assert single.suggestion is None and single.valley is None


def test_suggestions_skip_start_and_end():
    lrs = np.geomspace(1e-4, 1.0, 8)
    losses = [9.0, 1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.1]  # noisy first and last steps
    plain = LRFinderResult(lrs, losses, losses, diverged=False)
    assert plain.suggestion == lrs[0]
    skipped = LRFinderResult(lrs, losses, losses, diverged=False, skip_start=1, skip_end=1)
    assert lrs[1] < skipped.suggestion < lrs[7]
    assert skipped.valley == lrs[1 + 3]  # valley of indices 1..6: 1 + round(2/3 * 5)
    short = LRFinderResult(lrs[:3], losses[:3], losses[:3], False, skip_start=2, skip_end=5)
    assert short.suggestion == lrs[0]  # too few left: all points are used


def test_finds_a_sensible_rate_on_regression():
    (W, b), loss_and_grads = _regression()
    opt = cyoptim.SGD([W, b], lr=0.01)
    result = cyoptim.LRFinder(opt, loss_and_grads).run(1e-5, 10.0, num_iter=100)
    assert result.diverged  # plain SGD on this problem blows up near lr ~ 1
    assert 1e-3 < result.suggestion < 1.0
    assert 1e-3 < result.valley < 1.0
    assert result.losses.min() < 0.5 * result.losses[0]


def test_plot_marks_suggestion():
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    (W, b), loss_and_grads = _regression()
    opt = cyoptim.SGD([W, b], lr=0.01)
    result = cyoptim.LRFinder(opt, loss_and_grads).run(1e-5, 10.0, num_iter=60)
    ax = result.plot()
    assert ax.get_xscale() == "log"
    xs = [line.get_xdata()[0] for line in ax.get_lines()[1:]]
    assert result.suggestion in xs and result.valley in xs
    import matplotlib.pyplot as plt

    _, other = plt.subplots()
    assert result.plot(ax=other) is other
    plt.close("all")


class _RecordingAxes:
    """Stands in for a matplotlib Axes: records the calls made on it."""

    def __init__(self):
        self.calls = []

    def __getattr__(self, name):
        return lambda *args, **kwargs: self.calls.append((name, args, kwargs))


def test_plot_on_a_given_axes_does_not_import_pyplot(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # any import would fail
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    (W, b), loss_and_grads = _regression()
    result = cyoptim.LRFinder(cyoptim.SGD([W, b], lr=0.01), loss_and_grads).run(
        1e-5, 10.0, num_iter=60
    )
    ax = _RecordingAxes()
    assert result.plot(ax) is ax
    names = [name for name, _, _ in ax.calls]
    assert names[0] == "plot" and names.count("plot") == 3  # curve, steepest, valley
    assert ("set_xscale", ("log",), {}) in ax.calls
    with pytest.raises(ImportError, match="LRFinderResult.plot needs matplotlib"):
        result.plot()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(start_lr=1.0, end_lr=0.1), r"start_lr \(1.0\) must be smaller than end_lr"),
        (dict(start_lr=0.1, end_lr=0.1), "must be smaller"),
        (dict(start_lr=0.0), "start_lr must be a positive finite number"),
        (dict(end_lr=math.inf), "end_lr must be a positive finite number"),
        (dict(num_iter=1), "num_iter must be an integer >= 2"),
        (dict(num_iter=10.0), "num_iter must be an integer >= 2"),
        (dict(step_mode="log"), "step_mode must be 'exp' or 'linear'"),
        (dict(smooth=1.0), r"smooth must be in \[0, 1\)"),
        (dict(smooth=-0.1), r"smooth must be in \[0, 1\)"),
        (dict(diverge_th=1), "diverge_th must be a number > 1"),
    ],
)
def test_argument_validation(kwargs, message):
    (W, b), loss_and_grads = _regression()
    opt = cyoptim.SGD([W, b], lr=0.01)
    calls = []
    finder = cyoptim.LRFinder(opt, lambda: calls.append(1) or loss_and_grads())
    with pytest.raises(ValueError, match=message):
        finder.run(**kwargs)
    assert not calls


def test_constructor_type_errors():
    with pytest.raises(TypeError, match="is not an Optimizer"):
        cyoptim.LRFinder(object(), lambda: (0.0, []))
    opt = cyoptim.SGD([np.zeros(1)], lr=0.1)
    with pytest.raises(TypeError, match="loss_and_grads must be callable"):
        cyoptim.LRFinder(opt, 3)
