# LAMB (You et al. 2019), as optax.lamb: scale_by_adam, add_decayed_weights,
# scale_by_trust_ratio, scale_by_learning_rate.
#
# Per element, in the param's precision (constants cast to it first):
#   g = -g                                        if maximize
#   m = (1 - beta1)*g + beta1*m
#   v = (1 - beta2)*(g*g) + beta2*v
#   u = (m / bc1) / (sqrt(v / bc2) + eps)         bc1 = 1 - beta1^t, bc2 = 1 - beta2^t
#   u = u + wd*p                                  if wd != 0 (p before the update)
# Per tensor, in double: P = ||p||, U = ||u|| (deterministic chunked sums of
# reductions.pxi), r = P / U, or 1 when P or U is 0, and s = -(lr * r). Then
#   p = p + s*u                                   (s cast to the param's precision)
#
# The trust ratio needs the norms of the whole tensor before any element of it
# moves, so a step is two passes over the group's chunks, each threaded
# (prange over chunks, static schedule):
#   pass 1: update m and v, compute u and STORE it in the group's param-sized
#           scratch block `update` (LAMB._scratch_names; not state), store the
#           chunk's sum p*p and sum u*u (u is read back while the chunk is
#           still in cache);
#   then:   per tensor, combine its chunks' sums in order -> s;
#   pass 2: p = p + s*u, u read from the scratch block.
# Chunks never straddle tensors: the per-tensor tables of the GroupPlan are
# used, never its fused run.
#
# Why store u rather than recompute it in pass 2 (as this kernel once did):
# u costs three divisions and a sqrt per element, and below memory speed the
# divider bounded the step; recomputing paid for it twice. Storing u costs
# memory instead: pass 1 streams p, g, m, v in and m, v, u out (u's write also
# reads its lines for ownership), pass 2 streams p, u in and p out: 11 array
# passes against 10 when recomputing (p, g, m, v in, m, v out; p, m, v in, p
# out). Measured with `python -m cyoptim bench` (float32, 2 threads, AVX2,
# a 2-core machine, medians of paired runs), Mparam/s recompute -> store:
#   1M     ~1,240 -> ~1,600 (+30%)     500x2k  ~1,230 -> ~1,450 (+18%)
#   16M    ~955   -> ~930   (-3%: memory bound, the extra stream shows)
# Storing wins overall, so it is the only path. The results are the same bits:
# u is stored in the param's precision, the value pass 2 recomputed before.
# Cost: one more param-sized array per group (LAMB._scratch_names).

cdef struct LambArgs:
    char** params
    char** grads
    char* exp_avg
    char* exp_avg_sq
    char* update                  # scratch block: u, from pass 1 to pass 2
    const int64_t* offsets        # per tensor: its position in the state blocks
    const double* bc1             # per tensor: 1 - beta1^t
    const double* bc2             # per tensor: 1 - beta2^t
    const double* scale           # per tensor: -(lr * trust ratio), for pass 2
    Chunks chunks
    double* p_sq                  # per chunk: sum p*p
    double* u_sq                  # per chunk: sum u*u
    double beta1, beta2, eps, weight_decay
    bint maximize, is_double


cdef inline void _lamb_moments(const floating* p, const floating* g, floating* m,
                               floating* v, floating* u, int64_t n, const LambArgs* a,
                               double bc1, double bc2) noexcept nogil:
    """Pass 1 on one chunk: update m and v, write the direction u."""
    cdef floating flip = -1 if a.maximize else 1
    cdef floating b1 = <floating> a.beta1
    cdef floating w1 = <floating> (1 - a.beta1)
    cdef floating b2 = <floating> a.beta2
    cdef floating w2 = <floating> (1 - a.beta2)
    cdef floating c1 = <floating> bc1
    cdef floating c2 = <floating> bc2
    cdef floating eps = <floating> a.eps
    cdef floating wd = <floating> a.weight_decay
    cdef bint decay = a.weight_decay != 0
    cdef floating gi, mi, vi, ui
    cdef int64_t i
    for i in range(n):
        gi = g[i] * flip
        mi = w1 * gi + b1 * m[i]
        vi = w2 * (gi * gi) + b2 * v[i]
        m[i] = mi
        v[i] = vi
        ui = (mi / c1) / (fsqrt(vi / c2) + eps)
        if decay:
            ui = ui + wd * p[i]
        u[i] = ui


cdef inline void _lamb_apply(floating* p, const floating* u, int64_t n,
                             double scale) noexcept nogil:
    """Pass 2 on one chunk: p = p + scale*u."""
    cdef floating s = <floating> scale
    cdef int64_t i
    for i in range(n):
        p[i] = p[i] + s * u[i]


