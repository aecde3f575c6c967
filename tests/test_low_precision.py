"""16-bit params, float32 master weights and bfloat16 states (docs/contract.md §7), against
references written from the definition: load the storage into float32, take
one float32 step (cyoptim's float32 kernel, torch-exact), round to nearest
even (ml_dtypes' rounding). And against torch.optim on bfloat16 tensors."""

import copy

import numpy as np
import pytest
from optimizer_table import optimizer_class

import cyoptim
from cyoptim import precision, registry

ml_dtypes = pytest.importorskip("ml_dtypes")
BF16 = np.dtype(ml_dtypes.bfloat16)
F16 = np.dtype(np.float16)

STAGED_ROWS = [row for row in registry.OPTIMIZERS if row.kernel in precision.STAGED_KERNELS]
SIZES = (5, 300, 4099)  # below a chunk, a few chunks, a ragged last chunk
STEPS = 6


def rows():
    return [pytest.param(row, id=row.name) for row in STAGED_ROWS]


def hyper(row):
    """Hyperparameters that exercise the row's math (its demo settings' lr)."""
    return {"lr": 1e-2}


def random_params(dtype, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(n).astype(np.float32).astype(dtype) for n in SIZES]


def grads(step, dtype, seed=0):
    rng = np.random.default_rng(1000 * seed + step)
    return [rng.standard_normal(n).astype(np.float32).astype(dtype) for n in SIZES]


def round_states(ref, dtype):
    """Round every state array of a float32 optimizer to dtype (nearest even)
    and back: what storing its states in dtype does after a step."""
    sd = ref.state_dict()
    for entry in sd["state"].values():
        for k, v in entry.items():
            if isinstance(v, np.ndarray):
                entry[k] = v.astype(dtype).astype(np.float32)
    ref.load_state_dict(sd)


@pytest.mark.parametrize("row", rows())
@pytest.mark.parametrize("dtype", [BF16, F16], ids=["bf16", "f16"])
@pytest.mark.parametrize("grad_dtype", ["param", "float32"])
def test_16bit_params_step_as_defined(row, dtype, grad_dtype):
    """Default storage (states in the param's dtype): each step is the float32
    step of the loaded values, rounded to nearest even once: bitwise."""
    cls = optimizer_class(row)
    params = random_params(dtype)
    opt = cls(params, **hyper(row))
    # The definition: float32 copies, a float32 optimizer, rounding after each step.
    ref_params = [p.astype(np.float32) for p in params]
    ref = cls(ref_params, **hyper(row))
    for t in range(STEPS):
        g = grads(t, dtype)
        if grad_dtype == "float32":
            g = [x.astype(np.float32) for x in g]
        opt.step(g)
        ref.step([x.astype(np.float32) for x in g])
        for p in ref_params:
            p[...] = p.astype(dtype).astype(np.float32)
        round_states(ref, dtype)
    for p, r in zip(params, ref_params):
        assert p.dtype == dtype
        np.testing.assert_array_equal(p.view(np.uint16), r.astype(dtype).view(np.uint16))
    for i, entry in opt.state.items():
        for k, v in entry.items():
            if isinstance(v, np.ndarray):
                assert v.dtype == dtype, k
                np.testing.assert_array_equal(
                    v.view(np.uint16), ref.state[i][k].astype(dtype).view(np.uint16), err_msg=k
                )


@pytest.mark.parametrize("row", rows())
@pytest.mark.parametrize("dtype", [BF16, F16], ids=["bf16", "f16"])
def test_master_weights_follow_the_float32_trajectory(row, dtype):
    """master_weights=True: the master and float32 states equal a float32 run
    on the same grads bitwise, and each param is its master rounded."""
    cls = optimizer_class(row)
    params = random_params(dtype)
    ref_params = [p.astype(np.float32) for p in params]
    opt = cls(params, **hyper(row), master_weights=True)
    ref = cls(ref_params, **hyper(row))
    for t in range(STEPS):
        g = grads(t, dtype)
        opt.step(g)
        ref.step([x.astype(np.float32) for x in g])
    for k, (p, r) in enumerate(zip(params, ref_params)):
        master = opt.state[k][precision.MASTER]
        np.testing.assert_array_equal(master, r)
        np.testing.assert_array_equal(p.view(np.uint16), r.astype(dtype).view(np.uint16))
        for name, value in ref.state.get(k, {}).items():
            if isinstance(value, np.ndarray):
                assert opt.state[k][name].dtype == np.float32
                np.testing.assert_array_equal(opt.state[k][name], value, err_msg=name)


@pytest.mark.parametrize("row", rows())
def test_bfloat16_states_of_float32_params(row):
    """state_dtype='bfloat16' with float32 params: the float32 step of the
    loaded states, the states rounded, the params exact float32."""
    cls = optimizer_class(row)
    params = random_params(np.float32)
    ref_params = [p.copy() for p in params]
    opt = cls(params, **hyper(row), state_dtype="bfloat16")
    ref = cls(ref_params, **hyper(row))
    for t in range(STEPS):
        opt.step(grads(t, np.float32))
        ref.step(grads(t, np.float32))
        round_states(ref, BF16)
    for p, r in zip(params, ref_params):
        np.testing.assert_array_equal(p, r)
    for i, entry in opt.state.items():
        for k, v in entry.items():
            if isinstance(v, np.ndarray):
                assert v.dtype == BF16
                np.testing.assert_array_equal(v.astype(np.float32), ref.state[i][k], err_msg=k)


