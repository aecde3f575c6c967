# RAdam (torch.optim.RAdam 2.13, _single_tensor_radam): the math.
#
# Per element, in the param's precision, in torch's order of operations:
#   g  = -g if maximize
#   p  = p * (1 - lr*wd)                  decoupled weight decay
#   g  = g + wd*p                         coupled weight decay
#   m  = lerp(m, g, 1 - beta1)
#   v  = v*beta2 + ((1 - beta2)*g)*g
#   mh = m / (1 - beta1^t)
#   p  = p - ((mh*lr) * ((1/(sqrt(v) + eps)) * sqrt(1 - beta2^t))) * rect   if rho_t > 5
#   p  = p - mh*lr                                                          otherwise
# torch divides a Python float by a tensor as reciprocal(tensor) * float, hence
# the 1/(...). The per-run scalars (bias corrections, rho_t, rect) are
# computed in double, as torch computes them in Python floats:
#   rho_inf = 2/(1 - beta2) - 1,  rho_t = rho_inf - 2*t*beta2^t / (1 - beta2^t)
#   rect = sqrt((rho_t - 4)(rho_t - 2) rho_inf / ((rho_inf - 4)(rho_inf - 2) rho_t))

cdef inline double radam_rectification(double step, double beta2) noexcept nogil:
    """torch's rect term for step t, or 0.0 when rho_t <= 5 (the unrectified steps)."""
    cdef double bc2 = 1 - pow(beta2, step)
    cdef double rho_inf = 2 / (1 - beta2) - 1
    cdef double rho_t = rho_inf - 2 * step * pow(beta2, step) / bc2
    if not rho_t > 5.0:
        return 0.0
    return pow((rho_t - 4) * (rho_t - 2) * rho_inf
               / ((rho_inf - 4) * (rho_inf - 2) * rho_t), 0.5)


cdef inline void radam_run(const RAdamHyper* h, double step, RAdamRun* r) noexcept nogil:
    r.bc1 = 1 - pow(h.beta1, step)
    r.bc2_sqrt = pow(1 - pow(h.beta2, step), 0.5)
    r.rect = radam_rectification(step, h.beta2)


cdef inline void radam_elements(floating* p, const floating* g, floating* m, floating* v,
                                int64_t n, const RAdamHyper* h,
                                const RAdamRun* r) noexcept nogil:
    cdef bint decoupled = h.decoupled_weight_decay and h.weight_decay != 0
    cdef floating sign = -1 if h.maximize else 1
    cdef floating decay = <floating> (1 - h.lr * h.weight_decay) if decoupled else 1
    cdef floating wd = <floating> h.weight_decay
    cdef floating w1 = <floating> (1 - h.beta1)
    cdef floating b2 = <floating> h.beta2
    cdef floating c2 = <floating> (1 - h.beta2)
    cdef floating eps = <floating> h.eps
    cdef floating lr = <floating> h.lr
    cdef floating bc1 = <floating> r.bc1
    cdef floating bc2s = <floating> r.bc2_sqrt
    cdef floating rect = <floating> r.rect
    cdef floating one = 1
    cdef bint coupled = h.weight_decay != 0 and not h.decoupled_weight_decay
    cdef floating gi, pi, mi, vi
    cdef int64_t i
    if r.rect > 0:
        for i in range(n):
            gi = g[i] * sign
            pi = p[i] * decay
            if coupled:
                gi = gi + wd * pi
            mi = lerp(m[i], gi, w1)
            vi = v[i] * b2 + (c2 * gi) * gi
            m[i] = mi
            v[i] = vi
            p[i] = pi - (((mi / bc1) * lr) * ((one / (fsqrt(vi) + eps)) * bc2s)) * rect
    else:
        for i in range(n):
            gi = g[i] * sign
            pi = p[i] * decay
            if coupled:
                gi = gi + wd * pi
            mi = lerp(m[i], gi, w1)
            m[i] = mi
            v[i] = v[i] * b2 + (c2 * gi) * gi
            p[i] = pi - (mi / bc1) * lr
