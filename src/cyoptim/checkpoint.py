"""Pickle-free checkpoints of an optimizer: ``save_state`` and ``load_state``.

``save_state(opt, path)`` writes ``opt.state_dict()`` to a ``.npz`` archive that
``np.load(path, allow_pickle=False)`` reads; ``load_state(opt, path)`` restores
it, bitwise. (``np.savez(path, **opt.state_dict())`` is not a checkpoint: NumPy
pickles the two dicts into object arrays, which a safe ``np.load`` refuses.)

Example:
    >>> import os, tempfile
    >>> import numpy as np, cyoptim
    >>> w = np.ones(3)
    >>> opt = cyoptim.Adam([w], lr=0.1)
    >>> opt.step([np.full(3, 0.5)])
    >>> path = os.path.join(tempfile.mkdtemp(), "opt.npz")
    >>> cyoptim.save_state(opt, path)
    >>> sorted(np.load(path, allow_pickle=False).files)     # doctest: +NORMALIZE_WHITESPACE
    ['format', 'optimizer', 'param_groups', 'state/0/exp_avg', 'state/0/exp_avg_sq',
     'state/0/step', 'state_entries', 'version']
    >>> resumed = cyoptim.Adam([w.copy()], lr=0.1)
    >>> cyoptim.load_state(resumed, path)
    >>> resumed.state[0]["step"]
    1.0
    >>> np.array_equal(resumed.state[0]["exp_avg"], opt.state[0]["exp_avg"])
    True

The archive (format ``"cyoptim.optimizer_state"``, version 1) holds:

``format``, ``version``, ``optimizer``
    0-d arrays: the format tag, its version (int64) and the optimizer's class
    name (``"AdamW"``); ``load_state`` refuses another class.
``param_groups``
    0-d unicode array: ``state_dict()["param_groups"]`` as JSON text, every
    value with its exact type (see below).
``state_entries``
    0-d unicode array: JSON ``{key: kind}`` naming every state entry of the
    archive, kind ``"array"`` or the Python type of a number (``"float"``,
    ``"int"``, ``"bool"``), so that a missing entry is noticed.
``state/<i>/<name>``
    ``state_dict()["state"][i][name]``: arrays as they are (shape, dtype),
    numbers (``step``, NAdam's ``mu_product``) as 0-d float64 (int64, bool)
    arrays.

In the JSON of ``param_groups``, strings, finite floats, ints, bools, None and
lists stand for themselves (a float is written with ``repr``, so it reads back
bitwise); every other value is a JSON object with one key naming its type:
``{"tuple": [...]}``, ``{"float": "inf"}`` (also ``"-inf"``, ``"nan"``),
``{"numpy": ["float32", 0.1]}`` (a NumPy scalar) and ``{"dict": {...}}``.
"""

import json
import math
import os
import secrets
import zipfile

import numpy as np

from . import precision
from .optimizer import Optimizer

FORMAT = "cyoptim.optimizer_state"
VERSION = 1
_HEADER = ("format", "version", "optimizer", "param_groups", "state_entries")
_STATE_PREFIX = "state/"
# Python number types of state entries, the dtype each is stored with
_NUMBERS = {"float": (float, np.float64), "int": (int, np.int64), "bool": (bool, np.bool_)}


def save_state(opt, path):
    """Write the optimizer's state to ``path``: a ``.npz`` archive, no pickle.

    Everything of ``opt.state_dict()`` is saved: each param's state arrays and
    numbers under ``state/<param index>/<name>``, and the param groups (every
    hyperparameter, with extra keys such as a scheduler's ``initial_lr``) as
    JSON. ``load_state`` restores it bitwise; ``np.load(path,
    allow_pickle=False)`` reads it anywhere.

    The file is written exactly at ``path`` (no ``.npz`` is appended, unlike
    ``np.savez``), and atomically: to a temporary file in the same folder,
    which then replaces ``path``, so an interrupted save leaves the previous
    file (or none), never half a file. (A process killed outright mid-save
    may leave that ``.<name>.<random>.tmp`` file behind; an exception removes it.)

    Args:
        opt: a cyoptim optimizer.
        path: str or os.PathLike; its folder must exist.

    Raises:
        TypeError: ``opt`` is not an optimizer, ``path`` not a path, or a param
            group holds a value JSON cannot carry exactly (an array, a
            callable, ...): nothing is written then.

    Example:
        >>> import os, tempfile
        >>> import numpy as np, cyoptim
        >>> opt = cyoptim.SGD([np.zeros(3)], lr=0.1, momentum=0.9)
        >>> path = os.path.join(tempfile.mkdtemp(), "checkpoint.npz")
        >>> cyoptim.save_state(opt, path)
        >>> str(np.load(path, allow_pickle=False)["optimizer"])
        'SGD'
    """
    _check_optimizer(opt, "save_state")
    path = _fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"cannot save to {path}: the folder {folder} does not exist")
    entries = _entries(opt)
    # numeric and text arrays only: nothing to pickle
    _write_atomically(path, folder, lambda file: np.savez(file, **entries))


