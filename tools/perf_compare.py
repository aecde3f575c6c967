"""Performance regression check: the working tree against a git revision.

    python tools/perf_compare.py --base main
    python tools/perf_compare.py --base HEAD~3 --optimizers adam,sgd --rounds 7

Builds a wheel of REV and one of the working tree (uncommitted changes
included), installs each into its own venv (cached by commit hash, or by a
hash of the working tree's sources, under --cache-dir), then times
cyoptim's step for every (optimizer, layout) cell with each build. Both are
measured in the same run, in alternating rounds (base, new, new, base, base,
...): a round is one subprocess in one venv that measures every cell, so
process start-up is paid once per round, and a slow spell of this shared
machine hits both builds alike instead of whichever ran during it.

Per cell it reports the median Mparam/s of each build over the rounds, their
ratio, the ratio of each build's best round, and the noise: the larger
relative interquartile range of the two builds' rounds. A cell is SLOWER when
both ratios say the base is faster by more than the noise and the floor
--factor (default 1.10). Cells that look slower are measured again in
--confirm-rounds more rounds of their own before the verdict; if any is still
slower, the tool exits 1. It also reports how much CPU other processes took
during the rounds, the usual cause of noise on a shared machine.

Progress goes to stderr, the table to stdout. The measuring code uses only
what cyoptim.bench has had since it exists (OPTIMIZERS, LAYOUTS,
make_stepper("cyoptim", optimizer, layout), time_per_step(step, seconds,
repeats)), so any revision with a bench module can be the base.
"""

import argparse
import hashlib
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_LAYOUTS = "10k,1M,500x2k,500x2k-buffer,16M"
# Top-level paths that cannot change the wheel: left out of the working tree's
# cache key, so editing a test or a tool does not force a rebuild.
NOT_IN_WHEEL = ("tests", "tools", "docs", "benchmarks", ".ci")

# Runs inside each venv's python, from an empty directory (so the installed
# cyoptim is imported). argv[1]: JSON {cells: [[optimizer, layout], ...],
# seconds, repeats, threads}. Prints JSON {"info": ..., "seconds": {"optimizer
# layout": seconds per step}}. One stepper at a time: 16M cells are big.
MEASURE_SCRIPT = r'''
import gc, json, sys
import numpy as np
import cyoptim
from cyoptim import bench

args = json.loads(sys.argv[1])
if args["threads"] is not None:
    cyoptim.set_num_threads(args["threads"])
seconds = {}
for optimizer, layout in args["cells"]:
    step = bench.make_stepper("cyoptim", optimizer, layout)
    seconds[f"{optimizer} {layout}"] = bench.time_per_step(step, args["seconds"], args["repeats"])
    del step
    gc.collect()
info = {"version": cyoptim.__version__, "simd": str(cyoptim.simd_info()),
        "threads": cyoptim.get_num_threads(), "numpy": np.__version__,
        "params": {layout: sum(bench.LAYOUTS[layout][0]) for _, layout in args["cells"]}}
print(json.dumps({"info": info, "seconds": seconds}))
'''

# Asks a venv which optimizers and layouts its bench module knows.
NAMES_SCRIPT = r'''
import json
from cyoptim import bench
print(json.dumps({"optimizers": list(bench.OPTIMIZERS), "layouts": list(bench.LAYOUTS)}))
'''


def log(message):
    print(message, file=sys.stderr, flush=True)


def git(*args, **kwargs):
    return subprocess.run(
        ["git", "-C", str(REPO), *args], check=True, capture_output=True, **kwargs
    ).stdout


# -- Sources --------------------------------------------------------------------


def export_revision(rev, dest):
    """The files of a commit, as `git archive` gives them."""
    archive = Path(dest).with_suffix(".tar")
    with open(archive, "wb") as f:
        subprocess.run(
            ["git", "-C", str(REPO), "archive", "--format=tar", rev], check=True, stdout=f
        )
    with tarfile.open(archive) as tar:
        if hasattr(tarfile, "data_filter"):
            tar.extractall(dest, filter="data")
        else:  # Python < 3.10.12: our own archive, trusted
            tar.extractall(dest)
    archive.unlink()


def working_tree_files():
    """Tracked files (as they are on disk now) and untracked, non-ignored ones."""
    names = git("ls-files", "-z", "--cached", "--others", "--exclude-standard")
    return sorted({n for n in names.decode().split("\0") if n and (REPO / n).is_file()})


