# Adagrad (torch.optim.Adagrad 2.13, _single_tensor_adagrad, dense grads).
#
# Per element, in the param's precision, in torch's order of operations:
#   g = -g if maximize
#   g = g + wd*p                          if wd != 0
#   s = s + g*g                           (addcmul_ with value 1)
#   p = p + (-clr*g) / (sqrt(s) + eps)    (addcdiv_ with value -clr)
# with clr = lr / (1 + (t - 1)*lr_decay) computed in double per tensor.

from libc.stdlib cimport malloc, free


cdef struct AdagradArgs:
    char** params
    char** grads
    char* sum_
    const int64_t* offsets
    const double* clr               # per run: lr / (1 + (t - 1)*lr_decay)
    double eps, weight_decay
    bint maximize, is_double


cdef inline void _adagrad_elements(floating* p, const floating* g, floating* s,
                                   int64_t n, const AdagradArgs* a,
                                   double clr) noexcept nogil:
    cdef floating sign = -1 if a.maximize else 1
    cdef floating wd = <floating> a.weight_decay
    cdef floating eps = <floating> a.eps
    cdef floating neg_clr = <floating> (-clr)
    cdef bint decay = a.weight_decay != 0
    cdef floating gi, si
    cdef int64_t i
    for i in range(n):
        gi = g[i] * sign
        if decay:
            gi = gi + wd * p[i]
        si = s[i] + gi * gi
        s[i] = si
        p[i] = p[i] + (neg_clr * gi) / (fsqrt(si) + eps)


cdef void _adagrad_segment(const void* args, Py_ssize_t k, int64_t start,
                           int64_t count) noexcept nogil:
    cdef const AdagradArgs* a = <const AdagradArgs*> args
    if a.grads[k] == NULL:
        return
    cdef int64_t at = a.offsets[k] + start    # position in the state block
    if a.is_double:
        _adagrad_elements(<double*> a.params[k] + start, <const double*> a.grads[k] + start,
                          <double*> a.sum_ + at, count, a, a.clr[k])
    else:
        _adagrad_elements(<float*> a.params[k] + start, <const float*> a.grads[k] + start,
                          <float*> a.sum_ + at, count, a, a.clr[k])


def adagrad(GroupPlan plan, sum_, double lr, double lr_decay, double eps,
            double weight_decay, bint maximize, int n_threads):
    """One Adagrad step over every tensor of plan that has a grad.

    plan: the group, with grads gathered and steps advanced.     # IN/OUT
    sum_: the group's accumulator block ("sum").                 # IN/OUT
    n_threads: requested threads (<= 0: OpenMP's maximum).
    """
    cdef AdagradArgs a
    cdef Py_ssize_t n = plan.run_n, k
    cdef double* clr = <double*> malloc(max(n, 1) * sizeof(double))
    if clr == NULL:
        raise MemoryError()
    cdef double last_step = -1, step, value = 0
    try:
        a.params = plan.run_params
        a.grads = plan.run_grads
        a.offsets = plan.run_offsets
        a.sum_ = plan.block_data(sum_)
        # The decayed rate in double, as torch computes it in Python floats;
        # tensors usually share one step count, so compute once per distinct run.
        for k in range(n):
            step = plan.run_steps[k]
            if step != last_step:
                value = lr / (1 + (step - 1) * lr_decay)
                last_step = step
            clr[k] = value
        a.clr = clr
        a.eps = eps
        a.weight_decay = weight_decay
        a.maximize = maximize
        a.is_double = plan.is_double
        n_threads = _effective_threads(plan.active_elements, n_threads, COST_HEAVY)
        with nogil:
            run_segments(_adagrad_segment, &a, plan.run_offsets, n, n_threads)
    finally:
        free(clr)
