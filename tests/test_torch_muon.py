"""cyoptim.torch.Muon against torch.optim.Muon (torch 2.13), side by side on torch.nn models.

cyoptim.torch.Muon runs Newton-Schulz (NS) with torch's own bfloat16 matrix
products, and its kernel passes round as torch does (the lerps and the update
are fused multiply-adds, as torch's vectorized lerp_ and add_ on any CPU with
FMA). So a step is torch's bit for bit, on any BLAS: NS gets the same input
and runs the same products. Two ways of comparing, both bitwise:

- same grads: torch's model computes the grads by autograd, both optimizers
  step their own copy of the weights with them;
- free runs: each side trains its own model.
"""

import copy
import inspect
import io
import itertools

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import cyoptim.torch as cot  # noqa: E402

STEPS = 50


@pytest.fixture(params=[torch.float32, torch.float64], ids=["float32", "float64"])
def dtype(request):
    previous = torch.get_default_dtype()
    torch.set_default_dtype(request.param)
    yield request.param
    torch.set_default_dtype(previous)


def make_model(hidden=64, seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Linear(36, hidden),
        torch.nn.Tanh(),
        torch.nn.Linear(hidden, hidden),
        torch.nn.Tanh(),
        torch.nn.Linear(hidden, 5),
    )


def batches(steps=STEPS, seed=1):
    """A learnable task: the labels of a fixed random linear teacher."""
    g = torch.Generator().manual_seed(seed)
    teacher = torch.randn(36, 5, generator=g)
    data = []
    for _ in range(steps):
        x = torch.randn(32, 36, generator=g)
        data.append((x, (x @ teacher).argmax(1)))
    return data


def loss_of(model, x, y):
    return torch.nn.functional.cross_entropy(model(x), y)


def train_step(model, optimizers, x, y):
    """zero_grad, backward, step each optimizer; returns the loss."""
    for opt in optimizers:
        opt.zero_grad()
    loss = loss_of(model, x, y)
    loss.backward()
    for opt in optimizers:
        opt.step()
    return loss.item()


def matrices(model):
    return [p for p in model.parameters() if p.ndim == 2]


def others(model):
    return [p for p in model.parameters() if p.ndim != 2]


class Pair:
    """One model per side (the same initial weights): cot.Muon and torch.optim.Muon
    over its 2-d weights; torch.optim.AdamW, the same on both sides, over the rest."""

    def __init__(self, hidden=64, **options):
        self.models = [make_model(hidden), make_model(hidden)]
        self.start = [p.detach().clone() for p in self.models[0].parameters()]
        self.muon = [
            cot.Muon(matrices(self.models[0]), **options),
            torch.optim.Muon(matrices(self.models[1]), **options),
        ]
        self.adamw = [torch.optim.AdamW(others(m), lr=1e-3) for m in self.models]

    def step_same_grads(self, x, y):
        """Autograd on torch's side; both sides step with those grads."""
        ours, theirs = self.models
        for opt in self.muon + self.adamw:
            opt.zero_grad()
        loss_of(theirs, x, y).backward()
        for p, q in zip(ours.parameters(), theirs.parameters()):
            p.grad = q.grad.clone()
        for opt in self.muon + self.adamw:
            opt.step()

    def step_free(self, x, y):
        """Each side its own forward and backward; returns both losses."""
        return [
            train_step(model, (muon, adamw), x, y)
            for model, muon, adamw in zip(self.models, self.muon, self.adamw)
        ]


def assert_tracks_torch(ours, theirs, start, dtype, buffers=None):
    """Every 2-d weight moved, and is torch's bit for bit; so is every momentum buffer."""
    for k, (p, q, p0) in enumerate(zip(ours, theirs, start)):
        travelled = (q.detach().double() - p0.double()).abs().max().item()
        assert travelled > 0.01, f"weight {k} barely moved"
        assert torch.equal(p.detach(), q.detach()), f"weight {k}"
    for a, b in buffers or ():
        assert a.dtype == b.dtype == dtype
        assert torch.equal(a, b)


