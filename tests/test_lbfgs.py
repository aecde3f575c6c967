"""LBFGS (cyoptim and cyoptim.torch) against torch.optim.LBFGS (torch 2.13), side by side.

Both sides get the loss and grads of one function, computed by torch's
autograd, so that only the optimizers differ. cyoptim sums dot products in
double in a fixed order, torch's MKL in its own: float64 runs agree to a few
units of the last place (Rosenbrock, a 2-vector: bitwise), float32 runs to
float32 rounding.
"""

import copy
import doctest
import os
import pickle

import numpy as np
import pytest

torch = pytest.importorskip("torch")     # the reference; CI's NumPy-only step skips this file

import cyoptim  # noqa: E402
import cyoptim.torch as cot  # noqa: E402

TORCH_DTYPES = {np.float32: torch.float32, np.float64: torch.float64}
# Largest relative difference (to max(|x|, 1e-3)) over every step of a run.
BOUND = {np.float64: 1e-10, np.float32: 1e-4}


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
    return (torch.nn.functional.cross_entropy(X @ W + b, torch.tensor(_LABELS))
            + 1e-3 * (W ** 2).sum())


def logistic_start(dtype):
    return [np.zeros((10, 3), dtype), np.zeros(3, dtype)]


PROBLEMS = {"rosenbrock": (rosenbrock, rosenbrock_start),
            "logistic": (logistic, logistic_start)}
# (problem, options): Rosenbrock without a line search needs a small lr (a
# fixed step of 0.1 is chaotic there: float32 roundings grow without bound,
# in torch against itself too).
CASES = [("rosenbrock", dict(line_search_fn="strong_wolfe")),
         ("rosenbrock", dict(line_search_fn="strong_wolfe", history_size=3)),
         ("rosenbrock", dict(lr=1e-3, history_size=3)),
         ("logistic", {}),
         ("logistic", dict(line_search_fn="strong_wolfe")),
         ("logistic", dict(lr=0.5, max_iter=7, history_size=4)),
         ("logistic", dict(lr=0.5, max_iter=7, history_size=4, line_search_fn="strong_wolfe"))]


