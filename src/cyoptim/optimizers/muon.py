"""Muon: momentum orthogonalized by a Newton-Schulz iteration, for 2-d params."""

import math
import numbers

import numpy as np

from ..optimizer import Optimizer

# torch.optim._muon's constants (Keller Jordan's Muon).
NS_COEFFICIENTS = (3.4445, -4.7750, 2.0315)
NS_STEPS = 5
EPS = 1e-7
ADJUST_LR_FNS = (None, "original", "match_rms_adamw")


def round_bfloat16(x):
    """The bfloat16 values nearest to ``x`` (ties to even), as float32: torch's
    float -> bfloat16 conversion (a float64 is rounded to float32 first, as torch
    does). NaN stays NaN. A 0-d input gives a NumPy float32 scalar."""
    x = np.asarray(x, np.float32)
    bits = np.array(x, copy=True).view(np.uint32)
    bits += np.uint32(0x7FFF) + ((bits >> np.uint32(16)) & np.uint32(1))
    bits &= np.uint32(0xFFFF0000)
    out = np.where(np.isnan(x), x, bits.view(np.float32))
    return out[()] if out.ndim == 0 else out


def lr_ratio(adjust_lr_fn, shape):
    """The factor of the learning rate for a param of this shape (torch's _adjust_lr).

    ``None`` or ``"original"`` (Keller Jordan): sqrt(max(1, m/n)) for an m x n
    matrix; ``"match_rms_adamw"`` (Moonshot): 0.2 * sqrt(max(m, n)). A param
    with no columns has no elements to update: 1.
    """
    rows, cols = shape[:2]
    if adjust_lr_fn == "match_rms_adamw":
        return 0.2 * math.sqrt(max(rows, cols))
    if cols == 0:
        return 1.0
    return math.sqrt(max(1, rows / cols))


def normalizer(x_norm, eps):
    """torch's ``X.norm().clamp(min=eps)`` for a bfloat16 X whose 2-norm is x_norm:
    the norm rounded to bfloat16, then max with eps (as float32), rounded again."""
    n = round_bfloat16(np.float64(x_norm))
    e = np.float32(eps)
    return float(round_bfloat16(n if n != n or n >= e else e))


