# LAMB (You et al. 2019), as optax.lamb, with its own two-pass driver
# (the registry: driver="custom"; LambHyper, LambRun and _lamb_runs are
# generated): scale_by_adam, add_decayed_weights,
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
# (the chunks are tasks of the work-sharing pool, pool.h):
#   pass 1: update m and v, compute u and STORE it in the group's param-sized
#           scratch block `update` (LAMB's scratch block; not state), store the
#           chunk's sum p*p and sum u*u (u is read back while the chunk is
#           still in cache);
#   then:   per tensor, combine its chunks' sums in order -> s;
#   pass 2: p = p + s*u, u read from the scratch block.
# Chunks never straddle tensors: the per-tensor tables of the plan are
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
# Cost: one more param-sized array per group (the scratch block `update`).

# Pool tasks per thread in each pass: consecutive chunks per task, so that the
# thread that computed u for a stretch in pass 1 usually applies it in pass 2
# while it is still in its cache (one task per chunk measured 20% slower).
cdef int64_t LAMB_TASKS_PER_THREAD = 1

cdef struct LambArgs:
    LambHyper h
    const LambRun* runs           # per tensor: bias corrections
    char** params
    char** grads
    char** exp_avg                # per tensor: the state's data
    char** exp_avg_sq
    char** update                 # per tensor: the scratch block's u, from pass 1 to pass 2
    double grad_scale             # grads are divided by it first, unless it is 1
    const double* scale           # per tensor: -(lr * trust ratio), for pass 2
    Chunks chunks
    double* p_sq                  # per chunk: sum p*p
    double* u_sq                  # per chunk: sum u*u
    int64_t chunks_per_task       # a pool task is this many consecutive chunks
    int element_type


cdef inline void lamb_run(const LambHyper* h, double step, LambRun* r) noexcept nogil:
    r.bc1 = 1 - pow(h.beta1, step)
    r.bc2 = 1 - pow(h.beta2, step)


cdef inline void lamb_elements(const floating* p, const floating* g, floating* m,
                               floating* v, floating* u, int64_t n, const LambHyper* h,
                               const LambRun* r) noexcept nogil:
    """Pass 1 on one chunk: update m and v, write the direction u."""
    cdef floating flip = -1 if h.maximize else 1
    cdef floating b1 = <floating> h.beta1
    cdef floating w1 = <floating> (1 - h.beta1)
    cdef floating b2 = <floating> h.beta2
    cdef floating w2 = <floating> (1 - h.beta2)
    cdef floating c1 = <floating> r.bc1
    cdef floating c2 = <floating> r.bc2
    cdef floating eps = <floating> h.eps
    cdef floating wd = <floating> h.weight_decay
    cdef bint decay = h.weight_decay != 0
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
    if a.element_type == cnp.NPY_FLOAT64:
        if a.grad_scale != 1:
            unscale(<double*> a.grads[k] + start, n, a.grad_scale)
        lamb_elements(<const double*> a.params[k] + start, <const double*> a.grads[k] + start,
                      <double*> a.exp_avg[k] + start, <double*> a.exp_avg_sq[k] + start,
                      <double*> a.update[k] + start, n, &a.h, &a.runs[k])
        a.p_sq[c] = sum_sq(<const double*> a.params[k] + start, n)
        a.u_sq[c] = sum_sq(<const double*> a.update[k] + start, n)
    else:
        if a.grad_scale != 1:
            unscale(<float*> a.grads[k] + start, n, a.grad_scale)
        lamb_elements(<const float*> a.params[k] + start, <const float*> a.grads[k] + start,
                      <float*> a.exp_avg[k] + start, <float*> a.exp_avg_sq[k] + start,
                      <float*> a.update[k] + start, n, &a.h, &a.runs[k])
        a.p_sq[c] = sum_sq(<const float*> a.params[k] + start, n)
        a.u_sq[c] = sum_sq(<const float*> a.update[k] + start, n)


cdef void _lamb_pass2(const LambArgs* a, Py_ssize_t c) noexcept nogil:
    cdef Py_ssize_t k = a.chunks.tensor[c]
    cdef int64_t start = a.chunks.start[c], n = a.chunks.count[c]
    if a.element_type == cnp.NPY_FLOAT64:
        _lamb_apply(<double*> a.params[k] + start, <const double*> a.update[k] + start, n,
                    a.scale[k])
    else:
        _lamb_apply(<float*> a.params[k] + start, <const float*> a.update[k] + start, n,
                    a.scale[k])


cdef void _lamb_pass1_task(void* args, int64_t task) noexcept nogil:
    cdef const LambArgs* a = <const LambArgs*> args
    cdef int64_t c
    for c in range(task * a.chunks_per_task,
                   min((task + 1) * a.chunks_per_task, <int64_t> a.chunks.n)):
        _lamb_pass1(a, c)


