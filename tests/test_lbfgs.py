"""LBFGS (cyoptim and cyoptim.torch) against torch.optim.LBFGS (torch 2.13), side by side.

Both sides get the loss and grads of one function, computed by torch's
autograd, so that only the optimizers differ. cyoptim sums dot products in
double in a fixed order, torch's BLAS in its own, which differs between
machines (MKL takes other kernels on AMD and Intel CPUs). L-BFGS amplifies
such a one-rounding difference: its line search and its curvature pairs
divide by differences of dot products, and a float32 run near its minimum
wanders in the flat directions of the loss. How much depends on the problem
and the machine, so the bounds are measured on the spot: torch's own run is
repeated with every loss (and so every grad) scaled by 1 + k units in the
last place (k = 1, -1, 2), and cyoptim may differ from torch's run by at
most SPREAD_FACTOR times the largest distance of those runs from it, or by
BOUND, whichever is larger. Where nothing is amplified (Rosenbrock in
float64, a 2-vector) the runs are bitwise torch's.
"""

import copy
import doctest
import os
import pickle

import numpy as np
import pytest

torch = pytest.importorskip("torch")  # the reference; CI's NumPy-only step skips this file

import cyoptim  # noqa: E402
import cyoptim.torch as cot  # noqa: E402

TORCH_DTYPES = {np.float32: torch.float32, np.float64: torch.float64}
# Relative difference (to max(|x|, 1e-3)) allowed at any step where torch's
# perturbed runs stay closer than this: a few roundings of the dtype.
BOUND = {np.float64: 1e-10, np.float32: 1e-4}
# One unit in the last place, and the scalings of the loss that perturb torch's runs.
ULP = {np.float64: 2.0**-52, np.float32: 2.0**-23}
PERTURBATIONS = (1, -1, 2)
# cyoptim's distance from torch is one more perturbation of the same size
# (a few roundings per dot product); 4x the largest of three measured ones.
SPREAD_FACTOR = 4
STEPS = 8


def rosenbrock(tensors):
    (x,) = tensors
    return (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2


def rosenbrock_start(dtype):
    return [np.array([-1.5, 2.0], dtype)]


_rng = np.random.default_rng(7)
_X, _LABELS = _rng.standard_normal((200, 10)), _rng.integers(0, 3, 200)


def logistic(tensors):
    """Multinomial logistic regression with a small L2 term (W: 10 x 3, b: 3)."""
    W, b = tensors
    X = torch.tensor(_X, dtype=W.dtype)
    return (
        torch.nn.functional.cross_entropy(X @ W + b, torch.tensor(_LABELS)) + 1e-3 * (W**2).sum()
    )


def logistic_start(dtype):
    return [np.zeros((10, 3), dtype), np.zeros(3, dtype)]


PROBLEMS = {"rosenbrock": (rosenbrock, rosenbrock_start), "logistic": (logistic, logistic_start)}
# (problem, options): Rosenbrock without a line search needs a small lr (a
# fixed step of 0.1 is chaotic there: float32 roundings grow without bound,
# in torch against itself too).
CASES = [
    ("rosenbrock", dict(line_search_fn="strong_wolfe")),
    ("rosenbrock", dict(line_search_fn="strong_wolfe", history_size=3)),
    ("rosenbrock", dict(lr=1e-3, history_size=3)),
    ("logistic", {}),
    ("logistic", dict(line_search_fn="strong_wolfe")),
    ("logistic", dict(lr=0.5, max_iter=7, history_size=4)),
    ("logistic", dict(lr=0.5, max_iter=7, history_size=4, line_search_fn="strong_wolfe")),
]


def numpy_closure(fn, arrays):
    """cyoptim.LBFGS's closure: (loss, grads) of fn at the arrays' current values."""

    def closure():
        tensors = [torch.tensor(a, requires_grad=True) for a in arrays]
        loss = fn(tensors)
        loss.backward()
        return loss.item(), [t.grad.numpy() for t in tensors]

    return closure


def torch_closure(fn, opt, tensors):
    def closure():
        opt.zero_grad()
        loss = fn(tensors)
        loss.backward()
        return loss

    return closure


def relative(a, b):
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(a), 1e-3), initial=0.0))


