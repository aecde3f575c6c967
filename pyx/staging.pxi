# Staging: how a kernel steps params, grads and states stored in fewer bytes
# than its float32 math (docs/contract.md §7: 16-bit params, float32 master weights,
# bfloat16 and int8 states).
#
# A staged piece walks its tensor in chunks of QBLOCK elements that start at
# multiples of QBLOCK from the tensor's start. Per chunk it loads what is not
# float32 into float32 stack buffers (in L1), runs the kernel's float32
# element math on them, and stores the results back in their storage: one
# pass over memory, no param-sized temporaries. An int8 state's chunk is one
# quantization block (its absmax and its 256 codes), so a block is always
# dequantized, updated and requantized whole, by one thread: a piece takes
# the blocks that start inside it (stage_bounds).

from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t

cdef extern from "lowp.h":
    float cyoptim_bf16_load(uint16_t h) noexcept nogil
    uint16_t cyoptim_bf16_round(float x) noexcept nogil
    uint16_t cyoptim_bf16_stochastic(float x, uint32_t random) noexcept nogil
    void cyoptim_f16_load_n(const uint16_t* src, float* out, int64_t n) noexcept nogil
    void cyoptim_f16_round_n(const float* x, uint16_t* out, int64_t n) noexcept nogil
    uint32_t cyoptim_hash32(uint32_t x) noexcept nogil

# cpdef: cyoptim.precision reads these from the kernel module, never a copy.
cpdef enum Int8Threshold:
    INT8_MIN_SIZE = 4096    # smaller tensors keep int8-requested states in float32

# Storage kinds of staged params, grads and states.
cpdef enum StorageKind:
    KIND_F32 = 0
    KIND_BF16 = 1
    KIND_F16 = 2
    KIND_INT8 = 3           # per tensor: int8 codes with a float32 absmax per block,
                            # or plain float32 where the tensor's scale table entry is NULL


cdef struct Staging:
    int param_kind               # storage of the params: F32, BF16 or F16
    int grad_kind                # storage of the grads: F32, BF16 or F16
    int state_kind[MAX_STATE_SLOTS]
    char** scales[MAX_STATE_SLOTS]     # INT8 slots: per run, the absmax of each block
    const QuantMap* maps[MAX_STATE_SLOTS]   # INT8 slots: the code map
    char** master                # per run: the float32 master param; NULL: no master
    char** copies                # per run: a 16-bit copy of the updated param
                                 # (NULL entries: none); NULL: no copies
    int copy_kind                # BF16 or F16
    bint stochastic              # BF16 params without master: stochastic rounding
    uint32_t seed
    bint quantized               # some slot is INT8: pieces take whole blocks
    const double* steps          # per run: the step count (stochastic rounding's key)
    const int64_t* offsets       # per run: where it starts (its length: the next minus it)


cdef inline void stage_bounds(const Staging* st, Py_ssize_t run, int64_t start,
                              int64_t count, int64_t* lo, int64_t* hi) noexcept nogil:
    """The elements [lo, hi) a piece [start, start + count) of a run stages:
    itself, or with int8 states the whole blocks that start inside it."""
    cdef int64_t length
    if not st.quantized:
        lo[0] = start
        hi[0] = start + count
        return
    length = st.offsets[run + 1] - st.offsets[run]
    lo[0] = (start + QBLOCK - 1) // QBLOCK * QBLOCK
    hi[0] = (start + count + QBLOCK - 1) // QBLOCK * QBLOCK
    if hi[0] > length:
        hi[0] = length


cdef inline void load16(const uint16_t* src, int kind, float* out, int64_t n) noexcept nogil:
    cdef int64_t i
    if kind == KIND_BF16:
        for i in range(n):
            out[i] = cyoptim_bf16_load(src[i])
    else:
        cyoptim_f16_load_n(src, out, n)


cdef inline void round16(const float* x, int kind, uint16_t* out, int64_t n) noexcept nogil:
    """Round to nearest even."""
    cdef int64_t i
    if kind == KIND_BF16:
        for i in range(n):
            out[i] = cyoptim_bf16_round(x[i])
    else:
        cyoptim_f16_round_n(x, out, n)


