"""cyoptim.torch: drop-in torch.optim.Optimizer classes, tested by real training.

Every registry row trains real torch.nn models with autograd, side by side
with torch.optim's default (single-tensor) implementation of the same name,
over its flag grid; rows torch lacks (Lion, LAMB) are compared with cyoptim's
NumPy class on zero-copy views of the same model. Then param groups,
schedulers, checkpoints across the two libraries, GradScaler, the outside
world moving tensors between steps, and bad input.
"""

import copy
import io
import itertools
import pickle

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from optimizer_table import row_settings  # noqa: E402

import cyoptim  # noqa: E402
import cyoptim.torch as cot  # noqa: E402
from cyoptim import precision, registry  # noqa: E402

STEPS = 50
TOLERANCE = {torch.float32: 1e-5, torch.float64: 1e-12}
TORCH_ROWS = [row for row in registry.OPTIMIZERS if row.in_torch]
OTHER_ROWS = [row for row in registry.OPTIMIZERS if not row.in_torch]


@pytest.fixture(params=[torch.float32, torch.float64], ids=["float32", "float64"])
def dtype(request):
    """The default dtype of the test: models are built in it, and torch's
    scalar state (step, mu_product) follows it, on both sides."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(request.param)
    yield request.param
    torch.set_default_dtype(previous)


class ConvNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 4, 3, padding=1, bias=False)  # BatchNorm follows
        self.norm = torch.nn.BatchNorm2d(4)
        self.head = torch.nn.Linear(4 * 6 * 6, 5)

    def forward(self, x):
        x = torch.relu(self.norm(self.conv(x.view(-1, 1, 6, 6))))
        return self.head(torch.nn.functional.max_pool2d(x, 1).flatten(1))


def make_model(kind, seed=0):
    torch.manual_seed(seed)
    if kind == "mlp":
        return torch.nn.Sequential(
            torch.nn.Linear(36, 32), torch.nn.Tanh(), torch.nn.Linear(32, 5)
        )
    return ConvNet()


def batches(steps=STEPS, seed=1):
    g = torch.Generator().manual_seed(seed)
    return [
        (torch.randn(16, 36, generator=g), torch.randint(0, 5, (16,), generator=g))
        for _ in range(steps)
    ]


def train(model, opt, data, scheduler=None):
    for x, y in data:
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
        if scheduler is not None:
            scheduler.step()


def assert_close(model_a, model_b, dtype):
    for (name, a), b in zip(model_a.named_parameters(), model_b.parameters()):
        error = ((a - b).norm() / b.norm().clamp_min(1e-30)).item()
        assert error <= TOLERANCE[dtype], f"{name}: normwise relative error {error:.3g}"


def flag_grid(row):
    names = sorted(row_settings(row).flags)
    for values in itertools.product(*(row_settings(row).flags[n] for n in names)):
        yield dict(zip(names, values))


def torch_kwargs(row, dtype):
    """The row's torch comparison settings, with the smaller of its two rates:
    training feeds each step's rounding differences (torch fuses multiply-adds,
    cyoptim rounds each operation: tests/optim_harness.torch_test_lr) back
    through the model, and a smaller rate keeps float64 within 1e-12."""
    kwargs = dict(row_settings(row).torch)
    kwargs["lr"] = min(kwargs.pop("lr"))
    return kwargs


def grid_cases(rows):
    """The MLP over each row's whole flag grid; the conv net with the first and
    the last combination (every flag off, every flag on)."""
    cases = []
    for row in rows:
        grid = list(flag_grid(row))
        for i, flags in enumerate(grid):
            for kind in ("mlp", "conv") if i in (0, len(grid) - 1) else ("mlp",):
                cases.append(
                    pytest.param(
                        row,
                        flags,
                        kind,
                        id=f"{row.name}-{kind}-" + "-".join(f"{k}={v}" for k, v in flags.items()),
                    )
                )
    return cases


# -- Training side by side --------------------------------------------------------


@pytest.mark.parametrize("row, flags, kind", grid_cases(TORCH_ROWS))
def test_trains_as_torch(row, flags, kind, dtype):
    kwargs = dict(torch_kwargs(row, dtype), **flags)
    theirs_model, ours_model = make_model(kind), make_model(kind)
    try:
        theirs = getattr(torch.optim, row.name)(theirs_model.parameters(), foreach=False, **kwargs)
    except ValueError:
        pytest.skip("torch refuses this combination")  # e.g. nesterov with dampening
    ours = getattr(cot, row.name)(ours_model.parameters(), **kwargs)
    data = batches()
    train(theirs_model, theirs, data)
    train(ours_model, ours, data)
    assert_close(ours_model, theirs_model, dtype)
    # Same state, same names, same layout.
    for p_ours, p_theirs in zip(ours_model.parameters(), theirs_model.parameters()):
        s_ours, s_theirs = ours.state[p_ours], theirs.state[p_theirs]
        assert sorted(s_ours) == sorted(s_theirs)
        for name, value in s_theirs.items():
            assert s_ours[name].shape == value.shape and s_ours[name].dtype == value.dtype


@pytest.mark.parametrize("row, flags, kind", grid_cases(OTHER_ROWS))
def test_trains_as_the_numpy_class(row, flags, kind, dtype):
    """Lion and LAMB: bitwise the cyoptim class on zero-copy views of a twin model."""
    kwargs = dict(row_settings(row).reference, **flags)
    ours_model, twin_model = make_model(kind), make_model(kind)
    ours = getattr(cot, row.name)(ours_model.parameters(), **kwargs)
    twin_params = list(twin_model.parameters())
    twin = getattr(cyoptim, row.name)([p.detach().numpy() for p in twin_params], **kwargs)
    for x, y in batches():
        for model in (ours_model, twin_model):
            model.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
        ours.step()
        with torch.no_grad():
            twin.step([p.grad.numpy() for p in twin_params])
    for a, b in zip(ours_model.parameters(), twin_params):
        assert torch.equal(a, b)


@pytest.mark.parametrize("row", TORCH_ROWS, ids=lambda r: r.name)
def test_param_groups_and_skipped_params(row, dtype):
    """Two groups with their own hyperparameters; one param without a grad at
    some steps (torch skips it and its step count)."""
    kwargs = torch_kwargs(row, dtype)
    models = [make_model("mlp"), make_model("mlp")]
    opts = []
    for model, cls in zip(models, (getattr(torch.optim, row.name), getattr(cot, row.name))):
        first, *rest = model.parameters()
        groups = [{"params": [first], "lr": kwargs["lr"] * 2}, {"params": rest}]
        opts.append(
            cls(
                groups,
                **({"foreach": False} if cls.__module__.startswith("torch") else {}),
                **kwargs,
            )
        )
    for t, (x, y) in enumerate(batches()):
        for model, opt in zip(models, opts):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            if t % 3 == 1:
                model[2].bias.grad = None
            opt.step()
    assert_close(models[1], models[0], dtype)


# -- Schedulers -------------------------------------------------------------------


def _schedulers():
    S = torch.optim.lr_scheduler
    return {
        "StepLR": lambda o: S.StepLR(o, 7, gamma=0.5),
        "MultiStepLR": lambda o: S.MultiStepLR(o, [5, 20], gamma=0.3),
        "ExponentialLR": lambda o: S.ExponentialLR(o, 0.95),
        "CosineAnnealingLR": lambda o: S.CosineAnnealingLR(o, 20),
        "CosineAnnealingWarmRestarts": lambda o: S.CosineAnnealingWarmRestarts(o, 8, 2),
        "CyclicLR": lambda o: S.CyclicLR(o, 1e-4, 1e-2, step_size_up=5, cycle_momentum=False),
        "OneCycleLR": lambda o: S.OneCycleLR(o, 1e-2, total_steps=STEPS),  # cycles betas
        "LinearLR": lambda o: S.LinearLR(o, 0.2, 1.0, total_iters=10),
        "ConstantLR": lambda o: S.ConstantLR(o, 0.5, total_iters=10),
        "PolynomialLR": lambda o: S.PolynomialLR(o, total_iters=30, power=2.0),
        "LambdaLR": lambda o: S.LambdaLR(o, lambda t: 1 / (1 + t)),
        "MultiplicativeLR": lambda o: S.MultiplicativeLR(o, lambda t: 0.97),
        "SequentialLR": lambda o: S.SequentialLR(
            o, [S.ConstantLR(o, 0.5, total_iters=5), S.ExponentialLR(o, 0.9)], [5]
        ),
        "ChainedScheduler": lambda o: S.ChainedScheduler(
            [S.ConstantLR(o, 0.5, total_iters=5), S.ExponentialLR(o, 0.9)]
        ),
        "ReduceLROnPlateau": lambda o: _Plateau(S.ReduceLROnPlateau(o, patience=2)),
        "SWALR": lambda o: torch.optim.swa_utils.SWALR(o, swa_lr=1e-3, anneal_epochs=5),
    }


class _Plateau:
    """ReduceLROnPlateau stepped with a metric that stops improving."""

    def __init__(self, scheduler):
        self.scheduler, self.t = scheduler, 0

    def step(self):
        self.t += 1
        self.scheduler.step(max(1.0, 10.0 - self.t))


@pytest.mark.parametrize("name", sorted(_schedulers()))
def test_torch_schedulers_drive_it(name, dtype):
    make = _schedulers()[name]
    models = [make_model("mlp"), make_model("mlp")]
    opts = [
        torch.optim.Adam(models[0].parameters(), lr=1e-2, foreach=False),
        cot.Adam(models[1].parameters(), lr=1e-2),
    ]
    schedulers = [make(opt) for opt in opts]
    data = batches()
    for model, opt, scheduler in zip(models, opts, schedulers):
        train(model, opt, data, scheduler)
    assert opts[1].param_groups[0]["lr"] == opts[0].param_groups[0]["lr"]
    assert_close(models[1], models[0], dtype)


def test_cyclic_momentum_drives_sgd(dtype):
    models = [make_model("mlp"), make_model("mlp")]
    opts = [
        torch.optim.SGD(models[0].parameters(), lr=1e-2, momentum=0.9, foreach=False),
        cot.SGD(models[1].parameters(), lr=1e-2, momentum=0.9),
    ]
    data = batches()
    for model, opt in zip(models, opts):
        train(
            model,
            opt,
            data,
            torch.optim.lr_scheduler.CyclicLR(
                opt, 1e-3, 1e-1, step_size_up=4, base_momentum=0.8, max_momentum=0.95
            ),
        )
    assert_close(models[1], models[0], dtype)


# -- Checkpoints across the two libraries -------------------------------------------


def _round_trip(state_dict):
    buffer = io.BytesIO()
    torch.save(state_dict, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


@pytest.mark.parametrize("row", TORCH_ROWS, ids=lambda r: r.name)
@pytest.mark.parametrize("direction", ["torch-to-cyoptim", "cyoptim-to-torch"])
def test_checkpoint_cross_load_mid_run(row, direction, dtype):
    """Half a run in one library, torch.save/torch.load(weights_only=True), the
    rest in the other: as an uninterrupted torch run."""
    kwargs = torch_kwargs(row, dtype)
    flags = dict(next(iter(flag_grid(row))))
    kwargs.update({k: v for k, v in flags.items() if k not in kwargs})
    torch_cls, our_cls = getattr(torch.optim, row.name), getattr(cot, row.name)
    first, second = (
        (torch_cls, our_cls) if direction == "torch-to-cyoptim" else (our_cls, torch_cls)
    )

    def build(cls, model):
        extra = {"foreach": False} if cls is torch_cls else {}
        return cls(model.parameters(), **extra, **kwargs)

    data = batches()
    reference_model = make_model("mlp")
    train(reference_model, build(torch_cls, reference_model), data)

    model = make_model("mlp")
    opt = build(first, model)
    train(model, opt, data[: STEPS // 2])
    saved = _round_trip(opt.state_dict())
    resumed = build(second, model)
    resumed.load_state_dict(saved)
    train(model, resumed, data[STEPS // 2 :])
    assert_close(model, reference_model, dtype)


def test_adagrad_state_exists_from_the_constructor_as_in_torch():
    ours = cot.Adagrad([torch.zeros(3)], initial_accumulator_value=0.5)
    theirs = torch.optim.Adagrad([torch.zeros(3)], initial_accumulator_value=0.5)
    a, b = ours.state_dict()["state"], theirs.state_dict()["state"]
    assert a.keys() == b.keys() == {0}
    assert all(torch.equal(a[0][k], b[0][k]) for k in ("step", "sum"))
    theirs.load_state_dict(_round_trip(ours.state_dict()))


def test_state_dict_and_pickle_round_trip():
    model = make_model("mlp")
    opt = cot.AdamW(model.parameters(), lr=1e-2, amsgrad=True)
    data = batches()
    train(model, opt, data[:10])
    twin_model = copy.deepcopy(model)
    twin = cot.AdamW(twin_model.parameters(), lr=1e-2, amsgrad=True)
    twin.load_state_dict(_round_trip(opt.state_dict()))
    unpickled_model = copy.deepcopy(model)
    unpickled = pickle.loads(pickle.dumps(opt))
    # pickle copies the param tensors: point the copy at its own model.
    unpickled.param_groups[0]["params"] = list(unpickled_model.parameters())
    unpickled.state = {
        p: unpickled.state[q] for p, q in zip(unpickled_model.parameters(), unpickled.state)
    }
    for m, o in ((model, opt), (twin_model, twin), (unpickled_model, unpickled)):
        train(m, o, data[10:])
    for other in (twin_model, unpickled_model):
        for a, b in zip(model.parameters(), other.parameters()):
            assert torch.equal(a, b)


# -- Mixed precision: GradScaler ------------------------------------------------------


@pytest.mark.parametrize("name", ["SGD", "Adam", "RMSprop"])
def test_grad_scaler(name):
    """GradScaler hands grad_scale/found_inf to the kernel: the same params as
    torch's optimizer unscaled by GradScaler, and an overflowing step is skipped."""
    models = [make_model("mlp"), make_model("mlp")]
    opts = [
        getattr(cot, name)(models[0].parameters(), lr=1e-2),
        getattr(torch.optim, name)(models[1].parameters(), lr=1e-2, foreach=False),
    ]
    scalers = [
        torch.amp.GradScaler("cpu", init_scale=2.0**12, growth_interval=5) for _ in range(2)
    ]
    for t, (x, y) in enumerate(batches(20)):
        for model, opt, scaler in zip(models, opts, scalers):
            opt.zero_grad()
            scaler.scale(torch.nn.functional.cross_entropy(model(x), y)).backward()
            if t == 7:
                model[0].weight.grad[0, 0] = float("inf")
            scaler.step(opt)
            scaler.update()
    assert scalers[0].get_scale() == scalers[1].get_scale() < 2.0**12 * 2**3
    assert_close(models[0], models[1], torch.float32)


