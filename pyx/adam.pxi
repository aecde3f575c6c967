# Adam and AdamW (torch.optim.Adam 2.13, _single_tensor_adam): the math.
#
# Per element, in the param's precision, in torch's order of operations:
#   g  = -g if maximize
#   p  = p * (1 - lr*wd)                  decoupled weight decay (AdamW)
#   g  = g + wd*p                         coupled weight decay (Adam)
#   m  = lerp(m, g, 1 - beta1)
#   v  = v*beta2 + ((1 - beta2)*g)*g
#   vmax = max(vmax, v); v = vmax         amsgrad
#   p  = p + (-step_size*m) / (sqrt(v)/sqrt(1 - beta2^t) + eps)
# with step_size = lr / (1 - beta1^t) and sqrt(1 - beta2^t) computed in double
# per run (torch computes them in Python floats per tensor; the runs of one
# step share them when they share a step count).


cdef inline void adam_run(const AdamHyper* h, double step, AdamRun* r) noexcept nogil:
    r.step_size = h.lr / (1 - pow(h.beta1, step))
    r.bc2_sqrt = pow(1 - pow(h.beta2, step), 0.5)


cdef inline void adam_elements(floating* p, const floating* g, floating* m, floating* v,
                               floating* vmax, int64_t n, const AdamHyper* h,
                               const AdamRun* r) noexcept nogil:
    cdef bint decoupled = h.decoupled_weight_decay and h.weight_decay != 0
    cdef floating sign = -1 if h.maximize else 1
    cdef floating decay = <floating> (1 - h.lr * h.weight_decay) if decoupled else 1
    cdef floating wd = <floating> h.weight_decay
    cdef floating w1 = <floating> (1 - h.beta1)
    cdef floating b2 = <floating> h.beta2
    cdef floating c2 = <floating> (1 - h.beta2)
    cdef floating bc2s = <floating> r.bc2_sqrt
    cdef floating eps = <floating> h.eps
    cdef floating neg_step = <floating> (-r.step_size)
    cdef bint coupled = h.weight_decay != 0 and not h.decoupled_weight_decay
    cdef floating gi, pi, mi, vi
    cdef int64_t i
    if h.amsgrad:
        for i in range(n):
            gi = g[i] * sign
            pi = p[i] * decay
            if coupled:
                gi = gi + wd * pi
            mi = lerp(m[i], gi, w1)
            vi = v[i] * b2 + (c2 * gi) * gi
            m[i] = mi
            v[i] = vi
            vi = nan_max(vmax[i], vi)
            vmax[i] = vi
            p[i] = pi + (neg_step * mi) / (fsqrt(vi) / bc2s + eps)
    else:
        for i in range(n):
            gi = g[i] * sign
            pi = p[i] * decay
            if coupled:
                gi = gi + wd * pi
            mi = lerp(m[i], gi, w1)
            vi = v[i] * b2 + (c2 * gi) * gi
            m[i] = mi
            v[i] = vi
            p[i] = pi + (neg_step * mi) / (fsqrt(vi) / bc2s + eps)
