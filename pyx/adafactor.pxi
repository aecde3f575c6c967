# Adafactor (torch.optim.Adafactor 2.13, _single_tensor_adafactor), with its
# own three-pass driver (the registry: driver="custom"; AdafactorHyper,
# AdafactorRun and _adafactor_runs are generated).
#
# Per tensor, from its step count t, in double (torch's Python scalars):
#   w     = t^beta2_decay                         (torch's one_minus_beta2_t)
#   rho   = min(lr, 1 / t^0.5)
#   alpha = max(eps2, fl(||p||) / numel^0.5) * rho   (p before the weight decay)
# Per element, in the param's precision (constants cast to it first):
#   g = -g                                        if maximize
#   p = p * (1 - lr*wd)
# A tensor of two or more dims is factored over its last two (a batch of
# R x C matrices: every leading dim is a batch dim):
#   row_mean[i] = fl(||g[i, :]||)^2 / C,   col_mean[j] = fl(||g[:, j]||)^2 / R
#   row_var = lerp(row_var, row_mean, w),  col_var = lerp(col_var, col_mean, w)
#   m = max(fl(sum_i row_var[i]) / R, eps1)       per matrix (NaN stays NaN, as clamp_)
#   v = (row_var[i] * col_var[j]) / m
# A tensor of zero or one dims is not:
#   variance = lerp(variance, g*g, w),     v = variance
# then, for every tensor:
#   u = (1 / sqrt(max(v, eps1*eps1))) * g
#   s = -alpha / max(1, fl(||u||) / (numel^0.5 * d))
#   p = p + s*u
# fl(x): x rounded to the param's precision (torch computes norms and means in
# it); the sums themselves are in double here. eps1 defaults to the machine
# epsilon of the param's dtype (torch's finfo(dtype).eps). max and min are
# Python's: max(eps2, NaN) is eps2, so a NaN never reaches alpha or s through
# a norm (it does through u).
#
# Reductions (docs/contract.md §4): bitwise the same for any thread count.
# - ||p|| and ||u||: sums over the fixed chunks of reductions.pxi, combined in
#   chunk order.
# - Row and column sums of g*g: each matrix is cut into TILES of at most
#   ADAFACTOR_TILE_COLS columns and about ADAFACTOR_TILE elements (the tile
#   shape depends on R and C only). A tile stores, per row, the row segment's
#   sum (8 interleaved lanes: sum_sq) and, per column, the sum over its rows
#   in row order; a row's sum is its segments' sums in column order, a
#   column's sum its tiles' sums in row order. Small matrices are one tile,
#   and a task takes several of them.
# - The mean of row_var per matrix: a sum over 8 interleaved lanes, as sum_sq.
# cyoptim.reference.adafactor computes every one of these sums the same way.
#
# A step is three threaded passes over the group, and two short serial steps
# between them (one thread; work in the rows and columns, not the elements):
#   pass 1: per chunk: ||p||^2; for an unfactored tensor also variance and
#           ||u||^2 (u into a chunk-sized buffer); per tile of a factored
#           tensor: the row and column sums of g*g.
#   then:   row_var, col_var and m of every matrix; alpha of every tensor; s
#           of the unfactored ones.
#   pass 2: per chunk of a factored tensor: ||u||^2.   then: s of those.
#   pass 3: per chunk: u again, p = p*(1 - lr*wd) + s*u.
# u is computed twice (three for a factored tensor) instead of stored: a
# param-sized scratch block would cost the memory Adafactor exists to save.
# Grads are divided by grad_scale in pass 1, by the task that reads them
# first (a tile for factored tensors, a chunk for the others).

from libc.float cimport FLT_EPSILON, DBL_EPSILON
from libc.string cimport memset

cdef enum:
    ADAFACTOR_TILE_COLS = 1024     # the widest tile (columns); a multiple of REDUCE_LANES
    ADAFACTOR_TILE = 32768         # the elements a tile aims at

cdef int64_t ADAFACTOR_TASKS_PER_THREAD = 1


cdef struct AdafactorTensor:
    bint factored
    int64_t batch, rows, cols      # factored: batch matrices of rows x cols
    int64_t tile_cols, tile_rows   # a tile's width and height
    int64_t n_col_blocks, n_row_blocks
    int64_t row_part               # its first row partial (row_part array)
    int64_t col_part               # its first column partial (col_part array)
    int64_t matrix                 # its first entry of matrix_mean
    double scale                   # alpha, then -alpha/denom


