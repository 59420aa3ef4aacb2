# Pooling.
"""nogil pooling kernels (private: call them through :mod:`sigconv.functional.pooling`).

Conventions
-----------
Every kernel reads and writes flat, C-contiguous buffers and is told where
each item lives by a per-item table: ``itab[n] = (offset, D, H, W)`` is the
element offset of item ``n`` (its channel 0) in the flat input and its
spatial shape; ``otab`` describes the output the same way.  Item ``n`` is
laid out ``(C, D, H, W)`` from its offset.  A dense batch is the case where
every row has the same shape and the offsets step by ``C * D * H * W``; a
batch of differently sized ("ragged") items just has different rows, and
each item's result equals what it gives alone.  1-D and 2-D data are 3-D
with length-1 leading axes: there is one N-d code path.

``geom`` holds 12 integers: kernel ``(kD, kH, kW)``, stride, padding (zeros
before each axis; the pooling ops pad symmetrically) and dilation.

Work is split over ``(item, channel)`` planes with OpenMP ``prange``; one
thread owns a plane, so scatters inside a plane need no atomics.  Inside a
plane the loops run over output rows; for each window tap the row loop is a
plain strided (usually contiguous) sweep along W, so that the compiler
vectorises it.

Maximum rule (max pooling, adaptive max, maxout): a sample replaces the
running maximum when ``v > m`` or ``v`` is NaN.  So the first maximum in
window scan order wins ties, a NaN anywhere in the window makes the output
NaN, and of several NaNs the last one in scan order is the argmax (PyTorch's
CPU rule).

The kernels trust their caller: shapes, geometry and index ranges are checked
by the Python wrappers.
"""
from libc.math cimport INFINITY, fabs, fabsf, pow, powf, sqrt, sqrtf

# window-sum transform modes: 0 identity (average), 1 |x| (L1), 2 x^2 then square
# root (L2), 3 |x|^p then p-th root (Lp)


# ----------------------------------------------------------------------------
# small helpers
# ----------------------------------------------------------------------------

#: operations counted per sample a pooling kernel reads or writes, for the
#: thread rule: jobs under about 32,000 samples run on one thread.
OPS_PER_SAMPLE = 32


cdef int pool_threads(isize units, isize samples) noexcept:
    return team_threads(units, samples * OPS_PER_SAMPLE)


cdef Geometry pool_geometry(const isize[::1] geom):
    """The window of a pooling call: ``geom`` is kernel, stride, padding, dilation (12 ints)."""
    return make_geometry((geom[0], geom[1], geom[2]), (geom[3], geom[4], geom[5]),
                         (geom[9], geom[10], geom[11]), ONES, (geom[6], geom[7], geom[8]),
                         ZEROS, ZEROS, 1, 1, 1)


cdef inline void _span(isize t, isize s, isize n, isize m, isize* lo, isize* hi) noexcept nogil:
    """Outputs ``o`` in ``[lo, hi)`` with ``0 <= o * s + t < n`` and ``o < m``."""
    cdef isize a = 0, b = 0
    if t < 0:
        a = (-t + s - 1) // s
    if n - 1 - t >= 0:
        b = (n - 1 - t) // s + 1
    if b > m:
        b = m
    if a > b:
        a = b
    lo[0] = a
    hi[0] = b


cdef inline floating _abs(floating v) noexcept nogil:
    if floating is float:
        return fabsf(v)
    else:
        return fabs(v)


cdef inline floating _pow(floating v, floating p) noexcept nogil:
    if floating is float:
        return powf(v, p)
    else:
        return pow(v, p)


cdef inline floating _sqrt(floating v) noexcept nogil:
    if floating is float:
        return sqrtf(v)
    else:
        return sqrt(v)


cdef inline floating _tr(floating v, int mode, floating p) noexcept nogil:
    """The per-sample transform of a window sum."""
    if mode == 0:
        return v
    elif mode == 1:
        return _abs(v)
    elif mode == 2:
        return v * v
    return _pow(_abs(v), p)


cdef inline floating _finish(floating s, int mode, floating p) noexcept nogil:
    """The transform applied to a window sum: the p-th root for Lp pooling."""
    if mode == 2:
        return _sqrt(s)
    elif mode == 3:
        return _pow(s, 1 / p)
    return s


cdef inline floating _dfinish(floating out, int mode, floating p) noexcept nogil:
    """``d out / d sum`` times ``p`` (the ``p`` cancels with :func:`_dtr`); 0 where out is 0."""
    if mode == 0 or mode == 1:
        return 1
    if out == 0:
        return 0
    if mode == 2:
        return 1 / out
    return _pow(out, 1 - p)


cdef inline floating _dtr(floating v, int mode, floating p) noexcept nogil:
    """``d tr(v) / dv`` divided by ``p``: sign(v) |v|^(p-1); 0 at v = 0."""
    if mode == 0:
        return 1
    if v == 0:
        return 0
    if mode == 1:
        return 1 if v > 0 else -1
    if mode == 2:
        return v
    if v > 0:
        return _pow(v, p - 1)
    return -_pow(-v, p - 1)


cdef inline void _taps_in(isize base, isize d, isize k, isize lo_b, isize hi_b,
                          isize* j0, isize* j1) noexcept nogil:
    """Taps ``j`` in ``[j0, j1)`` of ``[0, k)`` with ``lo_b <= base + j * d < hi_b`` (O(1)).

    Window loops run over these taps only, so their work is bounded by the
    input and output sizes however large the kernel and its padding are.
    """
    cdef isize a = 0, b = 0
    if lo_b > base:
        a = (lo_b - base + d - 1) // d
    if hi_b - 1 >= base:
        b = (hi_b - 1 - base) // d + 1
    if b > k:
        b = k
    if a > b:
        a = b
    j0[0] = a
    j1[0] = b


cdef inline isize _count(isize o, isize k, isize s, isize p, isize d, isize n, int divmode) noexcept nogil:
    """Window taps counted by the divisor of average pooling along one axis.

    ``divmode`` 1 counts taps inside input plus padding (clipped at the end
    of the padding: PyTorch's ``count_include_pad=True``), 2 only taps inside
    the input (``count_include_pad=False``).
    """
    cdef isize lo = 0, hi = n, j0, j1
    if divmode == 1:
        lo = -p
        hi = n + p
    _taps_in(o * s - p, d, k, lo, hi, &j0, &j1)
    return j1 - j0


