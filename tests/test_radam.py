import itertools
import math

import numpy as np
import pytest
from conftest import torch_or_skip
from optim_harness import (
    ADAM_FAMILY_INVALID,
    assert_matches_torch,
    assert_thread_and_variant_invariant,
    assert_validation_matches_torch,
)

import cyoptim

FLAGS = [
    dict(maximize=m, weight_decay=wd, decoupled_weight_decay=d)
    for m, wd, d in itertools.product([False, True], [0.0, 0.1], [False, True])
]
IDS = ["-".join(f"{k}={v}" for k, v in f.items()) for f in FLAGS]


def rho(step, beta2):
    rho_inf = 2 / (1 - beta2) - 1
    return rho_inf - 2 * step * beta2**step / (1 - beta2**step)


def test_beta2_0999_leaves_exactly_five_steps_unrectified():
    """The torch runs below cover both branches: rho_t <= 5 for t <= 5, > 5 after."""
    for beta2 in (0.999, 0.99):
        assert [rho(t, beta2) > 5 for t in range(1, 8)] == [False] * 5 + [True] * 2


@pytest.mark.parametrize("flags", FLAGS, ids=IDS)
def test_radam_matches_torch(flags, dtype):
    """100 steps: each param spends its first five steps unrectified (param 3 starts
    at step 10, param 1 skips every fourth step), then rectified; group 1 uses
    beta2 = 0.5 (rho_inf = 3), which never rectifies."""
    torch = torch_or_skip()
    kwargs = dict(flags, lr=1e-3, betas=(0.8, 0.99), eps=1e-6)
    assert_matches_torch(
        cyoptim.RAdam,
        torch.optim.RAdam,
        kwargs,
        dtype,
        group_options=dict(lr=3e-3, weight_decay=0.05),
    )
    assert_matches_torch(
        cyoptim.RAdam,
        torch.optim.RAdam,
        dict(flags, lr=1e-3),
        dtype,
        group_options=dict(betas=(0.3, 0.5)),
    )


class RAdamFromStep5(cyoptim.RAdam):
    """RAdam whose params have already taken five steps (with zero moments), so the
    five steps of assert_thread_and_variant_invariant take the rectified branch."""

    def __init__(self, params, **kwargs):
        super().__init__(params, **kwargs)
        for plan in self._plans:
            plan.steps[:] = 5


@pytest.mark.parametrize("cls", [cyoptim.RAdam, RAdamFromStep5], ids=["unrectified", "rectified"])
def test_radam_thread_and_variant_invariant(cls, dtype):
    assert_thread_and_variant_invariant(cls, dict(weight_decay=0.1), dtype)


def test_radam_six_steps_by_hand():
    """Constant grad g, eps = 0: m_hat = g and v = (1 - b2^t) g^2, so steps 1-5 move
    by lr*g and step 6 by lr*sign(g)*r_6 with torch's rectification term r_6."""
    beta2 = 0.999
    g = np.array([0.5, -2.0, 0.0])
    w = np.array([1.0, 1.0, 1.0])
    opt = cyoptim.RAdam([w], lr=0.1, eps=0.0)
    for t in range(1, 6):
        opt.step([g.copy()])
        np.testing.assert_allclose(w, 1.0 - 0.1 * t * g, rtol=1e-14)
    rho_inf = 2 / (1 - beta2) - 1
    r6 = math.sqrt(
        (rho(6, beta2) - 4)
        * (rho(6, beta2) - 2)
        * rho_inf
        / ((rho_inf - 4) * (rho_inf - 2) * rho(6, beta2))
    )
    assert 0 < r6 < 0.1
    before = w.copy()
    opt.step([g.copy()])
    np.testing.assert_allclose(w[:2], before[:2] - 0.1 * np.sign(g[:2]) * r6, rtol=1e-14)
    assert np.isnan(w[2])  # 0 / (sqrt(0) + 0), as torch
    state = opt.state_dict()["state"][0]
    assert sorted(state) == ["exp_avg", "exp_avg_sq", "step"] and state["step"] == 6.0


@pytest.mark.parametrize("kwargs", ADAM_FAMILY_INVALID, ids=str)
def test_radam_validation_messages_equal_torch(kwargs):
    torch = torch_or_skip()
    assert_validation_matches_torch(cyoptim.RAdam, torch.optim.RAdam, kwargs)
