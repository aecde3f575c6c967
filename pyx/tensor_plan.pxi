# TensorPlan: the plan of one torch param group, gathered at every step.
#
# cyoptim.torch keeps no pointer from one step to the next: at every step
# TensorPlan.gather() reads the params, their grads and their state tensors
# from the live objects (param_groups and optimizer.state, which the outside
# world may have swapped, reassigned or replaced since the last step), checks
# each, and records their data pointers. So a stale pointer is never written.
# Torch is never imported here (the build does not need it): tensors are used
# through their Python methods, and the few torch objects compared against
# (the Tensor type, the strided layout, the supported dtypes) are handed in.
#
# A gathered plan covers the params that have a grad this step (torch skips the
# others); each run is one tensor. Scalar state (step, NAdam's mu_product) is
# read from its 0-d tensors into float64 arrays and written back after the
# kernel, in the tensor's own dtype, as torch's in-place ops would.
#
# Sharded params (torch.distributed's DTensor, as FSDP2 makes them): the kernel
# steps each rank's local shard. A DTensor param's grad and state tensors must
# be DTensors of the same device mesh and placements (as torch.optim creates
# them); every check and every pointer is then that of the tensor's
# ``to_local()``, its own memory (no copy). A tensor whose data pointer is not
# its memory (a DTensor's is 0) is refused, never read or written.

from libc.stdint cimport uintptr_t
from cpython.ref cimport PyObject
from cpython.object cimport PyObject_TypeCheck, PyTypeObject
from cpython.weakref cimport PyWeakref_NewRef, PyWeakref_GetObject

# The gather result codes; cyoptim.torch turns them into messages.
TENSOR_OK = 0
TENSOR_NOT_TENSOR = 1     # not a torch.Tensor
TENSOR_DEVICE = 2         # not on the CPU
TENSOR_LAYOUT = 3         # sparse or another non-strided layout
TENSOR_DTYPE = 4          # unsupported dtype, or not the dtype it must share
TENSOR_SHAPE = 5          # not the param's shape
TENSOR_CONTIGUOUS = 6     # not contiguous
TENSOR_NOT_SCALAR = 7     # a scalar state that is not a one-element float tensor
TENSOR_MISSING = 8        # a state entry this step needs is not there yet
TENSOR_NO_DATA = 9        # no memory of its own behind data_ptr() (a tensor subclass)
TENSOR_PLACEMENT = 10     # a DTensor where the param is plain, or the other way round,
                          # or a DTensor of another mesh or other placements

# What an error is about (the second field of a gather error).
WHAT_PARAM = 0
WHAT_GRAD = 1
WHAT_STATE = 2            # + the slot: the kernel's block of that index
WHAT_SCALAR = 100         # + the index in scalar_names ("step" is -1: WHAT_STEP)
WHAT_STEP = 99

# Where a zero-element tensor's data pointer is NULL: a kernel reads no
# element of it, but a NULL grad would mean "no grad".
cdef char _EMPTY[64]


cdef class _Checked:
    """What an earlier gather checked for one param: weak references to the
    param and to each state tensor it checked, and their data pointers then.

    A tensor that is the same object with the same data pointer was checked
    (layout, device, dtype, shape) and cannot have changed those without a new
    data pointer, so a later step skips those checks. The param's contiguity
    is checked every step all the same (``p.data = p.data.t()`` keeps the
    pointer). Weak references: the cache keeps no tensor alive, and a freed
    tensor never matches.
    """
    cdef object param_ref, dtype
    cdef char* param_data
    cdef int64_t size
    cdef list refs             # per entry (slots, step, scalars): a weakref or None
    cdef list datas            # their data pointers (as ints)
    cdef list wide             # scalar entries: whether the tensor is float64

    @staticmethod
    cdef _Checked of(object p, char* data, object dtype, int64_t size, Py_ssize_t n):
        """A record of param p (its data, dtype, size), with n empty entries."""
        cdef _Checked c = _Checked.__new__(_Checked)
        c.param_ref = PyWeakref_NewRef(p, None)
        c.param_data = data
        c.dtype = dtype
        c.size = size
        c.refs = [None] * n
        c.datas = [0] * n
        c.wide = [False] * n
        return c

    cdef inline bint is_param(self, object p):
        return <object> PyWeakref_GetObject(self.param_ref) is p

    cdef inline char* known(self, Py_ssize_t j, object t, object local) except? NULL:
        """The data of t (local: t, or its local shard) when t is the tensor
        checked at entry j and still has that data; else NULL."""
        cdef object ref = self.refs[j]
        cdef char* data
        if ref is None or <object> PyWeakref_GetObject(ref) is not t:
            return NULL
        data = _data(local)
        return data if <intptr_t> data == <intptr_t> self.datas[j] else NULL

    cdef inline void remember(self, Py_ssize_t j, object t, char* data, bint wide=False):
        self.refs[j] = PyWeakref_NewRef(t, None)
        self.datas[j] = <intptr_t> data
        self.wide[j] = wide


