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

Rates, decay and steps (Rosenbrock: float64 below 1e-3; least squares: float64
and float32 within 1e-6 of the optimum):

| optimizer        | Rosenbrock lr | gamma | steps | least sq. lr | gamma | steps |
|------------------|---------------|-------|-------|--------------|-------|-------|
| SGD              | 1e-3          | 1     | 12000 | 0.3          | 1     | 100   |
| SGD momentum 0.9 | 1e-3          | 1     | 1500  | 0.1          | 1     | 300   |
| SGD Nesterov 0.9 | 7e-4          | 1     | 2000  | 0.1          | 1     | 200   |
| Adagrad          | 0.85          | 1     | 8000  | 1.0          | 1     | 100   |
| RMSprop          | 0.1           | 0.998 | 3500  | 0.1          | 0.995 | 400   |
| RMSprop centered | 0.03          | 0.998 | 3500  | 0.1          | 0.995 | 400   |
| Adadelta         | 2.0           | 0.999 | 4000  | 0.5          | 1     | 1500  |
| Adam             | 0.5           | 0.999 | 1200  | 0.1          | 0.995 | 300   |
| AdamW            | 0.1 (wd 1e-2) | 0.999 | 3500  | 0.1 (wd 1e-4)| 0.995 | 400   |
| Adam amsgrad     | 0.2           | 1     | 1000  | 0.1          | 1     | 300   |
| Adamax           | 0.01          | 1     | 6000  | 0.3          | 0.995 | 300   |
| NAdam            | 0.1           | 0.999 | 2000  | 0.1          | 0.995 | 300   |
| RAdam            | 7e-3          | 1     | 9000  | 0.3          | 0.995 | 300   |
| Lion             | 0.1           | 0.995 | 1500  | 0.03         | 0.995 | 1500  |
| LAMB             | 0.2           | 0.995 | 2000  | 0.03         | 0.995 | 1500  |

AdamW's decoupled decay moves its fixed point off the least-squares optimum by
O(weight_decay) (about 2e-5 in loss at the default 1e-2), so that case uses 1e-4.
"""

import numpy as np
import pytest

import cyoptim

# name: (class, constructor kwargs besides lr, Rosenbrock (lr, gamma, steps),
#        least squares (lr, gamma, steps)), as in the table above.
CASES = {
    "SGD": (cyoptim.SGD, {}, (1e-3, 1.0, 12000), (0.3, 1.0, 100)),
    "SGD-momentum": (cyoptim.SGD, dict(momentum=0.9), (1e-3, 1.0, 1500), (0.1, 1.0, 300)),
    "SGD-nesterov": (cyoptim.SGD, dict(momentum=0.9, nesterov=True),
                     (7e-4, 1.0, 2000), (0.1, 1.0, 200)),
    "Adagrad": (cyoptim.Adagrad, {}, (0.85, 1.0, 8000), (1.0, 1.0, 100)),
    "RMSprop": (cyoptim.RMSprop, {}, (0.1, 0.998, 3500), (0.1, 0.995, 400)),
    "RMSprop-centered": (cyoptim.RMSprop, dict(centered=True),
                         (0.03, 0.998, 3500), (0.1, 0.995, 400)),
    "Adadelta": (cyoptim.Adadelta, {}, (2.0, 0.999, 4000), (0.5, 1.0, 1500)),
    "Adam": (cyoptim.Adam, {}, (0.5, 0.999, 1200), (0.1, 0.995, 300)),
    "AdamW": (cyoptim.AdamW, {}, (0.1, 0.999, 3500), (0.1, 0.995, 400)),
    "Adam-amsgrad": (cyoptim.Adam, dict(amsgrad=True), (0.2, 1.0, 1000), (0.1, 1.0, 300)),
    "Adamax": (cyoptim.Adamax, {}, (0.01, 1.0, 6000), (0.3, 0.995, 300)),
    "NAdam": (cyoptim.NAdam, {}, (0.1, 0.999, 2000), (0.1, 0.995, 300)),
    "RAdam": (cyoptim.RAdam, {}, (7e-3, 1.0, 9000), (0.3, 0.995, 300)),
    "Lion": (cyoptim.Lion, {}, (0.1, 0.995, 1500), (0.03, 0.995, 1500)),
    "LAMB": (cyoptim.LAMB, {}, (0.2, 0.995, 2000), (0.03, 0.995, 1500)),
}
LEAST_SQUARES_OPTIONS = {"AdamW": dict(weight_decay=1e-4)}

ROSENBROCK_THRESHOLD = 1e-3
LEAST_SQUARES_GAP = 1e-6


def minimize(name, schedule, x, loss_and_grad, options=None):
    """Run the named optimizer over the single param x; return (first, last) loss."""
    cls, kwargs = CASES[name][:2]
    lr, gamma, steps = schedule
    opt = cls([x], lr=lr, **kwargs, **(options or {}))
    first = loss_and_grad(x)[0]
    for t in range(steps):
        opt.param_groups[0]["lr"] = lr * gamma ** t
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
    with np.errstate(all="raise"):               # a diverging run fails loudly
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
        first, last = minimize(name, CASES[name][3], x, loss_and_grad,
                               LEAST_SQUARES_OPTIONS.get(name))
    assert first - optimum > 1.0                 # the threshold is far from the start
    assert last < first
    assert last - optimum < LEAST_SQUARES_GAP, f"{name}: {last - optimum:.3g} above optimum"