def buffer_pairs(opt_a, opt_b):
    params_a = [p for g in opt_a.param_groups for p in g["params"]]
    params_b = [p for g in opt_b.param_groups for p in g["params"]]
    return [
        (opt_a.state[a]["momentum_buffer"], opt_b.state[b]["momentum_buffer"])
        for a, b in zip(params_a, params_b)
    ]


FLAGS = [
    dict(nesterov=n, adjust_lr_fn=f, weight_decay=w)
    for n, f, w in itertools.product(
        (True, False), (None, "original", "match_rms_adamw"), (0.0, 0.1)
    )
]


def flags_id(flags):
    return "-".join(f"{k}={v}" for k, v in flags.items())


# -- Against torch.optim.Muon ---------------------------------------------------------


def test_signature_defaults_and_base_class_are_torchs():
    assert inspect.signature(cot.Muon) == inspect.signature(torch.optim.Muon)
    assert issubclass(cot.Muon, torch.optim.Optimizer)
    w = torch.nn.Parameter(torch.zeros(3, 4))
    assert cot.Muon([w]).defaults == torch.optim.Muon([w]).defaults
    assert "cyoptim.Muon" in cot.Muon.__doc__ and "Newton-Schulz" in cot.Muon.__doc__


@pytest.mark.parametrize("flags", FLAGS, ids=flags_id)
def test_same_grads_as_torch(flags, dtype):
    """50 steps with the grads of torch's model (autograd): torch.optim.Muon's
    weights and buffers, bitwise."""
    pair = Pair(lr=0.02, **flags)
    for x, y in batches():
        pair.step_same_grads(x, y)
    ours, theirs = (matrices(m) for m in pair.models)
    start = [p for p in pair.start if p.ndim == 2]
    assert_tracks_torch(ours, theirs, start, dtype, buffer_pairs(*pair.muon))


# match_rms_adamw: an AdamW-like learning rate (its point).
FREE_RUNS = [
    dict(lr=0.02),
    dict(lr=0.02, nesterov=False),
    dict(lr=1e-2, adjust_lr_fn="match_rms_adamw", weight_decay=0.01),
]


@pytest.mark.parametrize("options", FREE_RUNS, ids=flags_id)
@pytest.mark.parametrize("hidden", [64, 256])
def test_trains_as_torch(hidden, options, dtype):
    """60 steps, each side its own autograd: the same loss curve and weights,
    bitwise, and both learn."""
    pair = Pair(hidden, **options)
    losses = [pair.step_free(x, y) for x, y in batches(60)]
    for t, (ours, theirs) in enumerate(losses):
        assert ours == theirs, f"step {t}: {ours} vs {theirs}"
    assert losses[-1][0] < 0.6 * losses[0][0]
    for p, q in zip(*(matrices(m) for m in pair.models)):
        assert torch.equal(p, q)


def test_small_matrices_follow_torch_bitwise():
    """float64, no biases: both sides train their own model, bit for bit."""
    torch.set_default_dtype(torch.float64)
    try:
        torch.manual_seed(0)
        models = [
            torch.nn.Sequential(
                torch.nn.Linear(36, 8, bias=False),
                torch.nn.Tanh(),
                torch.nn.Linear(8, 5, bias=False),
            )
            for _ in range(2)
        ]
        models[1].load_state_dict(models[0].state_dict())
        opts = [
            cot.Muon(models[0].parameters(), lr=0.02),
            torch.optim.Muon(models[1].parameters(), lr=0.02),
        ]
        for x, y in batches(60):
            for model, opt in zip(models, opts):
                opt.zero_grad()
                loss_of(model, x.double(), y).backward()
                opt.step()
        for p, q in zip(models[0].parameters(), models[1].parameters()):
            assert torch.equal(p, q)
    finally:
        torch.set_default_dtype(torch.float32)


