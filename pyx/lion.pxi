# Lion (Chen et al. 2023, "Symbolic Discovery of Optimization Algorithms"),
# with optax's order of operations (optax.lion = scale_by_lion,
# add_decayed_weights, scale_by_learning_rate).
#
# Per element, in the param's precision (every constant cast to it first):
#   g = -g                                  if maximize
#   c = (1 - beta1)*g + beta1*m
#   s = sign(c)                             +1, -1; +0 for +-0; NaN for NaN (np.sign)
#   s = s + wd*p                            if wd != 0 (p before the update)
#   p = p + (-lr)*s
#   m = (1 - beta2)*g + beta2*m


cdef struct LionArgs:
    char** params
    char** grads
    char* exp_avg
    const int64_t* offsets
    double lr, beta1, beta2, weight_decay
    bint maximize, is_double


cdef inline void _lion_elements(floating* p, const floating* g, floating* m, int64_t n,
                                const LionArgs* a) noexcept nogil:
    cdef floating flip = -1 if a.maximize else 1
    cdef floating b1 = <floating> a.beta1
    cdef floating w1 = <floating> (1 - a.beta1)
    cdef floating b2 = <floating> a.beta2
    cdef floating w2 = <floating> (1 - a.beta2)
    cdef floating wd = <floating> a.weight_decay
    cdef floating neg_lr = <floating> (-a.lr)
    cdef floating zero = 0
    cdef bint decay = a.weight_decay != 0
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


cdef void _lion_segment(const void* args, Py_ssize_t k, int64_t start,
                        int64_t count) noexcept nogil:
    cdef const LionArgs* a = <const LionArgs*> args
    if a.grads[k] == NULL:
        return
    cdef int64_t at = a.offsets[k] + start
    if a.is_double:
        _lion_elements(<double*> a.params[k] + start, <const double*> a.grads[k] + start,
                       <double*> a.exp_avg + at, count, a)
    else:
        _lion_elements(<float*> a.params[k] + start, <const float*> a.grads[k] + start,
                       <float*> a.exp_avg + at, count, a)


def lion(GroupPlan plan, exp_avg, double lr, double beta1, double beta2,
         double weight_decay, bint maximize, int n_threads):
    """One Lion step over every tensor of plan that has a grad.

    plan: the group, with grads gathered.                        # IN/OUT
    exp_avg: the group's momentum block.                         # IN/OUT
    n_threads: requested threads (<= 0: OpenMP's maximum).
    """
    cdef LionArgs a
    a.params = plan.run_params
    a.grads = plan.run_grads
    a.offsets = plan.run_offsets
    a.exp_avg = plan.block_data(exp_avg)
    a.lr = lr
    a.beta1 = beta1
    a.beta2 = beta2
    a.weight_decay = weight_decay
    a.maximize = maximize
    a.is_double = plan.is_double
    n_threads = _effective_threads(plan.active_elements, n_threads, COST_LIGHT)
    with nogil:
        run_segments(_lion_segment, &a, plan.run_offsets, plan.run_n, n_threads)
