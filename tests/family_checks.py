"""Checks shared by the tests of Adamax, NAdam and RAdam (on top of optim_harness)."""

import numpy as np
import pytest

from optim_harness import assert_unchanged, grad_sequence, make_params, snapshot

# Invalid hyperparameters every Adam-family constructor refuses, with torch's message.
ADAM_FAMILY_INVALID = [dict(lr=-1.0), dict(eps=-1e-8), dict(betas=(1.0, 0.999)),
                       dict(betas=(-0.1, 0.999)), dict(betas=(0.9, 1.0)),
                       dict(betas=(0.9, -0.5)), dict(weight_decay=-0.1)]


def torch_message(torch_cls, kwargs):
    import torch

    with pytest.raises(ValueError) as info:
        torch_cls([torch.zeros(2, requires_grad=True)], **kwargs)
    return str(info.value)


def assert_validation_matches_torch(cls, torch_cls, kwargs):
    """Constructor and add_param_group refuse kwargs with torch's exact message."""
    expected = torch_message(torch_cls, kwargs)
    with pytest.raises(ValueError) as info:
        cls([np.zeros(2)], **kwargs)
    assert str(info.value) == expected
    opt = cls([np.zeros(2)])
    with pytest.raises(ValueError) as info:
        opt.add_param_group(dict(params=[np.zeros(3)], **kwargs))
    assert str(info.value) == expected
    assert len(opt.param_groups) == 1


def bad_grad_lists(params):
    """(description, grads) pairs that step must refuse: the last param's grad is bad."""
    good = [np.ones_like(p) for p in params]
    last = params[-1]
    other = np.float32 if last.dtype == np.float64 else np.float64
    cases = [("dtype", last.astype(other)),
             ("shape", np.ones(last.size + 1, last.dtype)),
             ("layout", np.ones(last.shape + (2,), last.dtype)[..., 0]),
             ("type", last.tolist())]
    out = [(name, good[:-1] + [bad]) for name, bad in cases]
    out.append(("count", good[:-1]))
    return out


def assert_bad_grads_change_nothing(cls, kwargs, dtype):
    """After a few steps, every refused step leaves params, state and groups as they were."""
    params = make_params(dtype)
    opt = cls([dict(params=params[:2]), dict(params=params[2:])], **kwargs)
    for grads in grad_sequence(params, steps=12):
        opt.step(grads)
    before = snapshot(opt)
    for name, grads in bad_grad_lists(params):
        with pytest.raises((TypeError, ValueError)):
            opt.step(grads)
        assert_unchanged(opt, before)
