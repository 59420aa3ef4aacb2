# Convolution: forward (and input gradient, by input dilation) and weight gradient.
"""nogil kernels for N-d multi-channel convolution and its weight gradient.

One code path for every rank: 1-D and 2-D inputs are 3-D inputs with
length-1 leading axes.  Items are described by a table so that a dense batch
and a batch of differently sized items run through the same loops::

    items[n] = (x_offset, D, H, W, out_offset, Do, Ho, Wo, pad_d, pad_h, pad_w)

``x_offset`` and ``out_offset`` index the flat input and output buffers, where
item ``n`` is stored as a C-contiguous ``(C, D, H, W)`` block; ``pad_*`` are the
zeros added before the input on each axis (the padding after the input is
implied by the output size).

The general operation computed here is the one XLA calls "conv general
dilated": the input may be *input-dilated* by ``idil`` (``idil - 1`` zeros
between samples), which turns the forward kernel into the input gradient of
a strided convolution (the chapter's h(K, G, s)) with no second copy.

Work is split into units ``(item, tile of output positions)``; OpenMP threads
take units dynamically.  Each unit gathers its patch matrix into a
thread-private workspace of bounded size (never an im2col buffer for the whole
batch) and multiplies it with BLAS gemm from ``scipy.linalg.cython_blas``; the
caller holds BLAS to one thread so that the two levels of threading do not
oversubscribe the cores.  The direct path (``conv_forward_direct``) skips the
patch matrix and accumulates shifted rows, for layers with few input channels
where gemm's inner dimension would be tiny.
"""
from scipy.linalg.cython_blas cimport sgemm, dgemm


cdef inline void gemm(char* transa, char* transb, int m, int n, int k,
                      floating alpha, const floating* a, int lda,
                      const floating* b, int ldb, floating beta,
                      floating* c, int ldc) noexcept nogil:
    """Column-major BLAS gemm, C = alpha op(A) op(B) + beta C, for either float type."""
    if floating is float:
        sgemm(transa, transb, &m, &n, &k, &alpha, <float*>a, &lda, <float*>b, &ldb,
              &beta, c, &ldc)
    else:
        dgemm(transa, transb, &m, &n, &k, &alpha, <double*>a, &lda, <double*>b, &ldb,
              &beta, c, &ldc)


cdef inline isize axis_index(isize z, isize size, isize idil) noexcept nogil:
    """Index into an axis of ``size`` samples input-dilated by ``idil``, or -1 in a gap/padding."""
    if z < 0:
        return -1
    if idil == 1:
        return z if z < size else -1
    if z % idil != 0:
        return -1
    z = z // idil
    return z if z < size else -1


cdef inline void row_op(floating* dst, const floating* src, isize width, isize first,
                        isize count, isize step, isize offset, isize idil,
                        floating alpha, bint accumulate) noexcept nogil:
    """``dst[j] (+)= alpha * row[(first + j) * step + offset]`` for ``j < count``.

    ``row`` is ``src`` (``width`` samples) input-dilated by ``idil`` and zero
    outside; with ``accumulate`` false the values are copied (alpha unused).
    """
    cdef isize j, j_lo, j_hi, base, z, i
    if idil == 1:
        base = first * step + offset
        # valid j: 0 <= base + j * step < width
        j_lo = 0 if base >= 0 else (-base + step - 1) // step
        j_hi = floor_div(width - 1 - base, step) + 1
        if j_lo > count:
            j_lo = count
        if j_hi > count:
            j_hi = count
        if j_hi < j_lo:
            j_hi = j_lo
        if accumulate:
            if step == 1:
                for j in range(j_lo, j_hi):
                    dst[j] += alpha * src[base + j]
            else:
                for j in range(j_lo, j_hi):
                    dst[j] += alpha * src[base + j * step]
            return
        if j_lo > 0:
            memset(dst, 0, j_lo * sizeof(floating))
        if step == 1:
            if j_hi > j_lo:
                memcpy(dst + j_lo, src + base + j_lo, (j_hi - j_lo) * sizeof(floating))
        else:
            for j in range(j_lo, j_hi):
                dst[j] = src[base + j * step]
        if count > j_hi:
            memset(dst + j_hi, 0, (count - j_hi) * sizeof(floating))
        return
    for j in range(count):
        i = axis_index((first + j) * step + offset, width, idil)
        if accumulate:
            if i >= 0:
                dst[j] += alpha * src[i]
        else:
            dst[j] = src[i] if i >= 0 else 0