def float32_compared(problem, options):
    """What a float32 run compares with torch at every step: "params" (and the
    loss), "loss" only, or nothing (then both runs must reach the minimum).

    In float32 the last bits of the dot products (summed in double here, by
    MKL in float32 in its own order) differ; L-BFGS divides by y's and y'y,
    so once a run is at float32's noise floor (steps of 20 iterations on the
    logistic regression converge within the first step) the params wander
    within it, differently in each run: the loss still agrees. On Rosenbrock,
    with the line search, the curved valley amplifies the difference along
    the way: both runs reach (1, 1) by different paths.
    """
    if problem == "rosenbrock":
        return "params" if options.get("line_search_fn") is None else None
    return "params" if "max_iter" in options else "loss"


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


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("problem, options", CASES)
def test_numpy_lbfgs_steps_as_torch(problem, options, dtype):
    fn, start = PROBLEMS[problem]
    arrays = start(dtype)
    tensors = leaves(arrays)
    ours = cyoptim.LBFGS(arrays, **options)
    theirs = torch.optim.LBFGS(tensors, **options)
    for step in range(8):
        loss = ours.step(numpy_closure(fn, arrays))
        their_loss = theirs.step(torch_closure(fn, theirs, tensors))
        compared = "params" if dtype == np.float64 else float32_compared(problem, options)
        if compared == "params":
            for a, t in zip(arrays, tensors):
                assert relative(a, t.detach().numpy()) <= BOUND[dtype], step
        if compared is not None:
            assert abs(loss - their_loss.item()) <= BOUND[dtype] * max(abs(loss), 1.0)
    state, their_state = ours.state[0], theirs.state[tensors[0]]
    if dtype == np.float64:
        assert state["func_evals"] == their_state["func_evals"]
        assert state["n_iter"] == their_state["n_iter"]
        assert len(state["old_dirs"]) == len(their_state["old_dirs"])
        np.testing.assert_allclose(state["old_dirs"], torch.stack(their_state["old_dirs"]),
                                   rtol=1e-8, atol=1e-12)
        np.testing.assert_allclose(state["d"], their_state["d"], rtol=1e-8, atol=1e-12)
    if problem == "rosenbrock" and options.get("line_search_fn"):
        np.testing.assert_allclose(arrays[0], [1.0, 1.0], atol=1e-4)   # both converged
        np.testing.assert_allclose(tensors[0].detach(), [1.0, 1.0], atol=1e-4)


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
    arrays = start(dtype)
    ours_t, theirs_t = leaves(arrays), leaves(arrays)
    ours, theirs = cot.LBFGS(ours_t, **options), torch.optim.LBFGS(theirs_t, **options)
    for step in range(8):
        loss = ours.step(torch_closure(fn, ours, ours_t))
        their_loss = theirs.step(torch_closure(fn, theirs, theirs_t))
        assert isinstance(loss, torch.Tensor)
        compared = "params" if dtype == np.float64 else float32_compared(problem, options)
        if compared == "params":
            for a, b in zip(ours_t, theirs_t):
                assert relative(a.detach().numpy(), b.detach().numpy()) <= BOUND[dtype]
        if compared is not None:
            assert abs(loss.item() - their_loss.item()) <= BOUND[dtype] * max(abs(loss.item()), 1)
    if problem == "rosenbrock" and options.get("line_search_fn"):
        np.testing.assert_allclose(ours_t[0].detach(), [1.0, 1.0], atol=1e-4)
    state, their_state = ours.state[ours_t[0]], theirs.state[theirs_t[0]]
    assert set(state) == set(their_state)
    for name in state:
        assert type(state[name]) is type(their_state[name]), name
    assert state["d"].dtype == their_state["d"].dtype
    assert all(isinstance(v, torch.Tensor) and v.dim() == 0 for v in state["ro"])


def test_torch_lbfgs_trains_a_model_as_torch():
    torch.manual_seed(0)
    X, y = torch.randn(64, 5, dtype=torch.float64), torch.randn(64, 1, dtype=torch.float64)
    models = [torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
              .double() for _ in range(2)]
    models[1].load_state_dict(models[0].state_dict())
    opts = [cot.LBFGS(models[0].parameters(), line_search_fn="strong_wolfe"),
            torch.optim.LBFGS(models[1].parameters(), line_search_fn="strong_wolfe")]
    losses = [[], []]
    for _ in range(5):
        for i, (model, opt) in enumerate(zip(models, opts)):
            def closure():
                opt.zero_grad()
                loss = torch.nn.functional.mse_loss(model(X), y)
                loss.backward()
                return loss
            losses[i].append(opt.step(closure).item())
    np.testing.assert_allclose(losses[0], losses[1], rtol=1e-9)
    assert losses[0][-1] < 0.5 * losses[0][0]
    for a, b in zip(models[0].parameters(), models[1].parameters()):
        np.testing.assert_allclose(a.detach(), b.detach(), rtol=1e-7, atol=1e-10)


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
    assert set(state) == {"func_evals", "n_iter", "d", "t", "old_dirs", "old_stps", "ro",
                          "H_diag", "prev_flat_grad", "prev_loss", "al"}
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

    def closure():         # good grads twice, then grads of the wrong dtype
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
        np.testing.assert_array_equal(out, expected.numpy())           # FMA, as torch
        exact = float(np.sum(x.astype(np.longdouble) * y.astype(np.longdouble)))
        assert abs(kernels.vector_dot(x, y, 2) - exact) <= 1e-12 * np.sum(np.abs(x * y))
        assert kernels.vector_dot(x, y, 1) == kernels.vector_dot(x, y, 2)


def test_docstring_example():
    for test in doctest.DocTestFinder().find(cyoptim.LBFGS, "LBFGS"):
        assert doctest.DocTestRunner().run(test).failed == 0
