import numpy as np
import pytest

DTYPES = [np.float32, np.float64]


@pytest.fixture(params=DTYPES, ids=["float32", "float64"])
def dtype(request):
    return request.param


def torch_or_skip():
    """torch 2.13 is the reference; tests comparing against it skip without it."""
    return pytest.importorskip("torch")
