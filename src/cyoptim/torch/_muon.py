"""cyoptim.torch.Muon: torch.optim.Muon over cyoptim.Muon's kernels, with torch's bfloat16 Newton-Schulz."""

import inspect

import numpy as np
import torch

from ..optimizers.muon import EPS, NS_COEFFICIENTS, NS_STEPS, lr_ratio
from ..optimizers.muon import Muon as _NumpyMuon
from ._optimizer import Optimizer


class Muon(Optimizer):
    """Muon for torch tensors: a drop-in for ``torch.optim.Muon``.

    The constructor, defaults, argument checks (torch's, and torch's wording:
    the arguments go through ``torch.optim.Muon`` once), state
    (``momentum_buffer``) and ``state_dict`` are torch's: a state_dict of
    ``torch.optim.Muon`` loads here and the other way round. A step is
    ``cyoptim.Muon``'s: a kernel pass over the group (momentum, the Nesterov
    blend, the update rounded to bfloat16), Newton-Schulz per param in
    bfloat16 with torch's own matrix products (as ``torch.optim.Muon``: the
    same products, so the same sums, on the CPU's bfloat16 units where it
    has them: AMX, AVX512-BF16), and a second kernel pass (weight decay and
    the update), on the tensors' own memory. The kernel passes round as torch
    does (its lerps and its update are fused multiply-adds), so a step is
    ``torch.optim.Muon``'s bit for bit (tests/test_torch_muon.py), on any
    BLAS: Newton-Schulz gets the same input and runs the same products.
    Newton-Schulz runs on torch's intra-op threads
    (``torch.set_num_threads``), the kernel passes on cyoptim's.

    Params: 2-d (as torch: anything else is refused, with torch's message,
    here at construction, in ``add_param_group`` and at every step), dense,
    contiguous CPU tensors, float32 or float64, one dtype per group; anything
    else is refused with an error naming the param, and nothing is written.
    torch.amp.GradScaler's ``grad_scale`` / ``found_inf`` are applied in the
    first pass. Not supported: sharded ``DTensor`` params (Newton-Schulz
    needs the whole matrix) and ``step(copy_to=...)``; both are refused.

    The update rule, as ``cyoptim.Muon``:

    """

    _spec = _NumpyMuon

    def __init__(
        self,
        params,
        lr=1e-3,
        weight_decay=0.1,
        momentum=0.95,
        nesterov=True,
        ns_coefficients=NS_COEFFICIENTS,
        eps=EPS,
        ns_steps=NS_STEPS,
        adjust_lr_fn=None,
    ):
        # torch's checks and defaults dict, verbatim, from torch's own constructor.
        probe = torch.optim.Muon(
            [torch.zeros(1, 1)],
            lr=lr,
            weight_decay=weight_decay,
            momentum=momentum,
            nesterov=nesterov,
            ns_coefficients=ns_coefficients,
            eps=eps,
            ns_steps=ns_steps,
            adjust_lr_fn=adjust_lr_fn,
        )
        super().__init__(params, dict(probe.defaults))

    def _bind_kernels(self):
        super()._bind_kernels()
        # Newton-Schulz reads the whole matrix: a DTensor's local shard alone
        # cannot be stepped (the base class refuses such params).
        self._tensor_norms = True

    def _check_group(self, group, index):
        super()._check_group(group, index)
        for k, p in enumerate(group["params"]):
            if isinstance(p, torch.Tensor) and p.ndim != 2:
                raise ValueError(
                    f"Muon only supports 2D parameters whereas we found a "
                    f"parameter with size: {p.size()} "
                    f"({self._name(group, index, k)})"
                )

    def step(self, closure=None, copy_to=None):
        """Perform a single optimization step (``torch.optim.Muon.step``): reads
        each param's ``.grad`` (params without one are skipped) and returns the
        closure's loss. Every param, grad and state tensor of every group is
        checked before anything is written."""
        if copy_to is not None:
            raise ValueError(
                "Muon does not write 16-bit copies (copy_to): its update "
                "needs the whole matrix between its two passes"
            )
        return super().step(closure)

    def _update(self, group, plan, blocks, n_threads):
        kernels = self._kernels
        kernels.muon_momentum_group(plan, group, blocks, n_threads)
        plan.grad_scale = 1.0  # the first pass unscaled the grads, in place
        update, offset, ratios = blocks["update"], 0, []
        for p in plan.stepped:  # the group's params with a grad, in plan order
            shape = tuple(p.shape)
            size = p.numel()
            newton_schulz_(torch.from_numpy(update[offset : offset + size].reshape(shape)), group)
            ratios.append(lr_ratio(group["adjust_lr_fn"], shape))
            offset += size
        blocks["lr_ratio"] = np.array(ratios, dtype=np.float64)
        kernels.muon_apply_group(plan, group, blocks, n_threads)


def newton_schulz_(update, group):
    """update (bf16 values of U) <- NS(U), in place: torch.optim.Muon's iteration
    (the NumPy class's docstring states it) with torch's bfloat16 matmul."""
    a, b, c = group["ns_coefficients"]
    x = update.bfloat16()
    tall = x.shape[0] > x.shape[1]
    if tall:
        x = x.T  # iterate on the wide matrix
    x.div_(x.norm().clamp(min=group["eps"]))
    for _ in range(group["ns_steps"]):
        gram = x @ x.T
        poly = torch.addmm(gram, gram, gram, beta=b, alpha=c)
        x = torch.addmm(x, poly, x, beta=a)
    update.copy_(x.T if tall else x)


# torch's signature (with its annotations), as the classes made from the registry have.
Muon.__init__.__signature__ = inspect.signature(torch.optim.Muon.__init__)  # type: ignore[attr-defined]
Muon.__doc__ = (Muon.__doc__ or "") + (inspect.getdoc(_NumpyMuon) or "\n").split("\n", 1)[1]
