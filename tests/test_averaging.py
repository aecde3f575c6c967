"""AveragedParams: EMA and SWA of the weights, side by side with torch's AveragedModel.

torch's CPU lerp kernel rounds each element once (a fused multiply-add), and
so does cyoptim's (pyx/averaging.pxi): on a CPU where torch runs its AVX2 or
AVX-512 kernels the averages are bitwise torch's. The oracle below computes
the same rule exactly (Fractions) and rounds once.
"""

import copy
import doctest
import pickle
from fractions import Fraction

import numpy as np
import pytest
from optim_harness import threads

import cyoptim
from cyoptim import _dispatch, averaging

UPDATES = 60


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


def torch_fuses(torch):
    """Whether torch's lerp runs its vectorized (fused multiply-add) CPU kernels here."""
    return torch.backends.cpu.get_cpu_capability() != "DEFAULT"


def make_arrays(shapes, dtypes, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(shape).astype(dtype) for shape, dtype in zip(shapes, dtypes)]


SHAPES = [(31, 17), (17,), (3, 4, 5), (0,), (1,), (1000,)]


def drift(arrays, rng, scale=0.1):
    """One 'optimizer step': move every array in place."""
    for x in arrays:
        x += (scale * rng.standard_normal(x.shape)).astype(x.dtype)


def round_to(exact, dtype):
    """The dtype value nearest to the Fraction exact (ties to even)."""
    guess = dtype.type(float(exact))
    candidates = [
        np.nextafter(guess, dtype.type(-np.inf)),
        guess,
        np.nextafter(guess, dtype.type(np.inf)),
    ]

    def key(c):
        even = int(np.asarray(c).view(np.uint32 if dtype == np.float32 else np.uint64)) % 2
        return abs(Fraction(float(c)) - exact), even

    return min(candidates, key=key)


def oracle_lerp(avg, src, weight):
    """torch's lerp_vec with one rounding: exact arithmetic (Fractions), then rounded."""
    dtype = avg.dtype
    w = dtype.type(weight)
    small = abs(w) < 0.5
    coeff = Fraction(float(w if small else w - dtype.type(1)))
    diff = src - avg  # rounded to the dtype first, as in torch
    base = avg if small else src
    out = np.empty_like(avg)
    for i in np.ndindex(avg.shape):
        out[i] = round_to(coeff * Fraction(float(diff[i])) + Fraction(float(base[i])), dtype)
    return out


# ------------------------------------------------------------- side by side with torch
def torch_model(torch, params, buffers):
    """A module whose params (and buffers) share memory with the NumPy arrays."""
    module = torch.nn.Module()
    module.ps = torch.nn.ParameterList(
        [torch.nn.Parameter(torch.from_numpy(p), requires_grad=False) for p in params]
    )
    for k, b in enumerate(buffers):
        module.register_buffer(f"b{k}", torch.from_numpy(b))
    return module


def run_both(torch, mode, decay, dtypes, use_buffers=None, updates=UPDATES):
    """The same drifting params averaged by torch's AveragedModel and by AveragedParams."""
    from torch.optim import swa_utils

    rng = np.random.default_rng(1)
    params = make_arrays(SHAPES, dtypes)
    buffers = make_arrays([(6,), (2, 3)], dtypes[:2], seed=2) if use_buffers is not None else []
    module = torch_model(torch, params, buffers)
    fn = (
        swa_utils.get_ema_multi_avg_fn(decay)
        if mode == "ema"
        else swa_utils.get_swa_multi_avg_fn()
    )
    theirs = swa_utils.AveragedModel(module, multi_avg_fn=fn, use_buffers=bool(use_buffers))
    ours = cyoptim.AveragedParams(
        params, mode=mode, decay=decay, buffers=buffers, use_buffers=bool(use_buffers)
    )
    for _ in range(updates):
        drift(params + buffers, rng)
        theirs.update_parameters(module)
        ours.update()
    assert ours.n_averaged == int(theirs.n_averaged) == updates
    torch_params = [p.detach().numpy() for p in theirs.module.ps]
    torch_buffers = [getattr(theirs.module, f"b{k}").numpy() for k in range(len(buffers))]
    return ours, torch_params, torch_buffers, params


def assert_matches_torch(torch, ours, theirs):
    for k, (a, b) in enumerate(zip(ours, theirs)):
        assert a.dtype == b.dtype and a.shape == b.shape
        if torch_fuses(torch):
            np.testing.assert_array_equal(a, b, err_msg=f"array {k}")
        else:  # torch's scalar kernel: the two-rounding formula
            np.testing.assert_allclose(
                a,
                b,
                rtol=1e-5 if a.dtype == np.float32 else 1e-12,
                atol=1e-6 if a.dtype == np.float32 else 1e-13,
            )


MIXED = [np.float32, np.float64, np.float32, np.float64, np.float32, np.float64]


