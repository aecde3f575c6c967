# bfloat16 rounding, and the element-wise steps of Muon's Newton-Schulz
# iteration (cyoptim.optimizers.muon).
#
# torch's Muon runs Newton-Schulz in bfloat16: each matrix product accumulates
# in float32 and rounds its result to bfloat16 once; torch.addmm(M, A, B,
# beta=beta, alpha=alpha) finishes in float32 with a fused multiply-add,
# bf16(fma(beta, M, alpha*(A@B))) (measured against torch 2.13 on CPU: with
# this form small matrices agree with torch bitwise far more often than with
# separately rounded terms). cyoptim keeps the bfloat16 values in float32
# arrays, so the products run as float32 matmuls of a BLAS (products of two
# bfloat16 values are exact in float32; only the summation order differs from
# torch's), and rounds where torch rounds, with these helpers. fmaf is one
# instruction in the AVX2 and AVX-512 builds and a (correctly rounded) libm
# call in the baseline build: the same bits in every variant.
#
# Rounding is torch's float -> bfloat16 conversion (c10::BFloat16,
# round_to_nearest_even): add 0x7FFF plus the lowest kept bit, drop the low 16
# bits. Overflow goes to inf as it should; NaN stays NaN (here: the input NaN,
# which is not rounded). A double is first rounded to float, as torch does.

from libc.stdint cimport uint32_t
from libc.math cimport fmaf

cdef union _FloatBits:
    float value
    uint32_t bits

cdef uint32_t _BF16_HALF = 0x7FFF
cdef uint32_t _BF16_KEEP = 0xFFFF0000


cdef inline float bf16_round(float x) noexcept nogil:
    """The bfloat16 value nearest to x (ties to even), as a float."""
    cdef _FloatBits b
    b.value = x
    b.bits = (b.bits + (_BF16_HALF + ((b.bits >> 16) & 1))) & _BF16_KEEP
    return x if x != x else b.value


cdef enum:
    BF16_ROUND = 0          # out = bf16(out)
    BF16_DIVIDE = 1         # out = bf16(out / alpha)
    BF16_FMA = 2            # out = bf16(fma(alpha, x, beta*y))


cdef struct Bf16Job:
    float* out
    const float* x
    const float* y
    float alpha
    float beta
    int op


cdef void _bf16_piece(const void* args, Py_ssize_t run, int64_t start,
                      int64_t count) noexcept nogil:
    cdef const Bf16Job* job = <const Bf16Job*> args
    cdef float* out = job.out + start
    cdef const float* x
    cdef const float* y
    cdef float alpha = job.alpha, beta = job.beta
    cdef int64_t i
    if job.op == BF16_ROUND:
        for i in range(count):
            out[i] = bf16_round(out[i])
    elif job.op == BF16_DIVIDE:
        for i in range(count):
            out[i] = bf16_round(out[i] / alpha)
    else:
        x = job.x + start
        y = job.y + start
        for i in range(count):
            out[i] = bf16_round(fmaf(alpha, x[i], beta * y[i]))


cdef float* _float32_data(object a, str name, int64_t size) except NULL:
    """The data of a C-contiguous, aligned, writeable float32 array (checked)."""
    if (not cnp.PyArray_Check(a) or cnp.PyArray_TYPE(<cnp.ndarray> a) != cnp.NPY_FLOAT32
            or not cnp.PyArray_ISNOTSWAPPED(<cnp.ndarray> a)
            or not cnp.PyArray_IS_C_CONTIGUOUS(<cnp.ndarray> a)
            or not cnp.PyArray_ISALIGNED(<cnp.ndarray> a)
            or not cnp.PyArray_ISWRITEABLE(<cnp.ndarray> a)):
        raise ValueError(f"{name}: expected a C-contiguous, aligned, writeable float32 array")
    if size >= 0 and cnp.PyArray_SIZE(<cnp.ndarray> a) != size:
        raise ValueError(f"{name}: expected {size} elements, "
                         f"got {cnp.PyArray_SIZE(<cnp.ndarray> a)}")
    return <float*> cnp.PyArray_DATA(<cnp.ndarray> a)


cdef _bf16_run(Bf16Job* job, int64_t n, int n_threads, int cost):
    cdef int64_t offsets[2]
    offsets[0] = 0
    offsets[1] = n
    n_threads = _effective_threads(n, n_threads, cost)
    with nogil:
        run_pieces(_bf16_piece, job, offsets, 1, n_threads)


def bf16_round_(out, int n_threads=0):
    """out = bf16(out): every element rounded to the nearest bfloat16 value.  # IN/OUT

    out: a C-contiguous float32 array (any shape). n_threads <= 0: OpenMP's maximum.
    """
    cdef Bf16Job job
    job.out = _float32_data(out, "out", -1)
    job.op = BF16_ROUND
    _bf16_run(&job, cnp.PyArray_SIZE(<cnp.ndarray> out), n_threads, COST_LIGHT)


def bf16_divide_(out, double divisor, int n_threads=0):
    """out = bf16(out / d), d = divisor rounded to float32; in float32.  # IN/OUT"""
    cdef Bf16Job job
    job.out = _float32_data(out, "out", -1)
    job.alpha = <float> divisor
    job.op = BF16_DIVIDE
    _bf16_run(&job, cnp.PyArray_SIZE(<cnp.ndarray> out), n_threads, COST_HEAVY)


def bf16_fma(out, double alpha, x, double beta, y, int n_threads=0):
    """out = bf16(fma(a, x, b*y)) in float32 (a, b: alpha, beta rounded to
    float32; b*y rounded, then one rounding of a*x + b*y): how torch.addmm(y',
    ..., beta=a, alpha=b) finishes, y the product and x the added matrix.

    out, x, y: C-contiguous float32 arrays of one size; out may be x or y.
    out: # OUT; x, y: # IN
    """
    cdef Bf16Job job
    cdef int64_t n = cnp.PyArray_SIZE(<cnp.ndarray> out) if cnp.PyArray_Check(out) else -1
    job.out = _float32_data(out, "out", -1)
    job.x = _float32_data(x, "x", n)
    job.y = _float32_data(y, "y", n)
    job.alpha = <float> alpha
    job.beta = <float> beta
    job.op = BF16_FMA
    _bf16_run(&job, n, n_threads, COST_LIGHT)
