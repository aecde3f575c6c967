import numpy as np
import pytest
from conftest import torch_or_skip
from optim_harness import (
    TOLERANCE,
    assert_bad_scalar_state_refused,
    assert_validation_matches_torch,
    grad_sequence,
    make_params,
    max_relative_error,
    run_torch_with_state,
    torch_test_lr,
)

import cyoptim


def f32(x):
    """x rounded to float32, as a Python float (torch's float32 scalar tensors)."""
    return float(np.float32(x))


def run_both(dtype, kwargs, steps=60, group_options=None, lr_at=None):
    """cyoptim and torch over the same grads (two groups, skipped grads); returns
    (our optimizer, our params, torch's params, torch's state)."""
    torch = torch_or_skip()
    params = make_params(dtype)
    start = [p.copy() for p in params]
    seq = grad_sequence(params, steps=steps)
    groups = (
        None
        if group_options is None
        else [dict(params=params[:2], **group_options), dict(params=params[2:])]
    )
    opt = cyoptim.ASGD(params if groups is None else groups, **kwargs)
    for t, grads in enumerate(seq):
        if lr_at and t in lr_at:
            for group in opt.param_groups:
                group["lr"] = lr_at[t]
        opt.step(grads)
    theirs, state = run_torch_with_state(
        torch.optim.ASGD, start, seq, kwargs, group_options, lr_at
    )
    return opt, params, theirs, state


def test_asgd_eta_and_mu_equal_torch_bitwise(dtype):
    """torch keeps eta and mu in float32 scalar tensors, for float64 params too; so
    do we, bit for bit, per param (params that skipped steps have their own)."""
    lr = torch_test_lr(dtype, 0.05, 5e-3)
    opt, params, theirs, expected = run_both(
        dtype, dict(lr=lr, lambd=0.3, alpha=0.6, t0=4.5), group_options=dict(lr=0.4 * lr, t0=20.0)
    )
    state = opt.state_dict()["state"]
    assert sorted(state) == sorted(expected)
    for i, entry in state.items():
        assert list(entry) == list(expected[i]) == ["step", "eta", "mu", "ax"]
        for name in ("step", "eta", "mu"):
            assert entry[name] == expected[i][name], f"{name} of param {i}"
            assert entry[name] == f32(entry[name])
        assert max_relative_error(entry["ax"], expected[i]["ax"]) <= TOLERANCE[dtype]
    for k, (a, b) in enumerate(zip(params, theirs)):
        assert max_relative_error(a, b) <= TOLERANCE[dtype], f"param {k}"
    assert len({entry["eta"] for entry in state.values()}) == 4
    assert len({entry["mu"] for entry in state.values()}) == 4


def test_asgd_float64_params_step_with_float32_rates():
    """Two steps by hand: eta_1 = float32(lr), then eta_2 = float32(lr / (1 +
    lambd*lr)^alpha); both differ from the double values, and the float64 params
    move by exactly the float32 rates."""
    lr, lambd, alpha = 0.01, 0.5, 0.75
    w0 = np.array([1.0, -2.0, 0.5])
    g = np.array([0.3, -0.7, 2.0])
    w = w0.copy()
    opt = cyoptim.ASGD([w], lr=lr, lambd=lambd, alpha=alpha, t0=0.5)
    expected = w0.copy()
    eta = f32(lr)
    assert eta != lr
    for t in (1, 2):
        opt.step([g.copy()])
        expected = expected * (1 - lambd * eta) + (-eta) * g
        np.testing.assert_array_equal(w, expected)
        exact = lr / (1 + lambd * lr * t) ** alpha
        eta = f32(exact)
        assert opt.state[0]["eta"] == eta != exact
    assert opt.state[0]["mu"] == f32(1 / 1.5) != 1 / 1.5  # 1 / max(1, 2 - 0.5)


def test_asgd_ax_follows_the_params_then_averages_them():
    """With t0 = 3, ax is the param itself (copied, bitwise) through step
    t0 + 2 = 5; from there ax += mu * (param - ax) with mu = float32(1 / (t - 3)),
    bitwise, which is the mean of the params since step 5 up to the float32
    rounding of mu."""
    rng = np.random.default_rng(2)
    w = rng.standard_normal(50)
    opt = cyoptim.ASGD([w], lr=0.05, t0=3)
    history, expected = [], None
    for t in range(1, 16):
        opt.step([rng.standard_normal(50)])
        history.append(w.copy())
        ax = opt.state[0]["ax"]
        mu = f32(1 / max(1, t - 4))  # the mu of this step (set by the last one)
        expected = w.copy() if mu == 1 else expected + (w - expected) * mu
        np.testing.assert_array_equal(ax, expected)
        if t <= 5:
            np.testing.assert_array_equal(ax, w)
        else:
            np.testing.assert_allclose(ax, np.mean(history[4:], axis=0), rtol=1e-6)
            assert not np.array_equal(ax, w)
        assert opt.state[0]["mu"] == f32(1 / max(1, t - 3))


