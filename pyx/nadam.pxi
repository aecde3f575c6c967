# NAdam (torch.optim.NAdam 2.13, _single_tensor_nadam): the math.
#
# Per element, in the param's precision, in torch's order of operations:
#   g = -g if maximize
#   p = p * (1 - lr*wd)                   decoupled weight decay
#   g = g + wd*p                          coupled weight decay
#   m = lerp(m, g, 1 - beta1)
#   v = v*beta2 + ((1 - beta2)*g)*g
#   d = sqrt(v / (1 - beta2^t)) + eps     (bias correction inside the sqrt, unlike Adam)
#   p = p + (cg*g) / d
#   p = p + (cm*m) / d
# Per tensor, in double as torch's Python floats (mu_t, mu_{t+1} and 1 - beta2^t
# once per distinct step count, nadam_run; the rest per tensor, nadam_tensor):
#   mu_t = beta1 * (1 - 0.5 * 0.96^(t * momentum_decay)), mu_{t+1} likewise
#   mu_product = mu_product * mu_t        (see below)
#   cg = -lr * (1 - mu_t) / (1 - mu_product)
#   cm = (-lr * mu_{t+1}) / (1 - mu_product * mu_{t+1})
#
# mu_product is per-tensor state. torch keeps it in a 0-dim tensor of its
# default scalar dtype, float32, so `mu_product *= mu` rounds mu to float32 and
# the product to float32 each step; we do the same (the values live in a
# float64 array, the tensor state the Python base class keeps per group, one
# per tensor, exactly float32 values). Accumulating in double instead would
# differ from torch by ~1e-8 relative in every step size. With float64 scalar
# tensors (torch's default dtype float64; cyoptim.torch reads the tensor's
# dtype: plan.scalar_float32) the product is kept in double.


cdef inline void nadam_run(const NAdamHyper* h, double step, NAdamRun* r) noexcept nogil:
    r.mu = h.beta1 * (1.0 - 0.5 * pow(0.96, step * h.momentum_decay))
    r.mu_next = h.beta1 * (1.0 - 0.5 * pow(0.96, (step + 1) * h.momentum_decay))
    r.bc2 = 1 - pow(h.beta2, step)


cdef inline void nadam_tensor(const NAdamHyper* h, NAdamRun* r,
                              double* mu_product) noexcept nogil:
    cdef double mp
    if h.scalar_float32:
        mp = <float> (<float> mu_product[0] * <float> r.mu)
    else:
        mp = mu_product[0] * r.mu
    mu_product[0] = mp
    r.coef_grad = -h.lr * (1.0 - r.mu) / (1.0 - mp)
    r.coef_avg = (-h.lr * r.mu_next) / (1.0 - mp * r.mu_next)


cdef inline void nadam_elements(floating* p, const floating* g, floating* m, floating* v,
                                int64_t n, const NAdamHyper* h,
                                const NAdamRun* r) noexcept nogil:
    cdef bint decoupled = h.decoupled_weight_decay and h.weight_decay != 0
    cdef floating sign = -1 if h.maximize else 1
    cdef floating decay = <floating> (1 - h.lr * h.weight_decay) if decoupled else 1
    cdef floating wd = <floating> h.weight_decay
    cdef floating w1 = <floating> (1 - h.beta1)
    cdef floating b2 = <floating> h.beta2
    cdef floating c2 = <floating> (1 - h.beta2)
    cdef floating eps = <floating> h.eps
    cdef floating cg = <floating> r.coef_grad
    cdef floating cm = <floating> r.coef_avg
    cdef floating bc2 = <floating> r.bc2
    cdef bint coupled = h.weight_decay != 0 and not h.decoupled_weight_decay
    cdef floating gi, pi, mi, vi, di
    cdef int64_t i
    for i in range(n):
        gi = g[i] * sign
        pi = p[i] * decay
        if coupled:
            gi = gi + wd * pi
        mi = lerp(m[i], gi, w1)
        vi = v[i] * b2 + (c2 * gi) * gi
        m[i] = mi
        v[i] = vi
        di = fsqrt(vi / bc2) + eps
        pi = pi + (cg * gi) / di
        p[i] = pi + (cm * mi) / di
