"""EarlyStopping: counters, modes, min_delta, best-param copies and restore."""

import numpy as np
import pytest

import cyoptim


def test_min_mode_counts_and_stops():
    es = cyoptim.EarlyStopping(patience=2)
    decisions = [es.step(m) for m in [1.0, 0.8, 0.85, 0.79, 0.9, 0.95]]
    assert decisions == [False, False, False, False, False, True]
    assert es.best == 0.79 and es.best_epoch == 3 and es.num_bad_epochs == 2
    assert es.should_stop


def test_max_mode_and_min_delta():
    es = cyoptim.EarlyStopping(patience=1, min_delta=0.05, mode="max")
    assert not es.step(0.50)
    assert es.step(0.54)  # +0.04 is not an improvement of > 0.05
    assert es.best == 0.50 and es.best_epoch == 0
    es.reset()
    assert not es.step(0.5) and not es.step(0.56) and es.best_epoch == 1


def test_patience_zero_and_nan():
    es = cyoptim.EarlyStopping(patience=0)
    assert es.step(float("nan"))  # NaN never improves: a bad epoch
    assert es.best_epoch == -1 and es.num_bad_epochs == 1
    es = cyoptim.EarlyStopping(patience=0)
    assert not es.step(1.0)
    assert es.step(1.0)  # equal is not better


def test_keeps_and_restores_best_params_in_place():
    w, b = np.zeros(3, np.float32), np.zeros(1, np.float32)
    es = cyoptim.EarlyStopping(patience=3)
    for _epoch, metric in enumerate([3.0, 1.0, 2.0, 2.5]):
        w += 1
        b -= 1
        es.step(metric, [w, b])
    assert es.best_epoch == 1
    w_id = w.ctypes.data
    es.restore([w, b])
    assert w.ctypes.data == w_id and w.dtype == np.float32
    np.testing.assert_array_equal(w, np.full(3, 2, np.float32))
    np.testing.assert_array_equal(b, [-2])
    w += 5  # the saved copy is independent of w
    es.restore([w, b])
    np.testing.assert_array_equal(w, np.full(3, 2, np.float32))


def test_restore_errors():
    es = cyoptim.EarlyStopping(patience=1)
    with pytest.raises(RuntimeError, match="no params saved yet"):
        es.restore([np.zeros(1)])
    es.step(1.0, [np.zeros(2)])
    with pytest.raises(ValueError, match="expected 1 params"):
        es.restore([np.zeros(2), np.zeros(2)])
    with pytest.raises(ValueError, match=r"shape \(2,\)"):
        es.restore([np.zeros(3)])
    off = cyoptim.EarlyStopping(patience=1, restore_best=False)
    off.step(1.0, [np.zeros(2)])
    with pytest.raises(RuntimeError, match="restore_best=False"):
        off.restore([np.zeros(2)])


def test_state_dict_round_trip():
    w = np.zeros(2)
    es = cyoptim.EarlyStopping(patience=2)
    es.step(1.0, [w + 1])
    es.step(1.5, [w + 2])
    other = cyoptim.EarlyStopping(patience=2)
    other.load_state_dict(es.state_dict())
    assert other.step(1.6) and (other.best, other.best_epoch) == (1.0, 0)
    other.restore([w])
    np.testing.assert_array_equal(w, [1.0, 1.0])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(patience=-1), "patience must be an integer >= 0"),
        (dict(patience=2.5), "patience must be an integer >= 0"),
        (dict(patience=1, min_delta=-0.1), "min_delta must be a number >= 0"),
        (dict(patience=1, mode="lower"), "mode must be 'min' or 'max'"),
    ],
)
def test_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        cyoptim.EarlyStopping(**kwargs)
