"""Muon against torch.optim.Muon (torch 2.13) side by side, and against its NumPy twin.

Muon is not in the generic table (tests/test_optimizers.py; cyoptim/registry.py
says why): this module checks the same properties for 2-d params.

torch runs Newton-Schulz (NS) in bfloat16 with its BLAS (oneDNN/MKL);
cyoptim runs the same products as float32 matmuls of NumPy's BLAS on bfloat16
values: the products are exact in float32, the order of the sums is not
torch's. Where that order cannot matter (every sum exact) NS agrees with torch
bitwise; elsewhere the bounds below are measured, with a margin of about 3x
(the figures measured with torch 2.13's CPU build and NumPy's OpenBLAS
0.3.31 are in each test), and checked on this machine under OpenBLAS's
Haswell, SkylakeX and Zen kernels and oneDNN's AVX2, AVX-512 and AMX ones.
"""

import copy
import itertools
import math
import pickle
from fractions import Fraction

import numpy as np
import pytest
from conftest import torch_or_skip
from optim_harness import (
    assert_buffer_steps_as_separate_arrays,
    assert_state_equal,
    assert_unchanged,
    bad_grad_lists,
    grad_sequence,
    snapshot,
    threads,
)

import cyoptim
import cyoptim.reference as ref
from cyoptim import _dispatch
from cyoptim.optimizers.muon import lr_ratio, normalizer, round_bfloat16
from cyoptim.reference.muon import fma32, newton_schulz

COEFFICIENTS = (3.4445, -4.7750, 2.0315)
# tall, wide, square, a wide strip, a row, a tall strip
SHAPES = [(24, 16), (16, 40), (32, 32), (3, 50), (1, 7), (60, 4)]
GROUP0 = dict(lr=0.05, momentum=0.9)  # options of the first group (params 0-2)


def make_params(dtype, shapes=SHAPES, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s).astype(dtype) for s in shapes]


def two_groups(params, options=GROUP0):
    return [dict(params=params[:3], **options), dict(params=params[3:])]


def run_ours(cls, params, seq, kwargs):
    opt = cls(two_groups(params), **kwargs)
    for grads in seq:
        opt.step(grads)
    return opt


def run_torch(params, seq, kwargs):
    """torch.optim.Muon on copies of params: (final params, momentum buffers)."""
    torch = torch_or_skip()
    tensors = [torch.tensor(p.copy(), requires_grad=True) for p in params]
    opt = torch.optim.Muon(two_groups(tensors), **kwargs)
    for grads in seq:
        for t, g in zip(tensors, grads):
            t.grad = None if g is None else torch.tensor(g)
        opt.step()
    return (
        [t.detach().numpy() for t in tensors],
        [opt.state[t]["momentum_buffer"].numpy() for t in tensors],
    )


def torch_newton_schulz(g, steps=5, eps=1e-7, coefficients=COEFFICIENTS):
    torch = torch_or_skip()
    from torch.optim._muon import _zeropower_via_newtonschulz

    return _zeropower_via_newtonschulz(torch.tensor(g), coefficients, steps, eps).float().numpy()


# ----------------------------------------------------------------------- bfloat16


def special_values():
    rng = np.random.default_rng(0)
    with np.errstate(over="ignore"):  # some overflow to inf: wanted
        x = (rng.standard_normal(200_000) * np.exp(rng.uniform(-90, 88, 200_000))).astype(
            np.float32
        )
    ties = np.array([1 + 2**-8, 1 + 3 * 2**-8, -(1 + 2**-8), 2**-130 + 2**-138], np.float32)
    edges = np.array(
        [np.nan, np.inf, -np.inf, 0.0, -0.0, 3.4e38, -3.4e38, 1e-45, np.finfo(np.float32).max],
        np.float32,
    )
    return np.concatenate([edges, ties, x])


