"""Checkpoints (issue 13, item 3): save_state/load_state, pickle and deepcopy.

- ``save_state``/``load_state`` round trip bitwise for every optimizer of the
  registry, keep every hyperparameter's exact type, write atomically, and
  refuse a file that does not fit with a clear error and nothing changed.
- Optimizers (and their NumPy twins) survive pickle, copy.deepcopy and
  copy.copy; a copy steps bitwise as the original and never touches it.
- Schedulers survive them too, carrying their optimizer along; a lambda gives
  a clear PicklingError.
"""

import copy
import doctest
import json
import os
import pickle
import zipfile

import numpy as np
import pytest
from optim_harness import (
    assert_state_equal,
    assert_unchanged,
    grad_sequence,
    groups_of,
    make_params,
    snapshot,
)
from optimizer_table import optimizer_class, reference_class, row_settings

import cyoptim
from cyoptim import checkpoint, registry, schedules

ROWS = registry.OPTIMIZERS
STEPS, SAVE_AT = 20, 8  # at step 8 param 3 has no state yet (harness grads)
GROUP_OPTIONS = {"weight_decay": 0.0}  # group 0 differs from the defaults


def row_id(row):
    return row.name


def build(cls, params, row):
    return cls(groups_of(params, GROUP_OPTIONS), **row_settings(row).invariance)


def step_all(opt, grads_seq):
    for grads in grads_seq:
        opt.step(grads)


def params_of(opt):
    return [p for group in opt.param_groups for p in group["params"]]


def exact_groups(opt_or_groups):
    """The param groups as text (keys sorted): repr tells 1 from 1.0 and True, tuples
    from lists, and shows every float exactly."""
    groups = opt_or_groups
    if isinstance(groups, cyoptim.Optimizer):
        groups = groups.state_dict()["param_groups"]
    return repr([sorted(group.items()) for group in groups])


def assert_params_equal(a, b):
    for k, (x, y) in enumerate(zip(params_of(a), params_of(b), strict=True)):
        np.testing.assert_array_equal(x, y, err_msg=f"param {k}")


def assert_same_run(a, b):
    """Bitwise equal params and state, and exactly equal param groups."""
    assert_params_equal(a, b)
    assert_state_equal(a.state_dict(), b.state_dict())
    assert exact_groups(a) == exact_groups(b)


# ---------------------------------------------------------------- save_state / load_state


@pytest.mark.parametrize("row", ROWS, ids=row_id)
def test_save_load_round_trip_is_bitwise(row, dtype, tmp_path):
    """Save mid-run (a scheduler's initial_lr in the groups, step counts that differ,
    a param without state yet), keep stepping the original; a fresh optimizer over
    the params of the save point, loaded from the file, steps to the same bits."""
    cls = optimizer_class(row)
    params = make_params(dtype)
    seq = grad_sequence(params, steps=STEPS)
    opt = build(cls, params, row)
    sched = schedules.StepLR(opt, step_size=3, gamma=0.5)
    for grads in seq[:SAVE_AT]:
        opt.step(grads)
        sched.step()
    path = tmp_path / "opt.npz"
    cyoptim.save_state(opt, path)
    at_save = [p.copy() for p in params]
    saved = opt.state_dict()
    assert 3 not in saved["state"]
    step_all(opt, seq[SAVE_AT:])

    fresh = build(cls, at_save, row)
    for group in fresh.param_groups:
        group["lr"] *= 3  # the file restores every hyperparameter
    cyoptim.load_state(fresh, path)
    assert_state_equal(saved, fresh.state_dict())
    assert exact_groups(fresh) == exact_groups(saved["param_groups"])
    assert fresh.param_groups[0]["initial_lr"] == sched.base_lrs[0]
    step_all(fresh, seq[SAVE_AT:])
    assert_same_run(opt, fresh)


