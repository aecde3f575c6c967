# GroupPlan: the compiled form of one param group.
#
# Built once per group when the optimizer is constructed. It holds raw pointers
# to the group's params, the prefix offsets of their sizes (the virtual flat
# buffer of common.pxi), one step count per tensor, and the state blocks: each
# state buffer (exp_avg, ...) of the group is ONE contiguous array, and the
# per-param state arrays users see are views into it. Each step, gather_all()
# checks the grads and records their pointers in C, so a step costs tens of
# nanoseconds per tensor, not microseconds.
#
# Kernels iterate over "runs": normally one run per tensor. When the params are
# back to back in memory (a ParamBuffer), the grads are too, and every tensor
# has a grad and the same step count, the whole group is ONE run: one long
# vectorized loop instead of one short loop per tensor.

cimport numpy as cnp
from libc.string cimport memcmp

cnp.import_array()

# The grad check codes gather_all() reports; cyoptim.optimizer turns them into messages.
GRAD_OK = 0
GRAD_NOT_ARRAY = 1
GRAD_DTYPE = 2
GRAD_SHAPE = 3
GRAD_LAYOUT = 4


cdef class GroupPlan:
    cdef readonly Py_ssize_t n_tensors
    cdef readonly int element_type     # the NumPy type number of params, grads and states
    cdef readonly object dtype
    cdef readonly tuple params
    cdef readonly object offsets       # int64[n + 1], prefix sums of sizes
    cdef readonly object steps         # float64[n], the per-tensor step count
    cdef readonly int64_t active_elements   # elements with a grad this step
    cdef readonly Py_ssize_t n_active
    cdef object _param_ptrs, _grad_ptrs, _dims, _ndims
    cdef int itemsize
    cdef int64_t* c_offsets
    cdef char** c_params
    cdef char** c_grads
    cdef double* c_steps
    cdef const int64_t* c_dims        # all shapes, concatenated
    cdef const int64_t* c_ndims       # ndim of tensor k; its dims start at c_dims[k * max_ndim]
    cdef int max_ndim
    cdef readonly bint params_contiguous   # params back to back in memory
    cdef readonly bint fused               # this step runs the group as one run
    # The runs of this step (see above): either the per-tensor tables or the
    # single fused entry.
    cdef Py_ssize_t run_n
    cdef int64_t* run_offsets
    cdef char** run_params
    cdef char** run_grads
    cdef double* run_steps
    cdef int64_t fused_offsets[2]
    cdef char* fused_param
    cdef char* fused_grad

    def __init__(self, params, dtype):
        """params: C-contiguous, aligned, writeable arrays of one dtype (checked by the caller)."""
        self.params = tuple(params)
        self.n_tensors = len(self.params)
        self.dtype = np.dtype(dtype)
        self.element_type = self.dtype.num
        self.itemsize = self.dtype.itemsize
        sizes = np.array([p.size for p in self.params], dtype=np.int64)
        self.offsets = np.zeros(self.n_tensors + 1, dtype=np.int64)
        np.cumsum(sizes, out=self.offsets[1:])
        self.steps = np.zeros(self.n_tensors, dtype=np.float64)
        self._param_ptrs = np.array([p.ctypes.data for p in self.params], dtype=np.intp)
        self._grad_ptrs = np.zeros(self.n_tensors, dtype=np.intp)
        self.max_ndim = max([p.ndim for p in self.params] + [1])
        dims = np.zeros((self.n_tensors, self.max_ndim), dtype=np.int64)
        for k, p in enumerate(self.params):
            dims[k, :p.ndim] = p.shape
        self._dims = dims
        self._ndims = np.array([p.ndim for p in self.params], dtype=np.int64)
        self.c_offsets = <int64_t*> cnp.PyArray_DATA(self.offsets)
        self.c_params = <char**> cnp.PyArray_DATA(self._param_ptrs)
        self.c_grads = <char**> cnp.PyArray_DATA(self._grad_ptrs)
        self.c_steps = <double*> cnp.PyArray_DATA(self.steps)
        self.c_dims = <const int64_t*> cnp.PyArray_DATA(self._dims)
        self.c_ndims = <const int64_t*> cnp.PyArray_DATA(self._ndims)
        itemsize = self.dtype.itemsize
        self.params_contiguous = self.n_tensors > 1 and all(
            self._param_ptrs[k] == self._param_ptrs[0] + self.offsets[k] * itemsize
            for k in range(self.n_tensors))
        self.fused_offsets[0] = 0
        self.fused_offsets[1] = self.c_offsets[self.n_tensors]
        self.fused_param = self.c_params[0] if self.n_tensors else NULL
        self._use_tensor_runs()

    cdef void _use_tensor_runs(self):
        self.fused = False
        self.run_n = self.n_tensors
        self.run_offsets = self.c_offsets
        self.run_params = self.c_params
        self.run_grads = self.c_grads
        self.run_steps = self.c_steps

    cdef void _use_fused_run(self):
        self.fused = True
        self.run_n = 1
        self.run_offsets = self.fused_offsets
        self.fused_grad = self.c_grads[0]
        self.run_params = &self.fused_param
        self.run_grads = &self.fused_grad
        self.run_steps = self.c_steps

    cdef bint _grads_fusable(self):
        """Every tensor has a grad, grads are back to back, steps are equal."""
        cdef Py_ssize_t k
        cdef Py_ssize_t itemsize = self.itemsize
        if not self.params_contiguous or self.c_grads[0] == NULL:
            return False
        for k in range(self.n_tensors):
            if (self.c_grads[k] != self.c_grads[0] + self.c_offsets[k] * itemsize
                    or self.c_steps[k] != self.c_steps[0]):
                return False
        return True

    @property
    def total_elements(self):
        return int(self.offsets[self.n_tensors])

    cdef Py_ssize_t _gather(self, list grads, Py_ssize_t first, int* code) except -2:
        """Check grads[first:first + n_tensors] and record their pointers.

        Writes nothing but this plan's grad pointer table (and the run
        selection). Returns -1 when every grad is usable, else the group-local
        index of the first bad grad, with its GRAD_* code in code[0].
        """
        cdef Py_ssize_t k
        cdef object g
        cdef int64_t active = 0
        cdef Py_ssize_t n_active = 0
        for k in range(self.n_tensors):
            g = grads[first + k]
            if g is None:
                self.c_grads[k] = NULL
                continue
            code[0] = self._check(g, k)
            if code[0] != GRAD_OK:
                return k
            self.c_grads[k] = <char*> cnp.PyArray_DATA(<cnp.ndarray> g)
            active += self.c_offsets[k + 1] - self.c_offsets[k]
            n_active += 1
        self.active_elements = active
        self.n_active = n_active
        if self._grads_fusable():
            self._use_fused_run()
        else:
            self._use_tensor_runs()
        return -1

    cdef int _check(self, object g, Py_ssize_t k):
        if not cnp.PyArray_Check(g):
            return GRAD_NOT_ARRAY
        cdef cnp.ndarray a = <cnp.ndarray> g
        if cnp.PyArray_TYPE(a) != self.element_type or not cnp.PyArray_ISNOTSWAPPED(a):
            return GRAD_DTYPE
        cdef int nd = cnp.PyArray_NDIM(a)
        if nd != self.c_ndims[k]:
            return GRAD_SHAPE
        if nd > 0 and memcmp(cnp.PyArray_DIMS(a), self.c_dims + k * self.max_ndim,
                             nd * sizeof(int64_t)) != 0:
            return GRAD_SHAPE
        if not cnp.PyArray_IS_C_CONTIGUOUS(a) or not cnp.PyArray_ISALIGNED(a):
            return GRAD_LAYOUT
        return GRAD_OK

    def advance(self):
        """Count one more step for every tensor that has a grad this step."""
        cdef Py_ssize_t k
        for k in range(self.n_tensors):
            if self.c_grads[k] != NULL:
                self.c_steps[k] += 1

    cdef char* block_data(self, object block) except NULL:
        """The data pointer of one of this group's state blocks (checked)."""
        if (not cnp.PyArray_Check(block) or cnp.PyArray_TYPE(<cnp.ndarray> block) != self.element_type
                or cnp.PyArray_SIZE(<cnp.ndarray> block) != self.c_offsets[self.n_tensors]
                or not cnp.PyArray_IS_C_CONTIGUOUS(<cnp.ndarray> block)):
            raise ValueError("state block does not match its param group")
        return <char*> cnp.PyArray_DATA(<cnp.ndarray> block)