def leaves(arrays):
    return [torch.tensor(a, requires_grad=True) for a in arrays]


def torch_run(fn, start, options, steps=STEPS, scale=1.0):
    """torch.optim.LBFGS from start with the loss scaled by scale: the optimizer,
    and per step the params after it and the loss it returned."""
    tensors = leaves(start)
    opt = torch.optim.LBFGS(tensors, **options)
    params, losses = [], []
    for _ in range(steps):
        loss = opt.step(torch_closure(lambda ts: fn(ts) * scale, opt, tensors))
        losses.append(loss.item() / scale)
        params.append([t.detach().numpy().copy() for t in tensors])
    return opt, params, losses


class Reference:
    """torch's run of a problem, and per step how far cyoptim's may be from it
    (the module docstring says how that is measured)."""

    def __init__(self, fn, start, options, dtype, steps=STEPS):
        self.opt, self.params, self.losses = torch_run(fn, start(dtype), options, steps)
        param_spread, loss_spread = np.zeros(steps), np.zeros(steps)
        for k in PERTURBATIONS:
            _, params, losses = torch_run(fn, start(dtype), options, steps, 1 + k * ULP[dtype])
            for step in range(steps):
                param_spread[step] = max(
                    param_spread[step],
                    *(relative(a, b) for a, b in zip(params[step], self.params[step])),
                )
                loss_spread[step] = max(loss_spread[step], abs(losses[step] - self.losses[step]))
        self.param_bound = np.maximum(BOUND[dtype], SPREAD_FACTOR * param_spread)
        self.loss_bound = np.maximum(
            BOUND[dtype] * np.maximum(np.abs(self.losses), 1.0), SPREAD_FACTOR * loss_spread
        )

    def check(self, step, arrays, loss):
        for a, b in zip(arrays, self.params[step]):
            assert relative(a, b) <= self.param_bound[step], step
        assert abs(loss - self.losses[step]) <= self.loss_bound[step], step


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("problem, options", CASES)
def test_numpy_lbfgs_steps_as_torch(problem, options, dtype):
    fn, start = PROBLEMS[problem]
    reference = Reference(fn, start, options, dtype)
    arrays = start(dtype)
    ours = cyoptim.LBFGS(arrays, **options)
    for step in range(STEPS):
        loss = ours.step(numpy_closure(fn, arrays))
        reference.check(step, arrays, loss)
    state, their_state = (
        ours.state[0],
        reference.opt.state[reference.opt.param_groups[0]["params"][0]],
    )
    if dtype == np.float64:
        assert state["func_evals"] == their_state["func_evals"]
        assert state["n_iter"] == their_state["n_iter"]
        assert len(state["old_dirs"]) == len(their_state["old_dirs"])
        np.testing.assert_allclose(
            state["old_dirs"], torch.stack(their_state["old_dirs"]), rtol=1e-8, atol=1e-12
        )
        np.testing.assert_allclose(state["d"], their_state["d"], rtol=1e-8, atol=1e-12)
    if problem == "rosenbrock" and options.get("line_search_fn"):
        np.testing.assert_allclose(arrays[0], [1.0, 1.0], atol=1e-4)  # both converged
        np.testing.assert_allclose(reference.params[-1][0], [1.0, 1.0], atol=1e-4)


def test_rosenbrock_float64_is_bitwise_torch():
    """A 2-vector: dot products of two terms are summed alike, every FMA too."""
    for options in (dict(line_search_fn="strong_wolfe"), dict(lr=1e-3, history_size=3)):
        arrays = rosenbrock_start(np.float64)
        tensors = leaves(arrays)
        ours, theirs = cyoptim.LBFGS(arrays, **options), torch.optim.LBFGS(tensors, **options)
        for _ in range(10):
            ours.step(numpy_closure(rosenbrock, arrays))
            theirs.step(torch_closure(rosenbrock, theirs, tensors))
            np.testing.assert_array_equal(arrays[0], tensors[0].detach().numpy())