@pytest.mark.parametrize("name", ["Adam", "LAMB", "SGD"])
def test_grad_scale_and_found_inf_directly(name):
    p = torch.nn.Parameter(torch.ones(5))
    opt = getattr(cot, name)([p], lr=0.1)
    p.grad = torch.full((5,), 8.0)
    opt.grad_scale, opt.found_inf = torch.tensor(4.0), torch.tensor(1.0)
    opt.step()
    assert torch.equal(p.detach(), torch.ones(5)) and not opt.state[p]
    assert torch.equal(p.grad, torch.full((5,), 8.0))
    opt.found_inf = torch.tensor(0.0)
    opt.step()
    assert torch.equal(p.grad, torch.full((5,), 2.0))  # unscaled in place, as torch fused
    twin = torch.nn.Parameter(torch.ones(5))
    twin.grad = torch.full((5,), 2.0)
    getattr(cot, name)([twin], lr=0.1).step()
    assert torch.equal(p, twin)


# -- Zero copy, and the outside world moving things ------------------------------------


def test_updates_the_tensors_own_memory():
    model = make_model("mlp")
    opt = cot.Adam(model.parameters(), lr=1e-2)
    data = batches(3)
    train(model, opt, data[:1])
    pointers = {
        id(p): (p.data_ptr(), opt.state[p]["exp_avg"].data_ptr()) for p in model.parameters()
    }
    before = [p.detach().clone() for p in model.parameters()]
    train(model, opt, data[1:])
    for p, old in zip(model.parameters(), before):
        assert (p.data_ptr(), opt.state[p]["exp_avg"].data_ptr()) == pointers[id(p)]
        assert not torch.equal(p, old)


