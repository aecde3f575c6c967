import numpy as np
import pytest

import cyoptim


def test_lion_two_steps_by_hand():
    w = np.array([1.0, -2.0, 0.5, 3.0])
    opt = cyoptim.Lion([w], lr=0.1, betas=(0.9, 0.99), weight_decay=0.5)
    # Step 1, m = 0: c = 0.1*g, so the sign is the grad's (0 for a zero grad).
    g1 = np.array([0.3, -4.0, 0.0, 1e-30])
    opt.step([g1])
    expected = [
        1.0 - 0.1 * (1 + 0.5 * 1.0),
        -2.0 - 0.1 * (-1 + 0.5 * -2.0),
        0.5 - 0.1 * (0 + 0.5 * 0.5),
        3.0 - 0.1 * (1 + 0.5 * 3.0),
    ]
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
    assert sorted(opt.state_dict()["state"][0]) == ["exp_avg"]  # no step


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


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(lr=-1.0), "Invalid learning rate: -1.0"),
        (dict(betas=(1.0, 0.99)), "Invalid beta parameter at index 0: 1.0"),
        (dict(betas=(0.9, -0.1)), "Invalid beta parameter at index 1: -0.1"),
        (dict(weight_decay=-0.5), "Invalid weight_decay value: -0.5"),
    ],
)
def test_lion_validates_like_torch(kwargs, message):
    with pytest.raises(ValueError, match=message.replace(".", r"\.")):
        cyoptim.Lion([np.zeros(2)], **kwargs)


def test_lion_defaults():
    group = cyoptim.Lion([np.zeros(2)]).param_groups[0]
    assert (group["lr"], group["betas"], group["weight_decay"], group["maximize"]) == (
        1e-4,
        (0.9, 0.99),
        0.0,
        False,
    )