cdef struct AdafactorTile:
    Py_ssize_t tensor
    int64_t b0, nb                 # matrices b0 .. b0 + nb - 1 (nb > 1: whole matrices)
    int64_t rb, q                  # its row block and column block


cdef struct AdafactorArgs:
    AdafactorHyper h
    const AdafactorRun* runs       # per tensor: w and rho
    AdafactorTensor* tensors
    char** params
    char** grads
    char** row_var                 # per tensor: the state's data (where it has that state)
    char** col_var
    char** variance
    double grad_scale              # grads are divided by it first, unless it is 1
    Chunks chunks
    double* p_sq                   # per chunk: sum p*p
    double* u_sq                   # per chunk: sum u*u
    AdafactorTile* tiles
    int64_t n_tiles
    double* row_part               # per row of a matrix and column block: its sum of g*g
    double* col_part               # per column of a matrix and row block: its sum of g*g
    double* matrix_mean            # per matrix: m, in the param's precision
    int64_t chunks_per_task
    int64_t n_chunk_tasks
    int pass_number
    int element_type


cdef inline void adafactor_run(const AdafactorHyper* h, double step,
                               AdafactorRun* r) noexcept nogil:
    cdef double inverse_sqrt = 1 / pow(step, 0.5)
    r.beta2_weight = pow(step, h.beta2_decay)
    r.rho = inverse_sqrt if inverse_sqrt < h.lr else h.lr       # Python's min(lr, x)


cdef inline void adafactor_elements(const floating* g, floating* variance, floating* u,
                                    int64_t n, const AdafactorHyper* h,
                                    const AdafactorRun* r) noexcept nogil:
    """Pass 1 of an unfactored tensor: variance = lerp(variance, g*g, w), u."""
    cdef floating flip = -1 if h.maximize else 1
    cdef floating w = <floating> r.beta2_weight
    cdef floating floor = <floating> (h.eps1 * h.eps1)
    cdef floating one = 1
    cdef floating gi, vi
    cdef int64_t i
    for i in range(n):
        gi = g[i] * flip
        vi = lerp(variance[i], gi * gi, w)
        variance[i] = vi
        u[i] = (one / fsqrt(nan_max(vi, floor))) * gi


cdef inline void _adafactor_vector_u(const floating* g, const floating* variance, floating* u,
                                     int64_t n, const AdafactorHyper* h) noexcept nogil:
    """u of an unfactored tensor from its updated variance."""
    cdef floating flip = -1 if h.maximize else 1
    cdef floating floor = <floating> (h.eps1 * h.eps1)
    cdef floating one = 1
    cdef int64_t i
    for i in range(n):
        u[i] = (one / fsqrt(nan_max(variance[i], floor))) * (g[i] * flip)


cdef inline void _adafactor_row_u(const floating* g, floating r, const floating* c,
                                  floating m, floating* u, int64_t n,
                                  const AdafactorHyper* h) noexcept nogil:
    """u along one row segment of a factored tensor: v = (r * c) / m."""
    cdef floating flip = -1 if h.maximize else 1
    cdef floating floor = <floating> (h.eps1 * h.eps1)
    cdef floating one = 1
    cdef floating v
    cdef int64_t j
    for j in range(n):
        v = (r * c[j]) / m
        u[j] = (one / fsqrt(nan_max(v, floor))) * (g[j] * flip)


cdef inline void _adafactor_factored_u(const floating* g, const floating* row_var,
                                       const floating* col_var, const double* mean,
                                       floating* u, int64_t start, int64_t count,
                                       const AdafactorTensor* t,
                                       const AdafactorHyper* h) noexcept nogil:
    """u of elements [start, start + count) of a factored tensor (g: its first element)."""
    cdef int64_t e = start, end = start + count, row, j0, seg, b
    while e < end:
        row = e // t.cols                  # b * rows + i
        j0 = e - row * t.cols
        seg = min(t.cols - j0, end - e)
        b = row // t.rows
        _adafactor_row_u(g + e, row_var[row], col_var + b * t.cols + j0,
                         <floating> mean[b], u + (e - start), seg, h)
        e += seg


