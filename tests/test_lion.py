import itertools

import numpy as np
import pytest

import cyoptim
import cyoptim.reference as ref
from optim_harness import (assert_equals_reference, assert_state_dict_round_trip,
                           assert_thread_and_variant_invariant, assert_unchanged, snapshot)

FLAGS = [dict(maximize=m, weight_decay=wd)
         for m, wd in itertools.product([False, True], [0.0, 0.3])]
IDS = ["-".join(f"{k}={v}" for k, v in f.items()) for f in FLAGS]


@pytest.mark.parametrize("flags", FLAGS, ids=IDS)
def test_lion_equals_numpy_reference(flags, dtype):
    assert_equals_reference(cyoptim.Lion, ref.Lion, dict(flags, lr=1e-2, betas=(0.8, 0.95)),
                            dtype, group_options=dict(lr=0.1, betas=(0.3, 0.5),
                                                      weight_decay=0.05))


def test_lion_thread_and_variant_invariant(dtype):
    assert_thread_and_variant_invariant(cyoptim.Lion, dict(lr=1e-3, weight_decay=0.1), dtype)


@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
def test_lion_state_dict_round_trip(weight_decay, dtype):
    assert_state_dict_round_trip(cyoptim.Lion, dict(lr=1e-2, weight_decay=weight_decay), dtype)


def test_lion_two_steps_by_hand():
    w = np.array([1.0, -2.0, 0.5, 3.0])
    opt = cyoptim.Lion([w], lr=0.1, betas=(0.9, 0.99), weight_decay=0.5)
    # Step 1, m = 0: c = 0.1*g, so the sign is the grad's (0 for a zero grad).
    g1 = np.array([0.3, -4.0, 0.0, 1e-30])
    opt.step([g1])
    expected = [1.0 - 0.1 * (1 + 0.5 * 1.0), -2.0 - 0.1 * (-1 + 0.5 * -2.0),
                0.5 - 0.1 * (0 + 0.5 * 0.5), 3.0 - 0.1 * (1 + 0.5 * 3.0)]
    np.testing.assert_allclose(w, expected, rtol=1e-15)
    m1 = [0.01 * 0.3, 0.01 * -4.0, 0.0, 0.01 * 1e-30]
    np.testing.assert_allclose(opt.state[0]["exp_avg"], m1, rtol=1e-15)
    # Step 2: c = 0.1*g + 0.9*m. Element 0: -0.001 + 0.0027 > 0 (the momentum
    # wins over the opposite grad); 1: 0.05 - 0.036 > 0 (the grad wins);
    # 2: -0.2 + 0 < 0; 3: -0.1 + 9e-33 < 0.
    before = w.copy()
    g2 = np.array([-0.01, 0.5, -2.0, -1.0])
    opt.step([g2])
    signs = [1.0, 1.0, -1.0, -1.0]
    expected = [b - 0.1 * (s + 0.5 * b) for b, s in zip(before, signs)]
    np.testing.assert_allclose(w, expected, rtol=1e-15)
    m2 = [0.99 * a + 0.01 * b for a, b in zip(m1, g2)]
    np.testing.assert_allclose(opt.state[0]["exp_avg"], m2, rtol=1e-15)
    assert sorted(opt.state_dict()["state"][0]) == ["exp_avg"]     # no step


def test_lion_maximize_flips_the_step():
    w = np.zeros(2, np.float32)
    cyoptim.Lion([w], lr=0.5, maximize=True).step([np.array([1.0, -3.0], np.float32)])
    np.testing.assert_array_equal(w, [0.5, -0.5])


def test_lion_float32_computes_in_float32():
    """lr is cast to float32 before the product, as the reference does."""
    w = np.ones(3, np.float32)
    cyoptim.Lion([w], lr=0.1).step([np.ones(3, np.float32)])
    assert w.dtype == np.float32
    np.testing.assert_array_equal(w, np.float32(1) + np.float32(-0.1) * np.float32(1))


def test_lion_sign_of_zero_and_nan():
    """sign(+-0) = 0 (the param only decays), sign(NaN) = NaN."""
    w = np.array([1.0, 1.0, 1.0, 1.0])
    opt = cyoptim.Lion([w], lr=0.1)
    opt.step([np.array([0.0, -0.0, np.nan, np.inf])])
    assert w[0] == 1.0 and w[1] == 1.0 and np.isnan(w[2]) and w[3] == 0.9
    state = opt.state[0]["exp_avg"]
    assert np.isnan(state[2]) and np.isinf(state[3])


@pytest.mark.parametrize("kwargs, message", [
    (dict(lr=-1.0), "Invalid learning rate: -1.0"),
    (dict(betas=(1.0, 0.99)), "Invalid beta parameter at index 0: 1.0"),
    (dict(betas=(0.9, -0.1)), "Invalid beta parameter at index 1: -0.1"),
    (dict(weight_decay=-0.5), "Invalid weight_decay value: -0.5"),
])
def test_lion_validates_like_torch(kwargs, message):
    with pytest.raises(ValueError, match=message.replace(".", r"\.")):
        cyoptim.Lion([np.zeros(2)], **kwargs)


def test_lion_defaults():
    group = cyoptim.Lion([np.zeros(2)]).param_groups[0]
    assert (group["lr"], group["betas"], group["weight_decay"], group["maximize"]) == \
        (1e-4, (0.9, 0.99), 0.0, False)


@pytest.mark.parametrize("bad, error", [
    (np.ones(3, np.float32), TypeError),             # wrong dtype
    (np.ones(4), ValueError),                        # wrong shape
    (np.ones(6)[::2], ValueError),                   # not contiguous
    ("grad", TypeError),                             # not an array
])
def test_lion_bad_grad_changes_nothing(bad, error):
    params = [np.arange(4.0), np.arange(3.0)]
    opt = cyoptim.Lion(params, lr=0.1)
    opt.step([np.ones(4), np.ones(3)])
    before = snapshot(opt)
    with pytest.raises(error, match="grad 1"):
        opt.step([np.ones(4), bad])
    assert_unchanged(opt, before)