cdef void _lamb_pass2_task(void* args, int64_t task) noexcept nogil:
    cdef const LambArgs* a = <const LambArgs*> args
    cdef int64_t c
    for c in range(task * a.chunks_per_task,
                   min((task + 1) * a.chunks_per_task, <int64_t> a.chunks.n)):
        _lamb_pass2(a, c)


cdef inline double trust_ratio(double param_sq, double update_sq) noexcept nogil:
    """||p|| / ||u||, or 1 when either norm is 0 (optax's scale_by_trust_ratio)."""
    cdef double pn = sqrt(param_sq), un = sqrt(update_sq)
    if pn == 0 or un == 0:
        return 1.0
    return pn / un


def lamb(Plan plan, *, exp_avg, exp_avg_sq, update, double lr, double beta1,
         double beta2, double eps, double weight_decay, bint maximize, int n_threads=0):
    """One LAMB step over every tensor of plan that has a grad.

    plan: the group, with grads gathered and steps advanced.     # IN/OUT
    exp_avg, exp_avg_sq: the group's state blocks.               # IN/OUT
    update: the group's param-sized scratch block (u; any content on entry).  # OUT
    n_threads: requested threads (<= 0: OpenMP's maximum).
    Returns float64[n_tensors]: the trust ratio used for each tensor (NaN for
    tensors without a grad this step).
    """
    cdef LambArgs a
    cdef Py_ssize_t n = plan.n_tensors, k
    cdef int64_t n_tasks
    cdef double r
    ratios = np.full(n, np.nan)
    cdef double[::1] ratio = ratios
    a.h.lr = lr
    a.h.beta1 = beta1
    a.h.beta2 = beta2
    a.h.eps = eps
    a.h.weight_decay = weight_decay
    a.h.maximize = maximize
    # Chunks are per tensor: the per-tensor tables, never the fused run.
    a.params = plan.c_params
    a.grads = plan.c_grads
    a.exp_avg = plan.state_table(0, exp_avg, True)
    a.exp_avg_sq = plan.state_table(1, exp_avg_sq, True)
    a.update = plan.state_table(2, update, True)
    a.grad_scale = plan.grad_scale
    a.element_type = plan.element_type
    cdef double* scale = <double*> malloc(max(n, 1) * sizeof(double))
    if scale == NULL:
        raise MemoryError()
    a.scale = scale
    a.runs = NULL
    a.p_sq = NULL
    a.u_sq = NULL
    a.chunks.first = NULL
    try:
        a.runs = _lamb_runs(&a.h, plan.c_steps, n)     # per tensor: never a fused run
        chunks_init(&a.chunks, plan.c_offsets, plan.c_grads, n)
        a.p_sq = <double*> malloc(2 * max(a.chunks.n, 1) * sizeof(double))
        if a.p_sq == NULL:
            raise MemoryError()
        a.u_sq = a.p_sq + a.chunks.n
        n_threads = _effective_threads(plan.active_elements, n_threads, COST_HEAVY)
        a.chunks_per_task = max(1, (a.chunks.n + LAMB_TASKS_PER_THREAD * n_threads - 1)
                                // (LAMB_TASKS_PER_THREAD * n_threads))
        n_tasks = (a.chunks.n + a.chunks_per_task - 1) // a.chunks_per_task
        with nogil:
            cyoptim_pool_run(_lamb_pass1_task, &a, n_tasks, n_threads)
            for k in range(n):
                if plan.c_grads[k] == NULL:
                    continue
                r = trust_ratio(
                    combine_chunks(a.p_sq, a.chunks.first[k], a.chunks.first[k + 1], False),
                    combine_chunks(a.u_sq, a.chunks.first[k], a.chunks.first[k + 1], False))
                ratio[k] = r
                scale[k] = -(lr * r)
            cyoptim_pool_run(_lamb_pass2_task, &a, n_tasks, n_threads)
    finally:
        free(scale)
        free(<void*> a.runs)
        free(a.p_sq)
        if a.chunks.first != NULL:
            chunks_free(&a.chunks)
    return ratios


def lamb_group(Plan plan, dict group, dict blocks, int n_threads):
    """lamb() with its hyperparameters read from a param group (``betas`` gives
    beta1 and beta2) and its blocks from a dict: what cyoptim.LAMB calls."""
    beta1, beta2 = group["betas"]
    return lamb(plan, exp_avg=blocks.get("exp_avg"), exp_avg_sq=blocks.get("exp_avg_sq"),
                update=blocks["update"], lr=group["lr"], beta1=beta1, beta2=beta2,
                eps=group["eps"], weight_decay=group["weight_decay"],
                maximize=group["maximize"], n_threads=n_threads)