cdef inline void _adafactor_apply(floating* p, const floating* u, int64_t n, double decay,
                                  double scale) noexcept nogil:
    """p = p * decay + scale * u (decay is 1 without weight decay: p * 1 is p)."""
    cdef floating c = <floating> decay
    cdef floating s = <floating> scale
    cdef int64_t i
    for i in range(n):
        p[i] = p[i] * c + s * u[i]


cdef inline void _adafactor_columns(const floating* x, double* acc, int64_t n,
                                    bint first) noexcept nogil:
    """acc[j] += x[j]^2 in double (acc[j] = x[j]^2 for a tile's first row)."""
    cdef double xj
    cdef int64_t j
    if first:
        for j in range(n):
            xj = x[j]
            acc[j] = xj * xj
    else:
        for j in range(n):
            xj = x[j]
            acc[j] = acc[j] + xj * xj


cdef void _adafactor_tile(const AdafactorArgs* a, int64_t index) noexcept nogil:
    """Pass 1 on one tile: its rows' segment sums and its columns' sums of g*g."""
    cdef const AdafactorTile* tile = &a.tiles[index]
    cdef const AdafactorTensor* t = &a.tensors[tile.tensor]
    cdef int64_t r0 = tile.rb * t.tile_rows, c0 = tile.q * t.tile_cols
    cdef int64_t nr = min(t.tile_rows, t.rows - r0), nc = min(t.tile_cols, t.cols - c0)
    cdef int64_t b, i, row
    cdef double* cols
    cdef char* g = a.grads[tile.tensor]
    for b in range(tile.b0, tile.b0 + tile.nb):
        cols = a.col_part + t.col_part + (b * t.n_row_blocks + tile.rb) * t.cols + c0
        for i in range(nr):
            row = b * t.rows + r0 + i
            if a.element_type == cnp.NPY_FLOAT64:
                _adafactor_tile_row(<double*> g + row * t.cols + c0, nc, a.grad_scale,
                                    &a.row_part[t.row_part + tile.q * t.batch * t.rows + row],
                                    cols, i == 0)
            else:
                _adafactor_tile_row(<float*> g + row * t.cols + c0, nc, a.grad_scale,
                                    &a.row_part[t.row_part + tile.q * t.batch * t.rows + row],
                                    cols, i == 0)


cdef inline void _adafactor_tile_row(floating* x, int64_t n, double grad_scale,
                                     double* row_sum, double* cols, bint first) noexcept nogil:
    if grad_scale != 1:
        unscale(x, n, grad_scale)
    row_sum[0] = sum_sq(x, n)
    _adafactor_columns(x, cols, n, first)


cdef void _adafactor_chunk(const AdafactorArgs* a, Py_ssize_t c, void* buffer) noexcept nogil:
    """One chunk of one pass (buffer: room for a chunk of u)."""
    cdef Py_ssize_t k = a.chunks.tensor[c]
    if a.element_type == cnp.NPY_FLOAT64:
        _adafactor_chunk_typed(a, c, k, <double*> a.params[k], <double*> a.grads[k],
                               <double*> buffer)
    else:
        _adafactor_chunk_typed(a, c, k, <float*> a.params[k], <float*> a.grads[k],
                               <float*> buffer)


cdef inline void _adafactor_chunk_typed(const AdafactorArgs* a, Py_ssize_t c, Py_ssize_t k,
                                        floating* p, floating* g, floating* u) noexcept nogil:
    cdef int64_t start = a.chunks.start[c], n = a.chunks.count[c]
    cdef const AdafactorTensor* t = &a.tensors[k]
    if a.pass_number == 1:
        a.p_sq[c] = sum_sq(p + start, n)
        if t.factored:
            return
        if a.grad_scale != 1:
            unscale(g + start, n, a.grad_scale)
        adafactor_elements(g + start, <floating*> a.variance[k] + start, u, n, &a.h, &a.runs[k])
        a.u_sq[c] = sum_sq(u, n)
        return
    if t.factored:
        _adafactor_factored_u(g, <const floating*> a.row_var[k], <const floating*> a.col_var[k],
                              a.matrix_mean + t.matrix, u, start, n, t, &a.h)
    elif a.pass_number == 3:
        _adafactor_vector_u(g + start, <const floating*> a.variance[k] + start, u, n, &a.h)
    if a.pass_number == 2:
        a.u_sq[c] = sum_sq(u, n)
    else:
        _adafactor_apply(p + start, u, n, 1 - a.h.lr * a.h.weight_decay, t.scale)