class Muon(Optimizer):
    r"""Muon: SGD momentum whose update is orthogonalized (Jordan et al., 2024);
    the update of ``torch.optim.Muon`` (torch 2.13). For 2-d params only.

    Per param (an :math:`m \times n` matrix), with :math:`\mu` the momentum:

    .. math::
        B_t &= \mathrm{lerp}(B_{t-1}, g_t, 1-\mu) = \mu B_{t-1} + (1-\mu) g_t \\
        U_t &= \mathrm{lerp}(g_t, B_t, \mu) \ \text{(nesterov)}, \quad B_t \ \text{(otherwise)} \\
        O_t &= \mathrm{NS}^{(a,b,c)}_k(U_t) \\
        \theta_t &= \theta_{t-1}(1 - \gamma\lambda) - \gamma\, r(m, n)\, O_t

    :math:`\mathrm{NS}` runs in bfloat16, as torch's does: :math:`X_0 =
    \mathrm{bf16}(U_t)`, transposed when :math:`m > n` (so that :math:`X` is
    wide), divided by :math:`\max(\|X_0\|_F, \epsilon)`, then :math:`k`
    times

    .. math::
        G = X X^\top, \qquad H = b\,G + c\,G G, \qquad X \leftarrow a X + H X

    with every matrix rounded to bfloat16 after each line, once: the products
    accumulate in float32, and torch's ``addmm`` adds :math:`b\,G` and
    :math:`a X` with a fused multiply-add (so does this). :math:`r(m, n)` is
    ``adjust_lr_fn``'s factor: :math:`\sqrt{\max(1, m/n)}` (``None`` or
    ``"original"``) or :math:`0.2\sqrt{\max(m, n)}` (``"match_rms_adamw"``,
    which lets Muon reuse AdamW's learning rate and weight decay).

    How it is computed: two fused kernel passes over the group (momentum,
    blend and bfloat16 rounding; then weight decay and the update), and
    between them, per param, the products of NS as float32 matmuls of NumPy's
    BLAS on bfloat16 values, rounded to bfloat16 where torch rounds. Products
    of bfloat16 values are exact in float32, so only the order in which the
    BLAS sums them differs from torch's bfloat16 matmul (oneDNN/MKL on CPU).
    That order is enough to round some entries to the neighbouring bfloat16
    value, and NS amplifies such differences: for one step on the same input,
    matrices of a few dozen rows and columns usually agree with torch
    bitwise; larger ones differ in a fraction of the entries of :math:`O_t`
    by a few bfloat16 units (tests/test_muon.py measures and bounds it; the
    same iteration with exact sums is further from torch). The lerps and the
    final update are fused multiply-adds, as torch's (so the momentum buffer
    and the input of NS are torch's bit for bit). One other known difference,
    of one float rounding: the Frobenius norm is summed in double here (deterministically), in float32
    by torch, both rounded to bfloat16. ``X X^T`` and ``G G`` use the BLAS's
    symmetric product (``syrk``; ``G`` is exactly symmetric). Results are
    bitwise the same for any number of kernel threads; the matrix products
    are the BLAS's, so another BLAS, another CPU's kernels of it and, with
    some BLAS builds (NumPy 1.25's OpenBLAS), another BLAS thread count sum
    in another order.

    Args:
        params: 2-d arrays, or dicts with "params" and per-group overrides.
            Muon is meant for the hidden weight matrices of a network; optimize
            biases, gains, embeddings and the output layer with another
            optimizer such as :class:`AdamW` (see the example).
        lr (float): learning rate :math:`\gamma` (default 1e-3).
        weight_decay (float): decoupled weight decay :math:`\lambda` (default 0.1).
        momentum (float): :math:`\mu` (default 0.95).
        nesterov (bool): Nesterov momentum (default True).
        ns_coefficients (tuple): :math:`(a, b, c)` (default (3.4445, -4.775, 2.0315)).
        eps (float): lower bound :math:`\epsilon` of the norm that :math:`X_0`
            is divided by (default 1e-7).
        ns_steps (int): :math:`k`, fewer than 100 (default 5).
        adjust_lr_fn (str or None): ``None``, ``"original"`` or ``"match_rms_adamw"``.

    State per param: ``momentum_buffer``. Besides its state, Muon keeps one
    param-sized scratch block per group (the update between the passes) and,
    during a step, float32 work arrays of one matrix's size.

    Example:
        >>> import numpy as np, cyoptim
        >>> w = np.zeros((2, 3), np.float32)
        >>> opt = cyoptim.Muon([w], lr=0.1, weight_decay=0.0)
        >>> opt.step([np.array([[1, 0, 0], [0, 4, 0]], np.float32)])
        >>> w       # orthogonalized: both directions move alike (torch.optim.Muon: the same)
        array([[-0.07304688,  0.        ,  0.        ],
               [ 0.        , -0.07304688,  0.        ]], dtype=float32)

        Muon for the hidden weights, AdamW for the rest:
        ``cyoptim.examples.muon`` (``python -m cyoptim.examples.muon``).
        For torch tensors, ``cyoptim.torch.Muon`` steps this update in place
        (a drop-in for ``torch.optim.Muon``).

    Bad input: the constructor refuses params that are not 2-d, with torch's
    message, and hyperparameters torch refuses (torch's wording); it also
    refuses what torch only rejects at the first step (``ns_steps >= 100``,
    coefficients that are not three numbers) and a negative ``eps`` or
    ``ns_steps``, which torch accepts.

    References: Keller Jordan et al., "Muon: An optimizer for hidden layers in
    neural networks", https://kellerjordan.github.io/posts/muon/ ; Liu et al.,
    "Muon is Scalable for LLM Training", https://arxiv.org/abs/2502.16982
    """

    kernel = "muon_momentum"
    _exports_step = False

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
        super().__init__(
            params,
            dict(
                lr=lr,
                weight_decay=weight_decay,
                momentum=momentum,
                nesterov=nesterov,
                ns_coefficients=ns_coefficients,
                eps=eps,
                ns_steps=ns_steps,
                adjust_lr_fn=adjust_lr_fn,
            ),
        )

    def add_param_group(self, param_group):
        params = param_group.get("params", ()) if isinstance(param_group, dict) else ()
        for k, p in enumerate([params] if isinstance(params, np.ndarray) else list(params)):
            if isinstance(p, np.ndarray) and p.ndim != 2:
                raise ValueError(
                    f"Muon only supports 2D parameters whereas we found a "
                    f"parameter with size: {p.shape} (param {self._n_params + k})"
                )
        super().add_param_group(param_group)

    def _validate_hyperparameters(self, group):
        if not 0.0 <= group["lr"]:
            raise ValueError(f"Learning rate should be >= 0 but is: {group['lr']}")
        if not 0.0 <= group["momentum"]:
            raise ValueError(f"momentum should be >= 0 but is: {group['momentum']}")
        if not 0.0 <= group["weight_decay"]:
            raise ValueError(f"weight decay should be >= 0 but is: {group['weight_decay']}")
        if group["adjust_lr_fn"] not in ADJUST_LR_FNS:
            raise ValueError(
                f"Adjust learning rate function {group['adjust_lr_fn']} is not supported"
            )
        coefficients = group["ns_coefficients"]
        if (
            not isinstance(coefficients, (tuple, list))
            or len(coefficients) != 3
            or not all(
                isinstance(v, numbers.Real) and not isinstance(v, bool) for v in coefficients
            )
        ):
            raise ValueError(
                f"Coefficients must be a tuple of exactly 3 values, got {coefficients!r}"
            )
        steps = group["ns_steps"]
        if not isinstance(steps, numbers.Integral) or isinstance(steps, bool) or steps < 0:
            raise ValueError(f"ns_steps must be a non-negative integer, got {steps!r}")
        if steps >= 100:
            raise ValueError("Number of steps must be less than 100 for computational efficiency")
        if not 0.0 <= group["eps"]:
            raise ValueError(f"Invalid epsilon value: {group['eps']}")

    def _state_names(self, group):
        return ("momentum_buffer",)

    def _all_state_names(self):
        return ("momentum_buffer",)

    def _scratch_names(self, group):
        return ("update",)  # the update: bf16(U), then O, between the two passes

    def _update(self, group, plan, blocks, grads, n_threads):
        kernels = self._kernels
        kernels.muon_momentum_group(plan, group, blocks, n_threads)
        update, offsets = blocks["update"], plan.offsets
        for k, grad in enumerate(grads):
            if grad is not None:
                shape = plan.params[k].shape
                orthogonalize(
                    kernels, update[offsets[k] : offsets[k + 1]].reshape(shape), group, n_threads
                )
        blocks["lr_ratio"] = np.array(
            [lr_ratio(group["adjust_lr_fn"], p.shape) for p in plan.params], dtype=np.float64
        )
        kernels.muon_apply_group(plan, group, blocks, n_threads)


