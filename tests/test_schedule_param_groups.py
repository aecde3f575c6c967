"""Schedulers when the optimizer gains a param group (``opt.add_param_group``) mid-run.

torch 2.13 is the reference. Its recursive schedulers (StepLR, MultiStepLR,
ExponentialLR, ConstantLR, LinearLR, PolynomialLR, and CosineAnnealingLR up to
its first climb back from the minimum) carry the new group along from its
rate; ReduceLROnPlateau gives it ``min_lr`` when that was one number. cyoptim
must give the same rates. Where torch fails (the other schedulers; a list of
min_lrs), cyoptim refuses with an error before it changes anything.
"""

import copy

import numpy as np
import pytest

import cyoptim
from cyoptim import schedules as S


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


def _optimizer(side, torch):
    """SGD over one group at lr 0.1 and a param for a second group; (opt, spare, step)."""
    if side == "ours":
        p, q = np.zeros(3), np.zeros(2)
        opt = cyoptim.SGD([{"params": [p], "lr": 0.1}], lr=0.1, momentum=0.9)
        grads = [np.full(3, 0.5)]
        return opt, q, lambda: opt.step(grads + [np.full(2, 0.5)] * (len(opt.param_groups) - 1))
    p, q = torch.zeros(3, dtype=torch.float64), torch.zeros(2, dtype=torch.float64)
    p.grad, q.grad = torch.full_like(p, 0.5), torch.full_like(q, 0.5)
    opt = torch.optim.SGD([{"params": [p], "lr": 0.1}], lr=0.1, momentum=0.9)
    return opt, q, lambda: opt.step()  # late lookup: torch's schedulers wrap opt.step


def _run(module, make, side, torch, add_at, steps, metrics=None):
    """Step `steps` times, adding a group (lr 0.03) after step `add_at`; all rates."""
    opt, spare, opt_step = _optimizer(side, torch)
    sched = make(module, opt)
    rows = []
    for t in range(steps):
        if t == add_at:
            opt.add_param_group({"params": [spare], "lr": 0.03})
        opt_step()
        sched.step(metrics[t]) if metrics is not None else sched.step()
        lrs = [g["lr"] for g in opt.param_groups]
        assert list(sched.get_last_lr()) == lrs
        rows.append(lrs + [np.nan] * (2 - len(lrs)))
    return np.array(rows, dtype=np.float64)


def _assert_same_rates(ours, theirs):
    assert np.array_equal(np.isnan(ours), np.isnan(theirs))
    ours, theirs = np.nan_to_num(ours), np.nan_to_num(theirs)
    scale = np.maximum(np.abs(theirs), np.abs(theirs).max(axis=0))
    worst = np.unravel_index(np.argmax(np.abs(ours - theirs) - 1e-12 * scale), ours.shape)
    assert np.all(np.abs(ours - theirs) <= 1e-12 * scale), (
        f"step {worst[0]}, group {worst[1]}: ours {ours[worst]!r}, torch {theirs[worst]!r}"
    )


FOLLOWED = {
    "StepLR": lambda M, o: M.StepLR(o, step_size=3, gamma=0.5),
    "StepLR-gamma0": lambda M, o: M.StepLR(o, step_size=4, gamma=0.0),
    "MultiStepLR": lambda M, o: M.MultiStepLR(o, [2, 9, 9, 20], gamma=0.5),
    "ExponentialLR": lambda M, o: M.ExponentialLR(o, 0.9),
    "ConstantLR": lambda M, o: M.ConstantLR(o, factor=0.5, total_iters=12),
    "LinearLR": lambda M, o: M.LinearLR(o, start_factor=0.1, total_iters=15),
    "LinearLR-down": lambda M, o: M.LinearLR(o, 1.0, 0.0, total_iters=20),
    "PolynomialLR": lambda M, o: M.PolynomialLR(o, total_iters=18, power=2.0),
    "CosineAnnealingLR": lambda M, o: M.CosineAnnealingLR(o, T_max=40, eta_min=1e-3),
    "SequentialLR": lambda M, o: M.SequentialLR(
        o, [M.LinearLR(o, 0.1, total_iters=5), M.ExponentialLR(o, 0.95)], milestones=[5]
    ),
    "ChainedScheduler": lambda M, o: M.ChainedScheduler(
        [M.ExponentialLR(o, 0.9), M.StepLR(o, 5, 0.5), M.LinearLR(o, 0.2, total_iters=10)]
    ),
}


