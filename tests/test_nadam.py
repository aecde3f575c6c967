import numpy as np
import pytest
from conftest import torch_or_skip
from optim_harness import (
    ADAM_FAMILY_INVALID,
    assert_bad_scalar_state_refused,
    assert_matches_torch,
    assert_validation_matches_torch,
    grad_sequence,
    make_params,
    run_cyoptim,
)

import cyoptim
import cyoptim.reference as ref


def mu(step, beta1=0.9, momentum_decay=4e-3):
    return beta1 * (1.0 - 0.5 * 0.96 ** (step * momentum_decay))


def test_nadam_defaults_and_lerp_branch_match_torch(dtype):
    """Defaults, and 1 - beta1 >= 0.5 (torch's other lerp formula)."""
    torch = torch_or_skip()
    assert_matches_torch(
        cyoptim.NAdam, torch.optim.NAdam, {}, dtype, group_options=dict(betas=(0.3, 0.9))
    )


def test_nadam_mu_product_equals_torch_bitwise(dtype):
    """torch keeps mu_product in a float32 scalar tensor; so do we, bit for bit."""
    torch = torch_or_skip()
    params = make_params(dtype)
    seq = grad_sequence(params, steps=60)
    ours = run_cyoptim(cyoptim.NAdam, [p.copy() for p in params], seq, dict(momentum_decay=0.02))
    tensors = [torch.tensor(p.copy(), requires_grad=True) for p in params]
    theirs = torch.optim.NAdam(tensors, momentum_decay=0.02, foreach=False)
    for grads in seq:
        for t, g in zip(tensors, grads):
            t.grad = None if g is None else torch.tensor(g)
        theirs.step()
    expected = theirs.state_dict()["state"]
    state = ours.state_dict()["state"]
    assert sorted(state) == sorted(expected)
    for i, entry in state.items():
        assert entry["step"] == expected[i]["step"].item()
        assert entry["mu_product"] == expected[i]["mu_product"].item()
    # Params 1 and 3 skipped steps: their products differ from param 0's.
    assert len({entry["mu_product"] for entry in state.values()}) == 3


def test_nadam_loaded_mu_product_is_used_per_param():
    """Two params at the same step (one fused run) with different loaded mu_products."""
    buf = cyoptim.ParamBuffer([(40,), (24,)], np.float64)
    params = buf.params
    for p in params:
        p[:] = 1.0
    opt = cyoptim.NAdam(params, lr=0.1)
    grads = buf.grads
    for g in grads:
        g[:] = 1.0
    opt.step(grads)
    assert opt._plans[0].fused  # one run for both params
    saved = opt.state_dict()
    saved["state"][1]["mu_product"] = 0.25
    twin = [np.ones(40), np.ones(24)]
    ref_opt = ref.NAdam(twin, lr=0.1)
    ref_opt.step([np.ones(40), np.ones(24)])
    ref_opt.load_state_dict(saved)
    opt.load_state_dict(saved)
    assert opt.state[1]["mu_product"] == 0.25
    for g in grads:
        g[:] = 0.5
    opt.step(grads)
    ref_opt.step([np.full(40, 0.5), np.full(24, 0.5)])
    np.testing.assert_array_equal(params[0], twin[0])
    np.testing.assert_array_equal(params[1], twin[1])
    assert opt.state[1]["mu_product"] == float(np.float32(0.25) * np.float32(mu(2)))
    assert opt.state[0]["mu_product"] != opt.state[1]["mu_product"]


def test_nadam_two_steps_by_hand():
    """Step t: p -= lr*(1-mu_t)/(1-P_t) * g/d + lr*mu_{t+1}/(1-P_t*mu_{t+1}) * m/d,
    d = sqrt(v/(1-b2^t)) + eps, P_t the float32 product of the mu_s."""
    lr, b1, b2, eps = 0.1, 0.9, 0.999, 1e-8
    w = np.array([1.0, -1.0, 0.0])
    g = np.array([0.5, 2.0, -4.0])
    opt = cyoptim.NAdam([w.copy()], lr=lr, eps=eps)
    param = opt.param_groups[0]["params"][0]
    m = v = np.zeros(3)
    product = np.float32(1.0)
    expected = w.copy()
    for t in (1, 2):
        opt.step([g.copy()])
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        product = np.float32(product * np.float32(mu(t)))
        d = np.sqrt(v / (1 - b2**t)) + eps
        expected = (
            expected
            - lr * (1 - mu(t)) / (1 - float(product)) * g / d
            - lr * mu(t + 1) / (1 - float(product) * mu(t + 1)) * m / d
        )
        np.testing.assert_allclose(param, expected, rtol=1e-14)
    state = opt.state_dict()["state"][0]
    assert sorted(state) == ["exp_avg", "exp_avg_sq", "mu_product", "step"]
    assert state["step"] == 2.0 and state["mu_product"] == float(product)
    # Same-sign grads twice: the param moved against the gradient.
    assert np.all(np.sign(param - w) == -np.sign(g))


@pytest.mark.parametrize("kwargs", ADAM_FAMILY_INVALID + [dict(momentum_decay=-1e-3)], ids=str)
def test_nadam_validation_messages_equal_torch(kwargs):
    torch = torch_or_skip()
    assert_validation_matches_torch(cyoptim.NAdam, torch.optim.NAdam, kwargs)


@pytest.mark.parametrize("bad", [None, "0.5", 1.5, -0.1, np.zeros(2), "missing"])
def test_nadam_load_refuses_bad_mu_product(bad):
    assert_bad_scalar_state_refused(cyoptim.NAdam, "mu_product", bad)
