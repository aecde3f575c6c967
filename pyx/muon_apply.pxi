# Muon's last pass (torch.optim.Muon 2.13, _single_tensor_muon): the math.
#
# Per element, in the param's precision, with O the orthogonalized update
# (bfloat16 values, from the update block):
#   p = p * (1 - lr*wd)                           param.mul_(1 - lr * weight_decay)
#   p = fma(-(lr * ratio), O, p)                  param.add_(update, alpha=-adjusted_lr)
# 1 - lr*wd and -(lr*ratio) are computed in double and cast to the param's
# precision, as torch casts its Python scalars. ratio is the param's
# adjust_lr_fn factor (lr_ratio, written by the class before every step).
# (torch's add_ with alpha is a fused multiply-add: one rounding.)


cdef inline void muon_apply_run(const MuonApplyHyper* h, double step,
                                MuonApplyRun* r) noexcept nogil:
    r.decay = 1 - h.lr * h.weight_decay


cdef inline void muon_apply_tensor(const MuonApplyHyper* h, MuonApplyRun* r,
                                   double* lr_ratio) noexcept nogil:
    r.neg_lr = -(h.lr * lr_ratio[0])


cdef inline void muon_apply_elements(floating* p, const floating* g, floating* update,
                                     int64_t n, const MuonApplyHyper* h,
                                     const MuonApplyRun* r) noexcept nogil:
    cdef floating decay = <floating> r.decay
    cdef floating neg_lr = <floating> r.neg_lr
    cdef int64_t i
    for i in range(n):
        p[i] = fused_multiply_add(neg_lr, update[i], p[i] * decay)
