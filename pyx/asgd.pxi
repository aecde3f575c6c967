# ASGD (torch.optim.ASGD 2.13, _single_tensor_asgd): the math.
#
# Per element, in the param's precision, in torch's order of operations:
#   g = -g if maximize
#   g = g + wd*p                          if wd != 0
#   p = p * (1 - lambd*eta)               the factor computed in double, as torch's Python float
#   p = p + (-eta)*g
#   ax = ax + (p - ax)*mu                 if mu != 1
#   ax = p                                if mu == 1 (torch copies)
# Per tensor, with t the tensor's step count after this step (asgd_run once
# per distinct t, asgd_tensor per tensor), in double as torch's Python floats:
#   eta, mu                               this step's values: the tensor state
#   eta <- lr / (1 + lambd*lr*t)^alpha    the next step's values
#   mu  <- 1 / max(1, t - t0)
# At a tensor's first step eta starts at lr and mu at 1 (torch creates them
# then, from the group's lr of that moment).
#
# eta and mu are per-tensor state. torch keeps them in 0-dim tensors of its
# default scalar dtype, float32, so every new value is rounded to float32,
# even for float64 params (and the initial eta is float32(lr)); we do the
# same (the values live in the float64 tensor-state arrays of the Python base
# class, exactly float32 values). The rounding is visible: eta = 0.01 becomes
# 0.009999999776482582. With float64 scalar tensors (torch's default dtype
# float64; cyoptim.torch reads the tensors' dtype: plan.scalar_float32) they
# are kept in double.


cdef inline double scalar_tensor(const ASGDHyper* h, double x) noexcept nogil:
    """x as torch's 0-dim tensor of its scalar dtype holds it."""
    return <float> x if h.scalar_float32 else x


cdef inline void asgd_run(const ASGDHyper* h, double step, ASGDRun* r) noexcept nogil:
    cdef double excess = step - h.t0
    r.first = step == 1
    r.eta_next = scalar_tensor(h, h.lr / pow(1 + h.lambd * h.lr * step, h.alpha))
    r.mu_next = scalar_tensor(h, 1 / (excess if excess > 1 else 1.0))   # Python's max(1, excess)


cdef inline void asgd_tensor(const ASGDHyper* h, ASGDRun* r, double* eta,
                             double* mu) noexcept nogil:
    if r.first:
        eta[0] = scalar_tensor(h, h.lr)
        mu[0] = 1
    r.decay = 1 - h.lambd * eta[0]
    r.eta = eta[0]
    r.mu = mu[0]
    eta[0] = r.eta_next
    mu[0] = r.mu_next


cdef inline void asgd_elements(floating* p, const floating* g, floating* ax, int64_t n,
                               const ASGDHyper* h, const ASGDRun* r) noexcept nogil:
    cdef floating sign = -1 if h.maximize else 1
    cdef floating wd = <floating> h.weight_decay
    cdef floating decay = <floating> r.decay
    cdef floating neg_eta = <floating> (-r.eta)
    cdef floating mu = <floating> r.mu
    cdef bint coupled = h.weight_decay != 0
    cdef floating gi, pi, ai
    cdef int64_t i
    if r.mu != 1:
        for i in range(n):
            gi = g[i] * sign
            pi = p[i]
            if coupled:
                gi = gi + wd * pi
            pi = pi * decay
            pi = pi + neg_eta * gi
            p[i] = pi
            ai = ax[i]
            ax[i] = ai + (pi - ai) * mu
    else:
        for i in range(n):
            gi = g[i] * sign
            pi = p[i]
            if coupled:
                gi = gi + wd * pi
            pi = pi * decay
            pi = pi + neg_eta * gi
            p[i] = pi
            ax[i] = pi
