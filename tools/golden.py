"""Record or check the golden outputs of every optimizer (bitwise).

    python tools/golden.py record --out tests/data/golden.npz
    python tools/golden.py add tests/data/golden.npz      # a new optimizer's cases only
    python tools/golden.py check tests/data/golden.npz

`record` runs every case of tests/golden_cases.py (each on 1 and 2 threads,
which must agree) with the cyoptim that Python imports, and writes them to one
.npz. `check` recomputes them and lists every key that is not bitwise equal or
is missing on either side; it exits 1 if there is any. `add` computes only
the cases the record lacks (a new optimizer's) and writes them into it, every
recorded entry unchanged. Run it from outside the source tree to test an
installed wheel (the tool itself never puts src/ on the path), or with
PYTHONPATH=src for an in-place build.

The cases and the comparison live in tests/golden_cases.py, shared with
tests/test_golden.py, so the tool and the test cannot drift apart.
"""

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import golden_cases  # noqa: E402  (after the path insertion)


def _progress(cases):
    """A callback that prints each optimizer's name to stderr when its last case is done."""
    last = {case.split("/")[0]: case for case in cases}
    done = [0]

    def report(case):
        done[0] += 1
        name = case.split("/")[0]
        if last[name] == case:
            print(f"  {name} done ({done[0]}/{len(cases)} cases)", file=sys.stderr)

    return report


def _compute(cases):
    import cyoptim

    print(
        f"cyoptim {cyoptim.__version__} from {Path(cyoptim.__file__).parent}, "
        f"SIMD {cyoptim.simd_info()}",
        file=sys.stderr,
    )
    start = time.perf_counter()
    results = golden_cases.compute_all(cases, progress=_progress(list(cases)))
    print(
        f"{len(cases)} cases, {len(results)} entries in {time.perf_counter() - start:.1f} s",
        file=sys.stderr,
    )
    return results


def record(args):
    results = _compute(golden_cases.CASES)
    golden_cases.save(args.out, results)
    print(f"wrote {args.out} ({Path(args.out).stat().st_size / 1e6:.2f} MB)")
    return 0


def add(args):
    """Compute the cases the record lacks and write them into it; every entry
    already there is kept as it is (read and written back byte for byte)."""
    expected = golden_cases.load(args.path)
    recorded = {golden_cases.split_key(key)[0] for key in expected}
    missing = {
        case: kwargs
        for case, kwargs in golden_cases.CASES.items()
        if not set(golden_cases.run_names(case)) <= recorded
    }
    partial = [case for case in missing if set(golden_cases.run_names(case)) & recorded]
    if partial:
        print(f"FAIL: the record has some runs of {partial[:3]}; record it again instead")
        return 1
    if not missing:
        print(f"{args.path} has every case")
        return 0
    results = _compute(missing)
    golden_cases.save(args.path, {**expected, **results})
    print(f"added {len(missing)} cases ({len(results)} entries) to {args.path}")
    return 0


def check(args):
    expected = golden_cases.load(args.path)
    meta = golden_cases.load_metadata(args.path)
    print("golden record made with " + ", ".join(f"{k} {v}" for k, v in meta.items()))
    actual = _compute(golden_cases.CASES)
    lines = golden_cases.differences(expected, actual)
    for line in lines:
        print(line)
    if lines:
        print(f"FAIL: {len(lines)} of {len(expected)} entries differ or are missing")
        return 1
    print(f"OK: all {len(expected)} entries bitwise equal")
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    rec = commands.add_parser("record", help="compute every case and write the .npz")
    rec.add_argument("--out", required=True, help="the .npz to write")
    rec.set_defaults(run=record)
    add_cases = commands.add_parser(
        "add",
        help="compute only the cases a record lacks and add them, leaving its entries as they are",
    )
    add_cases.add_argument("path", help="a .npz written by record")
    add_cases.set_defaults(run=add)
    chk = commands.add_parser("check", help="recompute and compare bitwise with a record")
    chk.add_argument("path", help="a .npz written by record")
    chk.set_defaults(run=check)
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
