"""Tests of cyoptim.examples: the NumPy MLP, the dataset loader, the training loop."""

import sys

import numpy as np
import pytest

import cyoptim
from cyoptim.examples import MLP, load_digits_dataset, validation_split
from cyoptim.examples.data import N_CLASSES, N_FEATURES, N_SAMPLES
from cyoptim.examples.optimizers import CHOICES, select_optimizers
from cyoptim.examples.training import (
    batch_order,
    minibatches,
    steps_per_epoch,
    train,
    train_epochs,
)


def small_problem(seed=0, n=11, sizes=(5, 7, 6, 4)):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, sizes[0])), rng.integers(0, sizes[-1], n)


def reference_loss(params, x, y, activation):
    """Softmax cross-entropy of the MLP, written plainly (float64)."""
    a = x
    n_layers = len(params) // 2
    for l in range(n_layers):
        a = a @ params[2 * l] + params[2 * l + 1]
        if l < n_layers - 1:
            a = np.maximum(a, 0) if activation == "relu" else np.tanh(a)
    a = a - a.max(axis=1, keepdims=True)
    log_probs = a - np.log(np.exp(a).sum(axis=1, keepdims=True))
    return -log_probs[np.arange(len(y)), y].mean()


# ----------------------------------------------------------------------------- MLP
@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_gradient_matches_central_differences(activation):
    model = MLP(sizes=(5, 7, 6, 4), activation=activation, dtype=np.float64, seed=3)
    for p in model.params[1::2]:  # non-zero biases, so their gradients are exercised
        p[...] = np.random.default_rng(1).standard_normal(p.shape) * 0.1
    x, y = small_problem()
    model.loss_and_grad(x, y)
    analytic = model.buffer.grad_data.copy()
    numeric = np.empty_like(analytic)
    flat, h = model.buffer.data, 1e-6
    for i in range(flat.size):
        saved = flat[i]
        flat[i] = saved + h
        up = model.loss(x, y)
        flat[i] = saved - h
        down = model.loss(x, y)
        flat[i] = saved
        numeric[i] = (up - down) / (2 * h)
    assert np.abs(analytic).max() > 1e-3
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_loss_matches_plain_numpy(activation):
    model = MLP(sizes=(5, 7, 6, 4), activation=activation, dtype=np.float64, seed=0)
    x, y = small_problem()
    expected = reference_loss([p.copy() for p in model.params], x, y, activation)
    assert model.loss(x, y) == pytest.approx(expected, rel=1e-12)
    assert model.loss_and_grad(x, y) == pytest.approx(expected, rel=1e-12)
    logits = model.forward(x)
    assert logits.shape == (len(y), 4)
    np.testing.assert_array_equal(model.predict(x), np.argmax(logits, axis=1))


def test_grads_are_overwritten_not_accumulated():
    model = MLP(sizes=(5, 7, 4), seed=0)
    x, y = small_problem(sizes=(5, 7, 4))
    x = x.astype(np.float32)
    model.loss_and_grad(x, y)
    first = model.buffer.grad_data.copy()
    model.loss_and_grad(x, y)
    np.testing.assert_array_equal(model.buffer.grad_data, first)


def test_params_and_grads_live_in_one_param_buffer():
    model = MLP(seed=0)
    assert isinstance(model.buffer, cyoptim.ParamBuffer)
    assert [p.shape for p in model.params] == [
        (64, 128),
        (128,),
        (128, 64),
        (64,),
        (64, 10),
        (10,),
    ]
    assert all(np.shares_memory(p, model.buffer.data) for p in model.params)
    assert all(np.shares_memory(g, model.buffer.grad_data) for g in model.grads)
    assert model.dtype == np.float32


def test_one_optimizer_step_moves_the_params_downhill():
    model = MLP(sizes=(5, 16, 4), seed=0)
    x, y = small_problem(sizes=(5, 16, 4))
    x = x.astype(np.float32)
    opt = cyoptim.SGD(model.params, lr=0.1)
    before = model.loss_and_grad(x, y)
    opt.step(model.grads)
    assert model.loss(x, y) < before


def test_initialization_is_deterministic_and_scaled():
    a, b, c = MLP(seed=5), MLP(seed=5), MLP(seed=6)
    np.testing.assert_array_equal(a.buffer.data, b.buffer.data)
    assert not np.array_equal(a.buffer.data, c.buffer.data)
    wide = MLP(sizes=(1000, 1000, 10), seed=0)
    assert wide.params[0].std() == pytest.approx(np.sqrt(2 / 1000), rel=0.02)  # He
    assert not wide.params[1].any()  # zero bias
    glorot = MLP(sizes=(1000, 1000, 10), activation="tanh", seed=0)
    assert glorot.params[0].std() == pytest.approx(np.sqrt(1 / 1000), rel=0.02)
    double = MLP(dtype=np.float64, seed=5)
    np.testing.assert_array_equal(double.buffer.data.astype(np.float32), a.buffer.data)


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="activation"):
        MLP(activation="gelu")
    with pytest.raises(ValueError, match="sizes"):
        MLP(sizes=(64,))
    model = MLP(sizes=(5, 7, 4), seed=0)
    x, y = small_problem(sizes=(5, 7, 4))
    with pytest.raises(ValueError, match=r"shape \(n, 5\)"):
        model.loss(x[:, :3], y)
    with pytest.raises(ValueError, match="labels must lie in"):
        model.loss(x, y + 4)
    with pytest.raises(ValueError, match="integer class labels"):
        model.loss(x, y[:3])


