# RMSprop, plain or centered, with momentum (torch.optim.RMSprop 2.13,
# _single_tensor_rmsprop): the math.
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


cdef inline void rmsprop_elements(floating* p, const floating* g, floating* v,
                                  floating* ga, floating* buf, int64_t n,
                                  const RMSpropHyper* h) noexcept nogil:
    cdef floating sign = -1 if h.maximize else 1
    cdef floating wd = <floating> h.weight_decay
    cdef floating alpha = <floating> h.alpha
    cdef floating w = <floating> (1 - h.alpha)
    cdef floating eps = <floating> h.eps
    cdef floating mom = <floating> h.momentum
    cdef floating neg_lr = <floating> (-h.lr)
    cdef bint decay = h.weight_decay != 0
    cdef bint centered = h.centered
    cdef floating gi, vi, ai, di, bi
    cdef int64_t i
    if h.momentum > 0:
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