def test_param_groups_and_params_without_grad(dtype):
    """Two groups with their own options; a weight whose grad is None is skipped
    (no state, unchanged), as in torch."""
    models = [make_model(), make_model()]
    opts = []
    for model, cls in zip(models, (cot.Muon, torch.optim.Muon)):
        w = matrices(model)
        opts.append(
            cls(
                [{"params": w[:1], "lr": 0.05, "ns_steps": 3}, {"params": w[1:], "momentum": 0.8}],
                lr=0.02,
            )
        )
    frozen = [matrices(m)[2] for m in models]
    before = frozen[0].detach().clone()
    for x, y in batches(20):
        for model, opt, f in zip(models, opts, frozen):
            opt.zero_grad()
            loss_of(model, x, y).backward()
            f.grad = None
            opt.step()
    assert torch.equal(frozen[0], before) and frozen[0] not in opts[0].state
    assert opts[0].state_dict()["param_groups"] == opts[1].state_dict()["param_groups"]


# -- state_dict, checkpoints, schedulers -------------------------------------------------


@pytest.mark.parametrize("direction", ["cyoptim->torch", "torch->cyoptim"])
def test_state_dict_cross_load_mid_run(direction, dtype):
    """Train 20 steps on one side, load its state_dict into the other side's
    optimizer over a copy of the model, train on: the buffers arrive unchanged,
    and the run continues within the bounds of the uninterrupted one."""
    first_cls, second_cls = (
        (cot.Muon, torch.optim.Muon)
        if direction == "cyoptim->torch"
        else (torch.optim.Muon, cot.Muon)
    )
    model = make_model()
    opt = first_cls(matrices(model), lr=0.02)
    data = batches(40)
    start = [p.detach().clone() for p in matrices(model)]
    for x, y in data[:20]:
        opt.zero_grad()
        loss_of(model, x, y).backward()
        opt.step()
    resumed_model = copy.deepcopy(model)
    resumed = second_cls(matrices(resumed_model), lr=0.5)
    resumed.load_state_dict(copy.deepcopy(opt.state_dict()))  # as from a checkpoint
    assert resumed.state_dict()["param_groups"] == opt.state_dict()["param_groups"]
    for a, b in buffer_pairs(resumed, opt):
        assert torch.equal(a, b) and a.data_ptr() != b.data_ptr()
    for x, y in data[20:]:  # the same grads on both sides
        opt.zero_grad()
        loss_of(model, x, y).backward()
        for p, q in zip(matrices(resumed_model), matrices(model)):
            p.grad = q.grad.clone()
        opt.step()
        resumed.step()
    assert_tracks_torch(
        matrices(resumed_model), matrices(model), start, dtype, buffer_pairs(resumed, opt)
    )


def test_resumed_run_is_bitwise_the_uninterrupted_one(dtype):
    models = [make_model(), make_model()]
    opts = [cot.Muon(matrices(m), lr=0.02, nesterov=False) for m in models]
    data = batches(30)
    for model, opt in zip(models, opts):
        for x, y in data[:15]:
            opt.zero_grad()
            loss_of(model, x, y).backward()
            opt.step()
    buffer = io.BytesIO()
    torch.save(opts[1].state_dict(), buffer)
    buffer.seek(0)
    saved = torch.load(buffer, weights_only=True)
    opts[1] = cot.Muon(matrices(models[1]), lr=1.0)
    opts[1].load_state_dict(saved)
    for model, opt in zip(models, opts):
        for x, y in data[15:]:
            opt.zero_grad()
            loss_of(model, x, y).backward()
            opt.step()
    for p, q in zip(models[0].parameters(), models[1].parameters()):
        assert torch.equal(p, q)
    for a, b in buffer_pairs(*opts):
        assert torch.equal(a, b)


def test_torch_save_and_load_weights_only_into_either_class(tmp_path):
    model = make_model()
    opt = cot.Muon(matrices(model), lr=0.02)
    x, y = batches(1)[0]
    loss_of(model, x, y).backward()
    opt.step()
    path = tmp_path / "muon.pt"
    torch.save(opt.state_dict(), path)
    saved = torch.load(path, weights_only=True)
    for cls in (cot.Muon, torch.optim.Muon):
        other = cls(matrices(copy.deepcopy(model)))
        other.load_state_dict(saved)
        assert other.param_groups[0]["lr"] == 0.02
        for a, b in buffer_pairs(other, opt):
            assert torch.equal(a, b)


