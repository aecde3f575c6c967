"""cyoptim.keras: Keras 3 optimizers on the torch backend, tested by real training.

The classes whose rule is Keras's train a Keras model with ``model.fit``
beside ``keras.optimizers.<Name>`` (50 steps, same data, same initial
weights): in float64 the params agree to 1e-12; in float32 cyoptim's params
are no further from Keras's float64 result than Keras's own float32 run is
(cyoptim computes the bias corrections in double, Keras in float32, so most
of the float32 difference is Keras's rounding). The classes whose rule is
torch's are stepped beside ``torch.optim.<Name>`` on the same gradients.
Schedules, callbacks, saving, the optimizer variables and the refusal of other
backends are checked too.
"""

import os
import re

import numpy as np
import pytest

torch = pytest.importorskip("torch")

# Keras reads KERAS_BACKEND once, when it is first imported: set it for this
# module's import only, and leave the environment of other tests as it was.
_previous_backend = os.environ.get("KERAS_BACKEND")
os.environ["KERAS_BACKEND"] = "torch"
try:
    keras = pytest.importorskip("keras")
finally:
    if _previous_backend is None:
        del os.environ["KERAS_BACKEND"]
    else:
        os.environ["KERAS_BACKEND"] = _previous_backend
if keras.backend.backend() != "torch":  # pragma: no cover
    pytest.skip(
        f"Keras was imported with the {keras.backend.backend()} backend", allow_module_level=True
    )

import cyoptim.keras as ck  # noqa: E402
from cyoptim import registry  # noqa: E402
from cyoptim.keras import _backend  # noqa: E402

# Keras's own code converts variables with np.array(), which NumPy 2 warns about.
pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
)

STEPS, BATCH = 50, 8


def make_model(dtype, seed=0):
    """A small MLP (ReLU, tanh) whose initial weights do not depend on the dtype."""
    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [
            keras.Input((12,), dtype=dtype),
            keras.layers.Dense(16, activation="relu", dtype=dtype),
            keras.layers.Dense(8, activation="tanh", dtype=dtype),
            keras.layers.Dense(5, dtype=dtype),
        ]
    )
    rng = np.random.default_rng(seed)
    for w in model.weights:
        w.assign((rng.standard_normal(w.shape) * 0.5).astype(np.float32).astype(dtype))
    return model


def data(dtype, steps=STEPS, seed=1):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((steps * BATCH, 12)).astype(dtype)
    return x, rng.integers(0, 5, steps * BATCH)