# ----------------------------------------------------------------------- cyoptim.torch
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("problem, options", CASES)
def test_torch_lbfgs_steps_as_torch(problem, options, dtype):
    fn, start = PROBLEMS[problem]
    reference = Reference(fn, start, options, dtype)
    ours_t = leaves(start(dtype))
    ours = cot.LBFGS(ours_t, **options)
    for step in range(STEPS):
        loss = ours.step(torch_closure(fn, ours, ours_t))
        assert isinstance(loss, torch.Tensor)
        reference.check(step, [t.detach().numpy() for t in ours_t], loss.item())
    if problem == "rosenbrock" and options.get("line_search_fn"):
        np.testing.assert_allclose(ours_t[0].detach(), [1.0, 1.0], atol=1e-4)
    state = ours.state[ours_t[0]]
    their_state = reference.opt.state[reference.opt.param_groups[0]["params"][0]]
    assert set(state) == set(their_state)
    for name in state:
        assert type(state[name]) is type(their_state[name]), name
    assert state["d"].dtype == their_state["d"].dtype
    assert all(isinstance(v, torch.Tensor) and v.dim() == 0 for v in state["ro"])


def train_mlp(cls, scale=1.0, steps=5):
    """An MLP trained by cls with the strong Wolfe line search, its loss scaled by
    scale: the losses each step returned and the final params (float64)."""
    torch.manual_seed(0)
    X, y = torch.randn(64, 5, dtype=torch.float64), torch.randn(64, 1, dtype=torch.float64)
    model = torch.nn.Sequential(
        torch.nn.Linear(5, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1)
    ).double()
    opt = cls(model.parameters(), line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(model(X), y) * scale
        loss.backward()
        return loss

    losses = [opt.step(closure).item() / scale for _ in range(steps)]
    return np.array(losses), [p.detach().numpy().copy() for p in model.parameters()]


def test_torch_lbfgs_trains_a_model_as_torch():
    """Five steps of 20 iterations: a one-rounding difference grows about 30-100x
    a step here (measured), so the bound is torch's own spread (module docstring)."""
    losses, params = train_mlp(torch.optim.LBFGS)
    loss_spread, param_spread = 0.0, 0.0
    for k in PERTURBATIONS:
        other_losses, other_params = train_mlp(torch.optim.LBFGS, 1 + k * ULP[np.float64])
        loss_spread = max(loss_spread, np.max(np.abs(other_losses - losses) / losses))
        param_spread = max(param_spread, *(relative(a, b) for a, b in zip(other_params, params)))
    ours_losses, ours_params = train_mlp(cot.LBFGS)
    assert np.max(np.abs(ours_losses - losses) / losses) <= max(
        BOUND[np.float64], SPREAD_FACTOR * loss_spread
    )
    for a, b in zip(ours_params, params):
        assert relative(a, b) <= max(BOUND[np.float64], SPREAD_FACTOR * param_spread)
    assert ours_losses[-1] < 0.5 * ours_losses[0]


@pytest.mark.parametrize("line_search_fn", [None, "strong_wolfe"])
def test_torch_state_dict_loads_into_torch_and_back(line_search_fn):
    """Three steps here, three in torch.optim.LBFGS from our state_dict, three
    here again from its state_dict: as nine steps of torch.optim.LBFGS."""
    options = dict(line_search_fn=line_search_fn, lr=0.5, max_iter=5, history_size=3)
    start = logistic_start(np.float64)
    straight_t = leaves(start)
    straight = torch.optim.LBFGS(straight_t, **options)
    for _ in range(9):
        straight.step(torch_closure(logistic, straight, straight_t))
    tensors = leaves(start)
    opt = cot.LBFGS(tensors, **options)
    for _ in range(3):
        opt.step(torch_closure(logistic, opt, tensors))
    theirs = torch.optim.LBFGS(tensors, **options)
    theirs.load_state_dict(opt.state_dict())
    for _ in range(3):
        theirs.step(torch_closure(logistic, theirs, tensors))
    again = cot.LBFGS(tensors, **options)
    again.load_state_dict(theirs.state_dict())
    for _ in range(3):
        again.step(torch_closure(logistic, again, tensors))
    assert again.state[tensors[0]]["n_iter"] == straight.state[straight_t[0]]["n_iter"]
    for a, b in zip(tensors, straight_t):
        np.testing.assert_allclose(a.detach(), b.detach(), rtol=1e-9, atol=1e-12)


def test_torch_lbfgs_refuses_what_it_cannot_step():
    with pytest.raises(ValueError, match="Invalid learning rate: -1"):
        cot.LBFGS([torch.zeros(2, requires_grad=True)], lr=-1)
    with pytest.raises(ValueError, match="per-parameter options"):
        cot.LBFGS([{"params": [torch.zeros(2)]}, {"params": [torch.zeros(2)]}])
    with pytest.raises(ValueError, match="not contiguous"):
        cot.LBFGS([torch.zeros(3, 4).t()])
    with pytest.raises(ValueError, match="line_search_fn"):
        cot.LBFGS([torch.zeros(2)], line_search_fn="armijo")
    with pytest.raises(TypeError, match="one dtype"):
        cot.LBFGS([torch.zeros(2), torch.zeros(2, dtype=torch.float64)])
    assert cot.LBFGS([torch.zeros(2)]).defaults == torch.optim.LBFGS([torch.zeros(2)]).defaults


# ----------------------------------------------------------------------- NumPy: state
def run_numpy(arrays, options, steps, opt=None):
    opt = opt or cyoptim.LBFGS(arrays, **options)
    for _ in range(steps):
        opt.step(numpy_closure(logistic, arrays))
    return opt


@pytest.mark.parametrize("line_search_fn", [None, "strong_wolfe"])
def test_numpy_state_dict_and_save_state_round_trip(tmp_path, line_search_fn):
    options = dict(line_search_fn=line_search_fn, lr=0.5, max_iter=5, history_size=3)
    straight = logistic_start(np.float32)
    run_numpy(straight, options, 6)
    arrays = logistic_start(np.float32)
    opt = run_numpy(arrays, options, 3)
    state = opt.state[0]
    assert set(state) == {
        "func_evals",
        "n_iter",
        "d",
        "t",
        "old_dirs",
        "old_stps",
        "ro",
        "H_diag",
        "prev_flat_grad",
        "prev_loss",
        "al",
    }
    assert state["old_dirs"].shape == (3, 33) and state["al"].shape == (3,)
    path = os.path.join(tmp_path, "lbfgs.npz")
    cyoptim.save_state(opt, path)
    resumed_arrays = [a.copy() for a in arrays]
    resumed = cyoptim.LBFGS(resumed_arrays, **options)
    cyoptim.load_state(resumed, path)
    twin = pickle.loads(pickle.dumps(opt))
    deep = copy.deepcopy(opt)
    run_numpy(resumed_arrays, options, 3, resumed)
    for other in (twin, deep):
        run_numpy(other.param_groups[0]["params"], options, 3, other)
        for a, b in zip(other.param_groups[0]["params"], straight):
            np.testing.assert_array_equal(a, b)
    for a, b in zip(resumed_arrays, straight):
        np.testing.assert_array_equal(a, b)


def test_numpy_load_state_dict_refuses_a_state_that_does_not_fit():
    arrays = logistic_start(np.float64)
    opt = run_numpy(arrays, dict(history_size=3, max_iter=5), 2)
    saved = opt.state_dict()
    other = cyoptim.LBFGS([np.zeros((10, 3)), np.zeros(4)], history_size=3)
    with pytest.raises(ValueError, match="'d'"):
        other.load_state_dict(saved)
    assert other.state == {}
    bad = copy.deepcopy(saved)
    del bad["state"][0]["ro"]
    with pytest.raises(ValueError, match="keys"):
        opt.load_state_dict(bad)
    bad = copy.deepcopy(saved)
    bad["state"][0]["old_dirs"] = np.zeros((4, 33))
    with pytest.raises(ValueError, match="history_size"):
        opt.load_state_dict(bad)
    np.testing.assert_array_equal(opt.state[0]["d"], saved["state"][0]["d"])


def test_numpy_bad_grads_change_nothing():
    arrays = logistic_start(np.float64)
    opt = run_numpy(arrays, dict(line_search_fn="strong_wolfe", max_iter=3), 1)
    before = [a.copy() for a in arrays]
    saved = opt.state_dict()
    calls = []

    def closure():  # good grads twice, then grads of the wrong dtype
        calls.append(1)
        loss, grads = numpy_closure(logistic, arrays)()
        return loss, grads if len(calls) < 3 else [g.astype(np.float32) for g in grads]

    with pytest.raises(TypeError, match="grad 0"):
        opt.step(closure)
    assert len(calls) == 3
    for a, b in zip(arrays, before):
        np.testing.assert_array_equal(a, b)
    after = opt.state_dict()["state"][0]
    for name, value in saved["state"][0].items():
        np.testing.assert_array_equal(after[name], value)
    with pytest.raises(TypeError, match=r"\(loss, grads\)"):
        opt.step(lambda: 1.0)
    with pytest.raises(ValueError, match="2 grads for 2 params|1 grads for 2 params"):
        opt.step(lambda: (1.0, [np.zeros((10, 3))]))


def test_numpy_constructor_checks():
    with pytest.raises(ValueError, match="Invalid learning rate: -1"):
        cyoptim.LBFGS([np.zeros(2)], lr=-1)
    with pytest.raises(ValueError, match="per-parameter options"):
        cyoptim.LBFGS([{"params": [np.zeros(2)]}, {"params": [np.zeros(2)]}])
    with pytest.raises(ValueError, match="line_search_fn"):
        cyoptim.LBFGS([np.zeros(2)], line_search_fn="armijo")
    with pytest.raises(ValueError, match="history_size"):
        cyoptim.LBFGS([np.zeros(2)], history_size=0)
    opt = cyoptim.LBFGS([np.zeros(2)])
    assert opt.defaults == torch.optim.LBFGS([torch.zeros(2)]).defaults


def test_numpy_lbfgs_is_bitwise_the_same_for_any_thread_count():
    """Dot products over chunks combined in a fixed order (pyx/lbfgs.pxi)."""
    rng = np.random.default_rng(3)
    A = rng.standard_normal((300, 20000)) / 100
    results = []
    for threads in (1, 2):
        cyoptim.set_num_threads(threads)
        try:
            x = np.zeros(20000)

            def closure():
                r = A @ x - 1.0
                return 0.5 * float(r @ r), [A.T @ r]

            opt = cyoptim.LBFGS([x], max_iter=6, line_search_fn="strong_wolfe")
            opt.step(closure)
            results.append(x.copy())
        finally:
            cyoptim.set_num_threads(0)
    np.testing.assert_array_equal(results[0], results[1])


def test_vector_kernels_against_torch():
    kernels = cyoptim._dispatch.kernels
    rng = np.random.default_rng(4)
    for dtype in (np.float32, np.float64):
        x, y = (rng.standard_normal(10007).astype(dtype) for _ in range(2))
        out = x.copy()
        kernels.vector_axpy_(out, y, -0.3, 2)
        expected = torch.from_numpy(x.copy()).add_(torch.from_numpy(y), alpha=-0.3)
        np.testing.assert_array_equal(out, expected.numpy())  # FMA, as torch
        exact = float(np.sum(x.astype(np.longdouble) * y.astype(np.longdouble)))
        assert abs(kernels.vector_dot(x, y, 2) - exact) <= 1e-12 * np.sum(np.abs(x * y))
        assert kernels.vector_dot(x, y, 1) == kernels.vector_dot(x, y, 2)


def test_docstring_example():
    for test in doctest.DocTestFinder().find(cyoptim.LBFGS, "LBFGS"):
        assert doctest.DocTestRunner().run(test).failed == 0