def test_schedulers_drive_it(dtype):
    """A cosine schedule, side by side with torch; then a LambdaLR to zero
    freezes the weights (lr * weight_decay is zero too)."""
    pair = Pair(lr=0.05)
    schedulers = [
        torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=STEPS) for opt in pair.muon
    ]
    for x, y in batches(30):
        pair.step_same_grads(x, y)
        for s in schedulers:
            s.step()
    assert pair.muon[0].param_groups[0]["lr"] == pair.muon[1].param_groups[0]["lr"] < 0.05
    ours, theirs = (matrices(m) for m in pair.models)
    assert_tracks_torch(
        ours, theirs, [p for p in pair.start if p.ndim == 2], dtype, buffer_pairs(*pair.muon)
    )
    stop = torch.optim.lr_scheduler.LambdaLR(pair.muon[0], lambda step: 0.0)
    assert pair.muon[0].param_groups[0]["lr"] == 0.0
    before = [p.detach().clone() for p in ours]
    for x, y in batches(3):
        pair.step_same_grads(x, y)
    stop.step()
    assert all(torch.equal(p, b) for p, b in zip(ours, before))


# -- Mixed precision: GradScaler ------------------------------------------------------


def test_grad_scaler_as_torch():
    """GradScaler hands grad_scale/found_inf to cot.Muon (the first kernel pass
    unscales the grads in place); torch.optim.Muon gets them unscaled by
    GradScaler. An overflowing step is skipped on both sides."""
    models = [make_model(), make_model()]
    opts = [cot.Muon(matrices(models[0]), lr=0.02), torch.optim.Muon(matrices(models[1]), lr=0.02)]
    assert cot.Muon._step_supports_amp_scaling
    scalers = [
        torch.amp.GradScaler("cpu", init_scale=2.0**12, growth_interval=5) for _ in range(2)
    ]
    start = [p.detach().clone() for p in matrices(models[0])]
    for t, (x, y) in enumerate(batches(30)):
        for model, opt, scaler in zip(models, opts, scalers):
            opt.zero_grad()
            scaler.scale(loss_of(model, x, y)).backward()
        for p, q in zip(matrices(models[0]), matrices(models[1])):
            p.grad = q.grad.clone()  # the same (scaled) grads on both sides
        if t == 7:
            for model in models:
                model[0].weight.grad[0, 0] = float("inf")
        for opt, scaler in zip(opts, scalers):
            scaler.step(opt)
            scaler.update()
    # 2^12, doubled every 5 good steps, halved by the overflow of step 7 (6 doublings without)
    assert scalers[0].get_scale() == scalers[1].get_scale() == 2.0**16
    assert_tracks_torch(
        matrices(models[0]), matrices(models[1]), start, torch.float32, buffer_pairs(*opts)
    )


def test_grad_scale_and_found_inf_directly():
    p = torch.nn.Parameter(torch.ones(3, 4))
    opt = cot.Muon([p], lr=0.1)
    p.grad = torch.full((3, 4), 8.0)
    opt.grad_scale, opt.found_inf = torch.tensor(4.0), torch.tensor(1.0)
    opt.step()
    assert torch.equal(p.detach(), torch.ones(3, 4)) and not opt.state[p]
    opt.found_inf = torch.tensor(0.0)
    opt.step()
    assert torch.equal(p.grad, torch.full((3, 4), 2.0))  # unscaled once, in place
    twin = torch.nn.Parameter(torch.ones(3, 4))
    twin.grad = torch.full((3, 4), 2.0)
    cot.Muon([twin], lr=0.1).step()
    assert torch.equal(p, twin)
    assert torch.equal(opt.state[p]["momentum_buffer"], torch.full((3, 4), 0.1))


# -- Zero copy ---------------------------------------------------------------------------


