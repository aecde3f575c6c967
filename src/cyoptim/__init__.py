"""cyoptim: fast CPU neural-network optimizers for NumPy arrays.

Cython kernels (OpenMP threads, SIMD variants chosen at import) behind a small
API that follows torch.optim::

    import numpy as np, cyoptim
    W = np.zeros((784, 256), np.float32); b = np.zeros(256, np.float32)
    opt = cyoptim.Adam([W, b], lr=1e-3)
    opt.step([dW, db])          # W and b are updated in place
"""

from . import optimizers, quantization, reference, registry, schedules
from ._dispatch import simd_info
from ._threads import get_num_threads, set_num_threads
from .averaging import AveragedParams
from .buffer import ParamBuffer
from .checkpoint import load_state, save_state
from .clip import clip_grad_norm_, clip_grad_value_
from .early_stopping import EarlyStopping
from .lr_finder import LRFinder
from .optimizer import Optimizer
from .optimizers import *  # noqa: F403  (every optimizer of the registry)
from .precision import state_bytes
from .search import LRSearchResult, lr_search

__version__ = "0.1.0"

__all__ = [
    *optimizers.__all__,
    "Optimizer",
    "AveragedParams",
    "ParamBuffer",
    "clip_grad_norm_",
    "clip_grad_value_",
    "EarlyStopping",
    "LRFinder",
    "LRSearchResult",
    "lr_search",
    "schedules",
    "reference",
    "registry",
    "get_num_threads",
    "set_num_threads",
    "simd_info",
    "save_state",
    "load_state",
    "state_bytes",
    "quantization",
]
