# Unshared (locally connected) convolution.
"""nogil kernels for unshared (locally connected) convolution and its gradients.

One code path for every rank: 1-D and 2-D inputs are 3-D inputs with
length-1 leading axes.  With ``P = Do * Ho * Wo`` output positions,
``K = kd * kh * kw`` taps and ``CK = cin * K``, the arrays are flat
C-contiguous buffers::

    x    (N, cin, D, H, W)        input
    w    (cout, P, CK)            one filter bank per output position
    out  (N, cout, P)             output (or its gradient)

    out[n, co, p] = bias + sum_r col(n, p)[r] * w[co, p, r]

where ``col(n, p)`` is the patch of item ``n`` read by position ``p``
(``r = (ci * kd + a) * kh * kw + b * kw + c``; zero outside the input).

Work is split into units ``(od, oh, ow0, ow1)``: a segment of one output
row, for every item.  OpenMP threads take units dynamically; each gathers the
patches of its segment for a chunk of items into a thread-private workspace
of bounded size, so that every filter row read from memory is reused for all
items of the chunk.  The input gradient scatters patch gradients; it runs
blocks of positions whose windows cannot overlap in parallel.
"""
cdef extern from *:
    """
    /* dot products and axpy the compiler may vectorise (OpenMP simd reduction) */
    static inline float sigconv_dot_f32(const float* a, const float* b, Py_ssize_t n) {
        float acc = 0;
        #pragma omp simd reduction(+:acc)
        for (Py_ssize_t i = 0; i < n; i++) acc += a[i] * b[i];
        return acc;
    }
    static inline double sigconv_dot_f64(const double* a, const double* b, Py_ssize_t n) {
        double acc = 0;
        #pragma omp simd reduction(+:acc)
        for (Py_ssize_t i = 0; i < n; i++) acc += a[i] * b[i];
        return acc;
    }
    static inline void sigconv_axpy_f32(float* y, float a, const float* x, Py_ssize_t n) {
        #pragma omp simd
        for (Py_ssize_t i = 0; i < n; i++) y[i] += a * x[i];
    }
    static inline void sigconv_axpy_f64(double* y, double a, const double* x, Py_ssize_t n) {
        #pragma omp simd
        for (Py_ssize_t i = 0; i < n; i++) y[i] += a * x[i];
    }
    """
    float sigconv_dot_f32(const float* a, const float* b, isize n) noexcept nogil
    double sigconv_dot_f64(const double* a, const double* b, isize n) noexcept nogil
    void sigconv_axpy_f32(float* y, float a, const float* x, isize n) noexcept nogil
    void sigconv_axpy_f64(double* y, double a, const double* x, isize n) noexcept nogil


cdef inline floating dot(const floating* a, const floating* b, isize n) noexcept nogil:
    if floating is float:
        return sigconv_dot_f32(a, b, n)
    else:
        return sigconv_dot_f64(a, b, n)


cdef inline void axpy(floating* y, floating a, const floating* x, isize n) noexcept nogil:
    if floating is float:
        sigconv_axpy_f32(y, a, x, n)
    else:
        sigconv_axpy_f64(y, a, x, n)


cdef void gather_segment(const floating* x, const Geometry* g, isize od, isize oh,
                         isize ow0, isize ow1, floating* col) noexcept nogil:
    """Patches of positions ``(od, oh, ow0..ow1)`` of one item: row-major ``(ow1 - ow0, CK)``."""
    cdef isize D = g.size[0], H = g.size[1], W = g.size[2]
    cdef isize CK = g.ck, HW = H * W
    cdef isize ci, a, b, c, r, ow, iz, ih, iw
    cdef const floating* row
    r = 0
    for ci in range(g.cin):
        for a in range(g.k[0]):
            iz = od * g.s[0] - g.pad[0] + a
            for b in range(g.k[1]):
                ih = oh * g.s[1] - g.pad[1] + b
                if iz < 0 or iz >= D or ih < 0 or ih >= H:
                    for c in range(g.k[2]):
                        for ow in range(ow0, ow1):
                            col[(ow - ow0) * CK + r + c] = 0
                else:
                    row = x + (ci * D + iz) * HW + ih * W
                    for c in range(g.k[2]):
                        for ow in range(ow0, ow1):
                            iw = ow * g.s[2] - g.pad[2] + c
                            col[(ow - ow0) * CK + r + c] = row[iw] if 0 <= iw < W else 0
                r += g.k[2]


