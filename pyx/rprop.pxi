# Rprop (torch.optim.Rprop 2.13, _single_tensor_rprop): the math.
#
# Per element, in the param's precision, in torch's order of operations:
#   g = -g if maximize
#   s = sign(g * prev)                 the product's sign (a product that underflows
#                                      to 0 counts as 0; torch.sign(NaN) = 0)
#   f = etaplus if s > 0, etaminus if s < 0, 1 if s == 0
#   step_size = clamp(step_size * f, step_size_min, step_size_max)   (a NaN stays NaN)
#   g = 0 where f == etaminus          (compared in the param's precision, as torch)
#   p = p + (-sign(g)) * step_size     (addcmul_(sign(g), step_size, value=-1): exact)
#   prev = g
# step_size starts at lr (rounded to the param's dtype) and prev at 0 when a
# tensor takes its first step; lr plays no other part. A tensor's first step
# reads lr instead of its step_size block (run scalar `first`), so a tensor
# whose first grad comes after the lr changed starts from the new lr, as
# torch's lazily created state does.
#
# Every result is a product by a power of two or by +-1, a compare, or the
# rounding of step_size * f: the update is bitwise torch's.


cdef inline void rprop_run(const RpropHyper* h, double step, RpropRun* r) noexcept nogil:
    r.first = step == 1


cdef inline void rprop_elements(floating* p, const floating* g, floating* prev,
                                floating* step_size, int64_t n, const RpropHyper* h,
                                const RpropRun* r) noexcept nogil:
    cdef floating sign = -1 if h.maximize else 1
    cdef floating up = <floating> h.etaplus
    cdef floating down = <floating> h.etaminus
    cdef floating one = 1
    cdef floating zero = 0
    cdef floating lo = <floating> h.step_size_min
    cdef floating hi = <floating> h.step_size_max
    cdef floating lr = <floating> h.lr
    cdef bint first = r.first
    cdef floating gi, si, f, ss, keep, d
    cdef int64_t i
    for i in range(n):
        gi = g[i] * sign
        si = gi * prev[i]
        f = up if si > zero else (down if si < zero else one)
        ss = (lr if first else step_size[i]) * f
        ss = lo if ss <= lo else ss          # clamp: max, then min; a NaN stays NaN
        ss = hi if ss >= hi else ss          # (compares, not nan_max: gcc vectorizes these)
        step_size[i] = ss
        # torch zeroes the grad where f == etaminus, then takes its sign (0 for
        # NaN). The sign is computed from the grad before the zeroing, times
        # keep: the same +-1 or +0 (a select on the zeroed grad instead makes
        # gcc thread branches through the loop, which then does not vectorize).
        keep = zero if f == down else one
        d = (gi > zero) * keep - (gi < zero) * keep
        prev[i] = zero if f == down else gi
        p[i] = p[i] + (-d) * ss
