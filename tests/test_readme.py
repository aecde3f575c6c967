"""The Python examples of README.md run as written (with small stand-ins for the
user's own functions), so the README cannot drift from the API."""

import pathlib
import re
import sys

import numpy as np
import pytest

README = pathlib.Path(__file__).resolve().parent.parent / "README.md"


def python_blocks():
    if not README.exists():
        pytest.skip("README.md is not beside the tests (tests run outside the repository)")
    return re.findall(r"```python\n(.*?)```", README.read_text(), re.S)


def user_stand_ins():
    """What the README's snippets assume the user has written."""
    rng = np.random.default_rng(0)
    backbone = [rng.standard_normal((8, 4))]
    head = [rng.standard_normal(4)]
    params = [rng.standard_normal(5)]

    def my_backward(*arrays):
        return [0.01 * a for a in arrays]

    import cyoptim

    opt = cyoptim.Adam(params, lr=1e-3)

    namespace = dict(my_backward=my_backward, backbone=backbone, head=head, params=params, opt=opt)

    def current_params():  # of whichever optimizer the snippet last made
        return [p for g in namespace["opt"].param_groups for p in g["params"]]

    cached = {}

    def grads_for(step):  # the same grads every step: the loops stay fast
        key = id(namespace["opt"])
        if key not in cached:
            cached[key] = [np.full_like(p, 0.01) for p in current_params()]
        return cached[key]

    def loss_and_grads():
        ps = current_params()
        return float(sum(np.sum(p.astype(np.float64) ** 2) for p in ps)), [2 * p for p in ps]

    def train_one_epoch(opt):  # a few steps on sum(p^2)
        for _ in range(3):
            opt.step([2 * p for group in opt.param_groups for p in group["params"]])

    def evaluate(val_set):  # (loss, accuracy) of the model `params`
        loss = float(sum(np.sum(p**2) for p in namespace["params"]))
        return loss, 1 / (1 + loss)

    namespace.update(
        grads_for=grads_for,
        loss_and_grads=loss_and_grads,
        train_one_epoch=train_one_epoch,
        evaluate=evaluate,
        val_set=None,
    )
    return namespace


def torch_stand_ins():
    """A model, a loss and a loader for the PyTorch section's snippet."""
    import torch

    torch.manual_seed(0)
    model = torch.nn.Linear(4, 2)
    loader = [(torch.randn(8, 4), torch.randint(0, 2, (8,))) for _ in range(3)]
    return dict(model=model, loader=loader, loss_fn=torch.nn.functional.cross_entropy)


def keras_stand_ins(monkeypatch):
    """Digits-shaped data for the Keras section's snippet. Its KERAS_BACKEND is
    set through monkeypatch (undone after the test), so other tests never see it."""
    import importlib.util

    if importlib.util.find_spec("torch") is None or importlib.util.find_spec("keras") is None:
        raise ImportError("the Keras section needs keras and torch")
    keras = sys.modules.get("keras")
    if keras is not None and keras.backend.backend() != "torch":
        raise ImportError("Keras runs on another backend in this process")
    if keras is None:
        monkeypatch.setenv("KERAS_BACKEND", "torch")
    rng = np.random.default_rng(0)
    return dict(
        x_train=rng.standard_normal((64, 64)).astype(np.float32), y_train=rng.integers(0, 10, 64)
    )


def test_readme_examples_run(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    monkeypatch.chdir(tmp_path)
    blocks = python_blocks()
    assert len(blocks) >= 6
    namespace = user_stand_ins()
    for block in blocks:
        if "cyoptim.keras" in block:
            # The Keras section: run on its own, when keras and torch are installed.
            try:
                stand_ins = keras_stand_ins(monkeypatch)
            except ImportError:
                continue
            exec(compile(block, "README.md", "exec"), dict(namespace, **stand_ins))
            continue
        if "cyoptim.torch" in block:
            # The PyTorch section: run on its own (torch stand-ins), when torch is installed.
            try:
                stand_ins = torch_stand_ins()
            except ImportError:
                continue
            exec(compile(block, "README.md", "exec"), dict(namespace, **stand_ins))
            continue
        exec(compile(block, "README.md", "exec"), namespace)
    assert namespace["W"].dtype == np.float32
