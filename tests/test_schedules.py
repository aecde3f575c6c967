"""Schedules: pure functions by hand, scheduler classes side by side with torch.

The torch comparisons run each scheduler for 300 steps over two param groups
with different base rates, on cyoptim's side and on torch.optim's, and compare
every group's rate (and momentum, for the cycling schedulers) at every step:
|ours - torch| <= 1e-12 * max(|torch|, largest |torch| of that group's column).
"""

import math
import pickle

import numpy as np
import pytest

import cyoptim
from cyoptim import schedules as S

STEPS = 300


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


# --------------------------------------------------------------- pure schedules
def test_constant_and_piecewise():
    assert S.constant_schedule(0.3)(12345) == 0.3
    s = S.piecewise_constant([10, 20], [1.0, 0.5, 0.25])
    assert [s(t) for t in (0, 9, 10, 19, 20, 1000)] == [1.0, 1.0, 0.5, 0.5, 0.25, 0.25]


def test_step_and_multistep():
    s = S.step_decay(2.0, step_size=3, gamma=0.5)
    assert [s(t) for t in range(7)] == [2.0, 2.0, 2.0, 1.0, 1.0, 1.0, 0.5]
    m = S.multistep_decay(1.0, [5, 2, 5], gamma=0.1)  # unsorted, repeated milestone
    assert m(1) == 1.0 and m(2) == 0.1 and m(4) == 0.1
    assert m(5) == pytest.approx(1e-3, rel=1e-15)


def test_exponential_decay():
    s = S.exponential_decay(1.0, transition_steps=10, decay_rate=0.5)
    assert s(0) == 1.0 and s(10) == 0.5 and s(20) == 0.25
    assert s(5) == pytest.approx(math.sqrt(0.5), rel=1e-15)
    st = S.exponential_decay(1.0, 10, 0.5, staircase=True, transition_begin=5)
    assert [st(t) for t in (0, 5, 14, 15, 25)] == [1.0, 1.0, 1.0, 0.5, 0.25]
    clipped = S.exponential_decay(1.0, 1, 0.5, end_value=0.2)
    assert clipped(1) == 0.5 and clipped(3) == 0.2 and clipped(100) == 0.2


def test_linear_polynomial_warmup():
    lin = S.linear_schedule(1.0, 3.0, transition_steps=4, transition_begin=2)
    assert [lin(t) for t in (0, 2, 3, 6, 50)] == [1.0, 1.0, 1.5, 3.0, 3.0]
    poly = S.polynomial_schedule(1.0, 0.1, power=2, transition_steps=10)
    assert poly(5) == pytest.approx(0.9 * 0.25 + 0.1, rel=1e-15)
    assert poly(10) == pytest.approx(0.1) and poly(30) == pytest.approx(0.1)
    w = S.linear_warmup(0.4, warmup_steps=4, init_value=0.2)
    assert [w(t) for t in (0, 2, 4, 9)] == pytest.approx([0.2, 0.3, 0.4, 0.4], rel=1e-15)


def test_cosine_decay_and_alpha():
    s = S.cosine_decay(2.0, decay_steps=100, alpha=0.1)
    assert s(0) == 2.0
    assert s(50) == pytest.approx(0.2 + 1.8 * 0.5, rel=1e-15)
    assert s(100) == pytest.approx(0.2, rel=1e-15) and s(1000) == pytest.approx(0.2)
    assert S.cosine_decay(1.0, 4, end_value=0.5)(4) == 0.5


def test_cosine_warm_restarts_periods():
    s = S.cosine_warm_restarts(1.0, first_period=3, period_mult=2, min_value=0.0)
    # periods 3, 6, 12: restarts at steps 3 and 9, 21
    for restart in (0, 3, 9, 21):
        assert s(restart) == 1.0
    assert s(6) == pytest.approx(0.5, abs=1e-15)  # half-way through [3, 9)
    assert s(2) == pytest.approx((1 + math.cos(2 * math.pi / 3)) / 2, rel=1e-15)
    flat = S.cosine_warm_restarts(1.0, 4)
    assert [flat(t) for t in (0, 4, 8)] == [1.0, 1.0, 1.0]


def test_cyclic_schedule_modes():
    tri = S.cyclic_schedule(1.0, 3.0, step_size_up=2, step_size_down=4)
    assert [tri(t) for t in range(7)] == pytest.approx([1, 2, 3, 2.5, 2, 1.5, 1], rel=1e-15)
    tri2 = S.cyclic_schedule(0.0, 1.0, step_size_up=1, mode="triangular2")
    assert [tri2(t) for t in range(7)] == [0.0, 1.0, 0.0, 0.5, 0.0, 0.25, 0.0]
    exp = S.cyclic_schedule(0.0, 1.0, step_size_up=1, mode="exp_range", gamma=0.5)
    assert exp(1) == 0.5 and exp(3) == 0.125
    custom = S.cyclic_schedule(0.0, 1.0, 1, scale_fn=lambda c: 1.0 / c)
    assert custom(1) == 1.0 and custom(3) == 0.5