def orthogonalize(kernels, update, group, n_threads):
    """update (bf16 values of U, the param's shape and dtype) <- NS(U), in place
    (with the group's ns_coefficients, ns_steps and eps; cyoptim.torch.Muon too)."""
    x = update if update.dtype == np.float32 else update.astype(np.float32)
    if x.size:
        newton_schulz(kernels, x, group, n_threads)
    if x is not update:
        np.copyto(update, x)


def newton_schulz(kernels, x, group, n_threads):
    """x (float32, C-contiguous, bf16 values) <- NS(x), in place.

    A tall x (rows > cols) stays in its layout: torch transposes it, so
    here G = x^T x and the update of x^T, (a x^T + H x^T)^T, is a x + x H
    (H is symmetric: bf16(b G + c G G) with G and G G exactly symmetric).
    """
    a, b, c = group["ns_coefficients"]
    tall = x.shape[0] > x.shape[1]
    wide = x.T if tall else x  # the m x n matrix torch iterates on
    norm = kernels.grad_norms([x], 2.0, n_threads)[0]
    kernels.bf16_divide_(x, normalizer(norm, group["eps"]), n_threads)
    m = wide.shape[0]
    gram = np.empty((m, m), np.float32)
    poly = np.empty((m, m), np.float32)
    product = np.empty_like(x)
    for _ in range(group["ns_steps"]):
        np.matmul(wide, wide.T, out=gram)  # syrk
        kernels.bf16_round_(gram, n_threads)
        np.matmul(gram, gram.T, out=poly)  # G G (G symmetric): syrk
        kernels.bf16_fma(poly, b, gram, c, poly, n_threads)  # addmm(G, G, G, beta=b, alpha=c)
        if tall:
            np.matmul(x, poly, out=product)
        else:
            np.matmul(poly, x, out=product)
        kernels.bf16_fma(x, a, x, 1.0, product, n_threads)  # addmm(X, H, X, beta=a)
