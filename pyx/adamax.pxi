# Adamax (torch.optim.Adamax 2.13, _single_tensor_adamax): the math.
#
# Per element, in the param's precision, in torch's order of operations:
#   g = -g if maximize
#   g = g + wd*p                          if wd != 0 (coupled: Adamax has no AdamW form)
#   m = lerp(m, g, 1 - beta1)
#   u = maximum(u*beta2, |g| + eps)       torch.maximum: NaN in either wins
#   p = p + (-clr*m) / u
# with clr = lr / (1 - beta1^t) computed in double per run (only the step
# size is bias-corrected; u needs no correction).


cdef inline void adamax_run(const AdamaxHyper* h, double step, AdamaxRun* r) noexcept nogil:
    r.clr = h.lr / (1 - pow(h.beta1, step))


cdef inline void adamax_elements(floating* p, const floating* g, floating* m,
                                 floating* u, int64_t n, const AdamaxHyper* h,
                                 const AdamaxRun* r) noexcept nogil:
    cdef floating sign = -1 if h.maximize else 1
    cdef floating wd = <floating> h.weight_decay
    cdef floating w1 = <floating> (1 - h.beta1)
    cdef floating b2 = <floating> h.beta2
    cdef floating eps = <floating> h.eps
    cdef floating neg_clr = <floating> (-r.clr)
    cdef bint decay = h.weight_decay != 0
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
