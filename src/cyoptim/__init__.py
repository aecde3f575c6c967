"""cyoptim: fast CPU neural-network optimizers for NumPy arrays.

Cython kernels (OpenMP threads, SIMD variants chosen at import) behind a small
API that follows torch.optim::

    import numpy as np, cyoptim
    W = np.zeros((784, 256), np.float32); b = np.zeros(256, np.float32)
    opt = cyoptim.Adam([W, b], lr=1e-3)
    opt.step([dW, db])          # W and b are updated in place
"""

from . import schedules
from ._dispatch import simd_info
from ._threads import get_num_threads, set_num_threads
from .adadelta import Adadelta
from .adagrad import Adagrad
from .adam import Adam, AdamW
from .adamax import Adamax
from .buffer import ParamBuffer
from .early_stopping import EarlyStopping
from .lr_finder import LRFinder
from .nadam import NAdam
from .optimizer import Optimizer
from .radam import RAdam
from .rmsprop import RMSprop
from .sgd import SGD

__version__ = "0.1.0"

__all__ = [
    "Adadelta", "Adagrad", "Adam", "AdamW", "Adamax", "NAdam", "RAdam", "RMSprop", "SGD",
    "Optimizer", "ParamBuffer", "EarlyStopping", "LRFinder", "schedules",
    "get_num_threads", "set_num_threads", "simd_info",
]