cdef void _lamb_pass1(const LambArgs* a, Py_ssize_t c) noexcept nogil:
    cdef Py_ssize_t k = a.chunks.tensor[c]
    cdef int64_t start = a.chunks.start[c], n = a.chunks.count[c]
    cdef int64_t at = a.offsets[k] + start
    if a.is_double:
        _lamb_moments(<const double*> a.params[k] + start, <const double*> a.grads[k] + start,
                      <double*> a.exp_avg + at, <double*> a.exp_avg_sq + at,
                      <double*> a.update + at, n, a, a.bc1[k], a.bc2[k])
        a.p_sq[c] = sum_sq(<const double*> a.params[k] + start, n)
        a.u_sq[c] = sum_sq(<const double*> a.update + at, n)
    else:
        _lamb_moments(<const float*> a.params[k] + start, <const float*> a.grads[k] + start,
                      <float*> a.exp_avg + at, <float*> a.exp_avg_sq + at,
                      <float*> a.update + at, n, a, a.bc1[k], a.bc2[k])
        a.p_sq[c] = sum_sq(<const float*> a.params[k] + start, n)
        a.u_sq[c] = sum_sq(<const float*> a.update + at, n)


cdef void _lamb_pass2(const LambArgs* a, Py_ssize_t c) noexcept nogil:
    cdef Py_ssize_t k = a.chunks.tensor[c]
    cdef int64_t start = a.chunks.start[c], n = a.chunks.count[c]
    cdef int64_t at = a.offsets[k] + start
    if a.is_double:
        _lamb_apply(<double*> a.params[k] + start, <const double*> a.update + at, n,
                    a.scale[k])
    else:
        _lamb_apply(<float*> a.params[k] + start, <const float*> a.update + at, n,
                    a.scale[k])


cdef inline double trust_ratio(double param_sq, double update_sq) noexcept nogil:
    """||p|| / ||u||, or 1 when either norm is 0 (optax's scale_by_trust_ratio)."""
    cdef double pn = sqrt(param_sq), un = sqrt(update_sq)
    if pn == 0 or un == 0:
        return 1.0
    return pn / un


def lamb(GroupPlan plan, exp_avg, exp_avg_sq, update, double lr, double beta1, double beta2,
         double eps, double weight_decay, bint maximize, int n_threads):
    """One LAMB step over every tensor of plan that has a grad.

    plan: the group, with grads gathered and steps advanced.     # IN/OUT
    exp_avg, exp_avg_sq: the group's state blocks.               # IN/OUT
    update: the group's param-sized scratch block (u; any content on entry).  # OUT
    n_threads: requested threads (<= 0: OpenMP's maximum).
    Returns float64[n_tensors]: the trust ratio used for each tensor (NaN for
    tensors without a grad this step).
    """
    cdef LambArgs a
    cdef Py_ssize_t n = plan.n_tensors, k, c
    cdef double last_step = -1, step, bc1 = 0, bc2 = 0, r
    ratios = np.full(n, np.nan)
    cdef double[::1] ratio = ratios
    cdef double* scalars = <double*> malloc(3 * max(n, 1) * sizeof(double))
    if scalars == NULL:
        raise MemoryError()
    a.p_sq = NULL
    a.u_sq = NULL
    a.chunks.first = NULL
    try:
        chunks_init(&a.chunks, plan.c_offsets, plan.c_grads, n)
        a.p_sq = <double*> malloc(2 * max(a.chunks.n, 1) * sizeof(double))
        if a.p_sq == NULL:
            raise MemoryError()
        a.u_sq = a.p_sq + a.chunks.n
        a.params = plan.c_params
        a.grads = plan.c_grads
        a.offsets = plan.c_offsets
        a.exp_avg = plan.block_data(exp_avg)
        a.exp_avg_sq = plan.block_data(exp_avg_sq)
        a.update = plan.block_data(update)
        for k in range(n):                       # bias corrections in double
            step = plan.c_steps[k]
            if step != last_step:
                bc1 = 1 - pow(beta1, step)
                bc2 = 1 - pow(beta2, step)
                last_step = step
            scalars[k] = bc1
            scalars[n + k] = bc2
        a.bc1 = scalars
        a.bc2 = scalars + n
        a.scale = scalars + 2 * n
        a.beta1 = beta1
        a.beta2 = beta2
        a.eps = eps
        a.weight_decay = weight_decay
        a.maximize = maximize
        a.is_double = plan.is_double
        n_threads = _effective_threads(plan.active_elements, n_threads, COST_HEAVY)
        with nogil:
            for c in prange(a.chunks.n, schedule="static", num_threads=n_threads):
                _lamb_pass1(&a, c)
            for k in range(n):
                if plan.c_grads[k] == NULL:
                    continue
                r = trust_ratio(
                    combine_chunks(a.p_sq, a.chunks.first[k], a.chunks.first[k + 1], False),
                    combine_chunks(a.u_sq, a.chunks.first[k], a.chunks.first[k + 1], False))
                ratio[k] = r
                scalars[2 * n + k] = -(lr * r)
            for c in prange(a.chunks.n, schedule="static", num_threads=n_threads):
                _lamb_pass2(&a, c)
    finally:
        free(scalars)
        free(a.p_sq)
        if a.chunks.first != NULL:
            chunks_free(&a.chunks)
    return ratios