def _both(kind="mlp"):
    models = [make_model(kind), make_model(kind)]
    opts = [
        torch.optim.Adam(models[0].parameters(), lr=1e-2, foreach=False),
        cot.Adam(models[1].parameters(), lr=1e-2),
    ]
    return models, opts


def test_state_entry_replaced_by_assignment():
    """As ZeroRedundancyOptimizer.load_state_dict does: the new tensor is used and updated."""
    models, opts = _both()
    data = batches(20)
    for t, (x, y) in enumerate(data):
        for model, opt in zip(models, opts):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            if t == 10:
                for p in model.parameters():
                    opt.state[p]["exp_avg"] = opt.state[p]["exp_avg"].clone()
                    opt.state[p]["step"] = opt.state[p]["step"].clone()
            opt.step()
    assert_close(models[1], models[0], torch.float32)
    replaced = opts[1].state[next(models[1].parameters())]["exp_avg"]
    assert not torch.equal(replaced, torch.zeros_like(replaced))


def test_param_data_reassigned():
    """As ZeRO's bucket views do: p.data moves to new storage, the next step updates it."""
    models, opts = _both()
    data = batches(20)
    bucket = None
    for t, (x, y) in enumerate(data):
        for model, opt in zip(models, opts):
            if t == 10:
                params = list(model.parameters())
                bucket = torch.cat([p.detach().flatten() for p in params])
                offset = 0
                for p in params:
                    p.data = bucket[offset : offset + p.numel()].view_as(p)
                    offset += p.numel()
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
    assert_close(models[1], models[0], torch.float32)
    first = next(models[1].parameters())
    assert first.data_ptr() == bucket.data_ptr()
    assert torch.equal(first.detach().flatten(), bucket[: first.numel()])