@pytest.mark.parametrize(
    "dtype, options",
    [
        (BF16, dict(stochastic_rounding=True, seed=7)),
        (BF16, dict(master_weights=True)),
        (F16, dict()),
        (np.float32, dict(state_dtype="bfloat16")),
    ],
    ids=["bf16-stochastic", "bf16-master", "f16", "f32-bf16-states"],
)
def test_staged_steps_are_identical_for_any_thread_count_and_variant(dtype, options):
    from cyoptim import _dispatch

    rng = np.random.default_rng(3)
    start = rng.standard_normal(300_001).astype(np.float32).astype(dtype)
    results = {}
    for variant in _dispatch.available_variants():
        for threads in (1, 2):
            w = start.copy()
            before = cyoptim._threads.requested()  # 0: OpenMP's maximum, as it was
            cyoptim.set_num_threads(threads)
            try:
                with _dispatch.use_variant(variant):
                    opt = cyoptim.AdamW([w], lr=1e-3, **options)
                    for t in range(3):
                        opt.step([np.full(w.shape, 0.5 * (t + 1), dtype)])
            finally:
                cyoptim.set_num_threads(before)
            results[(variant, threads)] = w.view(np.uint8).copy()
    first = next(iter(results.values()))
    for key, value in results.items():
        np.testing.assert_array_equal(value, first, err_msg=str(key))


def test_stochastic_rounding_is_unbiased():
    """10^4 roundings of one value: their mean is the value within 3 standard errors."""
    x = np.float32(1.0 + 2**-7 / 3)  # a third of the way between two bfloat16s
    w = np.full(10_000, 1.0, BF16)
    opt = cyoptim.SGD([w], lr=1.0, stochastic_rounding=True, seed=1)
    opt.step([np.full(w.shape, np.float32(1.0) - x, np.float32)])  # w = 1 - (1 - x) = x
    values = w.astype(np.float64)
    gap = 2.0**-7
    assert set(np.unique(values)) <= {1.0, 1.0 + gap}
    standard_error = values.std(ddof=1) / np.sqrt(values.size)
    assert abs(values.mean() - float(x)) <= 3 * standard_error
    assert 0.2 < (values > 1).mean() < 0.45  # rounded up about a third of the time


def test_stochastic_rounding_is_reproducible_from_its_seed():
    def run(seed):
        w = np.full(5000, 1.0, BF16)
        opt = cyoptim.SGD([w], lr=1e-3, stochastic_rounding=True, seed=seed)
        for _ in range(3):
            opt.step([np.full(w.shape, 0.3, BF16)])
        return w.view(np.uint16).copy()

    np.testing.assert_array_equal(run(5), run(5))
    assert not np.array_equal(run(5), run(6))


def test_stochastic_rounding_tracks_float32_where_nearest_stalls():
    """Updates far below half a bfloat16 ulp: round-to-nearest never moves the
    param; stochastic rounding follows the float32 trajectory on average."""
    steps, lr = 200, 1e-4
    w32 = np.ones(4096, np.float32)
    nearest = np.ones(4096, BF16)
    stochastic = np.ones(4096, BF16)
    optimizers = [
        cyoptim.SGD([w32], lr=lr),
        cyoptim.SGD([nearest], lr=lr),
        cyoptim.SGD([stochastic], lr=lr, stochastic_rounding=True, seed=0),
    ]
    for _ in range(steps):
        for opt, w in zip(optimizers, (w32, nearest, stochastic)):
            opt.step([np.ones(w.shape, w.dtype)])
    assert np.all(nearest.astype(np.float32) == 1.0)  # stalled
    drift = 1.0 - w32[0]  # 0.02
    assert abs((1.0 - stochastic.astype(np.float64).mean()) - drift) < 0.05 * drift


@pytest.mark.parametrize(
    "options, message",
    [
        (dict(master_weights=True), "master_weights=True keeps a float32 copy of 16-bit params"),
        (dict(stochastic_rounding=True), "stochastic_rounding=True rounds bfloat16 params"),
        (dict(state_dtype="float16"), "state_dtype must be one of"),
        (dict(seed=-1), "seed must be an integer"),
        (dict(master_weights=True, stochastic_rounding=True, params=BF16), "choose one"),
    ],
)
def test_bad_combinations_are_refused(options, message):
    options = dict(options)
    dtype = options.pop("params", np.float32)
    with pytest.raises((ValueError, TypeError), match=message):
        cyoptim.Adam([np.zeros(4, dtype)], **options)


def test_low_precision_options_refused_where_unsupported():
    with pytest.raises(TypeError, match="unexpected keyword argument 'state_dtype'"):
        cyoptim.LAMB([np.zeros(4, np.float32)], state_dtype="bfloat16")
    with pytest.raises(TypeError, match="bfloat16 params need a staged kernel"):
        cyoptim.LAMB([np.zeros(4, BF16)])
    with pytest.raises(ValueError, match="float64 params"):
        cyoptim.Adam([np.zeros(4)], state_dtype="bfloat16")