cdef inline isize _first_valid(isize od, isize oh, isize ow, isize D, isize H, isize W,
                             const Geometry* g) noexcept nogil:
    """Flat index of the first in-input tap of a window in scan order, or -1."""
    cdef isize d0, d1, h0, h1, w0, w1
    _taps_in(od * g.s[0] - g.pad[0], g.dil[0], g.k[0], 0, D, &d0, &d1)
    _taps_in(oh * g.s[1] - g.pad[1], g.dil[1], g.k[1], 0, H, &h0, &h1)
    _taps_in(ow * g.s[2] - g.pad[2], g.dil[2], g.k[2], 0, W, &w0, &w1)
    if d0 == d1 or h0 == h1 or w0 == w1:
        return -1
    return (((od * g.s[0] - g.pad[0] + d0 * g.dil[0]) * H
             + oh * g.s[1] - g.pad[1] + h0 * g.dil[1]) * W + ow * g.s[2] - g.pad[2] + w0 * g.dil[2])


#: a tap index past every kernel (kernel sizes are at most 2**60)
cdef isize INDEX_END = (<isize>1) << 62


cdef inline isize _next_tap(isize kw, isize d, isize p, isize s, isize W, isize OW) noexcept nogil:
    """The first W tap at or after ``kw`` that some output reads inside the input.

    Tap ``kw`` reads ``o * s + kw * d - p`` for output ``o``; a tap no output
    reads inside ``[0, W)`` is skipped in one step to the first tap of the
    nearest output to its right.  Returns a tap past any kernel when none is
    left, so a sweep over the W taps costs the useful taps plus one step per
    output, not the kernel size.
    """
    cdef isize t = kw * d - p, o_lo = 0, o_hi, o
    if t > W - 1:
        return INDEX_END
    o_hi = (W - 1 - t) // s
    if t < 0:
        o_lo = (-t + s - 1) // s
    if o_lo <= o_hi and o_lo < OW:
        return kw
    o = o_hi if o_hi < OW else OW - 1
    return (p - o * s + d - 1) // d


cdef isize _count_taps(isize k, isize d, isize p, isize s, isize W, isize OW) noexcept nogil:
    """Number of W taps :func:`_next_tap` visits: at most the input plus the output size."""
    cdef isize n = 0, kw = _next_tap(0, d, p, s, W, OW)
    while kw < k:
        n += 1
        kw = _next_tap(kw + 1, d, p, s, W, OW)
    return n


# ----------------------------------------------------------------------------
# per-plane scratch space
#
# Value-only max pooling and the window sums work separably: the window's
# input rows (only those inside the input) are first reduced into one row
# ``tmp`` of W samples (contiguous sweeps), then ``tmp`` is reduced along W
# with stride s, each W tap over the outputs whose sample it reads lies in
# the input (:func:`_span`, :func:`_next_tap`).  Padding is never
# materialised: it is -inf for max and 0 for sums, so a tap in the padding
# changes nothing.  Scratch is O(W + OW) and work O(input + output) per tap
# row, whatever the kernel size and padding.
# ----------------------------------------------------------------------------


cdef inline void _fill(floating* a, isize n, floating v) noexcept nogil:
    cdef isize i
    for i in range(n):
        a[i] = v


# ----------------------------------------------------------------------------
# max pooling
# ----------------------------------------------------------------------------

cdef inline floating _mx(floating a, floating v) noexcept nogil:
    """The running maximum after seeing ``v``: NaN wins, otherwise the earlier value on ties."""
    return v if ((v > a) | (v != v)) else a


cdef inline void _max_row(floating* acc, const floating* src, isize t, isize lo, isize hi,
                          isize s) noexcept nogil:
    """acc[o] = max(acc[o], src[o*s + t]) for o in [lo, hi), NaN-propagating."""
    cdef isize o
    if s == 1:
        for o in range(lo, hi):
            acc[o] = _mx(acc[o], src[o + t])
    elif s == 2:
        for o in range(lo, hi):
            acc[o] = _mx(acc[o], src[2 * o + t])
    else:
        for o in range(lo, hi):
            acc[o] = _mx(acc[o], src[o * s + t])


cdef void _max_plane(const floating* xp, floating* op, isize D, isize H, isize W,
                     isize OD, isize OH, isize OW, const Geometry* g, floating* tmp) noexcept nogil:
    """Values only, separably (the maximum of a set does not depend on the
    order it is taken in, NaN included; only the argmax needs scan order).

    ``tmp`` has W samples.
    """
    cdef isize od, oh, ow, kd, kh, kw, a, b, rows, i, d0, d1, h0, h1, t, lo, hi
    cdef isize sW = g.s[2], dW = g.dil[2], pW = g.pad[2], kW = g.k[2]
    cdef floating* orow
    cdef floating* row = tmp
    cdef const floating* src
    cdef floating ninf = -INFINITY
    for od in range(OD):
        _taps_in(od * g.s[0] - g.pad[0], g.dil[0], g.k[0], 0, D, &d0, &d1)
        for oh in range(OH):
            _taps_in(oh * g.s[1] - g.pad[1], g.dil[1], g.k[1], 0, H, &h0, &h1)
            orow = op + (od * OH + oh) * OW
            rows = 0
            for kd in range(d0, d1):
                a = od * g.s[0] - g.pad[0] + kd * g.dil[0]
                for kh in range(h0, h1):
                    b = oh * g.s[1] - g.pad[1] + kh * g.dil[1]
                    src = xp + (a * H + b) * W
                    if rows == 0:
                        for i in range(W):
                            row[i] = src[i]
                    else:
                        for i in range(W):
                            row[i] = _mx(row[i], src[i])
                    rows += 1
            if rows == 0:
                _fill(row, W, ninf)
            if kW == 2 and sW == 2 and dW == 1 and pW == 0 and 2 * OW <= W:
                for ow in range(OW):
                    orow[ow] = _mx(row[2 * ow], row[2 * ow + 1])
            else:
                _fill(orow, OW, ninf)
                kw = _next_tap(0, dW, pW, sW, W, OW)
                while kw < kW:
                    t = kw * dW - pW
                    _span(t, sW, W, OW, &lo, &hi)
                    _max_row(orow, row, t, lo, hi, sW)
                    kw = _next_tap(kw + 1, dW, pW, sW, W, OW)