def test_file_layout_is_plain_numpy(tmp_path):
    """np.load(allow_pickle=False) reads every entry: arrays under state/<i>/<name>,
    numbers as 0-d float64, the groups as JSON text, the format tag and the class."""
    params = make_params(np.float32)
    opt = cyoptim.NAdam(groups_of(params, {"lr": 0.5}), lr=0.01)
    step_all(opt, grad_sequence(params, steps=12))
    cyoptim.save_state(opt, tmp_path / "opt.npz")
    with np.load(tmp_path / "opt.npz", allow_pickle=False) as archive:
        entries = {key: archive[key] for key in archive.files}
    assert str(entries["format"]) == "cyoptim.optimizer_state"
    assert entries["version"].shape == () and int(entries["version"]) == 1
    assert str(entries["optimizer"]) == "NAdam"
    groups = json.loads(str(entries["param_groups"]))
    assert groups[0]["lr"] == 0.5 and groups[1]["lr"] == 0.01
    assert groups[0]["betas"] == {"tuple": [0.9, 0.999]}
    assert groups[1]["params"] == [2, 3]
    for key in ("state/3/step", "state/3/mu_product"):
        assert entries[key].shape == () and entries[key].dtype == np.float64
    assert float(entries["state/0/step"]) == 12.0 and float(entries["state/3/step"]) == 2.0
    np.testing.assert_array_equal(entries["state/3/exp_avg"], opt.state[3]["exp_avg"])
    assert entries["state/3/exp_avg"].dtype == np.float32
    assert entries["state/3/exp_avg"].shape == params[3].shape
    listed = json.loads(str(entries["state_entries"]))
    assert listed["state/3/exp_avg"] == "array" and listed["state/3/step"] == "float"
    assert set(entries) == set(listed) | set(checkpoint._HEADER)


def test_hyperparameters_keep_their_exact_types(tmp_path):
    """Tuples stay tuples, bools bools, ints ints; inf, -inf, nan, -0.0, subnormals,
    big ints, None, strings, NumPy scalars and nested containers come back as they were."""
    odd = {
        "inf": float("inf"),
        "ninf": -float("inf"),
        "neg_zero": -0.0,
        "tiny": 5e-324,
        "third": 1 / 3,
        "big": 2**70,
        "flag": True,
        "count": 1,
        "whole": 1.0,
        "none": None,
        "text": "tuple",
        "nested": (1, [2.0, (float("-inf"), None)], ()),
        "table": {"tuple": [1], "float": "inf", "dict": {}},
        "np32": np.float32(0.1),
        "np_int": np.int64(-3),
        "np_bool": np.bool_(True),
    }
    params = make_params(np.float64)
    opt = cyoptim.Adam(groups_of(params, dict(odd, lr=float("inf"))), lr=1e-3)
    opt.param_groups[1]["nan"] = float("nan")
    cyoptim.save_state(opt, tmp_path / "opt.npz")
    fresh = cyoptim.Adam(groups_of([p.copy() for p in params], {}), lr=1e-3)
    cyoptim.load_state(fresh, tmp_path / "opt.npz")
    assert exact_groups(fresh) == exact_groups(opt)
    loaded = fresh.param_groups[0]
    for name, value in odd.items():
        assert type(loaded[name]) is type(value), name
    assert np.signbit(loaded["neg_zero"]) and loaded["tiny"] == 5e-324
    assert loaded["np32"] == np.float32(0.1) and loaded["lr"] == float("inf")
    assert type(loaded["nested"][1][1]) is tuple and type(loaded["nested"][1]) is list
    assert loaded["table"] == odd["table"]
    assert np.isnan(fresh.param_groups[1]["nan"])


def test_path_is_written_exactly_as_given(tmp_path):
    """str or os.PathLike; no .npz appended (np.savez would); np.load still reads it."""
    opt = cyoptim.SGD([np.ones(3)], lr=0.1, momentum=0.9)
    opt.step([np.ones(3)])
    cyoptim.save_state(opt, str(tmp_path / "ckpt"))
    assert os.listdir(tmp_path) == ["ckpt"]
    with np.load(tmp_path / "ckpt", allow_pickle=False) as archive:
        assert str(archive["optimizer"]) == "SGD"
    fresh = cyoptim.SGD([np.ones(3)], lr=0.1, momentum=0.9)
    cyoptim.load_state(fresh, tmp_path / "ckpt")  # a pathlib.Path
    assert_state_equal(opt.state_dict(), fresh.state_dict())


