import math

import numpy as np
import pytest
from conftest import torch_or_skip
from optim_harness import TOLERANCE, max_relative_error, threads

import cyoptim
import cyoptim.reference as ref
from cyoptim import _dispatch

NORM_TYPES = [1.0, 2.0, 3.5, math.inf]
NORM_IDS = ["1", "2", "3.5", "inf"]
# Scalars, empty, odd sizes, more than one chunk, several dims; None entries.
SHAPES = [(17, 9), None, (), (0,), (5,), (3, 4, 5), None, (4097,), (2, 3000)]


def make_grads(dtype, shapes=SHAPES, seed=0, scale=1.0):
    rng = np.random.default_rng(seed)
    return [
        None if s is None else np.asarray(scale * rng.standard_normal(s)).astype(dtype)
        for s in shapes
    ]


def copies(grads):
    return [None if g is None else g.copy() for g in grads]


def torch_clip(grads, fn, *args, **kwargs):
    """Run torch.nn.utils' clip function on params whose .grad are copies of grads."""
    import torch

    params = []
    for g in grads:
        if g is None:
            params.append(torch.zeros(1, requires_grad=True))
        else:
            p = torch.zeros(g.shape, dtype=torch.from_numpy(g).dtype, requires_grad=True)
            p.grad = torch.tensor(g)
            params.append(p)
    result = fn(params, *args, **kwargs)
    return result, [None if g is None else p.grad.numpy() for p, g in zip(params, grads)]


def assert_grads_close(ours, theirs, dtype):
    for k, (a, b) in enumerate(zip(ours, theirs)):
        if a is None:
            assert b is None
            continue
        err = max_relative_error(a, b) if a.size else 0.0
        assert err <= TOLERANCE[dtype], f"grad {k}: max relative error {err:.3g} vs torch"


def assert_grads_equal(ours, theirs):
    for k, (a, b) in enumerate(zip(ours, theirs)):
        if a is None:
            assert b is None
        else:
            assert a.dtype == b.dtype
            np.testing.assert_array_equal(a, b, err_msg=f"grad {k}")


# ------------------------------------------------------------ against torch


@pytest.mark.parametrize("norm_type", NORM_TYPES, ids=NORM_IDS)
@pytest.mark.parametrize("max_norm", [0.5, 1e9], ids=["clips", "no-clip"])
def test_clip_grad_norm_matches_torch(norm_type, max_norm, dtype):
    torch = torch_or_skip()
    # torch's inf-norm refuses empty tensors (no identity); cyoptim takes 0 for them.
    shapes = [s for s in SHAPES if s != (0,)] if norm_type == math.inf else SHAPES
    grads = make_grads(dtype, shapes)
    start = copies(grads)
    total = cyoptim.clip_grad_norm_(grads, max_norm, norm_type)
    expected, theirs = torch_clip(start, torch.nn.utils.clip_grad_norm_, max_norm, norm_type)
    assert isinstance(total, np.float64)
    assert abs(total - float(expected)) <= TOLERANCE[dtype] * float(expected)
    assert_grads_close(grads, theirs, dtype)
    if max_norm == 0.5:
        assert not np.array_equal(grads[0], start[0])
    else:
        assert_grads_equal(grads, start)


@pytest.mark.parametrize("norm_type", NORM_TYPES, ids=NORM_IDS)
def test_clip_grad_norm_mixed_dtypes_matches_torch(norm_type):
    torch = torch_or_skip()
    grads = make_grads(np.float64, [(40,), (7, 3)], seed=3)
    grads.insert(1, make_grads(np.float32, [(33,)], seed=4)[0])
    start = copies(grads)
    total = cyoptim.clip_grad_norm_(grads, 0.1, norm_type)
    expected, theirs = torch_clip(start, torch.nn.utils.clip_grad_norm_, 0.1, norm_type)
    assert abs(total - float(expected)) <= 1e-6 * float(expected)
    assert grads[1].dtype == np.float32
    assert_grads_close(grads, theirs, np.float32)


@pytest.mark.parametrize("bad", [np.nan, np.inf], ids=["nan", "inf"])
def test_clip_grad_norm_nonfinite_like_torch(bad, dtype):
    torch = torch_or_skip()
    grads = make_grads(dtype, [(10,), (3, 3)])
    grads[1][1, 2] = bad
    start = copies(grads)
    with pytest.raises(RuntimeError) as ours:
        cyoptim.clip_grad_norm_(grads, 1.0, error_if_nonfinite=True)
    with pytest.raises(RuntimeError) as theirs:
        torch_clip(start, torch.nn.utils.clip_grad_norm_, 1.0, error_if_nonfinite=True)
    assert str(ours.value) == str(theirs.value)
    assert_grads_equal(grads, start)  # nothing changed
    # Without the check, the grads are scaled by the non-finite norm, as torch does.
    total = cyoptim.clip_grad_norm_(grads, 1.0)
    expected, theirs = torch_clip(start, torch.nn.utils.clip_grad_norm_, 1.0)
    assert np.isnan(total) if bad != bad else total == np.inf
    assert np.isnan(float(expected)) == np.isnan(total)
    assert_grads_equal(grads, theirs)