# ----------------------------------------------------------------------------- data
def test_dataset_split_is_deterministic_and_standardized():
    a, b, c = load_digits_dataset(0), load_digits_dataset(0), load_digits_dataset(1)
    for name in ("x_train", "y_train", "x_test", "y_test"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert not np.array_equal(a.y_train, c.y_train)
    assert a.x_train.shape[1] == a.x_test.shape[1] == a.n_features == N_FEATURES
    assert len(a.y_train) + len(a.y_test) == N_SAMPLES
    assert len(a.y_test) == round(0.2 * N_SAMPLES)
    assert a.n_classes == N_CLASSES and set(np.unique(a.y_train)) == set(range(N_CLASSES))
    assert a.x_train.dtype == np.float32 and a.y_train.dtype == np.int64
    assert np.abs(a.x_train.mean(axis=0)).max() < 1e-5
    stds = a.x_train.std(axis=0)
    assert np.all((np.abs(stds - 1) < 1e-4) | (stds == 0))


def test_dataset_is_scikit_learns_digits_when_installed():
    datasets = pytest.importorskip("sklearn.datasets", reason="scikit-learn not installed")
    data = load_digits_dataset(0)
    assert data.name == "digits" and not data.synthetic
    # The split rows are the digits, standardized: recover them up to scale and shift.
    digits = datasets.load_digits()
    assert len(digits.target) == N_SAMPLES
    assert (
        np.bincount(np.concatenate([data.y_train, data.y_test])).tolist()
        == np.bincount(digits.target).tolist()
    )


def without_sklearn(monkeypatch):
    """Make `import sklearn` fail, as if scikit-learn were not installed."""
    for name in [m for m in sys.modules if m == "sklearn" or m.startswith("sklearn.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "sklearn", None)
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)


def test_synthetic_fallback_without_scikit_learn(monkeypatch):
    without_sklearn(monkeypatch)
    a, b = load_digits_dataset(0), load_digits_dataset(0)
    assert a.name == "synthetic" and a.synthetic
    assert a.x_train.shape == (N_SAMPLES - round(0.2 * N_SAMPLES), N_FEATURES)
    assert a.n_classes == N_CLASSES and set(np.unique(a.y_test)) == set(range(N_CLASSES))
    np.testing.assert_array_equal(a.x_train, b.x_train)
    np.testing.assert_array_equal(a.y_test, b.y_test)
    # Learnable: a few epochs of Adam beat chance by far.
    model = MLP(seed=0)
    history = train(
        model,
        cyoptim.Adam(model.params, lr=3e-3),
        a,
        epochs=3,
        batch_size=32,
        seed=0,
        progress=False,
    )
    assert history.accuracy[-1] > 0.5


def test_test_fraction_is_checked():
    with pytest.raises(ValueError, match="test_fraction"):
        load_digits_dataset(0, test_fraction=1.0)


def test_validation_split_holds_out_training_rows_only():
    data = load_digits_dataset(0)
    split = validation_split(data)
    n_val = int(len(data.y_train) * 0.2)
    assert len(split.y_test) == n_val and len(split.y_train) == len(data.y_train) - n_val
    # every row comes from the training set, once; no test row appears
    rows = np.concatenate([split.x_test, split.x_train])
    np.testing.assert_array_equal(rows, data.x_train)
    np.testing.assert_array_equal(np.concatenate([split.y_test, split.y_train]), data.y_train)
    for fraction in (0.0, 1.0, 1e-6):
        with pytest.raises(ValueError, match="fraction"):
            validation_split(data, fraction)


# ----------------------------------------------------------------------------- training
def test_minibatches_cover_every_row_once_in_a_seeded_order():
    batches = list(minibatches(10, 4, batch_order(0)))
    assert [len(b) for b in batches] == [4, 4, 2] and steps_per_epoch(10, 4) == 3
    np.testing.assert_array_equal(np.sort(np.concatenate(batches)), np.arange(10))
    again = list(minibatches(10, 4, batch_order(0)))
    assert all(np.array_equal(u, v) for u, v in zip(batches, again))


def test_train_records_epochs_and_times():
    data = load_digits_dataset(0)
    model = MLP(seed=0)
    history = train(
        model,
        cyoptim.Adam(model.params, lr=3e-3),
        data,
        epochs=2,
        batch_size=64,
        seed=0,
        progress=False,
    )
    assert len(history.loss) == len(history.accuracy) == 2
    assert history.loss[1] < history.loss[0]
    assert 0 < history.step_seconds < history.seconds
    assert not history.diverged


def test_train_epochs_yields_after_each_pass_in_the_seeds_order():
    data = load_digits_dataset(0)
    runs = []
    for _ in range(2):
        model, batches, snapshots = MLP(seed=0), [], []
        opt = cyoptim.SGD(model.params, lr=0.05)
        passes = train_epochs(
            model,
            opt.step,
            data.x_train,
            data.y_train,
            500,
            seed=3,
            on_batch=lambda: batches.append(1),
        )
        for count in passes:
            snapshots.append(model.buffer.data.copy())
            if count == 2:
                break
        assert len(batches) == 2 * steps_per_epoch(len(data.y_train), 500)
        runs.append(snapshots)
    assert not np.array_equal(runs[0][0], runs[0][1])
    assert all(np.array_equal(u, v) for u, v in zip(*runs))  # the same batches


def test_train_stops_when_the_loss_diverges():
    data = load_digits_dataset(0)
    model = MLP(seed=0)
    history = train(
        model,
        cyoptim.SGD(model.params, lr=1e6),
        data,
        epochs=5,
        batch_size=64,
        seed=0,
        progress=False,
    )
    assert history.diverged and len(history.loss) < 5
    assert not np.isfinite(history.loss[-1])


# ----------------------------------------------------------------------------- choices
def test_every_choice_is_known_and_tuned():
    keys = [c.key for c in CHOICES]
    assert keys == [
        "sgd",
        "momentum",
        "nesterov",
        "adagrad",
        "rmsprop",
        "adadelta",
        "adam",
        "adamw",
        "adamax",
        "nadam",
        "radam",
        "lion",
        "lamb",
        "rprop",
        "asgd",
        "adafactor",
    ]
    assert all(c.lr > 0 for c in CHOICES)
    assert all(issubclass(c.optimizer_class, cyoptim.Optimizer) for c in CHOICES)
    assert {c.key: c.optimizer_class for c in CHOICES}["lamb"] is cyoptim.LAMB


def test_selection_by_name():
    assert select_optimizers() == list(CHOICES)
    chosen = select_optimizers(["ADAM", "sgd", " adam "])
    assert [c.key for c in chosen] == ["adam", "sgd"]
    with pytest.raises(ValueError, match="unknown optimizer.*adamz.*choose from sgd, momentum"):
        select_optimizers(["adam", "adamz"])
    with pytest.raises(ValueError, match="no optimizer named"):
        select_optimizers([" "])


def test_choice_builds_its_optimizer_with_the_tuned_lr():
    model = MLP(sizes=(4, 3), seed=0)
    nesterov = next(c for c in CHOICES if c.key == "nesterov")
    opt = nesterov.build(model.params)
    assert isinstance(opt, cyoptim.SGD)
    group = opt.param_groups[0]
    assert (group["lr"], group["momentum"], group["nesterov"]) == (nesterov.lr, 0.9, True)
    assert nesterov.build(model.params, lr=0.5).param_groups[0]["lr"] == 0.5


# ----------------------------------------------------------------------------- Muon + AdamW
def test_muon_with_adamw_splits_the_model_and_steps_like_two_optimizers():
    """Muon over the hidden matrices only (not the input or output layer), AdamW
    over the rest: bitwise what the two optimizers give when stepped by hand."""
    from cyoptim.examples.muon import MuonWithAdamW, hidden_matrices

    model, twin = MLP(sizes=(5, 8, 7, 6, 4), seed=0), MLP(sizes=(5, 8, 7, 6, 4), seed=0)
    assert hidden_matrices(model) == [2, 4]
    opt = MuonWithAdamW(model, muon_options={"lr": 0.05}, adamw_options={"weight_decay": 0.1})
    assert opt.rest == [0, 1, 3, 5, 6, 7]
    assert opt.muon.param_groups[0]["lr"] == 0.05 and opt.adamw.param_groups[0]["lr"] == 3e-3
    muon = cyoptim.Muon([twin.params[2], twin.params[4]], lr=0.05)
    adamw = cyoptim.AdamW([twin.params[k] for k in opt.rest], lr=3e-3, weight_decay=0.1)
    x, y = small_problem(sizes=(5, 8, 7, 6, 4))
    for _ in range(3):
        model.loss_and_grad(x, y)
        opt.step(model.grads)
        twin.loss_and_grad(x, y)
        muon.step([twin.grads[2], twin.grads[4]])
        adamw.step([twin.grads[k] for k in opt.rest])
    for a, b in zip(model.params, twin.params):
        np.testing.assert_array_equal(a, b)


def test_muon_with_adamw_trains_the_digits_mlp():
    from cyoptim.examples.muon import compare

    histories = compare(epochs=5)
    for label, history in histories.items():
        assert not history.diverged, label
        assert history.accuracy[-1] > 0.9, (label, history.accuracy)
    assert histories["Muon + AdamW"].loss[-1] < histories["Muon + AdamW"].loss[0]


def test_muon_example_docstring_runs():
    import doctest

    from cyoptim.examples import muon

    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    for test in doctest.DocTestFinder().find(muon):
        runner.run(test)
    assert runner.failures == 0 and runner.tries >= 5
