import itertools

import numpy as np
import pytest

import cyoptim
import cyoptim.reference as ref
from conftest import torch_or_skip
from optim_harness import (ADAM_FAMILY_INVALID, assert_bad_grads_change_nothing,
                           assert_equals_reference, assert_matches_torch,
                           assert_state_dict_round_trip,
                           assert_thread_and_variant_invariant,
                           assert_validation_matches_torch)

FLAGS = [dict(maximize=m, weight_decay=wd)
         for m, wd in itertools.product([False, True], [0.0, 0.1])]
IDS = ["-".join(f"{k}={v}" for k, v in f.items()) for f in FLAGS]


@pytest.mark.parametrize("flags", FLAGS, ids=IDS)
def test_adamax_matches_torch(flags, dtype):
    torch = torch_or_skip()
    kwargs = dict(flags, lr=2e-3, betas=(0.8, 0.99), eps=1e-6)
    assert_matches_torch(cyoptim.Adamax, torch.optim.Adamax, kwargs, dtype,
                         group_options=dict(lr=5e-3, weight_decay=0.05))


def test_adamax_defaults_and_lerp_branch_match_torch(dtype):
    """Defaults, and 1 - beta1 >= 0.5 (torch's other lerp formula)."""
    torch = torch_or_skip()
    assert_matches_torch(cyoptim.Adamax, torch.optim.Adamax, {}, dtype,
                         group_options=dict(betas=(0.3, 0.9)))


@pytest.mark.parametrize("flags", FLAGS, ids=IDS)
def test_adamax_equals_numpy_reference(flags, dtype):
    assert_equals_reference(cyoptim.Adamax, ref.Adamax, dict(flags, lr=1e-2), dtype,
                            group_options=dict(lr=0.1, betas=(0.3, 0.5)))


def test_adamax_thread_and_variant_invariant(dtype):
    assert_thread_and_variant_invariant(cyoptim.Adamax, dict(weight_decay=0.1, maximize=True),
                                        dtype)


def test_adamax_state_dict_round_trip(dtype):
    assert_state_dict_round_trip(cyoptim.Adamax, dict(lr=1e-2, weight_decay=0.01), dtype)


def test_adamax_two_steps_by_hand():
    """u takes the max of the decayed norm and |g| + eps; only the step size is corrected."""
    w = np.array([1.0, -2.0, 0.5])
    opt = cyoptim.Adamax([w], lr=0.1, betas=(0.5, 0.75), eps=0.25)
    opt.step([np.array([2.0, -1.0, 0.0])])
    # m = [1, -0.5, 0], u = [2.25, 1.25, 0.25], clr = 0.1 / 0.5 = 0.2
    np.testing.assert_allclose(w, [1.0 - 0.2 * 1 / 2.25, -2.0 + 0.2 * 0.5 / 1.25, 0.5],
                               rtol=1e-15)
    w1 = w.copy()
    opt.step([np.array([0.5, -2.0, 0.0])])
    # m = [0.75, -1.25, 0], u = [max(1.6875, 0.75), max(0.9375, 2.25), max(0.1875, 0.25)]
    # clr = 0.1 / (1 - 0.25) = 0.1333...
    clr = 0.1 / 0.75
    np.testing.assert_allclose(w, w1 - clr * np.array([0.75 / 1.6875, -1.25 / 2.25, 0.0]),
                               rtol=1e-15)
    state = opt.state_dict()["state"][0]
    assert sorted(state) == ["exp_avg", "exp_inf", "step"] and state["step"] == 2.0
    np.testing.assert_array_equal(state["exp_avg"], [0.75, -1.25, 0.0])
    np.testing.assert_array_equal(state["exp_inf"], [1.6875, 2.25, 0.25])


def test_adamax_nan_propagates_through_the_max():
    """torch.maximum returns NaN when either side is NaN, and keeps it."""
    w = np.ones(3)
    opt = cyoptim.Adamax([w])
    opt.step([np.array([np.nan, 1.0, np.inf])])
    u = opt.state[0]["exp_inf"]
    assert np.isnan(u[0]) and u[1] == 1.0 + 1e-8 and np.isinf(u[2])
    assert np.isnan(w[0]) and np.isfinite(w[1]) and np.isnan(w[2])
    opt.step([np.array([1.0, 1.0, 1.0])])
    assert np.isnan(opt.state[0]["exp_inf"][0])


@pytest.mark.parametrize("kwargs", ADAM_FAMILY_INVALID, ids=str)
def test_adamax_validation_messages_equal_torch(kwargs):
    torch = torch_or_skip()
    assert_validation_matches_torch(cyoptim.Adamax, torch.optim.Adamax, kwargs)


def test_adamax_bad_grads_change_nothing(dtype):
    assert_bad_grads_change_nothing(cyoptim.Adamax, dict(weight_decay=0.1), dtype)