@pytest.mark.parametrize("clip_value", [0.0, 0.3, 5.0])
def test_clip_grad_value_matches_torch_bitwise(clip_value, dtype):
    torch = torch_or_skip()
    grads = make_grads(dtype)
    grads[0][0, :3] = [np.nan, np.inf, -np.inf]
    start = copies(grads)
    assert cyoptim.clip_grad_value_(grads, clip_value) is None
    _, theirs = torch_clip(start, torch.nn.utils.clip_grad_value_, clip_value)
    assert_grads_equal(grads, theirs)
    assert np.isnan(grads[0][0, 0]) and grads[0][0, 1] == dtype(clip_value)


# ------------------------------------------------------------ by hand


def test_clip_grad_norm_by_hand():
    g = np.array([3.0, 4.0])
    h = np.array([[0.0]])
    total = cyoptim.clip_grad_norm_([g, None, h], max_norm=1.0)
    assert total == 5.0
    np.testing.assert_allclose(g, [3.0 / (5.0 + 1e-6), 4.0 / (5.0 + 1e-6)], rtol=1e-15)
    assert h[0, 0] == 0.0
    # 1-norm 7 and inf-norm 4 over [3, -4]; max_norm above the norm: no change.
    g = np.array([3.0, -4.0])
    assert cyoptim.clip_grad_norm_(g, 10.0, norm_type=1) == 7.0
    assert cyoptim.clip_grad_norm_([g, np.zeros(0)], 10.0, norm_type="inf") == 4.0
    np.testing.assert_array_equal(g, [3.0, -4.0])
    # p = 3: (27 + 64) ** (1/3), two grads combine as the norm of their norms.
    total = cyoptim.clip_grad_norm_([np.array([3.0]), np.array([-4.0])], 100.0, norm_type=3)
    assert abs(total - 91.0 ** (1 / 3)) <= 1e-15 * total
    g = np.array([0.5, -2.0, 1.5], np.float32)
    cyoptim.clip_grad_value_([g], 1.0)
    np.testing.assert_array_equal(g, [0.5, -1.0, 1.0])


def test_clip_grad_norm_of_nothing_is_zero():
    assert cyoptim.clip_grad_norm_([], 1.0) == 0.0
    assert cyoptim.clip_grad_norm_([None, None], 1.0) == 0.0
    cyoptim.clip_grad_value_([None], 1.0)


# ------------------------------------------------------------ reference, threads


@pytest.mark.parametrize("norm_type", NORM_TYPES, ids=NORM_IDS)
def test_clip_grad_norm_equals_numpy_reference(norm_type, dtype):
    grads = make_grads(dtype)
    grads.append(make_grads(np.float32 if dtype == np.float64 else np.float64, [(70,)])[0])
    twins = copies(grads)
    assert cyoptim.clip_grad_norm_(grads, 0.5, norm_type) == ref.clip_grad_norm_(
        twins, 0.5, norm_type
    )
    assert_grads_equal(grads, twins)


def test_clip_grad_value_equals_numpy_reference(dtype):
    grads = make_grads(dtype)
    twins = copies(grads)
    cyoptim.clip_grad_value_(grads, 0.7)
    ref.clip_grad_value_(twins, 0.7)
    assert_grads_equal(grads, twins)


def large_grads(dtype):
    # Sizes far from round numbers; big values so float32 partials round.
    return make_grads(dtype, [(300_001,), None, (77, 1001), (13,)], seed=7, scale=1e3)


@pytest.mark.parametrize("norm_type", NORM_TYPES, ids=NORM_IDS)
def test_clip_is_thread_and_variant_invariant(norm_type, dtype):
    """Bitwise the same norm and grads for 1 and 2 threads in every SIMD variant."""
    results = {}
    total_size = sum(g.size for g in large_grads(dtype) if g is not None)
    for variant in _dispatch.available_variants():
        for n in (1, 2):
            grads = large_grads(dtype)
            with _dispatch.use_variant(variant) as kernels, threads(n):
                assert kernels.effective_threads(total_size, n) == n
                total = cyoptim.clip_grad_norm_(grads, 10.0, norm_type)
                cyoptim.clip_grad_value_(grads, 1e-3)
            results[(variant, n)] = total, grads
    first_total, first_grads = results[next(iter(results))]
    for key, (total, grads) in results.items():
        assert total == first_total, key
        assert_grads_equal(grads, first_grads)
    # And the same as the NumPy reference's chunked sums.
    grads = large_grads(dtype)
    assert ref.clip_grad_norm_(grads, 10.0, norm_type) == first_total


