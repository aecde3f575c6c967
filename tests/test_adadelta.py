import itertools

import numpy as np
import pytest

import cyoptim
import cyoptim.reference as ref
from conftest import torch_or_skip
from optim_harness import (assert_bad_grads_change_nothing, assert_equals_reference,
                           assert_matches_torch, assert_state_dict_round_trip,
                           assert_thread_and_variant_invariant,
                           assert_validation_matches_torch, torch_test_lr)

FLAGS = [dict(maximize=m, weight_decay=wd, rho=rho)
         for m, wd, rho in itertools.product([False, True], [0.0, 0.1], [0.9, 0.3])]
IDS = ["-".join(f"{k}={v}" for k, v in f.items()) for f in FLAGS]


@pytest.mark.parametrize("flags", FLAGS, ids=IDS)
def test_adadelta_matches_torch(flags, dtype):
    torch = torch_or_skip()
    lr = torch_test_lr(dtype, 1.0, 0.1)        # see torch_test_lr on float32
    assert_matches_torch(cyoptim.Adadelta, torch.optim.Adadelta, dict(flags, lr=lr), dtype,
                         group_options=dict(lr=lr / 2, eps=1e-4))


@pytest.mark.parametrize("flags", FLAGS, ids=IDS)
def test_adadelta_equals_numpy_reference(flags, dtype):
    assert_equals_reference(cyoptim.Adadelta, ref.Adadelta, dict(flags, lr=1.0), dtype,
                            group_options=dict(lr=0.3, rho=0.5, eps=1e-3))


def test_adadelta_thread_and_variant_invariant(dtype):
    assert_thread_and_variant_invariant(
        cyoptim.Adadelta, dict(rho=0.8, eps=1e-4, weight_decay=0.1, maximize=True), dtype)


@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
def test_adadelta_state_dict_round_trip(weight_decay, dtype):
    assert_state_dict_round_trip(cyoptim.Adadelta, dict(eps=1e-3, weight_decay=weight_decay),
                                 dtype)


def test_adadelta_by_hand():
    """Two steps, eps inside both square roots."""
    w = np.array([1.0])
    opt = cyoptim.Adadelta([w], lr=0.5, rho=0.5, eps=1.0)
    opt.step([np.array([2.0])])
    # v = 2, delta = sqrt(0 + 1)/sqrt(2 + 1) * 2, u = 0.5 * delta^2
    d1 = 2 / np.sqrt(3)
    np.testing.assert_allclose(w, [1 - 0.5 * d1], rtol=1e-15)
    opt.step([np.array([-1.0])])
    # v = 1 + 0.5 = 1.5, delta = sqrt(u + 1)/sqrt(2.5) * -1
    u1 = 0.5 * d1 * d1
    d2 = -np.sqrt(u1 + 1) / np.sqrt(2.5)
    np.testing.assert_allclose(w, [1 - 0.5 * d1 - 0.5 * d2], rtol=1e-15)
    state = opt.state_dict()["state"][0]
    assert sorted(state) == ["acc_delta", "square_avg", "step"]
    assert state["step"] == 2.0
    np.testing.assert_allclose(state["square_avg"], [1.5], rtol=1e-15)
    np.testing.assert_allclose(state["acc_delta"], [0.5 * u1 + 0.5 * d2 * d2], rtol=1e-15)


@pytest.mark.parametrize("name, value", [("lr", -1.0), ("rho", 1.5), ("rho", -0.1),
                                         ("eps", -1e-8), ("weight_decay", -1e-3)])
def test_adadelta_validation_messages_equal_torch(name, value):
    torch = torch_or_skip()
    assert_validation_matches_torch(cyoptim.Adadelta, torch.optim.Adadelta, {name: value})


def test_adadelta_bad_grads_change_nothing(dtype):
    assert_bad_grads_change_nothing(cyoptim.Adadelta, dict(eps=1e-3, weight_decay=0.1), dtype)
