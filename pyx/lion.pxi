# Lion (Chen et al. 2023, "Symbolic Discovery of Optimization Algorithms"),
# with optax's order of operations (optax.lion = scale_by_lion,
# add_decayed_weights, scale_by_learning_rate): the math.
#
# Per element, in the param's precision (every constant cast to it first):
#   g = -g                                  if maximize
#   c = (1 - beta1)*g + beta1*m
#   s = sign(c)                             +1, -1; +0 for +-0; NaN for NaN (np.sign)
#   s = s + wd*p                            if wd != 0 (p before the update)
#   p = p + (-lr)*s
#   m = (1 - beta2)*g + beta2*m


cdef inline void lion_elements(floating* p, const floating* g, floating* m, int64_t n,
                               const LionHyper* h) noexcept nogil:
    cdef floating flip = -1 if h.maximize else 1
    cdef floating b1 = <floating> h.beta1
    cdef floating w1 = <floating> (1 - h.beta1)
    cdef floating b2 = <floating> h.beta2
    cdef floating w2 = <floating> (1 - h.beta2)
    cdef floating wd = <floating> h.weight_decay
    cdef floating neg_lr = <floating> (-h.lr)
    cdef floating zero = 0
    cdef bint decay = h.weight_decay != 0
    cdef floating gi, mi, ci, si, pi
    cdef int64_t i
    for i in range(n):
        gi = g[i] * flip
        mi = m[i]
        pi = p[i]
        ci = w1 * gi + b1 * mi
        # np.sign: +-1, +0 for +-0 (0 - 0), NaN for NaN. Written without
        # nested branches, which gcc's if-conversion would not vectorize.
        si = <floating> (ci > zero) - <floating> (ci < zero)
        if ci != ci:
            si = ci
        if decay:
            si = si + wd * pi
        p[i] = pi + neg_lr * si
        m[i] = w2 * gi + b2 * mi