# (scheduler, add_at) where the group arrives after the schedule's last change
STATIC_AFTER_ADDING = {("ConstantLR", 16), ("LinearLR", 16)}


# SequentialLR restarts its next scheduler at the milestone (5), which needs the
# base rates: groups added before it are refused there (test_refused_...).
FOLLOWED_PARAMS = [
    pytest.param(name, add_at, id=f"{name}-{add_at}")
    for name in FOLLOWED
    for add_at in (0, 7, 16)
    if (name, add_at) != ("SequentialLR", 0)
]


@pytest.mark.parametrize("name, add_at", FOLLOWED_PARAMS)
def test_added_group_follows_torch(torch, name, add_at):
    make = FOLLOWED[name]
    ours = _run(S, make, "ours", torch, add_at, 30)
    theirs = _run(torch.optim.lr_scheduler, make, "torch", torch, add_at, 30)
    _assert_same_rates(ours, theirs)
    added = ours[add_at:, 1]
    if (name, add_at) in STATIC_AFTER_ADDING:
        assert np.all(added == 0.03)
    else:
        assert np.any(added != 0.03), "the added group's rate never moved: proves nothing"


def test_two_groups_added_at_different_steps(torch):
    def run(module, side):
        opt, spare, _ = _optimizer(side, torch)
        other = np.zeros(4) if side == "ours" else torch.zeros(4, dtype=torch.float64)
        sched = module.LinearLR(opt, start_factor=0.2, total_iters=20)
        rates = []
        for t in range(25):
            if t == 4:
                opt.add_param_group({"params": [spare], "lr": 0.05})
            if t == 11:
                opt.add_param_group({"params": [other], "lr": 0.2})
            params = [p for g in opt.param_groups for p in g["params"]]
            if side == "ours":
                opt.step([np.full(p.shape, 0.5) for p in params])
            else:
                for p in params:
                    p.grad = torch.full_like(p, 0.5)
                opt.step()
            sched.step()
            rates.append(
                [g["lr"] for g in opt.param_groups] + [np.nan] * (3 - len(opt.param_groups))
            )
        return np.array(rates)

    ours = run(S, "ours")
    _assert_same_rates(ours, run(torch.optim.lr_scheduler, "torch"))
    assert ours[11, 1] > ours[4, 1] and ours[-1, 2] > ours[11, 2]


def _swalr(M):
    """SWALR of either side: torch keeps it in torch.optim.swa_utils."""
    if M is S:
        return S.SWALR
    from torch.optim.swa_utils import SWALR

    return SWALR


def _state(opt, sched):
    """Everything a refused step must leave alone."""
    groups = [{k: v for k, v in g.items() if k != "params"} for g in opt.param_groups]
    return copy.deepcopy(groups), copy.deepcopy(sched.state_dict())


REFUSED = {
    "CosineAnnealingWarmRestarts": (lambda M, o: M.CosineAnnealingWarmRestarts(o, T_0=5), 0),
    "CyclicLR": (lambda M, o: M.CyclicLR(o, 0.01, 0.1, step_size_up=4), 0),
    "OneCycleLR": (lambda M, o: M.OneCycleLR(o, 0.1, total_steps=50), 0),
    "LambdaLR": (lambda M, o: M.LambdaLR(o, lambda t: 0.9**t), 0),
    "MultiplicativeLR": (lambda M, o: M.MultiplicativeLR(o, lambda t: 0.9), 0),
    "SWALR": (lambda M, o: _swalr(M)(o, swa_lr=0.01), 0),
    "ChainedScheduler": (
        lambda M, o: M.ChainedScheduler(
            [M.ExponentialLR(o, 0.9), M.LambdaLR(o, lambda t: 0.9**t)]
        ),
        0,
    ),
    # torch carries the group until the cosine climbs back from its minimum (step 11)
    "CosineAnnealingLR": (lambda M, o: M.CosineAnnealingLR(o, T_max=10), 11 - 4 - 1),
    # the sequence restarts LinearLR at the milestone: it needs the base rates
    "SequentialLR": (
        lambda M, o: M.SequentialLR(
            o, [M.ExponentialLR(o, 0.9), M.LinearLR(o, 0.5, total_iters=5)], milestones=[8]
        ),
        8 - 4 - 1,
    ),
}


