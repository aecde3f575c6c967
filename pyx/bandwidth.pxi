# A streaming probe of memory bandwidth, threaded like the optimizer kernels,
# so `python -m cyoptim bench` can show how close a step comes to the limit.
# Like an optimizer step it updates in place (a += s*b), so every written
# cache line was read first and no extra read-for-ownership traffic occurs.


def stream_update(double[::1] a, const double[::1] b, double s, int n_threads):
    """a[i] = a[i] + s * b[i]; moves 24 bytes per element (reads a, b; writes a)."""
    cdef Py_ssize_t i, n = a.shape[0]
    if b.shape[0] != n:
        raise ValueError("stream_update: arrays must have the same length")
    n_threads = _effective_threads(n, n_threads, COST_LIGHT)
    with nogil:
        for i in prange(n, schedule="static", num_threads=n_threads):
            a[i] = a[i] + s * b[i]