cdef extern from *:
    """
    /* m[i], ti[i] <- v[i], base + i * s where v[i] > m[i] or v[i] is NaN, for b0 <= i < b1:
       branch-free, so that the compiler can vectorise it */
    #define SIGCONV_SELECT_MAX(T, NAME)                                                 \
    static inline void NAME(T *m, ptrdiff_t *ti, const T *v, ptrdiff_t b0, ptrdiff_t b1, \
                            ptrdiff_t base, ptrdiff_t s)                               \
    {                                                                                  \
        _Pragma("omp simd")                                                            \
        for (ptrdiff_t i = b0; i < b1; i++) {                                          \
            const T x = v[i];                                                          \
            const ptrdiff_t c = -(ptrdiff_t)((x > m[i]) | (x != x));   /* all ones or 0 */ \
            m[i] = c ? x : m[i];                                                       \
            ti[i] = ((base + i * s) & c) | (ti[i] & ~c);                               \
        }                                                                              \
    }
    SIGCONV_SELECT_MAX(float, sigconv_select_max_f32)
    SIGCONV_SELECT_MAX(double, sigconv_select_max_f64)
    """
    void sigconv_select_max_f32(float* m, isize* ti, const float* v, isize b0, isize b1,
                                isize base, isize s) noexcept nogil
    void sigconv_select_max_f64(double* m, isize* ti, const double* v, isize b0, isize b1,
                                isize base, isize s) noexcept nogil


cdef enum:
    #: outputs of a row handled together by the argmax loop (stack buffers)
    IDX_BLOCK = 256


cdef void _max_plane_idx(const floating* xp, floating* op, isize* ip, isize D, isize H, isize W,
                         isize OD, isize OH, isize OW, const Geometry* g, isize* sp) noexcept nogil:
    """Values and argmax, tap by tap in window scan order (the tie rule needs the order).

    Outputs go in blocks of ``IDX_BLOCK`` along W: for each tap the block's
    (strided) samples are gathered into a contiguous buffer, then a
    branch-free select keeps the running maximum and its flat index.
    ``sp`` has room for ``3 * _count_taps`` entries: each useful W tap's offset and span.
    """
    cdef isize od, oh, ow, kd, kh, kw, a, b, r, d0, d1, h0, h1, j, nw = 0
    cdef isize o0, nb, b0, b1, i, t, sW = g.s[2], rowoff
    cdef floating* orow
    cdef isize* irow
    cdef const floating* src
    cdef floating ninf = -INFINITY
    cdef floating m[IDX_BLOCK]
    cdef floating vals[IDX_BLOCK]
    cdef isize ti[IDX_BLOCK]
    kw = _next_tap(0, g.dil[2], g.pad[2], g.s[2], W, OW)
    while kw < g.k[2]:
        sp[3 * nw] = kw * g.dil[2] - g.pad[2]
        _span(sp[3 * nw], g.s[2], W, OW, &sp[3 * nw + 1], &sp[3 * nw + 2])
        nw += 1
        kw = _next_tap(kw + 1, g.dil[2], g.pad[2], g.s[2], W, OW)
    for od in range(OD):
        _taps_in(od * g.s[0] - g.pad[0], g.dil[0], g.k[0], 0, D, &d0, &d1)
        for oh in range(OH):
            _taps_in(oh * g.s[1] - g.pad[1], g.dil[1], g.k[1], 0, H, &h0, &h1)
            r = (od * OH + oh) * OW
            orow = op + r
            irow = ip + r
            o0 = 0
            while o0 < OW:
                nb = min(<isize>IDX_BLOCK, OW - o0)
                for i in range(nb):
                    m[i] = ninf
                    ti[i] = -1
                for kd in range(d0, d1):
                    a = od * g.s[0] - g.pad[0] + kd * g.dil[0]
                    for kh in range(h0, h1):
                        b = oh * g.s[1] - g.pad[1] + kh * g.dil[1]
                        rowoff = (a * H + b) * W
                        src = xp + rowoff
                        for j in range(nw):
                            t = sp[3 * j]
                            b0 = max(sp[3 * j + 1], o0) - o0
                            b1 = min(sp[3 * j + 2], o0 + nb) - o0
                            if b1 <= b0:
                                continue
                            for i in range(b0, b1):
                                vals[i] = src[(o0 + i) * sW + t]
                            if floating is float:
                                sigconv_select_max_f32(m, ti, vals, b0, b1, rowoff + o0 * sW + t, sW)
                            else:
                                sigconv_select_max_f64(m, ti, vals, b0, b1, rowoff + o0 * sW + t, sW)
                for i in range(nb):
                    orow[o0 + i] = m[i]
                    irow[o0 + i] = ti[i]
                o0 += nb
            # a window whose samples are all -inf keeps its first sample
            for ow in range(OW):
                if irow[ow] < 0:
                    irow[ow] = _first_valid(od, oh, ow, D, H, W, g)


