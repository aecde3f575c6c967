"""The generic test table: every property that holds for every optimizer, run for
every row of cyoptim.registry (as torch's OptimizerInfo and optax's alias tests).

A new optimizer gets all of these by adding its registry row: torch parity over
its flag combinations, bitwise equality with its NumPy twin, bitwise invariance
over thread counts and SIMD variants, state_dict round trips, bad grads and bad
state_dicts that change nothing, and non-finite values that propagate as in
torch. The per-optimizer test files keep only what is specific to one algorithm.
"""

import itertools

import numpy as np
import pytest
from conftest import torch_or_skip
from optim_harness import (
    TOLERANCE,
    assert_bad_grads_change_nothing,
    assert_equals_reference,
    assert_matches_torch,
    assert_state_dict_round_trip,
    assert_thread_and_variant_invariant,
    assert_unchanged,
    grad_sequence,
    groups_of,
    make_params,
    max_relative_error,
    snapshot,
)
from optimizer_table import optimizer_class, reference_class, row_settings

import cyoptim
from cyoptim import registry

ROWS = registry.OPTIMIZERS
TORCH_ROWS = [row for row in ROWS if row.in_torch]


def row_id(row):
    return row.name


def accepted(row, flags):
    """Whether the class accepts this flag combination (nesterov needs momentum, ...)."""
    try:
        optimizer_class(row)([np.zeros(1)], **flags)
    except ValueError:
        return False
    return True


def flag_combinations(rows):
    """A pytest param (row, flags) for every accepted combination of each row's test flags."""
    cases = []
    for row in rows:
        names = list(row_settings(row).flags)
        for values in itertools.product(*row_settings(row).flags.values()):
            flags = dict(zip(names, values))
            if accepted(row, flags):
                label = "-".join(f"{k}={v}" for k, v in flags.items())
                cases.append(pytest.param(row, flags, id=f"{row.name}-{label}"))
    return cases


def torch_settings(row, dtype):
    """The kwargs and second-group options of a row's torch comparison in this dtype."""
    kwargs = dict(row_settings(row).torch)
    lr_float64, lr_float32 = kwargs.pop("lr")
    lr = lr_float32 if dtype == np.float32 else lr_float64
    group = dict(row_settings(row).torch_group)
    if "lr_scale" in group:
        group["lr"] = group.pop("lr_scale") * lr
    return dict(kwargs, lr=lr), group


@pytest.mark.parametrize("row,flags", flag_combinations(TORCH_ROWS))
def test_matches_torch(row, flags, dtype):
    torch = torch_or_skip()
    kwargs, group = torch_settings(row, dtype)
    assert_matches_torch(
        optimizer_class(row),
        getattr(torch.optim, row.name),
        dict(kwargs, **flags),
        dtype,
        group_options=group,
    )


@pytest.mark.parametrize("row,flags", flag_combinations(ROWS))
def test_equals_numpy_reference(row, flags, dtype):
    assert_equals_reference(
        optimizer_class(row),
        reference_class(row),
        dict(row_settings(row).reference, **flags),
        dtype,
        group_options=dict(row_settings(row).reference_group),
    )


@pytest.mark.parametrize("row", ROWS, ids=row_id)
def test_thread_and_variant_invariant(row, dtype):
    assert_thread_and_variant_invariant(
        optimizer_class(row), dict(row_settings(row).invariance), dtype
    )


@pytest.mark.parametrize("row", ROWS, ids=row_id)
def test_state_dict_round_trip(row, dtype):
    assert_state_dict_round_trip(optimizer_class(row), dict(row_settings(row).invariance), dtype)


@pytest.mark.parametrize("row", ROWS, ids=row_id)
def test_bad_grads_change_nothing(row, dtype):
    assert_bad_grads_change_nothing(
        optimizer_class(row), dict(row_settings(row).invariance), dtype
    )


def trained(row):
    """An optimizer over two groups that has taken a step (so it has state)."""
    params = [np.ones((3, 4), np.float32), np.ones(5, np.float32), np.ones(2, np.float32)]
    opt = optimizer_class(row)(
        [{"params": params[:2]}, {"params": params[2:], "lr": 0.5}], **row_settings(row).invariance
    )
    opt.step([np.full(p.shape, 0.1, np.float32) for p in params])
    return opt