def fit(optimizer, dtype, epochs=1, callbacks=None, model=None, steps=STEPS):
    """Train with model.fit; returns the model (its weights are the result)."""
    model = model or make_model(dtype)
    x, y = data(dtype, steps)
    model.compile(
        optimizer=optimizer, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    model.fit(
        x,
        y,
        batch_size=BATCH,
        epochs=epochs,
        shuffle=False,
        verbose=0,
        callbacks=callbacks,
        validation_split=0.2 if callbacks else None,
    )
    return model


def weights(model):
    return [w.value.detach().numpy().astype(np.float64) for w in model.weights]


def distance(a, b):
    """The largest normwise relative difference over the weights."""
    return max(float(np.linalg.norm(x - y) / np.linalg.norm(y)) for x, y in zip(a, b))


# (class, Keras class, arguments): every class whose rule is Keras's, over its options.
KERAS_CASES = [
    ("SGD", "SGD", dict(learning_rate=0.05)),
    ("SGD", "SGD", dict(learning_rate=0.05, momentum=0.9)),
    ("SGD", "SGD", dict(learning_rate=0.05, momentum=0.9, nesterov=True, weight_decay=0.01)),
    ("Adam", "Adam", dict()),
    ("Adam", "Adam", dict(learning_rate=0.01, amsgrad=True, weight_decay=0.1, beta_1=0.8)),
    ("AdamW", "AdamW", dict(learning_rate=0.01)),
    ("Adagrad", "Adagrad", dict(learning_rate=0.1)),
    ("Adadelta", "Adadelta", dict(learning_rate=1.0)),
    ("NAdam", "Nadam", dict(learning_rate=0.01, weight_decay=0.05)),
    ("Lion", "Lion", dict(learning_rate=1e-3, weight_decay=0.1)),
    ("LAMB", "Lamb", dict(learning_rate=0.01, weight_decay=0.01)),
    # torch's rule, whose epsilon differs from Keras's by less than epsilon:
    # the difference stays far below the float32 rounding here.
    ("Adamax", "Adamax", dict(learning_rate=0.01)),
]
# Measured differences in float64 that are Keras's, not cyoptim's: Keras's
# Lamb differs from a NumPy float64 transcription of its own formula by ~3e-8
# on this model (cyoptim equals that transcription to 1e-16); Adamax: the
# epsilon placement (~4e-8).
FLOAT64_TOLERANCE = {"Lamb": 1e-7, "Adamax": 1e-6}


def _case_id(case):
    name, _, kwargs = case
    return name + "".join(f"-{k}={v}" for k, v in kwargs.items())


@pytest.fixture(scope="module")
def keras_runs():
    """Keras's results, computed once per case and dtype."""
    cache = {}

    def get(keras_name, kwargs, dtype):
        key = (keras_name, tuple(sorted(kwargs.items())), dtype)
        if key not in cache:
            cache[key] = weights(fit(getattr(keras.optimizers, keras_name)(**kwargs), dtype))
        return cache[key]

    return get


@pytest.mark.parametrize("case", KERAS_CASES, ids=_case_id)
def test_fit_matches_keras(case, keras_runs):
    name, keras_name, kwargs = case
    ours64 = weights(fit(getattr(ck, name)(**kwargs), "float64"))
    theirs64 = keras_runs(keras_name, kwargs, "float64")
    assert distance(ours64, theirs64) <= FLOAT64_TOLERANCE.get(keras_name, 1e-12)
    ours32 = weights(fit(getattr(ck, name)(**kwargs), "float32"))
    theirs32 = keras_runs(keras_name, kwargs, "float32")
    keras_rounding = distance(theirs32, theirs64)
    assert distance(ours32, theirs64) <= 1.5 * keras_rounding + 1e-6
    assert distance(ours32, theirs32) <= 2e-5


def test_schedule_and_gradient_options_match_keras():
    """A changing learning rate (where Keras's SGD momentum and torch's differ),
    clipping, gradient accumulation, EMA and excluded weight decay."""

    def schedule():
        return keras.optimizers.schedules.ExponentialDecay(0.1, decay_steps=5, decay_rate=0.7)

    cases = [
        ("SGD", dict(learning_rate=schedule(), momentum=0.9)),
        ("SGD", dict(learning_rate=schedule(), momentum=0.9, nesterov=True)),
        (
            "Adam",
            dict(
                learning_rate=keras.optimizers.schedules.CosineDecay(0.01, 40),
                global_clipnorm=0.5,
                use_ema=True,
                ema_momentum=0.9,
            ),
        ),
        (
            "Adam",
            dict(
                learning_rate=0.01, clipnorm=0.1, gradient_accumulation_steps=3, weight_decay=0.1
            ),
        ),
        ("Lion", dict(learning_rate=1e-3, clipvalue=0.01, weight_decay=0.5)),
        # Two kernel calls a step (biases without weight decay), one u_product.
        ("NAdam", dict(learning_rate=0.01, weight_decay=0.1)),
    ]
    for name, kwargs in cases:
        results = []
        keras_name = {"NAdam": "Nadam"}.get(name, name)
        for cls in (getattr(keras.optimizers, keras_name), getattr(ck, name)):
            opt = cls(**{k: v for k, v in kwargs.items()})
            if kwargs.get("weight_decay"):
                opt.exclude_from_weight_decay(var_names=["bias"])
            results.append(weights(fit(opt, "float64")))
        assert distance(results[1], results[0]) <= 1e-12, (name, kwargs)


def test_sgd_momentum_under_a_schedule_is_keras_not_torch():
    """Keras's velocity keeps the rates it was built with; torch's buffer does
    not: under a decaying rate the two rules part, and the class follows Keras."""

    def run(make):
        v = keras.Variable(np.zeros(3), dtype="float64")
        opt = make()
        for _step in range(6):
            opt.apply([torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)], [v])
        return v.numpy()

    def sched():
        return keras.optimizers.schedules.ExponentialDecay(0.1, 1, 0.5)

    ours = run(lambda: ck.SGD(learning_rate=sched(), momentum=0.9))
    theirs = run(lambda: keras.optimizers.SGD(learning_rate=sched(), momentum=0.9))
    np.testing.assert_allclose(ours, theirs, rtol=1e-14)
    w = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    sgd = torch.optim.SGD([w], lr=0.1, momentum=0.9)
    for step in range(6):
        for group in sgd.param_groups:
            group["lr"] = 0.1 * 0.5**step
        w.grad = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
        sgd.step()
    assert np.abs(w.detach().numpy() - ours).max() > 1e-3