def max_pool_forward(const floating[::1] x, const isize[:, ::1] itab,
                     floating[::1] out, isize[::1] idx, const isize[:, ::1] otab,
                     isize C, const isize[::1] geom, bint want_idx):
    """Max pooling of every (item, channel) plane; ``idx`` is written when ``want_idx``."""
    cdef isize units = itab.shape[0] * C, u, n, c, isz, osz
    if units == 0:
        return
    cdef int nt = pool_threads(units, x.shape[0] + out.shape[0])
    cdef const floating* xp = &x[0]
    cdef floating* op = &out[0]
    cdef isize* ip = &idx[0] if want_idx else NULL
    cdef const isize* it = &itab[0, 0]
    cdef const isize* ot = &otab[0, 0]
    cdef Geometry geo = pool_geometry(geom)
    cdef const Geometry* g = &geo
    cdef isize* sp
    cdef floating* tmp
    cdef isize missing = 0
    for u in prange(units, nogil=True, schedule="dynamic", num_threads=nt):
        n = u // C
        c = u % C
        isz = it[POOL_COLS * n + X_D] * it[POOL_COLS * n + X_H] * it[POOL_COLS * n + X_W]
        osz = ot[POOL_COLS * n + X_D] * ot[POOL_COLS * n + X_H] * ot[POOL_COLS * n + X_W]
        if want_idx:
            sp = <isize*>try_alloc(3 * _count_taps(g.k[2], g.dil[2], g.pad[2], g.s[2],
                                                   it[POOL_COLS * n + X_W],
                                                   ot[POOL_COLS * n + X_W]) + 3, sizeof(isize))
            if sp == NULL:
                missing += 1
                continue
            _max_plane_idx(xp + it[POOL_COLS * n + X_OFF] + c * isz, op + ot[POOL_COLS * n + X_OFF] + c * osz,
                           ip + ot[POOL_COLS * n + X_OFF] + c * osz,
                           it[POOL_COLS * n + X_D], it[POOL_COLS * n + X_H], it[POOL_COLS * n + X_W],
                           ot[POOL_COLS * n + X_D], ot[POOL_COLS * n + X_H], ot[POOL_COLS * n + X_W], g, sp)
            free(sp)
        else:
            tmp = <floating*>try_alloc(it[POOL_COLS * n + X_W], sizeof(floating))
            if tmp == NULL:
                missing += 1
                continue
            _max_plane(xp + it[POOL_COLS * n + X_OFF] + c * isz, op + ot[POOL_COLS * n + X_OFF] + c * osz,
                       it[POOL_COLS * n + X_D], it[POOL_COLS * n + X_H], it[POOL_COLS * n + X_W],
                       ot[POOL_COLS * n + X_D], ot[POOL_COLS * n + X_H], ot[POOL_COLS * n + X_W], g, tmp)
            free(tmp)
    if missing:
        raise_no_memory("an input row", itab[0, X_W] + otab[0, X_W], sizeof(floating))


# ----------------------------------------------------------------------------
# window sums: average, weighted (Gaussian) average, Lp
#
# The window weights are separable, w[kd, kh, kw] = wD[kd] wH[kh] wW[kw]
# (all ones for average and Lp pooling); see "per-plane scratch space".
# ----------------------------------------------------------------------------

cdef inline void _acc_row(floating* acc, const floating* src, isize n, floating wt,
                          int mode, floating p, bint first) noexcept nogil:
    """acc[i] (+)= wt * tr(src[i]) for i in [0, n); ``first`` assigns instead of adding."""
    cdef isize i
    cdef floating v
    if first:
        if mode == 0:
            for i in range(n):
                acc[i] = wt * src[i]
        elif mode == 2:
            for i in range(n):
                v = src[i]
                acc[i] = wt * (v * v)
        else:
            for i in range(n):
                acc[i] = wt * _tr(src[i], mode, p)
    else:
        if mode == 0:
            for i in range(n):
                acc[i] += wt * src[i]
        elif mode == 2:
            for i in range(n):
                v = src[i]
                acc[i] += wt * (v * v)
        else:
            for i in range(n):
                acc[i] += wt * _tr(src[i], mode, p)


cdef inline void _sum_row(floating* acc, const floating* src, isize t, isize lo, isize hi,
                          isize s, floating wt) noexcept nogil:
    """acc[o] += wt * src[o*s + t] for o in [lo, hi)."""
    cdef isize o
    if s == 1:
        for o in range(lo, hi):
            acc[o] += wt * src[o + t]
    elif s == 2:
        for o in range(lo, hi):
            acc[o] += wt * src[2 * o + t]
    else:
        for o in range(lo, hi):
            acc[o] += wt * src[o * s + t]


cdef inline void _counts(floating* cw, const Geometry* g, isize W, isize OW, int divmode) noexcept nogil:
    cdef isize ow
    for ow in range(OW):
        cw[ow] = _count(ow, g.k[2], g.s[2], g.pad[2], g.dil[2], W, divmode)


cdef void _sum_plane(const floating* xp, floating* op, isize D, isize H, isize W,
                     isize OD, isize OH, isize OW, const Geometry* g, const floating* w,
                     int divmode, int mode, floating p, floating* tmp,
                     floating* cw) noexcept nogil:
    """``tmp`` has W samples, ``cw`` OW."""
    cdef isize od, oh, ow, kd, kh, kw, a, b, cd, ch, rows, d0, d1, h0, h1, t, lo, hi
    cdef isize sW = g.s[2], dW = g.dil[2], pW = g.pad[2], kW = g.k[2]
    cdef floating* orow
    cdef floating* row = tmp
    cdef floating wt = 1, f
    if divmode:
        _counts(cw, g, W, OW, divmode)
    for od in range(OD):
        cd = _count(od, g.k[0], g.s[0], g.pad[0], g.dil[0], D, divmode) if divmode else 1
        _taps_in(od * g.s[0] - g.pad[0], g.dil[0], g.k[0], 0, D, &d0, &d1)
        for oh in range(OH):
            ch = _count(oh, g.k[1], g.s[1], g.pad[1], g.dil[1], H, divmode) if divmode else 1
            _taps_in(oh * g.s[1] - g.pad[1], g.dil[1], g.k[1], 0, H, &h0, &h1)
            rows = 0
            for kd in range(d0, d1):
                a = od * g.s[0] - g.pad[0] + kd * g.dil[0]
                for kh in range(h0, h1):
                    b = oh * g.s[1] - g.pad[1] + kh * g.dil[1]
                    if w != NULL:
                        wt = w[kd] * w[g.k[0] + kh]
                    _acc_row(row, xp + (a * H + b) * W, W, wt, mode, p, rows == 0)
                    rows += 1
            if rows == 0:
                _fill(row, W, <floating>0)
            orow = op + (od * OH + oh) * OW
            if w == NULL and kW == 2 and sW == 2 and dW == 1 and pW == 0 and 2 * OW <= W:
                for ow in range(OW):
                    orow[ow] = row[2 * ow] + row[2 * ow + 1]
            else:
                _fill(orow, OW, <floating>0)
                wt = 1
                kw = _next_tap(0, dW, pW, sW, W, OW)
                while kw < kW:
                    if w != NULL:
                        wt = w[g.k[0] + g.k[1] + kw]
                    t = kw * dW - pW
                    _span(t, sW, W, OW, &lo, &hi)
                    _sum_row(orow, row, t, lo, hi, sW, wt)
                    kw = _next_tap(kw + 1, dW, pW, sW, W, OW)
            if divmode:
                f = <floating>(cd * ch)
                for ow in range(OW):
                    orow[ow] = orow[ow] / (f * cw[ow])
            elif mode == 2:
                for ow in range(OW):
                    orow[ow] = _sqrt(orow[ow])
            elif mode == 3:
                for ow in range(OW):
                    orow[ow] = _finish(orow[ow], mode, p)