def test_one_cycle_by_hand():
    s = S.one_cycle_schedule(
        100,
        max_value=1.0,
        pct_start=0.25,
        div_factor=10,
        final_div_factor=100,
        anneal_strategy="linear",
    )
    assert s(0) == 0.1 and s(24) == 1.0 and s(99) == pytest.approx(1e-3, rel=1e-14)
    assert s(12) == pytest.approx(0.1 + 0.9 * 12 / 24, rel=1e-15)
    three = S.one_cycle_schedule(100, 1.0, pct_start=0.25, three_phase=True)
    assert three(24) == 1.0 and three(48) == pytest.approx(0.04) and three(99) < 1e-5
    m = S.one_cycle_momentum(100, base_momentum=0.8, max_momentum=0.9, pct_start=0.25)
    assert m(0) == 0.9 and m(24) == 0.8 and m(99) == pytest.approx(0.9)
    with pytest.raises(
        ValueError, match="Tried to step 101 times. The specified number of total steps is 100"
    ):
        s(101)


def test_join_and_warmup_cosine():
    s = S.join_schedules(
        [S.constant_schedule(1.0), S.linear_schedule(2.0, 4.0, 2), S.constant_schedule(9.0)],
        [3, 10],
    )
    assert [s(t) for t in (0, 2, 3, 4, 5, 9, 10)] == [1.0, 1.0, 2.0, 3.0, 4.0, 4.0, 9.0]
    wc = S.warmup_cosine_decay(0.0, 1.0, warmup_steps=10, decay_steps=30, end_value=0.1)
    assert wc(0) == 0.0 and wc(5) == 0.5 and wc(10) == 1.0
    assert wc(20) == pytest.approx(0.55, rel=1e-14) and wc(30) == pytest.approx(0.1)
    assert S.warmup_cosine_decay(0.0, 1.0, 0, 10)(0) == 1.0


def test_schedules_are_pure():
    s = S.one_cycle_schedule(50, 0.3)
    forward = [s(t) for t in range(51)]
    assert [s(t) for t in reversed(range(51))] == forward[::-1]


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda: S.step_decay(1.0, -1), "step_size must be an integer >= 1"),
        (lambda: S.step_decay(1.0, 0), "step_size must be an integer >= 1"),
        (lambda: S.piecewise_constant([5, 3], [1, 2, 3]), "sorted"),
        (lambda: S.piecewise_constant([5], [1]), "one more value than boundaries"),
        (lambda: S.exponential_decay(1.0, 0, 0.5), "transition_steps must be > 0"),
        (lambda: S.exponential_decay(1.0, 1, -0.5), "decay_rate must be >= 0"),
        (lambda: S.cosine_decay(1.0, 0), "decay_steps must be an integer >= 1"),
        (lambda: S.cosine_decay(float("nan"), 10), "init_value must be finite"),
        (lambda: S.cosine_warm_restarts(1.0, 0), "first_period"),
        (lambda: S.cyclic_schedule(1.0, 0.5), r"max_value \(0.5\) must be >= base_value"),
        (lambda: S.cyclic_schedule(0.1, 1.0, mode="sawtooth"), "mode must be one of"),
        (lambda: S.cyclic_schedule(0.1, 1.0, step_size_up=0), "step_size_up must be > 0"),
        (lambda: S.one_cycle_schedule(100, 1.0, pct_start=1.5), "pct_start"),
        (lambda: S.one_cycle_schedule(10, 1.0, pct_start=0.1), "without steps"),
        (lambda: S.one_cycle_schedule(100, 1.0, anneal_strategy="exp"), "anneal_strategy"),
        (lambda: S.join_schedules([S.constant_schedule(1)], [3]), "one more schedule"),
        (lambda: S.join_schedules([S.constant_schedule(1)] * 3, [5, 5]), "strictly increasing"),
        (lambda: S.warmup_cosine_decay(0, 1, 10, 10), "greater than warmup_steps"),
    ],
)
def test_schedule_validation(build, message):
    with pytest.raises(ValueError, match=message):
        build()


def test_schedule_type_errors():
    with pytest.raises(TypeError, match="step_size must be an integer"):
        S.step_decay(1.0, 2.5)
    with pytest.raises(TypeError, match="must be callable"):
        S.join_schedules([S.constant_schedule(1), 3.0], [2])


# ------------------------------------------------------------ side by side with torch
def _groups(lib, dtype):
    a, b = lib.zeros(3, dtype=dtype), lib.zeros(2, dtype=dtype)
    return [a, b], [{"params": [a], "lr": 0.1}, {"params": [b], "lr": 0.03}]


def _make_optimizer(side, kind, torch):
    """Two groups with different base rates; returns (optimizer, step function)."""
    if side == "ours":
        params, groups = _groups(np, np.float64)
        opt = (
            cyoptim.SGD(groups, lr=0.1, momentum=0.9)
            if kind == "sgd"
            else cyoptim.Adam(groups, lr=0.1)
        )
        grads = [np.full(p.shape, 0.5) for p in params]
        return opt, lambda: opt.step(grads)
    params, groups = _groups(torch, torch.float64)
    for p in params:
        p.grad = torch.full_like(p, 0.5)
    opt = (
        torch.optim.SGD(groups, lr=0.1, momentum=0.9)
        if kind == "sgd"
        else torch.optim.Adam(groups, lr=0.1)
    )
    return opt, lambda: opt.step()  # late lookup: torch's schedulers wrap opt.step