def test_callbacks_drive_the_learning_rate():
    """LearningRateScheduler, ReduceLROnPlateau and EarlyStopping act on the
    optimizer as on Keras's own: same params, same final rate, same epochs."""

    def callbacks():
        return [
            keras.callbacks.LearningRateScheduler(lambda epoch, lr: lr * 0.5),
            keras.callbacks.ReduceLROnPlateau(
                monitor="loss", factor=0.1, patience=0, min_delta=10.0
            ),
            keras.callbacks.EarlyStopping(monitor="loss", patience=1, min_delta=10.0),
        ]

    results = []
    for cls in (keras.optimizers.Adam, ck.Adam):
        model = fit(cls(learning_rate=0.01), "float64", epochs=6, callbacks=callbacks(), steps=10)
        results.append(
            (
                weights(model),
                float(model.optimizer.learning_rate.numpy()),
                int(model.optimizer.iterations.numpy()),
            )
        )
    (theirs, their_lr, their_steps), (ours, our_lr, our_steps) = results
    assert our_steps == their_steps < 6 * 8  # EarlyStopping stopped both
    assert our_lr == their_lr < 0.01 * 0.5  # both callbacks lowered the rate
    assert distance(ours, theirs) <= 1e-12


# torch's rule: (class, constructor arguments, torch.optim class, its arguments).
TORCH_CASES = [
    (
        "RMSprop",
        dict(learning_rate=0.01, rho=0.8, epsilon=1e-6),
        "RMSprop",
        dict(lr=0.01, alpha=0.8, eps=1e-6),
    ),
    (
        "RMSprop",
        dict(learning_rate=0.01, momentum=0.9, centered=True),
        "RMSprop",
        dict(lr=0.01, alpha=0.9, eps=1e-7, momentum=0.9, centered=True),
    ),
    (
        "Adamax",
        dict(learning_rate=0.01, beta_1=0.8),
        "Adamax",
        dict(lr=0.01, betas=(0.8, 0.999), eps=1e-7),
    ),
    (
        "Adafactor",
        dict(learning_rate=0.01, beta_2_decay=-0.7, clip_threshold=1.5),
        "Adafactor",
        dict(lr=0.01, beta2_decay=-0.7, d=1.5),
    ),
    (
        "RAdam",
        dict(learning_rate=0.01, betas=(0.8, 0.99)),
        "RAdam",
        dict(lr=0.01, betas=(0.8, 0.99)),
    ),
    ("Rprop", dict(learning_rate=0.01, etas=(0.4, 1.3)), "Rprop", dict(lr=0.01, etas=(0.4, 1.3))),
    (
        "ASGD",
        dict(learning_rate=0.01, t0=5.0, lambd=0.01),
        "ASGD",
        dict(lr=0.01, t0=5.0, lambd=0.01),
    ),
]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
@pytest.mark.parametrize(
    "case", TORCH_CASES, ids=[_case_id((c[0], None, c[1])) for c in TORCH_CASES]
)
def test_torch_rule_matches_torch(case, dtype):
    name, kwargs, torch_name, torch_kwargs = case
    torch_kwargs = dict(torch_kwargs)
    g = torch.Generator().manual_seed(0)
    shapes = [(6, 4), (4,), (3, 2, 5)]
    initial = [torch.randn(s, generator=g, dtype=dtype) for s in shapes]
    grads = [[torch.randn(s, generator=g, dtype=dtype) for s in shapes] for _ in range(STEPS)]
    variables = [keras.Variable(w.clone(), dtype=str(dtype).split(".")[1]) for w in initial]
    opt = getattr(ck, name)(**kwargs)
    tensors = [w.clone().requires_grad_() for w in initial]
    # Keras keeps the learning rate in a float32 variable: torch gets that value.
    lr = float(np.float32(torch_kwargs.pop("lr")))
    reference = getattr(torch.optim, torch_name)(tensors, lr=lr, **torch_kwargs)
    for step_grads in grads:
        opt.apply([x.clone() for x in step_grads], variables)
        for t, x in zip(tensors, step_grads):
            t.grad = x.clone()
        reference.step()
    tolerance = 1e-5 if dtype == torch.float32 else 1e-12
    for v, t in zip(variables, tensors):
        x, y = v.value.detach().numpy().astype(np.float64), t.detach().numpy().astype(np.float64)
        assert np.abs(x - y).max() <= tolerance * max(np.abs(y).max(), 1e-3), name


