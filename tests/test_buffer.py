import numpy as np
import pytest
from optim_harness import grad_sequence, threads

import cyoptim
import cyoptim.reference as ref


def test_param_buffer_views_share_two_blocks():
    buf = cyoptim.ParamBuffer([(4, 3), 5, ()], np.float64)
    assert [p.shape for p in buf.params] == [(4, 3), (5,), ()]
    assert buf.size == 18 and buf.data.dtype == np.float64
    assert buf.data.ctypes.data % 64 == 0 and buf.grad_data.ctypes.data % 64 == 0
    buf.params[1][:] = 7
    np.testing.assert_array_equal(buf.data[12:17], 7)
    buf.grads[0][:] = 1
    buf.zero_grad()
    assert not buf.grad_data.any()
    assert all(np.shares_memory(p, buf.data) for p in buf.params)


def test_param_buffer_rejects_bad_input():
    with pytest.raises(TypeError, match="float32 or float64"):
        cyoptim.ParamBuffer([(2,)], np.int32)
    with pytest.raises(ValueError, match="non-negative"):
        cyoptim.ParamBuffer([(2, -1)])
    with pytest.raises(ValueError, match="at least one shape"):
        cyoptim.ParamBuffer([])


@pytest.mark.parametrize("n_threads", [1, 2])
def test_buffer_group_runs_as_one_fused_run_and_matches_separate_arrays(dtype, n_threads):
    shapes = [(300, 257), (257,), (40_000,), (3, 3)]
    buf = cyoptim.ParamBuffer(shapes, dtype)
    rng = np.random.default_rng(0)
    for p in buf.params:
        p[:] = rng.standard_normal(p.shape)
    separate = [p.copy() for p in buf.params]
    fused = cyoptim.Adam(buf.params, lr=1e-2, amsgrad=True)
    plain = ref.Adam(separate, lr=1e-2, amsgrad=True)
    with threads(n_threads):
        for grads in grad_sequence(buf.params, steps=8, skip=False):
            for g, dst in zip(grads, buf.grads):
                dst[:] = g
            fused.step(buf.grads)
            assert fused._plans[0].fused  # the whole group in one run
            plain.step(grads)
    for a, b in zip(buf.params, separate):
        np.testing.assert_array_equal(a, b)


def test_buffer_falls_back_to_per_tensor_runs_with_foreign_or_missing_grads():
    buf = cyoptim.ParamBuffer([(10,), (20,)])
    opt = cyoptim.SGD(buf.params, lr=0.1, momentum=0.9)
    opt.step(buf.grads)
    assert opt._plans[0].fused
    opt.step([np.ones(10, np.float32), np.ones(20, np.float32)])
    assert not opt._plans[0].fused
    opt.step([None, buf.grads[1]])
    assert not opt._plans[0].fused
    # The skipped tensor's state is now a step behind: no fused run until steps agree.
    opt.step(buf.grads)
    assert not opt._plans[0].fused
