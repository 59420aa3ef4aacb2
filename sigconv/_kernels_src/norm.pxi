# Batch normalisation (and a following ReLU).
"""nogil batch-normalisation kernels (private: call them through :mod:`sigconv.nn.functional`).

Every kernel reads flat, C-contiguous buffers through a pooling-style item
table ``itab[n] = (offset, D, H, W)``: item ``n`` is laid out ``(C, D, H, W)``
from its offset, so row ``(n, c)`` (one channel of one item) is the
contiguous run of ``P_n = D * H * W`` samples from ``offset + c * P_n``.
Work is split over rows with OpenMP ``prange``; each row's result is
written to its own slot, and per-channel totals are formed from the row
results by the caller (in a fixed order: deterministic for any number of
threads).

Statistics are accumulated in double, with four independent accumulators
(so that the loops neither wait on one add chain nor need reassociation
flags to vectorise).  ``bn_row_stats`` takes each row's mean and its sum of
squared deviations from that mean in two sweeps of the row, the second one
from cache: the exact two-pass variance, one pass over memory; the caller
merges the rows with Chan's formula.

The kernels trust their caller: the table, buffer sizes and per-channel
arrays are checked by the Python wrappers.
"""

#: operations counted per sample for the thread rule: a sweep of fewer than
#: about 512,000 samples runs on one thread.  These sweeps are bound by memory
#: bandwidth, which a second thread raises far less than it raises compute,
#: while waking it costs up to a scheduler tick on a busy machine.
NORM_OPS_PER_SAMPLE = 2


cdef int norm_threads(isize units, isize samples) noexcept:
    return team_threads(units, samples * NORM_OPS_PER_SAMPLE)


cdef inline void _row_sum_m2(const floating* x, isize n, double* sum, double* m2) noexcept nogil:
    """Sum of ``x[0:n]`` and sum of squared deviations from its mean."""
    cdef isize i, n4 = n - n % 4
    cdef double s0 = 0, s1 = 0, s2 = 0, s3 = 0, mean, d0, d1, d2, d3
    for i in range(0, n4, 4):
        s0 += x[i]
        s1 += x[i + 1]
        s2 += x[i + 2]
        s3 += x[i + 3]
    for i in range(n4, n):
        s0 += x[i]
    sum[0] = (s0 + s1) + (s2 + s3)
    mean = sum[0] / n
    s0 = s1 = s2 = s3 = 0
    for i in range(0, n4, 4):
        d0 = x[i] - mean
        d1 = x[i + 1] - mean
        d2 = x[i + 2] - mean
        d3 = x[i + 3] - mean
        s0 += d0 * d0
        s1 += d1 * d1
        s2 += d2 * d2
        s3 += d3 * d3
    for i in range(n4, n):
        d0 = x[i] - mean
        s0 += d0 * d0
    m2[0] = (s0 + s1) + (s2 + s3)


def bn_row_stats(const floating[::1] x, const isize[:, ::1] itab, isize C,
                 double[::1] sums, double[::1] m2):
    """Per row ``(n, c)``: ``sums[n * C + c]`` and ``m2[n * C + c]`` (squared deviations)."""
    cdef isize units = itab.shape[0] * C, u, n, c, P
    if units == 0:
        return
    cdef int nt = norm_threads(units, x.shape[0])
    cdef const floating* xp = &x[0]
    cdef const isize* it = &itab[0, 0]
    for u in prange(units, nogil=True, schedule="static", num_threads=nt):
        n = u // C
        c = u % C
        P = it[POOL_COLS * n + X_D] * it[POOL_COLS * n + X_H] * it[POOL_COLS * n + X_W]
        _row_sum_m2(xp + it[POOL_COLS * n + X_OFF] + c * P, P, &sums[u], &m2[u])


def bn_apply(const floating[::1] x, const isize[:, ::1] itab, isize C,
             const floating[::1] mean, const floating[::1] scale, const floating[::1] shift,
             floating[::1] out, bint relu):
    """``out = (x - mean[c]) * scale[c] + shift[c]``, then ``max(out, 0)`` when ``relu``.

    The ReLU is ``v > 0 ? v : 0`` (NaN gives 0, as ``numpy.fmax(v, 0)``).
    """
    cdef isize units = itab.shape[0] * C, u, n, c, P, i
    if units == 0:
        return
    cdef int nt = norm_threads(units, x.shape[0])
    cdef const floating* xp = &x[0]
    cdef floating* op = &out[0]
    cdef const isize* it = &itab[0, 0]
    cdef const floating* src
    cdef floating* dst
    cdef floating m, s, b, v
    for u in prange(units, nogil=True, schedule="static", num_threads=nt):
        n = u // C
        c = u % C
        P = it[POOL_COLS * n + X_D] * it[POOL_COLS * n + X_H] * it[POOL_COLS * n + X_W]
        src = xp + it[POOL_COLS * n + X_OFF] + c * P
        dst = op + it[POOL_COLS * n + X_OFF] + c * P
        m = mean[c]
        s = scale[c]
        b = shift[c]
        if relu:
            for i in range(P):
                v = (src[i] - m) * s + b
                dst[i] = v if v > 0 else 0
        else:
            for i in range(P):
                dst[i] = (src[i] - m) * s + b


#: samples of a row masked at a time into a stack buffer (``_row_grad_sums``)
DEF MASK_BLOCK = 256


