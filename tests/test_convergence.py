"""Every optimizer minimizes two small problems within a fixed number of steps.

(a) Rosenbrock f(x, y) = (1 - x)^2 + 100 (y - x^2)^2 from (-1.5, 2.0), float64:
    f must end below 1e-3 (it starts at 12.5; the minimum is 0 at (1, 1)).
(b) Least squares ||A x - b||^2 / (2n), A 200x20 Gaussian, b = A x_true + 0.01 noise,
    from x = 0, in float64 and float32: f must end within 1e-6 of the optimum that
    np.linalg.lstsq gives (it starts about 10 above it).

The rates were tuned once; each still passes with the rate scaled by 0.7 and 1.4,
so the margin is real but the thresholds can fail. Optimizers that normalize the
step (RMSprop, the Adam family, Lion, LAMB, Adadelta) keep taking steps of about
lr near the minimum, so they run with an exponentially decaying rate
lr_t = lr * gamma^t, written into param_groups[0]["lr"] before each step as a
schedule would (gamma = 1 is a constant rate).

The rates, decay and steps of every configuration are the ``convergence``
settings of its row in cyoptim.registry (lr, gamma, steps per problem).

AdamW's decoupled decay moves its fixed point off the least-squares optimum by
O(weight_decay) (about 2e-5 in loss at the default 1e-2), so that case uses 1e-4.
"""

import numpy as np
import pytest
from optimizer_table import optimizer_class, row_settings

from cyoptim import registry

# label: (class, constructor kwargs besides lr, Rosenbrock (lr, gamma, steps),
#        least squares (lr, gamma, steps)), from each registry row's convergence settings.
CASES = {
    label: (optimizer_class(row), case.options, case.rosenbrock, case.least_squares)
    for row in registry.OPTIMIZERS
    for label, case in row_settings(row).convergence.items()
}
LEAST_SQUARES_OPTIONS = {
    label: case.least_squares_options
    for row in registry.OPTIMIZERS
    for label, case in row_settings(row).convergence.items()
}

ROSENBROCK_THRESHOLD = 1e-3
LEAST_SQUARES_GAP = 1e-6


def minimize(name, schedule, x, loss_and_grad, options=None):
    """Run the named optimizer over the single param x; return (first, last) loss."""
    cls, kwargs = CASES[name][:2]
    lr, gamma, steps = schedule
    opt = cls([x], lr=lr, **kwargs, **(options or {}))
    first = loss_and_grad(x)[0]
    for t in range(steps):
        opt.param_groups[0]["lr"] = lr * gamma**t
        opt.step([loss_and_grad(x)[1]])
    return first, loss_and_grad(x)[0]


def rosenbrock(p):
    x, y = float(p[0]), float(p[1])
    loss = (1 - x) ** 2 + 100 * (y - x * x) ** 2
    grad = np.array([-2 * (1 - x) - 400 * x * (y - x * x), 200 * (y - x * x)])
    return loss, grad


def least_squares_problem():
    rng = np.random.default_rng(0)
    A = rng.standard_normal((200, 20))
    b = A @ rng.standard_normal(20) + 0.01 * rng.standard_normal(200)
    return A, b


def least_squares_loss(A, b, x):
    """In float64 whatever the dtype of x, so both dtypes meet the same optimum."""
    r = A @ np.asarray(x, np.float64) - b
    return float(r @ r) / (2 * len(b))


@pytest.mark.parametrize("name", list(CASES))
def test_rosenbrock_converges(name):
    x = np.array([-1.5, 2.0])
    with np.errstate(all="raise"):  # a diverging run fails loudly
        first, last = minimize(name, CASES[name][2], x, rosenbrock)
    assert first == 12.5
    assert last < first
    assert last < ROSENBROCK_THRESHOLD, f"{name}: f = {last:.3g} at {x}"


@pytest.mark.parametrize("name", list(CASES))
def test_least_squares_converges(name, dtype):
    A, b = least_squares_problem()
    optimum = least_squares_loss(A, b, np.linalg.lstsq(A, b, rcond=None)[0])
    A_dtype, b_dtype, n = A.astype(dtype), b.astype(dtype), dtype(len(b))

    def loss_and_grad(x):
        assert x.dtype == dtype
        return least_squares_loss(A, b, x), A_dtype.T @ (A_dtype @ x - b_dtype) / n

    x = np.zeros(20, dtype)
    with np.errstate(all="raise"):
        first, last = minimize(
            name, CASES[name][3], x, loss_and_grad, LEAST_SQUARES_OPTIONS.get(name)
        )
    assert first - optimum > 1.0  # the threshold is far from the start
    assert last < first
    assert last - optimum < LEAST_SQUARES_GAP, f"{name}: {last - optimum:.3g} above optimum"
