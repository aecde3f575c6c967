import numpy as np
import pytest
from conftest import torch_or_skip
from optim_harness import assert_validation_matches_torch

import cyoptim


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


@pytest.mark.parametrize(
    "name, value",
    [("lr", -1.0), ("rho", 1.5), ("rho", -0.1), ("eps", -1e-8), ("weight_decay", -1e-3)],
)
def test_adadelta_validation_messages_equal_torch(name, value):
    torch = torch_or_skip()
    assert_validation_matches_torch(cyoptim.Adadelta, torch.optim.Adadelta, {name: value})
