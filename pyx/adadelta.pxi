# Adadelta (torch.optim.Adadelta 2.13, _single_tensor_adadelta): the math.
#
# Per element, in the param's precision, in torch's order of operations:
#   g = -g if maximize
#   g = g + wd*p                          if wd != 0
#   v = v*rho + ((1 - rho)*g)*g
#   d = (sqrt(u + eps) / sqrt(v + eps)) * g
#   u = u*rho + ((1 - rho)*d)*d
#   p = p + (-lr)*d
# The step count is state only: the update does not depend on it.


cdef inline void adadelta_elements(floating* p, const floating* g, floating* v,
                                   floating* u, int64_t n,
                                   const AdadeltaHyper* h) noexcept nogil:
    cdef floating sign = -1 if h.maximize else 1
    cdef floating wd = <floating> h.weight_decay
    cdef floating rho = <floating> h.rho
    cdef floating c = <floating> (1 - h.rho)
    cdef floating eps = <floating> h.eps
    cdef floating neg_lr = <floating> (-h.lr)
    cdef bint decay = h.weight_decay != 0
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
