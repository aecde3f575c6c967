# SGD with momentum, dampening, Nesterov (torch.optim.SGD 2.13, _single_tensor_sgd): the math.
#
# Per element, in the param's precision, in torch's order of operations:
#   g = -g if maximize
#   g = g + wd*p                                  if wd != 0
#   b = g                                         when the tensor has no buffer yet
#   b = b*momentum + (1 - dampening)*g            later steps
#   g = g + momentum*b  (nesterov)  or  g = b     if momentum != 0
#   p = p + (-lr)*g


cdef inline void sgd_run(const SGDHyper* h, double step, SGDRun* r) noexcept nogil:
    pass                       # nothing depends on the step count


cdef inline void sgd_tensor(const SGDHyper* h, SGDRun* r,
                            double* momentum_started) noexcept nogil:
    """As torch: a tensor's buffer starts from its grad the first time it steps
    with momentum, whenever that is (momentum may be switched on mid-run)."""
    r.first = momentum_started[0] == 0
    if h.momentum != 0:
        momentum_started[0] = 1


cdef inline void sgd_elements(floating* p, const floating* g, floating* buf, int64_t n,
                              const SGDHyper* h, const SGDRun* r) noexcept nogil:
    cdef floating sign = -1 if h.maximize else 1
    cdef floating wd = <floating> h.weight_decay
    cdef floating mom = <floating> h.momentum
    cdef floating keep = <floating> (1 - h.dampening)
    cdef floating neg_lr = <floating> (-h.lr)
    cdef bint decay = h.weight_decay != 0
    cdef bint nesterov = h.nesterov
    cdef floating gi, bi
    cdef int64_t i
    if h.momentum == 0:
        for i in range(n):
            gi = g[i] * sign
            if decay:
                gi = gi + wd * p[i]
            p[i] = p[i] + neg_lr * gi
    elif r.first:
        for i in range(n):
            gi = g[i] * sign
            if decay:
                gi = gi + wd * p[i]
            buf[i] = gi
            if nesterov:
                gi = gi + mom * gi
            p[i] = p[i] + neg_lr * gi
    else:
        for i in range(n):
            gi = g[i] * sign
            if decay:
                gi = gi + wd * p[i]
            bi = buf[i] * mom + keep * gi
            buf[i] = bi
            if nesterov:
                gi = gi + mom * bi
            else:
                gi = bi
            p[i] = p[i] + neg_lr * gi