def test_chunked_sum_is_more_accurate_than_float32():
    """float32 grads are summed in double: the total norm of many equal elements is exact."""
    g = np.full(1 << 20, 0.1, np.float32)
    total = cyoptim.clip_grad_norm_([g], 1e9, norm_type=1)
    assert total == float(np.float32(0.1)) * (1 << 20)


# ------------------------------------------------------------ bad input

BAD_CASES = [
    (dict(grads=[np.ones(3), [1.0, 2.0]]), TypeError, "grad 1 must be a NumPy array"),
    (dict(grads=[np.ones(3), np.ones(3, np.int64)]), TypeError, "grad 1 has dtype int64"),
    (dict(grads=[np.ones(3), np.ones((4, 4))[:, 1]]), ValueError, "grad 1 is not C-contiguous"),
    (dict(grads=[np.ones(3), np.ones(4).astype(">f8")]), TypeError, "grad 1 has dtype"),
    (dict(grads=5.0), TypeError, "grads must be an array or an iterable"),
    (dict(max_norm=-1.0), ValueError, "max_norm must be non-negative"),
    (dict(max_norm=float("nan")), ValueError, "max_norm must be non-negative"),
    (dict(max_norm="1"), TypeError, "max_norm must be a real number"),
    (dict(norm_type=0), ValueError, "norm_type must be positive"),
    (dict(norm_type=-math.inf), ValueError, "norm_type must be positive"),
    (dict(norm_type="fro"), TypeError, "norm_type must be a number"),
]


@pytest.mark.parametrize(
    "case, error, message",
    BAD_CASES,
    ids=[m.split()[-1] + str(i) for i, (_, _, m) in enumerate(BAD_CASES)],
)
def test_clip_grad_norm_bad_input_changes_nothing(case, error, message):
    first = np.arange(1.0, 4.0)
    kwargs = dict(grads=[first, None], max_norm=0.1, norm_type=2.0)
    kwargs.update(case)
    with pytest.raises(error, match=message):
        cyoptim.clip_grad_norm_(**kwargs)
    np.testing.assert_array_equal(first, [1.0, 2.0, 3.0])


def test_clip_refuses_read_only_and_shared_grads():
    first = np.arange(1.0, 4.0)
    frozen = np.ones(3)
    frozen.flags.writeable = False
    with pytest.raises(ValueError, match="grad 1 is read-only"):
        cyoptim.clip_grad_norm_([first, frozen], 0.1)
    block = np.ones(10)
    with pytest.raises(ValueError, match="grads 1 and 2 share memory"):
        cyoptim.clip_grad_norm_([first, block[:6], block[4:]], 0.1)
    with pytest.raises(ValueError, match="grads 0 and 1 share memory"):
        cyoptim.clip_grad_value_([first, first], 0.1)
    with pytest.raises(ValueError, match="clip_value must be non-negative"):
        cyoptim.clip_grad_value_([first], -1.0)
    with pytest.raises(TypeError, match="grad 1 must be a NumPy array"):
        cyoptim.clip_grad_value_([first, "x"], 1.0)
    np.testing.assert_array_equal(first, [1.0, 2.0, 3.0])


def test_kernels_check_their_arrays():
    """The kernel entry points refuse what they cannot handle, even if called directly."""
    kernels = _dispatch.kernels
    with pytest.raises(ValueError):
        kernels.scale_([np.ones(4)[::2]], 0.5, 1)
    frozen = np.ones(3)
    frozen.flags.writeable = False
    with pytest.raises(ValueError):
        kernels.clamp_([frozen], -1.0, 1.0, 1)
    np.testing.assert_array_equal(kernels.grad_norms([frozen], 2.0, 1), [math.sqrt(3)])


@pytest.mark.parametrize("dtype_", [np.float32, np.float64])
def test_inf_norm_of_special_values(dtype_):
    """max |x| on the bits: inf wins over finite values, NaN over everything."""
    assert cyoptim.clip_grad_norm_([np.array([-0.0, -3.5, 2.0], dtype_)], 1e9, "inf") == 3.5
    big = np.full(5000, 1.0, dtype_)
    big[4321] = -np.inf
    assert cyoptim.clip_grad_norm_([big], 1e9, "inf") == np.inf
    big[17] = np.nan
    assert np.isnan(cyoptim.clip_grad_norm_([np.zeros(3, dtype_), big], 1e9, "inf"))
