"""Golden outputs: a bitwise record of what every optimizer computes.

A refactor of the kernel plumbing (``pyx/*.pxi``) or of the optimizer classes
must not change a single bit of any result. This module runs a fixed set of
cases through the public API only (``cyoptim.<Class>(params_or_groups,
**kwargs)``, ``opt.step(grads)``, ``opt.state_dict()``, ``cyoptim.ParamBuffer``,
``cyoptim.set_num_threads``), so the same code runs unchanged before and after
such a refactor. ``tests/data/golden.npz`` holds the record made from main;
``tests/test_golden.py`` and ``tools/golden.py check`` compare with it bit for bit.

A case is one optimizer with one flag combination. Each case runs in both
dtypes and two layouts (a "run"):

- ``groups``: separate arrays in two param groups (the second overrides lr and
  one more hyperparameter), grads missing on some steps (lazy state, step
  counts that diverge between params, a step where a whole group has no grad),
  and every group's lr halved mid-run, as a schedule would.
- ``buffer``: one ``ParamBuffer`` group in which every param has a grad at
  every step: the fused contiguous-run path.

Results are flat ``{key: array}`` dicts with keys such as
``adam/amsgrad=1,maximize=0,weight_decay=0.1,decoupled_weight_decay=0/float32/groups/param3``,
``.../state3/exp_avg``, ``.../state3/step`` (a 0-d array) and ``.../param_groups``
(the state_dict's groups as JSON).

The input data comes from an integer hash (splitmix64), not from NumPy's random
generators, so it is the same bits under every NumPy version CI runs.
"""

import functools
import itertools
import json
import math
import warnings
from pathlib import Path

import numpy as np

import cyoptim

GOLDEN_PATH = Path(__file__).resolve().parent / "data" / "golden.npz"

STEPS = 20
DTYPES = ("float32", "float64")
LAYOUTS = ("groups", "buffer")
THREADS = (1, 2)

# Small shapes with odd sizes (SIMD bodies, vector and scalar remainders).
# Param 1 starts at zero like a bias (LAMB's trust ratio is 1 while ||p|| = 0).
# In the groups layout, group 0 holds params 0 and 1 and group 1 the rest.
SHAPES = [(5, 7), (5,), (29,), (2, 3, 4)]
ZERO_PARAMS = (1,)
GROUP0_SIZE = 2
# LAMB and Adafactor (the optimizers whose step reduces) also get a tensor
# larger than one 4096-element reduction chunk, so their norms are summed in
# chunks. Its data repeats a PERIOD-element pattern: element-wise updates keep the pattern,
# so deflate stores the results in a few hundred bytes, while the norms still
# depend on how the chunks are summed and combined.
LARGE_SHAPE = (5003,)
REDUCING = ("lamb", "adafactor")
PERIOD = 61

