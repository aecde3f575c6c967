import numpy as np
import pytest
from conftest import torch_or_skip
from optim_harness import assert_validation_matches_torch

import cyoptim


def test_rmsprop_centered_momentum_by_hand():
    """Two steps of centered RMSprop with momentum, written out."""
    w = np.array([1.0])
    opt = cyoptim.RMSprop([w], lr=0.1, alpha=0.5, eps=0.0, momentum=0.5, centered=True)
    opt.step([np.array([2.0])])
    # v = 0.5*4 = 2, gbar = 1, d = sqrt(2 - 1) = 1, b = 2, w = 1 - 0.1*2
    np.testing.assert_allclose(w, [0.8], rtol=1e-15)
    opt.step([np.array([-2.0])])
    # v = 1 + 2 = 3, gbar = 0.5 - 1 = -0.5, d = sqrt(3 - 0.25), b = 1 - 2/d
    b = 0.5 * 2 - 2 / np.sqrt(2.75)
    np.testing.assert_allclose(w, [0.8 - 0.1 * b], rtol=1e-15)
    state = opt.state_dict()["state"][0]
    assert sorted(state) == ["grad_avg", "momentum_buffer", "square_avg", "step"]
    assert state["step"] == 2.0
    np.testing.assert_allclose(state["square_avg"], [3.0], rtol=1e-15)
    np.testing.assert_allclose(state["grad_avg"], [-0.5], rtol=1e-15)
    np.testing.assert_allclose(state["momentum_buffer"], [b], rtol=1e-15)


def test_rmsprop_eps_outside_the_sqrt():
    """With v = (1 - alpha)*g^2 after one step: g/(sqrt(v) + eps), not g/sqrt(v + eps)."""
    w = np.zeros(1)
    cyoptim.RMSprop([w], lr=1.0, alpha=0.75, eps=0.5).step([np.array([2.0])])
    assert w[0] == -2.0 / (np.sqrt(0.25 * 4.0) + 0.5)


def test_rmsprop_state_keys_follow_the_flags():
    plain = cyoptim.RMSprop([np.zeros(2)])
    plain.step([np.ones(2)])
    assert sorted(plain.state_dict()["state"][0]) == ["square_avg", "step"]
    assert plain._blocks[0].keys() == {"square_avg"}


@pytest.mark.parametrize(
    "name, value",
    [("lr", -1.0), ("eps", -1e-8), ("momentum", -0.5), ("weight_decay", -1e-3), ("alpha", -0.1)],
)
def test_rmsprop_validation_messages_equal_torch(name, value):
    torch = torch_or_skip()
    assert_validation_matches_torch(cyoptim.RMSprop, torch.optim.RMSprop, {name: value})