def test_file_mode_is_that_of_an_ordinary_new_file(tmp_path):
    """The temporary file is not left with mkstemp's private 0o600: the umask decides.
    (A never-stepped optimizer, without state, saves and loads too.)"""
    cyoptim.save_state(cyoptim.SGD([np.ones(3)], lr=0.2), tmp_path / "opt.npz")
    fresh = cyoptim.SGD([np.ones(3)])
    cyoptim.load_state(fresh, tmp_path / "opt.npz")
    assert fresh.param_groups[0]["lr"] == 0.2 and fresh.state == {}
    with open(tmp_path / "plain", "wb"):
        pass
    assert (
        os.stat(tmp_path / "opt.npz").st_mode & 0o777
        == os.stat(tmp_path / "plain").st_mode & 0o777
    )


def test_an_interrupted_save_leaves_the_old_file(tmp_path, monkeypatch):
    """The new file is written beside the old one and replaces it in one rename: a
    save that fails halfway leaves the previous checkpoint intact and no stray file."""
    path = tmp_path / "opt.npz"
    opt = cyoptim.Adam([np.ones(5)], lr=0.1)
    opt.step([np.ones(5)])
    cyoptim.save_state(opt, path)
    before = path.read_bytes()
    opt.step([np.ones(5)])
    replaced = []
    real_replace = os.replace
    monkeypatch.setattr(
        os, "replace", lambda src, dst: replaced.append((src, dst)) or real_replace(src, dst)
    )

    def savez_then_fail(file, **entries):
        file.write(b"PK\x03\x04 half an archive")
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", savez_then_fail)
    with pytest.raises(KeyboardInterrupt):
        cyoptim.save_state(opt, path)
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["opt.npz"]
    assert replaced == []
    monkeypatch.undo()

    monkeypatch.setattr(
        os, "replace", lambda src, dst: replaced.append((src, dst)) or real_replace(src, dst)
    )
    cyoptim.save_state(opt, path)
    ((source, target),) = replaced
    assert os.path.dirname(source) == str(tmp_path) and target == str(path)
    assert os.listdir(tmp_path) == ["opt.npz"] and path.read_bytes() != before


def test_save_refuses_before_writing_anything(tmp_path):
    """A value JSON cannot carry exactly, or a missing folder: an error, no file."""
    path = tmp_path / "opt.npz"
    opt = cyoptim.Adam([np.ones(3)], lr=0.1)
    cyoptim.save_state(opt, path)
    before = path.read_bytes()
    for value, name in [
        (np.ones(2), "ndarray"),
        (print, "builtin_function_or_method"),
        ({1: 2}, "key 1"),
    ]:
        opt.param_groups[0]["extra"] = value
        with pytest.raises(TypeError, match=f"param group 0.*{name}"):
            cyoptim.save_state(opt, path)
        assert path.read_bytes() == before and os.listdir(tmp_path) == ["opt.npz"]
    del opt.param_groups[0]["extra"]
    with pytest.raises(FileNotFoundError, match="does not exist"):
        cyoptim.save_state(opt, tmp_path / "missing" / "opt.npz")
    assert not (tmp_path / "missing").exists()
    with pytest.raises(TypeError, match="needs a cyoptim optimizer"):
        cyoptim.save_state(opt.state_dict(), path)
    with pytest.raises(TypeError, match="path must be a str or os.PathLike"):
        cyoptim.save_state(opt, 3)


# ---------------------------------------------------------------- files that do not fit


def stepped(cls=cyoptim.Adam, dtype=np.float64, shapes=None, n_groups=2, **kwargs):
    """An optimizer with state in two groups (or one), after a few steps."""
    params = make_params(dtype) if shapes is None else make_params(dtype, shapes=shapes)
    groups = groups_of(params, {"lr": 0.05}) if n_groups == 2 else [{"params": params}]
    opt = cls(groups, **kwargs)
    step_all(opt, grad_sequence(params, steps=12))
    return opt


def entries_of(path):
    with np.load(path, allow_pickle=False) as archive:
        return {key: archive[key] for key in archive.files}


def rewritten(path, target, **changes):
    """A copy of the archive at ``path`` with entries replaced (None: removed)."""
    entries = entries_of(path)
    for key, value in changes.items():
        key = key.replace("__", "/")
        if value is None:
            del entries[key]
        else:
            entries[key] = value
    np.savez(target, **entries)
    return target


