# Adam and AdamW (torch.optim.Adam 2.13, _single_tensor_adam).
#
# Per element, in the param's precision, in torch's order of operations:
#   g  = -g if maximize
#   p  = p * (1 - lr*wd)                  decoupled weight decay (AdamW)
#   g  = g + wd*p                         coupled weight decay (Adam)
#   m  = lerp(m, g, 1 - beta1)
#   v  = v*beta2 + ((1 - beta2)*g)*g
#   vmax = max(vmax, v); v = vmax         amsgrad
#   p  = p + (-step_size*m) / (sqrt(v)/sqrt(1 - beta2^t) + eps)
# with step_size = lr / (1 - beta1^t) computed in double per tensor.

from libc.stdlib cimport malloc, free
from libc.math cimport pow


cdef struct AdamArgs:
    char** params
    char** grads
    char* exp_avg
    char* exp_avg_sq
    char* max_exp_avg_sq
    const int64_t* offsets
    const double* step_size        # per tensor: lr / (1 - beta1^t)
    const double* bc2_sqrt         # per tensor: (1 - beta2^t) ** 0.5
    double beta1, beta2, eps, weight_decay, decay
    bint amsgrad, maximize, decoupled, is_double


cdef inline void _adam_elements(floating* p, const floating* g, floating* m,
                                floating* v, floating* vmax, int64_t n,
                                const AdamArgs* a, double step_size,
                                double bc2_sqrt) noexcept nogil:
    cdef floating sign = -1 if a.maximize else 1
    cdef floating decay = <floating> a.decay
    cdef floating wd = <floating> a.weight_decay
    cdef floating w1 = <floating> (1 - a.beta1)
    cdef floating b2 = <floating> a.beta2
    cdef floating c2 = <floating> (1 - a.beta2)
    cdef floating bc2s = <floating> bc2_sqrt
    cdef floating eps = <floating> a.eps
    cdef floating neg_step = <floating> (-step_size)
    cdef bint coupled = a.weight_decay != 0 and not a.decoupled
    cdef floating gi, pi, mi, vi
    cdef int64_t i
    if a.amsgrad:
        for i in range(n):
            gi = g[i] * sign
            pi = p[i] * decay
            if coupled:
                gi = gi + wd * pi
            mi = lerp(m[i], gi, w1)
            vi = v[i] * b2 + (c2 * gi) * gi
            m[i] = mi
            v[i] = vi
            vi = nan_max(vmax[i], vi)
            vmax[i] = vi
            p[i] = pi + (neg_step * mi) / (fsqrt(vi) / bc2s + eps)
    else:
        for i in range(n):
            gi = g[i] * sign
            pi = p[i] * decay
            if coupled:
                gi = gi + wd * pi
            mi = lerp(m[i], gi, w1)
            vi = v[i] * b2 + (c2 * gi) * gi
            m[i] = mi
            v[i] = vi
            p[i] = pi + (neg_step * mi) / (fsqrt(vi) / bc2s + eps)


cdef void _adam_segment(const void* args, Py_ssize_t k, int64_t start,
                        int64_t count) noexcept nogil:
    cdef const AdamArgs* a = <const AdamArgs*> args
    if a.grads[k] == NULL:
        return
    cdef int64_t at = a.offsets[k] + start    # position in the state blocks
    if a.is_double:
        _adam_elements(<double*> a.params[k] + start, <const double*> a.grads[k] + start,
                       <double*> a.exp_avg + at, <double*> a.exp_avg_sq + at,
                       <double*> a.max_exp_avg_sq + at, count, a,
                       a.step_size[k], a.bc2_sqrt[k])
    else:
        _adam_elements(<float*> a.params[k] + start, <const float*> a.grads[k] + start,
                       <float*> a.exp_avg + at, <float*> a.exp_avg_sq + at,
                       <float*> a.max_exp_avg_sq + at, count, a,
                       a.step_size[k], a.bc2_sqrt[k])


def adam(GroupPlan plan, exp_avg, exp_avg_sq, max_exp_avg_sq, double lr,
         double beta1, double beta2, double eps, double weight_decay,
         bint amsgrad, bint maximize, bint decoupled, int n_threads):
    """One Adam/AdamW step over every tensor of plan that has a grad.

    plan: the group, with grads gathered and steps advanced.     # IN/OUT
    exp_avg, exp_avg_sq, max_exp_avg_sq: the group's state blocks
        (max_exp_avg_sq is ignored unless amsgrad).              # IN/OUT
    n_threads: requested threads (<= 0: OpenMP's maximum).
    """
    cdef AdamArgs a
    cdef Py_ssize_t n = plan.run_n, k
    cdef double* scalars = <double*> malloc(2 * max(n, 1) * sizeof(double))
    if scalars == NULL:
        raise MemoryError()
    cdef double last_step = -1, step, step_size = 0, bc2_sqrt = 0
    try:
        a.params = plan.run_params
        a.grads = plan.run_grads
        a.offsets = plan.run_offsets
        a.exp_avg = plan.block_data(exp_avg)
        a.exp_avg_sq = plan.block_data(exp_avg_sq)
        a.max_exp_avg_sq = plan.block_data(max_exp_avg_sq) if amsgrad else NULL
        # Bias corrections in double, as torch computes them in Python floats;
        # tensors usually share one step count, so compute once per distinct run.
        for k in range(n):
            step = plan.run_steps[k]
            if step != last_step:
                step_size = lr / (1 - pow(beta1, step))
                bc2_sqrt = pow(1 - pow(beta2, step), 0.5)
                last_step = step
            scalars[k] = step_size
            scalars[n + k] = bc2_sqrt
        a.step_size = scalars
        a.bc2_sqrt = scalars + n
        a.beta1 = beta1
        a.beta2 = beta2
        a.eps = eps
        a.weight_decay = weight_decay
        a.decay = 1 - lr * weight_decay if (decoupled and weight_decay != 0) else 1.0
        a.amsgrad = amsgrad
        a.maximize = maximize
        a.decoupled = decoupled
        a.is_double = plan.is_double
        n_threads = _effective_threads(plan.active_elements, n_threads, COST_HEAVY)
        with nogil:
            run_segments(_adam_segment, &a, plan.run_offsets, n, n_threads)
    finally:
        free(scalars)