def _trajectory(module, make, side, kind, torch, metrics=None):
    """Rates and momenta of both groups after construction and after each step."""
    opt, opt_step = _make_optimizer(side, kind, torch)
    sched = make(module, opt)

    def record():
        lrs = [g["lr"] for g in opt.param_groups]
        moms = [g["momentum"] if kind == "sgd" else g["betas"][0] for g in opt.param_groups]
        assert list(sched.get_last_lr()) == lrs
        return lrs + moms

    rows = [record()]
    for t in range(STEPS):
        opt_step()
        sched.step(metrics[t]) if metrics is not None else sched.step()
        rows.append(record())
    return np.array(rows, dtype=np.float64), sched


def _assert_same(ours, theirs):
    scale = np.maximum(np.abs(theirs), np.abs(theirs).max(axis=0))
    err = np.abs(ours - theirs)
    worst = np.unravel_index(np.argmax(err / np.where(scale > 0, scale, 1)), err.shape)
    assert np.all(err <= 1e-12 * scale), (
        f"step {worst[0]}, column {worst[1]}: ours {ours[worst]!r}, torch {theirs[worst]!r}"
    )


def _compare(torch, make, kind="sgd", metrics=None, exact=False):
    ours, _ = _trajectory(S, make, "ours", kind, torch, metrics)
    theirs, _ = _trajectory(torch.optim.lr_scheduler, make, "torch", kind, torch, metrics)
    _assert_same(ours, theirs)
    if exact:
        np.testing.assert_array_equal(ours, theirs)
    assert ours[:, 0].min() < ours[:, 0].max(), (
        "the schedule never changed the rate: the comparison would prove nothing"
    )
    return ours


CASES = {
    "StepLR": [
        lambda M, o: M.StepLR(o, step_size=7, gamma=0.5),
        lambda M, o: M.StepLR(o, 1, 0.97),
        lambda M, o: M.StepLR(o, step_size=100),
    ],
    "MultiStepLR": [
        lambda M, o: M.MultiStepLR(o, [10, 50, 50, 200], gamma=0.5),
        lambda M, o: M.MultiStepLR(o, milestones=[1]),
    ],
    "ExponentialLR": [
        lambda M, o: M.ExponentialLR(o, 0.99),
        lambda M, o: M.ExponentialLR(o, gamma=0.9),
        lambda M, o: M.ExponentialLR(o, gamma=1.005),
    ],
    "CosineAnnealingLR": [
        lambda M, o: M.CosineAnnealingLR(o, T_max=10),
        lambda M, o: M.CosineAnnealingLR(o, 100, eta_min=1e-3),
        lambda M, o: M.CosineAnnealingLR(o, T_max=300, eta_min=0.01),
        lambda M, o: M.CosineAnnealingLR(o, T_max=1),
    ],
    "CosineAnnealingWarmRestarts": [
        lambda M, o: M.CosineAnnealingWarmRestarts(o, T_0=10),
        lambda M, o: M.CosineAnnealingWarmRestarts(o, 7, T_mult=2, eta_min=1e-3),
        lambda M, o: M.CosineAnnealingWarmRestarts(o, T_0=1, T_mult=3),
    ],
    "LinearLR": [
        lambda M, o: M.LinearLR(o),
        lambda M, o: M.LinearLR(o, start_factor=0.01, total_iters=50),
        lambda M, o: M.LinearLR(o, 1.0, 0.1, total_iters=100),
        lambda M, o: M.LinearLR(o, 0.5, 0.0, total_iters=300),
    ],
    "ConstantLR": [
        lambda M, o: M.ConstantLR(o),
        lambda M, o: M.ConstantLR(o, factor=0.5, total_iters=100),
    ],
    "PolynomialLR": [
        lambda M, o: M.PolynomialLR(o),
        lambda M, o: M.PolynomialLR(o, total_iters=100, power=2.0),
        lambda M, o: M.PolynomialLR(o, total_iters=300, power=0.5),
    ],
    "LambdaLR": [
        lambda M, o: M.LambdaLR(o, lambda e: 0.95**e),
        lambda M, o: M.LambdaLR(o, [lambda e: 1 / (1 + e), lambda e: 0.99**e]),
        lambda M, o: M.LambdaLR(o, S.warmup_cosine_decay(0.0, 1.0, 20, 250)),
    ],
    "SequentialLR": [
        lambda M, o: M.SequentialLR(
            o,
            [M.LinearLR(o, 0.1, total_iters=10), M.CosineAnnealingLR(o, T_max=90)],
            milestones=[10],
        ),
        lambda M, o: M.SequentialLR(
            o,
            [M.ConstantLR(o, 0.5, 5), M.ExponentialLR(o, 0.98), M.StepLR(o, 10)],
            milestones=[20, 100],
        ),
        lambda M, o: M.SequentialLR(
            o, [M.CosineAnnealingWarmRestarts(o, 8), M.PolynomialLR(o, 50, 2.0)], milestones=[64]
        ),
    ],
}


def _swalr(M):
    """SWALR of either side: torch keeps it in torch.optim.swa_utils."""
    if M is S:
        return S.SWALR
    from torch.optim.swa_utils import SWALR

    return SWALR


def _halve_every_50(step):
    return 0.5 if step % 50 == 0 else 1.0