def corrupted(path, target):
    """The archive with bytes flipped inside the data of a large state array."""
    data = bytearray(path.read_bytes())
    middle = data.index(b"state/2/exp_avg.npy") + 1000  # 24,000 bytes of data follow
    data[middle : middle + 8] = bytes(b ^ 0xFF for b in data[middle : middle + 8])
    target.write_bytes(bytes(data))
    return target


def groups_json(path, edit):
    groups = json.loads(str(entries_of(path)["param_groups"]))
    edit(groups)
    return np.array(json.dumps(groups))


def bad_files(good, tmp_path):
    """(name, file, exception type, message pattern): files load_state must refuse."""
    d = tmp_path

    def written(name, data):
        (d / name).write_bytes(data)
        return d / name

    def zip_with_text(target):
        with zipfile.ZipFile(target, "w") as archive:
            archive.writestr("notes.txt", "hello")
        return target

    listed = json.loads(str(entries_of(good)["state_entries"]))
    del listed["state/3/exp_avg_sq"]
    cases = [
        ("empty file", written("empty", b""), ValueError, "not a .npz archive"),
        ("text file", written("text", b"step=3\n"), ValueError, "not a .npz archive"),
        (
            "a pickle",
            written("pickle", pickle.dumps({"state": {}})),
            ValueError,
            "a pickle, which load_state never unpickles",
        ),
        (
            "a .npy",
            np.save(d / "one.npy", np.ones(3)) or d / "one.npy",
            ValueError,
            "single .npy array",
        ),
        ("truncated", written("cut", good.read_bytes()[:300]), ValueError, "damaged"),
        ("flipped bytes", corrupted(good, d / "flipped"), ValueError, "damaged"),
        ("zip of text", zip_with_text(d / "zip"), ValueError, "is not a .npy array"),
        (
            "object array",
            rewritten(good, d / "obj.npz", extra=np.array([{}], dtype=object)),
            ValueError,
            "'extra' holds pickled Python objects",
        ),
        (
            "no format",
            rewritten(good, d / "nofmt.npz", format=None),
            ValueError,
            "not a cyoptim checkpoint",
        ),
        (
            "other format",
            rewritten(good, d / "fmt.npz", format=np.array("keras")),
            ValueError,
            "not a cyoptim checkpoint",
        ),
        (
            "format not text",
            rewritten(good, d / "fmt2.npz", format=np.array(1)),
            ValueError,
            "'format' entry is not a text",
        ),
        (
            "newer version",
            rewritten(good, d / "v2.npz", version=np.array(2)),
            ValueError,
            "format version 2; this cyoptim reads version 1",
        ),
        (
            "version not int",
            rewritten(good, d / "v.npz", version=np.array(1.0)),
            ValueError,
            "'version' entry is missing or not an integer",
        ),
        (
            "no groups",
            rewritten(good, d / "nog.npz", param_groups=None),
            ValueError,
            r"lacks the entries \['param_groups'\]",
        ),
        (
            "bad JSON",
            rewritten(good, d / "json.npz", param_groups=np.array("[{")),
            ValueError,
            "'param_groups' entry is not valid JSON",
        ),
        (
            "groups not a list",
            rewritten(good, d / "gl.npz", param_groups=np.array("{}")),
            ValueError,
            "not a list of groups",
        ),
        (
            "unknown tag",
            rewritten(
                good,
                d / "tag.npz",
                param_groups=groups_json(good, lambda g: g[0].update(lr={"complex": [1, 2]})),
            ),
            ValueError,
            "no known type",
        ),
        (
            "no param indices",
            rewritten(
                good, d / "noidx.npz", param_groups=groups_json(good, lambda g: g[1].pop("params"))
            ),
            ValueError,
            "param group 1 has no list of param indices",
        ),
        (
            "missing state array",
            rewritten(good, d / "miss.npz", state__3__exp_avg_sq=None),
            ValueError,
            r"lacks the state entries \['state/3/exp_avg_sq'\]",
        ),
        (
            "unlisted entry",
            rewritten(good, d / "extra.npz", state__0__extra=np.ones(3)),
            ValueError,
            r"entries it does not list: \['state/0/extra'\]",
        ),
        (
            "bad key",
            rewritten(
                good,
                d / "key.npz",
                state_entries=np.array(
                    json.dumps(
                        {
                            **json.loads(str(entries_of(good)["state_entries"])),
                            "state/x/sum": "array",
                        }
                    )
                ),
                **{"state/x/sum": np.ones(3)},
            ),
            ValueError,
            "'state/x/sum' is not a state entry",
        ),
        (
            "state keys",
            rewritten(
                good,
                d / "keys.npz",
                state__3__exp_avg_sq=None,
                state_entries=np.array(json.dumps(listed)),
            ),
            ValueError,
            r"state of param 3 has keys \['exp_avg', 'step'\]",
        ),
        (
            "step not float",
            rewritten(good, d / "step.npz", state__0__step=np.array(3)),
            TypeError,
            "'state/0/step' should be a float",
        ),
        (
            "hyperparameter out of range",
            rewritten(
                good, d / "lr.npz", param_groups=groups_json(good, lambda g: g[0].update(lr=-1.0))
            ),
            ValueError,
            "Invalid learning rate: -1.0",
        ),
    ]
    return cases


