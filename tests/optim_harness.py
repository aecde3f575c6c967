"""Shared checks for every optimizer: against torch, against the NumPy reference,
across thread counts and SIMD variants, state_dict round trips, bad input.

Each optimizer's test module parametrizes over its flags and calls these.
"""

import contextlib
import re

import numpy as np
import pytest

import cyoptim
from cyoptim import _dispatch

# docs/contract.md §1: agreement with torch after 100 steps, relative to max(|x|, 1e-3).
TOLERANCE = {np.float32: 1e-5, np.float64: 1e-12}
STEPS = 100
SHAPES = [(17, 9), (5,), (3000,), (2, 3, 4)]  # group 0: first two; group 1: the rest


def max_relative_error(ours, theirs):
    ours, theirs = np.asarray(ours, np.float64), np.asarray(theirs, np.float64)
    return float(np.max(np.abs(ours - theirs) / np.maximum(np.abs(ours), 1e-3)))


def make_params(dtype, seed=0, shapes=SHAPES):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s).astype(dtype) for s in shapes]


def grad_sequence(params, steps=STEPS, seed=1, skip=True):
    """Random grads per step; with skip, param 1 gets None every fourth step
    and param 3 only from step 10 on (lazy state and diverging step counts)."""
    rng = np.random.default_rng(seed)
    sequence = []
    for t in range(steps):
        grads = [rng.standard_normal(p.shape).astype(p.dtype) for p in params]
        if skip:
            if t % 4 == 1:
                grads[1] = None
            if t < 10:
                grads[3] = None
        sequence.append(grads)
    return sequence


def groups_of(params, group_options):
    """Two param groups: the first two params with group_options, the rest plain."""
    return [dict(params=params[:2], **group_options), dict(params=params[2:])]


def run_cyoptim(cls, params, grads_seq, kwargs, group_options=None):
    if group_options is None:
        opt = cls(params, **kwargs)
    else:
        opt = cls(groups_of(params, group_options), **kwargs)
    for grads in grads_seq:
        opt.step(grads)
    return opt


def run_torch(torch_cls, params, grads_seq, kwargs, group_options=None):
    """torch's single-tensor implementation on copies of params; returns final arrays."""
    return run_torch_with_state(torch_cls, params, grads_seq, kwargs, group_options)[0]


def run_torch_with_state(torch_cls, params, grads_seq, kwargs, group_options=None, lr_at=None):
    """As run_torch; returns the final arrays and torch's state as cyoptim shows
    it: 0-dim tensors as floats, the others as arrays. lr_at: {step index: lr of
    every group, set before that step}."""
    import torch

    tensors = [torch.tensor(p.copy(), requires_grad=True) for p in params]
    if group_options is None:
        opt = torch_cls(tensors, foreach=False, **kwargs)
    else:
        opt = torch_cls(groups_of(tensors, group_options), foreach=False, **kwargs)
    for t, grads in enumerate(grads_seq):
        if lr_at and t in lr_at:
            for group in opt.param_groups:
                group["lr"] = lr_at[t]
        for tensor, g in zip(tensors, grads):
            tensor.grad = None if g is None else torch.tensor(g)
        opt.step()
    state = {
        i: {
            name: value.item() if value.dim() == 0 else value.numpy()
            for name, value in entry.items()
        }
        for i, entry in opt.state_dict()["state"].items()
    }
    return [t.detach().numpy() for t in tensors], state


def assert_matches_torch(cls, torch_cls, kwargs, dtype, group_options=None, skip=True):
    params = make_params(dtype)
    start = [p.copy() for p in params]
    seq = grad_sequence(params, skip=skip)
    run_cyoptim(cls, params, seq, kwargs, group_options)
    expected = run_torch(torch_cls, start, seq, kwargs, group_options)
    for k, (ours, theirs) in enumerate(zip(params, expected)):
        assert not np.array_equal(ours, start[k]), f"param {k} never moved"
        err = max_relative_error(ours, theirs)
        assert err <= TOLERANCE[dtype], f"param {k}: max relative error {err:.3g} vs torch"


def assert_equals_reference(cls, reference_cls, kwargs, dtype, group_options=None):
    """The kernel and the NumPy twin do the same IEEE operations: bitwise equal."""
    params = make_params(dtype)
    twins = [p.copy() for p in params]
    seq = grad_sequence(params, steps=30)
    fast = run_cyoptim(cls, params, seq, kwargs, group_options)
    slow = run_cyoptim(reference_cls, twins, seq, kwargs, group_options)
    for k, (a, b) in enumerate(zip(params, twins)):
        np.testing.assert_array_equal(a, b, err_msg=f"param {k}")
    assert_state_equal(fast.state_dict(), slow.state_dict())


def assert_state_equal(a, b):
    assert a["param_groups"] == b["param_groups"]
    assert sorted(a["state"]) == sorted(b["state"])
    for index, entry in a["state"].items():
        assert sorted(entry) == sorted(b["state"][index])
        for name, value in entry.items():
            np.testing.assert_array_equal(
                value, b["state"][index][name], err_msg=f"state {name} of param {index}"
            )