@pytest.mark.parametrize("t0", [3.0, 2.5, 0.0])
def test_asgd_averaging_matches_torch(t0, dtype):
    """ax over 60 steps with skipped grads, against torch (the mu == 1 copy and
    the mu != 1 average, including a t0 that is not a whole number)."""
    opt, _, _, expected = run_both(dtype, dict(lr=0.02, t0=t0, weight_decay=0.01))
    for i, entry in opt.state_dict()["state"].items():
        assert max_relative_error(entry["ax"], expected[i]["ax"]) <= TOLERANCE[dtype]
        assert entry["mu"] == expected[i]["mu"] < 1


def test_asgd_lr_acts_through_eta_one_step_late():
    """A new lr enters eta at the step it is set (eta of the next step); a param
    whose first grad comes after the change starts from float32(new lr)."""
    opt, params, theirs, expected = run_both(
        np.float64, dict(lr=0.02), steps=14, lr_at={3: 0.1, 8: 0.05}
    )
    for i, entry in opt.state_dict()["state"].items():
        assert entry["eta"] == expected[i]["eta"]
    for k, (a, b) in enumerate(zip(params, theirs)):
        assert max_relative_error(a, b) <= TOLERANCE[np.float64], f"param {k}"
    w = np.zeros(2)
    opt = cyoptim.ASGD([w], lr=0.02)
    opt.param_groups[0]["lr"] = 0.3
    opt.step([np.ones(2)])
    np.testing.assert_array_equal(w, np.full(2, -f32(0.3)))


@pytest.mark.parametrize(
    "kwargs", [dict(lr=-1.0), dict(weight_decay=-0.1), dict(lr=-1, weight_decay=-1)], ids=str
)
def test_asgd_validation_messages_equal_torch(kwargs):
    torch = torch_or_skip()
    assert_validation_matches_torch(cyoptim.ASGD, torch.optim.ASGD, kwargs)


@pytest.mark.parametrize("name", ["lambd", "alpha", "t0"])
def test_asgd_refuses_non_numbers(name):
    """torch checks neither (its step would fail); here the constructor refuses."""
    with pytest.raises(TypeError, match=name):
        cyoptim.ASGD([np.zeros(2)], **{name: "1e-4"})


@pytest.mark.parametrize(
    "name,bad",
    [
        ("eta", -0.1),
        ("eta", np.nan),
        ("eta", "0.01"),
        ("mu", 1.5),
        ("mu", None),
        ("mu", "missing"),
    ],
)
def test_asgd_load_refuses_bad_eta_and_mu(name, bad):
    assert_bad_scalar_state_refused(cyoptim.ASGD, name, bad)


def test_asgd_loaded_eta_is_used_per_param():
    """Two params in one ParamBuffer (one fused run) with different loaded etas:
    each steps with its own, as the NumPy twin does."""
    buf = cyoptim.ParamBuffer([(40,), (24,)], np.float64)
    for p in buf.params:
        p[:] = 1.0
    opt = cyoptim.ASGD(buf.params, lr=0.1)
    for g in buf.grads:
        g[:] = 1.0
    opt.step(buf.grads)
    assert opt._plans[0].fused
    saved = opt.state_dict()
    saved["state"][1]["eta"] = 0.25
    twins = [np.ones(40), np.ones(24)]
    ref = cyoptim.reference.ASGD(twins, lr=0.1)
    ref.step([np.ones(40), np.ones(24)])
    ref.load_state_dict(saved)
    opt.load_state_dict(saved)
    opt.step(buf.grads)
    ref.step([np.ones(40), np.ones(24)])
    for a, b in zip(buf.params, twins):
        np.testing.assert_array_equal(a, b)
    eta = f32(0.1)
    first = 1.0 * (1 - 1e-4 * eta) + (-eta) * 1.0
    assert buf.params[1][0] == first * (1 - 1e-4 * 0.25) + (-0.25) * 1.0
    assert buf.params[0][0] != buf.params[1][0]


@pytest.mark.parametrize("default", ["float32", "float64"])
def test_torch_front_end_eta_and_mu_follow_torchs_scalar_dtype(default):
    """cyoptim.torch.ASGD rounds eta and mu as its state tensors' dtype says:
    float32 under torch's default dtype, double under set_default_dtype(float64),
    bit for bit as torch.optim.ASGD."""
    torch = torch_or_skip()
    import cyoptim.torch as cot

    previous = torch.get_default_dtype()
    torch.set_default_dtype(getattr(torch, default))
    try:
        ours, theirs = (torch.ones(5, dtype=torch.float64, requires_grad=True) for _ in range(2))
        opts = [
            cls([t], lr=0.01, lambd=0.3, t0=1.5)
            for cls, t in ((cot.ASGD, ours), (torch.optim.ASGD, theirs))
        ]
        for step in range(6):
            for opt, t in zip(opts, (ours, theirs)):
                t.grad = torch.linspace(-1, 1, 5, dtype=torch.float64) * (step + 1)
                opt.step()
        for name in ("step", "eta", "mu"):
            a, b = opts[0].state[ours][name], opts[1].state[theirs][name]
            assert a.dtype == b.dtype == getattr(torch, default)
            assert a.item() == b.item(), name
        assert opts[0].state[ours]["mu"].item() != 1
    finally:
        torch.set_default_dtype(previous)
