# Muon's first pass (torch.optim.Muon 2.13, _single_tensor_muon): the math.
#
# Per element, in the param's precision, in torch's order of operations:
#   b = lerp(b, g, 1 - momentum)                  buf.lerp_(grad, 1 - momentum)
#   u = lerp(g, b, momentum)  (nesterov)  or  b   grad.lerp(buf, momentum) if nesterov
#   update = bf16(u)                              update.bfloat16() (a double via float)
# The update block (Muon's scratch) then goes through Newton-Schulz (matrix
# products, in cyoptim.optimizers.muon) and muon_apply.pxi applies it.
# Both lerps are torch's fused ones (lerp_fused): the update is then torch's
# bit for bit, so that Newton-Schulz, which amplifies a flipped bfloat16
# rounding of it, starts from torch's input.


cdef inline void muon_momentum_elements(floating* p, const floating* g, floating* buf,
                                        floating* update, int64_t n,
                                        const MuonMomentumHyper* h) noexcept nogil:
    cdef floating w_buf = <floating> (1 - h.momentum)
    cdef floating w_blend = <floating> h.momentum
    cdef floating bi, ui
    cdef int64_t i
    if h.nesterov:
        for i in range(n):
            bi = lerp_fused(buf[i], g[i], w_buf)
            buf[i] = bi
            ui = lerp_fused(g[i], bi, w_blend)
            update[i] = bf16_round(<float> ui)
    else:
        for i in range(n):
            bi = lerp_fused(buf[i], g[i], w_buf)
            buf[i] = bi
            update[i] = bf16_round(<float> bi)