def test_bad_grad_dtype_changes_nothing():
    w = np.ones(10, BF16)
    v = np.ones(10, BF16)
    opt = cyoptim.Adam([w, v], lr=0.1)
    before = (w.copy(), v.copy())
    with pytest.raises(TypeError, match="grad 1 has dtype float64"):
        opt.step([np.ones(10, BF16), np.ones(10)])
    with pytest.raises(TypeError, match="grad 1"):
        opt.step([np.ones(10, BF16), np.ones(10, np.float32)])  # one dtype per group
    np.testing.assert_array_equal(w, before[0])
    np.testing.assert_array_equal(v, before[1])
    assert opt.state == {}


@pytest.mark.parametrize(
    "options",
    [dict(), dict(master_weights=True), dict(state_dtype="float32")],
    ids=["bf16-states", "master", "float32-states"],
)
def test_state_dict_round_trip(options):
    w = random_params(BF16)
    opt = cyoptim.AdamW(w, lr=1e-2, **options)
    for t in range(3):
        opt.step(grads(t, BF16))
    sd = opt.state_dict()
    w2 = [p.copy() for p in w]
    other = cyoptim.AdamW(w2, lr=1e-2, **options)
    other.load_state_dict(sd)
    for t in range(3, 6):
        opt.step(grads(t, BF16))
        other.step(grads(t, BF16))
    for a, b in zip(w, w2):
        np.testing.assert_array_equal(a.view(np.uint16), b.view(np.uint16))
    # A state in another dtype is refused, and nothing changes.
    bad = other.state_dict()
    bad["state"][0]["exp_avg"] = bad["state"][0]["exp_avg"].astype(np.float64)
    before = {k: v.copy() for k, v in other.state[0].items() if isinstance(v, np.ndarray)}
    with pytest.raises(ValueError, match="exp_avg"):
        other.load_state_dict(bad)
    for k, v in before.items():
        np.testing.assert_array_equal(other.state[0][k], v)