def window_sum_forward(const floating[::1] x, const isize[:, ::1] itab,
                       floating[::1] out, const isize[:, ::1] otab, isize C,
                       const isize[::1] geom, const floating[::1] weights,
                       int divmode, int mode, double p):
    """``out = finish(scale * sum_taps w[tap] * tr(x))`` over every window.

    ``weights`` holds the separable window weights ``wD, wH, wW`` one after
    the other (kD + kH + kW values), or is empty for all ones; ``divmode`` 0
    (no divisor), 1 (count_include_pad), 2 (exclude pad); ``mode`` 0 identity,
    1 |x|, 2 x^2 and square root, 3 |x|^p and p-th root.
    """
    cdef isize units = itab.shape[0] * C, u, n, c, isz, osz, W, OW, Wp
    if units == 0:
        return
    cdef int nt = pool_threads(units, x.shape[0] + out.shape[0])
    cdef const floating* xp = &x[0]
    cdef floating* op = &out[0]
    cdef const floating* wp = &weights[0] if weights.shape[0] > 0 else NULL
    cdef const isize* it = &itab[0, 0]
    cdef const isize* ot = &otab[0, 0]
    cdef Geometry geo = pool_geometry(geom)
    cdef const Geometry* g = &geo
    cdef floating pp = <floating>p
    cdef floating* buf
    cdef isize missing = 0
    for u in prange(units, nogil=True, schedule="dynamic", num_threads=nt):
        n = u // C
        c = u % C
        isz = it[POOL_COLS * n + X_D] * it[POOL_COLS * n + X_H] * it[POOL_COLS * n + X_W]
        osz = ot[POOL_COLS * n + X_D] * ot[POOL_COLS * n + X_H] * ot[POOL_COLS * n + X_W]
        W = it[POOL_COLS * n + X_W]
        OW = ot[POOL_COLS * n + X_W]
        Wp = W
        buf = <floating*>try_alloc(Wp + OW, sizeof(floating))
        if buf == NULL:
            missing += 1
            continue
        _sum_plane(xp + it[POOL_COLS * n + X_OFF] + c * isz, op + ot[POOL_COLS * n + X_OFF] + c * osz,
                   it[POOL_COLS * n + X_D], it[POOL_COLS * n + X_H], W, ot[POOL_COLS * n + X_D], ot[POOL_COLS * n + X_H], OW,
                   g, wp, divmode, mode, pp, buf, buf + Wp)
        free(buf)
    if missing:
        raise_no_memory("an input row", itab[0, X_W] + otab[0, X_W], sizeof(floating))


cdef inline void _scatter_row(floating* dst, const floating* c, isize t, isize lo, isize hi,
                              isize s, floating wt) noexcept nogil:
    """dst[o*s + t] += wt * c[o] for o in [lo, hi)."""
    cdef isize o
    if s == 1:
        for o in range(lo, hi):
            dst[o + t] += wt * c[o]
    elif s == 2:
        for o in range(lo, hi):
            dst[2 * o + t] += wt * c[o]
    else:
        for o in range(lo, hi):
            dst[o * s + t] += wt * c[o]


cdef void _sum_plane_backward(const floating* gp, floating* gip, const floating* xp,
                              const floating* op, isize D, isize H, isize W,
                              isize OD, isize OH, isize OW, const Geometry* g, const floating* w,
                              int divmode, int mode, floating p, floating* tmp,
                              floating* cw, floating* crow) noexcept nogil:
    """The transpose of :func:`_sum_plane`: spread along W into ``tmp`` (W samples), then onto the rows."""
    cdef isize od, oh, ow, kd, kh, kw, a, b, cd, ch, r, i, d0, d1, h0, h1, t, lo, hi
    cdef isize sW = g.s[2], dW = g.dil[2], pW = g.pad[2]
    cdef const floating* grow
    cdef floating* dst
    cdef floating* row = tmp
    cdef floating wt = 1, f
    memset(gip, 0, D * H * W * sizeof(floating))
    if divmode:
        _counts(cw, g, W, OW, divmode)
    for od in range(OD):
        cd = _count(od, g.k[0], g.s[0], g.pad[0], g.dil[0], D, divmode) if divmode else 1
        _taps_in(od * g.s[0] - g.pad[0], g.dil[0], g.k[0], 0, D, &d0, &d1)
        for oh in range(OH):
            ch = _count(oh, g.k[1], g.s[1], g.pad[1], g.dil[1], H, divmode) if divmode else 1
            _taps_in(oh * g.s[1] - g.pad[1], g.dil[1], g.k[1], 0, H, &h0, &h1)
            r = (od * OH + oh) * OW
            grow = gp + r
            if divmode:
                f = <floating>(cd * ch)
                for ow in range(OW):
                    crow[ow] = grow[ow] / (f * cw[ow])
            elif mode == 0 or mode == 1:
                for ow in range(OW):
                    crow[ow] = grow[ow]
            else:
                for ow in range(OW):
                    crow[ow] = grow[ow] * _dfinish(op[r + ow], mode, p)
            _fill(tmp, W, <floating>0)
            kw = _next_tap(0, dW, pW, sW, W, OW)
            while kw < g.k[2]:
                if w != NULL:
                    wt = w[g.k[0] + g.k[1] + kw]
                t = kw * dW - pW
                _span(t, sW, W, OW, &lo, &hi)
                _scatter_row(row, crow, t, lo, hi, sW, wt)
                kw = _next_tap(kw + 1, dW, pW, sW, W, OW)
            for kd in range(d0, d1):
                a = od * g.s[0] - g.pad[0] + kd * g.dil[0]
                for kh in range(h0, h1):
                    b = oh * g.s[1] - g.pad[1] + kh * g.dil[1]
                    wt = w[kd] * w[g.k[0] + kh] if w != NULL else 1
                    dst = gip + (a * H + b) * W
                    for i in range(W):
                        dst[i] += wt * row[i]
    if mode != 0:
        for i in range(D * H * W):
            gip[i] = gip[i] * _dtr(xp[i], mode, p)