def test_param_groups_swapped_before_each_step():
    """DeepSpeed's ZeRO-Offload pattern: one flat fp32 partition per group;
    ``optimizer.param_groups = [group]`` before each step, state read back as
    ``optimizer.state[flat]["exp_avg"]``; after the first step DeepSpeed keeps
    narrowed views of each state tensor (one per model param), which must see
    every later step."""
    results = []
    for cls, extra in ((torch.optim.Adam, {"foreach": False}), (cot.Adam, {})):
        torch.manual_seed(0)
        flats = [torch.randn(1000, requires_grad=True), torch.randn(300, requires_grad=True)]
        opt = cls([{"params": [flats[0]]}], lr=1e-2, **extra)
        groups = [opt.param_groups[0], dict(opt.param_groups[0], params=[flats[1]])]
        g = torch.Generator().manual_seed(3)
        views = None
        for _ in range(10):
            for flat, group in zip(flats, groups):
                flat.grad = torch.randn(flat.shape, generator=g)
                opt.param_groups = [group]
                opt.step()
            if views is None:
                views = [
                    opt.state[f][name].narrow(0, 100, 50)
                    for f in flats
                    for name in ("exp_avg", "exp_avg_sq")
                ]
        results.append(
            [f.detach().clone() for f in flats]
            + [opt.state[f]["exp_avg"].narrow(0, 0, 100) for f in flats]
        )
        state = [opt.state[f][name][100:150] for f in flats for name in ("exp_avg", "exp_avg_sq")]
        for view, now in zip(views, state):
            assert torch.equal(view, now)
    for a, b in zip(*results):
        assert ((a - b).norm() / b.norm()).item() < 1e-6


