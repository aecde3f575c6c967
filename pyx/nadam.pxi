# NAdam (torch.optim.NAdam 2.13, _single_tensor_nadam).
#
# Per element, in the param's precision, in torch's order of operations:
#   g = -g if maximize
#   p = p * (1 - lr*wd)                   decoupled weight decay
#   g = g + wd*p                          coupled weight decay
#   m = lerp(m, g, 1 - beta1)
#   v = v*beta2 + ((1 - beta2)*g)*g
#   d = sqrt(v / (1 - beta2^t)) + eps     (bias correction inside the sqrt, unlike Adam)
#   p = p + (cg*g) / d
#   p = p + (cm*m) / d
# Per tensor, in double as torch's Python floats:
#   mu_t = beta1 * (1 - 0.5 * 0.96^(t * momentum_decay)), mu_{t+1} likewise
#   mu_product = mu_product * mu_t        (see below)
#   cg = -lr * (1 - mu_t) / (1 - mu_product)
#   cm = (-lr * mu_{t+1}) / (1 - mu_product * mu_{t+1})
#
# mu_product is per-tensor state. torch keeps it in a 0-dim tensor of its
# default scalar dtype, float32, so `mu_product *= mu` rounds mu to float32 and
# the product to float32 each step; we do the same (the values live in a
# float64 array owned by the Python class, one per tensor, exactly float32
# values). Accumulating in double instead would differ from torch by ~1e-8
# relative in every step size.

from libc.stdlib cimport malloc, free
from libc.math cimport pow


cdef struct NAdamArgs:
    char** params
    char** grads
    char* exp_avg
    char* exp_avg_sq
    const int64_t* offsets
    const double* coef_grad        # per run: cg
    const double* coef_avg         # per run: cm
    const double* bc2              # per run: 1 - beta2^t
    double beta1, beta2, eps, weight_decay, decay
    bint maximize, decoupled, is_double


cdef inline void _nadam_elements(floating* p, const floating* g, floating* m,
                                 floating* v, int64_t n, const NAdamArgs* a,
                                 double coef_grad, double coef_avg,
                                 double bc2_) noexcept nogil:
    cdef floating sign = -1 if a.maximize else 1
    cdef floating decay = <floating> a.decay
    cdef floating wd = <floating> a.weight_decay
    cdef floating w1 = <floating> (1 - a.beta1)
    cdef floating b2 = <floating> a.beta2
    cdef floating c2 = <floating> (1 - a.beta2)
    cdef floating eps = <floating> a.eps
    cdef floating cg = <floating> coef_grad
    cdef floating cm = <floating> coef_avg
    cdef floating bc2 = <floating> bc2_
    cdef bint coupled = a.weight_decay != 0 and not a.decoupled
    cdef floating gi, pi, mi, vi, di
    cdef int64_t i
    for i in range(n):
        gi = g[i] * sign
        pi = p[i] * decay
        if coupled:
            gi = gi + wd * pi
        mi = lerp(m[i], gi, w1)
        vi = v[i] * b2 + (c2 * gi) * gi
        m[i] = mi
        v[i] = vi
        di = fsqrt(vi / bc2) + eps
        pi = pi + (cg * gi) / di
        p[i] = pi + (cm * mi) / di


cdef void _nadam_segment(const void* args, Py_ssize_t k, int64_t start,
                         int64_t count) noexcept nogil:
    cdef const NAdamArgs* a = <const NAdamArgs*> args
    if a.grads[k] == NULL:
        return
    cdef int64_t at = a.offsets[k] + start    # position in the state blocks
    if a.is_double:
        _nadam_elements(<double*> a.params[k] + start, <const double*> a.grads[k] + start,
                        <double*> a.exp_avg + at, <double*> a.exp_avg_sq + at, count, a,
                        a.coef_grad[k], a.coef_avg[k], a.bc2[k])
    else:
        _nadam_elements(<float*> a.params[k] + start, <const float*> a.grads[k] + start,
                        <float*> a.exp_avg + at, <float*> a.exp_avg_sq + at, count, a,
                        a.coef_grad[k], a.coef_avg[k], a.bc2[k])


def nadam(GroupPlan plan, exp_avg, exp_avg_sq, double[::1] mu_product, double lr,
          double beta1, double beta2, double eps, double weight_decay,
          double momentum_decay, bint decoupled, bint maximize, int n_threads):
    """One NAdam step over every tensor of plan that has a grad.

    plan: the group, with grads gathered and steps advanced.     # IN/OUT
    exp_avg, exp_avg_sq: the group's state blocks.               # IN/OUT
    mu_product: float64[n_tensors], the per-tensor product of the mu_t; updated
        for the tensors that have a grad.                        # IN/OUT
    n_threads: requested threads (<= 0: OpenMP's maximum).
    """
    cdef NAdamArgs a
    cdef Py_ssize_t n = plan.n_tensors, k
    if mu_product.shape[0] != n:
        raise ValueError("mu_product does not match its param group")
    cdef double* scalars = <double*> malloc(3 * max(n, 1) * sizeof(double))
    if scalars == NULL:
        raise MemoryError()
    cdef double last_step = -1, step, mu = 0, mu_next = 0, bc2 = 0, mp
    cdef bint same = True
    try:
        a.exp_avg = plan.block_data(exp_avg)
        a.exp_avg_sq = plan.block_data(exp_avg_sq)
        # Per tensor (mu_product is per-tensor state); the powers once per
        # distinct step count.
        for k in range(n):
            if plan.c_grads[k] == NULL:
                continue
            step = plan.c_steps[k]
            if step != last_step:
                mu = beta1 * (1.0 - 0.5 * pow(0.96, step * momentum_decay))
                mu_next = beta1 * (1.0 - 0.5 * pow(0.96, (step + 1) * momentum_decay))
                bc2 = 1 - pow(beta2, step)
                last_step = step
            mp = <float> (<float> mu_product[k] * <float> mu)
            mu_product[k] = mp
            scalars[k] = -lr * (1.0 - mu) / (1.0 - mp)
            scalars[n + k] = (-lr * mu_next) / (1.0 - mp * mu_next)
            scalars[2 * n + k] = bc2
            if plan.fused and (scalars[k] != scalars[0] or scalars[n + k] != scalars[n]):
                same = False
        # A fused run (every tensor has a grad and the same step) uses tensor 0's
        # scalars; mu_product can still differ per tensor after loading a state.
        if not same:
            plan._use_tensor_runs()
        a.params = plan.run_params
        a.grads = plan.run_grads
        a.offsets = plan.run_offsets
        a.coef_grad = scalars
        a.coef_avg = scalars + n
        a.bc2 = scalars + 2 * n
        a.beta1 = beta1
        a.beta2 = beta2
        a.eps = eps
        a.weight_decay = weight_decay
        a.decay = 1 - lr * weight_decay if (decoupled and weight_decay != 0) else 1.0
        a.maximize = maximize
        a.decoupled = decoupled
        a.is_double = plan.is_double
        n_threads = _effective_threads(plan.active_elements, n_threads, COST_HEAVY)
        with nogil:
            run_segments(_nadam_segment, &a, plan.run_offsets, plan.run_n, n_threads)
    finally:
        free(scalars)