def test_bfloat16_rounding_is_torchs():
    """The NumPy rounding and the kernel's round to the nearest bfloat16, ties to
    even, overflow to inf, as torch's conversion; a float64 goes through float32
    first, as in torch."""
    torch = torch_or_skip()
    x = special_values()
    expected = torch.tensor(x).bfloat16().float().numpy()
    np.testing.assert_array_equal(round_bfloat16(x), expected)
    kernel = x.copy()
    _dispatch.kernels.bf16_round_(kernel)
    np.testing.assert_array_equal(kernel, expected)
    assert round_bfloat16(np.float32(1 + 2**-8)) == 1.0  # tie: to even
    wide = np.random.default_rng(1).standard_normal(10_000) * 1e3
    wide[:2] = [1 + 2**-8 + 2**-30, 1 + 3 * 2**-8 - 2**-30]  # double rounding
    np.testing.assert_array_equal(
        round_bfloat16(wide), torch.tensor(wide).bfloat16().float().numpy()
    )


def test_bfloat16_helpers_refuse_what_they_cannot_write():
    k = _dispatch.kernels
    with pytest.raises(ValueError, match="float32"):
        k.bf16_round_(np.zeros(4))
    with pytest.raises(ValueError, match="C-contiguous"):
        k.bf16_round_(np.zeros((4, 4), np.float32).T)
    with pytest.raises(ValueError, match="expected 4 elements"):
        k.bf16_fma(
            np.zeros(4, np.float32), 1.0, np.zeros(5, np.float32), 1.0, np.zeros(4, np.float32)
        )


def round_float32(exact):
    """A Fraction rounded to the nearest float32, ties to even."""
    f = np.float32(float(exact))
    candidates = [np.nextafter(f, np.float32(-np.inf)), f, np.nextafter(f, np.float32(np.inf))]
    return min(
        candidates,
        key=lambda c: (abs(Fraction(float(c)) - exact), int(np.array(c).view(np.uint32)) & 1),
    )


def test_fma32_rounds_once():
    """The twin's fma: a*x + y rounded once, including sums whose float64 value
    is a float32 tie that the exact value is not (double rounding)."""
    rng = np.random.default_rng(0)
    a = np.float32(1 + 2**-12)
    x = np.concatenate([[1 + 2**-12, 1 + 2**-12], rng.standard_normal(500)]).astype(np.float32)
    y = np.concatenate(
        [[2**-80, -(2**-80)], rng.standard_normal(500) * 2.0 ** rng.integers(-40, 5, 500)]
    ).astype(np.float32)
    got = fma32(a, x, y)
    for k in range(len(x)):
        exact = Fraction(float(a)) * Fraction(float(x[k])) + Fraction(float(y[k]))
        assert got[k] == round_float32(exact), k
    assert got[0] == np.float32(1 + 2**-11 + 2**-23) and got[1] == np.float32(1 + 2**-11)
    # the kernel's fmaf gives the same bits (up to its bfloat16 rounding)
    out = np.empty_like(x)
    _dispatch.kernels.bf16_fma(out, float(a), x, 1.0, y)
    np.testing.assert_array_equal(out, round_bfloat16(got))


def test_normalizer_is_torchs_clamped_norm():
    torch = torch_or_skip()
    for norm in [0.0, 1e-9, 9e-8, 1.01e-7, 0.37, 90.68, 548.3, np.inf, np.nan]:
        expected = torch.tensor(norm, dtype=torch.bfloat16).clamp(min=1e-7).item()
        np.testing.assert_equal(normalizer(norm, 1e-7), expected)


# ---------------------------------------------------------------- Newton-Schulz


