import math

import numpy as np
import pytest
from optim_harness import (
    TOLERANCE,
    assert_state_equal,
    grad_sequence,
    make_params,
    max_relative_error,
)

import cyoptim
import cyoptim.reference as ref


def test_lamb_equals_numpy_reference_on_multi_chunk_tensors(dtype):
    """Tensors of several chunks (4096 elements) with ragged ends, bitwise."""
    shapes = [(4096,), (4097,), (3, 5000), (1,)]
    params = make_params(dtype, seed=5, shapes=shapes)
    twins = [p.copy() for p in params]
    fast = cyoptim.LAMB(params, lr=0.05, weight_decay=0.01)
    slow = ref.LAMB(twins, lr=0.05, weight_decay=0.01)
    for grads in grad_sequence(params, steps=5, skip=False):
        fast.step(grads)
        slow.step(grads)
    for a, b in zip(params, twins):
        np.testing.assert_array_equal(a, b)


def naive_lamb(params, grads_seq, lr, betas, eps, weight_decay):
    """optax.lamb's formulas, written plainly in float64 (np.linalg.norm for the norms)."""
    b1, b2 = betas
    params = [p.astype(np.float64) for p in params]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    t = [0] * len(params)
    for grads in grads_seq:
        for k, g in enumerate(grads):
            if g is None:
                continue
            t[k] += 1
            m[k] = (1 - b1) * g + b1 * m[k]
            v[k] = (1 - b2) * g * g + b2 * v[k]
            u = (m[k] / (1 - b1 ** t[k])) / (np.sqrt(v[k] / (1 - b2 ** t[k])) + eps)
            u = u + weight_decay * params[k]
            pn, un = np.linalg.norm(params[k]), np.linalg.norm(u)
            r = 1.0 if pn == 0 or un == 0 else pn / un
            params[k] = params[k] - lr * r * u
    return params


@pytest.mark.parametrize("weight_decay", [0.0, 0.01])
def test_lamb_matches_optax_formulas(weight_decay):
    """100 steps, skipped grads, float64: within the tolerance of docs/contract.md §1."""
    params = make_params(np.float64)
    start = [p.copy() for p in params]
    seq = grad_sequence(params)
    kwargs = dict(lr=1e-2, betas=(0.9, 0.99), eps=1e-6, weight_decay=weight_decay)
    opt = cyoptim.LAMB(params, **kwargs)
    for grads in seq:
        opt.step(grads)
    for k, (ours, theirs) in enumerate(zip(params, naive_lamb(start, seq, **kwargs))):
        assert not np.array_equal(ours, start[k])
        err = max_relative_error(ours, theirs)
        assert err <= TOLERANCE[np.float64], f"param {k}: {err:.3g}"


def test_lamb_float32_close_to_float64_formulas():
    params = make_params(np.float32)
    start = [p.astype(np.float64) for p in params]
    seq = grad_sequence(params, steps=10)
    opt = cyoptim.LAMB(params, lr=1e-3, weight_decay=0.01)
    for grads in seq:
        opt.step(grads)
    seq64 = [[None if g is None else g.astype(np.float64) for g in grads] for grads in seq]
    expected = naive_lamb(start, seq64, 1e-3, (0.9, 0.999), 1e-6, 0.01)
    for ours, theirs in zip(params, expected):
        assert max_relative_error(ours, theirs) <= 1e-5


def test_lamb_update_scratch_is_not_state(dtype):
    """u lives in an internal param-sized block between the kernel's passes:
    allocated once, reused, never in state / state_dict / load_state_dict, and
    its content on entry never matters (a round trip into the same optimizer,
    whose scratch holds NaN, continues bit-identically)."""
    params = make_params(dtype)
    seq = grad_sequence(params, steps=12)
    twins = [p.copy() for p in params]
    straight = cyoptim.LAMB(twins, lr=1e-2, weight_decay=0.1)
    for grads in seq:
        straight.step(grads)

    opt = cyoptim.LAMB(params, lr=1e-2, weight_decay=0.1)
    for grads in seq[:6]:
        opt.step(grads)
    scratch = opt._blocks[0]["update"]
    assert scratch.size == sum(p.size for p in params) and scratch.dtype == dtype
    assert all(set(entry) == {"step", "exp_avg", "exp_avg_sq"} for entry in opt.state.values())
    saved = opt.state_dict()
    assert all(
        set(entry) == {"step", "exp_avg", "exp_avg_sq"} for entry in saved["state"].values()
    )
    bad = {
        "state": {i: dict(e, update=e["exp_avg"]) for i, e in saved["state"].items()},
        "param_groups": saved["param_groups"],
    }
    with pytest.raises(ValueError, match="has keys"):
        opt.load_state_dict(bad)

    for grads in seq[6:9]:  # wander off, then load the saved state back
        opt.step(grads)
    rewound = [p.copy() for p in make_params(dtype)]
    replay = cyoptim.LAMB(rewound, lr=1e-2, weight_decay=0.1)
    for grads in seq[:6]:
        replay.step(grads)
    for p, q in zip(params, rewound):
        p[...] = q
    opt.load_state_dict(saved)
    opt._blocks[0]["update"].fill(np.nan)  # whatever the scratch holds
    scratch = opt._blocks[0]["update"]
    for grads in seq[6:]:
        opt.step(grads)
    assert opt._blocks[0]["update"] is scratch  # reused, not reallocated per step
    for k, (a, b) in enumerate(zip(params, twins)):
        np.testing.assert_array_equal(a, b, err_msg=f"param {k}")
    assert_state_equal(straight.state_dict(), opt.state_dict())