cdef inline isize row_segment(isize p, isize p1, isize Ho, isize Wo,
                              isize* od, isize* oh, isize* ow) noexcept nogil:
    """Output coordinates of flat position ``p`` and the length of its run along W.

    The run ends at the end of the output row or at ``p1``, whichever comes
    first: the loops below walk a tile of positions one row segment at a time.
    """
    cdef isize rem, seg
    od[0] = p // (Ho * Wo)
    rem = p - od[0] * Ho * Wo
    oh[0] = rem // Wo
    ow[0] = rem - oh[0] * Wo
    seg = Wo - ow[0]
    return seg if seg < p1 - p else p1 - p


cdef void gather_patches(const floating* x, const isize* item, const Geometry* g,
                         isize p0, isize p1, floating* col) noexcept nogil:
    """Patch matrix of one group of one item for output positions ``[p0, p1)``.

    ``x`` points at the group's first input channel; ``col`` receives a
    row-major ``(cin_g * kd * kh * kw, p1 - p0)`` matrix.
    """
    cdef isize D = item[X_D], H = item[X_H], W = item[X_W]
    cdef isize Ho = item[OUT_H], Wo = item[OUT_W]
    cdef isize pad_d = item[PAD_D], pad_h = item[PAD_H], pad_w = item[PAD_W]
    cdef isize L = p1 - p0, HW = H * W, DHW = D * H * W
    cdef isize p = p0, od, oh, ow, seg, r, ci, kd, kh, kw, id_, ih
    cdef floating* dst
    while p < p1:
        seg = row_segment(p, p1, Ho, Wo, &od, &oh, &ow)
        r = 0
        for ci in range(g.cin_g):
            for kd in range(g.k[0]):
                id_ = axis_index(od * g.s[0] - pad_d + kd * g.dil[0], D, g.idil[0])
                for kh in range(g.k[1]):
                    ih = axis_index(oh * g.s[1] - pad_h + kh * g.dil[1], H, g.idil[1])
                    for kw in range(g.k[2]):
                        dst = col + r * L + (p - p0)
                        if id_ < 0 or ih < 0:
                            memset(dst, 0, seg * sizeof(floating))
                        else:
                            row_op(dst, x + ci * DHW + id_ * HW + ih * W, W, ow, seg,
                                   g.s[2], kw * g.dil[2] - pad_w, g.idil[2], 0, False)
                        r += 1
        p += seg