cdef isize chunk_items(isize n_items, isize per_item, isize workspace_bytes, isize itemsize):
    cdef isize nb = workspace_bytes // max(per_item * itemsize, 1)
    if nb < 1:
        nb = 1
    if nb > n_items:
        nb = n_items
    return nb


def local_forward(const floating[::1] x, const floating[::1] w, floating[::1] out,
                  const floating[::1] bias, int bias_mode, isize n_items, isize cin, isize cout,
                  tuple size, tuple osize, tuple kernel, tuple stride, tuple pad,
                  const isize[:, ::1] units, isize workspace_bytes):
    """out = local_conv(x, w) (+ bias): bias_mode 0 none, 1 per channel, 2 per position."""
    cdef Geometry g = make_geometry(kernel, stride, ONES, ONES, pad, size, osize, cin, cout, 1)
    cdef int threads = openmp.omp_get_max_threads()
    threads = team_threads(units.shape[0], n_items * g.P * g.ck * g.cout)
    cdef isize seg = 1, u
    for u in range(units.shape[0]):
        seg = max(seg, units[u, 3] - units[u, 2])
    cdef isize nb = chunk_items(n_items, seg * g.ck, workspace_bytes, sizeof(floating))
    cdef isize ws_size = nb * seg * g.ck
    workspace = scratch_array(ws_size * threads, np.float32 if floating is float else np.float64)
    cdef floating[::1] ws = workspace
    cdef floating* wsp = &ws[0]
    cdef const floating* xp = &x[0]
    cdef const floating* wp = &w[0]
    cdef const floating* bp = &bias[0] if bias_mode else NULL
    cdef floating* op = &out[0]
    cdef isize nunits = units.shape[0], od, oh, ow0, ow1, n0, n1, nn, ow, co, p
    cdef isize DHW = g.size[0] * g.size[1] * g.size[2], L
    cdef floating* col
    cdef const floating* wrow
    cdef floating b
    with nogil:
        for u in prange(nunits, schedule="dynamic", chunksize=1, num_threads=threads):
            od = units[u, 0]
            oh = units[u, 1]
            ow0 = units[u, 2]
            ow1 = units[u, 3]
            L = ow1 - ow0
            col = wsp + threadid() * ws_size
            n0 = 0
            while n0 < n_items:
                n1 = min(n0 + nb, n_items)
                for nn in range(n0, n1):
                    gather_segment(xp + nn * cin * DHW, &g, od, oh, ow0, ow1,
                                   col + (nn - n0) * L * g.ck)
                for ow in range(ow0, ow1):
                    p = (od * g.osize[1] + oh) * g.osize[2] + ow
                    for co in range(cout):
                        wrow = wp + (co * g.P + p) * g.ck
                        if bias_mode == 1:
                            b = bp[co]
                        elif bias_mode == 2:
                            b = bp[co * g.P + p]
                        else:
                            b = 0
                        for nn in range(n0, n1):
                            op[(nn * cout + co) * g.P + p] = b + dot(
                                col + ((nn - n0) * L + ow - ow0) * g.ck, wrow, g.ck)
                n0 = n1