@pytest.mark.parametrize("rows, cols", [(8, 8), (4, 16), (16, 4), (1, 32), (32, 1), (2, 64)])
def test_newton_schulz_is_torchs_bitwise_where_sums_are_exact(rows, cols):
    """Rows of a Hadamard matrix, each scaled by its own power of two, with
    random column signs: every row keeps one magnitude and the rows stay
    orthogonal through NS, so every sum of every product is exact in float32
    (n terms of one magnitude with 16-bit significands, off-diagonal terms
    cancelling exactly) and no summation order, of any BLAS, can change a
    bit: the same bits as torch, which checks NS's roundings, coefficients
    and transposes. Inputs whose sums round: the next test."""
    hadamard = pytest.importorskip("scipy.linalg").hadamard  # Sylvester's, n a power of 2
    rng = np.random.default_rng(rows * cols)
    for _ in range(4):
        n = max(rows, cols)
        h = hadamard(n)[: min(rows, cols)] * rng.choice([-1.0, 1.0], n)
        h *= 2.0 ** rng.integers(-3, 4, (h.shape[0], 1))
        g = (h if rows <= cols else h.T).astype(np.float32)
        np.testing.assert_array_equal(
            newton_schulz(g, COEFFICIENTS, 5, 1e-7), torch_newton_schulz(g)
        )


def ns_float64_sums(g, coefficients=COEFFICIENTS, steps=5, eps=1e-7):
    """torch's NS with the roundings of torch but (nearly) exact sums: each line
    computed in float64 from the bfloat16 values, rounded once to float32, then
    to bfloat16."""
    a, b, c = (float(np.float32(v)) for v in coefficients)
    x = round_bfloat16(g).astype(np.float64)
    w = x.T if x.shape[0] > x.shape[1] else x
    n = normalizer(math.sqrt((w * w).sum()), eps)
    w = round_bfloat16(w.astype(np.float32) / np.float32(n)).astype(np.float64)
    for _ in range(steps):
        gram = round_bfloat16(w @ w.T).astype(np.float64)
        poly = round_bfloat16(b * gram + c * (gram @ gram)).astype(np.float64)
        w = round_bfloat16(a * w + poly @ w).astype(np.float64)
    return w.T if x.shape[0] > x.shape[1] else w


def test_newton_schulz_differs_from_torch_only_by_summation_order():
    """Larger matrices: NS of one input differs from torch's in a fraction of the
    entries (up to 61% here; NS amplifies a changed rounding), each by a few
    bfloat16 units. Measured: max |difference| <= 0.018 max|O|,
    ||difference||_F <= 0.005 ||O||_F. The same iteration with exact sums is
    further from torch: over these cases our mean distance to torch was 0.64x
    that one's."""
    ours_to_torch, exact_to_torch = [], []
    for shape in [(96, 96), (128, 128), (256, 512), (512, 128), (200, 600)]:
        for seed in range(3):
            g = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
            theirs = torch_newton_schulz(g).astype(np.float64)
            ours = newton_schulz(g, COEFFICIENTS, 5, 1e-7).astype(np.float64)
            scale = np.linalg.norm(theirs)
            assert np.abs(ours - theirs).max() <= 0.05 * np.abs(theirs).max(), (shape, seed)
            assert np.linalg.norm(ours - theirs) <= 0.015 * scale, (shape, seed)
            ours_to_torch.append(np.linalg.norm(ours - theirs) / scale)
            exact_to_torch.append(np.linalg.norm(ns_float64_sums(g) - theirs) / scale)
    assert np.mean(ours_to_torch) <= 1.5 * np.mean(exact_to_torch)


@pytest.mark.parametrize(
    "steps,coefficients,eps",
    [(0, COEFFICIENTS, 1e-7), (2, (3.4, -4.7, 2.0), 1e-7), (6, COEFFICIENTS, 1e-3)],
)
def test_newton_schulz_options_are_torchs(steps, coefficients, eps):
    for shape in [(8, 8), (3, 200), (20, 2)]:
        g = np.random.default_rng(4).standard_normal(shape).astype(np.float32)
        np.testing.assert_array_equal(
            newton_schulz(g, coefficients, steps, eps),
            torch_newton_schulz(g, steps, eps, coefficients),
        )


# ------------------------------------------------------------ against torch.optim.Muon

FLAGS = [
    dict(nesterov=n, adjust_lr_fn=f, weight_decay=w)
    for n, f, w in itertools.product(
        (True, False), (None, "original", "match_rms_adamw"), (0.0, 0.1)
    )
]


def flags_id(flags):
    return "-".join(f"{k}={v}" for k, v in flags.items())


