"""Small, dependency-light examples that train with cyoptim.

- :class:`MLP`: a NumPy multilayer perceptron whose params live in one
  :class:`cyoptim.ParamBuffer` and whose backward pass writes grads in place.
- :func:`load_digits_dataset`: scikit-learn's 8x8 digits (or a synthetic
  stand-in without scikit-learn), split and standardized;
  :func:`validation_split` holds out part of its training rows.

``python -m cyoptim demo`` trains the MLP on the digits with every optimizer.
"""

from .data import Dataset, load_digits_dataset, validation_split
from .mlp import MLP

__all__ = ["Dataset", "MLP", "load_digits_dataset", "validation_split"]
