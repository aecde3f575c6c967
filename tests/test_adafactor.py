"""Adafactor: what the generic table (test_optimizers.py) does not cover.

Factored and unfactored params side by side, batched (3-d and 4-d) params,
shapes cut into several tiles and chunks, thread invariance of the row,
column and norm reductions, state layout and memory, torch's messages, and
cyoptim.torch.Adafactor training a torch model next to torch.optim.Adafactor.
"""

import numpy as np
import pytest
from conftest import torch_or_skip
from optim_harness import (
    TOLERANCE,
    assert_buffer_steps_as_separate_arrays,
    assert_state_equal,
    assert_unchanged,
    assert_validation_matches_torch,
    grad_sequence,
    make_params,
    max_relative_error,
    run_cyoptim,
    run_torch_with_state,
    snapshot,
    threads,
)

import cyoptim
import cyoptim.reference as ref
from cyoptim import _dispatch
from cyoptim.reference.adafactor import TILE, TILE_COLS, row_col_sums

# 0-d, 1-d, 2-d, a row, a column, batched 3-d and 4-d.
SHAPES = [(), (7,), (17, 9), (1, 12), (12, 1), (3, 5, 6), (2, 3, 4, 5)]
# Several column blocks (> TILE_COLS columns) and row blocks, a tall matrix,
# a batch of small matrices sharing tiles, ragged chunk ends.
TILED_SHAPES = [(40, 2 * TILE_COLS + 37), (3 * TILE // 7, 7), (70, 3, 50), (4097,)]


def test_tile_constants_are_the_kernels():
    """The twin's tiles (and so its sums) are the kernel's: a multi-tile
    matrix's row and column sums, through the kernel, equal the twin's bitwise."""
    g = make_params(np.float64, seed=3, shapes=[(67, 2 * TILE_COLS + 5)])[0]
    rows, cols = row_col_sums(g)
    # One step from zero state: row_var = fl(sqrt(row sum))^2 / C exactly as the kernel does.
    p = np.ones_like(g)
    opt = cyoptim.Adafactor([p])
    opt.step([g.copy()])
    expected_rows = np.sqrt(rows[0]) ** 2 / g.shape[1]
    expected_cols = np.sqrt(cols[0]) ** 2 / g.shape[0]
    np.testing.assert_array_equal(opt.state[0]["row_var"].ravel(), expected_rows)
    np.testing.assert_array_equal(opt.state[0]["col_var"].ravel(), expected_cols)
    np.testing.assert_allclose(rows[0], (g * g).sum(axis=1), rtol=1e-13)
    np.testing.assert_allclose(cols[0], (g * g).sum(axis=0), rtol=1e-13)


@pytest.mark.parametrize("shapes", [SHAPES, TILED_SHAPES], ids=["shapes", "tiled"])
def test_factored_and_unfactored_match_torch(shapes, dtype):
    """100 steps (param 1 skipped at some steps) with every kind of param in one
    group: params and every state entry within docs/contract.md §1 of torch."""
    torch_or_skip()
    import torch

    params = make_params(dtype, seed=2, shapes=shapes)
    start = [p.copy() for p in params]
    seq = grad_sequence(params, steps=100 if shapes is SHAPES else 20)
    kwargs = dict(lr=1e-2 if dtype == np.float64 else 1e-3, weight_decay=0.05)
    opt = run_cyoptim(cyoptim.Adafactor, params, seq, kwargs)
    expected, torch_state = run_torch_with_state(torch.optim.Adafactor, start, seq, kwargs)
    for k, (ours, theirs) in enumerate(zip(params, expected)):
        assert not np.array_equal(ours, start[k]), f"param {k} never moved"
        err = max_relative_error(ours, theirs)
        assert err <= TOLERANCE[dtype], f"param {k} {shapes[k]}: {err:.3g}"
    ours_state = opt.state_dict()["state"]
    assert sorted(ours_state) == sorted(torch_state)
    for k, entry in torch_state.items():
        assert sorted(ours_state[k]) == sorted(entry), f"param {k}"
        for name, value in entry.items():
            assert np.shape(ours_state[k][name]) == np.shape(value), f"{name} of param {k}"
            err = max_relative_error(ours_state[k][name], value)
            assert err <= 10 * TOLERANCE[dtype], f"{name} of param {k}: {err:.3g}"


@pytest.mark.parametrize("shapes", [SHAPES, TILED_SHAPES], ids=["shapes", "tiled"])
def test_equals_numpy_twin_bitwise(shapes, dtype):
    params = make_params(dtype, seed=4, shapes=shapes)
    twins = [p.copy() for p in params]
    seq = grad_sequence(params, steps=8)
    kwargs = dict(lr=0.03, eps=(1e-5, 1e-2), d=1.5, maximize=True, weight_decay=0.1)
    fast = run_cyoptim(cyoptim.Adafactor, params, seq, kwargs)
    slow = run_cyoptim(ref.Adafactor, twins, seq, kwargs)
    for k, (a, b) in enumerate(zip(params, twins)):
        np.testing.assert_array_equal(a, b, err_msg=f"param {k} {shapes[k]}")
    assert_state_equal(fast.state_dict(), slow.state_dict())


def test_reductions_are_thread_and_variant_invariant(dtype):
    """Large factored and unfactored params, many tiles and chunks: bitwise the
    same params and state for 1, 2 and 3 threads in every SIMD variant."""
    shapes = [(300, 2 * TILE_COLS + 3), (5, 40, 333), (200_003,), (60_000, 3)]
    results = {}
    for variant in _dispatch.available_variants():
        for n in (1, 2, 3):
            params = make_params(dtype, seed=6, shapes=shapes)
            with _dispatch.use_variant(variant), threads(n):
                opt = cyoptim.Adafactor(params, lr=0.05, weight_decay=0.01)
                for grads in grad_sequence(params, steps=3, skip=False):
                    opt.step(grads)
                assert opt._kernels.effective_threads(opt._plans[0].active_elements, n, 2) == n
            results[(variant, n)] = (params, opt.state_dict())
    first = next(iter(results))
    for key, (params, state) in results.items():
        for k, (a, b) in enumerate(zip(results[first][0], params)):
            np.testing.assert_array_equal(a, b, err_msg=f"param {k}: {key} vs {first}")
        assert_state_equal(results[first][1], state)


def test_state_layout_is_torchs_and_sublinear():
    """torch's names and shapes per param; a factored param holds m + n values
    per m x n matrix, all of a group's in one block per name."""
    shapes = [(1000, 500), (8, 30, 20), (300,), ()]
    params = [np.zeros(s, np.float32) for s in shapes]
    opt = cyoptim.Adafactor(params)
    opt.step([np.ones(s, np.float32) for s in shapes])
    state = opt.state
    assert sorted(state[0]) == ["col_var", "row_var", "step"]
    assert state[0]["row_var"].shape == (1000, 1) and state[0]["col_var"].shape == (1, 500)
    assert state[1]["row_var"].shape == (8, 30, 1) and state[1]["col_var"].shape == (8, 1, 20)
    assert sorted(state[2]) == ["step", "variance"] and state[2]["variance"].shape == (300,)
    assert state[3]["variance"].shape == ()
    blocks = opt._blocks[0]
    assert blocks["row_var"].size == 1000 + 8 * 30
    assert blocks["col_var"].size == 500 + 8 * 20
    assert blocks["variance"].size == 300 + 1
    assert np.shares_memory(state[1]["row_var"], blocks["row_var"])


def test_load_refuses_state_of_the_wrong_shape():
    params = make_params(np.float64, shapes=[(4, 6), (5,)])
    opt = run_cyoptim(cyoptim.Adafactor, params, grad_sequence(params, steps=2, skip=False), {})
    before = snapshot(opt)
    cases = [
        (
            lambda sd: sd["state"][0].__setitem__("row_var", np.zeros((4, 6))),
            r"state 'row_var' of param 0 .* shape \(4, 6\).* shape \(4, 1\)",
        ),
        (
            lambda sd: sd["state"][0].__setitem__("variance", np.zeros((4, 6))),
            r"state of param 0 has keys",
        ),
        (
            lambda sd: sd["state"][1].__setitem__("col_var", np.zeros((1, 5))),
            r"state of param 1 has keys",
        ),
        (lambda sd: sd["state"][0].pop("col_var"), r"state of param 0 has keys"),
    ]
    for edit, message in cases:
        saved = opt.state_dict()
        edit(saved)
        with pytest.raises(ValueError, match=message):
            opt.load_state_dict(saved)
        assert_unchanged(opt, before)


def test_param_buffer_group_equals_separate_arrays(dtype):
    """A group in one ParamBuffer (the plan's fused run) steps tensor by tensor
    here, bitwise as separate arrays."""
    assert_buffer_steps_as_separate_arrays(
        cyoptim.Adafactor, {}, [(30, 20), (20,), (4, 5, 6)], dtype, seed=8
    )


def test_zero_and_nonfinite_grads_follow_torch():
    """A zero row and column (u = 0 there, eps1 keeps v positive), then a NaN and
    an inf in a factored grad: NaN and inf land where torch's do."""
    torch_or_skip()
    import torch

    params = [np.linspace(-1, 1, 30).reshape(5, 6)]
    first = np.random.default_rng(0).standard_normal((5, 6))
    first[2] = 0
    first[:, 4] = 0
    second = np.random.default_rng(1).standard_normal((5, 6))
    second[1, 1], second[3, 2] = np.nan, np.inf
    seq = [[first], [second]]
    ours = [p.copy() for p in params]
    with np.errstate(all="ignore"):
        run_cyoptim(cyoptim.Adafactor, ours[:], seq[:1], {})
        expected = run_torch_with_state(
            torch.optim.Adafactor, [p.copy() for p in params], seq[:1], {}
        )[0]
        assert max_relative_error(ours[0], expected[0]) <= 1e-12
        ours = [p.copy() for p in params]
        run_cyoptim(cyoptim.Adafactor, ours, seq, {})
        expected = run_torch_with_state(
            torch.optim.Adafactor, [p.copy() for p in params], seq, {}
        )[0]
    np.testing.assert_array_equal(np.isnan(ours[0]), np.isnan(expected[0]))
    np.testing.assert_array_equal(np.isinf(ours[0]), np.isinf(expected[0]))
    assert np.isnan(ours[0]).any()


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(lr=-1.0),
        dict(beta2_decay=0.5),
        dict(eps=(-1.0, 1e-3)),
        dict(eps=(None, -1e-3)),
        dict(d=0.5),
        dict(weight_decay=-0.1),
    ],
)
def test_validation_uses_torchs_wording(kwargs):
    torch_or_skip()
    import torch

    assert_validation_matches_torch(cyoptim.Adafactor, torch.optim.Adafactor, kwargs)