@contextlib.contextmanager
def threads(n):
    saved = cyoptim._threads.requested()
    cyoptim.set_num_threads(n)
    try:
        yield
    finally:
        cyoptim.set_num_threads(saved)


def large_params(dtype, seed=0):
    """Big enough that steps really run on several threads, with odd sizes."""
    return make_params(dtype, seed, shapes=[(300_001,), (77, 1001), (13,)])


def assert_thread_and_variant_invariant(cls, kwargs, dtype):
    """Bitwise the same result for 1 and 2 threads, in every SIMD variant here."""
    results = {}
    for variant in _dispatch.available_variants():
        for n in (1, 2):
            params = large_params(dtype)
            with _dispatch.use_variant(variant), threads(n):
                opt = cls(params, **kwargs)
                for grads in grad_sequence(params, steps=5, skip=False):
                    opt.step(grads)
                assert opt._kernels.effective_threads(opt._plans[0].active_elements, n) == n
            results[(variant, n)] = params
    first_key = next(iter(results))
    for key, params in results.items():
        for k, (a, b) in enumerate(zip(results[first_key], params)):
            np.testing.assert_array_equal(a, b, err_msg=f"param {k}: {key} vs {first_key}")


def assert_buffer_steps_as_separate_arrays(cls, kwargs, shapes, dtype, steps=5, seed=0):
    """A group in one ParamBuffer (the plan may run it as one fused run) steps
    bitwise as the same params in separate arrays."""
    buffer = cyoptim.ParamBuffer(shapes, dtype)
    separate = make_params(dtype, seed, shapes)
    for view, p in zip(buffer.params, separate):
        view[...] = p
    fused, plain = cls(buffer.params, **kwargs), cls(separate, **kwargs)
    for grads in grad_sequence(separate, steps=steps, skip=False):
        for view, g in zip(buffer.grads, grads):
            view[...] = g
        fused.step(buffer.grads)
        plain.step(grads)
    for k, (view, p) in enumerate(zip(buffer.params, separate)):
        np.testing.assert_array_equal(view, p, err_msg=f"param {k}")


def assert_state_dict_round_trip(cls, kwargs, dtype):
    """Save mid-run, load into a fresh optimizer, continue: bit-identical to no break."""
    params = make_params(dtype)
    seq = grad_sequence(params, steps=40)
    twins = [p.copy() for p in params]
    straight = run_cyoptim(cls, params, seq, kwargs)

    first = run_cyoptim(cls, twins, seq[:20], kwargs)
    saved = first.state_dict()
    before = {
        i: {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in e.items()}
        for i, e in saved["state"].items()
    }
    first.step(seq[20])  # must not change the saved snapshot
    for i, entry in saved["state"].items():
        for name, value in entry.items():
            np.testing.assert_array_equal(value, before[i][name])
    # Rewind the params, load into a NEW optimizer over them, continue.
    rewound = run_cyoptim(cls, [p.copy() for p in make_params(dtype)], seq[:20], kwargs)
    params_at_20 = [p.copy() for p in rewound.param_groups[0]["params"]]
    resumed = cls(params_at_20, **kwargs)
    resumed.load_state_dict(saved)
    for grads in seq[20:]:
        resumed.step(grads)
    for k, (a, b) in enumerate(zip(params, params_at_20)):
        np.testing.assert_array_equal(a, b, err_msg=f"param {k}")
    assert_state_equal(straight.state_dict(), resumed.state_dict())


def snapshot(opt):
    """Everything a failed call must leave untouched."""
    return (
        [p.copy() for g in opt.param_groups for p in g["params"]],
        opt.state_dict(),
        [dict(g, params=None) for g in opt.param_groups],
    )


def assert_unchanged(opt, before):
    params, state, groups = before
    now = snapshot(opt)
    for a, b in zip(params, now[0]):
        np.testing.assert_array_equal(a, b)
    assert_state_equal(state, now[1])
    assert groups == now[2]


# -- Learning rate of float32 comparisons with torch -------------------------------


def torch_test_lr(dtype, float64_lr, float32_lr):
    """The learning rate of a comparison with torch in this dtype.

    torch's CPU addcmul_ and add_(alpha=) are fused multiply-adds, and its
    sqrt() (MKL) is not correctly rounded (up to 0.75 ulp in float32, 0.53 in
    float64); cyoptim rounds every operation separately and correctly (a NumPy
    emulation of torch's roundings reproduces torch bitwise). The float32
    difference grows with how far the params travel, so float32 comparisons run
    with a smaller rate; float64 keeps the normal one (and its 1e-12 tolerance).
    """
    return float32_lr if dtype == np.float32 else float64_lr


# -- Constructor validation: torch's exact message ---------------------------------