CASES.update(
    {
        "MultiplicativeLR": [
            lambda M, o: M.MultiplicativeLR(o, lambda e: 0.99),
            lambda M, o: M.MultiplicativeLR(o, [_halve_every_50, lambda e: 1 - 1e-3 * (e % 7)]),
            lambda M, o: M.MultiplicativeLR(o, lr_lambda=lambda e: 1.01 if e < 40 else 0.98),
        ],
        "SWALR": [
            lambda M, o: _swalr(M)(o, swa_lr=0.01),
            lambda M, o: _swalr(M)(o, [0.05, 0.001], anneal_epochs=50, anneal_strategy="linear"),
            lambda M, o: _swalr(M)(o, 0.02, anneal_epochs=299),
            lambda M, o: _swalr(M)(o, swa_lr=0.2, anneal_epochs=1, anneal_strategy="linear"),
        ],
        "ChainedScheduler": [
            # torch's documentation example, and its optimizer argument left out
            lambda M, o: M.ChainedScheduler(
                [M.ConstantLR(o, factor=0.1, total_iters=20), M.ExponentialLR(o, gamma=0.9)],
                optimizer=o,
            ),
            lambda M, o: M.ChainedScheduler(
                [
                    M.LinearLR(o, 0.01, total_iters=30),
                    M.CosineAnnealingLR(o, T_max=100, eta_min=1e-3),
                ]
            ),
            lambda M, o: M.ChainedScheduler(
                [M.StepLR(o, 7, 0.8), M.MultiStepLR(o, [0, 10, 50]), M.PolynomialLR(o, 250, 0.5)]
            ),
            lambda M, o: M.ChainedScheduler(
                [
                    M.CosineAnnealingLR(o, 40),
                    M.MultiplicativeLR(o, lambda e: 0.995),
                    M.LinearLR(o, 1.0, 0.5, total_iters=100),
                ]
            ),
            lambda M, o: M.ChainedScheduler(
                [M.LambdaLR(o, lambda e: 1 / (1 + e)), M.ExponentialLR(o, 0.95)]
            ),
            lambda M, o: M.ChainedScheduler(
                [M.ExponentialLR(o, 0.95), M.LambdaLR(o, lambda e: 0.99**e)]
            ),
            lambda M, o: M.ChainedScheduler(
                [M.CosineAnnealingWarmRestarts(o, 8, 2), M.ConstantLR(o, 0.5, 10)]
            ),
            lambda M, o: M.ChainedScheduler(
                [M.ConstantLR(o, 0.25, 100), _swalr(M)(o, 0.01, anneal_epochs=50)]
            ),
            lambda M, o: M.ChainedScheduler([M.ExponentialLR(o, 0.98)]),
        ],
    }
)
CYCLING_CHAINS = [
    lambda M, o: M.ChainedScheduler(
        [M.CyclicLR(o, 0.01, 0.1, 10, mode="triangular2"), M.MultiplicativeLR(o, lambda e: 0.99)]
    ),
    lambda M, o: M.ChainedScheduler(
        [M.ExponentialLR(o, 0.99), M.OneCycleLR(o, 0.1, total_steps=STEPS), M.StepLR(o, 30, 0.5)]
    ),
]
PARAMS = [
    pytest.param(name, i, id=f"{name}-{i}")
    for name, makes in CASES.items()
    for i in range(len(makes))
]


# Computed step by step in torch's arithmetic (chains: each scheduler's
# recursive form, or the closed form torch uses too): bitwise torch's.
BITWISE = ("MultiplicativeLR", "SWALR", "ChainedScheduler")


@pytest.mark.parametrize("name, index", PARAMS)
def test_lr_sequence_matches_torch(torch, name, index):
    _compare(torch, CASES[name][index], exact=name in BITWISE)


@pytest.mark.parametrize("index", range(len(CYCLING_CHAINS)))
def test_chains_with_cycling_schedulers_match_torch(torch, index):
    ours = _compare(torch, CYCLING_CHAINS[index], exact=True)
    assert ours[:, 2].min() < ours[:, 2].max()  # the momentum cycles too


def test_swalr_without_anneal_matches_torch(torch):
    """anneal_epochs=0: the rate is swa_lr from construction on."""
    make = lambda M, o: _swalr(M)(o, swa_lr=[0.01, 0.002], anneal_epochs=0)  # noqa: E731
    ours, _ = _trajectory(S, make, "ours", "sgd", torch)
    theirs, _ = _trajectory(torch.optim.lr_scheduler, make, "torch", "sgd", torch)
    np.testing.assert_array_equal(ours, theirs)
    assert np.all(ours[:, :2] == [0.01, 0.002])


