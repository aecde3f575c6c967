import itertools

import numpy as np
import pytest

import cyoptim
import cyoptim.reference as ref
from conftest import torch_or_skip
from optim_harness import (assert_bad_grads_change_nothing, assert_equals_reference,
                           assert_matches_torch, assert_state_dict_round_trip,
                           assert_thread_and_variant_invariant,
                           assert_validation_matches_torch)

FLAGS = [dict(momentum=mom, dampening=damp, nesterov=nest, weight_decay=wd, maximize=mx)
         for mom, damp, nest, wd, mx in itertools.product(
             [0.0, 0.9], [0.0, 0.3], [False, True], [0.0, 0.01], [False, True])
         if not (nest and (mom == 0 or damp != 0))]
IDS = ["-".join(f"{k}={v}" for k, v in f.items()) for f in FLAGS]


@pytest.mark.parametrize("flags", FLAGS, ids=IDS)
def test_sgd_matches_torch(flags, dtype):
    torch = torch_or_skip()
    # torch's CPU add(alpha=) is a fused multiply-add (p + (-lr)*g rounded once),
    # cyoptim rounds twice like every portable build: the float32 difference
    # grows with lr * momentum, so float32 runs with a smaller rate.
    lr = 1e-4 if dtype == np.float32 else 1e-2
    assert_matches_torch(cyoptim.SGD, torch.optim.SGD, dict(flags, lr=lr), dtype,
                         group_options=dict(lr=2 * lr))


@pytest.mark.parametrize("flags", FLAGS, ids=IDS)
def test_sgd_equals_numpy_reference(flags, dtype):
    assert_equals_reference(cyoptim.SGD, ref.SGD, dict(flags, lr=1e-2), dtype,
                            group_options=dict(lr=0.1, momentum=0.5))


def test_sgd_thread_and_variant_invariant(dtype):
    assert_thread_and_variant_invariant(
        cyoptim.SGD, dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01), dtype)


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_sgd_state_dict_round_trip(momentum, dtype):
    assert_state_dict_round_trip(cyoptim.SGD, dict(lr=0.1, momentum=momentum), dtype)


# test_bad_input checks the constructor's wording of the first four; here also group
# overrides, add_param_group, and Nesterov without momentum.
INVALID = [dict(lr=-1.0), dict(momentum=-0.5), dict(weight_decay=-1e-4),
           dict(momentum=0.9, nesterov=True, dampening=0.1), dict(nesterov=True)]


@pytest.mark.parametrize("kwargs", INVALID, ids=str)
def test_sgd_validation_messages_equal_torch(kwargs):
    torch = torch_or_skip()
    assert_validation_matches_torch(cyoptim.SGD, torch.optim.SGD, kwargs)


# test_bad_input covers SGD(momentum=0.9) on float32; these add stateless SGD,
# Nesterov with weight decay, float64, lazy state and every kind of bad grad.
@pytest.mark.parametrize("kwargs", [dict(lr=0.1),
                                    dict(lr=0.1, momentum=0.9, nesterov=True,
                                         weight_decay=0.01, maximize=True)],
                         ids=["plain", "nesterov"])
def test_sgd_bad_grads_change_nothing(kwargs, dtype):
    assert_bad_grads_change_nothing(cyoptim.SGD, kwargs, dtype)


def test_sgd_by_hand():
    """Buffer is the raw grad at the first step (no dampening then)."""
    w = np.array([1.0, 2.0])
    opt = cyoptim.SGD([w], lr=0.5, momentum=0.9, dampening=0.5)
    opt.step([np.array([1.0, -1.0])])
    np.testing.assert_array_equal(w, [0.5, 2.5])
    opt.step([np.array([1.0, -1.0])])       # b = 0.9*1 + 0.5*1 = 1.4
    np.testing.assert_allclose(w, [0.5 - 0.7, 2.5 + 0.7], rtol=1e-15)
    state = opt.state_dict()["state"]
    assert sorted(state[0]) == ["momentum_buffer"]
    np.testing.assert_allclose(state[0]["momentum_buffer"], [1.4, -1.4], rtol=1e-15)


def test_sgd_without_momentum_keeps_no_state():
    opt = cyoptim.SGD([np.zeros(3)], lr=0.1)
    opt.step([np.ones(3)])
    assert opt.state_dict()["state"] == {}