@pytest.mark.parametrize("decay", [0.999, 0.9, 0.3, 0.5, 0.0, 1.0])
@pytest.mark.parametrize(
    "dtypes", [[np.float32] * 6, [np.float64] * 6, MIXED], ids=["float32", "float64", "mixed"]
)
def test_ema_matches_torch(torch, decay, dtypes):
    ours, theirs, _, params = run_both(torch, "ema", decay, dtypes)
    assert_matches_torch(torch, ours.params, theirs)
    if decay == 1.0:  # the first copy stays
        assert not np.array_equal(ours.params[0], params[0])
    if decay == 0.0:  # the averages follow the params
        for a, p in zip(ours.params, params):
            np.testing.assert_array_equal(a, p)


@pytest.mark.parametrize(
    "dtypes", [[np.float32] * 6, [np.float64] * 6, MIXED], ids=["float32", "float64", "mixed"]
)
def test_swa_matches_torch(torch, dtypes):
    ours, theirs, _, params = run_both(torch, "swa", 0.999, dtypes)
    assert_matches_torch(torch, ours.params, theirs)
    # SWA is the running mean: close to the mean of the drifted values, not equal
    # to the last ones.
    assert not np.array_equal(ours.params[0], params[0])


@pytest.mark.parametrize("mode", ["ema", "swa"])
@pytest.mark.parametrize("use_buffers", [False, True])
def test_buffers_match_torch(torch, mode, use_buffers):
    ours, theirs, their_buffers, _ = run_both(torch, mode, 0.9, [np.float64] * 6, use_buffers)
    assert_matches_torch(torch, ours.params, theirs)
    assert_matches_torch(torch, ours.buffers, their_buffers)
    assert len(ours.buffers) == 2


def test_buffers_copied_or_averaged():
    params, buffers = make_arrays([(4,)], [np.float32]), make_arrays([(3,)], [np.float32], 5)
    copied = cyoptim.AveragedParams(params, decay=0.5, buffers=buffers)
    averaged = cyoptim.AveragedParams(params, decay=0.5, buffers=buffers, use_buffers=True)
    first = buffers[0].copy()
    for avg in (copied, averaged):
        avg.update()
    buffers[0] += 1
    for avg in (copied, averaged):
        avg.update()
    np.testing.assert_array_equal(copied.buffers[0], buffers[0])
    np.testing.assert_array_equal(averaged.buffers[0], oracle_lerp(first, buffers[0], 0.5))


def test_swa_weight_is_a_float32_value():
    """torch: 1 / (n_averaged + 1) of an integer tensor is a float32 tensor."""
    avg = cyoptim.AveragedParams([np.zeros(2)], mode="swa")
    assert avg.weight == 1.0  # the first update copies
    weights = []
    for _ in range(4):
        avg.update()
        weights.append(avg.weight)
    assert weights == [0.5, float(np.float32(1 / 3)), 0.25, float(np.float32(0.2))]
    assert weights[1] != 1 / 3
    ema = cyoptim.AveragedParams([np.zeros(2)], decay=0.99)
    ema.update()
    assert ema.weight == 1.0 - 0.99


# ------------------------------------------------------------- the rule, without torch
@pytest.mark.parametrize("mode, decay", [("ema", 0.999), ("ema", 0.25), ("swa", 0.999)])
def test_matches_the_oracle_bitwise(mode, decay, dtype):
    rng = np.random.default_rng(3)
    shapes = [(7, 5), (3,), (0,), (1,), (40,)]
    params = make_arrays(shapes, [dtype] * len(shapes))
    avg = cyoptim.AveragedParams(params, mode=mode, decay=decay)
    expected = None
    for n in range(20):
        drift(params, rng)
        weight = avg.weight
        avg.update()
        expected = (
            [p.copy() for p in params]
            if n == 0
            else [oracle_lerp(e, p, weight) for e, p in zip(expected, params)]
        )
        for a, e in zip(avg.params, expected):
            np.testing.assert_array_equal(a, e)


@pytest.mark.parametrize(
    "decay, expected",
    [
        (0.9, [np.nan, np.inf, -np.inf, 1 - 0.9]),  # a + w*(p - a)
        (0.5, [np.nan, np.nan, np.nan, 0.5]),  # p + (w - 1)*(p - a): inf - inf
    ],
)
def test_nan_and_inf_propagate_as_in_torch(decay, expected):
    """torch 2.13 prints these for _foreach_lerp_([zeros], [p], 1 - decay)."""
    p = np.zeros(4)
    avg = cyoptim.AveragedParams([p], decay=decay)
    avg.update()
    p[:] = [np.nan, np.inf, -np.inf, 1.0]
    avg.update()
    np.testing.assert_array_equal(avg.params[0], expected)


