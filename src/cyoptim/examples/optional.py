"""Lazy imports of the examples' optional third-party dependencies.

The examples run on NumPy and cyoptim alone. scikit-learn, matplotlib, tqdm
and threadpoolctl make them nicer when installed (``pip install cyoptim[demo]``).
They are imported when first needed, so a missing one costs nothing until it
would be used, and the examples then carry on without it.
"""

import contextlib
import importlib


def optional_module(name):
    """The module `name`, or None when it (or a dependency of it) cannot be imported."""
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def single_threaded_blas():
    """A context that runs BLAS on one thread (threadpoolctl), else a no-op context.

    The demo's matrices are small, so one BLAS thread is also the fastest.
    """
    threadpoolctl = optional_module("threadpoolctl")
    if threadpoolctl is None:
        return contextlib.nullcontext()
    return threadpoolctl.threadpool_limits(limits=1, user_api="blas")


def progress_bar(total, description, enabled=True, unit="step", initial=0):
    """A tqdm bar over `total` units (`initial` of them done), or a silent stand-in
    without tqdm (or when disabled)."""
    tqdm = optional_module("tqdm") if enabled else None
    if tqdm is None:
        return _NoProgress()
    return tqdm.tqdm(
        total=total, initial=initial, desc=description, leave=False, unit=unit, dynamic_ncols=True
    )


class _NoProgress:
    """The part of tqdm's interface the examples use, doing nothing."""

    def update(self, n=1):
        pass

    def set_postfix_str(self, text, refresh=True):
        pass

    def close(self):
        pass