def window_sum_backward(const floating[::1] gout, const isize[:, ::1] otab,
                        floating[::1] gin, const isize[:, ::1] itab, isize C,
                        const isize[::1] geom, const floating[::1] weights,
                        int divmode, int mode, double p,
                        const floating[::1] x, const floating[::1] out):
    """Gradient of :func:`window_sum_forward` with respect to its input.

    ``x`` and ``out`` (the forward input and output) are read only for the
    Lp modes (1-3); pass empty arrays otherwise.
    """
    cdef isize units = itab.shape[0] * C, u, n, c, isz, osz, W, OW, Wp
    if units == 0:
        return
    cdef int nt = pool_threads(units, gout.shape[0] + gin.shape[0])
    cdef const floating* gp = &gout[0]
    cdef floating* gip = &gin[0]
    cdef const floating* xp = &x[0] if mode != 0 else NULL
    cdef const floating* op = &out[0] if mode != 0 else NULL
    cdef const floating* wp = &weights[0] if weights.shape[0] > 0 else NULL
    cdef const isize* it = &itab[0, 0]
    cdef const isize* ot = &otab[0, 0]
    cdef Geometry geo = pool_geometry(geom)
    cdef const Geometry* g = &geo
    cdef floating pp = <floating>p
    cdef floating* buf
    cdef isize missing = 0
    for u in prange(units, nogil=True, schedule="dynamic", num_threads=nt):
        n = u // C
        c = u % C
        isz = it[POOL_COLS * n + X_D] * it[POOL_COLS * n + X_H] * it[POOL_COLS * n + X_W]
        osz = ot[POOL_COLS * n + X_D] * ot[POOL_COLS * n + X_H] * ot[POOL_COLS * n + X_W]
        W = it[POOL_COLS * n + X_W]
        OW = ot[POOL_COLS * n + X_W]
        Wp = W
        buf = <floating*>try_alloc(Wp + 2 * OW, sizeof(floating))
        if buf == NULL:
            missing += 1
            continue
        _sum_plane_backward(gp + ot[POOL_COLS * n + X_OFF] + c * osz, gip + it[POOL_COLS * n + X_OFF] + c * isz,
                            (xp + it[POOL_COLS * n + X_OFF] + c * isz) if mode != 0 else NULL,
                            (op + ot[POOL_COLS * n + X_OFF] + c * osz) if mode != 0 else NULL,
                            it[POOL_COLS * n + X_D], it[POOL_COLS * n + X_H], W, ot[POOL_COLS * n + X_D], ot[POOL_COLS * n + X_H], OW,
                            g, wp, divmode, mode, pp, buf, buf + Wp, buf + Wp + OW)
        free(buf)
    if missing:
        raise_no_memory("an input row", itab[0, X_W] + otab[0, X_W], sizeof(floating))


# ----------------------------------------------------------------------------
# adaptive pooling: window i of m over n samples is [floor(i n / m), ceil((i+1) n / m))
# ----------------------------------------------------------------------------

cdef inline isize _astart(isize i, isize n, isize m) noexcept nogil:
    return (i * n) // m


cdef inline isize _aend(isize i, isize n, isize m) noexcept nogil:
    return ((i + 1) * n + m - 1) // m


cdef inline double _sum_span(const floating* a, isize n, int mode, floating p) noexcept nogil:
    """sum tr(a[i]) over [0, n) in double, with eight partial sums (vectorised)."""
    cdef double part[8]
    cdef double s = 0
    cdef isize i = 0, j
    for j in range(8):
        part[j] = 0
    if mode == 0:
        while i + 8 <= n:
            for j in range(8):
                part[j] += a[i + j]
            i += 8
    elif mode == 2:
        while i + 8 <= n:
            for j in range(8):
                part[j] += <double>a[i + j] * <double>a[i + j]
            i += 8
    else:
        while i + 8 <= n:
            for j in range(8):
                part[j] += _tr(a[i + j], mode, p)
            i += 8
    for j in range(8):
        s += part[j]
    while i < n:
        s += _tr(a[i], mode, p)
        i += 1
    return s


cdef inline floating _max_span(const floating* a, isize n, floating m) noexcept nogil:
    """The running maximum ``m`` after a[0:n], NaN-propagating (value only), vectorised."""
    cdef floating part[8]
    cdef isize i = 0, j
    if n >= 8:
        for j in range(8):
            part[j] = a[j]
        i = 8
        while i + 8 <= n:
            for j in range(8):
                part[j] = _mx(part[j], a[i + j])
            i += 8
        for j in range(8):
            m = _mx(m, part[j])
    while i < n:
        m = _mx(m, a[i])
        i += 1
    return m


cdef void _adaptive_plane(const floating* xp, floating* op, isize* ip, bint want_idx,
                          isize D, isize H, isize W, isize OD, isize OH, isize OW,
                          int kind, int mode, floating p) noexcept nogil:
    """kind 0: average, 1: maximum, 2: Lp (``mode`` as in the window sums).

    A window is swept as contiguous spans: one per (depth, row), or one per
    depth when it covers whole rows (as global pooling does).
    """
    cdef isize od, oh, ow, d0, d1, h0, h1, w0, w1, a, b, q, mi, r, nb, span
    cdef floating m, v
    cdef double s
    for od in range(OD):
        d0 = _astart(od, D, OD)
        d1 = _aend(od, D, OD)
        for oh in range(OH):
            h0 = _astart(oh, H, OH)
            h1 = _aend(oh, H, OH)
            r = (od * OH + oh) * OW
            for ow in range(OW):
                w0 = _astart(ow, W, OW)
                w1 = _aend(ow, W, OW)
                # rows h0..h1 of one depth form one span when the window covers whole rows
                if w0 == 0 and w1 == W:
                    nb = 1
                    span = (h1 - h0) * W
                else:
                    nb = h1 - h0
                    span = w1 - w0
                if kind == 1 and want_idx:
                    m = -INFINITY
                    mi = (d0 * H + h0) * W + w0
                    for a in range(d0, d1):
                        for b in range(h0, h1):
                            for q in range((a * H + b) * W + w0, (a * H + b) * W + w1):
                                v = xp[q]
                                if (v > m) | (v != v):
                                    m = v
                                    mi = q
                    op[r + ow] = m
                    ip[r + ow] = mi
                elif kind == 1:
                    m = -INFINITY
                    for a in range(d0, d1):
                        for b in range(nb):
                            m = _max_span(xp + (a * H + h0 + b) * W + w0, span, m)
                    op[r + ow] = m
                else:
                    s = 0
                    for a in range(d0, d1):
                        for b in range(nb):
                            s = s + _sum_span(xp + (a * H + h0 + b) * W + w0, span, mode, p)
                    if kind == 0:
                        op[r + ow] = <floating>(s / ((d1 - d0) * (h1 - h0) * (w1 - w0)))
                    else:
                        op[r + ow] = _finish(<floating>s, mode, p)