def test_updates_the_tensors_own_memory():
    """The params and the momentum buffers keep their memory across steps; the
    params' autograd version counts the in-place update."""
    model = make_model()
    opt = cot.Muon(matrices(model), lr=0.02)
    w = model[2].weight
    pointer, version, buffer_pointer = w.data_ptr(), w._version, None
    for x, y in batches(3):
        opt.zero_grad()
        loss_of(model, x, y).backward()
        before = w.detach().clone()
        opt.step()
        assert not torch.equal(w.detach(), before)
        buffer_pointer = buffer_pointer or opt.state[w]["momentum_buffer"].data_ptr()
        assert opt.state[w]["momentum_buffer"].data_ptr() == buffer_pointer
    assert w.data_ptr() == pointer and w._version > version


def test_closure_loss_is_returned():
    model = make_model()
    opt = cot.Muon(matrices(model))
    x, y = batches(1)[0]
    losses = []

    def closure():
        opt.zero_grad()
        loss = loss_of(model, x, y)
        loss.backward()
        losses.append(loss)
        return loss

    assert opt.step(closure) is losses[0]
    assert opt.state[model[0].weight]["momentum_buffer"].abs().sum() > 0


# -- Bad input: a clear error naming the param, nothing written --------------------------


def _prepared():
    """A model stepped once, with fresh grads, its three weights in two groups."""
    model = make_model()
    w = matrices(model)
    opt = cot.Muon([{"params": w[:2]}, {"params": w[2:]}], lr=0.02)
    data = batches(2)
    for x, y in data:
        opt.zero_grad()
        loss_of(model, x, y).backward()
        if x is data[0][0]:
            opt.step()
    return model, opt


def _snapshot(model, opt):
    return (
        [p.detach().clone() for p in model.parameters()],
        [p.grad.clone() for p in matrices(model)],
        {id(p): {k: v.clone() for k, v in opt.state[p].items()} for p in matrices(model)},
    )


def _assert_unchanged(model, opt, snapshot):
    params, grads, state = snapshot
    for p, old in zip(model.parameters(), params):
        assert torch.equal(p.detach(), old)
    for p, old in zip(matrices(model), grads):
        if p.grad is not None and p.grad.layout is torch.strided and p.grad.dtype == old.dtype:
            assert torch.equal(p.grad, old)
    for p in matrices(model):
        assert set(opt.state[p]) == set(state[id(p)])
        for k, v in state[id(p)].items():
            assert torch.equal(opt.state[p][k], v)


def _bad_cases():
    """Each corrupts the last weight (group 1) only: group 0 comes first and
    must not be written either."""

    def sparse_grad(model, opt):
        w = model[4].weight
        w.grad = w.grad.to_sparse()

    def non_contiguous_grad(model, opt):
        w = model[4].weight
        w.grad = w.grad.t().contiguous().t()

    def non_contiguous_param(model, opt):
        w = model[4].weight
        w.data = w.data.t().contiguous().t()

    def float16_param(model, opt):
        w = model[4].weight
        w.data, w.grad = w.data.half(), w.grad.half()

    def float64_grad(model, opt):
        w = model[4].weight
        w.grad_dtype = None  # torch would refuse the assignment
        w.grad = w.grad.double()

    def mixed_dtypes(model, opt):
        w = torch.nn.Parameter(torch.zeros(3, 3, dtype=torch.float64))
        w.grad = torch.ones(3, 3, dtype=torch.float64)
        opt.param_groups[1]["params"].append(w)

    def meta_param(model, opt):
        w = torch.empty(3, 3, device="meta", requires_grad=True)
        w.grad = torch.empty(3, 3, device="meta")
        opt.param_groups[1]["params"].append(w)

    def not_a_matrix(model, opt):
        w = torch.nn.Parameter(torch.zeros(6))
        w.grad = torch.ones(6)
        opt.param_groups[1]["params"].append(w)

    def bad_state(model, opt):
        opt.state[model[4].weight]["momentum_buffer"] = torch.zeros(5, 7)

    return {
        "sparse grad": (sparse_grad, ValueError, r"grad of param 0 of param group 1.*sparse"),
        "non-contiguous grad": (
            non_contiguous_grad,
            ValueError,
            r"grad of param 0 of param group 1.*not contiguous",
        ),
        "non-contiguous param": (
            non_contiguous_param,
            ValueError,
            r"param 0 of param group 1.*not contiguous",
        ),
        "float16 param": (
            float16_param,
            TypeError,
            r"param 0 of param group 1 has dtype torch.float16; supported",
        ),
        "float64 grad": (
            float64_grad,
            TypeError,
            r"grad of param 0 of param group 1 has dtype torch.float64",
        ),
        "mixed dtypes": (
            mixed_dtypes,
            TypeError,
            r"param 1 of param group 1 has dtype torch.float64.*own group",
        ),
        "meta param": (meta_param, ValueError, r"param 1 of param group 1.*device meta"),
        "not a matrix": (
            not_a_matrix,
            ValueError,
            r"Muon only supports 2D parameters.*\(param 1 of param group 1\)",
        ),
        "bad state": (
            bad_state,
            ValueError,
            r"state\['momentum_buffer'\] of param 0 of param group 1.*shape",
        ),
    }