def test_averages_start_as_copies_and_params_are_only_read():
    params = make_arrays([(5,), (2, 2)], [np.float32, np.float64])
    before = [p.copy() for p in params]
    for p in params:
        p.flags.writeable = False  # read-only params are fine
    avg = cyoptim.AveragedParams(params, decay=0.9)
    for a, p in zip(avg.params, params):
        np.testing.assert_array_equal(a, p)
        assert a.dtype == p.dtype and a.shape == p.shape and a.flags.writeable
        assert not np.shares_memory(a, p)
    avg.update()
    avg.update()
    for p, b in zip(params, before):
        np.testing.assert_array_equal(p, b)


def test_one_kernel_call_per_dtype_and_fused_runs():
    """A ParamBuffer's params are one run; separate arrays one run each."""
    buf = cyoptim.ParamBuffer([(10, 3), (3,), (7,)], np.float64)
    avg = cyoptim.AveragedParams(buf.params + make_arrays([(2,), (4,)], [np.float32] * 2))
    groups = {str(g.dtype): (g.n_tensors, g.n_runs) for g in avg._averaged}
    assert groups == {"float64": (3, 1), "float32": (2, 2)}
    # The fused run gives the same bits as separate arrays.
    rng = np.random.default_rng(0)
    apart = [p.copy() for p in buf.params]
    fused_avg = cyoptim.AveragedParams(buf.params, decay=0.7)
    apart_avg = cyoptim.AveragedParams(apart, decay=0.7)
    for _ in range(5):
        step = [rng.standard_normal(p.shape) for p in apart]
        for p, q, s in zip(buf.params, apart, step):
            p += s
            q += s
        fused_avg.update()
        apart_avg.update()
    for a, b in zip(fused_avg.params, apart_avg.params):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("mode", ["ema", "swa"])
def test_thread_and_variant_invariant(mode, dtype):
    """Bitwise the same averages for 1 and 2 threads, in every SIMD variant here."""
    results = {}
    shapes = [(300_001,), (77, 1001), (13,)]
    for variant in _dispatch.available_variants():
        for n in (1, 2):
            rng = np.random.default_rng(4)
            params = make_arrays(shapes, [dtype] * 3)
            with _dispatch.use_variant(variant) as kernels, threads(n):
                avg = cyoptim.AveragedParams(params, mode=mode, decay=0.99)
                assert kernels.effective_threads(avg._averaged[0].total_elements, n) == n
                for _ in range(4):
                    drift(params, rng)
                    avg.update()
            results[(variant, n)] = avg.params
    first = next(iter(results))
    for key, averages in results.items():
        for k, (a, b) in enumerate(zip(results[first], averages)):
            np.testing.assert_array_equal(a, b, err_msg=f"param {k}: {key} vs {first}")


# ------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "build, error, message",
    [
        (
            lambda p: cyoptim.AveragedParams(p, mode="polyak"),
            ValueError,
            "mode must be 'ema' or 'swa', got 'polyak'",
        ),
        (
            lambda p: cyoptim.AveragedParams(p, decay=1.5),
            ValueError,
            r"Invalid decay value 1.5 provided. Please provide a value in \[0,1\] range.",
        ),
        (lambda p: cyoptim.AveragedParams(p, decay=-0.1), ValueError, "Invalid decay value -0.1"),
        (lambda p: cyoptim.AveragedParams(p, decay=float("nan")), ValueError, "Invalid decay"),
        (
            lambda p: cyoptim.AveragedParams(p, decay="0.9"),
            TypeError,
            "decay must be a real number",
        ),
        (
            lambda p: cyoptim.AveragedParams(p, decay=True),
            TypeError,
            "decay must be a real number",
        ),
        (
            lambda p: cyoptim.AveragedParams(p[0]),
            TypeError,
            "got a single array; wrap it in a list",
        ),
        (lambda p: cyoptim.AveragedParams([]), ValueError, "empty parameter list"),
        (
            lambda p: cyoptim.AveragedParams([p[0], [1.0, 2.0]]),
            TypeError,
            "param 1 must be a NumPy array, got list",
        ),
        (
            lambda p: cyoptim.AveragedParams([p[0], np.zeros(3, np.int64)]),
            TypeError,
            "param 1 has dtype int64; supported dtypes are float32 and float64",
        ),
        (lambda p: cyoptim.AveragedParams([np.zeros(3, ">f8")]), TypeError, "native byte order"),
        (
            lambda p: cyoptim.AveragedParams([np.zeros((4, 4))[:, 1]]),
            ValueError,
            "param 0 is not C-contiguous",
        ),
        (
            lambda p: cyoptim.AveragedParams(p, buffers=[np.zeros(2, np.float16)]),
            TypeError,
            "buffer 0 has dtype float16",
        ),
        (
            lambda p: cyoptim.AveragedParams(p, buffers=np.zeros(2)),
            TypeError,
            "buffers must be a list of arrays, got a single array",
        ),
        (
            lambda p: cyoptim.AveragedParams(p, use_buffers=1),
            TypeError,
            "use_buffers must be True or False",
        ),
    ],
)
def test_bad_arguments(build, error, message):
    with pytest.raises(error, match=message):
        build([np.zeros(3)])


