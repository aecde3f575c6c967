import numpy as np
import pytest
from conftest import torch_or_skip
from optim_harness import assert_validation_matches_torch

import cyoptim

# test_bad_input checks the constructor's wording of the first four; here also group
# overrides, add_param_group, and Nesterov without momentum.
INVALID = [
    dict(lr=-1.0),
    dict(momentum=-0.5),
    dict(weight_decay=-1e-4),
    dict(momentum=0.9, nesterov=True, dampening=0.1),
    dict(nesterov=True),
]


@pytest.mark.parametrize("kwargs", INVALID, ids=str)
def test_sgd_validation_messages_equal_torch(kwargs):
    torch = torch_or_skip()
    assert_validation_matches_torch(cyoptim.SGD, torch.optim.SGD, kwargs)


def test_sgd_by_hand():
    """Buffer is the raw grad at the first step (no dampening then)."""
    w = np.array([1.0, 2.0])
    opt = cyoptim.SGD([w], lr=0.5, momentum=0.9, dampening=0.5)
    opt.step([np.array([1.0, -1.0])])
    np.testing.assert_array_equal(w, [0.5, 2.5])
    opt.step([np.array([1.0, -1.0])])  # b = 0.9*1 + 0.5*1 = 1.4
    np.testing.assert_allclose(w, [0.5 - 0.7, 2.5 + 0.7], rtol=1e-15)
    state = opt.state_dict()["state"]
    assert sorted(state[0]) == ["momentum_buffer"]
    np.testing.assert_allclose(state[0]["momentum_buffer"], [1.4, -1.4], rtol=1e-15)


def test_sgd_without_momentum_keeps_no_state():
    opt = cyoptim.SGD([np.zeros(3)], lr=0.1)
    opt.step([np.ones(3)])
    assert opt.state_dict()["state"] == {}
