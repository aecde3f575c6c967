# RAdam (torch.optim.RAdam 2.13, _single_tensor_radam).
#
# Per element, in the param's precision, in torch's order of operations:
#   g  = -g if maximize
#   p  = p * (1 - lr*wd)                  decoupled weight decay
#   g  = g + wd*p                         coupled weight decay
#   m  = lerp(m, g, 1 - beta1)
#   v  = v*beta2 + ((1 - beta2)*g)*g
#   mh = m / (1 - beta1^t)
#   p  = p - ((mh*lr) * ((1/(sqrt(v) + eps)) * sqrt(1 - beta2^t))) * rect   if rho_t > 5
#   p  = p - mh*lr                                                          otherwise
# torch divides a Python float by a tensor as reciprocal(tensor) * float, hence
# the 1/(...). The per-tensor scalars (bias corrections, rho_t, rect) are
# computed in double, as torch computes them in Python floats:
#   rho_inf = 2/(1 - beta2) - 1,  rho_t = rho_inf - 2*t*beta2^t / (1 - beta2^t)
#   rect = sqrt((rho_t - 4)(rho_t - 2) rho_inf / ((rho_inf - 4)(rho_inf - 2) rho_t))

from libc.stdlib cimport malloc, free
from libc.math cimport pow


cdef struct RAdamArgs:
    char** params
    char** grads
    char* exp_avg
    char* exp_avg_sq
    const int64_t* offsets
    const double* bc1              # per run: 1 - beta1^t
    const double* bc2_sqrt         # per run: (1 - beta2^t) ** 0.5
    const double* rect             # per run: the rectification, 0 when rho_t <= 5
    double lr, beta1, beta2, eps, weight_decay, decay
    bint maximize, decoupled, is_double


cdef inline void _radam_elements(floating* p, const floating* g, floating* m,
                                 floating* v, int64_t n, const RAdamArgs* a,
                                 double bc1_, double bc2_sqrt, double rect_) noexcept nogil:
    cdef floating sign = -1 if a.maximize else 1
    cdef floating decay = <floating> a.decay
    cdef floating wd = <floating> a.weight_decay
    cdef floating w1 = <floating> (1 - a.beta1)
    cdef floating b2 = <floating> a.beta2
    cdef floating c2 = <floating> (1 - a.beta2)
    cdef floating eps = <floating> a.eps
    cdef floating lr = <floating> a.lr
    cdef floating bc1 = <floating> bc1_
    cdef floating bc2s = <floating> bc2_sqrt
    cdef floating rect = <floating> rect_
    cdef floating one = 1
    cdef bint coupled = a.weight_decay != 0 and not a.decoupled
    cdef floating gi, pi, mi, vi
    cdef int64_t i
    if rect_ > 0:
        for i in range(n):
            gi = g[i] * sign
            pi = p[i] * decay
            if coupled:
                gi = gi + wd * pi
            mi = lerp(m[i], gi, w1)
            vi = v[i] * b2 + (c2 * gi) * gi
            m[i] = mi
            v[i] = vi
            p[i] = pi - (((mi / bc1) * lr) * ((one / (fsqrt(vi) + eps)) * bc2s)) * rect
    else:
        for i in range(n):
            gi = g[i] * sign
            pi = p[i] * decay
            if coupled:
                gi = gi + wd * pi
            mi = lerp(m[i], gi, w1)
            m[i] = mi
            v[i] = v[i] * b2 + (c2 * gi) * gi
            p[i] = pi - (mi / bc1) * lr


cdef void _radam_segment(const void* args, Py_ssize_t k, int64_t start,
                         int64_t count) noexcept nogil:
    cdef const RAdamArgs* a = <const RAdamArgs*> args
    if a.grads[k] == NULL:
        return
    cdef int64_t at = a.offsets[k] + start    # position in the state blocks
    if a.is_double:
        _radam_elements(<double*> a.params[k] + start, <const double*> a.grads[k] + start,
                        <double*> a.exp_avg + at, <double*> a.exp_avg_sq + at, count, a,
                        a.bc1[k], a.bc2_sqrt[k], a.rect[k])
    else:
        _radam_elements(<float*> a.params[k] + start, <const float*> a.grads[k] + start,
                        <float*> a.exp_avg + at, <float*> a.exp_avg_sq + at, count, a,
                        a.bc1[k], a.bc2_sqrt[k], a.rect[k])


cdef double _radam_rectification(double step, double beta2) noexcept nogil:
    """torch's rect term for step t, or 0.0 when rho_t <= 5 (the unrectified steps)."""
    cdef double bc2 = 1 - pow(beta2, step)
    cdef double rho_inf = 2 / (1 - beta2) - 1
    cdef double rho_t = rho_inf - 2 * step * pow(beta2, step) / bc2
    if not rho_t > 5.0:
        return 0.0
    return pow((rho_t - 4) * (rho_t - 2) * rho_inf
               / ((rho_inf - 4) * (rho_inf - 2) * rho_t), 0.5)


def radam(GroupPlan plan, exp_avg, exp_avg_sq, double lr, double beta1, double beta2,
          double eps, double weight_decay, bint maximize, bint decoupled, int n_threads):
    """One RAdam step over every tensor of plan that has a grad.

    plan: the group, with grads gathered and steps advanced.     # IN/OUT
    exp_avg, exp_avg_sq: the group's state blocks.               # IN/OUT
    n_threads: requested threads (<= 0: OpenMP's maximum).
    """
    cdef RAdamArgs a
    cdef Py_ssize_t n = plan.run_n, k
    cdef double* scalars = <double*> malloc(3 * max(n, 1) * sizeof(double))
    if scalars == NULL:
        raise MemoryError()
    cdef double last_step = -1, step, bc1 = 0, bc2_sqrt = 0, rect = 0
    try:
        a.params = plan.run_params
        a.grads = plan.run_grads
        a.offsets = plan.run_offsets
        a.exp_avg = plan.block_data(exp_avg)
        a.exp_avg_sq = plan.block_data(exp_avg_sq)
        # Once per distinct step count (usually one for the whole group).
        for k in range(n):
            step = plan.run_steps[k]
            if step != last_step:
                bc1 = 1 - pow(beta1, step)
                bc2_sqrt = pow(1 - pow(beta2, step), 0.5)
                rect = _radam_rectification(step, beta2)
                last_step = step
            scalars[k] = bc1
            scalars[n + k] = bc2_sqrt
            scalars[2 * n + k] = rect
        a.bc1 = scalars
        a.bc2_sqrt = scalars + n
        a.rect = scalars + 2 * n
        a.lr = lr
        a.beta1 = beta1
        a.beta2 = beta2
        a.eps = eps
        a.weight_decay = weight_decay
        a.decay = 1 - lr * weight_decay if (decoupled and weight_decay != 0) else 1.0
        a.maximize = maximize
        a.decoupled = decoupled
        a.is_double = plan.is_double
        n_threads = _effective_threads(plan.active_elements, n_threads, COST_HEAVY)
        with nogil:
            run_segments(_radam_segment, &a, plan.run_offsets, n, n_threads)
    finally:
        free(scalars)