def broken_state_dicts(opt):
    """(state_dict, message) pairs that load_state_dict must refuse."""
    good = opt.state_dict()
    entry = good["state"][0]
    name = sorted(k for k, v in entry.items() if isinstance(v, np.ndarray))[0]

    def broken(edit):
        sd = opt.state_dict()
        edit(sd)
        return sd

    cases = [
        (broken(lambda sd: sd["param_groups"].pop()), "parameter groups"),
        (broken(lambda sd: sd["param_groups"][0]["params"].pop()), "doesn't match the size"),
        (
            broken(lambda sd: sd["state"][0].__setitem__(name, np.zeros(7, np.float32))),
            f"state '{name}' of param 0",
        ),
        (
            broken(
                lambda sd: sd["state"][0].__setitem__(
                    name, sd["state"][0][name].astype(np.float64)
                )
            ),
            f"state '{name}' of param 0",
        ),
        (
            broken(lambda sd: sd["state"][1].__setitem__("bogus", np.zeros(5, np.float32))),
            "state of param 1 has keys",
        ),
        (broken(lambda sd: sd["state"].__setitem__(9, {})), "param 9"),
        (
            broken(lambda sd: sd["param_groups"][1].__setitem__("lr", -2.0)),
            # torch's two wordings (Adafactor's is the second)
            r"(Invalid learning rate|Learning rate should be >= 0 but is): -2.0",
        ),
        ({"state": {}}, "keys 'state' and 'param_groups'"),
    ]
    # Param 1's own first array (Adafactor's params hold different buffers by shape).
    held = sorted(k for k, v in good["state"][1].items() if isinstance(v, np.ndarray))[0]
    if held in opt._required_state_names(opt.param_groups[1]):
        cases.append((broken(lambda sd: sd["state"][1].pop(held)), "state of param 1 has keys"))
    if "step" in entry:
        cases.append(
            (
                broken(lambda sd: sd["state"][0].__setitem__("step", 1.5)),
                "step must be a non-negative whole number",
            )
        )
    for scalar in [k for k, v in entry.items() if k != "step" and not isinstance(v, np.ndarray)]:
        cases.append(
            (
                broken(lambda sd: sd["state"][0].__setitem__(scalar, "x")),
                f"{scalar} must be a number",
            )
        )
    return cases


@pytest.mark.parametrize("row", ROWS, ids=row_id)
def test_bad_state_dicts_change_nothing(row):
    opt = trained(row)
    good = opt.state_dict()
    for bad, message in broken_state_dicts(opt):
        before = snapshot(opt)
        with pytest.raises((ValueError, TypeError), match=message):
            opt.load_state_dict(bad)
        assert_unchanged(opt, before)
    opt.load_state_dict(good)


def nonfinite_grads(dtype):
    """Two steps; the second grad holds a NaN, +inf and -inf among ordinary values."""
    rng = np.random.default_rng(3)
    first = rng.standard_normal(8).astype(dtype)
    second = rng.standard_normal(8).astype(dtype)
    second[[1, 4, 6]] = [np.nan, np.inf, -np.inf]
    return [first, second]


@pytest.mark.parametrize("row", ROWS, ids=row_id)
def test_nonfinite_grads_propagate_like_the_reference(row, dtype):
    """NaN and inf in a grad propagate exactly as the NumPy twin says: bitwise the
    same params and state, NaN positions included. They must show somewhere: in
    the params, or (Rprop, which moves by the grad's sign and takes torch's
    sign(NaN) = 0) in the state that keeps the grad."""
    params = [np.linspace(-1, 1, 8).astype(dtype)]
    twins = [params[0].copy()]
    fast = optimizer_class(row)(params, **row_settings(row).invariance)
    slow = reference_class(row)(twins, **row_settings(row).invariance)
    with np.errstate(all="ignore"):
        for g in nonfinite_grads(dtype):
            fast.step([g])
            slow.step([g.copy()])
    arrays = [params[0]] + [v for v in fast.state[0].values() if isinstance(v, np.ndarray)]
    assert not all(np.isfinite(a).all() for a in arrays), "a non-finite grad was silently absorbed"
    np.testing.assert_array_equal(params[0], twins[0])
    for name, value in fast.state_dict()["state"][0].items():
        np.testing.assert_array_equal(value, slow.state_dict()["state"][0][name])