cdef void direct_tile(const floating* x, const floating* w, const isize* item,
                      const Geometry* g, isize p0, isize p1, floating* out, isize P,
                      const floating* bias, isize* scratch, floating* packed,
                      floating* rows) noexcept nogil:
    """One group's outputs ``[p0, p1)``, tap by tap, without a patch matrix.

    ``out`` points at the group's first output channel, ``w`` at its first
    filter, ``bias`` at its first bias (or NULL).  With unit stride along W
    the register-blocked loop of ``direct.h`` (through the dispatch of ``microkernels.h``) runs over each row segment,
    reading the input in place through a list of tap offsets: one list built
    once for rows whose taps all lie inside the input, and a filtered list for
    rows that touch the padding along D or H.  A segment that reaches into the
    padding along W reads copies of its rows with their zeros (``rows``); the
    Python wrapper pads W beforehand so that this is rare.  Other strides
    accumulate one tap at a time with :func:`row_op`.  ``scratch`` holds
    ``4 * ck`` offsets and tap indices, ``packed`` ``ck * round_up(cout_g, 16)``
    weights.
    """
    cdef isize D = item[X_D], H = item[X_H], W = item[X_W]
    cdef isize Ho = item[OUT_H], Wo = item[OUT_W]
    cdef isize pad_d = item[PAD_D], pad_h = item[PAD_H], pad_w = item[PAD_W]
    cdef isize HW = H * W, DHW = D * H * W, Kw = g.k[2]
    cdef isize span_d = (g.k[0] - 1) * g.dil[0], span_h = (g.k[1] - 1) * g.dil[1]
    cdef isize span_w = (Kw - 1) * g.dil[2]
    cdef isize p, od, oh, ow, seg, cb, c, r, ci, kd, kh, kw, id_, ih, t, nrow
    cdef isize zd, zh, base, row
    cdef int cob, nt
    cdef bint vector_rows = g.s[2] == 1 and g.idil[2] == 1, copy_rows, inside
    cdef isize* off_all = scratch
    cdef isize* tap_all = scratch + g.ck
    cdef isize* off = scratch + 2 * g.ck
    cdef isize* tap = scratch + 3 * g.ck
    cdef const floating* src
    if not vector_rows:
        for c in range(g.cout_g):
            for p in range(p0, p1):
                out[c * P + p] = bias[c] if bias != NULL else 0
    for cb in range(0, g.cout_g, 16):
        cob = <int>min(16, g.cout_g - cb)
        for r in range(g.ck):
            for c in range(cob):
                packed[cb * g.ck + r * 16 + c] = w[(cb + c) * g.ck + r]
    r = 0
    for ci in range(g.cin_g):
        for kd in range(g.k[0]):
            for kh in range(g.k[1]):
                for kw in range(Kw):
                    off_all[r] = ci * DHW + kd * g.dil[0] * HW + kh * g.dil[1] * W + kw * g.dil[2]
                    tap_all[r] = r
                    r += 1
    p = p0
    while p < p1:
        seg = row_segment(p, p1, Ho, Wo, &od, &oh, &ow)
        zd = od * g.s[0] - pad_d
        zh = oh * g.s[1] - pad_h
        copy_rows = vector_rows and (ow - pad_w < 0 or ow + seg + span_w - pad_w > W)
        inside = (vector_rows and not copy_rows and g.idil[0] == 1 and g.idil[1] == 1
                  and zd >= 0 and zd + span_d < D and zh >= 0 and zh + span_h < H)
        if inside:
            src = x
            base = zd * HW + zh * W + ow - pad_w
            nt = <int>g.ck
            for cb in range(0, g.cout_g, 16):
                if floating is float:
                    sigconv_direct_f32(out + cb * P + p, P, src, base, off_all, tap_all,
                                       packed + cb * g.ck, 16,
                                       bias + cb if bias != NULL else NULL, nt,
                                       <int>min(16, g.cout_g - cb), seg)
                else:
                    sigconv_direct_f64(out + cb * P + p, P, src, base, off_all, tap_all,
                                       packed + cb * g.ck, 16,
                                       bias + cb if bias != NULL else NULL, nt,
                                       <int>min(16, g.cout_g - cb), seg)
            p += seg
            continue
        # filtered list: rows of the padding along D or H contribute nothing
        nt = 0
        r = 0
        nrow = 0
        src = x
        if copy_rows:
            src = rows
        base = 0 if copy_rows else ow - pad_w
        for ci in range(g.cin_g):
            for kd in range(g.k[0]):
                id_ = axis_index(zd + kd * g.dil[0], D, g.idil[0])
                for kh in range(g.k[1]):
                    ih = axis_index(zh + kh * g.dil[1], H, g.idil[1])
                    if id_ >= 0 and ih >= 0:
                        row = ci * DHW + id_ * HW + ih * W
                        if copy_rows:
                            row_op(rows + nrow * (seg + span_w), x + row, W, 0, seg + span_w, 1,
                                   ow - pad_w, 1, 0, False)
                            row = nrow * (seg + span_w)
                            nrow += 1
                        for kw in range(Kw):
                            off[nt] = row + kw * g.dil[2] if vector_rows else row
                            tap[nt] = r + kw
                            nt += 1
                    r += Kw
        for cb in range(0, g.cout_g, 16):
            cob = <int>min(16, g.cout_g - cb)
            if vector_rows:
                if floating is float:
                    sigconv_direct_f32(out + cb * P + p, P, src, base, off, tap,
                                       packed + cb * g.ck, 16,
                                       bias + cb if bias != NULL else NULL, nt, cob, seg)
                else:
                    sigconv_direct_f64(out + cb * P + p, P, src, base, off, tap,
                                       packed + cb * g.ck, 16,
                                       bias + cb if bias != NULL else NULL, nt, cob, seg)
            else:
                for t in range(nt):
                    kw = tap[t] % Kw
                    for c in range(cob):
                        row_op(out + (cb + c) * P + p, x + off[t], W, ow, seg, g.s[2],
                               kw * g.dil[2] - pad_w, g.idil[2],
                               packed[cb * g.ck + tap[t] * 16 + c], True)
        p += seg