def test_files_that_do_not_fit_change_nothing(tmp_path):
    """Every damaged, foreign or doctored file is refused with a message naming the
    problem, and params, state and param groups are exactly as before."""
    good = tmp_path / "good.npz"
    cyoptim.save_state(stepped(), good)
    opt = stepped()
    before = snapshot(opt)
    before_groups = exact_groups(opt)
    for name, path, error, match in bad_files(good, tmp_path):
        with pytest.raises(error, match=match) as refused:
            cyoptim.load_state(opt, path)
        assert type(refused.value) is error, name
        assert str(path) in str(refused.value), name
        assert_unchanged(opt, before)
        assert exact_groups(opt) == before_groups, name
    cyoptim.load_state(opt, good)  # and the good file still loads


@pytest.mark.parametrize(
    "saved, target, error, match",
    [
        (
            lambda: stepped(cyoptim.Adam),
            lambda: stepped(cyoptim.AdamW),
            ValueError,
            "holds the state of a Adam optimizer; it cannot be loaded into a AdamW",
        ),
        (
            lambda: stepped(dtype=np.float32),
            lambda: stepped(),
            ValueError,
            r"state 'exp_avg\w*' of param 0 is an array of dtype float32",
        ),
        (
            lambda: stepped(shapes=[(17, 9), (5,), (3000,), (2, 3, 5)]),
            lambda: stepped(),
            ValueError,
            r"state 'exp_avg\w*' of param 3 is an array of dtype float64 and "
            r"shape \(2, 3, 5\)",
        ),
        (
            lambda: stepped(n_groups=1),
            lambda: stepped(),
            ValueError,
            "has 1 parameter groups, but the optimizer has 2",
        ),
        (
            lambda: stepped(shapes=[(17, 9), (5,), (3000,), (2, 3, 4), (6,)]),
            lambda: stepped(),
            ValueError,
            "doesn't match the size of optimizer's group",
        ),
    ],
    ids=["class", "dtype", "shape", "group count", "group size"],
)
def test_another_optimizers_file_changes_nothing(saved, target, error, match, tmp_path):
    path = tmp_path / "opt.npz"
    cyoptim.save_state(saved(), path)
    opt = target()
    before = snapshot(opt)
    before_groups = exact_groups(opt)
    with pytest.raises(error, match=match) as refused:
        cyoptim.load_state(opt, path)
    assert str(path) in str(refused.value)
    assert_unchanged(opt, before)
    assert exact_groups(opt) == before_groups


def test_np_savez_of_a_state_dict_is_refused(tmp_path):
    """The issue's trap: np.savez(**opt.state_dict()) "succeeds" by pickling the dicts;
    load_state says so instead of unpickling it."""
    opt = stepped()
    np.savez(tmp_path / "wrong.npz", **opt.state_dict())
    before = snapshot(opt)
    with pytest.raises(ValueError, match="holds pickled Python objects"):
        cyoptim.load_state(opt, tmp_path / "wrong.npz")
    assert_unchanged(opt, before)