def load_state(opt, path):
    """Restore the state ``save_state`` wrote to ``path`` into ``opt``.

    The whole file is read and checked before anything changes: the format
    tag and version, the optimizer's class, the entries the file lists, then
    (by ``opt.load_state_dict``) the group count and sizes, every
    hyperparameter, and each state's keys, shapes and dtypes. A file that
    does not fit raises ValueError or TypeError naming the file and the
    problem, and leaves params, state and param groups exactly as they were.

    ``opt`` must be built as the saved one was: the same class, the same
    param groups with params of the same shapes and dtypes (the params'
    values are the model's, not part of the file).

    Args:
        opt: a cyoptim optimizer.
        path: str or os.PathLike of a file written by ``save_state``.

    Raises:
        ValueError: not a ``.npz`` archive, one holding pickled objects, not
            a cyoptim checkpoint, another optimizer class or format version,
            missing or unexpected entries, or a state that does not fit.
        TypeError: ``opt`` is not an optimizer, or a state entry has the
            wrong type.

    Example:
        >>> import os, tempfile
        >>> import numpy as np, cyoptim
        >>> opt = cyoptim.SGD([np.zeros(3)], lr=0.1, momentum=0.9)
        >>> opt.step([np.ones(3)])
        >>> path = os.path.join(tempfile.mkdtemp(), "checkpoint.npz")
        >>> cyoptim.save_state(opt, path)
        >>> fresh = cyoptim.SGD([np.zeros(3)], lr=0.5, momentum=0.9)
        >>> cyoptim.load_state(fresh, path)
        >>> fresh.param_groups[0]["lr"], fresh.state[0]["momentum_buffer"]
        (0.1, array([1., 1., 1.]))
    """
    _check_optimizer(opt, "load_state")
    path = _fspath(path)
    state_dict = _read_state_dict(_read_archive(path), path, type(opt).__name__)
    try:
        opt.load_state_dict(state_dict)
    except (ValueError, TypeError) as exc:
        raise type(exc)(f"{path} does not fit this {type(opt).__name__}: {exc}") from exc


# -- Saving --------------------------------------------------------------------------


def _entries(opt):
    """{archive key: array} of the optimizer's state_dict; raises before any write."""
    state_dict = opt.state_dict()
    groups = [
        {
            name: _encode(value, f"param group {g}, {name!r}")
            for name, value in _string_keys(group, f"param group {g}").items()
        }
        for g, group in enumerate(state_dict["param_groups"])
    ]
    entries, kinds = {}, {}
    for index, entry in state_dict["state"].items():
        for name, value in entry.items():
            key = f"{_STATE_PREFIX}{index}/{name}"
            if isinstance(value, np.ndarray) and value.dtype.kind in "biufc":
                entries[key], kinds[key] = value, "array"
                continue
            if isinstance(value, np.ndarray) and value.dtype == precision.BFLOAT16:
                # .npy has no bfloat16: its bits, as uint16, and the kind says so.
                entries[key], kinds[key] = value.view(np.uint16), "bfloat16"
                continue
            kind = _number_kind(value)
            if kind is None:
                raise TypeError(
                    f"cannot save state {name!r} of param {index}: a "
                    f"{type(value).__name__}; a checkpoint holds numeric arrays "
                    f"and numbers only"
                )
            entries[key], kinds[key] = np.array(value, _NUMBERS[kind][1]), kind
    entries.update(
        format=np.array(FORMAT),
        version=np.array(VERSION, np.int64),
        optimizer=np.array(type(opt).__name__),
        param_groups=np.array(json.dumps(groups, allow_nan=False)),
        state_entries=np.array(json.dumps(kinds)),
    )
    return entries


def _number_kind(value):
    """ "bool", "int" or "float" for a Python (or NumPy) number, else None."""
    if isinstance(value, (bool, np.bool_)):
        return "bool"
    if isinstance(value, (int, np.integer)):
        return "int"
    if isinstance(value, (float, np.floating)):
        return "float"
    return None