def local_grad_weight(const floating[::1] x, const floating[::1] gy, floating[::1] gw,
                      isize n_items, isize cin, isize cout, tuple size, tuple osize,
                      tuple kernel, tuple stride, tuple pad, const isize[:, ::1] units,
                      isize workspace_bytes):
    """gw[co, p, :] = sum_n gy[n, co, p] * col(n, p); ``gw`` must be zero on entry."""
    cdef Geometry g = make_geometry(kernel, stride, ONES, ONES, pad, size, osize, cin, cout, 1)
    cdef int threads = openmp.omp_get_max_threads()
    threads = team_threads(units.shape[0], n_items * g.P * g.ck * g.cout)
    cdef isize seg = 1, u
    for u in range(units.shape[0]):
        seg = max(seg, units[u, 3] - units[u, 2])
    cdef isize nb = chunk_items(n_items, seg * g.ck, workspace_bytes, sizeof(floating))
    cdef isize ws_size = nb * seg * g.ck
    workspace = scratch_array(ws_size * threads, np.float32 if floating is float else np.float64)
    cdef floating[::1] ws = workspace
    cdef floating* wsp = &ws[0]
    cdef const floating* xp = &x[0]
    cdef const floating* gp = &gy[0]
    cdef floating* gwp = &gw[0]
    cdef isize nunits = units.shape[0], od, oh, ow0, ow1, n0, n1, nn, ow, co, p
    cdef isize DHW = g.size[0] * g.size[1] * g.size[2], L
    cdef floating* col
    cdef floating* grow
    with nogil:
        for u in prange(nunits, schedule="dynamic", chunksize=1, num_threads=threads):
            od = units[u, 0]
            oh = units[u, 1]
            ow0 = units[u, 2]
            ow1 = units[u, 3]
            L = ow1 - ow0
            col = wsp + threadid() * ws_size
            n0 = 0
            while n0 < n_items:
                n1 = min(n0 + nb, n_items)
                for nn in range(n0, n1):
                    gather_segment(xp + nn * cin * DHW, &g, od, oh, ow0, ow1,
                                   col + (nn - n0) * L * g.ck)
                for ow in range(ow0, ow1):
                    p = (od * g.osize[1] + oh) * g.osize[2] + ow
                    for co in range(cout):
                        grow = gwp + (co * g.P + p) * g.ck
                        for nn in range(n0, n1):
                            axpy(grow, gp[(nn * cout + co) * g.P + p],
                                 col + ((nn - n0) * L + ow - ow0) * g.ck, g.ck)
                n0 = n1


def local_grad_input(const floating[::1] gy, const floating[::1] w, floating[::1] gx,
                     isize n_items, isize cin, isize cout, tuple size, tuple osize,
                     tuple kernel, tuple stride, tuple pad, isize workspace_bytes):
    """gx[n] = sum over positions p of the patch gradient sum_co gy[n, co, p] w[co, p].

    ``gx`` must be zero on entry.

    The positions are cut into blocks of ``B = ceil(k / s)`` slices along the
    first output axis longer than one; the windows of blocks two apart never
    overlap, so the even blocks run in parallel, then the odd ones, and the
    scatter-adds never collide.  Each filter row is read once per chunk of
    items, as in the forward pass.
    """
    cdef Geometry g = make_geometry(kernel, stride, ONES, ONES, pad, size, osize, cin, cout, 1)
    cdef int threads = team_threads(PARALLEL_MIN_WORK, n_items * g.P * g.ck * g.cout)
    cdef int axis = 2
    if g.osize[0] > 1:
        axis = 0
    elif g.osize[1] > 1:
        axis = 1
    cdef isize B = (g.k[axis] + g.s[axis] - 1) // g.s[axis]
    cdef isize nblocks = (g.osize[axis] + B - 1) // B
    cdef isize nb = chunk_items(n_items, g.ck, workspace_bytes, sizeof(floating))
    workspace = scratch_array(nb * g.ck * threads, np.float32 if floating is float else np.float64)
    cdef floating[::1] ws = workspace
    cdef floating* wsp = &ws[0]
    cdef const floating* gp = &gy[0]
    cdef const floating* wp = &w[0]
    cdef floating* gxp = &gx[0]
    cdef isize D = g.size[0], H = g.size[1], W = g.size[2], HW = H * W, DHW = D * HW
    cdef isize colour, nunits, u, blk, n0, n1, nn, co, p, ci, a, b, c, iz, ih, iw
    cdef isize lo0, hi0, lo1, hi1, lo2, hi2, od, oh, ow
    cdef floating* gcol
    cdef floating* src
    cdef floating* plane
    cdef const floating* wrow
    for colour in range(2):
        nunits = (nblocks - colour + 1) // 2
        with nogil:
            for u in prange(nunits, schedule="dynamic", chunksize=1, num_threads=threads):
                blk = 2 * u + colour
                lo0 = 0
                hi0 = g.osize[0]
                lo1 = 0
                hi1 = g.osize[1]
                lo2 = 0
                hi2 = g.osize[2]
                if axis == 0:
                    lo0 = blk * B
                    hi0 = min(lo0 + B, g.osize[0])
                elif axis == 1:
                    lo1 = blk * B
                    hi1 = min(lo1 + B, g.osize[1])
                else:
                    lo2 = blk * B
                    hi2 = min(lo2 + B, g.osize[2])
                gcol = wsp + threadid() * nb * g.ck
                for od in range(lo0, hi0):
                    for oh in range(lo1, hi1):
                        for ow in range(lo2, hi2):
                            p = (od * g.osize[1] + oh) * g.osize[2] + ow
                            n0 = 0
                            while n0 < n_items:
                                n1 = min(n0 + nb, n_items)
                                memset(gcol, 0, (n1 - n0) * g.ck * sizeof(floating))
                                for co in range(cout):
                                    wrow = wp + (co * g.P + p) * g.ck
                                    for nn in range(n0, n1):
                                        axpy(gcol + (nn - n0) * g.ck,
                                             gp[(nn * cout + co) * g.P + p], wrow, g.ck)
                                for nn in range(n0, n1):
                                    src = gcol + (nn - n0) * g.ck
                                    for ci in range(cin):
                                        plane = gxp + (nn * cin + ci) * DHW
                                        for a in range(g.k[0]):
                                            iz = od * g.s[0] - g.pad[0] + a
                                            for b in range(g.k[1]):
                                                ih = oh * g.s[1] - g.pad[1] + b
                                                if iz < 0 or iz >= D or ih < 0 or ih >= H:
                                                    continue
                                                for c in range(g.k[2]):
                                                    iw = ow * g.s[2] - g.pad[2] + c
                                                    if 0 <= iw < W:
                                                        plane[iz * HW + ih * W + iw] += src[
                                                            ((ci * g.k[0] + a) * g.k[1] + b)
                                                            * g.k[2] + c]
                                n0 = n1


