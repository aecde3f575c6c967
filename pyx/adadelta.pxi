# Adadelta (torch.optim.Adadelta 2.13, _single_tensor_adadelta).
#
# Per element, in the param's precision, in torch's order of operations:
#   g = -g if maximize
#   g = g + wd*p                          if wd != 0
#   v = v*rho + ((1 - rho)*g)*g
#   d = (sqrt(u + eps) / sqrt(v + eps)) * g
#   u = u*rho + ((1 - rho)*d)*d
#   p = p + (-lr)*d
# The step count is state only: the update does not depend on it.


cdef struct AdadeltaArgs:
    char** params
    char** grads
    char* square_avg
    char* acc_delta
    const int64_t* offsets
    double lr, rho, eps, weight_decay
    bint maximize, is_double


cdef inline void _adadelta_elements(floating* p, const floating* g, floating* v,
                                    floating* u, int64_t n,
                                    const AdadeltaArgs* a) noexcept nogil:
    cdef floating sign = -1 if a.maximize else 1
    cdef floating wd = <floating> a.weight_decay
    cdef floating rho = <floating> a.rho
    cdef floating c = <floating> (1 - a.rho)
    cdef floating eps = <floating> a.eps
    cdef floating neg_lr = <floating> (-a.lr)
    cdef bint decay = a.weight_decay != 0
    cdef floating gi, vi, di
    cdef int64_t i
    for i in range(n):
        gi = g[i] * sign
        if decay:
            gi = gi + wd * p[i]
        vi = v[i] * rho + (c * gi) * gi
        v[i] = vi
        di = (fsqrt(u[i] + eps) / fsqrt(vi + eps)) * gi
        u[i] = u[i] * rho + (c * di) * di
        p[i] = p[i] + neg_lr * di


cdef void _adadelta_segment(const void* args, Py_ssize_t k, int64_t start,
                            int64_t count) noexcept nogil:
    cdef const AdadeltaArgs* a = <const AdadeltaArgs*> args
    if a.grads[k] == NULL:
        return
    cdef int64_t at = a.offsets[k] + start    # position in the state blocks
    if a.is_double:
        _adadelta_elements(<double*> a.params[k] + start, <const double*> a.grads[k] + start,
                           <double*> a.square_avg + at, <double*> a.acc_delta + at, count, a)
    else:
        _adadelta_elements(<float*> a.params[k] + start, <const float*> a.grads[k] + start,
                           <float*> a.square_avg + at, <float*> a.acc_delta + at, count, a)


def adadelta(GroupPlan plan, square_avg, acc_delta, double lr, double rho, double eps,
             double weight_decay, bint maximize, int n_threads):
    """One Adadelta step over every tensor of plan that has a grad.

    plan: the group, with grads gathered and steps advanced.     # IN/OUT
    square_avg, acc_delta: the group's state blocks.             # IN/OUT
    n_threads: requested threads (<= 0: OpenMP's maximum).
    """
    cdef AdadeltaArgs a
    a.params = plan.run_params
    a.grads = plan.run_grads
    a.offsets = plan.run_offsets
    a.square_avg = plan.block_data(square_avg)
    a.acc_delta = plan.block_data(acc_delta)
    a.lr = lr
    a.rho = rho
    a.eps = eps
    a.weight_decay = weight_decay
    a.maximize = maximize
    a.is_double = plan.is_double
    n_threads = _effective_threads(plan.active_elements, n_threads, COST_HEAVY)
    with nogil:
        run_segments(_adadelta_segment, &a, plan.run_offsets, plan.run_n, n_threads)