def test_swa_recipe_matches_torch(torch):
    """torch's recipe: a cosine schedule, then SWALR from the rate it left, with
    the weights averaged by AveragedParams / AveragedModel over the same steps."""
    from torch.optim import swa_utils

    lrs = {}
    averages = {}
    for side, module in (("ours", S), ("torch", torch.optim.lr_scheduler)):
        opt, opt_step = _make_optimizer(side, "sgd", torch)
        params = [p for g in opt.param_groups for p in g["params"]]
        if side == "ours":
            avg = cyoptim.AveragedParams(params, mode="swa")
            update = avg.update
        else:
            model = torch.nn.Module()
            model.ps = torch.nn.ParameterList([torch.nn.Parameter(p) for p in params])
            avg = swa_utils.AveragedModel(model)
            update = lambda: avg.update_parameters(model)  # noqa: E731
        cosine = module.CosineAnnealingLR(opt, T_max=100)
        swa = _swalr(module)(opt, swa_lr=0.005, anneal_epochs=5)
        rates = []
        for t in range(150):
            opt_step()
            if t > 100:
                update()
                swa.step()
            else:
                cosine.step()
            rates.append([g["lr"] for g in opt.param_groups])
        lrs[side] = np.array(rates)
        averages[side] = (
            [a.copy() for a in avg.params]
            if side == "ours"
            else [p.detach().numpy().copy() for p in avg.module.ps]
        )
    _assert_same(lrs["ours"], lrs["torch"])
    np.testing.assert_array_equal(lrs["ours"][110:], [[0.005, 0.005]] * 40)
    # The params themselves agree to ~1e-10 only: the cosine rates (closed form
    # here, torch's recursion there) differ in the last bits, and SGD with
    # momentum carries that along.
    for a, b in zip(averages["ours"], averages["torch"]):
        np.testing.assert_allclose(a, b, rtol=1e-9)


CYCLING = {
    "CyclicLR": [
        lambda M, o: M.CyclicLR(o, base_lr=0.01, max_lr=0.1, step_size_up=20),
        lambda M, o: M.CyclicLR(o, [0.01, 0.001], [0.1, 0.05], 10, 30, mode="triangular2"),
        lambda M, o: M.CyclicLR(
            o, 0.01, 0.1, 15, mode="exp_range", gamma=0.99, base_momentum=0.7, max_momentum=0.95
        ),
        lambda M, o: M.CyclicLR(
            o, 0.01, 0.1, 7, 5, scale_fn=lambda x: 0.5 ** (x / 50), scale_mode="iterations"
        ),
        lambda M, o: M.CyclicLR(o, 0.001, 0.01, 25, cycle_momentum=False),
    ],
    "OneCycleLR": [
        lambda M, o: M.OneCycleLR(o, max_lr=[0.1, 0.05], total_steps=STEPS),
        lambda M, o: M.OneCycleLR(
            o, 0.1, total_steps=STEPS, three_phase=True, anneal_strategy="linear"
        ),
        lambda M, o: M.OneCycleLR(
            o,
            0.2,
            epochs=10,
            steps_per_epoch=30,
            pct_start=0.5,
            div_factor=10.0,
            final_div_factor=100.0,
        ),
        lambda M, o: M.OneCycleLR(
            o, 0.1, total_steps=400, base_momentum=[0.8, 0.85], max_momentum=0.9, three_phase=True
        ),
        lambda M, o: M.OneCycleLR(o, 0.1, total_steps=STEPS, cycle_momentum=False),
    ],
}
CYCLING_PARAMS = [
    pytest.param(name, i, kind, id=f"{name}-{i}-{kind}")
    for name, makes in CYCLING.items()
    for i in range(len(makes))
    for kind in ("sgd", "adam")
]


@pytest.mark.parametrize("name, index, kind", CYCLING_PARAMS)
def test_lr_and_momentum_sequence_matches_torch(torch, name, index, kind):
    ours = _compare(torch, CYCLING[name][index], kind)
    momentum = ours[:, 2]
    cycles_momentum = index < len(CYCLING[name]) - 1  # the last case has it off
    assert (momentum.min() < momentum.max()) == cycles_momentum


def test_one_cycle_past_total_steps_like_torch(torch):
    for module, side in ((S, "ours"), (torch.optim.lr_scheduler, "torch")):
        opt, opt_step = _make_optimizer(side, "sgd", torch)
        sched = module.OneCycleLR(opt, 0.1, total_steps=5)
        for _ in range(5):
            opt_step()
            sched.step()
        with pytest.raises(
            ValueError, match="Tried to step 6 times. The specified number of total steps is 5"
        ):
            sched.step()


def _plateau_metrics():
    rng = np.random.default_rng(0)
    base = np.concatenate(
        [np.linspace(1.0, 0.5, 60), np.full(80, 0.5), np.linspace(0.5, 0.2, 60), np.full(100, 0.2)]
    )
    return list(base + rng.normal(0, 0.002, base.size))


PLATEAU = [
    lambda M, o: M.ReduceLROnPlateau(o),
    lambda M, o: M.ReduceLROnPlateau(o, factor=0.5, patience=3, cooldown=4),
    lambda M, o: M.ReduceLROnPlateau(
        o, mode="max", patience=2, threshold=0.01, threshold_mode="abs"
    ),
    lambda M, o: M.ReduceLROnPlateau(o, patience=0, factor=0.7, min_lr=[1e-3, 1e-4]),
    lambda M, o: M.ReduceLROnPlateau(o, patience=1, factor=0.5, threshold=0.0, eps=1e-3),
]


@pytest.mark.parametrize("index", range(len(PLATEAU)))
def test_reduce_on_plateau_matches_torch(torch, index):
    metrics = _plateau_metrics()
    if index == 2:
        metrics = [-m for m in metrics]
    _compare(torch, PLATEAU[index], metrics=metrics)


# ------------------------------------------------------------- classes, no torch
def _sgd(lrs=(0.1, 0.03), **kw):
    groups = [{"params": [np.zeros(2)], "lr": lr} for lr in lrs]
    return cyoptim.SGD(groups, lr=0.1, momentum=0.9, **kw)