def test_no_stale_pointer_after_load_state_dict():
    """load_state_dict replaces every state tensor: the next step writes the new ones."""
    model = make_model("mlp")
    opt = cot.Adam(model.parameters(), lr=1e-2)
    data = batches(4)
    train(model, opt, data[:2])
    old = [opt.state[p]["exp_avg"] for p in model.parameters()]
    frozen = [t.clone() for t in old]
    opt.load_state_dict(_round_trip(opt.state_dict()))
    train(model, opt, data[2:])
    for p, t, f in zip(model.parameters(), old, frozen):
        assert torch.equal(t, f)  # the replaced tensors are left alone
        assert opt.state[p]["exp_avg"] is not t
        assert not torch.equal(opt.state[p]["exp_avg"], f)


def test_autograd_sees_the_in_place_update():
    """As with torch's in-place updates, a backward through a graph that saved
    a param the step changed is refused instead of silently wrong."""
    w = torch.nn.Parameter(torch.randn(4, 4))
    opt = cot.SGD([w], lr=0.1)
    loss = (w @ w).sum()
    w.grad = torch.ones(4, 4)
    opt.step()
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        loss.backward()


# -- Torch's base class behaviour -------------------------------------------------------


def test_base_class_behaviour():
    model = make_model("mlp")
    opt = cot.AdamW(model.named_parameters(), lr=1e-2)
    assert isinstance(opt, torch.optim.Optimizer) and isinstance(opt, cot.Optimizer)
    assert opt.param_groups[0]["param_names"][0] == "0.weight"
    calls = []
    opt.register_step_pre_hook(lambda o, a, k: calls.append("pre"))
    opt.register_step_post_hook(lambda o, a, k: calls.append("post"))
    x, y = batches(1)[0]

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        return loss

    loss = opt.step(closure)
    assert isinstance(loss, torch.Tensor) and calls == ["pre", "post"]
    opt.zero_grad()
    assert all(p.grad is None for p in model.parameters())
    extra = torch.nn.Parameter(torch.randn(3))
    opt.add_param_group({"params": [("extra", extra)], "lr": 0.5})
    extra.grad = torch.ones(3)
    before = extra.detach().clone()
    opt.step()
    assert not torch.equal(extra, before) and opt.param_groups[1]["lr"] == 0.5
    assert opt.defaults == torch.optim.AdamW([torch.zeros(1)]).defaults | {"lr": 1e-2}