cdef double* tensor_state_data(GroupPlan plan, object values, str name) except NULL:
    """The data of a per-tensor scalar state array (float64[n_tensors], checked).

    A plain pointer, not a memoryview: acquiring a buffer costs more than a
    small step's whole kernel call."""
    if (not cnp.PyArray_Check(values) or cnp.PyArray_TYPE(<cnp.ndarray> values) != cnp.NPY_FLOAT64
            or cnp.PyArray_SIZE(<cnp.ndarray> values) != plan.n_tensors
            or not cnp.PyArray_IS_C_CONTIGUOUS(<cnp.ndarray> values)
            or not cnp.PyArray_ISWRITEABLE(<cnp.ndarray> values)):
        raise ValueError(f"{name} does not match its param group: float64[{plan.n_tensors}] expected")
    return <double*> cnp.PyArray_DATA(<cnp.ndarray> values)


def gather_all(list plans, list grads):
    """Check and gather the grads of every plan from one list (the groups' params in order).

    The caller checks len(grads) first. Returns None when all grads are usable,
    else (index, code) for the first bad grad, index counted over all params.
    """
    cdef GroupPlan plan
    cdef Py_ssize_t first = 0, bad
    cdef int code = GRAD_OK
    for plan in plans:
        bad = plan._gather(grads, first, &code)
        if bad >= 0:
            return first + bad, code
        first += plan.n_tensors
    return None