# Optimizer -> (class name, kwargs shared by all its cases, overrides of the
# second param group, flag axes: name -> values, valid(flags) or None). The
# axes are those the per-optimizer tests parametrize over; CASES is their
# product.
OPTIMIZERS = {
    "sgd": (
        "SGD",
        dict(lr=1e-2),
        dict(lr=3e-2),
        dict(
            momentum=[0.0, 0.9],
            dampening=[0.0, 0.3],
            nesterov=[False, True],
            weight_decay=[0.0, 0.01],
            maximize=[False, True],
        ),
        # torch refuses Nesterov without momentum or with dampening.
        lambda f: not (f["nesterov"] and (f["momentum"] == 0 or f["dampening"] != 0)),
    ),
    "adam": (
        "Adam",
        dict(lr=1e-2, betas=(0.8, 0.99), eps=1e-6),
        dict(lr=3e-2, betas=(0.3, 0.5)),
        dict(
            amsgrad=[False, True],
            maximize=[False, True],
            weight_decay=[0.0, 0.1],
            decoupled_weight_decay=[False, True],
        ),
        None,
    ),
    "adamw": (
        "AdamW",
        dict(lr=1e-2),
        dict(lr=3e-2, betas=(0.3, 0.5)),
        dict(amsgrad=[False, True], maximize=[False, True], weight_decay=[0.0, 0.01]),
        None,
    ),
    "adagrad": (
        "Adagrad",
        dict(lr=0.1),
        dict(lr=0.3, lr_decay=0.05, eps=1e-3),
        dict(
            maximize=[False, True],
            weight_decay=[0.0, 0.1],
            lr_decay=[0.0, 0.01],
            initial_accumulator_value=[0.0, 0.1],
        ),
        None,
    ),
    "rmsprop": (
        "RMSprop",
        dict(lr=1e-2),
        dict(lr=3e-2, alpha=0.5, eps=1e-3),
        dict(
            maximize=[False, True],
            weight_decay=[0.0, 0.1],
            momentum=[0.0, 0.9],
            centered=[False, True],
        ),
        None,
    ),
    "adadelta": (
        "Adadelta",
        dict(lr=1.0),
        dict(lr=0.3, rho=0.5, eps=1e-3),
        dict(maximize=[False, True], weight_decay=[0.0, 0.1], rho=[0.9, 0.3]),
        None,
    ),
    "adamax": (
        "Adamax",
        dict(lr=1e-2, betas=(0.8, 0.99), eps=1e-6),
        dict(lr=3e-2, betas=(0.3, 0.5)),
        dict(maximize=[False, True], weight_decay=[0.0, 0.1]),
        None,
    ),
    "nadam": (
        "NAdam",
        dict(lr=1e-2, momentum_decay=0.01),
        dict(lr=3e-2, betas=(0.3, 0.5), momentum_decay=0.1),
        dict(
            maximize=[False, True], weight_decay=[0.0, 0.1], decoupled_weight_decay=[False, True]
        ),
        None,
    ),
    # Default beta2: group 0 is unrectified for 4 steps, then rectified; group
    # 1's beta2 = 0.5 never rectifies.
    "radam": (
        "RAdam",
        dict(lr=1e-2),
        dict(lr=3e-2, betas=(0.3, 0.5)),
        dict(
            maximize=[False, True], weight_decay=[0.0, 0.1], decoupled_weight_decay=[False, True]
        ),
        None,
    ),
    "lion": (
        "Lion",
        dict(lr=1e-2, betas=(0.8, 0.95)),
        dict(lr=3e-2, betas=(0.3, 0.5)),
        dict(maximize=[False, True], weight_decay=[0.0, 0.3]),
        None,
    ),
    "lamb": (
        "LAMB",
        dict(lr=1e-2),
        dict(lr=3e-2, betas=(0.3, 0.5)),
        dict(maximize=[False, True], weight_decay=[0.0, 0.1]),
        None,
    ),
    # Step sizes (1e-3, 0.05) are clamped on both sides within 20 steps.
    "rprop": (
        "Rprop",
        dict(lr=1e-2),
        dict(lr=3e-2, etas=(0.4, 1.1)),
        dict(
            maximize=[False, True],
            etas=[(0.5, 1.2), (0.3, 1.5)],
            step_sizes=[(1e-6, 50), (1e-3, 0.05)],
        ),
        None,
    ),
    # t0 = 5: ax averages from step 7; group 1 from step 4.
    "asgd": (
        "ASGD",
        dict(lr=1e-2, lambd=0.1),
        dict(lr=3e-2, alpha=1.5, t0=2.0),
        dict(maximize=[False, True], weight_decay=[0.0, 0.1], t0=[1e6, 5.0]),
        None,
    ),
    # Param 1 starts at zero: its step is eps2 * rho until it moves.
    "adafactor": (
        "Adafactor",
        dict(lr=1e-2),
        dict(lr=3e-2, beta2_decay=-0.5, eps=(1e-4, 1e-2), d=1.5),
        dict(maximize=[False, True], weight_decay=[0.0, 0.1], d=[1.0, 2.0]),
        None,
    ),
}


def _format(value):
    return str(int(value)) if isinstance(value, bool) else repr(value)


def _expand(name):
    """(case id, constructor kwargs) for every valid combination of one
    optimizer's flag axes, in a fixed order."""
    _, base, _, axes, valid = OPTIMIZERS[name]
    cases = []
    for values in itertools.product(*axes.values()):
        flags = dict(zip(axes, values))
        if valid is None or valid(flags):
            label = ",".join(f"{k}={_format(v)}" for k, v in flags.items())
            cases.append((f"{name}/{label}", dict(base, **flags)))
    return cases


# Every case: "optimizer/flag=value,..." -> constructor kwargs.
CASES = dict(case for name in OPTIMIZERS for case in _expand(name))


def run_names(case):
    """The "case/dtype/layout" prefixes of a case's runs."""
    return [f"{case}/{dtype}/{layout}" for dtype, layout in itertools.product(DTYPES, LAYOUTS)]


def split_key(key):
    """("optimizer/flags/dtype/layout", "param3" or "state3/exp_avg" ...)."""
    parts = key.split("/")
    return "/".join(parts[:4]), "/".join(parts[4:])


# -- Deterministic data ---------------------------------------------------------


