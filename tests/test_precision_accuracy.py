"""tools/precision_accuracy.py on the digits MLP, a few epochs: bfloat16 params
with master weights, bfloat16 states and int8 states train as float32 does."""

import importlib.util
import os

import pytest

pytest.importorskip("ml_dtypes")

TOOL = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tools", "precision_accuracy.py"
)
EPOCHS = 5  # 225 steps: the loss has fallen from 2.3 to about 0.02
TOLERANCE = 0.10  # relative to float32's final loss; seeds 0-2 stay within 6%


@pytest.fixture(scope="module")
def tool():
    if not os.path.exists(TOOL):
        pytest.skip("tools/ is not beside the tests (tests run outside the repository)")
    spec = importlib.util.spec_from_file_location("precision_accuracy", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def runs(tool):
    from cyoptim.examples import load_digits_dataset

    dataset = load_digits_dataset(0)
    return {mode: tool.train_digits(mode, EPOCHS, 0, dataset) for mode in tool.MODES}


def test_low_precision_modes_reach_the_float32_loss(tool, runs):
    reference = runs["float32"]
    assert len(reference.losses) == EPOCHS * 45
    assert reference.final_loss < 0.1 * reference.losses[0]  # it trained
    for mode in ("bf16+master", "bf16 states", "int8 states"):
        run = runs[mode]
        assert run.losses[0] == pytest.approx(reference.losses[0], rel=1e-2)  # same start
        difference = tool.relative_difference(run, reference)
        assert abs(difference) <= TOLERANCE, (mode, run.final_loss, reference.final_loss)


def test_state_bytes_and_int8_tensors(runs):
    """The two 8192-element weight matrices hold int8 states; the 640-element
    one and the biases keep float32 (below 4096 elements)."""
    bytes_per_param = {mode: r.state_bytes / r.params for mode, r in runs.items()}
    assert bytes_per_param["float32"] == 8
    assert bytes_per_param["bf16+master"] == 12  # master copy and two float32 moments
    assert bytes_per_param["bf16 states"] == 4
    int8 = runs["int8 states"]
    assert (int8.int8_tensors, int8.int8_params, int8.tensors) == (2, 2 * 8192, 6)
    small = int8.params - int8.int8_params
    # codes: 2 bytes per param; scales: 2 float32 per 256-element block; the rest float32
    assert int8.state_bytes == 2 * int8.int8_params + 2 * 4 * (8192 // 256) * 2 + 8 * small
    assert all(r.int8_tensors == 0 for mode, r in runs.items() if mode != "int8 states")


def test_final_loss_is_the_mean_of_the_last_tenth(tool):
    assert tool.final_loss(list(range(100))) == pytest.approx(sum(range(90, 100)) / 10)
    assert tool.final_loss([3.0, 1.0]) == 1.0