def adaptive_forward(const floating[::1] x, const isize[:, ::1] itab,
                     floating[::1] out, isize[::1] idx, const isize[:, ::1] otab,
                     isize C, int kind, int mode, double p, bint want_idx):
    """Adaptive pooling (kind 0 average, 1 maximum, 2 Lp) of every plane."""
    cdef isize units = itab.shape[0] * C, u, n, c, isz, osz
    if units == 0:
        return
    cdef int nt = pool_threads(units, x.shape[0] + out.shape[0])
    cdef const floating* xp = &x[0]
    cdef floating* op = &out[0]
    cdef isize* ip = &idx[0] if want_idx else NULL
    cdef const isize* it = &itab[0, 0]
    cdef const isize* ot = &otab[0, 0]
    cdef floating pp = <floating>p
    for u in prange(units, nogil=True, schedule="dynamic", num_threads=nt):
        n = u // C
        c = u % C
        isz = it[POOL_COLS * n + X_D] * it[POOL_COLS * n + X_H] * it[POOL_COLS * n + X_W]
        osz = ot[POOL_COLS * n + X_D] * ot[POOL_COLS * n + X_H] * ot[POOL_COLS * n + X_W]
        _adaptive_plane(xp + it[POOL_COLS * n + X_OFF] + c * isz, op + ot[POOL_COLS * n + X_OFF] + c * osz,
                        (ip + ot[POOL_COLS * n + X_OFF] + c * osz) if want_idx else NULL, want_idx,
                        it[POOL_COLS * n + X_D], it[POOL_COLS * n + X_H], it[POOL_COLS * n + X_W],
                        ot[POOL_COLS * n + X_D], ot[POOL_COLS * n + X_H], ot[POOL_COLS * n + X_W], kind, mode, pp)


cdef void _adaptive_plane_backward(const floating* gp, floating* gip, const floating* xp,
                                   const floating* op, isize D, isize H, isize W,
                                   isize OD, isize OH, isize OW, int kind, int mode,
                                   floating p) noexcept nogil:
    """Gradient of the average (kind 0) and Lp (kind 2) adaptive pools."""
    cdef isize od, oh, ow, d0, d1, h0, h1, w0, w1, a, b, q, r, i
    cdef floating c
    memset(gip, 0, D * H * W * sizeof(floating))
    for od in range(OD):
        d0 = _astart(od, D, OD)
        d1 = _aend(od, D, OD)
        for oh in range(OH):
            h0 = _astart(oh, H, OH)
            h1 = _aend(oh, H, OH)
            r = (od * OH + oh) * OW
            for ow in range(OW):
                w0 = _astart(ow, W, OW)
                w1 = _aend(ow, W, OW)
                if kind == 0:
                    c = gp[r + ow] / <floating>((d1 - d0) * (h1 - h0) * (w1 - w0))
                else:
                    c = gp[r + ow] * _dfinish(op[r + ow], mode, p)
                for a in range(d0, d1):
                    for b in range(h0, h1):
                        for q in range((a * H + b) * W + w0, (a * H + b) * W + w1):
                            gip[q] += c
    if kind != 0:
        for i in range(D * H * W):
            gip[i] = gip[i] * _dtr(xp[i], mode, p)


def adaptive_backward(const floating[::1] gout, const isize[:, ::1] otab,
                      floating[::1] gin, const isize[:, ::1] itab, isize C,
                      int kind, int mode, double p,
                      const floating[::1] x, const floating[::1] out):
    """Gradient of :func:`adaptive_forward` for kind 0 (average) and 2 (Lp).

    The maximum's gradient is :func:`index_scatter` with the argmax indices.
    """
    cdef isize units = itab.shape[0] * C, u, n, c, isz, osz
    if units == 0:
        return
    cdef int nt = pool_threads(units, gout.shape[0] + gin.shape[0])
    cdef const floating* gp = &gout[0]
    cdef floating* gip = &gin[0]
    cdef const floating* xp = &x[0] if kind != 0 else NULL
    cdef const floating* op = &out[0] if kind != 0 else NULL
    cdef const isize* it = &itab[0, 0]
    cdef const isize* ot = &otab[0, 0]
    cdef floating pp = <floating>p
    for u in prange(units, nogil=True, schedule="dynamic", num_threads=nt):
        n = u // C
        c = u % C
        isz = it[POOL_COLS * n + X_D] * it[POOL_COLS * n + X_H] * it[POOL_COLS * n + X_W]
        osz = ot[POOL_COLS * n + X_D] * ot[POOL_COLS * n + X_H] * ot[POOL_COLS * n + X_W]
        _adaptive_plane_backward(gp + ot[POOL_COLS * n + X_OFF] + c * osz, gip + it[POOL_COLS * n + X_OFF] + c * isz,
                                 (xp + it[POOL_COLS * n + X_OFF] + c * isz) if kind != 0 else NULL,
                                 (op + ot[POOL_COLS * n + X_OFF] + c * osz) if kind != 0 else NULL,
                                 it[POOL_COLS * n + X_D], it[POOL_COLS * n + X_H], it[POOL_COLS * n + X_W],
                                 ot[POOL_COLS * n + X_D], ot[POOL_COLS * n + X_H], ot[POOL_COLS * n + X_W], kind, mode, pp)


# ----------------------------------------------------------------------------
# index scatter / gather: max pooling backward, max unpooling and its backward
# ----------------------------------------------------------------------------