def working_tree_key(files):
    """A hash of the sources the wheel is built from (cache key of the new build)."""
    digest = hashlib.sha256()
    for name in files:
        if name.split("/")[0] in NOT_IN_WHEEL:
            continue
        digest.update(name.encode() + b"\0" + (REPO / name).read_bytes() + b"\0")
    return "tree-" + digest.hexdigest()[:16]


def export_working_tree(files, dest):
    """A clean copy: no in-place .so files or build/ leftovers end up in the wheel."""
    for name in files:
        target = Path(dest) / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, target)


# -- Builds ---------------------------------------------------------------------


class Build:
    """One wheel of one source tree, installed in its own cached venv."""

    def __init__(self, label, key, cache_dir):
        self.label = label
        self.key = key
        self.dir = Path(cache_dir) / key
        self.python = self.dir / "venv" / "bin" / "python"

    @property
    def ready(self):
        return (self.dir / "ready").exists()

    def make(self, export, numpy_spec):
        """Build and install unless the cache already has it (`ready` is written last)."""
        if self.ready:
            log(f"{self.label}: cached venv {self.dir}")
            return
        if self.dir.exists():
            shutil.rmtree(self.dir)  # an interrupted earlier build
        self.dir.mkdir(parents=True)
        start = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="cyoptim-src-") as src:
            export(src)
            log(f"{self.label}: building a wheel of {self.key} (a minute or two)")
            self._run([sys.executable, "-m", "venv", str(self.dir / "venv")])
            env = dict(os.environ, CYOPTIM_REQUIRE_OPENMP="1")
            env.pop("CYOPTIM_SIMD_VARIANTS", None)  # the full wheel, as users get it
            self._run(
                [
                    str(self.python),
                    "-m",
                    "pip",
                    "wheel",
                    "--no-deps",
                    "--wheel-dir",
                    str(self.dir / "wheel"),
                    src,
                ],
                env=env,
            )
        wheel = next((self.dir / "wheel").glob("cyoptim-*.whl"))
        self._run([str(self.python), "-m", "pip", "install", numpy_spec, str(wheel)])
        (self.dir / "ready").write_text(json.dumps({"key": self.key, "numpy": numpy_spec}))
        log(f"{self.label}: built and installed in {time.perf_counter() - start:.0f} s")

    def _run(self, command, env=None):
        with open(self.dir / "build.log", "a") as out:
            out.write("$ " + " ".join(command) + "\n")
            out.flush()
            done = subprocess.run(
                command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=self.dir
            )
        if done.returncode:
            tail = (self.dir / "build.log").read_text().splitlines()[-30:]
            sys.exit(f"{self.label}: command failed: {' '.join(command)}\n" + "\n".join(tail))

    def run_script(self, script, argument, workdir):
        """Run a script with this venv's python from `workdir`; its stdout as JSON."""
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        done = subprocess.run(
            [str(self.python), "-c", script, argument],
            cwd=workdir,
            env=env,
            capture_output=True,
            text=True,
        )
        if done.returncode:
            sys.exit(f"{self.label}: measuring failed:\n{done.stderr}")
        return json.loads(done.stdout.splitlines()[-1])


def numpy_spec():
    """The same NumPy in both venvs: this interpreter's version when it has one."""
    try:
        import numpy

        return f"numpy=={numpy.__version__}"
    except ImportError:
        return "numpy"


# -- Measuring ------------------------------------------------------------------


def choose(text, known, what):
    names = known if text == "all" else [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in known]
    if unknown:
        sys.exit(
            f"unknown {what} (not in both builds' cyoptim.bench): {', '.join(unknown)}; "
            f"choose from {', '.join(known)}"
        )
    return names


def round_order(rounds):
    """base/new turns: base, new, then new, base, ...: a steady drift of the
    machine's speed favours neither build."""
    return [("base", "new") if r % 2 == 0 else ("new", "base") for r in range(rounds)]