def _string_keys(mapping, where):
    for key in mapping:
        if not isinstance(key, str):
            raise TypeError(f"cannot save {where}: key {key!r} is not a string")
    return mapping


def _encode(value, where):
    """A JSON value that ``_decode`` turns back into exactly ``value``."""
    if value is None or type(value) in (str, bool, int):
        return value
    if type(value) is float:
        return value if math.isfinite(value) else {"float": repr(value)}
    if isinstance(value, np.generic) and value.dtype.kind in "biuf":
        return {"numpy": [value.dtype.name, _encode(value.item(), where)]}
    if type(value) is list:
        return [_encode(v, where) for v in value]
    if type(value) is tuple:
        return {"tuple": [_encode(v, where) for v in value]}
    if type(value) is dict:
        return {"dict": {k: _encode(v, where) for k, v in _string_keys(value, where).items()}}
    raise TypeError(
        f"cannot save {where}: a {type(value).__name__} (a checkpoint keeps "
        f"hyperparameters as JSON: numbers, bools, strings, None, and lists, "
        f"tuples and dicts of them)"
    )


def _write_atomically(path, folder, write):
    """``write(file)`` to a new binary file beside ``path``, then os.replace: no half files."""
    temporary = os.path.join(folder, f".{os.path.basename(path)}.{secrets.token_hex(8)}.tmp")
    # O_EXCL: a new file of our own; mode 0o666 less the umask, as open(path, "wb") gives
    fd = os.open(
        temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666
    )
    try:
        with os.fdopen(fd, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise
    try:  # make the rename itself durable (POSIX; a no-op elsewhere)
        folder_fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(folder_fd)
    except OSError:
        pass
    finally:
        os.close(folder_fd)


# -- Loading -------------------------------------------------------------------------


def _read_archive(path):
    """{key: array} of every entry, read with allow_pickle=False; ValueError if unreadable."""
    with open(path, "rb") as file:
        magic = file.read(4)
    if not magic.startswith(b"PK"):
        what = (
            "a pickle, which load_state never unpickles"
            if magic[:1] == b"\x80"
            else "a single .npy array"
            if magic == b"\x93NUM"
            else "of an unknown kind"
        )
        raise ValueError(
            f"{path} is not a cyoptim checkpoint: not a .npz archive (the file is {what})"
        )
    try:
        archive = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise ValueError(
            f"{path} is not a cyoptim checkpoint: a damaged .npz archive ({exc})"
        ) from exc
    with archive:
        entries = {}
        for key in archive.files:
            try:
                entries[key] = archive[key]
            except ValueError as exc:
                if "pickle" not in str(exc):
                    raise ValueError(f"{path}: entry {key!r} cannot be read ({exc})") from exc
                raise ValueError(
                    f"{path}: entry {key!r} holds pickled Python objects; a "
                    f"cyoptim checkpoint never does, and load_state does not "
                    f"unpickle"
                ) from exc
            except (OSError, EOFError, zipfile.BadZipFile) as exc:
                raise ValueError(f"{path}: entry {key!r} is damaged ({exc})") from exc
            if not isinstance(entries[key], np.ndarray):  # NumPy hands other members as bytes
                raise ValueError(f"{path}: entry {key!r} is not a .npy array")
    return entries


def _read_state_dict(entries, path, class_name):
    """The state_dict the archive holds; ValueError/TypeError if it is not one."""
    missing = [key for key in _HEADER if key not in entries]
    if "format" in missing or _text(entries, "format", path) != FORMAT:
        raise ValueError(
            f"{path} is not a cyoptim checkpoint: its 'format' entry is not "
            f"{FORMAT!r} (written by cyoptim.save_state)"
        )
    version = entries.get("version")
    if version is None or version.shape != () or version.dtype.kind not in "iu":
        raise ValueError(f"{path}: the 'version' entry is missing or not an integer")
    if int(version) != VERSION:
        raise ValueError(
            f"{path} has checkpoint format version {int(version)}; this cyoptim "
            f"reads version {VERSION}"
        )
    if missing:
        raise ValueError(f"{path} lacks the entries {missing} of a cyoptim checkpoint")
    saved_class = _text(entries, "optimizer", path)
    if saved_class != class_name:
        raise ValueError(
            f"{path} holds the state of a {saved_class} optimizer; it cannot be "
            f"loaded into a {class_name}"
        )
    groups = _json(entries, "param_groups", path)
    if not isinstance(groups, list) or not all(isinstance(g, dict) for g in groups):
        raise ValueError(f"{path}: 'param_groups' is not a list of groups")
    groups = [{name: _decode(value, path) for name, value in group.items()} for group in groups]
    for g, group in enumerate(groups):
        indices = group.get("params")
        if not isinstance(indices, list) or not all(type(i) is int for i in indices):
            raise ValueError(f"{path}: param group {g} has no list of param indices")
    kinds = _json(entries, "state_entries", path)
    if not isinstance(kinds, dict):
        raise ValueError(f"{path}: 'state_entries' is not a JSON object")
    stored = set(entries) - set(_HEADER)
    lacking, unexpected = sorted(set(kinds) - stored), sorted(stored - set(kinds))
    if lacking:
        raise ValueError(f"{path} lacks the state entries {lacking} that it lists")
    if unexpected:
        raise ValueError(f"{path} has entries it does not list: {unexpected}")
    state = {}
    for key, kind in kinds.items():
        index, name = _state_key(key, path)
        state.setdefault(index, {})[name] = _state_value(entries[key], kind, key, path)
    return {"state": state, "param_groups": groups}


def _text(entries, key, path):
    value = entries[key]
    if value.shape != () or value.dtype.kind != "U":
        raise ValueError(f"{path}: the {key!r} entry is not a text (a 0-d unicode array)")
    return str(value)


def _json(entries, key, path):
    try:
        return json.loads(_text(entries, key, path))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: the {key!r} entry is not valid JSON ({exc})") from exc


def _state_key(key, path):
    """(param index, state name) of a ``state/<i>/<name>`` key."""
    parts = key.split("/", 2)
    if (
        len(parts) != 3
        or parts[0] + "/" != _STATE_PREFIX
        or not parts[1].isdigit()
        or str(int(parts[1])) != parts[1]
        or not parts[2]
    ):
        raise ValueError(f"{path}: {key!r} is not a state entry (state/<param index>/<name>)")
    return int(parts[1]), parts[2]


def _state_value(value, kind, key, path):
    if kind == "array":
        return value
    if kind == "bfloat16":
        if value.dtype != np.uint16 or precision.BFLOAT16 is None:
            raise TypeError(
                f"{path}: state entry {key!r} should hold bfloat16 bits as "
                f"uint16 (and ml_dtypes be installed), got dtype {value.dtype}"
            )
        return value.view(precision.BFLOAT16)
    if kind not in _NUMBERS:
        raise ValueError(f"{path}: state entry {key!r} has the unknown kind {kind!r}")
    python_type, dtype = _NUMBERS[kind]
    if value.shape != () or value.dtype != dtype:
        raise TypeError(
            f"{path}: state entry {key!r} should be a {kind} (a 0-d {np.dtype(dtype)} "
            f"array), got an array of dtype {value.dtype} and shape {value.shape}"
        )
    return python_type(value)


def _decode(value, path):
    """The Python value ``_encode`` wrote as ``value``."""
    if isinstance(value, list):
        return [_decode(v, path) for v in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        ((tag, inner),) = value.items()
        if tag == "tuple" and isinstance(inner, list):
            return tuple(_decode(v, path) for v in inner)
        if tag == "float" and inner in ("inf", "-inf", "nan"):
            return float(inner)
        if tag == "dict" and isinstance(inner, dict):
            return {k: _decode(v, path) for k, v in inner.items()}
        if (
            tag == "numpy"
            and isinstance(inner, list)
            and len(inner) == 2
            and inner[0] in _NUMPY_SCALARS
        ):
            return np.dtype(inner[0]).type(_decode(inner[1], path))
    raise ValueError(f"{path}: 'param_groups' holds a value of no known type: {value!r}")


_NUMPY_SCALARS = {
    np.dtype(t).name
    for t in (
        np.bool_,
        np.int8,
        np.int16,
        np.int32,
        np.int64,
        np.uint8,
        np.uint16,
        np.uint32,
        np.uint64,
        np.float16,
        np.float32,
        np.float64,
    )
}


# -- Arguments -----------------------------------------------------------------------


def _check_optimizer(opt, function):
    if not isinstance(opt, Optimizer):
        raise TypeError(f"{function} needs a cyoptim optimizer, got {type(opt).__name__}")


def _fspath(path):
    try:
        path = os.fspath(path)
    except TypeError:
        raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}") from None
    return os.fsdecode(path)