def test_lamb_trust_ratio_is_per_tensor_in_a_param_buffer(dtype):
    """A ParamBuffer group is one fused run for element-wise kernels; LAMB must
    still take one trust ratio per tensor: same bits as one optimizer per tensor."""
    buf = cyoptim.ParamBuffer([(70, 100), (5000,), (3,)], dtype)
    rng = np.random.default_rng(2)
    for k, p in enumerate(buf.params):
        p[...] = rng.standard_normal(p.shape) * 10.0**k
    alone = [p.copy() for p in buf.params]
    fused = cyoptim.LAMB(buf.params, lr=0.1)
    separate = [cyoptim.LAMB([p], lr=0.1) for p in alone]
    for _ in range(3):
        for g in buf.grads:
            g[...] = rng.standard_normal(g.shape)
        fused.step(buf.grads)
        for opt, g in zip(separate, buf.grads):
            opt.step([g.copy()])
    assert fused._plans[0].fused  # the element-wise kernels would fuse this group
    for a, b in zip(buf.params, alone):
        np.testing.assert_array_equal(a, b)


def test_lamb_two_steps_by_hand():
    lr, b1, b2, eps, wd = 0.1, 0.9, 0.99, 1e-6, 0.5
    w = np.array([3.0, -4.0])
    opt = cyoptim.LAMB([w], lr=lr, betas=(b1, b2), eps=eps, weight_decay=wd)
    # Step 1: m_hat = g, v_hat = g^2, so u = g/(|g| + eps) + wd*p.
    g1 = [2.0, 1.0]
    opt.step([np.array(g1)])
    u = [2.0 / (2.0 + eps) + 0.5 * 3.0, 1.0 / (1.0 + eps) + 0.5 * -4.0]
    r = 5.0 / math.hypot(*u)
    p1 = [3.0 - lr * r * u[0], -4.0 - lr * r * u[1]]
    np.testing.assert_allclose(w, p1, rtol=1e-15)
    # Step 2, with the moments written out.
    g2 = [-1.0, 3.0]
    opt.step([np.array(g2)])
    m = [0.1 * b + 0.9 * (0.1 * a) for a, b in zip(g1, g2)]
    v = [0.01 * b * b + 0.99 * (0.01 * a * a) for a, b in zip(g1, g2)]
    u = [
        (mi / (1 - b1**2)) / (math.sqrt(vi / (1 - b2**2)) + eps) + wd * p
        for mi, vi, p in zip(m, v, p1)
    ]
    r = math.hypot(*p1) / math.hypot(*u)
    np.testing.assert_allclose(w, [p - lr * r * ui for p, ui in zip(p1, u)], rtol=1e-14)
    state = opt.state_dict()["state"][0]
    assert state["step"] == 2.0
    np.testing.assert_allclose(state["exp_avg"], m, rtol=1e-15)
    np.testing.assert_allclose(state["exp_avg_sq"], v, rtol=1e-15)


def test_lamb_zero_norms_use_ratio_one(dtype):
    # ||p|| = 0: the step is lr * u (u = sign(g) up to eps at step 1).
    w = np.zeros(3, dtype)
    cyoptim.LAMB([w], lr=0.5).step([np.array([1.0, -2.0, 0.0], dtype)])
    np.testing.assert_allclose(w, [-0.5, 0.5, 0.0], rtol=1e-5)
    # ||u|| = 0 (zero grad, no decay): nothing moves, nothing becomes NaN.
    w = np.array([1.0, 2.0], dtype)
    cyoptim.LAMB([w], lr=0.5).step([np.zeros(2, dtype)])
    np.testing.assert_array_equal(w, [1.0, 2.0])


def test_lamb_step_size_is_lr_times_param_norm():
    """With the trust ratio, ||p_new - p|| = lr * ||p|| whatever the grad's scale."""
    rng = np.random.default_rng(0)
    for scale in (1e-8, 1.0, 1e8):
        w = rng.standard_normal(1000)
        before = w.copy()
        cyoptim.LAMB([w], lr=0.01).step([scale * rng.standard_normal(1000)])
        assert abs(np.linalg.norm(w - before) - 0.01 * np.linalg.norm(before)) < 1e-12


def test_lamb_maximize_and_nan():
    w = np.array([1.0, 1.0])
    cyoptim.LAMB([w], lr=0.1, maximize=True).step([np.array([1.0, 1.0])])
    assert np.all(w > 1.0)
    w = np.ones(3)
    cyoptim.LAMB([w]).step([np.array([np.nan, 1.0, 1.0])])
    assert np.all(np.isnan(w))  # a NaN in u makes the tensor's norm, hence its ratio, NaN


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(lr=-1.0), "Invalid learning rate: -1.0"),
        (dict(eps=-1e-6), "Invalid epsilon value: -1e-06"),
        (dict(betas=(1.0, 0.99)), "Invalid beta parameter at index 0: 1.0"),
        (dict(betas=(0.9, 1.5)), "Invalid beta parameter at index 1: 1.5"),
        (dict(weight_decay=-0.5), "Invalid weight_decay value: -0.5"),
    ],
)
def test_lamb_validates_like_torch(kwargs, message):
    with pytest.raises(ValueError, match=message.replace(".", r"\.")):
        cyoptim.LAMB([np.zeros(2)], **kwargs)


def test_lamb_defaults_and_state_keys():
    opt = cyoptim.LAMB([np.zeros(2, np.float32)])
    group = opt.param_groups[0]
    assert (
        group["lr"],
        group["betas"],
        group["eps"],
        group["weight_decay"],
        group["maximize"],
    ) == (1e-3, (0.9, 0.999), 1e-6, 0.0, False)
    opt.step([np.ones(2, np.float32)])
    assert sorted(opt.state_dict()["state"][0]) == ["exp_avg", "exp_avg_sq", "step"]
