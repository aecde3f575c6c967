# RMSprop, plain or centered, with momentum (torch.optim.RMSprop 2.13,
# _single_tensor_rmsprop).
#
# Per element, in the param's precision, in torch's order of operations:
#   g  = -g if maximize
#   g  = g + wd*p                          if wd != 0
#   v  = v*alpha + ((1 - alpha)*g)*g
#   ga = lerp(ga, g, 1 - alpha)            centered
#   d  = sqrt(v - ga*ga) + eps  (centered)  or  sqrt(v) + eps
#   b  = b*momentum + g/d;  p = p + (-lr)*b     if momentum > 0
#   p  = p + (-lr*g)/d                          otherwise
# The step count is state only: the update does not depend on it.


cdef struct RMSpropArgs:
    char** params
    char** grads
    char* square_avg
    char* grad_avg
    char* momentum_buffer
    const int64_t* offsets
    double lr, alpha, eps, weight_decay, momentum
    bint centered, maximize, is_double


cdef inline void _rmsprop_elements(floating* p, const floating* g, floating* v,
                                   floating* ga, floating* buf, int64_t n,
                                   const RMSpropArgs* a) noexcept nogil:
    cdef floating sign = -1 if a.maximize else 1
    cdef floating wd = <floating> a.weight_decay
    cdef floating alpha = <floating> a.alpha
    cdef floating w = <floating> (1 - a.alpha)
    cdef floating eps = <floating> a.eps
    cdef floating mom = <floating> a.momentum
    cdef floating neg_lr = <floating> (-a.lr)
    cdef bint decay = a.weight_decay != 0
    cdef bint centered = a.centered
    cdef floating gi, vi, ai, di, bi
    cdef int64_t i
    if a.momentum > 0:
        for i in range(n):
            gi = g[i] * sign
            if decay:
                gi = gi + wd * p[i]
            vi = v[i] * alpha + (w * gi) * gi
            v[i] = vi
            if centered:
                ai = lerp(ga[i], gi, w)
                ga[i] = ai
                vi = vi - ai * ai
            di = fsqrt(vi) + eps
            bi = buf[i] * mom + gi / di
            buf[i] = bi
            p[i] = p[i] + neg_lr * bi
    else:
        for i in range(n):
            gi = g[i] * sign
            if decay:
                gi = gi + wd * p[i]
            vi = v[i] * alpha + (w * gi) * gi
            v[i] = vi
            if centered:
                ai = lerp(ga[i], gi, w)
                ga[i] = ai
                vi = vi - ai * ai
            di = fsqrt(vi) + eps
            p[i] = p[i] + (neg_lr * gi) / di


cdef void _rmsprop_segment(const void* args, Py_ssize_t k, int64_t start,
                           int64_t count) noexcept nogil:
    cdef const RMSpropArgs* a = <const RMSpropArgs*> args
    if a.grads[k] == NULL:
        return
    cdef int64_t at = a.offsets[k] + start    # position in the state blocks
    if a.is_double:
        _rmsprop_elements(<double*> a.params[k] + start, <const double*> a.grads[k] + start,
                          <double*> a.square_avg + at, <double*> a.grad_avg + at,
                          <double*> a.momentum_buffer + at, count, a)
    else:
        _rmsprop_elements(<float*> a.params[k] + start, <const float*> a.grads[k] + start,
                          <float*> a.square_avg + at, <float*> a.grad_avg + at,
                          <float*> a.momentum_buffer + at, count, a)


def rmsprop(GroupPlan plan, square_avg, grad_avg, momentum_buffer, double lr,
            double alpha, double eps, double weight_decay, double momentum,
            bint centered, bint maximize, int n_threads):
    """One RMSprop step over every tensor of plan that has a grad.

    plan: the group, with grads gathered and steps advanced.     # IN/OUT
    square_avg: the group's state block.                         # IN/OUT
    grad_avg: the group's block (None unless centered).          # IN/OUT
    momentum_buffer: the group's block (None unless momentum > 0). # IN/OUT
    n_threads: requested threads (<= 0: OpenMP's maximum).
    """
    cdef RMSpropArgs a
    a.params = plan.run_params
    a.grads = plan.run_grads
    a.offsets = plan.run_offsets
    a.square_avg = plan.block_data(square_avg)
    a.grad_avg = plan.block_data(grad_avg) if centered else NULL
    a.momentum_buffer = plan.block_data(momentum_buffer) if momentum > 0 else NULL
    a.lr = lr
    a.alpha = alpha
    a.eps = eps
    a.weight_decay = weight_decay
    a.momentum = momentum
    a.centered = centered
    a.maximize = maximize
    a.is_double = plan.is_double
    n_threads = _effective_threads(plan.active_elements, n_threads, COST_HEAVY)
    with nogil:
        run_segments(_rmsprop_segment, &a, plan.run_offsets, plan.run_n, n_threads)