def index_scatter(const floating[::1] src, const isize[::1] idx, const isize[:, ::1] stab,
                  floating[::1] dst, const isize[:, ::1] dtab, isize C, bint accumulate):
    """Per plane: zero ``dst``, then ``dst[idx[j]] (+)= src[j]`` (negative indices skipped).

    ``idx`` is laid out like ``src`` (table ``stab``) and holds flat indices
    into the matching ``dst`` plane (table ``dtab``).  With ``accumulate``
    repeated indices add up (max pooling's gradient); without, the last write
    wins (max unpooling).
    """
    cdef isize units = stab.shape[0] * C, u, n, c, ssz, dsz, j, q
    if units == 0:
        return
    cdef int nt = pool_threads(units, src.shape[0] + dst.shape[0])
    cdef const floating* sp = &src[0]
    cdef const isize* ip = &idx[0]
    cdef floating* dp = &dst[0]
    cdef const isize* st = &stab[0, 0]
    cdef const isize* dt = &dtab[0, 0]
    cdef const floating* s
    cdef const isize* ii
    cdef floating* d
    for u in prange(units, nogil=True, schedule="dynamic", num_threads=nt):
        n = u // C
        c = u % C
        ssz = st[POOL_COLS * n + X_D] * st[POOL_COLS * n + X_H] * st[POOL_COLS * n + X_W]
        dsz = dt[POOL_COLS * n + X_D] * dt[POOL_COLS * n + X_H] * dt[POOL_COLS * n + X_W]
        s = sp + st[POOL_COLS * n + X_OFF] + c * ssz
        ii = ip + st[POOL_COLS * n + X_OFF] + c * ssz
        d = dp + dt[POOL_COLS * n + X_OFF] + c * dsz
        memset(d, 0, dsz * sizeof(floating))
        if accumulate:
            for j in range(ssz):
                q = ii[j]
                if q >= 0:
                    d[q] += s[j]
        else:
            for j in range(ssz):
                q = ii[j]
                if q >= 0:
                    d[q] = s[j]


def index_gather(const floating[::1] src, const isize[:, ::1] stab, const isize[::1] idx,
                 floating[::1] dst, const isize[:, ::1] dtab, isize C):
    """Per plane: ``dst[j] = src[idx[j]]`` (0 where ``idx[j] < 0``); ``idx`` laid out like ``dst``."""
    cdef isize units = dtab.shape[0] * C, u, n, c, ssz, dsz, j, q
    if units == 0:
        return
    cdef int nt = pool_threads(units, src.shape[0] + dst.shape[0])
    cdef const floating* sp = &src[0]
    cdef const isize* ip = &idx[0]
    cdef floating* dp = &dst[0]
    cdef const isize* st = &stab[0, 0]
    cdef const isize* dt = &dtab[0, 0]
    cdef const floating* s
    cdef const isize* ii
    cdef floating* d
    for u in prange(units, nogil=True, schedule="dynamic", num_threads=nt):
        n = u // C
        c = u % C
        ssz = st[POOL_COLS * n + X_D] * st[POOL_COLS * n + X_H] * st[POOL_COLS * n + X_W]
        dsz = dt[POOL_COLS * n + X_D] * dt[POOL_COLS * n + X_H] * dt[POOL_COLS * n + X_W]
        s = sp + st[POOL_COLS * n + X_OFF] + c * ssz
        ii = ip + dt[POOL_COLS * n + X_OFF] + c * dsz
        d = dp + dt[POOL_COLS * n + X_OFF] + c * dsz
        for j in range(dsz):
            q = ii[j]
            d[j] = s[q] if q >= 0 else 0


# ----------------------------------------------------------------------------
# maxout: maximum over consecutive groups of `pieces` channels
# ----------------------------------------------------------------------------

def maxout_forward(const floating[::1] x, const isize[:, ::1] itab, floating[::1] out,
                   const isize[:, ::1] otab, isize G, isize pieces):
    """``out[n, g] = max_q x[n, g * pieces + q]`` elementwise, ``G`` output channels."""
    cdef isize units = itab.shape[0] * G, u, n, gi, S, q, j
    if units == 0:
        return
    cdef int nt = pool_threads(units, x.shape[0] + out.shape[0])
    cdef const floating* xp = &x[0]
    cdef floating* op = &out[0]
    cdef const isize* it = &itab[0, 0]
    cdef const isize* ot = &otab[0, 0]
    cdef const floating* s
    cdef floating* d
    cdef floating a, v
    for u in prange(units, nogil=True, schedule="dynamic", num_threads=nt):
        n = u // G
        gi = u % G
        S = it[POOL_COLS * n + X_D] * it[POOL_COLS * n + X_H] * it[POOL_COLS * n + X_W]
        s = xp + it[POOL_COLS * n + X_OFF] + gi * pieces * S
        d = op + ot[POOL_COLS * n + X_OFF] + gi * S
        for j in range(S):
            d[j] = s[j]
        for q in range(1, pieces):
            for j in range(S):
                a = d[j]
                v = s[q * S + j]
                d[j] = v if ((v > a) | (v != v)) else a


def maxout_backward(const floating[::1] gout, const floating[::1] x,
                    const isize[:, ::1] itab, floating[::1] gin, const isize[:, ::1] otab,
                    isize G, isize pieces):
    """Route each output gradient to the channel that won the maximum (same rule as forward)."""
    cdef isize units = itab.shape[0] * G, u, n, gi, S, q, j, best
    if units == 0:
        return
    cdef int nt = pool_threads(units, x.shape[0] + gin.shape[0])
    cdef const floating* gp = &gout[0]
    cdef const floating* xp = &x[0]
    cdef floating* gip = &gin[0]
    cdef const isize* it = &itab[0, 0]
    cdef const isize* ot = &otab[0, 0]
    cdef const floating* s
    cdef floating* d
    cdef floating m, v
    for u in prange(units, nogil=True, schedule="dynamic", num_threads=nt):
        n = u // G
        gi = u % G
        S = it[POOL_COLS * n + X_D] * it[POOL_COLS * n + X_H] * it[POOL_COLS * n + X_W]
        s = xp + it[POOL_COLS * n + X_OFF] + gi * pieces * S
        d = gip + it[POOL_COLS * n + X_OFF] + gi * pieces * S
        memset(d, 0, pieces * S * sizeof(floating))
        for j in range(S):
            m = s[j]
            best = 0
            for q in range(1, pieces):
                v = s[q * S + j]
                if (v > m) | (v != v):
                    m = v
                    best = q
            d[best * S + j] = gp[ot[POOL_COLS * n + X_OFF] + gi * S + j]
