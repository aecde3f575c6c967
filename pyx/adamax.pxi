# Adamax (torch.optim.Adamax 2.13, _single_tensor_adamax).
#
# Per element, in the param's precision, in torch's order of operations:
#   g = -g if maximize
#   g = g + wd*p                          if wd != 0 (coupled: Adamax has no AdamW form)
#   m = lerp(m, g, 1 - beta1)
#   u = maximum(u*beta2, |g| + eps)       torch.maximum: NaN in either wins
#   p = p + (-clr*m) / u
# with clr = lr / (1 - beta1^t) computed in double per tensor (only the step
# size is bias-corrected; u needs no correction).

from libc.stdlib cimport malloc, free
from libc.math cimport pow


cdef struct AdamaxArgs:
    char** params
    char** grads
    char* exp_avg
    char* exp_inf
    const int64_t* offsets
    const double* clr              # per run: lr / (1 - beta1^t)
    double beta1, beta2, eps, weight_decay
    bint maximize, is_double


cdef inline void _adamax_elements(floating* p, const floating* g, floating* m,
                                  floating* u, int64_t n, const AdamaxArgs* a,
                                  double clr) noexcept nogil:
    cdef floating sign = -1 if a.maximize else 1
    cdef floating wd = <floating> a.weight_decay
    cdef floating w1 = <floating> (1 - a.beta1)
    cdef floating b2 = <floating> a.beta2
    cdef floating eps = <floating> a.eps
    cdef floating neg_clr = <floating> (-clr)
    cdef bint decay = a.weight_decay != 0
    cdef floating gi, mi, ui
    cdef int64_t i
    for i in range(n):
        gi = g[i] * sign
        if decay:
            gi = gi + wd * p[i]
        mi = lerp(m[i], gi, w1)
        ui = nan_max(u[i] * b2, fabs_(gi) + eps)
        m[i] = mi
        u[i] = ui
        p[i] = p[i] + (neg_clr * mi) / ui


cdef void _adamax_segment(const void* args, Py_ssize_t k, int64_t start,
                          int64_t count) noexcept nogil:
    cdef const AdamaxArgs* a = <const AdamaxArgs*> args
    if a.grads[k] == NULL:
        return
    cdef int64_t at = a.offsets[k] + start    # position in the state blocks
    if a.is_double:
        _adamax_elements(<double*> a.params[k] + start, <const double*> a.grads[k] + start,
                         <double*> a.exp_avg + at, <double*> a.exp_inf + at, count, a,
                         a.clr[k])
    else:
        _adamax_elements(<float*> a.params[k] + start, <const float*> a.grads[k] + start,
                         <float*> a.exp_avg + at, <float*> a.exp_inf + at, count, a,
                         a.clr[k])


def adamax(GroupPlan plan, exp_avg, exp_inf, double lr, double beta1, double beta2,
           double eps, double weight_decay, bint maximize, int n_threads):
    """One Adamax step over every tensor of plan that has a grad.

    plan: the group, with grads gathered and steps advanced.     # IN/OUT
    exp_avg, exp_inf: the group's state blocks.                  # IN/OUT
    n_threads: requested threads (<= 0: OpenMP's maximum).
    """
    cdef AdamaxArgs a
    cdef Py_ssize_t n = plan.run_n, k
    cdef double* clr = <double*> malloc(max(n, 1) * sizeof(double))
    if clr == NULL:
        raise MemoryError()
    cdef double last_step = -1, step, value = 0
    try:
        a.params = plan.run_params
        a.grads = plan.run_grads
        a.offsets = plan.run_offsets
        a.exp_avg = plan.block_data(exp_avg)
        a.exp_inf = plan.block_data(exp_inf)
        # In double, as torch computes it in Python floats; once per distinct step.
        for k in range(n):
            step = plan.run_steps[k]
            if step != last_step:
                value = lr / (1 - pow(beta1, step))
                last_step = step
            clr[k] = value
        a.clr = clr
        a.beta1 = beta1
        a.beta2 = beta2
        a.eps = eps
        a.weight_decay = weight_decay
        a.maximize = maximize
        a.is_double = plan.is_double
        n_threads = _effective_threads(plan.active_elements, n_threads, COST_HEAVY)
        with nogil:
            run_segments(_adamax_segment, &a, plan.run_offsets, n, n_threads)
    finally:
        free(clr)
