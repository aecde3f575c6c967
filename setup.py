"""Build of cyoptim's Cython extensions.

- OpenMP: probed by compiling and linking a small OpenMP program. Without it the
  build warns loudly and compiles serial kernels; CYOPTIM_REQUIRE_OPENMP=1 makes
  that an error (CI sets it).
- SIMD: the same kernel source is compiled once per target (baseline x86-64,
  AVX2+FMA+F16C, AVX-512) as cyoptim._kernels_<variant>; cyoptim._dispatch picks the
  best one the CPU runs at import. Never -march=native. Non-x86 builds ship the
  baseline only. CYOPTIM_SIMD_VARIANTS=baseline,avx2 limits the variants built.
- -fno-math-errno lets gcc vectorize sqrt; -ffp-contract=off keeps a*b+c as two
  roundings, so every variant computes bitwise the same result.
  CYOPTIM_VEC_REPORT=1 adds gcc's vectorization report (-fopt-info-vec).
"""

import importlib.util
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import textwrap

import numpy as np
from Cython import Tempita
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

VARIANT_FLAGS = {
    "baseline": [],
    "avx2": ["-mavx2", "-mfma", "-mf16c"],
    "avx512": [
        "-mavx512f",
        "-mavx512vl",
        "-mavx512bw",
        "-mavx512dq",
        "-mavx2",
        "-mfma",
        "-mf16c",
        "-mprefer-vector-width=512",
    ],
}
COMMON_FLAGS = ["-O3", "-fno-math-errno", "-ffp-contract=off"]
OPENMP_FLAG = "-fopenmp"

OPENMP_PROBE = textwrap.dedent("""
    #include <omp.h>
    #include <stdio.h>
    int main(void) {
        int n = 0;
        #pragma omp parallel reduction(+:n)
        n += 1;
        printf("%d", n > 0 && omp_get_max_threads() > 0);
        return 0;
    }
""")


def is_x86_64():
    return platform.machine().lower() in ("x86_64", "amd64")


def selected_variants():
    if not is_x86_64():
        return ["baseline"]
    wanted = os.environ.get("CYOPTIM_SIMD_VARIANTS")
    if not wanted:
        return list(VARIANT_FLAGS)
    names = [v.strip() for v in wanted.split(",") if v.strip()]
    unknown = sorted(set(names) - set(VARIANT_FLAGS))
    if unknown:
        sys.exit(
            f"CYOPTIM_SIMD_VARIANTS: unknown variant(s) {unknown}; "
            f"choose from {list(VARIANT_FLAGS)}"
        )
    if "baseline" not in names:
        names.insert(0, "baseline")
    return names


def compiler_links_openmp(compiler):
    """Compile, link and run a small OpenMP program with this compiler."""
    tmp = tempfile.mkdtemp(prefix="cyoptim-openmp-")
    try:
        source = os.path.join(tmp, "probe.c")
        with open(source, "w") as f:
            f.write(OPENMP_PROBE)
        objects = compiler.compile([source], output_dir=tmp, extra_postargs=[OPENMP_FLAG])
        exe = os.path.join(tmp, "probe")
        compiler.link_executable(objects, exe, extra_postargs=[OPENMP_FLAG])
        out = subprocess.run([exe], capture_output=True, text=True, timeout=60)
        return out.returncode == 0 and out.stdout.strip() == "1"
    except Exception:
        return False
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


class BuildExt(build_ext):
    """build_ext that adds OpenMP when the compiler supports it."""

    def build_extensions(self):
        openmp = compiler_links_openmp(self.compiler)
        if not openmp:
            message = (
                "cyoptim: the C compiler could not build an OpenMP program; "
                "building SERIAL kernels (every step runs on one thread)."
            )
            if os.environ.get("CYOPTIM_REQUIRE_OPENMP") == "1":
                raise RuntimeError(message + " CYOPTIM_REQUIRE_OPENMP=1 forbids that.")
            bar = "!" * 78
            print(f"\n{bar}\n{message}\n{bar}\n", file=sys.stderr)
        # _cpu records the variant list in a macro, which setuptools does not
        # track: always rebuild it (it is small).
        cpu_module = self.get_ext_fullpath("cyoptim._cpu")
        if os.path.exists(cpu_module):
            os.remove(cpu_module)
        report = os.environ.get("CYOPTIM_VEC_REPORT") == "1"
        for ext in self.extensions:
            if openmp:
                ext.extra_compile_args.append(OPENMP_FLAG)
                ext.extra_link_args.append(OPENMP_FLAG)
            if report and "_kernels_" in ext.name:
                ext.extra_compile_args += [
                    "-fopt-info-vec-optimized",
                    "-fopt-info-vec-missed=" + os.path.abspath(f"build/vec-missed-{ext.name}.txt"),
                ]
        super().build_extensions()


def load_module(name, path):
    """Import one file as a module, without importing its package."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_if_changed(path, text):
    """Write text to path unless it already holds it (keeps rebuilds incremental)."""
    if os.path.exists(path):
        with open(path) as f:
            if f.read() == text:
                return
    with open(path, "w") as f:
        f.write(text)


def render_kernel_sources():
    """Generate the kernels' plumbing and type stubs from the registry's KERNELS.

    pyx/_optimizers.pxi (every SIMD build includes it) comes from the Tempita
    template pyx/optimizers.pxi.tp; the stubs src/cyoptim/_kernels_<variant>.pyi
    from pyx/kernel_stubs.py. Both are generated, never edited by hand.
    src/cyoptim/registry.py imports nothing from cyoptim, so it loads here,
    before anything is compiled.
    """
    registry = load_module("cyoptim_registry", "src/cyoptim/registry.py")
    kernel_stubs = load_module("cyoptim_kernel_stubs", "pyx/kernel_stubs.py")
    namespace = {
        name: getattr(registry, name) for name in dir(registry) if not name.startswith("_")
    }
    with open("pyx/optimizers.pxi.tp") as f:
        template = f.read()
    write_if_changed("pyx/_optimizers.pxi", Tempita.sub(template, **namespace))
    stub = kernel_stubs.render(registry)
    for variant in VARIANT_FLAGS:
        write_if_changed(f"src/cyoptim/_kernels_{variant}.pyi", stub)


def extensions():
    render_kernel_sources()
    include = [np.get_include(), "pyx"]
    macros = [("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")]
    variants = selected_variants()
    # _cpu records which variants this build meant to ship (tests check them).
    cpu_macros = macros + [("CYOPTIM_BUILT_VARIANTS", '"' + ",".join(variants) + '"')]
    exts = [
        Extension(
            "cyoptim._cpu",
            ["pyx/_cpu.pyx"],
            include_dirs=include,
            define_macros=cpu_macros,
            extra_compile_args=["-O2"],
        )
    ]
    for variant in variants:
        exts.append(
            Extension(
                f"cyoptim._kernels_{variant}",
                [f"pyx/_kernels_{variant}.pyx"],
                include_dirs=include,
                define_macros=macros,
                extra_compile_args=COMMON_FLAGS + VARIANT_FLAGS[variant],
            )
        )
    return cythonize(exts, compiler_directives={"language_level": 3}, include_path=["pyx"])


if os.environ.get("CYOPTIM_VEC_REPORT") == "1":
    os.makedirs("build", exist_ok=True)

setup(ext_modules=extensions(), cmdclass={"build_ext": BuildExt})