def interleave_phases(const floating[::1] z, floating[::1] out, isize n_items, isize groups,
                      isize cout_g, tuple phases, tuple q_count, tuple out_size,
                      const isize[::1] r_d, const isize[::1] q_d, const isize[::1] r_h,
                      const isize[::1] q_h, const isize[::1] r_w, const isize[::1] q_w):
    """Gather the output phases of a sub-pixel convolution into the interleaved output.

    ``z`` is ``(N, groups, s_d, s_h, s_w, cout_g, Q_d, Q_h, Q_w)``, ``out`` is
    ``(N, groups * cout_g, O_d, O_h, O_w)``; output sample ``o`` of an axis
    comes from phase ``r[o]``, phase sample ``q[o]``.  One contiguous output row
    per iteration; the reads alternate between the ``s_w`` phase rows.
    """
    cdef isize sd = phases[0], sh = phases[1], sw = phases[2]
    cdef isize Qd = q_count[0], Qh = q_count[1], Qw = q_count[2]
    cdef isize Od = out_size[0], Oh = out_size[1], Ow = out_size[2]
    cdef isize Q = Qd * Qh * Qw
    cdef isize rows = n_items * groups * cout_g * Od * Oh, row, rest, n, c, grp, co, od, oh, ow
    cdef isize base
    cdef floating* dst
    cdef const floating* zp = &z[0]
    cdef floating* op = &out[0]
    cdef int threads = openmp.omp_get_max_threads()
    threads = team_threads(rows, rows * Ow)
    with nogil:
        for row in prange(rows, schedule="static", num_threads=threads):
            oh = row % Oh
            rest = row // Oh
            od = rest % Od
            rest = rest // Od
            c = rest % (groups * cout_g)
            n = rest // (groups * cout_g)
            grp = c // cout_g
            co = c - grp * cout_g
            base = ((((((n * groups + grp) * sd + r_d[od]) * sh + r_h[oh]) * sw) * cout_g
                     + co) * Q + (q_d[od] * Qh + q_h[oh]) * Qw)
            dst = op + row * Ow
            for ow in range(Ow):
                dst[ow] = zp[base + r_w[ow] * cout_g * Q + q_w[ow]]