@pytest.mark.parametrize("row", TORCH_ROWS, ids=row_id)
def test_nonfinite_grads_propagate_like_torch(row):
    """Where the grad is NaN or inf, the param is NaN or inf exactly where torch's is."""
    torch = torch_or_skip()
    params = [np.linspace(-1, 1, 8)]
    tensor = torch.tensor(params[0].copy(), requires_grad=True)
    kwargs = dict(row_settings(row).invariance)
    ours = optimizer_class(row)(params, **kwargs)
    theirs = getattr(torch.optim, row.name)([tensor], foreach=False, **kwargs)
    with np.errstate(all="ignore"):
        for g in nonfinite_grads(np.float64):
            ours.step([g])
            tensor.grad = torch.tensor(g)
            theirs.step()
    expected = tensor.detach().numpy()
    np.testing.assert_array_equal(np.isnan(params[0]), np.isnan(expected))
    np.testing.assert_array_equal(np.isinf(params[0]), np.isinf(expected))


def test_registry_names_every_public_optimizer_once():
    assert len(set(registry.NAMES)) == len(registry.NAMES)
    others = registry.MATRIX_OPTIMIZERS + registry.CLOSURE_OPTIMIZERS
    assert len(set(registry.NAMES) | set(others)) == len(registry.NAMES) + len(others)
    assert set(registry.NAMES) | set(others) == set(cyoptim.optimizers.__all__)
    assert set(cyoptim.optimizers.__all__) <= set(cyoptim.__all__)
    for name in registry.MATRIX_OPTIMIZERS:
        assert getattr(cyoptim, name) is getattr(cyoptim.optimizers, name)
        assert issubclass(getattr(cyoptim.reference, name), getattr(cyoptim, name))
    for name in registry.CLOSURE_OPTIMIZERS:
        assert getattr(cyoptim, name) is getattr(cyoptim.optimizers, name)
        assert issubclass(getattr(cyoptim, name), cyoptim.Optimizer)
    for row in ROWS:
        cls = optimizer_class(row)
        assert issubclass(cls, cyoptim.Optimizer)
        assert cls.kernel == row.kernel
        assert callable(getattr(cyoptim._dispatch.kernels, cls.kernel + "_group"))
        assert issubclass(reference_class(row), cls)
        assert getattr(cyoptim.reference, row.name) is reference_class(row)
        assert getattr(cyoptim, row.name) is cls


SWITCH_ROWS = [row for row in TORCH_ROWS if row_settings(row).switches]
PHASE_STEPS = 6


def phases(row):
    """Group 0's hyperparameters in each phase: every switch takes its values in turn."""
    switches = row_settings(row).switches
    for i in range(max(len(values) for values in switches.values())):
        yield {key: values[min(i, len(values) - 1)] for key, values in switches.items()}


@pytest.mark.parametrize("row", SWITCH_ROWS, ids=row_id)
def test_hyperparameters_switched_mid_run_match_torch(row):
    """Flags changed between steps (momentum switched on with dampening, off and on
    again, ...): params, the keys of every state entry, and a run resumed from a
    state_dict taken at each switch all follow torch."""
    torch = torch_or_skip()
    dtype = np.float64
    kwargs, group = torch_settings(row, dtype)
    first = next(phases(row))
    params = make_params(dtype)
    tensors = [torch.tensor(p.copy(), requires_grad=True) for p in params]
    ours = optimizer_class(row)(groups_of(params, first), **kwargs)
    theirs = getattr(torch.optim, row.name)(groups_of(tensors, first), foreach=False, **kwargs)
    seq = grad_sequence(params, steps=PHASE_STEPS * len(list(phases(row))))
    resumed = None
    for i, values in enumerate(phases(row)):
        for opt in (ours, theirs) + ((resumed[0],) if resumed else ()):
            opt.param_groups[0].update(values)
        saved = ours.state_dict()
        twins = [p.copy() for p in params]
        resumed = (optimizer_class(row)(groups_of(twins, first), **kwargs), twins)
        resumed[0].load_state_dict(saved)
        for grads in seq[i * PHASE_STEPS : (i + 1) * PHASE_STEPS]:
            for t, g in zip(tensors, grads):
                t.grad = None if g is None else torch.tensor(g)
            ours.step(grads)
            resumed[0].step(grads)
            theirs.step()
        for k, (p, t) in enumerate(zip(params, tensors)):
            err = max_relative_error(p, t.detach().numpy())
            assert err <= TOLERANCE[dtype], f"phase {i} {values}, param {k}: {err:.3g}"
        for k, p in enumerate(resumed[1]):
            np.testing.assert_array_equal(p, params[k], err_msg=f"resumed, phase {i}")
        torch_keys = {k: sorted(v) for k, v in theirs.state_dict()["state"].items()}
        our_keys = {k: sorted(v) for k, v in ours.state_dict()["state"].items()}
        assert our_keys == {k: v for k, v in torch_keys.items() if v}, f"phase {i} {values}"