def test_load_state_arguments(tmp_path):
    opt = stepped()
    with pytest.raises(FileNotFoundError):
        cyoptim.load_state(opt, tmp_path / "absent.npz")
    with pytest.raises(TypeError, match="load_state needs a cyoptim optimizer"):
        cyoptim.load_state(schedules.StepLR(opt, 2), tmp_path / "absent.npz")
    with pytest.raises(TypeError, match="path must be a str or os.PathLike"):
        cyoptim.load_state(opt, None)


def test_a_file_loads_into_the_numpy_twin(tmp_path):
    """cyoptim.reference twins share the class name and layout: checkpoints move freely."""
    params = make_params(np.float64)
    seq = grad_sequence(params, steps=12)
    fast = cyoptim.RMSprop(params, lr=0.01, momentum=0.9, centered=True)
    step_all(fast, seq[:6])
    cyoptim.save_state(fast, tmp_path / "opt.npz")
    twin = cyoptim.reference.RMSprop(
        [p.copy() for p in params], lr=0.01, momentum=0.9, centered=True
    )
    cyoptim.load_state(twin, tmp_path / "opt.npz")
    step_all(fast, seq[6:])
    step_all(twin, seq[6:])
    assert_same_run(fast, twin)


@pytest.mark.parametrize(
    "momenta",
    [[0.0] * 5 + [0.9] * 10, [0.9] * 5 + [0.0] * 3 + [0.9] * 7],
    ids=["switched on", "off and on again"],
)
@pytest.mark.parametrize("cls", [cyoptim.SGD, cyoptim.RMSprop], ids=["SGD", "RMSprop"])
def test_momentum_changed_mid_run_survives_a_checkpoint(cls, momenta, tmp_path):
    """A buffer that outlives its flag (momentum set to 0), or a momentum switched
    on mid-run: a checkpoint and a pickle taken then resume bitwise."""
    params = make_params(np.float64)
    seq = grad_sequence(params, steps=len(momenta))
    opt = cls(params, lr=0.01, momentum=momenta[0])
    copies = []
    for t, grads in enumerate(seq):
        if t == 6:
            cyoptim.save_state(opt, tmp_path / "opt.npz")
            resumed = cls([p.copy() for p in params], lr=0.5)
            cyoptim.load_state(resumed, tmp_path / "opt.npz")
            copies = [resumed, pickle.loads(pickle.dumps(opt))]
        for o in [opt, *copies]:
            for group in o.param_groups:
                group["momentum"] = momenta[t]
            o.step(grads)
    for resumed in copies:
        assert_same_run(opt, resumed)


# ---------------------------------------------------------------- pickle and deepcopy


def clones():
    return {"pickle": lambda opt: pickle.loads(pickle.dumps(opt)), "deepcopy": copy.deepcopy}


@pytest.mark.parametrize("how", list(clones()))
@pytest.mark.parametrize("twin", [False, True], ids=["kernel", "numpy-twin"])
@pytest.mark.parametrize("row", ROWS, ids=row_id)
def test_pickled_and_deep_copied_optimizers_step_alike(row, twin, how, dtype):
    """The copy owns new param arrays and the state: stepping it leaves the original
    untouched, and stepping both the same way gives the same bits."""
    cls = reference_class(row) if twin else optimizer_class(row)
    params = make_params(dtype)
    seq = grad_sequence(params, steps=STEPS)
    opt = build(cls, params, row)
    step_all(opt, seq[:SAVE_AT])
    clone = clones()[how](opt)
    assert type(clone) is cls
    assert_same_run(opt, clone)
    for original, copied in zip(params_of(opt), params_of(clone), strict=True):
        assert not np.shares_memory(original, copied)
        assert copied.flags.writeable and copied.dtype == original.dtype
    before = snapshot(opt)
    step_all(clone, seq[SAVE_AT:])
    assert_unchanged(opt, before)
    clone_after = snapshot(clone)
    step_all(opt, seq[SAVE_AT:])
    assert_unchanged(clone, clone_after)
    assert_same_run(opt, clone)


