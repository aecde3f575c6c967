import numpy as np
import pytest
from conftest import torch_or_skip
from optim_harness import (
    ADAM_FAMILY_INVALID,
    assert_matches_torch,
    assert_validation_matches_torch,
)

import cyoptim


def test_adam_large_beta1_uses_torch_lerp_branch(dtype):
    """1 - beta1 >= 0.5 takes lerp's other formula in torch."""
    torch = torch_or_skip()
    assert_matches_torch(cyoptim.Adam, torch.optim.Adam, dict(betas=(0.3, 0.9)), dtype)


@pytest.mark.parametrize("cls", [cyoptim.Adam, cyoptim.AdamW], ids=lambda c: c.__name__)
@pytest.mark.parametrize("kwargs", ADAM_FAMILY_INVALID, ids=str)
def test_adam_validation_messages_equal_torch(cls, kwargs):
    """Beyond test_bad_input's constructor wording: group overrides and add_param_group."""
    torch = torch_or_skip()
    assert_validation_matches_torch(cls, getattr(torch.optim, cls.__name__), kwargs)


def test_adam_first_step_by_hand():
    """At step 1, m_hat = g and v_hat = g^2, so the step is lr * g / (|g| + eps)."""
    w = np.array([1.0, -2.0, 0.5])
    g = np.array([0.3, -4.0, 0.0])
    opt = cyoptim.Adam([w], lr=0.1, eps=1e-8)
    opt.step([g.copy()])
    np.testing.assert_allclose(
        w, [1.0 - 0.1 * 0.3 / (0.3 + 1e-8), -2.0 + 0.1 * 4 / (4 + 1e-8), 0.5], rtol=1e-15
    )
    state = opt.state_dict()["state"][0]
    assert state["step"] == 1.0
    np.testing.assert_allclose(state["exp_avg"], 0.1 * g, rtol=1e-15)
    np.testing.assert_allclose(state["exp_avg_sq"], 0.001 * g * g, rtol=1e-15)


def test_adamw_defaults_and_state_keys():
    w = np.zeros(3, np.float32)
    opt = cyoptim.AdamW([w])
    group = opt.param_groups[0]
    assert group["weight_decay"] == 1e-2 and group["decoupled_weight_decay"] is True
    assert opt.state_dict()["state"] == {}  # lazy: no state before the first step
    opt.step([np.ones(3, np.float32)])
    assert sorted(opt.state_dict()["state"][0]) == ["exp_avg", "exp_avg_sq", "step"]
    amsgrad = cyoptim.Adam([np.zeros(2)], amsgrad=True)
    amsgrad.step([np.ones(2)])
    assert "max_exp_avg_sq" in amsgrad.state_dict()["state"][0]