def test_matches_torch_fused_within_one_ulp():
    """bfloat16 params and states, one step from the same tensors: within one
    bfloat16 ulp per element of torch.optim.AdamW(fused=True)."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(4)
    n = 10_000
    w = rng.standard_normal(n).astype(BF16)
    m = (rng.standard_normal(n) * 0.1).astype(BF16)
    v = (rng.random(n) * 0.01).astype(BF16)
    g = rng.standard_normal(n).astype(BF16)
    opt = cyoptim.AdamW([w], lr=1e-2)
    opt.step([np.zeros(n, BF16)])  # create the state, then set it
    sd = opt.state_dict()
    sd["state"][0].update(exp_avg=m.copy(), exp_avg_sq=v.copy(), step=4.0)
    opt.load_state_dict(sd)
    tw = torch.tensor(w.astype(np.float32)).to(torch.bfloat16)
    tw.grad = torch.tensor(g.astype(np.float32)).to(torch.bfloat16)
    topt = torch.optim.AdamW([tw], lr=1e-2, fused=True)
    topt.state[tw] = {
        "step": torch.tensor(4.0),
        "exp_avg": torch.tensor(m.astype(np.float32)).to(torch.bfloat16),
        "exp_avg_sq": torch.tensor(v.astype(np.float32)).to(torch.bfloat16),
    }
    opt.step([g])
    topt.step()
    ours = w.view(np.int16).astype(np.int32)
    theirs = tw.view(torch.int16).numpy().astype(np.int32)
    assert np.abs(ours - theirs).max() <= 1
    for name in ("exp_avg", "exp_avg_sq"):
        a = opt.state[0][name].view(np.int16).astype(np.int32)
        b = topt.state[tw][name].view(torch.int16).numpy().astype(np.int32)
        assert np.abs(a - b).max() <= 1, name


def test_checkpoint_file_round_trip(tmp_path):
    """save_state / load_state keep bfloat16 states bitwise (as their bits:
    .npy has no bfloat16), and the master copy."""
    w = random_params(BF16)
    opt = cyoptim.AdamW(w, lr=1e-2)
    master = cyoptim.AdamW([p.copy() for p in w], lr=1e-2, master_weights=True)
    for t in range(2):
        opt.step(grads(t, BF16))
        master.step(grads(t, BF16))
    for o in (opt, master):
        cyoptim.save_state(o, tmp_path / "opt.npz")
        other = cyoptim.AdamW(
            [p.copy() for p in w], lr=1e-2, master_weights=o.precision.master_weights
        )
        cyoptim.load_state(other, tmp_path / "opt.npz")
        for k, entry in o.state.items():
            for name, value in entry.items():
                loaded = other.state[k][name]
                if isinstance(value, np.ndarray):
                    assert loaded.dtype == value.dtype
                    np.testing.assert_array_equal(loaded.view(np.uint8), value.view(np.uint8))
                else:
                    assert loaded == value


# ---------------------------------------------------------------- cyoptim.torch
def _torch():
    return pytest.importorskip("torch")


def test_torch_master_weights_follow_the_float32_rule():
    """cyoptim.torch.AdamW on bfloat16 params with master weights: the master
    is the float32 trajectory on the same (bfloat16) grads, bitwise (cyoptim's
    float32 kernel; torch.optim.AdamW's to float32 rounding), and each param
    is its master rounded."""
    torch = _torch()
    import cyoptim.torch as cot

    torch.manual_seed(0)
    start = [torch.randn(300, 7), torch.randn(5000)]
    params = [t.to(torch.bfloat16).requires_grad_() for t in start]
    ref = [p.detach().float().clone().requires_grad_() for p in params]
    theirs = [p.detach().float().clone().requires_grad_() for p in params]
    opt = cot.AdamW(params, lr=1e-2, master_weights=True)
    ropt = cot.AdamW(ref, lr=1e-2)
    topt = torch.optim.AdamW(theirs, lr=1e-2)
    for _step in range(5):
        for p, r, t in zip(params, ref, theirs):
            g = torch.randn(p.shape).to(torch.bfloat16)
            p.grad, r.grad, t.grad = g, g.float(), g.float()
        for o in (opt, ropt, topt):
            o.step()
    for p, r, t in zip(params, ref, theirs):
        master = opt.state[p][precision.MASTER]
        assert master.dtype == torch.float32 and opt.state[p]["exp_avg"].dtype == torch.float32
        assert torch.equal(master, r.detach())
        # torch's float32 agreement target (docs/contract.md §1): relative to max(|x|, 1e-3).
        assert ((master - t.detach()).abs() / t.detach().abs().clamp(min=1e-3)).max() <= 1e-5
        assert torch.equal(p.detach(), r.detach().to(torch.bfloat16))


def test_torch_bfloat16_step_within_one_ulp_of_torch_fused():
    torch = _torch()
    import cyoptim.torch as cot

    torch.manual_seed(1)
    n = 10_000
    p = torch.randn(n).to(torch.bfloat16)
    q = p.clone()
    state = {
        "step": torch.tensor(3.0),
        "exp_avg": (0.1 * torch.randn(n)).to(torch.bfloat16),
        "exp_avg_sq": (0.01 * torch.rand(n)).to(torch.bfloat16),
    }
    p.grad = torch.randn(n).to(torch.bfloat16)
    q.grad = p.grad.clone()
    opt = cot.AdamW([p], lr=1e-2)
    topt = torch.optim.AdamW([q], lr=1e-2, fused=True)
    opt.state[p] = {k: v.clone() for k, v in state.items()}
    topt.state[q] = {k: v.clone() for k, v in state.items()}
    opt.step()
    topt.step()
    ulps = lambda a, b: (a.view(torch.int16).int() - b.view(torch.int16).int()).abs().max()
    assert ulps(p, q) <= 1
    for name in ("exp_avg", "exp_avg_sq"):
        assert opt.state[p][name].dtype == torch.bfloat16
        assert ulps(opt.state[p][name], topt.state[q][name]) <= 1


def test_torch_bfloat16_model_trains_with_autograd():
    """A bfloat16 MLP trained by autograd with master weights and with bf16
    states: the loss falls as in float32."""
    torch = _torch()
    import cyoptim.torch as cot

    torch.manual_seed(2)
    x = torch.randn(256, 20)
    y = (x[:, :5].sum(1) > 0).long()
    losses = {}
    for label, dtype, options in [
        ("float32", torch.float32, {}),
        ("master", torch.bfloat16, {"master_weights": True}),
        ("bf16", torch.bfloat16, {}),
    ]:
        torch.manual_seed(3)
        model = torch.nn.Sequential(
            torch.nn.Linear(20, 64), torch.nn.Tanh(), torch.nn.Linear(64, 2)
        ).to(dtype)
        opt = cot.AdamW(model.parameters(), lr=1e-2, **options)
        for _ in range(60):
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(x.to(dtype)).float(), y)
            loss.backward()
            opt.step()
        losses[label] = float(loss.detach())
    assert losses["float32"] < 0.2
    assert losses["master"] < 0.2 and losses["bf16"] < 0.3


def test_torch_state_dict_keeps_staged_dtypes():
    """torch's load_state_dict casts floating state to the param's dtype; a
    staged optimizer keeps its float32 master and states."""
    torch = _torch()
    import cyoptim.torch as cot

    p = torch.randn(100).to(torch.bfloat16)
    p.grad = torch.ones(100, dtype=torch.bfloat16)
    opt = cot.Adam([p], lr=1e-3, master_weights=True)
    opt.step()
    sd = copy.deepcopy(opt.state_dict())  # torch's state_dict holds the live tensors
    q = p.detach().clone()
    q.grad = p.grad.clone()
    other = cot.Adam([q], lr=1e-3, master_weights=True)
    other.load_state_dict(sd)
    for name, value in opt.state[p].items():
        assert other.state[q][name].dtype == value.dtype
        assert torch.equal(other.state[q][name], value)
    opt.step()
    other.step()
    assert torch.equal(p, q)


def test_torch_bad_grad_dtype_changes_nothing():
    torch = _torch()
    import cyoptim.torch as cot

    a = torch.ones(10, dtype=torch.bfloat16)
    b = torch.ones(10, dtype=torch.bfloat16)
    a.grad = torch.ones(10, dtype=torch.bfloat16)
    b.grad_dtype = None  # torch then allows float32 grads
    b.grad = torch.ones(10, dtype=torch.float32)  # one dtype per group
    opt = cot.Adam([a, b], lr=0.1)
    with pytest.raises(TypeError, match="must all be torch.bfloat16 or all torch.float32"):
        opt.step()
    assert torch.equal(a, torch.ones(10, dtype=torch.bfloat16)) and len(opt.state) == 0
    b.grad = b.grad.to(torch.bfloat16)
    opt.step()
    assert opt.state[a]["exp_avg"].dtype == torch.bfloat16


# ---------------------------------------------------------------- int8 states
from cyoptim import quantization  # noqa: E402

INT8_ROWS = [row for row in registry.OPTIMIZERS if row.kernel in precision.INT8_KERNELS]
INT8_SIZES = (100, 4096, 5000)  # float32 below 4096 elements; a ragged last block


def int8_hyper(row):
    """Settings that create every int8-capable state of the row."""
    return {
        "SGD": dict(lr=1e-2, momentum=0.9),
        "RMSprop": dict(lr=1e-3, momentum=0.9, centered=True),
    }.get(row.name, dict(lr=1e-3))


@pytest.mark.parametrize("signed", [True, False], ids=["signed", "unsigned"])
@pytest.mark.parametrize("variant", ["avx512", "avx2", "baseline"])
def test_kernel_quantizer_is_the_definition(signed, variant):
    """The kernels' bucket-table quantizer gives the codes of the definition
    (nearest map value, float32 midpoints, ties to the lower) bitwise, at
    every scale, on zero blocks, NaN blocks, exact thresholds, short blocks."""
    from cyoptim import _dispatch

    if variant not in _dispatch.available_variants():
        pytest.skip(f"this CPU does not run the {variant} build")
    rng = np.random.default_rng(5)
    parts = [rng.standard_normal(3000) * 10.0**e for e in range(-9, 7, 3)]
    parts += [
        np.zeros(256),
        quantization.thresholds(signed)[:255],
        [np.nan] + [1.0] * 255,
        [1e-30, 2e-38, 0.0] * 100,
    ]
    x = np.concatenate(parts).astype(np.float32)[:-7]
    if not signed:
        x = np.abs(x)
    with _dispatch.use_variant(variant):
        kernels = _dispatch.kernels
        codes, absmax = kernels.quantize_chunks(x, signed)
        values = kernels.dequantize_chunks(codes, absmax, signed)
    ref_codes, ref_absmax = quantization.quantize_blockwise(x, signed)
    np.testing.assert_array_equal(absmax, ref_absmax)
    np.testing.assert_array_equal(codes, ref_codes)
    np.testing.assert_array_equal(values, quantization.dequantize_blockwise(codes, absmax, signed))


def _adversarial_blocks(signed):
    """float32 blocks of 256 that put y = x / absmax on every threshold and
    its float32 neighbours (a leading +-2**k makes the scale exact), at both
    ends of the float range, and blocks of zeros, negative zeros, NaN,
    infinities, denormals and all-equal values."""
    f32 = np.float32
    t = quantization.thresholds(signed)[:255]
    near = [t, np.nextafter(t, f32(np.inf)), np.nextafter(t, f32(-np.inf))]
    blocks = []
    for scale in (f32(1), f32(2.0**-20), f32(2.0**100), f32(2.0**-126)):
        for values in near + [-v for v in near]:
            blocks.append(np.concatenate([[scale], values * scale]))
    tiny = np.finfo(np.float32).smallest_subnormal
    rng = np.random.default_rng(7)
    for values in (
        [0.0],
        [-0.0],
        [0.3],
        [-0.3],
        [1.0],
        [-1.0],
        [np.nan],
        [np.inf],
        [-np.inf],
        [tiny],
        [-tiny],
        [tiny, 0.0, -0.0, 3 * tiny],
        [np.finfo(np.float32).max],
        [1.0, np.nan],
        [1.0, np.inf],
        [-np.inf, 2.0, -0.0],
        [1e-30, -1e-38, 2e-45],
        rng.standard_normal(256) * 1e-40,
        rng.standard_normal(256),
    ):
        blocks.append(np.resize(np.asarray(values, dtype=f32), 256))
    x = np.concatenate(blocks).astype(f32)
    return x if signed else np.abs(x)


@pytest.mark.parametrize("signed", [True, False], ids=["signed", "unsigned"])
@pytest.mark.parametrize("length", [None, 1, 15, 17, 255, 257, 4096 + 13])
def test_quantizer_bitwise_equal_across_variants_on_adversarial_input(signed, length):
    """Every SIMD build quantizes and dequantizes adversarial blocks (values on
    and next to every threshold, NaN, infinities, zeros, negative zeros,
    denormals, all-equal blocks, lengths not a multiple of 16) to the same
    bits as the definition; and dequantizes every code at extreme scales."""
    from cyoptim import _dispatch

    x = _adversarial_blocks(signed)
    if length is not None:
        x = x[-length:]
    ref_codes, ref_absmax = quantization.quantize_blockwise(x, signed)
    all_codes = np.tile(np.arange(256, dtype=np.uint8), 8)
    scales = np.array([1.0, 0.0, np.inf, np.nan, 1e-45, 3e38, 2.0**-126, 0.3], np.float32)
    ref_values = quantization.dequantize_blockwise(all_codes, scales, signed)
    for variant in _dispatch.available_variants():
        with _dispatch.use_variant(variant):
            kernels = _dispatch.kernels
            codes, absmax = kernels.quantize_chunks(x, signed)
            values = kernels.dequantize_chunks(codes, absmax, signed)
            every = kernels.dequantize_chunks(all_codes, scales, signed)
        np.testing.assert_array_equal(codes, ref_codes, err_msg=variant)
        np.testing.assert_array_equal(absmax, ref_absmax, err_msg=variant)
        ref = quantization.dequantize_blockwise(codes, absmax, signed)
        np.testing.assert_array_equal(values.view(np.uint32), ref.view(np.uint32), err_msg=variant)
        np.testing.assert_array_equal(
            every.view(np.uint32), ref_values.view(np.uint32), err_msg=variant
        )


@pytest.mark.parametrize("signed", [True, False], ids=["signed", "unsigned"])
def test_quantization_round_trip_error_is_bounded_per_block(signed):
    """|x - deq(q(x))| <= absmax * (half the largest gap of the map), block by block."""
    rng = np.random.default_rng(6)
    x = rng.standard_normal(50_000) * np.repeat(10.0 ** rng.uniform(-6, 3, 196), 256)[:50_000]
    x = x.astype(np.float32)
    if not signed:
        x = np.abs(x)
    codes, absmax = quantization.quantize_blockwise(x, signed)
    back = quantization.dequantize_blockwise(codes, absmax, signed)
    half_gap = np.diff(quantization.dynamic_map(signed)).max() / 2
    bound = np.repeat(absmax, 256)[: x.size] * half_gap * (1 + 1e-4)  # float32 rounding
    assert np.all(np.abs(back - x) <= bound)
    # And each value's own relative error is small where the map is dense.
    big = np.abs(x) > 0.01 * np.repeat(absmax, 256)[: x.size]
    assert np.median(np.abs(back - x)[big] / np.abs(x)[big]) < 0.05


def test_dynamic_map_is_bitsandbytes():
    bnb = pytest.importorskip("bitsandbytes.functional")
    for signed in (True, False):
        theirs = bnb.create_dynamic_map(signed=signed).numpy().astype(np.float32)
        np.testing.assert_allclose(quantization.dynamic_map(signed), theirs, rtol=2e-7, atol=0)


def _int8_definition_step(ref, row):
    """After a float32 step: each int8 state quantized and dequantized, as
    the fused kernel stores it."""
    sd = ref.state_dict()
    for entry in sd["state"].values():
        for name, value in entry.items():
            if isinstance(value, np.ndarray) and value.size >= precision.INT8_MIN_SIZE:
                signed = name not in precision.NONNEGATIVE_STATES
                codes, absmax = quantization.quantize_blockwise(value, signed)
                entry[name] = quantization.dequantize_blockwise(codes, absmax, signed)
    ref.load_state_dict(sd)


@pytest.mark.parametrize("row", [pytest.param(r, id=r.name) for r in INT8_ROWS])
def test_int8_states_step_as_defined(row):
    """state_dtype='int8': each step dequantizes, takes the float32 step and
    requantizes, bitwise as the definition (cyoptim.quantization) does it;
    tensors below 4096 elements keep float32 states."""
    cls = optimizer_class(row)
    rng = np.random.default_rng(7)
    params = [rng.standard_normal(n).astype(np.float32) for n in INT8_SIZES]
    ref_params = [p.copy() for p in params]
    opt = cls(params, **int8_hyper(row), state_dtype="int8")
    ref = cls(ref_params, **int8_hyper(row))
    for _t in range(5):
        g = [rng.standard_normal(p.size).astype(np.float32) for p in params]
        opt.step(g)
        ref.step(g)
        _int8_definition_step(ref, row)
    for p, r in zip(params, ref_params):
        np.testing.assert_array_equal(p, r)
    for k, p in enumerate(params):
        for name, value in ref.state[k].items():
            if not isinstance(value, np.ndarray):
                continue
            ours = opt.state[k][name]
            if p.size < precision.INT8_MIN_SIZE:
                assert ours.dtype == np.float32 and name + "_absmax" not in opt.state[k]
                np.testing.assert_array_equal(ours, value)
                continue
            assert ours.dtype == np.uint8 and ours.shape == p.shape
            signed = name not in precision.NONNEGATIVE_STATES
            values = quantization.dequantize_blockwise(
                ours, opt.state[k][name + "_absmax"], signed
            )
            np.testing.assert_array_equal(values, value, err_msg=name)


def test_int8_state_dict_round_trip_and_refusals(tmp_path):
    rng = np.random.default_rng(8)
    params = [rng.standard_normal(n).astype(np.float32) for n in INT8_SIZES]
    opt = cyoptim.AdamW(params, lr=1e-3, state_dtype="int8")
    for _ in range(3):
        opt.step([rng.standard_normal(p.size).astype(np.float32) for p in params])
    cyoptim.save_state(opt, tmp_path / "opt.npz")
    copies = [p.copy() for p in params]
    other = cyoptim.AdamW(copies, lr=1e-3, state_dtype="int8")
    cyoptim.load_state(other, tmp_path / "opt.npz")
    g = [rng.standard_normal(p.size).astype(np.float32) for p in params]
    opt.step(g)
    other.step(g)
    for a, b in zip(params, copies):
        np.testing.assert_array_equal(a, b)
    # A quantized state without its scales is refused, and nothing changes.
    bad = other.state_dict()
    del bad["state"][1]["exp_avg_absmax"]
    before = other.state_dict()
    with pytest.raises(ValueError, match="exp_avg_absmax"):
        other.load_state_dict(bad)
    after = other.state_dict()
    for k, entry in before["state"].items():
        for name, value in entry.items():
            np.testing.assert_array_equal(after["state"][k][name], value)
    # The helper turns it into float32, loadable where float32 states are.
    entry = opt.state_dict()["state"][2]
    exp_avg = quantization.dequantize_blockwise(entry["exp_avg"], entry["exp_avg_absmax"])
    assert exp_avg.dtype == np.float32 and exp_avg.shape == params[2].shape


def test_int8_bytes_per_param():
    """Two int8 moments: 2 bytes per param plus 2 * 4 / 256 for the scales."""
    w = np.zeros(1 << 20, np.float32)
    opt = cyoptim.AdamW([w], lr=1e-3, state_dtype="int8")
    opt.step([np.ones_like(w)])
    assert cyoptim.state_bytes(opt) / w.size <= 2.1
    float32 = cyoptim.AdamW([w.copy()], lr=1e-3)
    float32.step([np.ones_like(w)])
    assert cyoptim.state_bytes(float32) / w.size >= 8


def test_int8_refused_where_not_supported():
    with pytest.raises(ValueError, match="state_dtype='int8' is for"):
        cyoptim.Rprop([np.zeros(4, np.float32)], state_dtype="int8")


@pytest.mark.parametrize(
    "param_dtype, options, copy_dtype",
    [
        (np.float32, {}, BF16),
        (np.float32, {}, F16),
        (np.float32, {"state_dtype": "int8"}, BF16),
        (BF16, {"master_weights": True}, BF16),
        (BF16, {}, BF16),
    ],
    ids=["f32-bf16", "f32-f16", "f32-int8-bf16", "bf16-master", "bf16"],
)
def test_copy_to_writes_the_rounded_params_in_the_same_step(param_dtype, options, copy_dtype):
    """step(grads, copy_to=...): each copy is the updated param rounded to
    nearest even; the update itself is the one without copies, bitwise."""
    rng = np.random.default_rng(9)
    start = [rng.standard_normal(n).astype(np.float32).astype(param_dtype) for n in INT8_SIZES]
    params, plain = [p.copy() for p in start], [p.copy() for p in start]
    opt = cyoptim.AdamW(params, lr=1e-2, **options)
    ref = cyoptim.AdamW(plain, lr=1e-2, **options)
    copies = [np.zeros(p.size, copy_dtype) for p in params]
    copies[1] = None  # no copy of this one
    for _t in range(3):
        g = [rng.standard_normal(p.size).astype(np.float32).astype(param_dtype) for p in params]
        opt.step(g, copy_to=copies)
        ref.step(g)
        for _k, (p, r, c) in enumerate(zip(params, plain, copies)):
            np.testing.assert_array_equal(p.view(np.uint8), r.view(np.uint8))
            if c is not None:
                np.testing.assert_array_equal(
                    c.view(np.uint16), p.astype(copy_dtype).view(np.uint16)
                )


def test_copy_to_bad_input_changes_nothing():
    w = np.ones(10, np.float32)
    opt = cyoptim.Adam([w], lr=0.1)
    for bad, error in [
        ([np.zeros(10, np.float32)], TypeError),
        ([np.zeros(9, BF16)], ValueError),
        ([], ValueError),
        (np.zeros(10, BF16), TypeError),
    ]:
        with pytest.raises(error):
            opt.step([np.ones(10, np.float32)], copy_to=bad)
    np.testing.assert_array_equal(w, 1.0)
    assert opt.state == {}
    with pytest.raises(ValueError, match="float32 and 16-bit params only"):
        cyoptim.Adam([np.ones(3)]).step([np.ones(3)], copy_to=[np.zeros(3, BF16)])


@pytest.mark.parametrize(
    "param_dtype, options",
    [
        ("float32", {}),
        ("float32", {"state_dtype": "int8"}),
        ("bfloat16", {"master_weights": True}),
    ],
    ids=["f32", "f32-int8", "bf16-master"],
)
def test_torch_copy_to(param_dtype, options):
    """cyoptim.torch's step(copy_to=...): copies are the updated params
    rounded; the update is the one without copies, bitwise; grads of None
    leave their copy alone."""
    torch = _torch()
    import cyoptim.torch as cot

    torch.manual_seed(4)
    dtype = getattr(torch, param_dtype)
    start = [torch.randn(n).to(dtype) for n in INT8_SIZES]
    params, plain = [p.clone() for p in start], [p.clone() for p in start]
    opt = cot.AdamW(params, lr=1e-2, **options)
    ref = cot.AdamW(plain, lr=1e-2, **options)
    copies = [torch.zeros(n, dtype=torch.bfloat16) for n in INT8_SIZES]
    for t in range(3):
        for k, (p, r) in enumerate(zip(params, plain)):
            g = torch.randn(p.shape).to(dtype)
            p.grad, r.grad = (None, None) if (k == 0 and t == 2) else (g, g.clone())
        kept = copies[0].clone()
        opt.step(copy_to=copies)
        ref.step()
        for p, r in zip(params, plain):
            assert torch.equal(p, r)
        for c, p in zip(copies[1:], params[1:]):
            assert torch.equal(c, p.to(torch.bfloat16))
    assert torch.equal(copies[0], kept)  # its param had no grad at the last step
    with pytest.raises(ValueError, match="one per param"):
        opt.step(copy_to=copies[:1])
    with pytest.raises(TypeError, match="bfloat16 or float16 tensor"):
        opt.step(copy_to=[torch.zeros(n) for n in INT8_SIZES])
    for p, r in zip(params, plain):
        assert torch.equal(p, r)  # refused calls changed nothing


def test_torch_int8_states():
    """cyoptim.torch with int8 states: codes and scales in the state,
    float32 below 4096 elements, the update as the NumPy optimizer's."""
    torch = _torch()
    import cyoptim.torch as cot

    rng = np.random.default_rng(10)
    arrays = [rng.standard_normal(n).astype(np.float32) for n in INT8_SIZES]
    tensors = [torch.tensor(a) for a in arrays]
    opt = cot.Adam(tensors, lr=1e-3, state_dtype="int8")
    ref = cyoptim.Adam([a.copy() for a in arrays], lr=1e-3, state_dtype="int8")
    for _ in range(4):
        grads = [rng.standard_normal(a.size).astype(np.float32) for a in arrays]
        for t, g in zip(tensors, grads):
            t.grad = torch.tensor(g)
        opt.step()
        ref.step(grads)
    for k, (t, a) in enumerate(zip(tensors, ref._plans[0].params)):
        np.testing.assert_array_equal(t.numpy(), a)
        state = opt.state[t]
        if a.size >= precision.INT8_MIN_SIZE:
            assert state["exp_avg"].dtype == torch.uint8
            np.testing.assert_array_equal(
                state["exp_avg_absmax"].numpy(), ref.state[k]["exp_avg_absmax"]
            )
        else:
            assert state["exp_avg"].dtype == torch.float32 and "exp_avg_absmax" not in state
    sd = copy.deepcopy(opt.state_dict())
    other = cot.Adam([t.clone() for t in tensors], lr=1e-3, state_dtype="int8")
    other.load_state_dict(sd)
    assert other.state[other.param_groups[0]["params"][2]]["exp_avg"].dtype == torch.uint8


@pytest.mark.parametrize(
    "options",
    [dict(master_weights=True), dict(state_dtype="int8"), dict(stochastic_rounding=True)],
    ids=["master", "int8", "stochastic"],
)
def test_pickle_and_deepcopy_keep_the_storage(options):
    import pickle

    rng = np.random.default_rng(11)
    params = [rng.standard_normal(n).astype(np.float32).astype(BF16) for n in INT8_SIZES]
    opt = cyoptim.AdamW(params, lr=1e-2, **options)
    opt.step([rng.standard_normal(p.size).astype(np.float32).astype(BF16) for p in params])
    for clone in (pickle.loads(pickle.dumps(opt)), copy.deepcopy(opt)):
        assert clone.precision == opt.precision
        g = [rng.standard_normal(p.size).astype(np.float32).astype(BF16) for p in params]
        mine = [p.copy() for p in params]
        twin = cyoptim.AdamW(mine, lr=1e-2, **options)
        if twin.precision.stochastic_rounding:  # the seed drawn for opt, not another
            twin = cyoptim.AdamW(mine, lr=1e-2, **dict(options, seed=opt.precision.seed))
        twin.load_state_dict(opt.state_dict())
        twin.step(g)
        clone.step(g)
        for a, b in zip(clone._plans[0].params, mine):
            np.testing.assert_array_equal(a.view(np.uint16), b.view(np.uint16))


def test_torch_stochastic_rounding_is_reproducible():
    torch = _torch()
    import cyoptim.torch as cot

    def run(seed):
        w = torch.ones(5000, dtype=torch.bfloat16)
        opt = cot.SGD([w], lr=1e-3, stochastic_rounding=True, seed=seed)
        for _ in range(3):
            w.grad = torch.full((5000,), 0.3, dtype=torch.bfloat16)
            opt.step()
        return w.clone()

    assert torch.equal(run(5), run(5)) and not torch.equal(run(5), run(6))