def _splitmix64(stream, n):
    """n 64-bit hashes of (stream, 0..n-1): wrapping integer arithmetic only, so
    every NumPy version and platform gives the same bits."""
    with np.errstate(over="ignore"):
        z = np.arange(n, dtype=np.uint64) + np.uint64(stream) * np.uint64(1 << 32)
        z = z * np.uint64(0x9E3779B97F4A7C15) + np.uint64(0x632BE59BD9B4E019)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def values(stream, shape, dtype, zeros=True):
    """Values in (-1, 1) scaled by 1, 1/2, 1/4 or 1/8 (exactly), about one in
    16 exactly zero when `zeros`: computed in float64, rounded once to dtype.
    Tensors larger than a reduction chunk repeat a PERIOD-element pattern."""
    n = math.prod(shape)
    z = _splitmix64(stream, min(n, PERIOD) if n > 4096 else n)
    unit = (z >> np.uint64(11)).astype(np.float64) * 2.0**-53  # [0, 1)
    out = (2.0 * unit - 1.0) * np.ldexp(1.0, -(z & np.uint64(3)).astype(np.int32))
    if zeros:
        out[((z >> np.uint64(2)) & np.uint64(15)) == 0] = 0.0
    return np.resize(out, n).astype(dtype).reshape(shape)


def shapes_of(name):
    return SHAPES + [LARGE_SHAPE] if name in REDUCING else list(SHAPES)


def initial_params(shapes, dtype):
    return [
        np.zeros(s, dtype) if k in ZERO_PARAMS else values(1000 + k, s, dtype, zeros=False)
        for k, s in enumerate(shapes)
    ]


def grad_present(layout, step, k):
    """Whether param k has a grad at this step. In the groups layout param 1
    skips every fourth step, param 3 starts at step 5 (lazy state) and group 0
    has no grad at all at step 12."""
    if layout == "buffer":
        return True
    if k == 1 and step % 4 == 1:
        return False
    if k == 3 and step < 5:
        return False
    return not (step == 12 and k < GROUP0_SIZE)


@functools.lru_cache(maxsize=None)
def _grad_sequence(shapes, dtype, layout):
    return tuple(
        tuple(
            values(100_000 + 100 * t + k, s, dtype) if grad_present(layout, t, k) else None
            for k, s in enumerate(shapes)
        )
        for t in range(STEPS)
    )


def grad_sequence(shapes, dtype, layout):
    """Fresh copies, so a kernel that wrote into its grads could not spoil other runs."""
    return [
        [None if g is None else g.copy() for g in grads]
        for grads in _grad_sequence(tuple(shapes), dtype, layout)
    ]


# -- Running a case -------------------------------------------------------------


def _run_groups(cls, kwargs, group1, shapes, dtype):
    params = initial_params(shapes, dtype)
    opt = cls(
        [dict(params=params[:GROUP0_SIZE]), dict(params=params[GROUP0_SIZE:], **group1)], **kwargs
    )
    for t, grads in enumerate(grad_sequence(shapes, dtype, "groups")):
        if t == STEPS // 2:
            for group in opt.param_groups:
                group["lr"] *= 0.5
        opt.step(grads)
    return params, opt


def _run_buffer(cls, kwargs, shapes, dtype):
    buf = cyoptim.ParamBuffer(shapes, dtype)
    for p, start in zip(buf.params, initial_params(shapes, dtype)):
        p[...] = start
    opt = cls(buf.params, **kwargs)
    for grads in grad_sequence(shapes, dtype, "buffer"):
        for target, g in zip(buf.grads, grads):
            target[...] = g
        opt.step(buf.grads)
    return buf.params, opt


def _as_array(value):
    """A state_dict value as an array (0-d for scalars, so a float step that
    became an int shows up as a dtype change); anything else as its repr."""
    array = np.asarray(value)
    return np.asarray(repr(value)) if array.dtype == object else array.copy()


def _entries(run, params, opt):
    out = {f"{run}/param{k}": p.copy() for k, p in enumerate(params)}
    sd = opt.state_dict()
    for index, entry in sd["state"].items():
        for name, value in entry.items():
            out[f"{run}/state{index}/{name}"] = _as_array(value)
    out[f"{run}/param_groups"] = np.asarray(json.dumps(sd["param_groups"], sort_keys=True))
    return out


def run_case(case, dtype, layout, threads):
    """{key: array} of one run of a case on `threads` threads."""
    name = case.split("/")[0]
    class_name, _, group1, _, _ = OPTIMIZERS[name]
    cls = getattr(cyoptim, class_name)
    shapes = shapes_of(name)
    dtype = np.dtype(dtype)
    saved = cyoptim._threads.requested()  # 0: OpenMP's maximum, as it was
    cyoptim.set_num_threads(threads)
    try:
        if layout == "groups":
            params, opt = _run_groups(cls, CASES[case], group1, shapes, dtype)
        else:
            params, opt = _run_buffer(cls, CASES[case], shapes, dtype)
    finally:
        cyoptim.set_num_threads(saved)
    return _entries(f"{case}/{dtype.name}/{layout}", params, opt)


