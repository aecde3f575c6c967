"""Pure-NumPy twins of every cyoptim optimizer: the test oracle and the benchmark baseline.

Each class here subclasses the fast optimizer of the same name and replaces
only its kernel call by NumPy code written as well as NumPy allows (in-place
ufuncs with ``out=``, scratch arrays reused across steps), in torch's order of
operations and in the param's precision. Param groups, state layout, input
checks and ``state_dict`` are shared with the fast class, so both can be driven
by the same code and compared array for array.
"""

from .adadelta import Adadelta
from .adafactor import Adafactor
from .adagrad import Adagrad
from .adam import Adam, AdamW
from .adamax import Adamax
from .asgd import ASGD
from .clip import clip_grad_norm_, clip_grad_value_
from .lamb import LAMB
from .lion import Lion
from .muon import Muon
from .nadam import NAdam
from .radam import RAdam
from .rmsprop import RMSprop
from .rprop import Rprop
from .sgd import SGD

__all__ = [
    "ASGD",
    "Adadelta",
    "Adafactor",
    "Adagrad",
    "Adam",
    "AdamW",
    "Adamax",
    "LAMB",
    "Lion",
    "Muon",
    "NAdam",
    "RAdam",
    "RMSprop",
    "Rprop",
    "SGD",
    "clip_grad_norm_",
    "clip_grad_value_",
]