@pytest.mark.parametrize("case", sorted(_bad_cases()))
def test_bad_input_changes_nothing(case):
    model, opt = _prepared()
    corrupt, error, message = _bad_cases()[case]
    corrupt(model, opt)
    snapshot = _snapshot(model, opt)
    with pytest.raises(error, match=message):
        opt.step()
    _assert_unchanged(model, opt, snapshot)


@pytest.mark.parametrize(
    "make, error, message",
    [
        (lambda: torch.zeros(4, 4).t(), ValueError, "not contiguous"),
        (lambda: torch.zeros(4, 4, dtype=torch.float16), ValueError, "dtype torch.float16"),
        (lambda: torch.zeros(4, 4, dtype=torch.bfloat16), ValueError, "dtype torch.bfloat16"),
        (lambda: torch.zeros(4, 4, device="meta"), ValueError, "device meta"),
        (lambda: torch.zeros(4, 4).to_sparse(), ValueError, "layout"),
    ],
)
def test_bad_params_refused_at_construction(make, error, message):
    with pytest.raises(error, match=message):
        cot.Muon([torch.zeros(2, 2), make()])


@pytest.mark.parametrize("shape", [(5,), (2, 3, 4), ()])
def test_params_that_are_not_matrices_are_refused_with_torchs_message(shape):
    bad = torch.zeros(shape, requires_grad=True)
    with pytest.raises(ValueError) as theirs:
        torch.optim.Muon([bad])
    with pytest.raises(ValueError) as ours:
        cot.Muon([torch.zeros(2, 2), bad])
    assert str(ours.value).startswith(str(theirs.value) + " (param 1 of param group 0)")
    opt = cot.Muon([torch.zeros(2, 2)])
    with pytest.raises(ValueError, match="Muon only supports 2D parameters"):
        opt.add_param_group({"params": [torch.zeros(3, 3), bad]})
    assert len(opt.param_groups) == 1


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(lr=-1.0),
        dict(momentum=-0.5),
        dict(weight_decay=-0.1),
        dict(adjust_lr_fn="arbitrary"),
        dict(lr=torch.tensor([0.1, 0.2])),
    ],
    ids=["lr", "momentum", "weight_decay", "adjust_lr_fn", "tensor lr"],
)
def test_invalid_hyperparameters_are_refused_with_torchs_message(kwargs):
    with pytest.raises(ValueError) as theirs:
        torch.optim.Muon([torch.zeros(2, 2, requires_grad=True)], **kwargs)
    with pytest.raises(ValueError) as ours:
        cot.Muon([torch.zeros(2, 2)], **kwargs)
    assert str(ours.value) == str(theirs.value)