@pytest.mark.parametrize("row", registry.OPTIMIZERS, ids=lambda r: r.name)
def test_signature_and_defaults_are_torchs(row):
    import inspect

    cls = getattr(cot, row.name)
    assert issubclass(cls, torch.optim.Optimizer) and cls.__module__ == "cyoptim.torch"
    if row.in_torch:
        theirs = getattr(torch.optim, row.name)
        ours = list(inspect.signature(cls).parameters.values())
        torchs = list(inspect.signature(theirs).parameters.values())
        # torch's parameters, in order; then cyoptim's low-precision options
        # (keyword-only) where the kernel stages 16-bit storage.
        assert ours[: len(torchs)] == torchs
        low = ["master_weights", "state_dtype", "stochastic_rounding", "seed"]
        assert [p.name for p in ours[len(torchs) :]] == (
            low if row.kernel in precision.STAGED_KERNELS else []
        )
        assert all(p.kind is p.KEYWORD_ONLY for p in ours[len(torchs) :])
        assert cls([torch.zeros(1)]).defaults == theirs([torch.zeros(1)]).defaults
    else:
        assert {"foreach", "fused"} <= set(cls([torch.zeros(1)]).defaults)
    for flag in ("foreach", "fused"):
        if flag in inspect.signature(cls).parameters:
            cls([torch.zeros(1)], **{flag: True})  # accepted: always fused


def test_validation_uses_torchs_wording():
    with pytest.raises(ValueError, match="Invalid learning rate: -1"):
        cot.Adam([torch.zeros(1)], lr=-1)
    with pytest.raises(ValueError, match="Invalid beta parameter at index 0"):
        cot.Lion([torch.zeros(1)], betas=(1.5, 0.9))
    with pytest.raises(ValueError, match="param group 1: Invalid learning rate"):
        cot.SGD([{"params": [torch.zeros(1)]}, {"params": [torch.zeros(2)], "lr": -0.1}])


@pytest.mark.parametrize("flag", ["capturable", "differentiable"])
def test_capturable_and_differentiable_refused(flag):
    with pytest.raises(ValueError, match=f"does not support {flag}=True"):
        cot.Adam([torch.zeros(1)], **{flag: True})
    opt = cot.Adam([torch.zeros(1)])
    opt.param_groups[0][flag] = True
    opt.param_groups[0]["params"][0].grad = torch.ones(1)
    with pytest.raises(ValueError, match=f"does not support {flag}=True"):
        opt.step()


