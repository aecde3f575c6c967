"""Check that every element loop of the kernels vectorizes, in every SIMD variant.

Usage (from the repository root):
    python tools/vec_report.py            # builds each variant with gcc's report
    python tools/vec_report.py --no-build # reads the logs of an earlier run

It builds the extensions (under build/, not in place) with CYOPTIM_VEC_REPORT=1 (gcc's
-fopt-info-vec-optimized), then, for every fused-type inline function (the
element loops and reductions, see pyx/common.pxi) in the generated C of each
variant, lists its loops and whether gcc reported them vectorized. Exits 1 if
any loop is not, except the few listed in SCALAR_BY_DESIGN.
"""

import argparse
import os
import re
import subprocess
import sys

VARIANTS = ("baseline", "avx2", "avx512")
FUNC = re.compile(
    r"^static CYTHON_INLINE \w+ (__pyx_fuse_(\d)__pyx_f_7cyoptim_\d+_kernels_\w+?_(\w+))\(.*\{$"
)
# Loops that cannot vectorize, and why: (function, variant, dtype) -> reason
# (None matches any variant or dtype).
NO_FMA = "SSE2 has no fused multiply-add: glibc's fma() per element"
SCALAR_BY_DESIGN = {
    ("sum_abs_pow", None, None): "calls libm pow() per element (norm types other than 1, 2, inf)",
    ("max_abs", "baseline", "float64"): "SSE2 has no 64-bit integer compare (pcmpgtq is SSE4.2)",
    ("average_elements", "baseline", None): NO_FMA + " (torch's lerp rounds once)",
    ("muon_momentum_elements", "baseline", None): NO_FMA + " (torch's lerp rounds once)",
    ("muon_apply_elements", "baseline", None): NO_FMA + " (torch's add_ with alpha rounds once)",
    ("axpy_span", "baseline", None): NO_FMA + " (LBFGS's axpy is torch's add_: one rounding)",
    ("adafactor_factors_typed", None, None): "the loop over a batch's matrices (per matrix: "
    "the vectorized column loops and row-factor sum)",
}


def scalar_reason(function, variant, dtype):
    for (name, v, d), reason in SCALAR_BY_DESIGN.items():
        if name == function and v in (None, variant) and d in (None, dtype):
            return reason
    return None


LOOP = re.compile(r"^\s*for \(__pyx_t_\d+ = 0; __pyx_t_\d+ < __pyx_t_\d+; __pyx_t_\d+\+=1\) \{")


def build(variant, log_path):
    env = dict(os.environ, CYOPTIM_VEC_REPORT="1", CYOPTIM_SIMD_VARIANTS=variant)
    scratch = os.path.join("build", "vec-report")  # leaves any in-place build alone
    with open(log_path, "w") as log:
        subprocess.run(
            [
                sys.executable,
                "setup.py",
                "build_ext",
                "--force",
                "--build-lib",
                scratch,
                "--build-temp",
                scratch,
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            check=True,
        )


ASSIGN = re.compile(r"^\s*(__pyx_t_\d+) = (\S+);$")
BOUND = re.compile(r"< (__pyx_t_\d+);")


def element_loops(c_path):
    """(function, dtype, line) of every loop over a run-time length inside a
    fused inline function; loops over a fixed lane count (unrolled by gcc and
    vectorized as straight-line code) are left out."""
    loops, current, constant = [], None, {}
    with open(c_path) as f:
        for number, line in enumerate(f, 1):
            match = FUNC.match(line)
            if match:
                current = (match.group(3), "float32" if match.group(2) == "0" else "float64")
                constant = {}
            elif line.startswith("}"):
                current = None
            elif current:
                assign = ASSIGN.match(line)
                if assign:
                    target, source = assign.groups()
                    constant[target] = source.startswith("__pyx_e_") or constant.get(source, False)
                elif LOOP.match(line) and not constant.get(BOUND.search(line).group(1), False):
                    loops.append((current[0], current[1], number))
    return loops


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-build", action="store_true")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    args = parser.parse_args()
    failures = 0
    for variant in args.variants.split(","):
        log_path = f"build/vec-report-{variant}.log"
        if not args.no_build:
            os.makedirs("build", exist_ok=True)
            build(variant, log_path)
        with open(log_path) as f:
            report = f.read()
        c_file = f"pyx/_kernels_{variant}.c"
        for function, dtype, line in element_loops(c_file):
            ok = re.search(rf"{re.escape(c_file)}:{line}:\d+: optimized: loop vectorized", report)
            function = function.lstrip("_")
            if ok:
                verdict = "vectorized"
            elif scalar_reason(function, variant, dtype):
                verdict = "scalar by design: " + scalar_reason(function, variant, dtype)
            else:
                verdict = "NOT VECTORIZED"
                failures += 1
            print(f"{variant:9s} {function:28s} {dtype}  line {line:6d}  {verdict}")
    print(
        "every loop vectorizes but those marked scalar by design"
        if not failures
        else f"{failures} loop(s) do not vectorize"
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