def test_state_dict_round_trip_and_refusals(dtype):
    rng = np.random.default_rng(6)
    params = make_arrays([(6,), (2, 3)], [dtype] * 2)
    buffers = make_arrays([(4,)], [dtype], seed=9)
    avg = cyoptim.AveragedParams(params, mode="swa", buffers=buffers)
    for _ in range(5):
        drift(params + buffers, rng)
        avg.update()
    saved = avg.state_dict()
    assert saved["n_averaged"] == 5 and not np.shares_memory(saved["params"][0], avg.params[0])
    other = cyoptim.AveragedParams(params, mode="swa", buffers=buffers)
    views = other.params
    other.load_state_dict(pickle.loads(pickle.dumps(saved)))
    assert other.params is views  # loaded into the same arrays
    for _ in range(5):
        drift(params + buffers, rng)
        avg.update()
        other.update()
    for a, b in zip(avg.params + avg.buffers, other.params + other.buffers):
        np.testing.assert_array_equal(a, b)

    before = other.state_dict()
    bad = [
        ({"n_averaged": 1, "params": saved["params"]}, ValueError, "keys"),
        (dict(saved, n_averaged=-1), ValueError, "n_averaged must be a non-negative integer"),
        (dict(saved, n_averaged=2.0), ValueError, "n_averaged must be"),
        (dict(saved, params=saved["params"][:1]), ValueError, "state_dict has 1 params"),
        (
            dict(saved, params=[saved["params"][0], saved["params"][1].ravel()]),
            ValueError,
            "param 1 of the state_dict is an array of dtype .* and shape \\(6,\\)",
        ),
        (
            dict(saved, buffers=[saved["buffers"][0].astype(np.float16)]),
            ValueError,
            "buffer 0 of the state_dict",
        ),
        (dict(saved, buffers=[[0.0] * 4]), TypeError, "buffer 0 of the state_dict must be"),
    ]
    for state, error, message in bad:
        with pytest.raises(error, match=message):
            other.load_state_dict(state)
        after = other.state_dict()
        assert after["n_averaged"] == before["n_averaged"]
        for a, b in zip(after["params"] + after["buffers"], before["params"] + before["buffers"]):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("how", ["pickle", "deepcopy"])
def test_pickled_and_copied_with_the_optimizer(how):
    """(optimizer, averager) copied together share the copied params and go on alike."""
    params = make_arrays([(5,), (3, 2)], [np.float32, np.float64])
    opt = cyoptim.Adam([{"params": [params[0]]}, {"params": [params[1]]}], lr=0.01)
    avg = cyoptim.AveragedParams(params, decay=0.8)
    rng = np.random.default_rng(8)
    grads = [[rng.standard_normal(p.shape).astype(p.dtype) for p in params] for _ in range(8)]
    for g in grads[:4]:
        opt.step(g)
        avg.update()
    pair = pickle.loads(pickle.dumps((opt, avg))) if how == "pickle" else copy.deepcopy((opt, avg))
    opt2, avg2 = pair
    assert avg2._model_params[0] is opt2.param_groups[0]["params"][0]
    assert avg2.n_averaged == 4 and avg2.decay == 0.8 and avg2.mode == "ema"
    for g in grads[4:]:
        for o, a in ((opt, avg), (opt2, avg2)):
            o.step(g)
            a.update()
    for a, b in zip(avg.params, avg2.params):
        np.testing.assert_array_equal(a, b)


def test_shallow_copy_follows_the_same_params():
    p = np.ones(3)
    avg = cyoptim.AveragedParams([p], decay=0.5)
    avg.update()
    twin = copy.copy(avg)
    assert twin._model_params[0] is p and not np.shares_memory(twin.params[0], avg.params[0])
    p += 1
    twin.update()
    np.testing.assert_array_equal(twin.params[0], [1.5] * 3)
    np.testing.assert_array_equal(avg.params[0], [1.0] * 3)


def test_repr():
    avg = cyoptim.AveragedParams([np.zeros(2)], mode="swa", buffers=[np.zeros(1)])
    assert repr(avg) == "AveragedParams(mode='swa', n_averaged=0, 1 params, 1 buffers)"


def test_docstring_example_runs():
    finder, runner = doctest.DocTestFinder(), doctest.DocTestRunner()
    tests = finder.find(averaging.AveragedParams, "AveragedParams")
    assert sum(len(t.examples) for t in tests) >= 5
    for test in tests:
        runner.run(test)
    assert runner.failures == 0