cdef class TensorPlan(Plan):
    """One torch param group, for one step (see above)."""
    cdef object _ptrs                  # intp[...]: the pointer tables' memory
    cdef object _offsets               # int64[n + 1]
    cdef readonly object steps         # float64[n]: this step's count per tensor
    cdef readonly object scalars       # float64[n_scalars, n]: scalar state values
    cdef object _step_ptrs, _scalar_ptrs, _step_double, _scalar_double
    cdef int _gathered                 # bit s: state slot s was gathered
    cdef Py_ssize_t capacity
    cdef readonly list missing         # (tensor index k, param, name): state entries to create
    cdef readonly object dtype         # the torch dtype of the group this step
    cdef readonly list stepped         # the params this step updates
    cdef list _checked                 # per param of the group: a _Checked or None

    def __cinit__(self):
        self.capacity = -1
        self._checked = []

    def forget(self):
        """Drop what earlier steps checked (the next gather checks everything)."""
        self._checked = []

    cdef _reserve(self, Py_ssize_t n, Py_ssize_t n_scalars):
        """Tables for n tensors (kept between steps, grown when needed)."""
        if n <= self.capacity and self.scalars.shape[0] == n_scalars:
            return
        cdef Py_ssize_t cap = max(n, 2 * self.capacity, 8)
        # params, grads, steps' room, state slots; then staging: scales per
        # slot, masters, copies.
        self._ptrs = np.zeros((5 + 2 * MAX_STATE_SLOTS) * cap, dtype=np.intp)
        self._offsets = np.zeros(cap + 1, dtype=np.int64)
        self.steps = np.zeros(cap, dtype=np.float64)
        self.scalars = np.zeros((n_scalars, cap), dtype=np.float64)
        self._step_ptrs = np.zeros(cap, dtype=np.intp)
        self._step_double = np.zeros(cap, dtype=np.uint8)
        self._scalar_ptrs = np.zeros((max(n_scalars, 1), cap), dtype=np.intp)
        self._scalar_double = np.zeros((max(n_scalars, 1), cap), dtype=np.uint8)
        cdef char** base = <char**> cnp.PyArray_DATA(self._ptrs)
        self.c_params = base
        self.c_grads = base + cap
        self.c_state = base + 2 * cap
        self.c_scales = base + (3 + MAX_STATE_SLOTS) * cap
        self.c_master = self.c_scales + MAX_STATE_SLOTS * cap
        self.c_copies = self.c_master + cap
        self.table_stride = cap
        self.c_offsets = <int64_t*> cnp.PyArray_DATA(self._offsets)
        self.c_steps = <double*> cnp.PyArray_DATA(self.steps)
        self.capacity = cap

    def gather(self, list params, object state, tuple slot_names, tuple scalar_names,
               bint has_step, object tensor_type, object strided, dict dtypes,
               object state_shape=None, object local_type=None, object staging=None,
               list copies=None, int copy_kind=KIND_BF16):
        """Check one group and record its pointers; write nothing but this plan.

        params: the group's params. state: optimizer.state (read with .get,
        never written). slot_names: per state slot of the kernel, the state
        name this step needs, or None. scalar_names: per-tensor scalar states
        (one-element tensors in the state, as NAdam's mu_product). has_step:
        whether the state holds "step". dtypes: torch dtype -> (NumPy type
        number, itemsize) of the supported dtypes. state_shape: None when
        every state tensor has its param's shape; else a function (state
        name, param shape) -> the state's shape, or None when that param has
        no such state (its table entry is then NULL, and nothing is missing).
        local_type: the DTensor class when torch.distributed.tensor is loaded,
        else None; its instances are stepped through ``to_local()`` (call
        gather under torch.no_grad(), where that is the shard itself, not an
        autograd view). staging: None, or for a staged plan (set_storage) a
        TensorStaging: the dtypes its grads and states must have, and the
        names of the master and int8 scale entries. copies: None, or per
        param a 16-bit tensor (checked by the caller) or None: where a staged
        step also writes the updated param rounded (copy_kind: KIND_BF16 or
        KIND_F16).

        Returns None when every tensor is usable (self.missing then lists the
        state entries to create), else (param index in the group, what, code):
        what is WHAT_PARAM, WHAT_GRAD, WHAT_STEP, WHAT_STATE + slot or
        WHAT_SCALAR + index.
        """
        cdef Py_ssize_t n_params = len(params), i, k = 0, s
        cdef Py_ssize_t n_scalars = len(scalar_names)
        cdef int code
        cdef int64_t size, total = 0
        cdef object p, g, entry, t, dtype, first_dtype = None, shape
        cdef object lp, lg, lt         # the tensors whose memory is used: locals of DTensors
        cdef bint sharded
        cdef char** table
        self._reserve(n_params, n_scalars)
        self.n_tensors = 0
        self.missing = []
        self.stepped = []
        self._gathered = 0
        self.grad_scale = 1
        self.scalar_float32 = True
        for s in range(len(slot_names)):
            if slot_names[s] is not None:
                self._gathered |= 1 << s
        cdef double[:, ::1] scalars = self.scalars
        cdef intptr_t[:, ::1] scalar_ptrs = self._scalar_ptrs
        cdef unsigned char[:, ::1] scalar_double = self._scalar_double
        cdef intptr_t[::1] step_ptrs = self._step_ptrs
        cdef unsigned char[::1] step_double = self._step_double
        cdef Py_ssize_t n_slots = len(slot_names), j_step = n_slots
        cdef Py_ssize_t n_entries = n_slots + 1 + n_scalars
        cdef _Checked seen
        cdef char* data
        cdef char* param_data
        cdef char* grad_data
        cdef object grad_dtype = None          # the dtype of this step's grads
        cdef TensorStaging staged = staging
        if staged is not None and not self.staged:
            raise ValueError("staging given for a plan without set_storage()")
        if local_type is not None and not isinstance(local_type, type):
            raise TypeError(f"local_type must be a class or None, got {local_type!r}")
        if len(self._checked) != n_params:
            self._checked = [None] * n_params
        for i in range(n_params):
            p = params[i]
            if not isinstance(p, tensor_type):
                return i, WHAT_PARAM, TENSOR_NOT_TENSOR
            g = p.grad
            if g is None:
                continue
            sharded = _is_a(p, local_type)
            lp = p.to_local() if sharded else p
            seen = self._checked[i]
            param_data = _data(lp)
            if (seen is not None and seen.is_param(p) and param_data == seen.param_data
                    and param_data != NULL and lp.is_contiguous()):
                dtype = seen.dtype
                size = seen.size
            else:
                code = _check_tensor(lp, strided, dtypes, None, None)
                if code != TENSOR_OK:
                    return i, WHAT_PARAM, code
                if param_data == NULL:
                    return i, WHAT_PARAM, TENSOR_NO_DATA
                dtype = lp.dtype
                size = lp.numel()
                seen = _Checked.of(p, param_data, dtype, size, n_entries)
                self._checked[i] = seen
            if first_dtype is None:
                first_dtype = dtype
                self.element_type, self.itemsize = dtypes[first_dtype]
            elif dtype is not first_dtype:
                return i, WHAT_PARAM, TENSOR_DTYPE
            if not isinstance(g, tensor_type):
                return i, WHAT_GRAD, TENSOR_NOT_TENSOR
            if not _placed_as(g, p, sharded, local_type):
                return i, WHAT_GRAD, TENSOR_PLACEMENT
            lg = g.to_local() if sharded else g
            code = _check_tensor(lg, strided, dtypes,
                                 first_dtype if grad_dtype is None else grad_dtype, lp.shape)
            if code == TENSOR_DTYPE and grad_dtype is None and staged is not None:
                # A staged group's grads: all in the params' dtype, or all float32.
                code = _check_tensor(lg, strided, dtypes, staged.grad_dtype, lp.shape)
            if code != TENSOR_OK:
                return i, WHAT_GRAD, code
            if grad_dtype is None:
                grad_dtype = lg.dtype
            grad_data = _data(lg)
            if grad_data == NULL:
                return i, WHAT_GRAD, TENSOR_NO_DATA
            entry = state.get(p)
            for s in range(n_slots):
                if slot_names[s] is None:
                    continue
                shape = lp.shape
                if state_shape is not None:
                    shape = state_shape(slot_names[s], shape)
                    if shape is None:
                        self.c_state[s * self.capacity + k] = NULL
                        continue
                t = entry.get(slot_names[s]) if entry is not None else None
                if t is None:
                    self.missing.append((k, p, slot_names[s]))
                    continue
                lt = t.to_local() if sharded and _is_a(t, local_type) else t
                data = seen.known(s, t, lt)
                if data == NULL:
                    if not isinstance(t, tensor_type):
                        return i, WHAT_STATE + s, TENSOR_NOT_TENSOR
                    if not _placed_as(t, p, sharded, local_type):
                        return i, WHAT_STATE + s, TENSOR_PLACEMENT
                    code = _check_tensor(lt, strided, dtypes, first_dtype if staged is None
                                         else staged.dtype_of(size), shape)
                    if code != TENSOR_OK:
                        return i, WHAT_STATE + s, code
                    data = _data(lt)
                    if data == NULL:
                        return i, WHAT_STATE + s, TENSOR_NO_DATA
                    seen.remember(s, t, data)
                self.c_state[s * self.capacity + k] = data
                if staged is not None:
                    code = self._gather_staged(staged, s, k, entry, slot_names[s], size, sharded,
                                               local_type, strided)
                    if code != TENSOR_OK:
                        return i, WHAT_STATE + s, code
            if staged is not None and staged.master is not None:
                code = self._gather_master(staged.master, k, p, entry, size)
                if code != TENSOR_OK:
                    return i, WHAT_MASTER, code
            if has_step:
                t = entry.get("step") if entry is not None else None
                if t is None:
                    step_ptrs[k] = 0
                    self.missing.append((k, p, "step"))
                else:
                    data = _scalar_data(seen, j_step, t, tensor_type, strided, &code)
                    if data == NULL:
                        return i, WHAT_STEP, code
                    step_ptrs[k] = <intptr_t> data
                    step_double[k] = seen.wide[j_step]
            for s in range(n_scalars):
                t = entry.get(scalar_names[s]) if entry is not None else None
                if t is None:
                    self.missing.append((k, p, scalar_names[s]))
                    continue
                data = _scalar_data(seen, j_step + 1 + s, t, tensor_type, strided, &code)
                if data == NULL:
                    return i, WHAT_SCALAR + s, code
                scalar_ptrs[s, k] = <intptr_t> data
                scalar_double[s, k] = seen.wide[j_step + 1 + s]
                self.scalar_float32 = not scalar_double[s, k]
                scalars[s, k] = _load(<char*> scalar_ptrs[s, k], scalar_double[s, k])
            self.stepped.append(p)
            if copies is not None:
                self.c_copies[k] = _data(copies[i]) if copies[i] is not None else NULL
            self.c_params[k] = param_data
            self.c_grads[k] = grad_data
            self.c_offsets[k] = total
            total += size
            k += 1
        self.c_offsets[k] = total
        self.n_tensors = k
        self.n_active = k
        self.active_elements = total
        self.dtype = first_dtype
        if staged is not None:
            self._staging.grad_kind = (KIND_F32 if grad_dtype is staged.grad_dtype
                                       else self._staging.param_kind)
            self._staging.master = self.c_master if staged.master is not None else NULL
        self._staging.copies = self.c_copies if copies is not None else NULL
        self._staging.copy_kind = copy_kind
        self._use_tensor_runs()
        if not self.missing:
            self._read_steps()
        return None

    cdef int _gather_staged(self, TensorStaging staged, Py_ssize_t s, Py_ssize_t k,
                            object entry, str name, int64_t size, bint sharded,
                            object local_type, object strided) except -1:
        """Slot s's int8 scales (the absmax entry, float32, one per block) of
        tensor k; NULL for a state stored plainly."""
        cdef object t
        cdef char* data
        cdef int code
        self.c_scales[s * self.capacity + k] = NULL
        if not staged.quantizes(size):
            return TENSOR_OK
        t = entry.get(name + "_absmax")
        if t is None:
            return TENSOR_MISSING
        if sharded and _is_a(t, local_type):
            t = t.to_local()
        code = _check_tensor(t, strided, {}, staged.scale_dtype, ((size + QBLOCK - 1) // QBLOCK,))
        if code != TENSOR_OK:
            return code
        data = _data(t)
        if data == NULL:
            return TENSOR_NO_DATA
        self.c_scales[s * self.capacity + k] = data
        return TENSOR_OK

    cdef int _gather_master(self, str name, Py_ssize_t k, object p, object entry,
                            int64_t size) except -1:
        """Tensor k's float32 master copy (created with the state when missing)."""
        cdef object t = entry.get(name) if entry is not None else None
        cdef char* data
        self.c_master[k] = NULL
        if t is None:
            self.missing.append((k, p, name))
            return TENSOR_OK
        if t.dtype.itemsize != 4 or not t.is_floating_point() or t.numel() != size \
                or not t.is_contiguous() or not t.is_cpu:
            return TENSOR_DTYPE
        data = _data(t)
        if data == NULL:
            return TENSOR_NO_DATA
        self.c_master[k] = data
        return TENSOR_OK

    cdef void _read_steps(self):
        cdef Py_ssize_t k
        cdef intptr_t[::1] step_ptrs = self._step_ptrs
        cdef unsigned char[::1] step_double = self._step_double
        for k in range(self.n_tensors):
            self.c_steps[k] = _load(<char*> step_ptrs[k], step_double[k]) if step_ptrs[k] else 0

    def advance(self, bint has_step):
        """Count one more step per tensor: in its step tensor (torch's
        ``step += 1``, in the tensor's dtype) and in this plan."""
        cdef Py_ssize_t k
        cdef intptr_t[::1] step_ptrs = self._step_ptrs
        cdef unsigned char[::1] step_double = self._step_double
        cdef float f
        if not has_step:
            for k in range(self.n_tensors):
                self.c_steps[k] += 1
            return
        for k in range(self.n_tensors):
            if step_double[k]:
                (<double*> step_ptrs[k])[0] += 1
                self.c_steps[k] = (<double*> step_ptrs[k])[0]
            else:
                f = (<float*> step_ptrs[k])[0] + <float> 1
                (<float*> step_ptrs[k])[0] = f
                self.c_steps[k] = f

    def store_scalars(self):
        """Write the scalar states back into their tensors (in their dtype)."""
        cdef Py_ssize_t s, k
        cdef double[:, ::1] scalars = self.scalars
        cdef intptr_t[:, ::1] scalar_ptrs = self._scalar_ptrs
        cdef unsigned char[:, ::1] scalar_double = self._scalar_double
        for s in range(scalars.shape[0]):
            for k in range(self.n_tensors):
                if scalar_double[s, k]:
                    (<double*> scalar_ptrs[s, k])[0] = scalars[s, k]
                else:
                    (<float*> scalar_ptrs[s, k])[0] = <float> scalars[s, k]

    def scalar_values(self, Py_ssize_t s):
        """float64[n_tensors]: a view of scalar state s for the kernel."""
        return self.scalars[s, :self.n_tensors]

    cdef char** state_table(self, int slot, object block, bint per_tensor=False) except NULL:
        """A gathered slot's table; or, for a scratch block of the group (an
        array with one element per element of this step's tensors), its
        per-tensor pointers."""
        if slot < 0 or slot >= MAX_STATE_SLOTS:
            raise ValueError(f"state slot {slot} out of range")
        cdef char** table = self.c_state + slot * self.capacity
        cdef char* base
        cdef Py_ssize_t k
        if cnp.PyArray_Check(block):
            base = self.block_data(block)
            for k in range(self.n_tensors):
                table[k] = base + self.c_offsets[k] * self.itemsize
            self._gathered |= 1 << slot
        elif not (self._gathered >> slot & 1):
            raise ValueError(f"state slot {slot} was not gathered for this step")
        return table


WHAT_MASTER = 98


cdef class TensorStaging:
    """What a staged TensorPlan.gather checks beyond a plain one: the dtype of
    float32 grads (the params' own dtype is accepted too), the dtype of the
    state tensors (int8 states: uint8 codes from quantized_min elements on,
    float32 below), the dtype of the scales, the master entry's name."""
    cdef readonly object grad_dtype, state_dtype, small_state_dtype, scale_dtype
    cdef readonly object master
    cdef readonly int64_t quantized_min

    def __init__(self, grad_dtype, state_dtype, small_state_dtype=None, scale_dtype=None,
                 master=None, int64_t quantized_min=0):
        self.grad_dtype = grad_dtype
        self.state_dtype = state_dtype
        self.small_state_dtype = small_state_dtype
        self.scale_dtype = scale_dtype
        self.master = master
        self.quantized_min = quantized_min

    cdef inline bint quantizes(self, int64_t size):
        return self.quantized_min > 0 and size >= self.quantized_min

    cdef inline object dtype_of(self, int64_t size):
        return (self.small_state_dtype if self.quantized_min > 0 and size < self.quantized_min
                else self.state_dtype)


cdef inline char* _data(object t) except? NULL:
    """t's memory; NULL when data_ptr() is not an address: a tensor subclass
    without storage of its own (a DTensor not unwrapped, a functional wrapper)
    reports 0 or raises, and a kernel must never take that for an address."""
    cdef uintptr_t address
    try:
        address = t.data_ptr()
    except RuntimeError:
        return NULL
    if address:
        return <char*> address
    return _EMPTY if t.numel() == 0 else NULL


cdef char* _scalar_data(_Checked seen, Py_ssize_t j, object t, object tensor_type,
                        object strided, int* code) except? NULL:
    """The data of scalar state t (a step, a mu_product) at entry j of seen:
    checked unless an earlier step checked this tensor; NULL with code set
    when it cannot be used."""
    cdef char* data = seen.known(j, t, t)
    if data != NULL:
        return data
    code[0] = _check_scalar(t, tensor_type, strided)
    if code[0] != TENSOR_OK:
        return NULL
    data = _data(t)
    if data == NULL:
        code[0] = TENSOR_NO_DATA
        return NULL
    seen.remember(j, t, data, t.dtype.itemsize == 8)
    return data


cdef inline double _load(char* address, bint is_double) noexcept:
    return (<double*> address)[0] if is_double else (<float*> address)[0]


cdef int _check_tensor(object t, object strided, dict dtypes, object dtype,
                       object shape) except -1:
    """A dense contiguous CPU tensor of a supported dtype (and of dtype and
    shape, when given)."""
    if t.layout is not strided:
        return TENSOR_LAYOUT
    if not t.is_cpu:
        return TENSOR_DEVICE
    if dtype is None:
        if t.dtype not in dtypes:
            return TENSOR_DTYPE
    elif t.dtype is not dtype:
        return TENSOR_DTYPE
    if shape is not None and t.shape != shape:
        return TENSOR_SHAPE
    if not t.is_contiguous():
        return TENSOR_CONTIGUOUS
    return TENSOR_OK


cdef inline bint _is_a(object t, object cls):
    """isinstance(t, cls) by t's type alone (cls None: False): a fraction of
    isinstance's cost, which matters once per tensor per step."""
    return cls is not None and PyObject_TypeCheck(t, <PyTypeObject*> cls)


cdef bint _placed_as(object t, object p, bint sharded, object local_type):
    """t (a grad or state tensor of p) is a DTensor exactly when p is, and
    then one of p's device mesh and placements: its local shard is then the
    part of t that p's local shard needs."""
    if local_type is None:
        return True
    if not sharded:
        return not _is_a(t, local_type)
    return (_is_a(t, local_type) and t.device_mesh == p.device_mesh
            and t.placements == p.placements)


cdef int _check_scalar(object t, object tensor_type, object strided) except -1:
    """A one-element float32 or float64 CPU tensor (torch's step, mu_product)."""
    if not isinstance(t, tensor_type):
        return TENSOR_NOT_SCALAR
    if t.layout is not strided:
        return TENSOR_LAYOUT
    if not t.is_cpu:
        return TENSOR_DEVICE
    if not t.is_floating_point() or t.element_size() not in (4, 8) or t.numel() != 1:
        return TENSOR_NOT_SCALAR
    return TENSOR_OK
