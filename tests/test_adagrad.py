import numpy as np
import pytest
from conftest import torch_or_skip
from optim_harness import assert_validation_matches_torch

import cyoptim


def test_adagrad_by_hand():
    """clr = lr / (1 + (t-1)*lr_decay); the sum starts at initial_accumulator_value."""
    w = np.array([1.0, -2.0])
    opt = cyoptim.Adagrad([w], lr=0.1, lr_decay=0.5, initial_accumulator_value=1.0, eps=0.0)
    opt.step([np.array([3.0, 4.0])])  # s = [10, 17], clr = 0.1
    expected = np.array([1.0 - 0.1 * 3 / np.sqrt(10), -2.0 - 0.1 * 4 / np.sqrt(17)])
    np.testing.assert_allclose(w, expected, rtol=1e-15)
    opt.step([np.array([1.0, -1.0])])  # s = [11, 18], clr = 0.1 / 1.5
    expected += [-0.1 / 1.5 / np.sqrt(11), 0.1 / 1.5 / np.sqrt(18)]
    np.testing.assert_allclose(w, expected, rtol=1e-15)
    state = opt.state_dict()["state"][0]
    assert state["step"] == 2.0
    np.testing.assert_array_equal(state["sum"], [11.0, 18.0])


def test_adagrad_eps_outside_the_sqrt():
    """With a zero sum before the step, g/(|g| + eps), not g/sqrt(g^2 + eps)."""
    w = np.zeros(1)
    cyoptim.Adagrad([w], lr=1.0, eps=0.5).step([np.array([0.5])])
    assert w[0] == -0.5 / (0.5 + 0.5)


@pytest.mark.parametrize(
    "name, value",
    [
        ("lr", -1.0),
        ("lr_decay", -0.1),
        ("weight_decay", -1e-3),
        ("initial_accumulator_value", -0.5),
        ("eps", -1e-8),
    ],
)
def test_adagrad_validation_messages_equal_torch(name, value):
    torch = torch_or_skip()
    assert_validation_matches_torch(cyoptim.Adagrad, torch.optim.Adagrad, {name: value})


def test_adagrad_state_is_lazy_and_untouched_params_keep_the_initial_sum():
    a, b = np.zeros(3), np.zeros(2)
    opt = cyoptim.Adagrad([a, b], initial_accumulator_value=0.25)
    assert opt.state_dict()["state"] == {}  # torch shows step 0 entries here; see the docstring
    opt.step([np.ones(3), None])
    state = opt.state_dict()["state"]
    assert sorted(state) == [0] and sorted(state[0]) == ["step", "sum"]
    np.testing.assert_array_equal(state[0]["sum"], [1.25] * 3)
    np.testing.assert_array_equal(b, 0.0)
    opt.step([None, np.full(2, 2.0)])  # b's sum started at 0.25 too
    np.testing.assert_array_equal(opt.state_dict()["state"][1]["sum"], [4.25, 4.25])


def test_adagrad_loads_torch_style_step_zero_entries():
    """torch's Adagrad saves step 0 and the initial sum for params that never stepped."""
    torch = torch_or_skip()
    t = [torch.zeros(3, requires_grad=True), torch.zeros(2, requires_grad=True)]
    topt = torch.optim.Adagrad(t, lr=0.1, initial_accumulator_value=0.3)
    t[0].grad = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float32)
    topt.step()
    saved = topt.state_dict()
    converted = {
        "param_groups": [
            {
                k: v
                for k, v in g.items()
                if k
                in (
                    "lr",
                    "lr_decay",
                    "eps",
                    "weight_decay",
                    "initial_accumulator_value",
                    "maximize",
                    "params",
                )
            }
            for g in saved["param_groups"]
        ],
        "state": {i: {k: v.numpy() for k, v in e.items()} for i, e in saved["state"].items()},
    }
    params = [x.detach().numpy().copy() for x in t]  # the params after torch's step
    opt = cyoptim.Adagrad(params, lr=0.1)
    opt.load_state_dict(converted)
    assert sorted(opt.state_dict()["state"]) == [0]  # param 1 has not stepped
    grads = [np.array([0.5, 0.5, 0.5], np.float32), np.array([1.0, 2.0], np.float32)]
    opt.step(grads)
    for tensor, g in zip(t, grads):
        tensor.grad = torch.tensor(g)
    topt.step()
    for ours, theirs in zip(params, t):
        np.testing.assert_allclose(ours, theirs.detach().numpy(), rtol=1e-6)
    state = opt.state_dict()["state"]
    assert state[1]["step"] == 1.0
    np.testing.assert_allclose(state[1]["sum"], [1.3, 4.3], rtol=1e-6)
    np.testing.assert_allclose(
        state[0]["sum"], topt.state_dict()["state"][0]["sum"].numpy(), rtol=1e-6
    )
    assert state[0]["step"] == 2.0


def test_adagrad_step_zero_only_accepted_as_torch_writes_it():
    opt = cyoptim.Adagrad([np.zeros(2)])
    sd = opt.state_dict()
    sd["state"] = {0: {"step": -1.0, "sum": np.zeros(2)}}
    with pytest.raises(ValueError, match="step must be a non-negative whole number"):
        opt.load_state_dict(sd)
    sd["state"] = {0: {"step": 0.0, "sum": np.zeros(3)}}
    with pytest.raises(ValueError, match="state 'sum' of param 0"):
        opt.load_state_dict(sd)
    assert opt.state_dict()["state"] == {}
