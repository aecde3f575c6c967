"""docs/contract.md §3: bad input raises a clear error naming the param, and changes nothing."""

import numpy as np
import pytest
from optim_harness import assert_unchanged, snapshot
from optimizer_table import optimizer_class, row_settings

import cyoptim
from cyoptim import registry

# Every optimizer of the registry, with the settings of its invariance checks.
OPTIMIZERS = [
    (optimizer_class(row), dict(row_settings(row).invariance)) for row in registry.OPTIMIZERS
]


def trained(cls, kwargs):
    """An optimizer over two groups that has taken a step (so it has state)."""
    params = [np.ones((3, 4), np.float32), np.ones(5, np.float32), np.ones(2, np.float32)]
    opt = cls([{"params": params[:2]}, {"params": params[2:], "lr": 0.5}], **kwargs)
    opt.step([np.full(p.shape, 0.1, np.float32) for p in params])
    return opt, params


def good_grads(params):
    return [np.full(p.shape, 0.2, p.dtype) for p in params]


BAD_GRADS = {
    "wrong dtype": (lambda g: g.astype(np.float64), TypeError, "grad 2 has dtype float64"),
    "wrong shape": (lambda g: np.ones(3, np.float32), ValueError, r"grad 2 has shape \(3,\)"),
    "not an array": (lambda g: g.tolist(), TypeError, "grad 2 must be a NumPy array"),
    "non-contiguous": (
        lambda g: np.ones(4, np.float32)[::2],
        ValueError,
        "grad 2 is not C-contiguous",
    ),
    "byte-swapped": (lambda g: g.astype(">f4"), TypeError, "grad 2 has dtype"),
}


@pytest.mark.parametrize("cls,kwargs", OPTIMIZERS, ids=lambda x: getattr(x, "__name__", ""))
@pytest.mark.parametrize("case", list(BAD_GRADS))
def test_bad_grad_in_last_group_changes_nothing(cls, kwargs, case):
    opt, params = trained(cls, kwargs)
    before = snapshot(opt)
    make_bad, error, message = BAD_GRADS[case]
    grads = good_grads(params)
    grads[2] = make_bad(grads[2])  # the first group's grads are fine
    with pytest.raises(error, match=message):
        opt.step(grads)
    assert_unchanged(opt, before)
    opt.step(good_grads(params))  # and the optimizer still works


@pytest.mark.parametrize("cls,kwargs", OPTIMIZERS, ids=lambda x: getattr(x, "__name__", ""))
def test_wrong_grad_count_or_container(cls, kwargs):
    opt, params = trained(cls, kwargs)
    before = snapshot(opt)
    with pytest.raises(ValueError, match="expected 3 grads"):
        opt.step(good_grads(params)[:2])
    with pytest.raises(TypeError, match="grads must be a list"):
        opt.step(np.ones(3, np.float32))
    with pytest.raises(TypeError, match="grads must be a list"):
        opt.step(None)
    assert_unchanged(opt, before)
    opt.step(tuple(good_grads(params)))  # any sequence works


def test_bad_params_refused_at_construction():
    ro = np.ones(3)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="param 0 is read-only"):
        cyoptim.Adam([ro])
    with pytest.raises(ValueError, match="param 1 is not C-contiguous"):
        cyoptim.Adam([np.ones(3), np.ones((4, 4))[:, 1]])
    with pytest.raises(TypeError, match="param 0 has dtype int64"):
        cyoptim.SGD([np.ones(3, np.int64)])
    with pytest.raises(TypeError, match="param 0 has dtype complex64"):
        cyoptim.SGD([np.ones(3, np.complex64)])
    with pytest.raises(TypeError, match="float16 params need a staged kernel"):
        cyoptim.LAMB([np.ones(3, np.float16)])
    with pytest.raises(TypeError, match="param 0 must be a NumPy array"):
        cyoptim.SGD([[1.0, 2.0]])
    with pytest.raises(TypeError, match="single array"):
        cyoptim.SGD(np.ones(3))
    with pytest.raises(ValueError, match="empty parameter list"):
        cyoptim.SGD([])
    with pytest.raises(TypeError, match="share a dtype"):
        cyoptim.SGD([np.ones(3), np.ones(3, np.float32)])
    block = np.ones(10)
    with pytest.raises(ValueError, match="params 0 and 1 share memory"):
        cyoptim.SGD([block[:6], block[4:]])
    with pytest.raises(ValueError, match="share memory"):
        cyoptim.SGD([{"params": [block]}, {"params": [block]}])


# (class, kwargs, torch's message) for each invalid hyperparameter.
INVALID = [
    (cyoptim.SGD, dict(lr=-1.0), "Invalid learning rate: -1.0"),
    (cyoptim.SGD, dict(momentum=-0.5), "Invalid momentum value: -0.5"),
    (cyoptim.SGD, dict(weight_decay=-1e-4), "Invalid weight_decay value: -0.0001"),
    (
        cyoptim.SGD,
        dict(momentum=0.9, nesterov=True, dampening=0.1),
        "Nesterov momentum requires a momentum and zero dampening",
    ),
    (cyoptim.Adam, dict(lr=-1.0), "Invalid learning rate: -1.0"),
    (cyoptim.Adam, dict(eps=-1e-8), "Invalid epsilon value: -1e-08"),
    (cyoptim.Adam, dict(betas=(1.0, 0.999)), "Invalid beta parameter at index 0: 1.0"),
    (cyoptim.Adam, dict(betas=(0.9, -0.1)), "Invalid beta parameter at index 1: -0.1"),
    (cyoptim.AdamW, dict(weight_decay=-0.1), "Invalid weight_decay value: -0.1"),
]


@pytest.mark.parametrize("cls,kwargs,message", INVALID)
def test_invalid_hyperparameters_use_torchs_wording(cls, kwargs, message):
    with pytest.raises(ValueError) as ours:
        cls([np.zeros(2)], **kwargs)
    assert str(ours.value) == message
    torch = pytest.importorskip("torch")
    with pytest.raises(ValueError) as theirs:
        getattr(torch.optim, cls.__name__)([torch.zeros(2, requires_grad=True)], **kwargs)
    assert str(theirs.value) == message


def test_invalid_group_override_is_refused_and_not_added():
    opt = cyoptim.Adam([np.zeros(2)])
    with pytest.raises(ValueError, match="Invalid learning rate: -0.5"):
        opt.add_param_group({"params": [np.zeros(3)], "lr": -0.5})
    assert len(opt.param_groups) == 1
    opt.step([np.ones(2)])


def test_params_appended_to_a_group_are_named_in_the_count_error():
    opt = cyoptim.SGD([np.zeros(2)], lr=0.1)
    opt.param_groups[0]["params"].append(np.zeros(3))
    with pytest.raises(ValueError, match="expected 1 grads.*group 0 was changed.*add_param_group"):
        opt.step([np.ones(2), np.ones(3)])
