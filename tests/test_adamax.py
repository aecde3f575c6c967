import numpy as np
import pytest
from conftest import torch_or_skip
from optim_harness import (
    ADAM_FAMILY_INVALID,
    assert_matches_torch,
    assert_validation_matches_torch,
)

import cyoptim


def test_adamax_defaults_and_lerp_branch_match_torch(dtype):
    """Defaults, and 1 - beta1 >= 0.5 (torch's other lerp formula)."""
    torch = torch_or_skip()
    assert_matches_torch(
        cyoptim.Adamax, torch.optim.Adamax, {}, dtype, group_options=dict(betas=(0.3, 0.9))
    )


def test_adamax_two_steps_by_hand():
    """u takes the max of the decayed norm and |g| + eps; only the step size is corrected."""
    w = np.array([1.0, -2.0, 0.5])
    opt = cyoptim.Adamax([w], lr=0.1, betas=(0.5, 0.75), eps=0.25)
    opt.step([np.array([2.0, -1.0, 0.0])])
    # m = [1, -0.5, 0], u = [2.25, 1.25, 0.25], clr = 0.1 / 0.5 = 0.2
    np.testing.assert_allclose(w, [1.0 - 0.2 * 1 / 2.25, -2.0 + 0.2 * 0.5 / 1.25, 0.5], rtol=1e-15)
    w1 = w.copy()
    opt.step([np.array([0.5, -2.0, 0.0])])
    # m = [0.75, -1.25, 0], u = [max(1.6875, 0.75), max(0.9375, 2.25), max(0.1875, 0.25)]
    # clr = 0.1 / (1 - 0.25) = 0.1333...
    clr = 0.1 / 0.75
    np.testing.assert_allclose(
        w, w1 - clr * np.array([0.75 / 1.6875, -1.25 / 2.25, 0.0]), rtol=1e-15
    )
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