@pytest.mark.parametrize("flags", FLAGS, ids=flags_id)
def test_matches_torch(flags, dtype):
    """40 steps, two groups, skipped grads (param 1 every fourth step, param 3
    from step 10 on), tall, wide and square params, side by side with torch.

    The momentum buffers are torch's bitwise (both lerps are fused
    multiply-adds). The params of 3 x 50, 1 x 7 and 60 x 4, whose NS
    is torch's bitwise, agree to float roundings (measured <= 6.4e-7 float32,
    1.2e-15 float64, of the distance they travelled); the others differ by what
    NS's summation order changes (see above), accumulated over the steps:
    measured <= 1.7e-3 of that distance."""
    params = make_params(dtype)
    start = [p.copy() for p in params]
    seq = grad_sequence(params, steps=40)
    kwargs = dict(lr=0.02, **flags)
    opt = run_ours(cyoptim.Muon, params, seq, kwargs)
    expected, buffers = run_torch(start, seq, kwargs)
    float_tol = 5e-6 if dtype == np.float32 else 1e-13
    for k, (ours, theirs) in enumerate(zip(params, expected)):
        buf = opt.state[k]["momentum_buffer"]
        assert buf.dtype == dtype
        np.testing.assert_array_equal(buf, buffers[k], err_msg=str(k))
        travelled = np.abs(theirs.astype(np.float64) - start[k]).max()
        assert travelled > 0.01, f"param {k} barely moved"
        tolerance = float_tol if SHAPES[k] in [(3, 50), (1, 7), (60, 4)] else 5e-3
        err = np.abs(ours.astype(np.float64) - theirs).max()
        assert err <= tolerance * travelled, f"param {k} {SHAPES[k]}: {err / travelled:.3g}"


def test_matches_torch_with_other_options():
    """Group-level ns_steps, ns_coefficients, eps and momentum, on params whose NS
    is torch's bitwise: the params agree to a float rounding."""
    shapes = [(8, 8), (3, 30), (30, 3), (1, 9)]
    params = make_params(np.float64, shapes)
    start = [p.copy() for p in params]
    seq = grad_sequence(params, steps=20)
    options = dict(ns_steps=3, ns_coefficients=(3.0, -3.2, 1.2), eps=1e-4, momentum=0.5)
    kwargs = dict(lr=0.03, weight_decay=0.05)
    opt = cyoptim.Muon([dict(params=params[:2], **options), dict(params=params[2:])], **kwargs)
    torch = torch_or_skip()
    tensors = [torch.tensor(p, requires_grad=True) for p in start]
    theirs = torch.optim.Muon(
        [dict(params=tensors[:2], **options), dict(params=tensors[2:])], **kwargs
    )
    for grads in seq:
        opt.step(grads)
        for t, g in zip(tensors, grads):
            t.grad = None if g is None else torch.tensor(g)
        theirs.step()
    for p, t, p0 in zip(params, tensors, start):
        assert np.abs(p - t.detach().numpy()).max() <= 1e-13 * np.abs(p - p0).max()


def test_lr_ratio_is_torchs():
    torch_or_skip()
    from torch.optim._muon import _adjust_lr

    for shape, fn in itertools.product(
        [(4, 4), (8, 2), (2, 8), (1, 300), (300, 1), (0, 3)], [None, "original", "match_rms_adamw"]
    ):
        assert 0.1 * lr_ratio(fn, shape) == _adjust_lr(0.1, fn, shape), (shape, fn)


