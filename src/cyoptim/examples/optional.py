"""Lazy imports of optional dependencies and of cyoptim parts that may be missing.

The examples run on NumPy and cyoptim alone. scikit-learn, matplotlib, tqdm
and threadpoolctl make them nicer when installed (``pip install cyoptim[demo]``),
and some commands need parts of cyoptim (schedules, the LR finder, the
benchmarks) that a build may not have yet. Everything optional is imported
here, when first needed, so a missing piece costs nothing until it is used and
then gives one clear message.
"""

import contextlib
import importlib


class MissingFeatureError(ImportError):
    """A command needs a part of cyoptim that this installation does not have."""


def optional_module(name):
    """The module `name`, or None when it (or a dependency of it) cannot be imported."""
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def require_module(name, needed_for):
    """Import the cyoptim module `name`; MissingFeatureError if it does not exist.

    An ImportError raised inside an existing module is a bug there, not a
    missing feature, and propagates unchanged.
    """
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name != name and not name.startswith(f"{exc.name}."):
            raise
        raise MissingFeatureError(
            f"{needed_for} needs {name}, which this installation of cyoptim does not "
            f"have; install a cyoptim release that includes it") from exc


def require_attribute(module_name, attribute, needed_for):
    """`module_name.attribute`; MissingFeatureError if the module or attribute is missing."""
    module = require_module(module_name, needed_for)
    value = getattr(module, attribute, None)
    if value is None:
        raise MissingFeatureError(
            f"{needed_for} needs {module_name}.{attribute}, which this installation of "
            f"cyoptim does not have; install a cyoptim release that includes it")
    return value


def single_threaded_blas():
    """A context that runs BLAS on one thread (threadpoolctl), else a no-op context.

    The demo's matrices are small, so one BLAS thread is also the fastest.
    """
    threadpoolctl = optional_module("threadpoolctl")
    if threadpoolctl is None:
        return contextlib.nullcontext()
    return threadpoolctl.threadpool_limits(limits=1, user_api="blas")


def progress_bar(total, description, enabled=True):
    """A tqdm bar over `total` steps, or a silent stand-in without tqdm (or when disabled)."""
    tqdm = optional_module("tqdm") if enabled else None
    if tqdm is None:
        return _NoProgress()
    return tqdm.tqdm(total=total, desc=description, leave=False, unit="step",
                     dynamic_ncols=True)


class _NoProgress:
    """The part of tqdm's interface the examples use, doing nothing."""

    def update(self, n=1):
        pass

    def set_postfix_str(self, text):
        pass

    def close(self):
        pass
