"""cyoptim's optimizers as drop-in ``torch.optim.Optimizer`` classes for CPU tensors.

    import cyoptim.torch as cot
    opt = cot.AdamW(model.parameters(), lr=1e-3)     # was: torch.optim.AdamW(...)
    loss.backward(); opt.step(); opt.zero_grad()

Every optimizer of ``cyoptim`` has a class of the same name here, a subclass
of ``torch.optim.Optimizer`` with torch's constructor signature and defaults
(for Lion and LAMB, which torch lacks, cyoptim's): one per row of
cyoptim.registry, and ``LBFGS`` and ``Muon`` (2-d params; Newton-Schulz with
torch's bfloat16 matmul between two kernel passes), written by hand. ``foreach`` and
``fused`` are accepted and stored where torch's class takes them (the kernel
is always fused: one call per param group); ``capturable=True`` and
``differentiable=True`` are refused. State, ``state_dict`` and schedulers
are torch's: a ``torch.optim.<Name>`` state_dict loads here and the other
way round.

Params and grads must be dense, contiguous CPU tensors of one supported dtype
(float32 or float64) per param group: anything else is refused with an error
naming the param, and nothing is written. The kernels update the tensors' own
memory: no copy in, no copy out. Sharded ``DTensor`` params (FSDP2 with
``CPUOffloadPolicy``) are stepped through their local shards, with their
DTensor grads and state; ``ZeroRedundancyOptimizer(optimizer_class=...)``
and DeepSpeed's ZeRO-Offload drive these classes as they are.

This module needs torch (``pip install "cyoptim[torch]"``); ``import cyoptim``
alone never imports it.
"""

try:
    import torch  # noqa: F401  (the check that torch is installed)
except ImportError as error:  # pragma: no cover - depends on the install
    raise ImportError(
        "cyoptim.torch needs PyTorch: pip install 'cyoptim[torch]' (or pip install torch)"
    ) from error

from .. import registry
from ._classes import make_class
from ._lbfgs import LBFGS
from ._muon import Muon
from ._optimizer import DTYPES, Optimizer

__all__ = ["Optimizer", "DTYPES", "LBFGS", "Muon"] + list(registry.NAMES)

for _row in registry.OPTIMIZERS:
    globals()[_row.name] = make_class(_row, __name__)
del _row