def test_defaults_and_state_layout_are_torchs():
    """Same defaults and group keys; state_dict loads into torch and back."""
    torch = torch_or_skip()
    params = make_params(np.float32)
    start = [p.copy() for p in params]
    seq = grad_sequence(params, steps=6)
    ours = cyoptim.Muon(two_groups(params))
    for grads in seq:
        ours.step(grads)
    tensors = [torch.tensor(p, requires_grad=True) for p in start]
    theirs = torch.optim.Muon(two_groups(tensors))
    for grads in seq:
        for t, g in zip(tensors, grads):
            t.grad = None if g is None else torch.tensor(g)
        theirs.step()
    sd, tsd = ours.state_dict(), theirs.state_dict()
    assert sd["param_groups"] == tsd["param_groups"]
    assert {i: sorted(e) for i, e in sd["state"].items()} == {
        i: sorted(e) for i, e in tsd["state"].items()
    }
    # ours -> torch -> ours: the buffers survive both ways
    as_tensors = copy.deepcopy(sd)
    for entry in as_tensors["state"].values():
        entry["momentum_buffer"] = torch.tensor(entry["momentum_buffer"])
    theirs.load_state_dict(as_tensors)
    back = theirs.state_dict()
    for entry in back["state"].values():
        entry["momentum_buffer"] = entry["momentum_buffer"].numpy()
    fresh = cyoptim.Muon(two_groups([p.copy() for p in params]))
    fresh.load_state_dict(back)
    assert_state_equal(fresh.state_dict(), sd)


# ------------------------------------------------------------ the NumPy twin, invariance


@pytest.mark.parametrize("flags", FLAGS, ids=flags_id)
def test_equals_numpy_reference(flags, dtype):
    """The kernels, the bfloat16 helpers and the NumPy twin: bitwise the same."""
    params = make_params(dtype, SHAPES + [(0, 5), (5, 0)])
    twins = [p.copy() for p in params]
    seq = grad_sequence(params, steps=15)
    fast = run_ours(cyoptim.Muon, params, seq, dict(lr=0.02, **flags))
    slow = run_ours(ref.Muon, twins, seq, dict(lr=0.02, **flags))
    for k, (a, b) in enumerate(zip(params, twins)):
        np.testing.assert_array_equal(a, b, err_msg=f"param {k}")
    assert_state_equal(fast.state_dict(), slow.state_dict())


LARGE = [(300, 500), (700, 130), (64, 64), (1, 3000)]


