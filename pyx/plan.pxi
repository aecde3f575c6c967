# Plans: what a kernel reads of one param group. GroupPlan (here) serves the
# NumPy optimizers; TensorPlan (tensor_plan.pxi) serves cyoptim.torch.
#
# A GroupPlan is built once per group when the optimizer is constructed. It holds raw pointers
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


cdef class Plan:
    """What a kernel reads of one param group: the runs it walks and, per run,
    the data of the param, the grad and each state block.

    Two kinds fill it: GroupPlan (NumPy arrays, built once per group, state in
    contiguous blocks) and TensorPlan (torch tensors, gathered at every step,
    each state tensor where it lives: tensor_plan.pxi).
    """
    cdef readonly Py_ssize_t n_tensors
    cdef readonly int element_type     # the NumPy type number of params, grads and states
    cdef int itemsize
    cdef readonly int64_t active_elements   # elements with a grad this step
    cdef readonly Py_ssize_t n_active
    cdef int64_t* c_offsets            # prefix sums of the tensors' sizes
    cdef char** c_params
    cdef char** c_grads
    cdef double* c_steps
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
    # Per state slot (a kernel's blocks in registry order, then its scratch
    # blocks): one pointer per tensor, or the fused run's one pointer.
    cdef char** c_state
    cdef char* fused_state[MAX_STATE_SLOTS]
    # Grads are divided by this in place, piece by piece, just before the math
    # reads them (torch's fused grad_scale); 1 means not at all.
    cdef public double grad_scale
    # Per-tensor scalar state (NAdam's mu_product) is rounded to float32 at
    # every update, as in torch's float32 scalar tensors; False: kept in double
    # (torch's scalar dtype when its default dtype is float64).
    cdef public bint scalar_float32
    # Staged storage (staging.pxi): params, grads or states in other than
    # element_type (then float32, the math's type). _staging holds the kinds
    # and flags; the tables below, one entry per tensor, the pointers.
    cdef readonly bint staged
    cdef Staging _staging
    cdef char** c_scales               # MAX_STATE_SLOTS tables: INT8 slots' absmax per tensor
    cdef Py_ssize_t table_stride       # entries per slot in c_scales (n_tensors, or a capacity)
    cdef char** c_master               # per tensor: the float32 master param
    cdef char** c_copies               # per tensor: the 16-bit copy's data (NULL: none)
    cdef object _staged_refs           # the arrays those tables point into, kept alive
    cdef int state_typenum[MAX_STATE_SLOTS]    # staged: each slot's storage type number
    cdef int unstaged_type             # the element type before set_storage

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

    @property
    def total_elements(self):
        return int(self.c_offsets[self.n_tensors]) if self.c_offsets != NULL else 0

    cdef char* block_data(self, object block, int typenum=-1) except NULL:
        """The data pointer of a block of this group (checked): one element per
        element of the group's tensors, back to back, of type typenum
        (default: the element type)."""
        if (not cnp.PyArray_Check(block)
                or cnp.PyArray_TYPE(<cnp.ndarray> block)
                != (self.element_type if typenum < 0 else typenum)
                or cnp.PyArray_SIZE(<cnp.ndarray> block) != self.c_offsets[self.n_tensors]
                or not cnp.PyArray_IS_C_CONTIGUOUS(<cnp.ndarray> block)):
            raise ValueError("state block does not match its param group")
        return <char*> cnp.PyArray_DATA(<cnp.ndarray> block)

    cdef void staging(self, Staging* st) noexcept:
        """Fill a kernel's staging for this step's runs (tensor runs: a staged
        plan never fuses)."""
        cdef int s
        st[0] = self._staging
        st.steps = self.run_steps
        st.offsets = self.run_offsets
        st.master = self.c_master if self._staging.master != NULL else NULL
        st.copies = self.c_copies if self._staging.copies != NULL else NULL
        for s in range(MAX_STATE_SLOTS):
            st.scales[s] = self.c_scales + s * self.table_stride

    cdef int _alloc_staging(self) except -1:
        if self._staged_refs is None:
            self._staged_refs = {}
        if self.c_scales == NULL:
            tables = np.zeros((MAX_STATE_SLOTS + 2) * max(self.n_tensors, 1), dtype=np.intp)
            self._staged_refs["tables"] = tables
            self.c_scales = <char**> cnp.PyArray_DATA(tables)
            self.c_master = self.c_scales + MAX_STATE_SLOTS * self.n_tensors
            self.c_copies = self.c_master + self.n_tensors
            self.table_stride = self.n_tensors
        return 0

    def set_storage(self, int param_kind, int grad_kind, tuple state_kinds,
                    tuple state_typenums, tuple nonnegative, bint stochastic=False,
                    unsigned int seed=0):
        """Stage this plan (staging.pxi): the storage kind (KIND_*) of its
        params and grads, and per state slot its kind, its storage's NumPy
        type number and, for INT8 slots, whether its values are never negative
        (the unsigned code map). Float32 math from then on."""
        cdef int s
        if len(state_kinds) > MAX_STATE_SLOTS or len(state_typenums) != len(state_kinds) \
                or len(nonnegative) != len(state_kinds):
            raise ValueError("one kind, type number and sign per state slot")
        self._alloc_staging()
        self.staged = True
        self.unstaged_type = self.element_type
        self.element_type = cnp.NPY_FLOAT32
        self._staging.param_kind = param_kind
        self._staging.grad_kind = grad_kind
        self._staging.stochastic = stochastic
        self._staging.seed = seed
        self._staging.quantized = False
        self._staging.master = NULL
        self._staging.copies = NULL
        for s in range(MAX_STATE_SLOTS):
            self._staging.state_kind[s] = KIND_F32
            self.state_typenum[s] = cnp.NPY_FLOAT32
        for s in range(len(state_kinds)):
            self._staging.state_kind[s] = state_kinds[s]
            self.state_typenum[s] = state_typenums[s]
            self._staging.maps[s] = &UNSIGNED_MAP if nonnegative[s] else &SIGNED_MAP
            if state_kinds[s] == KIND_INT8:
                self._staging.quantized = True

    def unstage(self):
        """Back to the params' own type (after a step staged for its copies)."""
        self.staged = False
        self.element_type = self.unstaged_type
        self._staging.copies = NULL

    def refresh_runs(self):
        """A plan staged after its grads were gathered: use per-tensor runs."""
        if self.staged and self.fused:
            self._use_tensor_runs()

    def set_scales(self, int slot, list scales):
        """An INT8 slot's per-tensor absmax arrays (float32, one per block of
        QBLOCK elements; None: that tensor's state is float32)."""
        cdef Py_ssize_t k
        if slot < 0 or slot >= MAX_STATE_SLOTS or len(scales) != self.n_tensors:
            raise ValueError("one absmax array (or None) per tensor of the group")
        self._alloc_staging()
        for k in range(self.n_tensors):
            self.c_scales[slot * self.table_stride + k] = self._float32_data(
                scales[k], (self.c_offsets[k + 1] - self.c_offsets[k] + QBLOCK - 1) // QBLOCK)
        self._staged_refs[slot] = scales

    def set_master(self, list masters):
        """The float32 master copy of each param (None: no master weights)."""
        self._set_per_tensor(masters, self.c_master, "master")
        self._staging.master = self.c_master if masters is not None else NULL

    def set_copies(self, list copies, int kind=KIND_BF16):
        """Where the next steps also write a 16-bit copy of each updated param
        (a list of arrays of the params' sizes, None entries for none; None:
        no copies)."""
        if copies is not None:
            for k, c in enumerate(copies):
                if c is not None and (not cnp.PyArray_Check(c) or c.dtype.itemsize != 2
                                      or c.size != self.c_offsets[k + 1] - self.c_offsets[k]
                                      or not c.flags.c_contiguous or not c.flags.writeable):
                    raise ValueError(f"copy {k} must be a writeable contiguous 16-bit array "
                                     f"of its param's size")
        self._set_per_tensor(copies, self.c_copies, "copies", check=False)
        self._staging.copies = self.c_copies if copies is not None else NULL
        self._staging.copy_kind = kind

    cdef int _set_per_tensor(self, list arrays, char** table, str name, bint check=True) except -1:
        cdef Py_ssize_t k
        self._alloc_staging()
        if arrays is None:
            self._staged_refs.pop(name, None)
            return 0
        if len(arrays) != self.n_tensors:
            raise ValueError(f"{name}: one array per tensor of the group")
        for k in range(self.n_tensors):
            if arrays[k] is None:
                table[k] = NULL
            elif check:
                table[k] = self._float32_data(arrays[k], self.c_offsets[k + 1] - self.c_offsets[k])
            else:
                table[k] = <char*> cnp.PyArray_DATA(<cnp.ndarray> arrays[k])
        self._staged_refs[name] = arrays
        return 0

    cdef char* _float32_data(self, object a, int64_t size) except? NULL:
        if a is None:
            return NULL
        if (not cnp.PyArray_Check(a) or cnp.PyArray_TYPE(<cnp.ndarray> a) != cnp.NPY_FLOAT32
                or cnp.PyArray_SIZE(<cnp.ndarray> a) != size
                or not cnp.PyArray_IS_C_CONTIGUOUS(<cnp.ndarray> a)
                or not cnp.PyArray_ISWRITEABLE(<cnp.ndarray> a)):
            raise ValueError(f"float32[{size}] writeable contiguous array expected")
        return <char*> cnp.PyArray_DATA(<cnp.ndarray> a)

    cdef char** state_table(self, int slot, object block, bint per_tensor=False) except NULL:
        """The per-run data pointers of one state slot for this step's runs
        (per tensor, whatever the runs, with per_tensor), from a block (one
        contiguous array for the group). Call it after the runs are chosen."""
        if slot < 0 or slot >= MAX_STATE_SLOTS:
            raise ValueError(f"state slot {slot} out of range")
        cdef Py_ssize_t k
        cdef char** table
        if type(block) is list:
            return self._list_table(slot, <list> block)
        cdef char* base = self.block_data(block, self.state_typenum[slot] if self.staged else -1)
        cdef Py_ssize_t itemsize = cnp.PyArray_ITEMSIZE(<cnp.ndarray> block)
        if self.fused and not per_tensor:
            self.fused_state[slot] = base
            return &self.fused_state[slot]
        table = self.c_state + slot * self.n_tensors
        for k in range(self.n_tensors):
            table[k] = base + self.c_offsets[k] * itemsize
        return table

    cdef char** _list_table(self, int slot, list arrays) except NULL:
        """A staged slot held per tensor (int8 states: uint8 codes, or float32
        where the tensor has no scales)."""
        cdef Py_ssize_t k
        cdef char** table = self.c_state + slot * self.n_tensors
        cdef cnp.ndarray a
        cdef int expected
        if not self.staged or len(arrays) != self.n_tensors:
            raise ValueError("a per-tensor state list needs a staged plan and one array per tensor")
        for k in range(self.n_tensors):
            a = arrays[k]
            expected = (cnp.NPY_UINT8 if self.c_scales[slot * self.table_stride + k] != NULL
                        else cnp.NPY_FLOAT32)
            if (cnp.PyArray_TYPE(a) != expected or not cnp.PyArray_IS_C_CONTIGUOUS(a)
                    or cnp.PyArray_SIZE(a) != self.c_offsets[k + 1] - self.c_offsets[k]):
                raise ValueError(f"state slot {slot} of tensor {k} does not match its param")
            table[k] = <char*> cnp.PyArray_DATA(a)
        return table


cdef class GroupPlan(Plan):
    """The plan of a group of NumPy arrays: built once, grads gathered each step."""
    cdef readonly object dtype
    cdef readonly tuple params
    cdef readonly object offsets       # int64[n + 1], prefix sums of sizes
    cdef readonly object steps         # float64[n], the per-tensor step count
    cdef object _param_ptrs, _grad_ptrs, _dims, _ndims, _state_ptrs
    cdef const int64_t* c_dims        # all shapes, concatenated
    cdef const int64_t* c_ndims       # ndim of tensor k; its dims start at c_dims[k * max_ndim]
    cdef int max_ndim
    cdef readonly bint params_contiguous   # params back to back in memory
    cdef int param_typenum             # the params' NumPy type number
    cdef int grad_typenum              # staged: this step's grads' type number

    def __init__(self, params, dtype):
        """params: C-contiguous, aligned, writeable arrays of one dtype (checked by the caller)."""
        self.params = tuple(params)
        self.n_tensors = len(self.params)
        self.dtype = np.dtype(dtype)
        self.element_type = self.dtype.num
        self.param_typenum = self.dtype.num
        self.itemsize = self.dtype.itemsize
        sizes = np.array([p.size for p in self.params], dtype=np.int64)
        self.offsets = np.zeros(self.n_tensors + 1, dtype=np.int64)
        np.cumsum(sizes, out=self.offsets[1:])
        self.steps = np.zeros(self.n_tensors, dtype=np.float64)
        self._param_ptrs = np.array([p.ctypes.data for p in self.params], dtype=np.intp)
        self._grad_ptrs = np.zeros(self.n_tensors, dtype=np.intp)
        self._state_ptrs = np.zeros(MAX_STATE_SLOTS * max(self.n_tensors, 1), dtype=np.intp)
        self.c_state = <char**> cnp.PyArray_DATA(self._state_ptrs)
        self.grad_scale = 1
        self.scalar_float32 = True
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

    cdef bint _grads_fusable(self):
        """Every tensor has a grad, grads are back to back, steps are equal."""
        cdef Py_ssize_t k
        cdef Py_ssize_t itemsize = self.itemsize
        if self.staged or not self.params_contiguous or self.c_grads[0] == NULL:
            return False
        for k in range(self.n_tensors):
            if (self.c_grads[k] != self.c_grads[0] + self.c_offsets[k] * itemsize
                    or self.c_steps[k] != self.c_steps[0]):
                return False
        return True

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
        self.n_active = 0
        for k in range(self.n_tensors):
            g = grads[first + k]
            if g is None:
                self.c_grads[k] = NULL
                continue
            code[0] = self._check(g, k)
            if code[0] != GRAD_OK:
                return k
            n_active += 1
            self.n_active = n_active
            self.c_grads[k] = <char*> cnp.PyArray_DATA(<cnp.ndarray> g)
            active += self.c_offsets[k + 1] - self.c_offsets[k]
        self.active_elements = active
        self.n_active = n_active
        if self.staged:
            self._staging.grad_kind = (KIND_F32 if self.grad_typenum == cnp.NPY_FLOAT32
                                       else self._staging.param_kind)
        if self._grads_fusable():
            self._use_fused_run()
        else:
            self._use_tensor_runs()
        return -1

    cdef int _check(self, object g, Py_ssize_t k):
        if not cnp.PyArray_Check(g):
            return GRAD_NOT_ARRAY
        cdef cnp.ndarray a = <cnp.ndarray> g
        cdef int typenum = cnp.PyArray_TYPE(a)
        if self.staged:
            # A staged group's grads: all in the params' dtype, or all float32.
            if typenum != self.grad_typenum:
                if self.n_active > 0 or typenum not in (self.param_typenum, cnp.NPY_FLOAT32):
                    return GRAD_DTYPE
                self.grad_typenum = typenum
        elif typenum != self.element_type:
            return GRAD_DTYPE
        if not cnp.PyArray_ISNOTSWAPPED(a):
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


cdef double* tensor_state_data(Plan plan, object values, str name) except NULL:
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