cdef isize output_positions(const isize[:, ::1] items):
    cdef isize n, total = 0
    for n in range(items.shape[0]):
        total += items[n, OUT_D] * items[n, OUT_H] * items[n, OUT_W]
    return total


cdef tuple split_units(const isize[:, ::1] items, isize tile, int threads):
    """Work units ``(item, p0, p1)``: tiles of at most ``tile`` output positions.

    Tiles shrink when there are fewer items than threads, so both cores work.
    """
    cdef isize n, p, P, total = 0, largest = 0, count = 0, t
    for n in range(items.shape[0]):
        P = items[n, OUT_D] * items[n, OUT_H] * items[n, OUT_W]
        total += P
        largest = max(largest, P)
    if threads > 1 and total > 0:
        tile = min(tile, max(64, (total + 2 * threads - 1) // (2 * threads)))
    tile = max(tile, 1)
    for n in range(items.shape[0]):
        P = items[n, OUT_D] * items[n, OUT_H] * items[n, OUT_W]
        count += (P + tile - 1) // tile
    units = np.empty((count, 3), dtype=np.intp)
    cdef isize[:, ::1] u = units
    t = 0
    for n in range(items.shape[0]):
        P = items[n, OUT_D] * items[n, OUT_H] * items[n, OUT_W]
        p = 0
        while p < P:
            u[t, 0] = n
            u[t, 1] = p
            u[t, 2] = min(p + tile, P)
            p += tile
            t += 1
    return units, tile


def conv_forward(const floating[::1] x, const floating[::1] w, floating[::1] out,
                 const isize[:, ::1] items, isize cin, isize cout, isize groups,
                 tuple kernel, tuple stride, tuple dilation, tuple input_dilation,
                 const floating[::1] bias, bint direct, isize workspace_bytes):
    """out[item] = conv(x[item], w) (+ bias) for every item of the table.

    ``w`` is the flat ``(cout, cin // groups, kd, kh, kw)`` filter bank; ``bias``
    is empty or of length ``cout``; ``direct`` selects the tap-by-tap path.
    """
    cdef Geometry g = make_geometry(kernel, stride, dilation, input_dilation, ZEROS, ZEROS, ZEROS,
                                    cin, cout, groups)
    cdef int threads = openmp.omp_get_max_threads()
    cdef isize itemsize = sizeof(floating)
    cdef isize tile = max(workspace_bytes // (g.ck * itemsize), 256)
    units_arr, tile = split_units(items, tile, threads)
    cdef isize[:, ::1] units = units_arr
    threads = team_threads(units.shape[0], output_positions(items) * g.ck * g.cout)
    cdef isize n, longest_row = 0
    for n in range(items.shape[0]):
        longest_row = max(longest_row, items[n, OUT_W])
    # per-thread scratch: the patch tile (gemm), or packed weights and padded
    # input rows plus tap offsets (direct); allocated here so that running
    # out of memory raises MemoryError instead of failing inside the loop
    cdef isize packed_size = g.ck * ((g.cout_g + 15) // 16 * 16)
    cdef isize rows_size = (g.cin_g * g.k[0] * g.k[1]
                            * (min(tile, longest_row) + (g.k[2] - 1) * g.dil[2]))
    cdef isize ws_size = packed_size + rows_size if direct else g.ck * tile
    workspace = scratch_array(ws_size * threads, np.float32 if floating is float else np.float64)
    pointers = scratch_array(4 * g.ck * threads if direct else 1, np.intp)
    cdef floating[::1] ws = workspace
    cdef isize[::1] ptrs = pointers
    cdef isize* ptrp = &ptrs[0]
    cdef int tid
    cdef isize nunits = units.shape[0], u, p0, p1, P, grp, co, p, x_off, o_off
    cdef bint has_bias = bias.shape[0] > 0
    cdef floating* col
    cdef floating* o
    cdef isize* scratch = NULL
    cdef floating* packed = NULL
    cdef floating* rows = NULL
    cdef const floating* xp = &x[0] if x.shape[0] > 0 else NULL
    cdef const floating* wp = &w[0]
    cdef const floating* bp = &bias[0] if has_bias else NULL
    cdef floating* op = &out[0]
    cdef floating* wsp = &ws[0]
    with nogil:
        for u in prange(nunits, schedule="dynamic", chunksize=1, num_threads=threads):
            n = units[u, 0]
            p0 = units[u, 1]
            p1 = units[u, 2]
            P = items[n, OUT_D] * items[n, OUT_H] * items[n, OUT_W]
            x_off = items[n, X_OFF]
            o_off = items[n, OUT_OFF]
            tid = threadid()
            col = wsp + tid * ws_size
            packed = col
            rows = col + packed_size
            scratch = ptrp + tid * 4 * g.ck
            for grp in range(g.groups):
                o = op + o_off + grp * g.cout_g * P
                if direct:
                    direct_tile(xp + x_off + grp * g.cin_g * items[n, X_D] * items[n, X_H] * items[n, X_W],
                                wp + grp * g.cout_g * g.ck, &items[n, X_OFF], &g, p0, p1, o, P,
                                bp + grp * g.cout_g if has_bias else NULL,
                                scratch, packed, rows)
                else:
                    gather_patches(xp + x_off + grp * g.cin_g * items[n, X_D] * items[n, X_H] * items[n, X_W],
                                   &items[n, X_OFF], &g, p0, p1, col)
                    gemm("N", "N", <int>(p1 - p0), <int>g.cout_g, <int>g.ck, 1, col, <int>(p1 - p0),
                         wp + grp * g.cout_g * g.ck, <int>g.ck, 0, o + p0, <int>P)
                    if has_bias:
                        for co in range(g.cout_g):
                            for p in range(p0, p1):
                                o[co * P + p] += bias[grp * g.cout_g + co]


def conv_weight_grad(const floating[::1] x, const floating[::1] grad_out, floating[::1] grad_w,
                     const isize[:, ::1] items, isize cin, isize cout, isize groups,
                     tuple kernel, tuple stride, tuple dilation, isize workspace_bytes):
    """grad_w = sum over items and positions of grad_out x patch (the chapter's g(G, V, s)).

    Each thread accumulates into a private copy of ``grad_w``; the copies are
    summed at the end.  Units go to threads statically (thread ``t`` always
    takes the same units), so for a given number of threads the result is
    the same bit for bit on every run, which makes training reproducible.
    """
    cdef Geometry g = make_geometry(kernel, stride, dilation, ONES, ZEROS, ZEROS, ZEROS,
                                    cin, cout, groups)
    cdef int threads = openmp.omp_get_max_threads()
    cdef isize itemsize = sizeof(floating)
    cdef isize tile = max(workspace_bytes // (g.ck * itemsize), 256)
    units_arr, tile = split_units(items, tile, threads)
    cdef isize[:, ::1] units = units_arr
    threads = team_threads(units.shape[0], output_positions(items) * g.ck * g.cout)
    cdef isize ws_size = g.ck * tile
    cdef isize wsize = g.cout_g * g.groups * g.ck
    dtype = np.float32 if floating is float else np.float64
    workspace = scratch_array(ws_size * threads, dtype)
    partial = scratch_array(threads * wsize, dtype).reshape(threads, max(wsize, 1))
    partial[...] = 0
    cdef floating[::1] ws = workspace
    cdef floating[:, ::1] acc = partial
    cdef isize nunits = units.shape[0], u, n, p0, p1, P, grp, t, i, co, r
    cdef floating* col
    cdef const floating* xp = &x[0] if x.shape[0] > 0 else NULL
    cdef const floating* gp = &grad_out[0] if grad_out.shape[0] > 0 else NULL
    cdef floating* wsp = &ws[0]
    cdef floating* accp = &acc[0, 0]
    with nogil:
        for u in prange(nunits, schedule="static", num_threads=threads):
            n = units[u, 0]
            p0 = units[u, 1]
            p1 = units[u, 2]
            P = items[n, OUT_D] * items[n, OUT_H] * items[n, OUT_W]
            t = threadid()
            col = wsp + t * ws_size
            for grp in range(g.groups):
                gather_patches(xp + items[n, X_OFF] + grp * g.cin_g * items[n, X_D] * items[n, X_H] * items[n, X_W],
                               &items[n, X_OFF], &g, p0, p1, col)
                # acc (ck, cout_g) row-major += patches (ck x L) @ G_tile^T (L x cout_g);
                # as column-major BLAS: (cout_g x ck) += G_tile (cout_g x L) @ patches^T
                gemm("T", "N", <int>g.cout_g, <int>g.ck, <int>(p1 - p0), 1,
                     gp + items[n, OUT_OFF] + grp * g.cout_g * P + p0, <int>P,
                     col, <int>(p1 - p0), 1, accp + t * wsize + grp * g.cout_g * g.ck,
                     <int>g.cout_g)
        # sum the threads' copies, transposing each group's (ck, cout_g) block
        for grp in range(g.groups):
            for co in range(g.cout_g):
                for r in range(g.ck):
                    i = grp * g.cout_g * g.ck + co * g.ck + r
                    grad_w[i] = 0
                    for t in range(threads):
                        grad_w[i] += acc[t, grp * g.cout_g * g.ck + r * g.cout_g + co]


#: bytes of the widest vector any target uses (AVX-512)
cdef enum:
    WIDEST_VECTOR = 64


cdef inline isize padded_width(isize n, isize itemsize) noexcept nogil:
    """``n`` rounded up to a whole number of the widest vectors (64 bytes)."""
    cdef isize lanes = WIDEST_VECTOR // itemsize
    return (n + lanes - 1) // lanes * lanes


cdef void wgrad_rows(const floating* x, const floating* gout, floating* acc, const isize* item,
                     const Geometry* g, isize q0, isize q1, isize* offsets, floating* grows,
                     floating* rows, floating* state) noexcept nogil:
    """``acc (cout_g, ck) += g(G, V)`` of one group of one item, output rows ``[q0, q1)``.

    Rows are flat ``(od, oh)`` indices; the stride along W is 1.  The output
    gradient's rows are copied into ``grows``, and for every kernel row
    ``(ci, kd, kh)`` the input rows its output rows read into ``rows`` with
    their padding zeros, all padded to whole 64-byte vectors (each sample is
    copied once per kernel row, against ``cout_g * kw`` multiply-adds); the
    register-blocked loops of ``direct.h`` then run without edge cases.
    Scratch: ``offsets`` ``2 * nk * nq + 2 * nk + 1 + k[2]``, ``grows``
    ``cout_g * nq * Wp``, ``rows`` ``nk * nq * (Wp + span)`` samples and
    ``state`` ``8 * ck`` widest vectors, for ``nk = cin_g * kd * kh`` kernel
    rows, ``nq = q1 - q0`` rows and the padded row ``Wp``.
    """
    cdef isize D = item[X_D], H = item[X_H], W = item[X_W]
    cdef isize Ho = item[OUT_H], Wo = item[OUT_W]
    cdef isize pad_d = item[PAD_D], pad_h = item[PAD_H], pad_w = item[PAD_W]
    cdef isize P = item[OUT_D] * Ho * Wo, HW = H * W, DHW = D * H * W
    cdef isize Kw = g.k[2], dw = g.dil[2]
    cdef isize Wp = padded_width(Wo, sizeof(floating))
    cdef isize width = Wp + (Kw - 1) * dw
    cdef isize nq = q1 - q0, gcs = nq * Wp, nk = g.cin_g * g.k[0] * g.k[1]
    cdef isize* grow = offsets
    cdef isize* xrow = offsets + nk * nq
    cdef isize* start = offsets + 2 * nk * nq
    cdef isize* cursor = start + nk + 1
    cdef isize* toff = cursor + nk
    cdef isize t, q, od, oh, id_, ih, e, ci, kd, kh, k, c
    for c in range(g.cout_g):
        for q in range(q0, q1):
            memcpy(grows + c * gcs + (q - q0) * Wp, gout + c * P + q * Wo, Wo * sizeof(floating))
            if Wp > Wo:
                memset(grows + c * gcs + (q - q0) * Wp + Wo, 0, (Wp - Wo) * sizeof(floating))
    for t in range(Kw):
        toff[t] = t * dw
    e = 0
    k = 0
    for ci in range(g.cin_g):
        for kd in range(g.k[0]):
            for kh in range(g.k[1]):
                start[k] = e
                for q in range(q0, q1):
                    od = q // Ho
                    oh = q - od * Ho
                    id_ = od * g.s[0] - pad_d + kd * g.dil[0]
                    ih = oh * g.s[1] - pad_h + kh * g.dil[1]
                    if 0 <= id_ < D and 0 <= ih < H:
                        grow[e] = (q - q0) * Wp
                        xrow[e] = e * width
                        row_op(rows + e * width, x + ci * DHW + id_ * HW + ih * W, W, 0,
                               width, 1, -pad_w, 1, 0, False)
                        e += 1
                k += 1
    start[nk] = e
    if e == 0:
        return
    if floating is float:
        sigconv_wgrad_f32(acc, g.ck, grows, gcs, rows, grow, xrow, start, nk, nq, Wp, toff,
                          <int>Kw, <int>g.cout_g, state, cursor)
    else:
        sigconv_wgrad_f64(acc, g.ck, grows, gcs, rows, grow, xrow, start, nk, nq, Wp, toff,
                          <int>Kw, <int>g.cout_g, state, cursor)


def conv_weight_grad_direct(const floating[::1] x, const floating[::1] grad_out,
                            floating[::1] grad_w, const isize[:, ::1] items, isize cin,
                            isize cout, isize groups, tuple kernel, tuple stride, tuple dilation):
    """grad_w = g(G, V, s) without patch matrices, for unit stride along W.

    Work units are ranges of output rows of one item, assigned to threads
    statically; each thread sums into its own copy of ``grad_w``, and the
    copies are added in thread order, so a given thread count gives the same
    bits on every run.
    """
    cdef Geometry g = make_geometry(kernel, stride, dilation, ONES, ZEROS, ZEROS, ZEROS,
                                    cin, cout, groups)
    cdef isize n, rows, total_rows = 0, longest = 0
    for n in range(items.shape[0]):
        rows = items[n, OUT_D] * items[n, OUT_H]
        total_rows += rows
        longest = max(longest, rows)
    cdef int threads = team_threads(total_rows, output_positions(items) * g.ck * g.cout)
    cdef isize longest_row = 0
    for n in range(items.shape[0]):
        longest_row = max(longest_row, items[n, OUT_W])
    cdef isize Wp = padded_width(longest_row, sizeof(floating))
    # rows per unit: enough units for every thread, and the input rows copied
    # for a unit within about 1 MiB
    cdef isize nk = g.cin_g * g.k[0] * g.k[1]
    cdef isize width = Wp + (g.k[2] - 1) * g.dil[2]
    cdef isize chunk = max(1, min(longest, (total_rows + 4 * threads - 1) // (4 * threads),
                                  (1 << 20) // max(nk * width * <isize>sizeof(floating), 1)))
    cdef isize count = 0
    for n in range(items.shape[0]):
        count += (items[n, OUT_D] * items[n, OUT_H] + chunk - 1) // chunk
    units_arr = np.empty((max(count, 1), 3), dtype=np.intp)
    cdef isize[:, ::1] units = units_arr
    cdef isize u = 0, q
    for n in range(items.shape[0]):
        rows = items[n, OUT_D] * items[n, OUT_H]
        q = 0
        while q < rows:
            units[u, 0] = n
            units[u, 1] = q
            units[u, 2] = min(q + chunk, rows)
            q += chunk
            u += 1
    cdef isize wsize = g.cout * g.ck
    dtype = np.float32 if floating is float else np.float64
    partial = scratch_array(threads * wsize, dtype).reshape(threads, wsize)
    partial[...] = 0
    cdef isize noffsets = 2 * nk * chunk + 2 * nk + 1 + g.k[2]
    cdef isize ngrows = g.cout_g * chunk * Wp
    cdef isize nrows_buf = nk * chunk * width + ngrows
    cdef isize nstate = 8 * g.ck * (WIDEST_VECTOR // sizeof(floating))
    pointers = scratch_array(threads * noffsets, np.intp)
    buffers = scratch_array(threads * (nrows_buf + nstate), dtype)
    cdef floating[::1] buf = buffers
    cdef floating* bufp = &buf[0]
    cdef floating[:, ::1] acc = partial
    cdef isize[::1] ptrs = pointers
    cdef isize* ptrp = &ptrs[0]
    cdef floating* accp = &acc[0, 0]
    cdef const floating* xp = &x[0] if x.shape[0] > 0 else NULL
    cdef const floating* gp = &grad_out[0] if grad_out.shape[0] > 0 else NULL
    cdef isize nunits = count, grp, P, i, tid
    with nogil:
        for u in prange(nunits, schedule="static", num_threads=threads):
            n = units[u, 0]
            tid = threadid()
            P = items[n, OUT_D] * items[n, OUT_H] * items[n, OUT_W]
            for grp in range(g.groups):
                wgrad_rows(xp + items[n, X_OFF]
                           + grp * g.cin_g * items[n, X_D] * items[n, X_H] * items[n, X_W],
                           gp + items[n, OUT_OFF] + grp * g.cout_g * P,
                           accp + tid * wsize + grp * g.cout_g * g.ck, &items[n, X_OFF], &g,
                           units[u, 1], units[u, 2], ptrp + tid * noffsets,
                           bufp + tid * (nrows_buf + nstate),
                           bufp + tid * (nrows_buf + nstate) + ngrows,
                           bufp + tid * (nrows_buf + nstate) + nrows_buf)
        for i in range(wsize):
            grad_w[i] = 0
            for tid in range(threads):
                grad_w[i] += acc[tid, i]