def test_every_row_has_a_class():
    for row in registry.OPTIMIZERS:
        cls = getattr(ck, row.name)
        assert issubclass(cls, keras.optimizers.Optimizer)
        assert issubclass(cls, ck.Optimizer)
        assert keras.saving.get_registered_name(cls) == f"cyoptim>{row.name}"
        assert cls.__doc__ and ("Keras's" in cls.__doc__ or "torch's" in cls.__doc__)
    assert ck.Nadam is ck.NAdam and ck.Lamb is ck.LAMB
    assert issubclass(ck.Adam, keras.optimizers.Adam)


@pytest.mark.parametrize(
    "name, keras_name, kwargs",
    [
        ("SGD", "SGD", dict(momentum=0.9)),
        ("Adam", "Adam", dict(amsgrad=True)),
        ("RMSprop", "RMSprop", dict(momentum=0.5, centered=True)),
        ("Adagrad", "Adagrad", {}),
        ("NAdam", "Nadam", {}),
        ("LAMB", "Lamb", {}),
        ("Adamax", "Adamax", {}),
        ("Adadelta", "Adadelta", {}),
        ("Lion", "Lion", {}),
    ],
)
def test_optimizer_variables_are_keras_layout(name, keras_name, kwargs):
    """Same names, shapes and order as Keras's: a checkpoint's optimizer
    variables line up."""
    model = make_model("float32")
    ours, theirs = getattr(ck, name)(**kwargs), getattr(keras.optimizers, keras_name)(**kwargs)
    ours.build(model.trainable_variables)
    theirs.build(model.trainable_variables)

    def layout(opt):  # NAdam's u_product has an automatic name: variable_<count>
        return [
            (
                re.sub(r"variable_\d+", "variable", v.path.replace(opt.name, "opt")),
                tuple(v.shape),
                v.dtype,
            )
            for v in opt.variables
        ]

    assert layout(ours) == layout(theirs)


def test_updates_in_place_without_copies():
    model = make_model("float32")
    opt = ck.Adam()
    fit(opt, "float32", model=model, steps=2)
    pointers = [v.value.data_ptr() for v in model.weights + opt.variables]
    before = [v.numpy().copy() for v in model.weights]
    fit(opt, "float32", model=model, steps=3)
    assert [v.value.data_ptr() for v in model.weights + opt.variables] == pointers
    assert all(not np.array_equal(a, v.numpy()) for a, v in zip(before, model.weights))


def test_save_and_load_model(tmp_path):
    """model.save / keras.saving.load_model keep the class, its config and its
    variables; training on from both gives the same params, bit for bit."""
    for name, kwargs in [
        ("AdamW", dict(learning_rate=3e-3, weight_decay=0.01)),
        ("RAdam", dict(learning_rate=0.01, betas=(0.8, 0.99))),
        ("Adafactor", dict(learning_rate=0.01)),
        (
            "SGD",
            dict(
                learning_rate=keras.optimizers.schedules.ExponentialDecay(0.1, 10, 0.5),
                momentum=0.9,
            ),
        ),
    ]:
        model = fit(getattr(ck, name)(**kwargs), "float32", steps=5)
        path = tmp_path / f"{name}.keras"
        model.save(path)
        loaded = keras.saving.load_model(path)
        assert type(loaded.optimizer) is getattr(ck, name)
        assert loaded.optimizer.get_config() == model.optimizer.get_config()
        for a, b in zip(model.optimizer.variables, loaded.optimizer.variables):
            np.testing.assert_array_equal(a.numpy(), b.numpy())
        x, y = data("float32", 4, seed=7)
        for m in (model, loaded):
            m.fit(x, y, batch_size=BATCH, epochs=1, shuffle=False, verbose=0)
        for a, b in zip(model.weights, loaded.weights):
            np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_cyoptim_arguments_where_keras_has_none():
    opt = ck.RAdam(learning_rate=0.01, betas=[0.8, 0.99], eps=1e-6, weight_decay=0.1)
    config = opt.get_config()
    assert config["betas"] == [0.8, 0.99] and config["eps"] == 1e-6
    assert config["weight_decay"] == 0.1
    again = ck.RAdam.from_config(config)
    assert again.get_config() == config
    with pytest.raises(ValueError, match="Invalid beta parameter at index 0: 1.5"):
        ck.RAdam(betas=(1.5, 0.9))
    with pytest.raises(ValueError, match="Invalid eta values"):
        ck.Rprop(etas=(1.5, 1.2))
    with pytest.raises(ValueError, match="not recognized"):
        ck.ASGD(lr=0.1)