def test_pickling_params_with_their_optimizer_keeps_them_linked():
    """Pickled together, the unpickled optimizer updates the unpickled params."""
    params = make_params(np.float32)
    opt = cyoptim.Adam(params, lr=0.1)
    opt.step([np.ones_like(p) for p in params])
    copied_params, copied = pickle.loads(pickle.dumps((params, opt)))
    assert all(a is b for a, b in zip(copied_params, params_of(copied)))
    copied.step([np.ones_like(p) for p in params])
    opt.step([np.ones_like(p) for p in params])
    for a, b in zip(params, copied_params):
        np.testing.assert_array_equal(a, b)


def test_shallow_copy_shares_the_params_not_the_state():
    w = np.ones(4)
    opt = cyoptim.SGD([w], lr=0.1, momentum=0.9)
    opt.step([np.ones(4)])
    other = copy.copy(opt)
    assert other.param_groups[0]["params"][0] is w
    assert other._plans[0] is not opt._plans[0]
    other.step([np.ones(4)])
    np.testing.assert_array_equal(opt.state[0]["momentum_buffer"], np.ones(4))
    np.testing.assert_array_equal(other.state[0]["momentum_buffer"], np.full(4, 1.9))


@pytest.mark.parametrize("cls", [cyoptim.Adam, cyoptim.LAMB], ids=["Adam", "LAMB"])
def test_deep_copy_over_a_param_buffer(cls):
    """The copy's params are arrays of their own (no longer one block): same bits."""
    buf = cyoptim.ParamBuffer([(40, 30), (30,), (7,)], np.float32)
    for k, p in enumerate(buf.params):
        p[...] = np.random.default_rng(k).standard_normal(p.shape)
    opt = cls(buf.params, lr=0.01, weight_decay=0.1)
    rng = np.random.default_rng(5)
    grads = [
        [rng.standard_normal(p.shape).astype(np.float32) for p in buf.params] for _ in range(6)
    ]
    step_all(opt, grads[:3])
    clone = copy.deepcopy(opt)
    step_all(opt, grads[3:])
    step_all(clone, grads[3:])
    assert_same_run(opt, clone)


# ---------------------------------------------------------------- schedulers


def lr_factor(step):  # module level: pickle saves it by name
    return 0.9**step


def scale_half(x):
    return 0.5


SCHEDULERS = {
    "StepLR": lambda opt: schedules.StepLR(opt, step_size=2, gamma=0.5),
    "MultiStepLR": lambda opt: schedules.MultiStepLR(opt, [2, 4]),
    "ExponentialLR": lambda opt: schedules.ExponentialLR(opt, 0.9),
    "ConstantLR": lambda opt: schedules.ConstantLR(opt, factor=0.5, total_iters=3),
    "LinearLR": lambda opt: schedules.LinearLR(opt, start_factor=0.1, total_iters=4),
    "PolynomialLR": lambda opt: schedules.PolynomialLR(opt, total_iters=8, power=2.0),
    "CosineAnnealingLR": lambda opt: schedules.CosineAnnealingLR(opt, T_max=5),
    "CosineAnnealingWarmRestarts": lambda opt: schedules.CosineAnnealingWarmRestarts(opt, 3),
    "CyclicLR": lambda opt: schedules.CyclicLR(opt, 0.01, 0.1, step_size_up=3),
    "CyclicLR-scale_fn": lambda opt: schedules.CyclicLR(
        opt, 0.01, 0.1, step_size_up=3, scale_fn=scale_half
    ),
    "OneCycleLR": lambda opt: schedules.OneCycleLR(opt, 0.1, total_steps=20),
    "LambdaLR": lambda opt: schedules.LambdaLR(opt, [lr_factor, lr_factor]),
    "SequentialLR": lambda opt: schedules.SequentialLR(
        opt,
        [
            schedules.LinearLR(opt, start_factor=0.1, total_iters=3),
            schedules.ExponentialLR(opt, 0.8),
        ],
        milestones=[3],
    ),
    "ReduceLROnPlateau": lambda opt: schedules.ReduceLROnPlateau(opt, patience=1),
    "MultiplicativeLR": lambda opt: schedules.MultiplicativeLR(opt, [lr_factor, lr_factor]),
    "SWALR": lambda opt: schedules.SWALR(opt, 0.01, anneal_epochs=4),
    "ChainedScheduler": lambda opt: schedules.ChainedScheduler(
        [schedules.ConstantLR(opt, factor=0.5, total_iters=3), schedules.ExponentialLR(opt, 0.8)],
        optimizer=opt,
    ),
}
LOSSES = [1.0, 0.9, 0.95, 0.97, 0.99, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1]