def _cpu_seconds():
    """(CPU seconds the whole machine has been busy, incl. time stolen by the
    hypervisor; CPU seconds of our finished children), or None off Linux."""
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:9]]
    except (OSError, ValueError):
        return None
    user, nice, system, idle, iowait, irq, softirq, steal = fields
    busy = (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return busy, children.ru_utime + children.ru_stime


def run_round(build, argument, workdir):
    """One measuring subprocess; its result and the share of all CPUs that other
    processes used meanwhile (what makes a shared machine's timings noisy)."""
    before, start = _cpu_seconds(), time.perf_counter()
    result = build.run_script(MEASURE_SCRIPT, argument, workdir)
    wall, after = time.perf_counter() - start, _cpu_seconds()
    others = None
    if before and after:
        busy, ours = (a - b for a, b in zip(after, before))
        others = max(0.0, (busy - ours) / (wall * (os.cpu_count() or 1)))
    return result, wall, others


def measure(builds, cells, settings, rounds, times, info, loads):
    """Add `rounds` rounds per build of these cells to times[side][cell] (seconds
    per step, one per round), info[side] and loads (others' CPU share per round)."""
    argument = json.dumps(dict(settings, cells=cells))
    with tempfile.TemporaryDirectory(prefix="cyoptim-perf-") as workdir:
        for r, pair in enumerate(round_order(rounds)):
            for side in pair:
                result, wall, others = run_round(builds[side], argument, workdir)
                params = {**info.get(side, {}).get("params", {}), **result["info"]["params"]}
                info[side] = dict(result["info"], params=params)
                for cell, seconds in result["seconds"].items():
                    times[side].setdefault(cell, []).append(seconds)
                if others is not None:
                    loads.append(others)
                load = "" if others is None else f", other processes {others:.0%} of the CPUs"
                log(f"round {r + 1}/{rounds} {side}: {len(cells)} cells in {wall:.0f} s{load}")


def relative_iqr(values):
    """Interquartile range over the median: how much a side's rounds scatter."""
    if len(values) < 2:
        return 0.0
    q1, _, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return (q3 - q1) / statistics.median(values)


def verdicts(times, info, factor):
    """One row per cell: base and new Mparam/s (median over rounds), their ratio,
    the ratio of the best rounds, noise, verdict.

    Interference from other processes only ever slows a round down, so the best
    rounds are the least disturbed ones: a cell is SLOWER (or faster) only when
    the medians and the best rounds both say so, beyond max(factor, 1 + noise).
    """
    rows = []
    for cell in times["base"]:
        params = info["base"]["params"][cell.split(" ", 1)[1]]
        speed = {side: [params / s / 1e6 for s in times[side][cell]] for side in ("base", "new")}
        base, new = (statistics.median(speed[s]) for s in ("base", "new"))
        noise = max(relative_iqr(speed["base"]), relative_iqr(speed["new"]))
        limit = max(factor, 1 + noise)
        ratio, best = new / base, max(speed["new"]) / max(speed["base"])
        verdict = (
            "SLOWER"
            if max(ratio, best) < 1 / limit
            else "faster"
            if min(ratio, best) > limit
            else "same"
        )
        rows.append(
            dict(
                cell=cell,
                base=base,
                new=new,
                ratio=ratio,
                best=best,
                noise=noise,
                limit=limit,
                rounds=len(speed["base"]),
                verdict=verdict,
            )
        )
    return rows


def format_table(rows):
    header = [
        "cell",
        "base Mp/s",
        "new Mp/s",
        "new/base",
        "best new/base",
        "noise",
        "limit",
        "rounds",
        "verdict",
    ]
    lines = [
        [
            r["cell"],
            f"{r['base']:,.0f}",
            f"{r['new']:,.0f}",
            f"{r['ratio']:.3f}",
            f"{r['best']:.3f}",
            f"{r['noise']:.1%}",
            f"{1 / r['limit']:.3f}",
            str(r["rounds"]),
            r["verdict"],
        ]
        for r in rows
    ]
    widths = [max(len(c) for c in column) for column in zip(header, *lines)]
    fmt = "  ".join(f"{{:{'<' if k == 0 else '>'}{w}}}" for k, w in enumerate(widths))
    return "\n".join(
        [fmt.format(*header), fmt.format(*("-" * w for w in widths))]
        + [fmt.format(*cells) for cells in lines]
    )


# -- Main -----------------------------------------------------------------------


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", required=True, help="git revision to compare against")
    parser.add_argument(
        "--optimizers",
        default="all",
        help="comma-separated names from cyoptim.bench.OPTIMIZERS, or all",
    )
    parser.add_argument(
        "--layouts",
        default=DEFAULT_LAYOUTS,
        help=f"comma-separated names from cyoptim.bench.LAYOUTS (default {DEFAULT_LAYOUTS})",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=7,
        help="rounds per build (default 7; at least 3 for a noise estimate)",
    )
    parser.add_argument(
        "--seconds",
        type=float,
        default=0.2,
        help="measuring time per cell and round (default 0.2)",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=5,
        help="timed batches per cell and round; their median counts (default 5)",
    )
    parser.add_argument(
        "--threads", type=int, default=None, help="cyoptim threads (default: OpenMP's maximum)"
    )
    parser.add_argument(
        "--confirm-rounds",
        type=int,
        default=5,
        help="extra rounds of only the cells found slower, before the "
        "verdict (default 5; 0: none)",
    )
    parser.add_argument(
        "--factor",
        type=float,
        default=1.10,
        help="a cell fails only if base is faster by more than this factor "
        "and than the noise (default 1.10)",
    )
    parser.add_argument(
        "--cache-dir",
        default=Path(tempfile.gettempdir()) / "cyoptim-perf-cache",
        type=Path,
        help="where the wheels and venvs are kept",
    )
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.factor < 1:
        parser.error("--rounds must be >= 1 and --factor >= 1")
    if args.rounds < 3:
        log("warning: fewer than 3 rounds give no noise estimate")
    return args


def prepare_builds(args):
    commit = git("rev-parse", "--verify", f"{args.base}^{{commit}}", text=True).strip()
    files = working_tree_files()
    python = f"py{sys.version_info.major}{sys.version_info.minor}"  # venvs are per interpreter
    builds = {
        "base": Build(
            f"base {args.base} ({commit[:10]})", f"commit-{commit}-{python}", args.cache_dir
        ),
        "new": Build("new (working tree)", f"{working_tree_key(files)}-{python}", args.cache_dir),
    }
    spec = numpy_spec()
    builds["base"].make(lambda dest: export_revision(commit, dest), spec)
    builds["new"].make(lambda dest: export_working_tree(files, dest), spec)
    return builds


def select_cells(args, builds):
    """(optimizer, layout) pairs from the options, among those both builds know."""
    with tempfile.TemporaryDirectory() as workdir:
        known = [builds[side].run_script(NAMES_SCRIPT, "", workdir) for side in builds]
    both = {
        what: [n for n in known[0][what] if n in known[1][what]]
        for what in ("optimizers", "layouts")
    }
    optimizers = choose(args.optimizers, both["optimizers"], "optimizers")
    layouts = choose(args.layouts, both["layouts"], "layouts")
    return [[o, layout] for o in optimizers for layout in layouts]


def report(args, builds, rows, info, loads, seconds):
    for side in ("base", "new"):
        i = info[side]
        print(
            f"{side}: {builds[side].label}: cyoptim {i['version']}, SIMD {i['simd']}, "
            f"{i['threads']} threads, numpy {i['numpy']}"
        )
    print(
        f"float32 Mparam/s, median of the rounds per build ({seconds:.0f} s of measuring); "
        f"best = ratio of the fastest rounds; noise = larger relative IQR of the two builds' "
        f"rounds; SLOWER when both ratios < limit = 1/max({args.factor}, 1 + noise)"
    )
    if loads:
        print(
            f"other processes used {statistics.median(loads):.0%} of the CPUs in the median "
            f"round, {max(loads):.0%} at most"
        )
        if max(loads) > 0.2:
            print(
                "warning: the machine was busy during the measurement; the noise column "
                "shows how much that blurs each cell"
            )
    print(format_table(rows))


def main(argv=None):
    args = parse_args(argv)
    builds = prepare_builds(args)
    cells = select_cells(args, builds)
    settings = dict(seconds=args.seconds, repeats=args.repeats, threads=args.threads)
    times, info, loads = {"base": {}, "new": {}}, {}, []
    log(f"measuring {len(cells)} cells, {args.rounds} rounds per build")
    start = time.perf_counter()
    measure(builds, cells, settings, args.rounds, times, info, loads)
    rows = verdicts(times, info, args.factor)
    suspects = [r["cell"].split(" ", 1) for r in rows if r["verdict"] == "SLOWER"]
    if suspects and args.confirm_rounds:
        log(
            f"{len(suspects)} cell(s) look slower; measuring them again "
            f"({args.confirm_rounds} more rounds)"
        )
        measure(builds, suspects, settings, args.confirm_rounds, times, info, loads)
        rows = verdicts(times, info, args.factor)
    report(args, builds, rows, info, loads, time.perf_counter() - start)
    slower = [r["cell"] for r in rows if r["verdict"] == "SLOWER"]
    if slower:
        print(f"FAIL: {len(slower)} cell(s) slower than base: {', '.join(slower)}")
        return 1
    print(f"OK: no cell slower than base beyond the noise and the {args.factor} floor")
    return 0


if __name__ == "__main__":
    sys.exit(main())