def test_per_group_rates_keep_ratios():
    opt = _sgd((0.1, 0.01))
    sched = S.CosineAnnealingLR(opt, T_max=20)
    for _ in range(7):
        sched.step()
    lr0, lr1 = (g["lr"] for g in opt.param_groups)
    assert lr1 / lr0 == pytest.approx(0.1, rel=1e-13)
    assert [g["initial_lr"] for g in opt.param_groups] == [0.1, 0.01]


def test_class_is_adapter_over_pure_function():
    opt = _sgd((0.2,))
    sched = S.StepLR(opt, step_size=3, gamma=0.5)
    pure = S.step_decay(0.2, 3, 0.5)
    for t in range(1, 12):
        sched.step()
        assert opt.param_groups[0]["lr"] == pure(t)


def test_momentum_cycling_writes_betas_tuple():
    w = np.zeros(2)
    opt = cyoptim.Adam([w], lr=0.1, betas=(0.9, 0.99))
    S.CyclicLR(opt, 0.01, 0.1, step_size_up=4, base_momentum=0.8, max_momentum=0.9).step()
    betas = opt.param_groups[0]["betas"]
    assert isinstance(betas, tuple) and betas[1] == 0.99
    assert betas[0] == pytest.approx(0.9 - 0.1 * 0.25, rel=1e-14)


class _Halving:
    """A callable object: LambdaLR saves its __dict__ in state_dict, as torch."""

    def __init__(self):
        self.rate = 0.5

    def __call__(self, step):
        return self.rate**step


STATEFUL = [
    lambda o: S.StepLR(o, 5, 0.5),
    lambda o: S.MultiStepLR(o, [3, 8]),
    lambda o: S.ExponentialLR(o, 0.9),
    lambda o: S.CosineAnnealingLR(o, 10, 0.001),
    lambda o: S.CosineAnnealingWarmRestarts(o, 4, 2),
    lambda o: S.CyclicLR(o, 0.01, 0.1, 4),
    lambda o: S.OneCycleLR(o, 0.1, total_steps=40),
    lambda o: S.LinearLR(o, 0.1, total_iters=10),
    lambda o: S.ConstantLR(o, 0.5, 6),
    lambda o: S.PolynomialLR(o, 20, 2.0),
    lambda o: S.LambdaLR(o, _Halving()),
    lambda o: S.SequentialLR(o, [S.LinearLR(o, 0.1, total_iters=5), S.ExponentialLR(o, 0.9)], [5]),
    lambda o: S.MultiplicativeLR(o, _Halving()),
    lambda o: S.SWALR(o, [0.01, 0.02], anneal_epochs=20),
    lambda o: S.ChainedScheduler(
        [
            S.LinearLR(o, 0.1, total_iters=15),
            S.StepLR(o, 4, 0.7),
            S.CyclicLR(o, 0.01, 0.1, 6),
            S.MultiplicativeLR(o, _Halving()),
        ]
    ),
]


@pytest.mark.parametrize("index", range(len(STATEFUL)))
def test_state_dict_round_trip(index):
    """A scheduler restored from state_dict (pickled) continues the same sequence."""
    make = STATEFUL[index]
    opt_a = _sgd()
    a = make(opt_a)
    for _ in range(13):
        a.step()
    saved_sched = pickle.loads(pickle.dumps(a.state_dict()))
    saved_groups = [
        dict((k, v) for k, v in g.items() if k != "params") for g in opt_a.param_groups
    ]
    with_lambdas = [s for s in getattr(a, "_schedulers", [a]) if hasattr(s, "lr_lambdas")]
    for s in with_lambdas:
        s.lr_lambdas[0].rate = 0.25  # the saved __dict__ must bring 0.5 back
    opt_b = _sgd()
    b = make(opt_b)
    for group, saved in zip(opt_b.param_groups, saved_groups):
        group.update(saved)
    b.load_state_dict(saved_sched)
    for s, twin in zip(
        with_lambdas, [s for s in getattr(b, "_schedulers", [b]) if hasattr(s, "lr_lambdas")]
    ):
        s.lr_lambdas[0].rate = 0.5
        assert twin.lr_lambdas[0].rate == 0.5
    assert b.get_last_lr() == a.get_last_lr()
    for _ in range(20):
        a.step()
        b.step()
        assert b.get_last_lr() == a.get_last_lr()
        assert [g["lr"] for g in opt_b.param_groups] == [g["lr"] for g in opt_a.param_groups]
        assert [g["momentum"] for g in opt_b.param_groups] == [
            g["momentum"] for g in opt_a.param_groups
        ]


def test_plateau_state_dict_round_trip():
    opt_a, opt_b = _sgd(), _sgd()
    a = S.ReduceLROnPlateau(opt_a, patience=1, cooldown=2)
    for m in [1.0, 0.9, 0.95, 0.96]:
        a.step(m)
    b = S.ReduceLROnPlateau(opt_b)
    b.load_state_dict(pickle.loads(pickle.dumps(a.state_dict())))
    for group, other in zip(opt_b.param_groups, opt_a.param_groups):
        group["lr"] = other["lr"]
    for m in [0.97, 0.98, 0.99, 1.0, 0.5, 0.6, 0.7]:
        a.step(m)
        b.step(m)
        assert b.get_last_lr() == a.get_last_lr()
        assert (b.num_bad_epochs, b.cooldown_counter, b.best) == (
            a.num_bad_epochs,
            a.cooldown_counter,
            a.best,
        )