def test_import_cyoptim_does_not_import_torch():
    import subprocess
    import sys

    code = "import sys, cyoptim; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


# -- Bad input: a clear error naming the param, and nothing written ----------------------


def _snapshot(model, opt):
    return (
        [p.detach().clone() for p in model.parameters()],
        {
            id(p): {
                k: (v.clone() if isinstance(v, torch.Tensor) else v)
                for k, v in opt.state[p].items()
            }
            for p in model.parameters()
        },
    )


def _assert_unchanged(model, opt, snapshot):
    params, state = snapshot
    for p, old in zip(model.parameters(), params):
        assert torch.equal(p.detach(), old)
        assert set(opt.state[p]) == set(state[id(p)])
        for k, v in state[id(p)].items():
            now = opt.state[p][k]
            assert torch.equal(now, v) if isinstance(v, torch.Tensor) else now == v


def _bad_grad_cases():
    def sparse(model):
        w = model[2].weight
        w.grad = w.grad.to_sparse()

    def non_contiguous(model):
        w = model[0].weight
        w.grad = w.grad.t().contiguous().t()

    def float64_param(model):
        w = model[2].bias
        w.data = w.data.double()
        w.grad = torch.ones_like(w.data)

    def non_contiguous_param(model):
        w = model[2].weight
        w.data = w.data.t().contiguous().t()
        w.grad = torch.ones_like(w.data)

    def meta_param(model, opt):
        w = torch.empty(3, device="meta", requires_grad=True)
        w.grad = torch.empty(3, device="meta")
        opt.param_groups[0]["params"].append(w)

    return {
        "sparse grad": (sparse, ValueError, r"grad of param '2.weight'.*sparse"),
        "non-contiguous grad": (
            non_contiguous,
            ValueError,
            r"grad of param '0.weight'.*not contiguous",
        ),
        "mixed dtypes in a group": (
            float64_param,
            TypeError,
            r"param '2.bias'.*dtype torch.float64.*own group",
        ),
        "non-contiguous param": (
            non_contiguous_param,
            ValueError,
            r"param '2.weight'.*not contiguous",
        ),
        "param not on the CPU": (meta_param, ValueError, r"param 4 of param group 0.*device meta"),
    }


@pytest.mark.parametrize("case", sorted(_bad_grad_cases()))
@pytest.mark.parametrize("name", ["Adam", "SGD", "LAMB", "NAdam"])
def test_bad_tensors_change_nothing(case, name):
    model = make_model("mlp")
    opt = (
        getattr(cot, name)(model.named_parameters(), lr=1e-2, momentum=0.9)
        if name == "SGD"
        else getattr(cot, name)(model.named_parameters(), lr=1e-2)
    )
    data = batches(2)
    train(model, opt, data[:1])
    opt.zero_grad()
    torch.nn.functional.cross_entropy(model(data[1][0]), data[1][1]).backward()
    corrupt, error, message = _bad_grad_cases()[case]
    if case == "param not on the CPU":
        corrupt(model, opt)
    else:
        corrupt(model)
    snapshot = _snapshot(model, opt)
    with pytest.raises(error, match=message):
        opt.step()
    _assert_unchanged(model, opt, snapshot)


