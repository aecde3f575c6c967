import itertools

import numpy as np
import pytest

import cyoptim
import cyoptim.reference as ref
from conftest import torch_or_skip
from optim_harness import (ADAM_FAMILY_INVALID, assert_bad_grads_change_nothing,
                           assert_equals_reference, assert_matches_torch,
                           assert_state_dict_round_trip, assert_thread_and_variant_invariant,
                           assert_validation_matches_torch)

# Every flag combination; weight decay on and off.
FLAGS = [dict(amsgrad=a, maximize=m, weight_decay=wd, decoupled_weight_decay=d)
         for a, m, wd, d in itertools.product([False, True], [False, True], [0.0, 0.1],
                                              [False, True])]
IDS = ["-".join(f"{k}={v}" for k, v in f.items()) for f in FLAGS]


@pytest.mark.parametrize("flags", FLAGS, ids=IDS)
def test_adam_matches_torch(flags, dtype):
    torch = torch_or_skip()
    kwargs = dict(flags, lr=1e-3, betas=(0.8, 0.99), eps=1e-6)
    assert_matches_torch(cyoptim.Adam, torch.optim.Adam, kwargs, dtype,
                         group_options=dict(lr=3e-3, weight_decay=0.05))


@pytest.mark.parametrize("amsgrad", [False, True])
def test_adamw_matches_torch(amsgrad, dtype):
    torch = torch_or_skip()
    assert_matches_torch(cyoptim.AdamW, torch.optim.AdamW, dict(amsgrad=amsgrad), dtype,
                         group_options=dict(lr=2e-3))


def test_adam_large_beta1_uses_torch_lerp_branch(dtype):
    """1 - beta1 >= 0.5 takes lerp's other formula in torch."""
    torch = torch_or_skip()
    assert_matches_torch(cyoptim.Adam, torch.optim.Adam, dict(betas=(0.3, 0.9)), dtype)


@pytest.mark.parametrize("flags", FLAGS, ids=IDS)
def test_adam_equals_numpy_reference(flags, dtype):
    assert_equals_reference(cyoptim.Adam, ref.Adam, dict(flags, lr=1e-2), dtype,
                            group_options=dict(lr=0.1, betas=(0.3, 0.5)))


def test_adamw_equals_numpy_reference(dtype):
    assert_equals_reference(cyoptim.AdamW, ref.AdamW, dict(amsgrad=True), dtype)


@pytest.mark.parametrize("cls", [cyoptim.Adam, cyoptim.AdamW])
def test_adam_thread_and_variant_invariant(cls, dtype):
    assert_thread_and_variant_invariant(cls, dict(amsgrad=True, weight_decay=0.1), dtype)


@pytest.mark.parametrize("amsgrad", [False, True])
def test_adam_state_dict_round_trip(amsgrad, dtype):
    assert_state_dict_round_trip(cyoptim.Adam, dict(amsgrad=amsgrad, lr=1e-2), dtype)


@pytest.mark.parametrize("cls", [cyoptim.Adam, cyoptim.AdamW], ids=lambda c: c.__name__)
@pytest.mark.parametrize("kwargs", ADAM_FAMILY_INVALID, ids=str)
def test_adam_validation_messages_equal_torch(cls, kwargs):
    """Beyond test_bad_input's constructor wording: group overrides and add_param_group."""
    torch = torch_or_skip()
    assert_validation_matches_torch(cls, getattr(torch.optim, cls.__name__), kwargs)


# test_bad_input covers Adam(amsgrad=True) and plain AdamW on float32; these add
# other flags, float64, lazy state and every kind of bad grad in the harness.
@pytest.mark.parametrize("cls,kwargs", [
    (cyoptim.Adam, dict(maximize=True, weight_decay=0.1)),
    (cyoptim.Adam, dict(amsgrad=True, decoupled_weight_decay=True, weight_decay=0.1)),
    (cyoptim.AdamW, dict(amsgrad=True)),
], ids=["Adam-maximize", "Adam-amsgrad-decoupled", "AdamW-amsgrad"])
def test_adam_bad_grads_change_nothing(cls, kwargs, dtype):
    assert_bad_grads_change_nothing(cls, kwargs, dtype)


def test_adam_first_step_by_hand():
    """At step 1, m_hat = g and v_hat = g^2, so the step is lr * g / (|g| + eps)."""
    w = np.array([1.0, -2.0, 0.5])
    g = np.array([0.3, -4.0, 0.0])
    opt = cyoptim.Adam([w], lr=0.1, eps=1e-8)
    opt.step([g.copy()])
    np.testing.assert_allclose(w, [1.0 - 0.1 * 0.3 / (0.3 + 1e-8), -2.0 + 0.1 * 4 / (4 + 1e-8), 0.5],
                               rtol=1e-15)
    state = opt.state_dict()["state"][0]
    assert state["step"] == 1.0
    np.testing.assert_allclose(state["exp_avg"], 0.1 * g, rtol=1e-15)
    np.testing.assert_allclose(state["exp_avg_sq"], 0.001 * g * g, rtol=1e-15)


def test_adamw_defaults_and_state_keys():
    w = np.zeros(3, np.float32)
    opt = cyoptim.AdamW([w])
    group = opt.param_groups[0]
    assert group["weight_decay"] == 1e-2 and group["decoupled_weight_decay"] is True
    assert opt.state_dict()["state"] == {}          # lazy: no state before the first step
    opt.step([np.ones(3, np.float32)])
    assert sorted(opt.state_dict()["state"][0]) == ["exp_avg", "exp_avg_sq", "step"]
    amsgrad = cyoptim.Adam([np.zeros(2)], amsgrad=True)
    amsgrad.step([np.ones(2)])
    assert "max_exp_avg_sq" in amsgrad.state_dict()["state"][0]


def test_nan_grad_propagates_like_torch():
    w = np.ones(4)
    opt = cyoptim.Adam([w])
    opt.step([np.array([np.nan, 1.0, np.inf, 0.0])])
    assert np.isnan(w[0]) and np.isfinite(w[1]) and np.isnan(w[2]) and w[3] == 1.0
