"""One cyoptim.torch class per registry row.

A row with a torch counterpart takes torch's constructor signature, and its
defaults and argument checks are torch's own: the constructor arguments go
through ``torch.optim.<Name>`` once, on a one-element tensor, and its
``defaults`` dict (the keys its state_dict's param groups carry) becomes the
class's. A row without one (Lion, LAMB) takes the cyoptim class's signature
plus torch's common flags (``foreach``, ``fused``, ``capturable``,
``differentiable``).
"""

import inspect

import numpy as np
import torch

from .. import optimizers, precision
from ._optimizer import Optimizer

# torch's flags every class accepts: (name, default).
_TORCH_FLAGS = (
    ("foreach", None),
    ("capturable", False),
    ("differentiable", False),
    ("fused", None),
)


# cyoptim's low-precision options (cyoptim.precision), keyword-only, after
# torch's arguments, in the classes whose kernels stage storage.
_PRECISION_OPTIONS = (
    ("master_weights", False),
    ("state_dtype", None),
    ("stochastic_rounding", False),
    ("seed", None),
)


def _signature(row, spec):
    if row.in_torch:
        signature = inspect.signature(getattr(torch.optim, row.name).__init__)
        extra = []
    else:
        signature = inspect.signature(spec.__init__)
        extra = [
            inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default)
            for name, default in _TORCH_FLAGS
            if name not in signature.parameters
        ]
    if row.kernel in precision.STAGED_KERNELS:
        extra += [
            inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default)
            for name, default in _PRECISION_OPTIONS
            if name not in signature.parameters
        ]
    return signature.replace(parameters=list(signature.parameters.values()) + extra)


def _defaults(row, spec, options):
    """The class's defaults dict for these constructor arguments (validated)."""
    for flag in ("capturable", "differentiable"):
        if options.get(flag):
            raise ValueError(f"cyoptim.torch.{row.name} does not support {flag}=True")
    if row.in_torch:
        probe = getattr(torch.optim, row.name)([torch.zeros(1)], **options)
        return dict(probe.defaults)
    flags = {name: options.pop(name) for name, _ in _TORCH_FLAGS}
    # The cyoptim class builds (and checks) its defaults from the same arguments.
    probe = spec([np.zeros(1, np.float32)], **options)
    return dict(probe.defaults, **flags)


def make_class(row, module):
    """The cyoptim.torch class of a registry row."""
    spec = getattr(optimizers, row.name)
    signature = _signature(row, spec)

    def __init__(self, params, *args, **kwargs):
        bound = signature.bind(self, params, *args, **kwargs)
        bound.apply_defaults()
        options = {
            name: value
            for name, value in bound.arguments.items()
            if name not in ("self", "params")
        }
        low = {name: options.pop(name) for name, _ in _PRECISION_OPTIONS if name in options}
        Optimizer.__init__(
            self, params, _defaults(row, spec, options), precision.check(spec.kernel, **low)
        )

    __init__.__signature__ = signature
    __init__.__qualname__ = f"{row.name}.__init__"
    origin = (
        f"``torch.optim.{row.name}``"
        if row.in_torch
        else f"``cyoptim.{row.name}`` (torch has no {row.name})"
    )
    doc = (
        f"{row.name} for torch tensors: a drop-in for {origin}, one fused kernel "
        f"call per param group.\n\n"
        f"The constructor, defaults, state names and state_dict are those of {origin}. "
        f"See cyoptim.torch for what is supported. The update rule, as "
        f"``cyoptim.{row.name}``:\n\n{inspect.getdoc(spec)}"
    )
    return type(
        row.name,
        (Optimizer,),
        {
            "__init__": __init__,
            "__doc__": doc,
            "__module__": module,
            "__qualname__": row.name,
            "_spec": spec,
            "_eager_state": row.in_torch and row.name == "Adagrad",
        },
    )
