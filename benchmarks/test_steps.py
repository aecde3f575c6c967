"""Optimizer step throughput, side by side: cyoptim, its NumPy twin, torch, DeepSpeed.

Run:  pytest benchmarks --benchmark-group-by=group --benchmark-columns=median,ops

Each group ("adam-1M", ...) holds one optimizer on one model layout for every
installed implementation, so the rows of a group compare directly; Mparam/s
(the layout's parameter count times ops) is stored in extra_info.
Implementations that are not installed (torch, DeepSpeed), or that have no
such optimizer, are skipped.
"""

import pytest

from cyoptim.bench import IMPLEMENTATIONS, LAYOUTS, OPTIMIZERS, make_stepper

# SGD and Adam on every layout; every other optimizer on one large tensor and
# on many small ones.
CASES = ([(name, layout) for name in ("adam", "sgd") for layout in LAYOUTS]
         + [(name, layout) for name in OPTIMIZERS if name not in ("adam", "sgd")
            for layout in ("1M", "500x2k")])


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
@pytest.mark.parametrize("optimizer,layout", CASES, ids=[f"{o}-{l}" for o, l in CASES])
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