def test_bad_input_changes_nothing():
    model = make_model("float32")
    opt = ck.Adam(learning_rate=0.01, weight_decay=0.1)
    fit(opt, "float32", model=model, steps=2)
    before = [v.numpy().copy() for v in model.weights + opt.variables]
    grads = [torch.ones(v.shape) for v in model.trainable_variables]
    grads[3] = torch.ones(7)
    with pytest.raises(ValueError, match="gradient of variable .* has shape"):
        opt.apply(grads, model.trainable_variables)
    for a, v in zip(before, model.weights + opt.variables):
        np.testing.assert_array_equal(a, v.numpy())


def test_unsupported_variables_are_refused_at_build():
    v = keras.Variable(np.ones(3), dtype="float16")
    with pytest.raises(ValueError, match="has dtype float16"):
        ck.SGD().build([v])
    with pytest.raises(RuntimeError, match="stateless"):
        w = keras.Variable(np.ones(3, np.float32))
        opt = ck.SGD()
        opt.build([w])
        opt.stateless_apply([x.value for x in opt.variables], [torch.ones(3)], [w.value])


@pytest.mark.parametrize(
    "name, why",
    [
        ("jax", "immutable"),
        ("tensorflow", "tf.Variable"),
        ("numpy", "inference only"),
        ("mlx", "torch backend"),
    ],
)
def test_other_backends_are_refused(name, why):
    problem = _backend.backend_problem(name)
    assert "in place" in problem and why in problem and "KERAS_BACKEND=torch" in problem
    with pytest.raises(RuntimeError, match="needs Keras's torch backend"):
        _backend.check_backend(name)
    assert _backend.backend_problem("torch") is None
    _backend.check_backend("torch")


def test_import_refuses_another_backend(monkeypatch):
    monkeypatch.setattr(keras.backend, "backend", lambda: "jax")
    with pytest.raises(ImportError, match="JAX arrays are immutable"):
        _backend.import_keras()


# -- The demo --------------------------------------------------------------------------


def test_keras_demo_trains_both_side_by_side(capsys):
    from cyoptim.keras.demo import run_keras_demo

    results = run_keras_demo(["adam", "rmsprop", "radam"], epochs=1, seed=0)
    by_key = {(r["optimizer"], r["implementation"]): r for r in results}
    assert set(by_key) == {
        ("Adam", "cyoptim.keras"),
        ("Adam", "keras.optimizers"),
        ("RMSprop", "cyoptim.keras"),
        ("RMSprop", "keras.optimizers"),
        ("RAdam", "cyoptim.keras"),
    }
    ours, theirs = by_key["Adam", "cyoptim.keras"], by_key["Adam", "keras.optimizers"]
    assert ours["final_loss"] == pytest.approx(theirs["final_loss"], rel=1e-4)
    assert ours["test_accuracy"] == pytest.approx(theirs["test_accuracy"], abs=0.01)
    assert ours["final_loss"] < 2.0 and 0 < ours["step_seconds"] < ours["seconds"]
    assert ours["rule"] == "Keras" and by_key["RMSprop", "cyoptim.keras"]["rule"] == "torch"
    table = capsys.readouterr().out
    assert "Adam" in table and "opt speed-up" in table and "keras loss" in table


def test_keras_demo_command_line(tmp_path):
    import subprocess
    import sys

    import cyoptim

    env = dict(os.environ)
    env.pop("KERAS_BACKEND", None)  # the command picks torch itself
    src = os.path.dirname(os.path.dirname(os.path.abspath(cyoptim.__file__)))
    env["PYTHONPATH"] = os.pathsep.join([src] + [p for p in [env.get("PYTHONPATH")] if p])
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "cyoptim",
            "demo",
            "--framework",
            "keras",
            "--epochs",
            "1",
            "--optimizers",
            "sgd",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "SGD" in out and "keras loss" in out and "torch" in out
    env["KERAS_BACKEND"] = "jax"
    bad = subprocess.run(
        [sys.executable, "-m", "cyoptim", "demo", "--framework", "keras", "--epochs", "1"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and "--framework keras" in bad.stderr
    assert "torch backend" in bad.stderr or "KERAS_BACKEND=torch" in bad.stderr