cdef void _adafactor_task(void* args, int64_t task) noexcept nogil:
    cdef const AdafactorArgs* a = <const AdafactorArgs*> args
    cdef double buffer[REDUCE_CHUNK]          # one chunk of u (float32 or float64)
    cdef int64_t c
    if task >= a.n_chunk_tasks:
        _adafactor_tile(a, task - a.n_chunk_tasks)
        return
    for c in range(task * a.chunks_per_task,
                   min((task + 1) * a.chunks_per_task, <int64_t> a.chunks.n)):
        if a.pass_number == 2 and not a.tensors[a.chunks.tensor[c]].factored:
            continue
        _adafactor_chunk(a, c, buffer)


cdef void _adafactor_factors(AdafactorArgs* a, Py_ssize_t k) noexcept nogil:
    """Between passes 1 and 2: row_var, col_var and m of a factored tensor."""
    if a.element_type == cnp.NPY_FLOAT64:
        _adafactor_factors_typed(a, k, <double*> a.row_var[k], <double*> a.col_var[k])
    else:
        _adafactor_factors_typed(a, k, <float*> a.row_var[k], <float*> a.col_var[k])


cdef inline void _adafactor_add(double* total, const double* part, int64_t n) noexcept nogil:
    cdef int64_t i
    for i in range(n):
        total[i] = total[i] + part[i]


cdef inline void _adafactor_factor_update(floating* factor, const double* sums, int64_t n,
                                          floating length, floating w) noexcept nogil:
    """factor = lerp(factor, fl(sqrt(sum))^2 / length, w), element by element."""
    cdef floating norm
    cdef int64_t i
    for i in range(n):
        norm = <floating> sqrt(sums[i])
        factor[i] = lerp(factor[i], (norm * norm) / length, w)


