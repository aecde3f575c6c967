"""Optimizer step throughput, side by side: cyoptim, its NumPy twin, torch, DeepSpeed.

Run:  pytest benchmarks --benchmark-group-by=group --benchmark-columns=median,ops

Each group ("adam-1M", ...) holds one optimizer on one model layout for every
installed implementation, so the rows of a group compare directly; Mparam/s is
the group's parameter count times ops (steps per second), also stored in
extra_info. Implementations that are not installed are skipped.
"""

import pytest

from cyoptim.bench import IMPLEMENTATIONS, LAYOUTS, OPTIMIZERS, make_stepper

BENCHED_OPTIMIZERS = [name for name in OPTIMIZERS]


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("optimizer", BENCHED_OPTIMIZERS)
def test_step(benchmark, optimizer, layout, implementation):
    step = make_stepper(implementation, optimizer, layout)
    if step is None:
        pytest.skip(f"{implementation} is not installed or has no {optimizer}")
    n_params = sum(LAYOUTS[layout][0])
    benchmark.group = f"{optimizer}-{layout}"
    benchmark.extra_info["params"] = n_params
    benchmark.pedantic(step, rounds=15, iterations=max(1, 2_000_000 // n_params),
                       warmup_rounds=2)
    benchmark.extra_info["Mparam_per_s"] = n_params / benchmark.stats.stats.median / 1e6