@pytest.mark.parametrize("name", REFUSED)
def test_refused_before_anything_changes(torch, name):
    """Where torch 2.13 fails with an added group, cyoptim refuses up front."""
    make, good_steps = REFUSED[name]
    for module, side in ((S, "ours"), (torch.optim.lr_scheduler, "torch")):
        opt, spare, opt_step = _optimizer(side, torch)
        sched = make(module, opt)
        for _ in range(4):
            opt_step()
            sched.step()
        opt.add_param_group({"params": [spare], "lr": 0.03})
        for _ in range(good_steps):  # the steps torch can still take
            opt_step()
            sched.step()
        opt_step()
        if side == "torch":
            with pytest.raises((ValueError, KeyError)):
                sched.step()
            continue
        before = _state(opt, sched)
        for _ in range(2):  # refused again: nothing moved on
            with pytest.raises(ValueError, match="param group") as error:
                sched.step()
            assert _state(opt, sched) == before
        assert "added" in str(error.value) and "build" in str(error.value)


def test_fewer_groups_is_refused():
    opt = cyoptim.SGD([{"params": [np.zeros(2)]}, {"params": [np.zeros(3)]}], lr=0.1)
    sched = S.StepLR(opt, 2)
    del opt.param_groups[1]
    with pytest.raises(ValueError, match="the optimizer has 1 param groups, fewer than the 2"):
        sched.step()
    assert sched.last_epoch == 0 and opt.param_groups[0]["lr"] == 0.1


# ------------------------------------------------------------- ReduceLROnPlateau
def _plateau_metrics():
    return [
        1.0,
        0.9,
        0.95,
        0.96,
        0.97,
        0.5,
        0.6,
        0.7,
        0.8,
        0.9,
        0.9,
        0.9,
        0.95,
        0.99,
        1.0,
        1.0,
        0.4,
        0.41,
        0.42,
        0.43,
    ]


@pytest.mark.parametrize("add_at", [0, 2, 9])
@pytest.mark.parametrize("min_lr", [0.0, 0.02])
def test_plateau_with_added_group_matches_torch(torch, add_at, min_lr):
    def make(M, o):
        return M.ReduceLROnPlateau(o, factor=0.5, patience=1, min_lr=min_lr)

    metrics = _plateau_metrics()
    ours = _run(S, make, "ours", torch, add_at, len(metrics), metrics)
    theirs = _run(torch.optim.lr_scheduler, make, "torch", torch, add_at, len(metrics), metrics)
    _assert_same_rates(ours, theirs)
    assert ours[-1, 1] < 0.03 and ours[-1, 0] < 0.1  # both groups were cut


def test_plateau_with_min_lr_list_refuses_the_cut_like_torch(torch):
    """torch raises RuntimeError at the first cut; cyoptim too, with nothing changed."""
    message = r"The number of param groups in the `optimizer` \(2\) differs"
    for module, side in ((S, "ours"), (torch.optim.lr_scheduler, "torch")):
        opt, spare, _ = _optimizer(side, torch)
        sched = module.ReduceLROnPlateau(opt, patience=1, min_lr=[1e-4])
        opt.add_param_group({"params": [spare], "lr": 0.03})
        sched.step(1.0)
        sched.step(2.0)  # one bad step: no cut yet, no error
        with pytest.raises(RuntimeError, match=message):
            sched.step(3.0)  # the cut is due
        if side == "torch":
            continue
        assert [g["lr"] for g in opt.param_groups] == [0.1, 0.03]
        assert (sched.last_epoch, sched.num_bad_epochs, sched.best) == (2, 1, 1.0)
        sched.min_lrs = [1e-4, 1e-3]  # the fix torch's message asks for
        sched.step(3.0)
        assert [g["lr"] for g in opt.param_groups] == pytest.approx([0.01, 0.003])
