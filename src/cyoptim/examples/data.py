"""The demo's dataset: scikit-learn's 8x8 handwritten digits, or a synthetic stand-in.

``load_digits_dataset`` reads the digits that ship inside scikit-learn (no
download): 1797 images of 64 pixels, 10 classes. Without scikit-learn it
builds a deterministic synthetic dataset of the same shape (class-dependent
Gaussian blobs) and says so in the returned ``Dataset``. Either way the rows
are split into train and test by a permutation drawn from the seed, and the
features are standardized with the training set's mean and standard deviation.
``validation_split`` carves a validation set out of the training rows, for
choosing hyperparameters without looking at the test set.
"""

from dataclasses import dataclass

import numpy as np

from .optional import optional_module

N_SAMPLES, N_FEATURES, N_CLASSES = 1797, 64, 10
SYNTHETIC_SEED = 20240607  # the synthetic data is fixed; only the split depends on the seed


@dataclass(frozen=True)
class Dataset:
    """A train/test split.

    Attributes:
        name: ``"digits"`` (scikit-learn) or ``"synthetic"``.
        x_train, x_test: standardized features, shape (n, n_features).
        y_train, y_test: int64 class labels.
        n_classes: number of classes.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    n_classes: int

    @property
    def synthetic(self):
        """True when scikit-learn was missing and the data is the synthetic stand-in."""
        return self.name == "synthetic"

    @property
    def n_features(self):
        return self.x_train.shape[1]


def _sklearn_digits():
    """(x, y) of scikit-learn's digits, or None when scikit-learn is not installed."""
    datasets = optional_module("sklearn.datasets")
    if datasets is None:
        return None
    digits = datasets.load_digits()
    return digits.data.astype(np.float64), digits.target.astype(np.int64)


def synthetic_digits():
    """A fixed stand-in for the digits: 1797 x 64 Gaussian blobs around 10 class means.

    The class means are far enough apart that a small MLP can learn them, and
    the noise is large enough that it takes some epochs.
    """
    rng = np.random.default_rng(SYNTHETIC_SEED)
    means = rng.standard_normal((N_CLASSES, N_FEATURES))
    y = np.arange(N_SAMPLES, dtype=np.int64) % N_CLASSES
    x = means[y] + 1.5 * rng.standard_normal((N_SAMPLES, N_FEATURES))
    return x, y


def load_digits_dataset(seed=0, test_fraction=0.2, dtype=np.float32):
    """The digits (or, without scikit-learn, a synthetic stand-in), split and standardized.

    Args:
        seed: seeds the train/test permutation; the same seed gives the same split.
        test_fraction: share of the rows held out for testing (default 0.2).
        dtype: dtype of the features (default float32).

    Returns:
        A :class:`Dataset`; ``dataset.synthetic`` tells whether scikit-learn was missing.
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must lie in (0, 1), got {test_fraction}")
    loaded = _sklearn_digits()
    name = "digits"
    if loaded is None:
        loaded, name = synthetic_digits(), "synthetic"
    x, y = loaded
    order = np.random.default_rng(seed).permutation(len(y))
    n_test = int(round(len(y) * test_fraction))
    test, train = order[:n_test], order[n_test:]
    mean = x[train].mean(axis=0)
    std = x[train].std(axis=0)
    std[std == 0] = 1.0  # constant pixels (the digits' border) stay 0
    x = (x - mean) / std

    def split(rows):
        return np.ascontiguousarray(x[rows], dtype=dtype), y[rows]

    x_train, y_train = split(train)
    x_test, y_test = split(test)
    return Dataset(name, x_train, y_train, x_test, y_test, N_CLASSES)


def validation_split(dataset, fraction=0.2):
    """Carve a validation set out of `dataset`'s training rows; the test rows are dropped.

    The training rows are already in an order drawn from the seed, so the
    first ``int(n_train * fraction)`` of them make the validation set and the
    rest the new training set. The features keep the standardization of the
    whole training set (its mean and standard deviation, no labels).

    Args:
        dataset: a :class:`Dataset` from :func:`load_digits_dataset`.
        fraction: share of the training rows held out, in (0, 1) (default 0.2).

    Returns:
        A :class:`Dataset` whose ``x_train``/``y_train`` are the rows to fit
        and whose ``x_test``/``y_test`` are the validation rows.
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction must lie in (0, 1), got {fraction}")
    n_val = int(len(dataset.y_train) * fraction)
    if not 0 < n_val < len(dataset.y_train):
        raise ValueError(
            f"fraction {fraction} of {len(dataset.y_train)} training rows "
            f"leaves an empty training or validation set"
        )
    return Dataset(
        dataset.name,
        dataset.x_train[n_val:],
        dataset.y_train[n_val:],
        dataset.x_train[:n_val],
        dataset.y_train[:n_val],
        dataset.n_classes,
    )
