import numpy as np
import pytest
from conftest import torch_or_skip
from optim_harness import (
    assert_state_equal,
    assert_validation_matches_torch,
    grad_sequence,
    make_params,
    run_cyoptim,
    run_torch_with_state,
)

import cyoptim


def run_torch_state(params, seq, kwargs, group_options=None, lr_at=None):
    """torch.optim.Rprop on copies of params: the final params and state."""
    torch = torch_or_skip()
    return run_torch_with_state(torch.optim.Rprop, params, seq, kwargs, group_options, lr_at)


def assert_bitwise_torch(ours_params, ours, theirs_params, theirs):
    for k, (a, b) in enumerate(zip(ours_params, theirs_params)):
        assert a.tobytes() == b.tobytes(), f"param {k} differs from torch"
    state = ours.state_dict()["state"]
    assert sorted(state) == sorted(theirs)
    for i, entry in state.items():
        assert sorted(entry) == sorted(theirs[i]) == ["prev", "step", "step_size"]
        assert entry["step"] == theirs[i]["step"]
        for name in ("prev", "step_size"):
            assert entry[name].tobytes() == theirs[i][name].tobytes(), f"{name} of param {i}"


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        dict(lr=0.05, maximize=True),
        dict(etas=(0.3, 1.5), step_sizes=(1e-3, 0.02)),  # both bounds hit often
        dict(etas=(0.9, 3.0), step_sizes=(0.02, 0.01)),  # min > max: clamp gives max
        dict(etas=(1 - 1e-9, 1.2)),  # etaminus is 1.0 in float32: torch then zeroes the
    ],
    ids=str,
)  # grad wherever the factor is 1, and so do we
def test_rprop_equals_torch_bitwise(kwargs, dtype):
    """Every operation of Rprop rounds as torch's: params and state bit for bit,
    over two groups with skipped grads (step counts that differ per param)."""
    params = make_params(dtype)
    start = [p.copy() for p in params]
    seq = grad_sequence(params, steps=60)
    group = dict(lr=0.02, etas=(0.4, 1.1))
    ours = run_cyoptim(cyoptim.Rprop, params, seq, kwargs, group)
    theirs_params, theirs = run_torch_state(start, seq, kwargs, group)
    assert_bitwise_torch(params, ours, theirs_params, theirs)


def test_rprop_underflowing_product_counts_as_no_sign(dtype):
    """sign(g * prev) is the sign of the rounded product: tiny grads whose product
    underflows to 0 leave the step size alone, as in torch, though both signs agree."""
    tiny = np.finfo(dtype).tiny
    w = np.zeros(3, dtype)
    seq = [[np.array([tiny, 1.0, -tiny], dtype)]] * 2
    ours = run_cyoptim(cyoptim.Rprop, [w], seq, dict(lr=0.1))
    lr, grown = dtype(0.1), dtype(0.1) * dtype(1.2)
    np.testing.assert_array_equal(ours.state[0]["step_size"], [lr, grown, lr])
    theirs_params, theirs = run_torch_state([np.zeros(3, dtype)], seq, dict(lr=0.1))
    assert_bitwise_torch([w], ours, theirs_params, theirs)


def test_rprop_step_sizes_grow_to_the_cap_and_shrink_to_the_floor():
    """Same sign every step: the step size grows by etaplus until step_size_max.
    Alternating signs: it shrinks by etaminus down to step_size_min, and the
    param moves every other step only (a flip zeroes the grad, so the next
    product is 0: that step keeps the step size and moves by it)."""
    lr, etaminus, etaplus, low, high = 0.1, 0.5, 2.0, 0.01, 0.5
    w = np.zeros(2)
    opt = cyoptim.Rprop([w], lr=lr, etas=(etaminus, etaplus), step_sizes=(low, high))
    expected_size = np.array([lr, lr])
    expected_w = np.zeros(2)
    previous = np.zeros(2)
    moved = []
    for t in range(12):
        g = np.array([1.0, (-1.0) ** t])  # element 1 flips every step
        before = w[1]
        opt.step([g.copy()])
        product = g * previous
        factor = np.where(product > 0, etaplus, np.where(product < 0, etaminus, 1.0))
        expected_size = np.clip(expected_size * factor, low, high)
        g[product < 0] = 0.0
        expected_w -= np.sign(g) * expected_size
        previous = g
        np.testing.assert_array_equal(opt.state[0]["step_size"], expected_size)
        np.testing.assert_array_equal(opt.state[0]["prev"], g)
        np.testing.assert_array_equal(w, expected_w)
        moved.append(w[1] != before)
    assert opt.state[0]["step_size"].tolist() == [high, low]  # 0.1 0.2 0.4 0.5; ... 0.0125 0.01
    assert moved == [True, False] * 6


def test_rprop_flip_then_unchanged_sign():
    """The three cases of one element by hand: a flip shrinks the step size,
    zeroes the grad (no move, prev = 0), and the next step neither grows nor
    shrinks it."""
    w = np.zeros(1)
    opt = cyoptim.Rprop([w], lr=0.1)
    sizes, params, prevs = [], [], []
    for g in (1.0, 1.0, -1.0, -1.0, -1.0):
        opt.step([np.array([g])])
        sizes.append(opt.state[0]["step_size"][0])
        params.append(w[0])
        prevs.append(opt.state[0]["prev"][0])
    np.testing.assert_allclose(sizes, [0.1, 0.12, 0.06, 0.06, 0.072], rtol=1e-15)
    np.testing.assert_allclose(params, [-0.1, -0.22, -0.22, -0.16, -0.088], rtol=1e-14)
    assert prevs == [1.0, 1.0, 0.0, -1.0, -1.0]