# Invalid hyperparameters every Adam-family constructor refuses, with torch's message.
ADAM_FAMILY_INVALID = [
    dict(lr=-1.0),
    dict(eps=-1e-8),
    dict(betas=(1.0, 0.999)),
    dict(betas=(-0.1, 0.999)),
    dict(betas=(0.9, 1.0)),
    dict(betas=(0.9, -0.5)),
    dict(weight_decay=-0.1),
]


def torch_message(torch_cls, kwargs):
    """The ValueError text torch's constructor gives for these hyperparameters."""
    import torch

    with pytest.raises(ValueError) as info:
        torch_cls([torch.zeros(2, requires_grad=True)], **kwargs)
    return str(info.value)


def assert_validation_matches_torch(cls, torch_cls, kwargs):
    """kwargs are refused with torch's exact message wherever they can be given: as
    defaults, as a param group's override in the constructor, and in add_param_group,
    which then adds no group and leaves a working optimizer."""
    expected = torch_message(torch_cls, kwargs)
    with pytest.raises(ValueError) as info:
        cls([np.zeros(2)], **kwargs)
    assert str(info.value) == expected
    with pytest.raises(ValueError) as info:
        cls([{"params": [np.zeros(2)], **kwargs}])
    assert str(info.value) == expected
    param = np.zeros(2)
    opt = cls([param], lr=0.1)
    before = snapshot(opt)
    with pytest.raises(ValueError) as info:
        opt.add_param_group(dict(params=[np.zeros(3)], **kwargs))
    assert str(info.value) == expected
    assert len(opt.param_groups) == 1
    assert_unchanged(opt, before)
    opt.step([np.ones(2)])
    assert not np.array_equal(param, before[0][0])


def assert_bad_scalar_state_refused(cls, name, bad):
    """A loaded state whose per-param scalar ``name`` (NAdam's mu_product, ...) is
    ``bad`` (or absent, for "missing") is refused naming the param, and the
    optimizer is left exactly as it was."""
    params = make_params(np.float64)
    opt = run_cyoptim(cls, params, grad_sequence(params, steps=3, skip=False), {})
    saved = opt.state_dict()
    before = snapshot(opt)
    if isinstance(bad, str) and bad == "missing":
        del saved["state"][2][name]
    else:
        saved["state"][2][name] = bad
    with pytest.raises(ValueError, match="param 2"):
        opt.load_state_dict(saved)
    assert_unchanged(opt, before)


# -- Bad grads: refused, and nothing changed ----------------------------------------


def bad_grad_lists(params):
    """(name, grads, exception type, message pattern) for grad lists step must refuse.

    All but the last two have a bad grad for the last param only, so a step that
    updated params before checking every grad would show up."""
    good = [np.ones_like(p) for p in params]
    last, index = params[-1], len(params) - 1
    other = np.float32 if last.dtype == np.float64 else np.float64
    cases = [
        ("dtype", last.astype(other), TypeError, f"grad {index} has dtype"),
        (
            "byte-swapped",
            last.astype(last.dtype.newbyteorder(">")),
            TypeError,
            f"grad {index} has dtype",
        ),
        ("shape", np.ones(last.size + 1, last.dtype), ValueError, f"grad {index} has shape"),
        (
            "same size, other shape",
            np.ones(last.size, last.dtype),
            ValueError,
            f"grad {index} has shape",
        ),
        (
            "strided",
            np.ones(last.size * 2, last.dtype)[::2].reshape(last.shape),
            ValueError,
            f"grad {index} is not C-contiguous",
        ),
        (
            "sliced",
            np.ones(last.shape + (2,), last.dtype)[..., 0],
            ValueError,
            f"grad {index} is not C-contiguous",
        ),
        ("nested list", last.tolist(), TypeError, f"grad {index} must be a NumPy array"),
        ("list of scalars", list(last.ravel()), TypeError, f"grad {index} must be a NumPy array"),
    ]
    out = [(name, good[:-1] + [bad], error, match) for name, bad, error, match in cases]
    out.append(("count", good[:-1], ValueError, f"expected {len(params)} grads"))
    out.append(("container", np.ones_like(params[0]), TypeError, "grads must be a list"))
    return out


def assert_bad_grads_change_nothing(cls, kwargs, dtype):
    """Over two param groups with state: every bad grad list raises the right error,
    naming the param, and leaves params, state and groups exactly as they were; the
    optimizer still steps afterwards."""
    params = make_params(dtype)
    assert params[-1].ndim > 1  # "same size, other shape" needs it
    opt = cls(groups_of(params, {}), **kwargs)
    for grads in grad_sequence(params, steps=12):
        opt.step(grads)
    before = snapshot(opt)
    for name, grads, error, match in bad_grad_lists(params):
        try:
            opt.step(grads)
        except error as refused:
            assert re.search(match, str(refused)), f"{name}: {refused}"
        else:
            raise AssertionError(f"{name}: step accepted bad grads")
        assert_unchanged(opt, before)
    opt.step([np.ones_like(p) for p in params])  # still usable, and it moves
    for k, (old, new) in enumerate(zip(before[0], params)):
        assert not np.array_equal(old, new), f"param {k} did not move"