def test_bad_state_entries_change_nothing():
    model = make_model("mlp")
    opt = cot.Adam(model.named_parameters(), lr=1e-2)
    data = batches(2)
    train(model, opt, data[:1])
    torch.nn.functional.cross_entropy(model(data[1][0]), data[1][1]).backward()
    last = model[2].bias
    for key, value, message in [
        ("exp_avg", torch.zeros(3), r"state\['exp_avg'\] of param '2.bias'.*shape \(3,\)"),
        ("exp_avg_sq", torch.zeros(5, dtype=torch.float64), r"exp_avg_sq.*dtype torch.float64"),
        ("step", torch.zeros(2), r"state\['step'\] of param '2.bias'.*one-element"),
        ("step", 3.0, r"state\['step'\] of param '2.bias'.*one-element"),
    ]:
        good = opt.state[last][key]
        opt.state[last][key] = value
        snapshot = _snapshot(model, opt)
        with pytest.raises((TypeError, ValueError), match=message):
            opt.step()
        _assert_unchanged(model, opt, snapshot)
        opt.state[last][key] = good


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: torch.zeros(4, 4).t(), "not contiguous"),
        (lambda: torch.zeros(4, dtype=torch.int32), "dtype torch.int32"),
        (lambda: torch.zeros(4).to_sparse(), "layout"),
    ],
)
def test_bad_params_refused_at_construction(make, message):
    with pytest.raises((TypeError, ValueError), match=message):
        cot.Adam([make()])
    with pytest.raises(
        ValueError,
        match="dtype torch.bfloat16; supported dtypes are torch.float32 and torch.float64",
    ):
        cot.LAMB([torch.zeros(4, dtype=torch.bfloat16)])  # LAMB's kernel is not staged


def test_mixed_dtypes_refused_at_construction():
    with pytest.raises(TypeError, match="own group"):
        cot.Adam([torch.zeros(2), torch.zeros(2, dtype=torch.float64)])
    opt = cot.Adam(
        [{"params": [torch.zeros(2)]}, {"params": [torch.zeros(2, dtype=torch.float64)]}]
    )
    assert len(opt.param_groups) == 2


def test_numpy_twin_untouched_by_torch_module():
    """cyoptim's NumPy classes work the same after cyoptim.torch is imported."""
    w = np.zeros(3, np.float32)
    cyoptim.Adam([w], lr=0.1).step([np.ones(3, np.float32)])
    np.testing.assert_allclose(w, -0.1, rtol=1e-6)


# -- The demo and the benchmark --------------------------------------------------------


def test_torch_demo_trains_both_side_by_side(capsys):
    from cyoptim.torch.demo import run_torch_demo

    results = run_torch_demo(["adam", "lion"], epochs=2, seed=0)
    by_key = {(r["optimizer"], r["implementation"]): r for r in results}
    assert set(by_key) == {
        ("Adam", "cyoptim.torch"),
        ("Adam", "torch.optim"),
        ("Lion", "cyoptim.torch"),
    }
    ours, theirs = by_key["Adam", "cyoptim.torch"], by_key["Adam", "torch.optim"]
    assert ours["final_loss"] == pytest.approx(theirs["final_loss"], rel=1e-4)
    assert ours["test_accuracy"] == pytest.approx(theirs["test_accuracy"], abs=0.01)
    assert ours["final_loss"] < 1.0 and 0 < ours["step_seconds"] < ours["seconds"]
    table = capsys.readouterr().out
    assert "Adam" in table and "step speed-up" in table


def test_torch_demo_command_line():
    import subprocess
    import sys

    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "cyoptim",
            "demo",
            "--framework",
            "torch",
            "--epochs",
            "1",
            "--optimizers",
            "sgd",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "SGD" in out and "torch loss" in out
    bad = subprocess.run(
        [sys.executable, "-m", "cyoptim", "demo", "--framework", "torch", "--schedule", "cosine"],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and "--schedule" in bad.stderr


def test_bench_measures_every_available_peer():
    from cyoptim.torch import bench

    row = bench.measure_model(
        "many-small", ("cyoptim.torch", "torch-fused", "torch-default"), rounds=1, min_seconds=0.01
    )
    assert row["tensors"] == 400 and set(row["seconds"]) == {
        "cyoptim.torch",
        "torch-fused",
        "torch-default",
    }
    assert all(s > 0 for s in row["seconds"].values())
    assert "best peer / ours" in bench.format_results([row])


def test_bench_pauses_between_turns_and_refuses_a_negative_pause(monkeypatch, capsys):
    from cyoptim.torch import bench

    slept = []
    monkeypatch.setattr(bench.time, "sleep", slept.append)
    bench.measure_model(
        "many-small", ("cyoptim.torch", "torch-fused"), rounds=2, min_seconds=0.01, pause=0.05
    )
    assert slept == [0.05] * 4
    with pytest.raises(SystemExit):
        bench.main(["--pause-ms", "-1"])
    assert "expected a finite number >= 0" in capsys.readouterr().err
