# Adagrad (torch.optim.Adagrad 2.13, _single_tensor_adagrad, dense grads): the math.
#
# Per element, in the param's precision, in torch's order of operations:
#   g = -g if maximize
#   g = g + wd*p                          if wd != 0
#   s = s + g*g                           (addcmul_ with value 1)
#   p = p + (-clr*g) / (sqrt(s) + eps)    (addcdiv_ with value -clr)
# with clr = lr / (1 + (t - 1)*lr_decay) computed in double per run.


cdef inline void adagrad_run(const AdagradHyper* h, double step, AdagradRun* r) noexcept nogil:
    r.clr = h.lr / (1 + (step - 1) * h.lr_decay)


cdef inline void adagrad_elements(floating* p, const floating* g, floating* s, int64_t n,
                                  const AdagradHyper* h, const AdagradRun* r) noexcept nogil:
    cdef floating sign = -1 if h.maximize else 1
    cdef floating wd = <floating> h.weight_decay
    cdef floating eps = <floating> h.eps
    cdef floating neg_clr = <floating> (-r.clr)
    cdef bint decay = h.weight_decay != 0
    cdef floating gi, si
    cdef int64_t i
    for i in range(n):
        gi = g[i] * sign
        if decay:
            gi = gi + wd * p[i]
        si = s[i] + gi * gi
        s[i] = si
        p[i] = p[i] + (neg_clr * gi) / (fsqrt(si) + eps)