def test_resume_with_last_epoch():
    opt = _sgd()
    sched = S.StepLR(opt, 3, 0.5)
    for _ in range(4):
        sched.step()
    resumed = S.StepLR(opt, 3, 0.5, last_epoch=4)
    assert resumed.last_epoch == 5
    assert resumed.get_last_lr() == pytest.approx([0.1 * 0.5, 0.03 * 0.5], rel=1e-15)
    with pytest.raises(KeyError, match="initial_lr"):
        S.StepLR(_sgd(), 3, last_epoch=4)


class _NotAnOptimizer:
    param_groups = [{"lr": 0.1, "params": []}]
    defaults = {"lr": 0.1, "momentum": 0.0}


@pytest.mark.parametrize(
    "make",
    [
        lambda o: S.StepLR(o, 3),
        lambda o: S.CosineAnnealingLR(o, 10),
        lambda o: S.CyclicLR(o, 0.01, 0.1),
        lambda o: S.OneCycleLR(o, 0.1, total_steps=10),
        lambda o: S.ReduceLROnPlateau(o),
        lambda o: S.LambdaLR(o, lambda e: 1.0),
        lambda o: S.SequentialLR(o, [], []),
        lambda o: S.SWALR(o, 0.01),
        lambda o: S.MultiplicativeLR(o, lambda e: 1.0),
    ],
)
def test_non_cyoptim_optimizer_is_type_error(make):
    with pytest.raises(TypeError, match="_NotAnOptimizer is not an Optimizer"):
        make(_NotAnOptimizer())


def test_torch_optimizer_is_type_error(torch):
    opt = torch.optim.SGD([torch.zeros(2, requires_grad=True)], lr=0.1)
    with pytest.raises(TypeError, match="SGD is not an Optimizer"):
        S.ExponentialLR(opt, 0.9)


@pytest.mark.parametrize(
    "build, error, message",
    [
        (lambda o: S.StepLR(o, -1), ValueError, "step_size must be an integer >= 1"),
        (lambda o: S.StepLR(o, 0), ValueError, "step_size"),
        (lambda o: S.MultiStepLR(o, [-3, 5]), ValueError, "milestone must be an integer >= 0"),
        (lambda o: S.ExponentialLR(o, -0.5), ValueError, "decay_rate must be >= 0"),
        (lambda o: S.CosineAnnealingLR(o, 0), ValueError, "T_max must be an integer >= 1"),
        (
            lambda o: S.CosineAnnealingWarmRestarts(o, 0),
            ValueError,
            "Expected positive integer T_0",
        ),
        (lambda o: S.CosineAnnealingWarmRestarts(o, 5, T_mult=0), ValueError, "T_mult >= 1"),
        (lambda o: S.CyclicLR(o, 0.1, 0.01), ValueError, r"max_lr \(0.01\) must be >= base_lr"),
        (lambda o: S.CyclicLR(o, 0.01, 0.1, mode="x"), ValueError, "mode is invalid"),
        (lambda o: S.CyclicLR(o, [0.01], 0.1), ValueError, "base_lr must have the same length"),
        (lambda o: S.OneCycleLR(o, 0.1), ValueError, "You must define either total_steps"),
        (
            lambda o: S.OneCycleLR(o, 0.1, total_steps=0),
            ValueError,
            "Expected positive integer total_steps, but got 0",
        ),
        (
            lambda o: S.OneCycleLR(o, 0.1, epochs=2, steps_per_epoch=-1),
            ValueError,
            "steps_per_epoch",
        ),
        (
            lambda o: S.OneCycleLR(o, 0.1, total_steps=10, pct_start=-0.1),
            ValueError,
            "Expected float between 0 and 1 pct_start",
        ),
        (
            lambda o: S.OneCycleLR(o, 0.1, total_steps=10, anneal_strategy="cosine"),
            ValueError,
            "anneal_strategy",
        ),
        (lambda o: S.LinearLR(o, start_factor=0), ValueError, "Starting multiplicative factor"),
        (lambda o: S.LinearLR(o, end_factor=2), ValueError, "Ending multiplicative factor"),
        (lambda o: S.LinearLR(o, total_iters=0), ValueError, "total_iters"),
        (lambda o: S.ConstantLR(o, factor=1.5), ValueError, "Constant multiplicative factor"),
        (lambda o: S.PolynomialLR(o, total_iters=-2), ValueError, "transition_steps"),
        (lambda o: S.LambdaLR(o, [lambda e: 1.0]), ValueError, "Expected 2 lr_lambdas, but got 1"),
        (lambda o: S.LambdaLR(o, 0.5), TypeError, "lr_lambda should be a function"),
        (lambda o: S.ReduceLROnPlateau(o, factor=1.0), ValueError, "Factor should be < 1.0."),
        (lambda o: S.ReduceLROnPlateau(o, mode="up"), ValueError, "mode up is unknown!"),
        (lambda o: S.ReduceLROnPlateau(o, threshold_mode="x"), ValueError, "threshold mode x"),
        (lambda o: S.ReduceLROnPlateau(o, min_lr=[0.0]), ValueError, "expected 2 min_lrs, got 1"),
        (lambda o: S.ReduceLROnPlateau(o, patience=-1), ValueError, "patience"),
        (lambda o: S.SequentialLR(o, [], []), ValueError, "at least one scheduler"),
        (
            lambda o: S.SequentialLR(o, [S.StepLR(o, 2), S.StepLR(o, 3)], []),
            ValueError,
            "one more than the number of milestone points",
        ),
        (
            lambda o: S.SequentialLR(o, [S.StepLR(o, 2), S.ReduceLROnPlateau(o)], [3]),
            ValueError,
            "does not support `ReduceLROnPlateau`",
        ),
        (
            lambda o: S.SequentialLR(o, [S.StepLR(o, 2), S.StepLR(_sgd(), 3)], [3]),
            ValueError,
            "same optimizer",
        ),
        (
            lambda o: S.MultiplicativeLR(o, [lambda e: 1.0]),
            ValueError,
            "Expected 2 lr_lambdas, but got 1",
        ),
        (lambda o: S.MultiplicativeLR(o, 0.5), TypeError, "lr_lambda should be a function"),
        (
            lambda o: S.SWALR(o, 0.01, anneal_strategy="exp"),
            ValueError,
            "anneal_strategy must be one of 'cos' or 'linear', instead got exp",
        ),
        (
            lambda o: S.SWALR(o, 0.01, anneal_epochs=-1),
            ValueError,
            "anneal_epochs must be equal or greater than 0, got -1",
        ),
        (
            lambda o: S.SWALR(o, 0.01, anneal_epochs=2.5),
            ValueError,
            "anneal_epochs must be equal or greater than 0, got 2.5",
        ),
        (lambda o: S.SWALR(o, [0.01]), ValueError, "swa_lr must have the same length"),
        (lambda o: S.SWALR(o, "0.01"), TypeError, "swa_lr must be a real number"),
        (
            lambda o: S.ChainedScheduler([]),
            ValueError,
            "ChainedScheduler expects at least one scheduler to be chained, but got no scheduler.",
        ),
        (
            lambda o: S.ChainedScheduler([S.StepLR(o, 2), S.ReduceLROnPlateau(o)]),
            ValueError,
            "ChainedScheduler does not support `ReduceLROnPlateau`",
        ),
        (
            lambda o: S.ChainedScheduler([S.StepLR(o, 2), S.StepLR(_sgd(), 3)]),
            ValueError,
            "ChainedScheduler expects all schedulers to belong to the same optimizer",
        ),
        (
            lambda o: S.ChainedScheduler([S.StepLR(o, 2)], optimizer=_sgd()),
            ValueError,
            "same optimizer",
        ),
        (
            lambda o: S.ChainedScheduler([S.StepLR(o, 2), object()]),
            TypeError,
            "ChainedScheduler at index 1 should have `optimizer` as its attribute.",
        ),
        (
            lambda o: S.ChainedScheduler([S.SequentialLR(o, [S.StepLR(o, 2)], [])]),
            TypeError,
            "scheduler at index 0 is a SequentialLR, not a cyoptim scheduler",
        ),
    ],
)
def test_scheduler_validation(build, error, message):
    opt = _sgd()
    with pytest.raises(error, match=message):
        build(opt)