cdef inline double _adafactor_sum(const floating* x, int64_t n) noexcept nogil:
    """sum of x in double over REDUCE_LANES lanes, as sum_sq (reductions.pxi)."""
    cdef double acc[REDUCE_LANES]
    cdef int64_t i, j, b, body = n - n % REDUCE_LANES
    for j in range(REDUCE_LANES):
        acc[j] = 0
    for b in range(body // REDUCE_LANES):
        i = b * REDUCE_LANES
        for j in range(REDUCE_LANES):
            acc[j] = acc[j] + <double> x[i + j]
    for i in range(body, n):
        acc[i - body] = acc[i - body] + <double> x[i]
    return combine_lanes(acc)


cdef inline void _adafactor_factors_typed(AdafactorArgs* a, Py_ssize_t k, floating* row_var,
                                          floating* col_var) noexcept nogil:
    # The partials are summed in place, block by block in order, into the
    # first block (0 + p0 + p1 + ... is p0 + p1 + ...): loops over rows or
    # columns, which vectorize.
    cdef const AdafactorTensor* t = &a.tensors[k]
    cdef floating w = <floating> a.runs[k].beta2_weight
    cdef floating eps1 = <floating> a.h.eps1
    cdef floating mean
    cdef int64_t b, q, n_rows = t.batch * t.rows
    cdef double* rows = a.row_part + t.row_part          # block q: rows + q * n_rows
    cdef double* cols
    for q in range(1, t.n_col_blocks):
        _adafactor_add(rows, rows + q * n_rows, n_rows)
    _adafactor_factor_update(row_var, rows, n_rows, <floating> t.cols, w)
    for b in range(t.batch):
        cols = a.col_part + t.col_part + b * t.n_row_blocks * t.cols
        for q in range(1, t.n_row_blocks):
            _adafactor_add(cols, cols + q * t.cols, t.cols)
        _adafactor_factor_update(col_var + b * t.cols, cols, t.cols, <floating> t.rows, w)
        mean = (<floating> _adafactor_sum(row_var + b * t.rows, t.rows)) / (<floating> t.rows)
        a.matrix_mean[t.matrix + b] = nan_max(mean, eps1)


cdef inline double _adafactor_norm(double sum_of_squares, bint is_double) noexcept nogil:
    """sqrt of a sum, rounded to the param's precision (torch's norm().item())."""
    cdef double norm = sqrt(sum_of_squares)
    return norm if is_double else <double> <float> norm


cdef inline double _adafactor_alpha(const AdafactorArgs* a, Py_ssize_t k, double root_n,
                                    bint is_double) noexcept nogil:
    cdef double rms = _adafactor_norm(
        combine_chunks(a.p_sq, a.chunks.first[k], a.chunks.first[k + 1], False),
        is_double) / root_n
    return (rms if rms > a.h.eps2 else a.h.eps2) * a.runs[k].rho    # Python's max(eps2, rms)


cdef inline double _adafactor_scale(const AdafactorArgs* a, Py_ssize_t k, double alpha,
                                    double root_n, bint is_double) noexcept nogil:
    cdef double ratio = _adafactor_norm(
        combine_chunks(a.u_sq, a.chunks.first[k], a.chunks.first[k + 1], False),
        is_double) / (root_n * a.h.d)
    return -alpha / (ratio if ratio > 1.0 else 1.0)                  # Python's max(1.0, ratio)


cdef int _adafactor_shapes(Plan plan, AdafactorTensor* tensors) except -1:
    """Each tensor's factoring: from the arrays' shapes (GroupPlan) or the
    stepped tensors' (TensorPlan)."""
    cdef GroupPlan group
    cdef const int64_t* dims
    cdef Py_ssize_t k, nd, i
    cdef tuple shape
    cdef int64_t batch
    for k in range(plan.n_tensors):
        tensors[k].factored = False
    if isinstance(plan, GroupPlan):
        group = <GroupPlan> plan
        for k in range(plan.n_tensors):
            nd = group.c_ndims[k]
            dims = group.c_dims + k * group.max_ndim
            if nd >= 2:
                batch = 1
                for i in range(nd - 2):
                    batch *= dims[i]
                _adafactor_factored(&tensors[k], batch, dims[nd - 2], dims[nd - 1])
        return 0
    for k, tensor in enumerate((<TensorPlan> plan).stepped):
        shape = tuple(tensor.shape)
        nd = len(shape)
        if nd >= 2:
            batch = 1
            for i in range(nd - 2):
                batch *= <int64_t> shape[i]
            _adafactor_factored(&tensors[k], batch, shape[nd - 2], shape[nd - 1])
    return 0


cdef inline void _adafactor_factored(AdafactorTensor* t, int64_t batch, int64_t rows,
                                     int64_t cols) noexcept:
    t.factored = True
    t.batch = batch
    t.rows = rows
    t.cols = cols


cdef char** _adafactor_table(Plan plan, int slot, object block, const int64_t* sizes,
                             char** table) except NULL:
    """Per tensor, the data of one state: a group block (NumPy: tensor k's
    part, sizes[k] elements, follows the parts of the tensors before it)
    fills `table`; without a block, the plan's gathered table (TensorPlan)."""
    cdef Py_ssize_t k
    cdef int64_t total = 0
    if block is None and not isinstance(plan, GroupPlan):
        return plan.state_table(slot, None, True)
    for k in range(plan.n_tensors):
        total += sizes[k]
    if (not cnp.PyArray_Check(block) or cnp.PyArray_TYPE(<cnp.ndarray> block) != plan.element_type
            or cnp.PyArray_SIZE(<cnp.ndarray> block) != total
            or not cnp.PyArray_IS_C_CONTIGUOUS(<cnp.ndarray> block)):
        raise ValueError(f"state block of slot {slot} does not match its param group")
    cdef char* base = <char*> cnp.PyArray_DATA(<cnp.ndarray> block)
    total = 0
    for k in range(plan.n_tensors):
        table[k] = base + total * plan.itemsize
        total += sizes[k]
    return table


cdef int _adafactor_layout(AdafactorArgs* a, Py_ssize_t n) except -1:
    """Tiles and partial offsets of the factored tensors that have a grad."""
    cdef Py_ssize_t k
    cdef int64_t rows_part = 0, cols_part = 0, matrices = 0, n_tiles = 0, per_tile, b, rb, q
    cdef AdafactorTensor* t
    for k in range(n):
        t = &a.tensors[k]
        if not t.factored or a.grads[k] == NULL:
            continue
        t.tile_cols = min(t.cols, <int64_t> ADAFACTOR_TILE_COLS)
        t.n_col_blocks = (t.cols + t.tile_cols - 1) // t.tile_cols if t.cols else 0
        t.tile_rows = min(t.rows, max(<int64_t> 1, ADAFACTOR_TILE // max(t.tile_cols, 1)))
        t.n_row_blocks = (t.rows + t.tile_rows - 1) // t.tile_rows if t.rows else 0
        t.row_part = rows_part
        t.col_part = cols_part
        t.matrix = matrices
        rows_part += t.batch * t.rows * max(t.n_col_blocks, 1)
        cols_part += t.batch * max(t.n_row_blocks, 1) * t.cols
        matrices += t.batch
        if t.n_col_blocks == 1 and t.n_row_blocks == 1:
            per_tile = max(<int64_t> 1, ADAFACTOR_TILE // (t.rows * t.cols))
            n_tiles += (t.batch + per_tile - 1) // per_tile
        else:
            n_tiles += t.batch * t.n_row_blocks * t.n_col_blocks
    a.row_part = <double*> malloc(max(rows_part, 1) * sizeof(double))
    a.col_part = <double*> malloc(max(cols_part, 1) * sizeof(double))
    a.matrix_mean = <double*> malloc(max(matrices, 1) * sizeof(double))
    a.tiles = <AdafactorTile*> malloc(max(n_tiles, 1) * sizeof(AdafactorTile))
    if a.row_part == NULL or a.col_part == NULL or a.matrix_mean == NULL or a.tiles == NULL:
        raise MemoryError()
    a.n_tiles = n_tiles
    n_tiles = 0
    for k in range(n):
        t = &a.tensors[k]
        if not t.factored or a.grads[k] == NULL:
            continue
        if t.n_col_blocks == 0 or t.n_row_blocks == 0:     # no element: every sum is 0
            memset(a.row_part + t.row_part, 0, t.batch * t.rows * sizeof(double))
            memset(a.col_part + t.col_part, 0, t.batch * t.cols * sizeof(double))
            continue
        if t.n_col_blocks == 1 and t.n_row_blocks == 1:
            per_tile = max(<int64_t> 1, ADAFACTOR_TILE // (t.rows * t.cols))
            for b in range(0, t.batch, per_tile):
                a.tiles[n_tiles] = AdafactorTile(k, b, min(per_tile, t.batch - b), 0, 0)
                n_tiles += 1
            continue
        for b in range(t.batch):
            for rb in range(t.n_row_blocks):
                for q in range(t.n_col_blocks):
                    a.tiles[n_tiles] = AdafactorTile(k, b, 1, rb, q)
                    n_tiles += 1
    a.n_tiles = n_tiles
    return 0


def adafactor(Plan plan, *, row_var, col_var, variance, double lr, double beta2_decay,
              eps1, double eps2, double d, double weight_decay, bint maximize,
              int n_threads=0):
    """One Adafactor step over every tensor of plan that has a grad.

    plan: the group, with grads gathered and steps advanced.         # IN/OUT
    row_var, col_var: the group's blocks of the factored tensors' row and
        column factors (each tensor's B*R, resp. B*C values, in param order);
        variance: the unfactored tensors' (their elements, in param order).
        None for a TensorPlan: its gathered state tensors.            # IN/OUT
    eps1: None for the machine epsilon of the params' dtype.
    n_threads: requested threads (<= 0: OpenMP's maximum).
    """
    cdef AdafactorArgs a
    cdef Py_ssize_t n = plan.n_tensors, k
    cdef int64_t n_tasks
    cdef bint is_double = plan.element_type == cnp.NPY_FLOAT64
    cdef bint any_factored = False
    cdef double root_n
    a.h.lr = lr
    a.h.beta2_decay = beta2_decay
    if eps1 is None:
        a.h.eps1 = DBL_EPSILON if is_double else FLT_EPSILON     # torch's finfo(dtype).eps
    else:
        a.h.eps1 = eps1
    a.h.eps2 = eps2
    a.h.d = d
    a.h.weight_decay = weight_decay
    a.h.maximize = maximize
    a.params = plan.c_params
    a.grads = plan.c_grads
    a.grad_scale = plan.grad_scale
    a.element_type = plan.element_type
    a.runs = NULL
    a.p_sq = NULL
    a.tiles = NULL
    a.row_part = NULL
    a.col_part = NULL
    a.matrix_mean = NULL
    a.chunks.first = NULL
    # One allocation: the tensors, then three pointer tables and three size rows.
    cdef char* memory = <char*> malloc(max(n, 1) * (sizeof(AdafactorTensor)
                                                    + 3 * sizeof(char*) + 3 * sizeof(int64_t)))
    if memory == NULL:
        raise MemoryError()
    a.tensors = <AdafactorTensor*> memory
    cdef char** tables = <char**> (memory + max(n, 1) * sizeof(AdafactorTensor))
    cdef int64_t* sizes = <int64_t*> (tables + 3 * max(n, 1))
    try:
        _adafactor_shapes(plan, a.tensors)
        for k in range(n):
            if a.tensors[k].factored:
                sizes[k] = a.tensors[k].batch * a.tensors[k].rows
                sizes[n + k] = a.tensors[k].batch * a.tensors[k].cols
                sizes[2 * n + k] = 0
                any_factored = any_factored or plan.c_grads[k] != NULL
            else:
                sizes[k] = sizes[n + k] = 0
                sizes[2 * n + k] = plan.c_offsets[k + 1] - plan.c_offsets[k]
        a.row_var = _adafactor_table(plan, 0, row_var, sizes, tables)
        a.col_var = _adafactor_table(plan, 1, col_var, sizes + n, tables + n)
        a.variance = _adafactor_table(plan, 2, variance, sizes + 2 * n, tables + 2 * n)
        a.runs = _adafactor_runs(&a.h, plan.c_steps, n)      # per tensor: never a fused run
        chunks_init(&a.chunks, plan.c_offsets, plan.c_grads, n)
        _adafactor_layout(&a, n)
        a.p_sq = <double*> malloc(2 * max(a.chunks.n, 1) * sizeof(double))
        if a.p_sq == NULL:
            raise MemoryError()
        a.u_sq = a.p_sq + a.chunks.n
        n_threads = _effective_threads(plan.active_elements, n_threads, COST_HEAVY)
        a.chunks_per_task = max(1, (a.chunks.n + ADAFACTOR_TASKS_PER_THREAD * n_threads - 1)
                                // (ADAFACTOR_TASKS_PER_THREAD * n_threads))
        a.n_chunk_tasks = (a.chunks.n + a.chunks_per_task - 1) // a.chunks_per_task
        with nogil:
            a.pass_number = 1
            cyoptim_pool_run(_adafactor_task, &a, a.n_chunk_tasks + a.n_tiles, n_threads)
            for k in range(n):
                if plan.c_grads[k] == NULL:
                    continue
                root_n = pow(<double> (plan.c_offsets[k + 1] - plan.c_offsets[k]), 0.5)
                a.tensors[k].scale = _adafactor_alpha(&a, k, root_n, is_double)
                if a.tensors[k].factored:
                    _adafactor_factors(&a, k)
                else:
                    a.tensors[k].scale = _adafactor_scale(&a, k, a.tensors[k].scale, root_n,
                                                          is_double)
            if any_factored:
                a.pass_number = 2
                cyoptim_pool_run(_adafactor_task, &a, a.n_chunk_tasks, n_threads)
                for k in range(n):
                    if plan.c_grads[k] != NULL and a.tensors[k].factored:
                        root_n = pow(<double> (plan.c_offsets[k + 1] - plan.c_offsets[k]), 0.5)
                        a.tensors[k].scale = _adafactor_scale(&a, k, a.tensors[k].scale, root_n,
                                                              is_double)
            a.pass_number = 3
            cyoptim_pool_run(_adafactor_task, &a, a.n_chunk_tasks, n_threads)
    finally:
        free(memory)
        free(<void*> a.runs)
        free(a.p_sq)
        free(a.tiles)
        free(a.row_part)
        free(a.col_part)
        free(a.matrix_mean)
        if a.chunks.first != NULL:
            chunks_free(&a.chunks)


def adafactor_group(Plan plan, dict group, dict blocks, int n_threads):
    """adafactor() with its hyperparameters read from a param group (``eps``
    gives eps1 and eps2) and its blocks from a dict: what cyoptim.Adafactor
    and cyoptim.torch.Adafactor call."""
    eps1, eps2 = group["eps"]
    adafactor(plan, row_var=blocks.get("row_var"), col_var=blocks.get("col_var"),
              variance=blocks.get("variance"), lr=group["lr"],
              beta2_decay=group["beta2_decay"], eps1=eps1, eps2=eps2, d=group["d"],
              weight_decay=group["weight_decay"], maximize=group["maximize"],
              n_threads=n_threads)