def test_thread_count_and_variant_invariant(dtype):
    """Bitwise the same for 1 and 2 kernel threads and in every SIMD variant,
    with the BLAS on one thread. The matrix products are the BLAS's: another
    BLAS, and with some (NumPy 1.25's OpenBLAS) another BLAS thread count, sums
    in another order."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    start = make_params(dtype, LARGE)
    seq = grad_sequence(start, steps=3, skip=False)
    results = {}
    for variant in _dispatch.available_variants():
        for n, blas in itertools.product((1, 2), (1,)):
            params = [p.copy() for p in start]
            with (
                _dispatch.use_variant(variant),
                threads(n),
                threadpoolctl.threadpool_limits(blas, user_api="blas"),
            ):
                opt = cyoptim.Muon(params, lr=0.02)
                for grads in seq:
                    opt.step(grads)
                assert opt._kernels.effective_threads(opt._plans[0].active_elements, n) == n
            results[(variant, n, blas)] = params
    first = next(iter(results))
    for key, params in results.items():
        for k, (a, b) in enumerate(zip(results[first], params)):
            np.testing.assert_array_equal(a, b, err_msg=f"param {k}: {key} vs {first}")


def test_param_buffer_views_step_as_separate_arrays():
    """Params in one ParamBuffer (one run per pass when their lr ratios agree,
    one run per tensor otherwise) step bitwise as separate arrays do."""
    for shapes in [[(8, 4), (4, 8), (6, 6)], [(5, 5), (5, 5)]]:
        assert_buffer_steps_as_separate_arrays(
            cyoptim.Muon, {"lr": 0.1}, shapes, np.float32, steps=4
        )


# -------------------------------------------------------------- state_dict, checkpoints


def test_state_dict_round_trip(dtype):
    """Save mid-run, load into a new optimizer over params at that point, continue:
    bitwise what the uninterrupted run gives; the saved copy does not change."""
    params = make_params(dtype)
    seq = grad_sequence(params, steps=20)
    kwargs = dict(lr=0.03, adjust_lr_fn="match_rms_adamw", nesterov=False)
    straight_params = [p.copy() for p in params]
    straight = run_ours(cyoptim.Muon, straight_params, seq, kwargs)
    first = run_ours(cyoptim.Muon, params, seq[:10], kwargs)
    saved = first.state_dict()
    kept = copy.deepcopy(saved)
    at_10 = [p.copy() for p in params]
    first.step(seq[10])
    assert_state_equal(saved, kept)
    resumed = cyoptim.Muon(two_groups(at_10), **kwargs)
    resumed.load_state_dict(saved)
    for grads in seq[10:]:
        resumed.step(grads)
    for a, b in zip(straight_params, at_10):
        np.testing.assert_array_equal(a, b)
    assert_state_equal(straight.state_dict(), resumed.state_dict())


@pytest.mark.parametrize("how", ["pickle", "deepcopy", "save_state"])
def test_copies_and_checkpoints_step_alike(how, tmp_path):
    params = make_params(np.float32)
    seq = grad_sequence(params, steps=8)
    opt = run_ours(cyoptim.Muon, params, seq[:4], dict(lr=0.02))
    if how == "save_state":
        path = tmp_path / "muon.npz"
        cyoptim.save_state(opt, path)
        clone_params = [p.copy() for p in params]
        clone = cyoptim.Muon(two_groups(clone_params), lr=0.5)
        cyoptim.load_state(clone, path)
        assert clone.param_groups[0]["lr"] == GROUP0["lr"]
    else:
        clone = pickle.loads(pickle.dumps(opt)) if how == "pickle" else copy.deepcopy(opt)
        clone_params = [p for g in clone.param_groups for p in g["params"]]
    for grads in seq[4:]:
        opt.step(grads)
        clone.step(grads)
    for a, b in zip(params, clone_params):
        np.testing.assert_array_equal(a, b)
    assert_state_equal(opt.state_dict(), clone.state_dict())


# ------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("shape", [(5,), (2, 3, 4), ()])
def test_params_that_are_not_matrices_are_refused(shape):
    """torch's message (the shape as a tuple), at construction, and in
    add_param_group, which then changes nothing."""
    bad = np.zeros(shape, np.float32)
    with pytest.raises(
        ValueError,
        match=r"Muon only supports 2D parameters whereas we "
        r"found a parameter with size: \(.*\) \(param 1\)",
    ):
        cyoptim.Muon([np.zeros((2, 2), np.float32), bad])
    opt = cyoptim.Muon([np.zeros((2, 2), np.float32)])
    opt.step([np.ones((2, 2), np.float32)])
    before = snapshot(opt)
    with pytest.raises(ValueError, match="Muon only supports 2D parameters"):
        opt.add_param_group({"params": [np.zeros((3, 3), np.float32), bad]})
    assert len(opt.param_groups) == 1
    assert_unchanged(opt, before)


def test_torch_refuses_the_same_params():
    torch = torch_or_skip()
    with pytest.raises(ValueError, match="Muon only supports 2D parameters"):
        torch.optim.Muon([torch.zeros(2, 3, 4, requires_grad=True)])


TORCH_INVALID = [
    dict(lr=-1.0),
    dict(momentum=-0.5),
    dict(weight_decay=-0.1),
    dict(adjust_lr_fn="arbitrary"),
]


@pytest.mark.parametrize("kwargs", TORCH_INVALID, ids=lambda kw: next(iter(kw)))
def test_invalid_hyperparameters_are_refused_with_torchs_message(kwargs):
    torch = torch_or_skip()
    with pytest.raises(ValueError) as info:
        torch.optim.Muon([torch.zeros(2, 2, requires_grad=True)], **kwargs)
    with pytest.raises(ValueError) as ours:
        cyoptim.Muon([np.zeros((2, 2))], **kwargs)
    assert str(ours.value) == str(info.value)
    with pytest.raises(ValueError) as ours:
        cyoptim.Muon([{"params": [np.zeros((2, 2))], **kwargs}])
    assert str(ours.value) == str(info.value)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(ns_steps=100), "Number of steps must be less than 100"),
        (dict(ns_steps=-1), "ns_steps must be a non-negative integer"),
        (dict(ns_steps=2.5), "ns_steps must be a non-negative integer"),
        (dict(ns_coefficients=(1.0, 2.0)), "Coefficients must be a tuple of exactly 3 values"),
        (dict(ns_coefficients=(1.0, 2.0, "x")), "Coefficients must be a tuple"),
        (dict(eps=-1e-7), "Invalid epsilon value"),
    ],
)
def test_other_invalid_hyperparameters_are_refused_at_construction(kwargs, match):
    """torch refuses these only at the first step (or not at all: negative eps and
    ns_steps); here the constructor and load_state_dict refuse them."""
    with pytest.raises(ValueError, match=match):
        cyoptim.Muon([np.zeros((2, 2))], **kwargs)
    opt = cyoptim.Muon([np.zeros((2, 2))])
    opt.step([np.ones((2, 2))])
    sd = opt.state_dict()
    sd["param_groups"][0].update(kwargs)
    before = snapshot(opt)
    with pytest.raises(ValueError, match=match):
        opt.load_state_dict(sd)
    assert_unchanged(opt, before)


def test_bad_grads_change_nothing(dtype):
    params = make_params(dtype)
    opt = cyoptim.Muon(two_groups(params), lr=0.02)
    for grads in grad_sequence(params, steps=5):
        opt.step(grads)
    before = snapshot(opt)
    for _name, grads, error, match in bad_grad_lists(params):
        with pytest.raises(error, match=match):
            opt.step(grads)
        assert_unchanged(opt, before)
    opt.step([np.ones_like(p) for p in params])
    for old, new in zip(before[0], params):
        assert not np.array_equal(old, new)


# ------------------------------------------------------------------ special inputs


def test_nonfinite_grads_propagate_like_torch_and_the_twin():
    """A NaN or inf anywhere in a grad makes the whole NS output NaN (torch's too):
    the param becomes NaN everywhere; the other params are untouched by it."""
    torch = torch_or_skip()
    params = make_params(np.float64, [(4, 6), (5, 3)])
    twins = [p.copy() for p in params]
    tensors = [torch.tensor(p.copy(), requires_grad=True) for p in params]
    fast, slow = cyoptim.Muon(params, lr=0.1), ref.Muon(twins, lr=0.1)
    theirs = torch.optim.Muon(tensors, lr=0.1)
    grads = [np.ones((4, 6)), np.ones((5, 3))]
    grads[0][1, 2] = np.inf
    with np.errstate(all="ignore"):
        fast.step(grads)
        slow.step(grads)
    for t, g in zip(tensors, grads):
        t.grad = torch.tensor(g)
    theirs.step()
    for p, q, t in zip(params, twins, tensors):
        np.testing.assert_array_equal(p, q)
        np.testing.assert_array_equal(np.isnan(p), np.isnan(t.detach().numpy()))
    assert np.isnan(params[0]).all() and np.isfinite(params[1]).all()


def test_zero_grad_decays_only():
    """A zero update is divided by the clamped norm (eps): O = 0, only weight decay."""
    w = np.ones((3, 4))
    cyoptim.Muon([w], lr=0.1, weight_decay=0.5).step([np.zeros((3, 4))])
    np.testing.assert_array_equal(w, np.full((3, 4), 1 - 0.1 * 0.5))


def test_empty_params_step():
    """No elements: nothing to update (torch divides by zero for a 5 x 0 param)."""
    params = [
        np.zeros((0, 5), np.float32),
        np.zeros((5, 0), np.float32),
        np.ones((2, 2), np.float32),
    ]
    opt = cyoptim.Muon(params, lr=0.1)
    opt.step([np.zeros_like(p) for p in params])
    assert opt.state[0]["momentum_buffer"].shape == (0, 5)


def test_docstring_example():
    import doctest

    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    for test in doctest.DocTestFinder().find(cyoptim.Muon, "Muon"):
        runner.run(test)
    assert runner.failures == 0 and runner.tries >= 4