def compute_case(case, threads=THREADS):
    """{key: array} of every run of a case. Each run goes on every thread count
    in `threads`; results that differ between them raise (docs/contract.md §4: results do
    not depend on the thread count). Note that runs this small stay below the
    kernels' parallel threshold, so this guards the thread plumbing only."""
    out = {}
    for dtype, layout in itertools.product(DTYPES, LAYOUTS):
        first, *others = [run_case(case, dtype, layout, n) for n in threads]
        for n, other in zip(threads[1:], others):
            bad = differences(first, other)
            if bad:
                raise AssertionError(
                    f"{case} {dtype} {layout}: {threads[0]} and {n} threads "
                    "disagree:\n" + "\n".join(bad)
                )
        out.update(first)
    return out


def compute_all(cases=CASES, threads=THREADS, progress=None):
    out = {}
    for case in cases:
        out.update(compute_case(case, threads))
        if progress:
            progress(case)
    return out


# -- Comparing ------------------------------------------------------------------


def bitwise_equal(a, b):
    """Same dtype, shape and bytes: NaN payloads and the sign of zero count."""
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def describe(expected, actual):
    """How two entries differ, in a few words."""
    expected, actual = np.asarray(expected), np.asarray(actual)
    if expected.dtype != actual.dtype or expected.shape != actual.shape:
        return f"{expected.dtype}{list(expected.shape)} -> {actual.dtype}{list(actual.shape)}"
    if expected.dtype.kind != "f" or expected.ndim == 0:
        return f"{expected.tolist()!r} -> {actual.tolist()!r}"
    e, a = expected.ravel(), actual.ravel()
    unequal = e.view(f"u{e.itemsize}") != a.view(f"u{a.itemsize}")
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN differences
        relative = np.abs(a - e) / np.maximum(np.abs(e), np.finfo(e.dtype).tiny)
        worst = np.nanmax(np.where(unequal, relative, 0.0))
    return f"{int(unequal.sum())} of {e.size} elements differ, max relative {worst:.3g}"


def differences(expected, actual, prefix=""):
    """One line for every key starting with `prefix` that is missing on either
    side or not bitwise equal."""
    exp = {k for k in expected if k.startswith(prefix)}
    act = {k for k in actual if k.startswith(prefix)}
    lines = [f"missing from the new results: {k}" for k in sorted(exp - act)]
    lines += [f"not in the golden record: {k}" for k in sorted(act - exp)]
    lines += [
        f"differs: {k}: {describe(expected[k], actual[k])}"
        for k in sorted(exp & act)
        if not bitwise_equal(expected[k], actual[k])
    ]
    return lines


# -- The file -------------------------------------------------------------------
#
# A .npz is a zip with one member per array, and each member costs ~250 bytes
# of headers and name: over the ~6,000 entries that is more than the data. So
# each run's entries are packed into one uint8 member named after the run,
# with one JSON index (no pickle anywhere); load() unpacks them to the flat
# {key: array} dict again.

INDEX_KEY = "_index"
META_PREFIX = "_meta/"


def metadata():
    """Where a record came from: stored beside the results, never compared."""
    return {
        "cyoptim": cyoptim.__version__,
        "numpy": np.__version__,
        "simd": str(cyoptim.simd_info()),
        "steps": STEPS,
    }


def _pack(results):
    """{run: uint8 blob}, {run: {leaf: [dtype, shape, offset]}}."""
    blobs, index = {}, {}
    for key in sorted(results):
        run, leaf = split_key(key)
        array = np.asarray(results[key])  # tobytes() is in C order
        chunks = blobs.setdefault(run, [])
        offset = sum(len(c) for c in chunks)
        chunks.append(array.tobytes())
        index.setdefault(run, {})[leaf] = [array.dtype.str, list(array.shape), offset]
    return (
        {run: np.frombuffer(b"".join(chunks), np.uint8) for run, chunks in blobs.items()},
        index,
    )


def save(path, results):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    blobs, index = _pack(results)
    meta = {META_PREFIX + k: np.asarray(str(v)) for k, v in metadata().items()}
    np.savez_compressed(path, **{INDEX_KEY: np.asarray(json.dumps(index))}, **meta, **blobs)


def load(path=GOLDEN_PATH):
    """The flat {key: array} dict a record was saved from."""
    with np.load(path, allow_pickle=False) as data:
        index = json.loads(str(data[INDEX_KEY]))
        results = {}
        for run, leaves in index.items():
            blob = data[run].tobytes()
            for leaf, (dtype, shape, offset) in leaves.items():
                dtype = np.dtype(dtype)
                count = math.prod(shape)
                results[f"{run}/{leaf}"] = (
                    np.frombuffer(blob, dtype, count, offset).reshape(tuple(shape)).copy()
                )
    return results


def load_metadata(path=GOLDEN_PATH):
    with np.load(path, allow_pickle=False) as data:
        return {
            k[len(META_PREFIX) :]: str(data[k]) for k in data.files if k.startswith(META_PREFIX)
        }