def test_rprop_lr_only_sets_the_first_step_size():
    """lr is read at a param's first step only: halving it later changes nothing for
    params that have stepped, and a param whose first grad comes after the change
    starts from the new lr, as torch's lazily created state does."""
    params = make_params(np.float64)
    start = [p.copy() for p in params]
    seq = grad_sequence(params, steps=30)  # param 3 has no grad before step 10
    opt = cyoptim.Rprop(params, lr=0.04)
    for t, grads in enumerate(seq):
        if t == 5:
            opt.param_groups[0]["lr"] = 0.01
        opt.step(grads)
    theirs_params, theirs = run_torch_state(start, seq, {"lr": 0.04}, lr_at={5: 0.01})
    assert_bitwise_torch(params, opt, theirs_params, theirs)
    unchanged = run_cyoptim(
        cyoptim.Rprop, [p.copy() for p in start[:3]], [g[:3] for g in seq], {"lr": 0.04}
    )
    for a, b in zip(params[:3], unchanged.param_groups[0]["params"]):
        np.testing.assert_array_equal(a, b)


def test_rprop_nan_grad_keeps_the_param_and_lands_in_prev():
    """torch.sign(NaN) = 0: a NaN grad element moves nothing and changes no step
    size; it is kept in prev, so the next step's product is NaN too: its factor
    is 1 (the step size stays) and the param moves by the step size."""
    w = np.array([1.0, 2.0])
    opt = cyoptim.Rprop([w], lr=0.1)
    opt.step([np.array([1.0, 1.0])])
    with np.errstate(invalid="ignore"):
        opt.step([np.array([np.nan, 1.0])])
    np.testing.assert_array_equal(w, [0.9, 2.0 - 0.1 - 0.12])
    assert np.isnan(opt.state[0]["prev"][0])
    np.testing.assert_array_equal(opt.state[0]["step_size"], [0.1, 0.12])
    with np.errstate(invalid="ignore"):
        opt.step([np.array([-1.0, 1.0])])
    assert w[0] == 1.0 and opt.state[0]["step_size"][0] == 0.1


def test_rprop_twin_equals_kernel_on_tiny_and_special_values(dtype):
    """The NumPy twin and the kernel agree bitwise on zeros of both signs,
    subnormal products, inf and NaN."""
    tiny = np.finfo(dtype).tiny
    special = np.array(
        [
            0.0,
            -0.0,
            tiny,
            -tiny,
            np.inf,
            -np.inf,
            np.nan,
            1.0,
            -1.0,
            3.0,
            -2.0,
            0.5,
            tiny * 4,
            -tiny * 2,
            1e-3,
            -1e-3,
            7.0,
        ],
        dtype,
    )
    rng = np.random.default_rng(5)
    params = [np.linspace(-1, 1, special.size).astype(dtype)]
    twins = [params[0].copy()]
    fast = cyoptim.Rprop(params, lr=0.05, step_sizes=(1e-3, 1.0))
    slow = cyoptim.reference.Rprop(twins, lr=0.05, step_sizes=(1e-3, 1.0))
    with np.errstate(all="ignore"):
        for _ in range(6):
            g = rng.permutation(special)
            fast.step([g])
            slow.step([g.copy()])
    assert params[0].tobytes() == twins[0].tobytes()
    assert_state_equal(fast.state_dict(), slow.state_dict())


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(lr=-1.0),
        dict(etas=(1.0, 1.2)),
        dict(etas=(0.0, 1.2)),
        dict(etas=(0.5, 1.0)),
        dict(etas=(0.5, 0.9)),
        dict(etas=(0, 2)),
        dict(lr=-1.0, etas=(2.0, 0.5)),
    ],
    ids=str,
)
def test_rprop_validation_messages_equal_torch(kwargs):
    torch = torch_or_skip()
    assert_validation_matches_torch(cyoptim.Rprop, torch.optim.Rprop, kwargs)


@pytest.mark.parametrize(
    "name,value,error",
    [
        ("etas", (0.5, 1.2, 2.0), ValueError),
        ("etas", 0.5, ValueError),
        ("step_sizes", (1e-6,), ValueError),
        ("step_sizes", ("1e-6", 50), TypeError),
        ("etas", "ab", ValueError),
    ],
)
def test_rprop_refuses_pairs_that_are_not_pairs(name, value, error):
    """torch would fail at its first step; here the constructor and
    add_param_group refuse, and nothing is added."""
    with pytest.raises(error, match=name):
        cyoptim.Rprop([np.zeros(2)], **{name: value})
    opt = cyoptim.Rprop([np.zeros(2)])
    with pytest.raises((ValueError, TypeError), match=name):
        opt.add_param_group({"params": [np.zeros(3)], name: value})
    assert len(opt.param_groups) == 1


def test_rprop_state_dict_layout_is_torchs():
    torch = torch_or_skip()
    w = np.ones(4, np.float32)
    ours = cyoptim.Rprop([w])
    ours.step([np.full(4, 0.5, np.float32)])
    t = torch.ones(4, requires_grad=True)
    theirs = torch.optim.Rprop([t], foreach=False)
    t.grad = torch.full((4,), 0.5)
    theirs.step()
    sd, tsd = ours.state_dict(), theirs.state_dict()
    assert list(sd["state"][0]) == list(tsd["state"][0])
    assert set(sd["param_groups"][0]) <= set(tsd["param_groups"][0])
    for name in ("lr", "etas", "step_sizes", "maximize"):
        assert sd["param_groups"][0][name] == tsd["param_groups"][0][name]