cdef inline void round_bf16_stochastic(const float* x, uint16_t* out, int64_t n,
                                       uint32_t key, uint32_t first) noexcept nogil:
    """Element i's random bits are hash(key ^ hash(first + i)): a function of
    the run's key and the element's index only, so any split into pieces and
    threads rounds alike."""
    cdef int64_t i
    for i in range(n):
        out[i] = cyoptim_bf16_stochastic(
            x[i], cyoptim_hash32(key ^ cyoptim_hash32(first + <uint32_t> i)))


cdef inline uint32_t stochastic_key(const Staging* st, Py_ssize_t run,
                                    int64_t first) noexcept nogil:
    """The random stream of a run at a step: seed, step, tensor and the high
    bits of the element index (tensors beyond 2^32 elements)."""
    cdef uint64_t step = <uint64_t> st.steps[run]
    cdef uint32_t key = cyoptim_hash32(st.seed ^ cyoptim_hash32(<uint32_t> step))
    key = cyoptim_hash32(key ^ cyoptim_hash32(<uint32_t> run + 0x9E3779B9u))
    return key ^ cyoptim_hash32(<uint32_t> (first >> 32))


cdef inline float* stage_param(const Staging* st, char* param, Py_ssize_t run, int64_t c,
                               int64_t n, float* buf) noexcept nogil:
    """The float32 values the math updates: the master or a float32 param in
    place, else a 16-bit param loaded into buf."""
    if st.master != NULL:
        return <float*> st.master[run] + c
    if st.param_kind == KIND_F32:
        return <float*> param + c
    load16(<const uint16_t*> param + c, st.param_kind, buf, n)
    return buf


cdef inline void store_param(const Staging* st, char* param, Py_ssize_t run, int64_t c,
                             int64_t n, const float* p) noexcept nogil:
    """Write the updated float32 values p to the 16-bit param (from the master
    or the buffer), and to the run's copy."""
    cdef uint16_t* out
    if st.param_kind != KIND_F32:
        out = <uint16_t*> param + c
        if st.stochastic:
            round_bf16_stochastic(p, out, n, stochastic_key(st, run, c), <uint32_t> c)
        else:
            round16(p, st.param_kind, out, n)
        if st.copies != NULL and st.copies[run] != NULL:
            memcpy(<uint16_t*> st.copies[run] + c, out, n * sizeof(uint16_t))
    elif st.copies != NULL and st.copies[run] != NULL:
        round16(p, st.copy_kind, <uint16_t*> st.copies[run] + c, n)


cdef inline float* stage_grad(const Staging* st, char* grad, int64_t c, int64_t n,
                              double scale, float* buf) noexcept nogil:
    """The float32 grad: a float32 grad in place (unscaled in place, as the
    unstaged kernels do), a 16-bit one loaded into buf (and unscaled there:
    its storage is left as it was)."""
    cdef float* g
    cdef float s = <float> scale
    cdef int64_t i
    if st.grad_kind == KIND_F32:
        g = <float*> grad + c
        if scale != 1:
            unscale(g, n, scale)
        return g
    load16(<const uint16_t*> grad + c, st.grad_kind, buf, n)
    if scale != 1:
        for i in range(n):
            buf[i] = buf[i] / s
    return buf


cdef inline float* stage_state(const Staging* st, int slot, char* data, Py_ssize_t run,
                               int64_t c, int64_t n, float* buf) noexcept nogil:
    """The float32 values of state slot's chunk (NULL for an absent state)."""
    cdef int kind = st.state_kind[slot]
    if data == NULL:
        return NULL
    if kind == KIND_INT8:
        if st.scales[slot][run] == NULL:
            return <float*> data + c
        dequantize_chunk(<const uint8_t*> data + c, (<float*> st.scales[slot][run])[c // QBLOCK],
                         st.maps[slot], buf, n)
        return buf
    if kind == KIND_F32:
        return <float*> data + c
    load16(<const uint16_t*> data + c, kind, buf, n)
    return buf


cdef inline void store_state(const Staging* st, int slot, char* data, Py_ssize_t run,
                             int64_t c, int64_t n, const float* values) noexcept nogil:
    cdef int kind = st.state_kind[slot]
    if data == NULL:
        return
    if kind == KIND_INT8:
        if st.scales[slot][run] != NULL:
            (<float*> st.scales[slot][run])[c // QBLOCK] = quantize_chunk(
                values, n, st.maps[slot], <uint8_t*> data + c)
    elif kind != KIND_F32:
        round16(values, kind, <uint16_t*> data + c, n)
