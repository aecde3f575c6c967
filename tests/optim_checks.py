"""Checks shared by the Adagrad, RMSprop and Adadelta tests: the learning rate of
float32 comparisons with torch, constructor messages equal to torch's, and bad
grads that leave everything as it was."""

import numpy as np
import pytest

from optim_harness import assert_unchanged, grad_sequence, make_params, snapshot


def torch_test_lr(dtype, float64_lr, float32_lr):
    """The learning rate of a comparison with torch in this dtype.

    torch's CPU addcmul_ and add_(alpha=) are fused multiply-adds, and its
    sqrt() (MKL) is not correctly rounded (up to 0.75 ulp in float32, 0.53 in
    float64); cyoptim rounds every operation separately and correctly (a NumPy
    emulation of torch's roundings reproduces torch bitwise). The float32
    difference grows with how far the params travel, so float32 comparisons run
    with a smaller rate; float64 keeps the normal one (and its 1e-12 tolerance).
    """
    return float32_lr if dtype == np.float32 else float64_lr


def assert_same_error_as_torch(cls, torch_cls, kwargs):
    """Constructing both with the same bad hyperparameter gives the same ValueError text."""
    import torch

    with pytest.raises(ValueError) as theirs:
        torch_cls([torch.zeros(3, requires_grad=True)], **kwargs)
    with pytest.raises(ValueError) as ours:
        cls([np.zeros(3)], **kwargs)
    assert str(ours.value) == str(theirs.value)
    # A param group override is checked the same way.
    with pytest.raises(ValueError) as in_group:
        cls([{"params": [np.zeros(3)], **kwargs}])
    assert str(in_group.value) == str(theirs.value)


def bad_grad_lists(params):
    """(grads, exception type) pairs that step() must refuse; the bad one is last."""
    good = [np.ones_like(p) for p in params]
    last = params[-1]
    wrong_dtype = np.float32 if last.dtype == np.float64 else np.float64
    strided = np.ones((last.size * 2,), last.dtype)[::2].reshape(last.shape)
    return [
        (good[:-1] + [np.ones(last.shape, wrong_dtype)], TypeError),
        (good[:-1] + [np.ones(last.size + 1, last.dtype)], ValueError),
        (good[:-1] + [strided], ValueError),
        (good[:-1] + [list(last.ravel())], TypeError),
        (good[:-1], ValueError),
    ]


def assert_bad_grads_change_nothing(cls, kwargs, dtype):
    """Every bad grad list raises, and params, state and groups stay exactly as before."""
    params = make_params(dtype)
    opt = cls(params, **kwargs)
    for grads in grad_sequence(params, steps=12):
        opt.step(grads)
    before = snapshot(opt)
    for grads, error in bad_grad_lists(params):
        with pytest.raises(error):
            opt.step(grads)
        assert_unchanged(opt, before)
    opt.step([np.ones_like(p) for p in params])     # still usable, and it moves
    assert not np.array_equal(before[0][0], params[0])
