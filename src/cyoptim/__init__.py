"""cyoptim: fast CPU neural-network optimizers for NumPy arrays.

Cython kernels (OpenMP threads, SIMD variants chosen at import) behind a small
API that follows torch.optim::

    import numpy as np, cyoptim
    W = np.zeros((784, 256), np.float32); b = np.zeros(256, np.float32)
    opt = cyoptim.Adam([W, b], lr=1e-3)
    opt.step([dW, db])          # W and b are updated in place
"""

from ._dispatch import simd_info
from ._threads import get_num_threads, set_num_threads
from .adam import Adam, AdamW
from .buffer import ParamBuffer
from .optimizer import Optimizer
from .sgd import SGD
from . import schedules
from .early_stopping import EarlyStopping
from .lr_finder import LRFinder

__version__ = "0.1.0"

__all__ = [
    "Adam", "AdamW", "Optimizer", "ParamBuffer", "SGD",
    "get_num_threads", "set_num_threads", "simd_info",
]
__all__ += ["EarlyStopping", "LRFinder", "schedules"]
