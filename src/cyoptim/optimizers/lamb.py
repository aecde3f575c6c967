"""LAMB: Adam's direction scaled per tensor by a trust ratio."""

from ..optimizer import Optimizer
from ..validation import validate_adam_family


class LAMB(Optimizer):
    r"""LAMB (You et al., 2019), as optax's ``lamb``.

    Per element, in the param's precision, in this order (with :math:`g_t`
    negated first when ``maximize``):

    .. math::
        m_t &= (1-\beta_1)\, g_t + \beta_1 m_{t-1}, \qquad
        v_t = (1-\beta_2)\, g_t^2 + \beta_2 v_{t-1} \\
        u_t &= \frac{m_t / (1-\beta_1^t)}{\sqrt{v_t / (1-\beta_2^t)} + \epsilon}
               + \lambda\theta_{t-1}

    then per param TENSOR, from the norms of the whole tensor (in double):

    .. math::
        r_t &= \|\theta_{t-1}\|_2 / \|u_t\|_2 \quad (1 \text{ if either norm is } 0) \\
        \theta_t &= \theta_{t-1} + \bigl(-(\gamma r_t)\bigr)\, u_t

    The bias corrections :math:`1-\beta^t` and :math:`-(\gamma r_t)` are
    computed in double and cast to the param's precision. The
    :math:`\lambda\theta` term is skipped when :math:`\lambda = 0`.

    Both norms are deterministic reductions (docs/contract.md §4): fixed chunks of 4096
    elements, each summed in double over 8 interleaved lanes, the chunks'
    sums combined in order, so the result is bitwise the same for any thread
    count. A step makes two passes over the group (moments, direction and
    norms, then the update); the direction :math:`u` is kept between them in
    an internal param-sized block of the group (allocated at its first step,
    so LAMB holds one more param-sized array than its state; it is not part
    of the state).

    Args:
        params: arrays, or dicts with "params" and per-group overrides.
        lr (float): learning rate :math:`\gamma` (default 1e-3).
        betas (tuple): :math:`(\beta_1, \beta_2)` (default (0.9, 0.999)).
        eps (float): :math:`\epsilon`, added after the square root of the
            bias-corrected :math:`v` (default 1e-6).
        weight_decay (float): :math:`\lambda`, added to the direction before
            the trust ratio (default 0).
        maximize (bool): maximize the objective instead of minimizing it.

    State per param: ``step``, ``exp_avg``, ``exp_avg_sq``.

    Example:
        >>> import numpy as np, cyoptim
        >>> w = np.array([3.0, 4.0])
        >>> opt = cyoptim.LAMB([w], lr=0.1)
        >>> opt.step([np.array([1.0, 1.0])])    # u = (1, 1) (up to eps), r = 5 / sqrt(2)
        >>> w.round(4)
        array([2.6464, 3.6464])

    Warning:
        LAMB variants disagree. Differences from optax's ``lamb``: optax
        rounds :math:`u\,r` and then multiplies by :math:`-\gamma`, here
        :math:`\gamma r` is one double scalar; optax computes norms in the
        param's precision, here in double. The paper and other
        implementations clip the trust ratio or the norm (NVIDIA apex's
        ``FusedLAMB`` clamps :math:`\|\theta\|` and the ratio, and normalizes
        the gradient by the global grad norm before the moments; its
        ``eps`` placement differs too), some exclude biases and norm layers
        from the trust ratio, and some skip the bias corrections. None of that
        happens here: no clipping of the ratio, no grad pre-normalization
        (use :func:`cyoptim.clip_grad_norm_` for that), norms of :math:`\theta`
        before the update, every tensor gets its ratio (use a param group
        with ``weight_decay=0`` for biases; the ratio still applies).

    Reference: You et al., "Large Batch Optimization for Deep Learning:
    Training BERT in 76 minutes", https://arxiv.org/abs/1904.00962
    """

    kernel = "lamb"

    def __init__(
        self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-6, weight_decay=0.0, *, maximize=False
    ):
        super().__init__(
            params,
            dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, maximize=maximize),
        )

    def _validate_hyperparameters(self, group):
        validate_adam_family(group)

    def _state_names(self, group):
        return ("exp_avg", "exp_avg_sq")

    def _scratch_names(self, group):
        return ("update",)  # u, written by the kernel's first pass, read by its second