def test_what_torch_refuses_only_at_a_step_is_refused_at_construction():
    with pytest.raises(ValueError, match="Number of steps must be less than 100"):
        cot.Muon([torch.zeros(2, 2)], ns_steps=100)
    with pytest.raises(ValueError, match="Coefficients must be a tuple of exactly 3 values"):
        cot.Muon([torch.zeros(2, 2)], ns_coefficients=(1.0, 2.0))


def test_copy_to_is_refused():
    p = torch.nn.Parameter(torch.ones(2, 2))
    p.grad = torch.ones(2, 2)
    opt = cot.Muon([p])
    with pytest.raises(ValueError, match="copy_to"):
        opt.step(copy_to=[torch.zeros(4, dtype=torch.bfloat16)])
    assert torch.equal(p.detach(), torch.ones(2, 2)) and not opt.state[p]


def test_numpy_muon_untouched():
    """The NumPy class steps the same after cyoptim.torch is imported: the same
    Newton-Schulz, one implementation."""
    import cyoptim

    w = np.zeros((2, 3), np.float32)
    cyoptim.Muon([w], lr=0.1, weight_decay=0.0).step(
        [np.array([[1, 0, 0], [0, 4, 0]], np.float32)]
    )
    t = torch.zeros(2, 3, requires_grad=True)
    t.grad = torch.tensor([[1.0, 0, 0], [0, 4, 0]])
    cot.Muon([t], lr=0.1, weight_decay=0.0).step()
    np.testing.assert_array_equal(t.detach().numpy(), w)


def test_bench_times_muon_against_torch(monkeypatch):
    from cyoptim.torch import bench

    monkeypatch.setitem(
        bench.MODELS,
        "tiny",
        (lambda: torch.nn.Sequential(torch.nn.Linear(48, 32), torch.nn.Linear(32, 8)), False),
    )
    row = bench.measure_model(
        "tiny",
        ("cyoptim.torch", "torch-default", "torch-fused"),
        rounds=1,
        min_seconds=0.01,
        optimizer="muon",
    )
    assert row["tensors"] == 2 and row["params"] == 48 * 32 + 32 * 8  # the weights only
    assert set(row["seconds"]) == {"cyoptim.torch", "torch-default"}
    assert row["skipped"] == {"torch-fused": "no torch-fused Muon"}
    assert "best peer / ours" in bench.format_results([row])


def test_muon_with_adamw_recipe_for_torch_models():
    """cyoptim.examples.muon.torch_optimizers: Muon over the hidden matrices
    (not the input and output layers), AdamW over the rest; they train."""
    from cyoptim.examples.muon import torch_optimizers

    model = make_model()
    muon, adamw = torch_optimizers(model, muon_options={"lr": 0.05})
    assert muon.param_groups[0]["param_names"] == ["2.weight"]
    assert adamw.param_groups[0]["param_names"] == [
        "0.weight",
        "0.bias",
        "2.bias",
        "4.weight",
        "4.bias",
    ]
    assert isinstance(muon, cot.Muon) and isinstance(adamw, cot.AdamW)
    assert muon.param_groups[0]["lr"] == 0.05 and adamw.param_groups[0]["lr"] == 3e-3
    losses = [train_step(model, (muon, adamw), x, y) for x, y in batches(40)]
    assert sum(losses[-5:]) < 0.6 * sum(losses[:5])


def test_dtensor_params_are_refused(tmp_path):
    """Newton-Schulz needs the whole matrix: a DTensor's local shard alone
    cannot be stepped, so DTensor params are refused (one-process gloo mesh)."""
    dist = pytest.importorskip("torch.distributed")
    if not dist.is_available() or not dist.is_gloo_available():
        pytest.skip("torch.distributed with gloo is not available")
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.tensor import Shard, distribute_tensor

    dist.init_process_group(
        "gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1
    )
    try:
        mesh = init_device_mesh("cpu", (1,))
        p = torch.nn.Parameter(distribute_tensor(torch.randn(4, 4), mesh, [Shard(0)]))
        with pytest.raises(ValueError, match=r"param 0 of param group 0 is a DTensor.*Muon"):
            cot.Muon([p])
    finally:
        dist.destroy_process_group()