cdef inline void _row_sums(const floating* g, const floating* x, isize n, floating m,
                           double* sum_g, double* sum_gx) noexcept nogil:
    """Add ``sum(g)`` and ``sum(g * (x - m))`` over ``g[0:n]``, ``x[0:n]`` to the totals."""
    cdef isize i, n4 = n - n % 4
    cdef double a0 = 0, a1 = 0, a2 = 0, a3 = 0, b0 = 0, b1 = 0, b2 = 0, b3 = 0
    cdef double g0, g1, g2, g3
    for i in range(0, n4, 4):
        g0 = g[i]
        g1 = g[i + 1]
        g2 = g[i + 2]
        g3 = g[i + 3]
        a0 += g0
        a1 += g1
        a2 += g2
        a3 += g3
        b0 += g0 * (x[i] - m)
        b1 += g1 * (x[i + 1] - m)
        b2 += g2 * (x[i + 2] - m)
        b3 += g3 * (x[i + 3] - m)
    for i in range(n4, n):
        g0 = g[i]
        a0 += g0
        b0 += g0 * (x[i] - m)
    sum_g[0] += (a0 + a1) + (a2 + a3)
    sum_gx[0] += (b0 + b1) + (b2 + b3)


cdef inline void _row_grad_sums(const floating* g, const floating* y, const floating* x, isize n,
                                floating m, double* sum_g, double* sum_gx) noexcept nogil:
    """``sum(gy)`` and ``sum(gy * (x - m))`` over a row; ``gy = g``, or ``y > 0 ? g : 0`` if ``y``.

    The mask is applied block by block into a stack buffer by a plain select
    loop (both values loaded first), which compilers vectorise; folded into
    the reduction it becomes a branch per sample, mispredicted half the time.
    """
    cdef floating buf[MASK_BLOCK]
    cdef isize s, j, size
    cdef floating gv, yv
    sum_g[0] = 0
    sum_gx[0] = 0
    if y == NULL:
        _row_sums(g, x, n, m, sum_g, sum_gx)
        return
    for s in range(0, n, MASK_BLOCK):
        size = n - s if n - s < MASK_BLOCK else MASK_BLOCK
        for j in range(size):
            gv = g[s + j]
            yv = y[s + j]
            buf[j] = gv if yv > 0 else 0
        _row_sums(buf, x + s, size, m, sum_g, sum_gx)


def bn_grad_sums(const floating[::1] g, const floating[::1] y, const floating[::1] x,
                 const isize[:, ::1] itab, isize C, const floating[::1] mean, bint relu,
                 double[::1] sum_g, double[::1] sum_gx):
    """Per row ``(n, c)``: ``sum(gy)`` and ``sum(gy * (x - mean[c]))``.

    ``gy`` is ``g``, or with ``relu`` ``g`` where ``y > 0`` and 0 elsewhere
    (``y`` the forward output; it is not read without ``relu``): ReLU's
    gradient as PyTorch selects it, so a NaN ``g`` where ``y <= 0`` gives 0.
    """
    cdef isize units = itab.shape[0] * C, u, n, c, P, o
    if units == 0:
        return
    cdef int nt = norm_threads(units, 2 * g.shape[0])
    cdef const floating* gp = &g[0]
    cdef const floating* yp = &y[0] if relu else NULL
    cdef const floating* xp = &x[0]
    cdef const isize* it = &itab[0, 0]
    for u in prange(units, nogil=True, schedule="static", num_threads=nt):
        n = u // C
        c = u % C
        P = it[POOL_COLS * n + X_D] * it[POOL_COLS * n + X_H] * it[POOL_COLS * n + X_W]
        o = it[POOL_COLS * n + X_OFF] + c * P
        _row_grad_sums(gp + o, (yp + o) if relu else NULL, xp + o, P, mean[c], &sum_g[u],
                       &sum_gx[u])


def bn_grad_input(const floating[::1] g, const floating[::1] y, const floating[::1] x,
                  const isize[:, ::1] itab, isize C, const floating[::1] mean,
                  const floating[::1] a, const floating[::1] k, const floating[::1] b,
                  bint relu, floating[::1] out):
    """``out = a[c] * gy + k[c] * (x - mean[c]) + b[c]`` (``gy`` as in :func:`bn_grad_sums`)."""
    cdef isize units = itab.shape[0] * C, u, n, c, P, o, i
    if units == 0:
        return
    cdef int nt = norm_threads(units, 2 * g.shape[0])
    cdef const floating* gp = &g[0]
    cdef const floating* yp = &y[0] if relu else NULL
    cdef const floating* xp = &x[0]
    cdef floating* op = &out[0]
    cdef const isize* it = &itab[0, 0]
    cdef floating ac, kc, bc, m, gv, yv
    for u in prange(units, nogil=True, schedule="static", num_threads=nt):
        n = u // C
        c = u % C
        P = it[POOL_COLS * n + X_D] * it[POOL_COLS * n + X_H] * it[POOL_COLS * n + X_W]
        o = it[POOL_COLS * n + X_OFF] + c * P
        ac = a[c]
        kc = k[c]
        bc = b[c]
        m = mean[c]
        if relu:
            for i in range(P):
                gv = gp[o + i]
                yv = yp[o + i]
                gv = gv if yv > 0 else 0
                op[o + i] = ac * gv + kc * (xp[o + i] - m) + bc
        else:
            for i in range(P):
                op[o + i] = ac * gp[o + i] + kc * (xp[o + i] - m) + bc
