# A streaming probe of memory bandwidth, threaded like the optimizer kernels,
# so `python -m cyoptim bench` can show how close a step comes to the limit.
# It moves memory the way an Adam step does (read four arrays, update three of
# them in place) with no arithmetic worth the name, so it runs at the speed of
# memory. Every written cache line was read first: no extra read-for-ownership.


def stream_update(float[::1] a, float[::1] b, float[::1] c, const float[::1] d,
                  float s, int n_threads):
    """a += s*d, b += s*d, c += s*d: moves 28 bytes per element."""
    cdef Py_ssize_t i, n = a.shape[0]
    if b.shape[0] != n or c.shape[0] != n or d.shape[0] != n:
        raise ValueError("stream_update: arrays must have the same length")
    n_threads = _effective_threads(n, n_threads, COST_LIGHT)
    with nogil:
        for i in prange(n, schedule="static", num_threads=n_threads):
            a[i] = a[i] + s * d[i]
            b[i] = b[i] + s * d[i]
            c[i] = c[i] + s * d[i]