# -- cyoptim.torch.Adafactor --------------------------------------------------------


def _torch_model(torch, dtype):
    """A conv layer (4-d weight: a batch of 3 x 3 matrices), a batched 3-d
    param, linear layers and biases (1-d)."""

    class Model(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(1, 3, 3, padding=1)
            self.mix = torch.nn.Parameter(torch.randn(3, 4, 4) * 0.3)
            self.head = torch.nn.Linear(3 * 16, 5)

        def forward(self, x):
            h = torch.tanh(self.conv(x.view(-1, 1, 4, 4)))
            h = torch.matmul(h, self.mix)
            return self.head(h.flatten(1))

    torch.manual_seed(0)
    return Model().to(dtype)


@pytest.mark.parametrize(
    "options",
    [{}, dict(weight_decay=0.1, maximize=True, d=2.0, eps=(1e-4, 1e-2), beta2_decay=-0.6)],
    ids=["defaults", "flags"],
)
def test_torch_class_trains_as_torch_optim(options, dtype):
    """50 steps of autograd training side by side with torch.optim.Adafactor:
    same params (docs/contract.md §1 tolerance), same state names, shapes and
    dtypes; a state_dict from either loads into the other mid-run."""
    torch = torch_or_skip()
    import cyoptim.torch as cot

    tdtype = torch.float32 if dtype == np.float32 else torch.float64
    lr = 1e-2 if dtype == np.float64 else 1e-3
    models = [_torch_model(torch, tdtype) for _ in range(3)]
    opts = [
        torch.optim.Adafactor(models[0].parameters(), lr=lr, foreach=False, **options),
        cot.Adafactor(models[1].parameters(), lr=lr, **options),
        cot.Adafactor(models[2].parameters(), lr=lr, **options),
    ]
    g = torch.Generator().manual_seed(1)
    data = [
        (torch.randn(8, 16, generator=g, dtype=tdtype), torch.randint(0, 5, (8,), generator=g))
        for _ in range(50)
    ]
    for t, (x, y) in enumerate(data):
        if t == 25:  # model 2 continues with torch's state, model 0 with ours
            saved_theirs, saved_ours = opts[0].state_dict(), opts[2].state_dict()
            opts[2] = torch.optim.Adafactor(
                models[2].parameters(), lr=lr, foreach=False, **options
            )
            opts[2].load_state_dict(saved_ours)
            opts[0] = cot.Adafactor(models[0].parameters(), lr=lr, **options)
            opts[0].load_state_dict(saved_theirs)
        for model, opt in zip(models, opts):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
    for other in models[1:]:
        for (name, a), b in zip(models[0].named_parameters(), other.parameters()):
            error = ((a - b).norm() / b.norm()).item()
            assert error <= TOLERANCE[dtype], f"{name}: {error:.3g}"
    for p_ours, p_theirs in zip(models[1].parameters(), models[2].parameters()):
        ours, theirs = opts[1].state[p_ours], opts[2].state[p_theirs]
        assert sorted(ours) == sorted(theirs)
        for name, value in theirs.items():
            assert ours[name].shape == value.shape and ours[name].dtype == value.dtype


def test_torch_class_refuses_state_of_the_wrong_shape():
    torch = torch_or_skip()
    import cyoptim.torch as cot

    w = torch.nn.Parameter(torch.ones(4, 6))
    opt = cot.Adafactor([w])
    w.grad = torch.ones(4, 6)
    opt.step()
    before = w.detach().clone(), {k: v.clone() for k, v in opt.state[w].items()}
    opt.state[w]["row_var"] = torch.zeros(4, 6)
    with pytest.raises(ValueError, match=r"state\['row_var'\] of param 0 .*needs \(4, 1\)"):
        opt.step()
    assert torch.equal(w, before[0])
    assert all(torch.equal(opt.state[w][k], v) for k, v in before[1].items() if k != "row_var")


def test_torch_class_unscales_grads_in_the_kernel():
    """grad_scale (GradScaler's fused path, which torch's Adafactor lacks):
    grads divided in place, in both the factored and the unfactored passes."""
    torch = torch_or_skip()
    import cyoptim.torch as cot

    shapes = [(6, 5), (7,), (2, 3, 4)]
    params = [
        torch.nn.Parameter(torch.linspace(-1, 1, int(np.prod(s))).reshape(s)) for s in shapes
    ]
    twins = [torch.nn.Parameter(p.detach().clone()) for p in params]
    grads = [
        torch.randn(s, generator=torch.Generator().manual_seed(k)) for k, s in enumerate(shapes)
    ]
    opt, twin = cot.Adafactor(params, lr=0.1), cot.Adafactor(twins, lr=0.1)
    for p, t, g in zip(params, twins, grads):
        p.grad, t.grad = g * 8, g.clone()
    opt.grad_scale = torch.tensor(8.0)
    opt.step()
    twin.step()
    for p, t, g in zip(params, twins, grads):
        assert torch.equal(p.grad, g)
        assert torch.equal(p, t)