def test_failed_construction_leaves_rates_alone():
    opt = _sgd()
    with pytest.raises(ValueError):
        S.StepLR(opt, -1)
    with pytest.raises(ValueError):
        S.CyclicLR(opt, 0.5, 0.1)
    with pytest.raises(ValueError):
        S.SWALR(opt, 0.01, anneal_strategy="exp")
    assert [g["lr"] for g in opt.param_groups] == [0.1, 0.03]
    assert all("initial_lr" not in g and "swa_lr" not in g for g in opt.param_groups)


def test_chain_step_refused_changes_nothing():
    """A scheduler of the chain refusing a step leaves every scheduler and rate as before."""
    opt = _sgd()
    decay = S.ExponentialLR(opt, 0.9)
    cycle = S.OneCycleLR(opt, 0.1, total_steps=5)
    sched = S.ChainedScheduler([decay, cycle])
    for _ in range(5):
        sched.step()
    groups = [dict(g) for g in opt.param_groups]
    state = sched.state_dict()
    with pytest.raises(ValueError, match="Tried to step 6 times"):
        sched.step()
    assert opt.param_groups == groups
    assert decay.last_epoch == 5 and sched.state_dict() == state


def test_chain_of_one_scheduler_is_that_scheduler():
    opt_a, opt_b = _sgd(), _sgd()
    alone = S.MultiStepLR(opt_a, [3, 6], 0.5)
    chain = S.ChainedScheduler([S.MultiStepLR(opt_b, [3, 6], 0.5)])
    for _ in range(10):
        alone.step()
        chain.step()
        assert chain.get_last_lr() == alone.get_last_lr()


def test_cycle_momentum_needs_momentum_or_betas():
    class NoMomentum(cyoptim.SGD):
        def __init__(self, params):
            super().__init__(params, lr=0.1)
            del self.defaults["momentum"]

    opt = NoMomentum([np.zeros(2)])
    with pytest.raises(ValueError, match="optimizer must support momentum or beta1"):
        S.CyclicLR(opt, 0.01, 0.1)
    with pytest.raises(ValueError, match="optimizer must support momentum or beta1"):
        S.OneCycleLR(opt, 0.1, total_steps=10)
    S.CyclicLR(opt, 0.01, 0.1, cycle_momentum=False).step()
