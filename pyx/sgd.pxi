# SGD with momentum, dampening, Nesterov (torch.optim.SGD 2.13, _single_tensor_sgd).
#
# Per element, in the param's precision, in torch's order of operations:
#   g = -g if maximize
#   g = g + wd*p                                  if wd != 0
#   b = g                                         first step of this tensor
#   b = b*momentum + (1 - dampening)*g            later steps
#   g = g + momentum*b  (nesterov)  or  g = b     if momentum != 0
#   p = p + (-lr)*g


cdef struct SGDArgs:
    char** params
    char** grads
    char* momentum_buffer
    const int64_t* offsets
    const double* steps
    double lr, momentum, dampening, weight_decay
    bint nesterov, maximize, is_double


cdef inline void _sgd_elements(floating* p, const floating* g, floating* buf,
                               int64_t n, const SGDArgs* a, bint first) noexcept nogil:
    cdef floating sign = -1 if a.maximize else 1
    cdef floating wd = <floating> a.weight_decay
    cdef floating mom = <floating> a.momentum
    cdef floating keep = <floating> (1 - a.dampening)
    cdef floating neg_lr = <floating> (-a.lr)
    cdef bint decay = a.weight_decay != 0
    cdef floating gi, bi
    cdef int64_t i
    if a.momentum == 0:
        for i in range(n):
            gi = g[i] * sign
            if decay:
                gi = gi + wd * p[i]
            p[i] = p[i] + neg_lr * gi
    elif first:
        for i in range(n):
            gi = g[i] * sign
            if decay:
                gi = gi + wd * p[i]
            buf[i] = gi
            if a.nesterov:
                gi = gi + mom * gi
            p[i] = p[i] + neg_lr * gi
    else:
        for i in range(n):
            gi = g[i] * sign
            if decay:
                gi = gi + wd * p[i]
            bi = buf[i] * mom + keep * gi
            buf[i] = bi
            if a.nesterov:
                gi = gi + mom * bi
            else:
                gi = bi
            p[i] = p[i] + neg_lr * gi


cdef void _sgd_segment(const void* args, Py_ssize_t k, int64_t start,
                       int64_t count) noexcept nogil:
    cdef const SGDArgs* a = <const SGDArgs*> args
    if a.grads[k] == NULL:
        return
    cdef int64_t at = a.offsets[k] + start
    cdef bint first = a.steps[k] == 1
    if a.is_double:
        _sgd_elements(<double*> a.params[k] + start, <const double*> a.grads[k] + start,
                      <double*> a.momentum_buffer + at, count, a, first)
    else:
        _sgd_elements(<float*> a.params[k] + start, <const float*> a.grads[k] + start,
                      <float*> a.momentum_buffer + at, count, a, first)


def sgd(GroupPlan plan, momentum_buffer, double lr, double momentum,
        double dampening, double weight_decay, bint nesterov, bint maximize,
        int n_threads):
    """One SGD step over every tensor of plan that has a grad.

    plan: the group, with grads gathered and steps advanced (a tensor whose
        step count is 1 starts its momentum buffer from the grad).  # IN/OUT
    momentum_buffer: the group's state block (None when momentum == 0). # IN/OUT
    n_threads: requested threads (<= 0: OpenMP's maximum).
    """
    cdef SGDArgs a
    a.params = plan.run_params
    a.grads = plan.run_grads
    a.offsets = plan.run_offsets
    a.steps = plan.run_steps
    a.momentum_buffer = plan.block_data(momentum_buffer) if momentum != 0 else NULL
    a.lr = lr
    a.momentum = momentum
    a.dampening = dampening
    a.weight_decay = weight_decay
    a.nesterov = nesterov
    a.maximize = maximize
    a.is_double = plan.is_double
    n_threads = _effective_threads(plan.active_elements, n_threads, COST_LIGHT)
    with nogil:
        run_segments(_sgd_segment, &a, plan.run_offsets, plan.run_n, n_threads)