def train(opt, sched, grads_seq, losses):
    for grads, loss in zip(grads_seq, losses):
        opt.step(grads)
        if isinstance(sched, schedules.ReduceLROnPlateau):
            sched.step(loss)
        else:
            sched.step()


def sgd_with_two_groups():
    params = make_params(np.float64)
    return cyoptim.SGD(groups_of(params, {"lr": 0.05}), lr=0.1, momentum=0.9)


@pytest.mark.parametrize("how", list(clones()))
@pytest.mark.parametrize("name", list(SCHEDULERS))
def test_schedulers_carry_their_optimizer_along(name, how):
    """Pickling a scheduler pickles its optimizer; copy.deepcopy((opt, sched)) gives a
    scheduler that drives the copied optimizer. Both pairs then go on alike, and the
    original is untouched by the copy."""
    opt = sgd_with_two_groups()
    sched = SCHEDULERS[name](opt)
    seq = grad_sequence(params_of(opt), steps=len(LOSSES))
    train(opt, sched, seq[:5], LOSSES[:5])
    if how == "pickle":
        copied_sched = pickle.loads(pickle.dumps(sched))
        copied_opt = copied_sched.optimizer
    else:
        copied_opt, copied_sched = copy.deepcopy((opt, sched))
    assert copied_sched.optimizer is copied_opt and copied_opt is not opt
    for inner in getattr(copied_sched, "_schedulers", []):
        assert inner.optimizer is copied_opt
    assert copied_sched.get_last_lr() == sched.get_last_lr()
    before, lrs = snapshot(opt), sched.get_last_lr()
    train(copied_opt, copied_sched, seq[5:], LOSSES[5:])
    assert_unchanged(opt, before)
    assert sched.get_last_lr() == lrs
    train(opt, sched, seq[5:], LOSSES[5:])
    assert copied_sched.get_last_lr() == sched.get_last_lr()
    assert_same_run(opt, copied_opt)


@pytest.mark.parametrize(
    "make, attribute",
    [
        (lambda opt: schedules.LambdaLR(opt, lambda step: 0.9**step), "lr_lambdas"),
        (
            lambda opt: schedules.LambdaLR(opt, schedules.linear_schedule(1.0, 0.1, 10)),
            "lr_lambdas",
        ),
        (
            lambda opt: schedules.CyclicLR(opt, 0.01, 0.1, scale_fn=lambda x: 1.0),
            "_scale_fn_custom",
        ),
    ],
    ids=["lambda", "pure schedule", "CyclicLR scale_fn"],
)
def test_a_lambda_makes_pickling_fail_clearly_but_copies_work(make, attribute):
    opt = sgd_with_two_groups()
    sched = make(opt)
    name = type(sched).__name__
    with pytest.raises(
        pickle.PicklingError,
        match=f"{name} cannot be pickled: its function .* \\(in {attribute}\\) "
        f"is a lambda or a nested function",
    ):
        pickle.dumps(sched)
    with pytest.raises(pickle.PicklingError, match=f"{name} cannot be pickled"):
        pickle.dumps((opt, [sched]))
    for copied in (copy.deepcopy(sched), copy.copy(sched)):
        assert getattr(copied, attribute) == getattr(sched, attribute)  # the functions
        copied.step()
        assert copied.get_last_lr() == copied.get_lr()
    copied_opt, copied_sched = copy.deepcopy((opt, sched))
    copied_sched.step()
    assert copied_sched.optimizer is copied_opt
    assert [g["lr"] for g in copied_opt.param_groups] == copied_sched.get_last_lr()


def test_docstring_examples_run():
    """The examples in the docstrings of the checkpoint code are right."""
    finder, runner = (
        doctest.DocTestFinder(),
        doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE),
    )
    tests = finder.find(checkpoint) + finder.find(
        cyoptim.Optimizer.__getstate__, "Optimizer.__getstate__"
    )
    assert sum(len(t.examples) for t in tests) >= 20
    for test in tests:
        runner.run(test)
    assert runner.failures == 0
