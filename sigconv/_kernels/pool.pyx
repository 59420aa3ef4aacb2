# cython: language_level=3
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

``geom`` holds 12 int64: kernel ``(kD, kH, kW)``, stride, padding (zeros
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
cimport cython
from cython cimport floating
from cython.parallel cimport prange
from libc.math cimport INFINITY, fabs, fabsf, pow, powf, sqrt, sqrtf
from libc.stdint cimport int64_t
from libc.stdlib cimport free, malloc
from libc.string cimport memset

ctypedef int64_t i64

# window-sum transform modes: 0 identity (average), 1 |x| (L1), 2 x^2 then square
# root (L2), 3 |x|^p then p-th root (Lp)


# ----------------------------------------------------------------------------
# small helpers
# ----------------------------------------------------------------------------

cdef inline void _span(i64 t, i64 s, i64 n, i64 m, i64* lo, i64* hi) noexcept nogil:
    """Outputs ``o`` in ``[lo, hi)`` with ``0 <= o * s + t < n`` and ``o < m``."""
    cdef i64 a = 0, b = 0
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


cdef inline i64 _count(i64 o, i64 k, i64 s, i64 p, i64 d, i64 n, int divmode) noexcept nogil:
    """Window taps counted by the divisor of average pooling along one axis.

    ``divmode`` 1 counts taps inside input plus padding (clipped at the end
    of the padding: PyTorch's ``count_include_pad=True``), 2 only taps inside
    the input (``count_include_pad=False``).
    """
    cdef i64 lo = 0, hi = n, j, q, c = 0
    if divmode == 1:
        lo = -p
        hi = n + p
    for j in range(k):
        q = o * s - p + j * d
        if q >= lo and q < hi:
            c += 1
    return c


cdef inline i64 _first_valid(i64 od, i64 oh, i64 ow, i64 D, i64 H, i64 W,
                             const i64* g) noexcept nogil:
    """Flat index of the first in-input tap of a window in scan order, or -1."""
    cdef i64 kd, kh, kw, a, b, c
    for kd in range(g[0]):
        a = od * g[3] - g[6] + kd * g[9]
        if a < 0 or a >= D:
            continue
        for kh in range(g[1]):
            b = oh * g[4] - g[7] + kh * g[10]
            if b < 0 or b >= H:
                continue
            for kw in range(g[2]):
                c = ow * g[5] - g[8] + kw * g[11]
                if c >= 0 and c < W:
                    return (a * H + b) * W + c
    return -1


# ----------------------------------------------------------------------------
# max pooling
# ----------------------------------------------------------------------------

cdef inline void _max_row(floating* acc, const floating* src, i64 t, i64 lo, i64 hi,
                          i64 s) noexcept nogil:
    """acc[o] = max(acc[o], src[o*s + t]) for o in [lo, hi), NaN-propagating."""
    cdef i64 o
    cdef floating a, v
    if s == 1:
        for o in range(lo, hi):
            a = acc[o]
            v = src[o + t]
            acc[o] = v if ((v > a) | (v != v)) else a
    elif s == 2:
        for o in range(lo, hi):
            a = acc[o]
            v = src[2 * o + t]
            acc[o] = v if ((v > a) | (v != v)) else a
    else:
        for o in range(lo, hi):
            a = acc[o]
            v = src[o * s + t]
            acc[o] = v if ((v > a) | (v != v)) else a


cdef inline void _max_row_idx(floating* acc, i64* idx, const floating* src, i64 t,
                              i64 lo, i64 hi, i64 s, i64 base) noexcept nogil:
    """As :func:`_max_row`, also recording the flat plane index ``base + o*s + t``."""
    cdef i64 o, q
    cdef floating a, v
    cdef bint c
    for o in range(lo, hi):
        q = o * s + t
        a = acc[o]
        v = src[q]
        c = (v > a) | (v != v)
        acc[o] = v if c else a
        idx[o] = base + q if c else idx[o]


cdef void _max_plane(const floating* xp, floating* op, i64* ip, bint want_idx,
                     i64 D, i64 H, i64 W, i64 OD, i64 OH, i64 OW,
                     const i64* g) noexcept nogil:
    cdef i64 od, oh, ow, kd, kh, kw, a, b, t, lo, hi, r
    cdef floating* orow
    cdef i64* irow = NULL
    cdef const floating* src
    cdef floating ninf = -INFINITY
    for od in range(OD):
        for oh in range(OH):
            r = (od * OH + oh) * OW
            orow = op + r
            for ow in range(OW):
                orow[ow] = ninf
            if want_idx:
                irow = ip + r
                for ow in range(OW):
                    irow[ow] = -1
            for kd in range(g[0]):
                a = od * g[3] - g[6] + kd * g[9]
                if a < 0 or a >= D:
                    continue
                for kh in range(g[1]):
                    b = oh * g[4] - g[7] + kh * g[10]
                    if b < 0 or b >= H:
                        continue
                    src = xp + (a * H + b) * W
                    for kw in range(g[2]):
                        t = kw * g[11] - g[8]
                        _span(t, g[5], W, OW, &lo, &hi)
                        if want_idx:
                            _max_row_idx(orow, irow, src, t, lo, hi, g[5], (a * H + b) * W)
                        else:
                            _max_row(orow, src, t, lo, hi, g[5])
            if want_idx:
                # a window whose samples are all -inf keeps its first sample
                for ow in range(OW):
                    if irow[ow] < 0:
                        irow[ow] = _first_valid(od, oh, ow, D, H, W, g)


def max_pool_forward(const floating[::1] x, const i64[:, ::1] itab,
                     floating[::1] out, i64[::1] idx, const i64[:, ::1] otab,
                     i64 C, const i64[::1] geom, bint want_idx):
    """Max pooling of every (item, channel) plane; ``idx`` is written when ``want_idx``."""
    cdef i64 units = itab.shape[0] * C, u, n, c
    cdef i64 isz, osz
    if units == 0:
        return
    cdef const floating* xp = &x[0]
    cdef floating* op = &out[0]
    cdef i64* ip = &idx[0] if want_idx else NULL
    cdef const i64* it = &itab[0, 0]
    cdef const i64* ot = &otab[0, 0]
    cdef const i64* g = &geom[0]
    for u in prange(units, nogil=True, schedule="static"):
        n = u // C
        c = u % C
        isz = it[4 * n + 1] * it[4 * n + 2] * it[4 * n + 3]
        osz = ot[4 * n + 1] * ot[4 * n + 2] * ot[4 * n + 3]
        _max_plane(xp + it[4 * n] + c * isz, op + ot[4 * n] + c * osz,
                   (ip + ot[4 * n] + c * osz) if want_idx else NULL, want_idx,
                   it[4 * n + 1], it[4 * n + 2], it[4 * n + 3],
                   ot[4 * n + 1], ot[4 * n + 2], ot[4 * n + 3], g)


# ----------------------------------------------------------------------------
# window sums: average, weighted (Gaussian) average, Lp
# ----------------------------------------------------------------------------

cdef inline void _sum_row(floating* acc, const floating* src, i64 t, i64 lo, i64 hi,
                          i64 s, floating wt, int mode, floating p) noexcept nogil:
    """acc[o] += wt * tr(src[o*s + t]) for o in [lo, hi)."""
    cdef i64 o
    cdef floating v
    if mode == 0:
        if s == 1:
            for o in range(lo, hi):
                acc[o] += wt * src[o + t]
        elif s == 2:
            for o in range(lo, hi):
                acc[o] += wt * src[2 * o + t]
        else:
            for o in range(lo, hi):
                acc[o] += wt * src[o * s + t]
    elif mode == 2:
        if s == 1:
            for o in range(lo, hi):
                v = src[o + t]
                acc[o] += wt * (v * v)
        elif s == 2:
            for o in range(lo, hi):
                v = src[2 * o + t]
                acc[o] += wt * (v * v)
        else:
            for o in range(lo, hi):
                v = src[o * s + t]
                acc[o] += wt * (v * v)
    else:
        for o in range(lo, hi):
            acc[o] += wt * _tr(src[o * s + t], mode, p)


cdef void _sum_plane(const floating* xp, floating* op, i64 D, i64 H, i64 W,
                     i64 OD, i64 OH, i64 OW, const i64* g, const floating* w,
                     int divmode, int mode, floating p, floating* cw) noexcept nogil:
    cdef i64 od, oh, ow, kd, kh, kw, a, b, t, lo, hi, cd, ch
    cdef floating* orow
    cdef const floating* src
    cdef floating wt = 1, f
    if divmode:
        for ow in range(OW):
            cw[ow] = _count(ow, g[2], g[5], g[8], g[11], W, divmode)
    for od in range(OD):
        cd = _count(od, g[0], g[3], g[6], g[9], D, divmode) if divmode else 1
        for oh in range(OH):
            ch = _count(oh, g[1], g[4], g[7], g[10], H, divmode) if divmode else 1
            orow = op + (od * OH + oh) * OW
            for ow in range(OW):
                orow[ow] = 0
            for kd in range(g[0]):
                a = od * g[3] - g[6] + kd * g[9]
                if a < 0 or a >= D:
                    continue
                for kh in range(g[1]):
                    b = oh * g[4] - g[7] + kh * g[10]
                    if b < 0 or b >= H:
                        continue
                    src = xp + (a * H + b) * W
                    for kw in range(g[2]):
                        if w != NULL:
                            wt = w[(kd * g[1] + kh) * g[2] + kw]
                        t = kw * g[11] - g[8]
                        _span(t, g[5], W, OW, &lo, &hi)
                        _sum_row(orow, src, t, lo, hi, g[5], wt, mode, p)
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


def window_sum_forward(const floating[::1] x, const i64[:, ::1] itab,
                       floating[::1] out, const i64[:, ::1] otab, i64 C,
                       const i64[::1] geom, const floating[::1] weights,
                       int divmode, int mode, double p):
    """``out = finish(scale * sum_taps w[tap] * tr(x))`` over every window.

    ``weights`` has one value per tap (kD*kH*kW) or is empty for all ones;
    ``divmode`` 0 (no divisor), 1 (count_include_pad), 2 (exclude pad);
    ``mode`` 0 identity, 1 |x|, 2 x^2 and square root, 3 |x|^p and p-th root.
    """
    cdef i64 units = itab.shape[0] * C, u, n, c, isz, osz, maxw = 1
    if units == 0:
        return
    cdef const floating* xp = &x[0]
    cdef floating* op = &out[0]
    cdef const floating* wp = &weights[0] if weights.shape[0] > 0 else NULL
    cdef const i64* it = &itab[0, 0]
    cdef const i64* ot = &otab[0, 0]
    cdef const i64* g = &geom[0]
    cdef floating pp = <floating>p
    cdef floating* cw
    for n in range(otab.shape[0]):
        if otab[n, 3] > maxw:
            maxw = otab[n, 3]
    for u in prange(units, nogil=True, schedule="static"):
        n = u // C
        c = u % C
        isz = it[4 * n + 1] * it[4 * n + 2] * it[4 * n + 3]
        osz = ot[4 * n + 1] * ot[4 * n + 2] * ot[4 * n + 3]
        cw = <floating*>malloc(maxw * sizeof(floating))
        _sum_plane(xp + it[4 * n] + c * isz, op + ot[4 * n] + c * osz,
                   it[4 * n + 1], it[4 * n + 2], it[4 * n + 3],
                   ot[4 * n + 1], ot[4 * n + 2], ot[4 * n + 3], g, wp,
                   divmode, mode, pp, cw)
        free(cw)


cdef inline void _scatter_row(floating* dst, const floating* c, i64 t, i64 lo, i64 hi,
                              i64 s, floating wt) noexcept nogil:
    """dst[o*s + t] += wt * c[o] for o in [lo, hi)."""
    cdef i64 o
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
                              const floating* op, i64 D, i64 H, i64 W,
                              i64 OD, i64 OH, i64 OW, const i64* g, const floating* w,
                              int divmode, int mode, floating p, floating* cw,
                              floating* crow) noexcept nogil:
    cdef i64 od, oh, ow, kd, kh, kw, a, b, t, lo, hi, cd, ch, r, i
    cdef const floating* grow
    cdef floating wt = 1, f
    memset(gip, 0, D * H * W * sizeof(floating))
    if divmode:
        for ow in range(OW):
            cw[ow] = _count(ow, g[2], g[5], g[8], g[11], W, divmode)
    for od in range(OD):
        cd = _count(od, g[0], g[3], g[6], g[9], D, divmode) if divmode else 1
        for oh in range(OH):
            ch = _count(oh, g[1], g[4], g[7], g[10], H, divmode) if divmode else 1
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
            for kd in range(g[0]):
                a = od * g[3] - g[6] + kd * g[9]
                if a < 0 or a >= D:
                    continue
                for kh in range(g[1]):
                    b = oh * g[4] - g[7] + kh * g[10]
                    if b < 0 or b >= H:
                        continue
                    for kw in range(g[2]):
                        if w != NULL:
                            wt = w[(kd * g[1] + kh) * g[2] + kw]
                        t = kw * g[11] - g[8]
                        _span(t, g[5], W, OW, &lo, &hi)
                        _scatter_row(gip + (a * H + b) * W, crow, t, lo, hi, g[5], wt)
    if mode != 0:
        for i in range(D * H * W):
            gip[i] = gip[i] * _dtr(xp[i], mode, p)


def window_sum_backward(const floating[::1] gout, const i64[:, ::1] otab,
                        floating[::1] gin, const i64[:, ::1] itab, i64 C,
                        const i64[::1] geom, const floating[::1] weights,
                        int divmode, int mode, double p,
                        const floating[::1] x, const floating[::1] out):
    """Gradient of :func:`window_sum_forward` with respect to its input.

    ``x`` and ``out`` (the forward input and output) are read only for the
    Lp modes (1-3); pass empty arrays otherwise.
    """
    cdef i64 units = itab.shape[0] * C, u, n, c, isz, osz, maxw = 1
    if units == 0:
        return
    cdef const floating* gp = &gout[0]
    cdef floating* gip = &gin[0]
    cdef const floating* xp = &x[0] if mode != 0 else NULL
    cdef const floating* op = &out[0] if mode != 0 else NULL
    cdef const floating* wp = &weights[0] if weights.shape[0] > 0 else NULL
    cdef const i64* it = &itab[0, 0]
    cdef const i64* ot = &otab[0, 0]
    cdef const i64* g = &geom[0]
    cdef floating pp = <floating>p
    cdef floating* buf
    for n in range(otab.shape[0]):
        if otab[n, 3] > maxw:
            maxw = otab[n, 3]
    for u in prange(units, nogil=True, schedule="static"):
        n = u // C
        c = u % C
        isz = it[4 * n + 1] * it[4 * n + 2] * it[4 * n + 3]
        osz = ot[4 * n + 1] * ot[4 * n + 2] * ot[4 * n + 3]
        buf = <floating*>malloc(2 * maxw * sizeof(floating))
        _sum_plane_backward(gp + ot[4 * n] + c * osz, gip + it[4 * n] + c * isz,
                            (xp + it[4 * n] + c * isz) if mode != 0 else NULL,
                            (op + ot[4 * n] + c * osz) if mode != 0 else NULL,
                            it[4 * n + 1], it[4 * n + 2], it[4 * n + 3],
                            ot[4 * n + 1], ot[4 * n + 2], ot[4 * n + 3], g, wp,
                            divmode, mode, pp, buf, buf + maxw)
        free(buf)


# ----------------------------------------------------------------------------
# adaptive pooling: window i of m over n samples is [floor(i n / m), ceil((i+1) n / m))
# ----------------------------------------------------------------------------

cdef inline i64 _astart(i64 i, i64 n, i64 m) noexcept nogil:
    return (i * n) // m


cdef inline i64 _aend(i64 i, i64 n, i64 m) noexcept nogil:
    return ((i + 1) * n + m - 1) // m


cdef void _adaptive_plane(const floating* xp, floating* op, i64* ip, bint want_idx,
                          i64 D, i64 H, i64 W, i64 OD, i64 OH, i64 OW,
                          int kind, int mode, floating p) noexcept nogil:
    """kind 0: average, 1: maximum, 2: Lp (``mode`` as in the window sums)."""
    cdef i64 od, oh, ow, d0, d1, h0, h1, w0, w1, a, b, q, mi, r
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
                if kind == 1:
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
                    if want_idx:
                        ip[r + ow] = mi
                else:
                    s = 0
                    for a in range(d0, d1):
                        for b in range(h0, h1):
                            for q in range((a * H + b) * W + w0, (a * H + b) * W + w1):
                                s = s + _tr(xp[q], mode, p)
                    if kind == 0:
                        op[r + ow] = <floating>(s / ((d1 - d0) * (h1 - h0) * (w1 - w0)))
                    else:
                        op[r + ow] = _finish(<floating>s, mode, p)


def adaptive_forward(const floating[::1] x, const i64[:, ::1] itab,
                     floating[::1] out, i64[::1] idx, const i64[:, ::1] otab,
                     i64 C, int kind, int mode, double p, bint want_idx):
    """Adaptive pooling (kind 0 average, 1 maximum, 2 Lp) of every plane."""
    cdef i64 units = itab.shape[0] * C, u, n, c, isz, osz
    if units == 0:
        return
    cdef const floating* xp = &x[0]
    cdef floating* op = &out[0]
    cdef i64* ip = &idx[0] if want_idx else NULL
    cdef const i64* it = &itab[0, 0]
    cdef const i64* ot = &otab[0, 0]
    cdef floating pp = <floating>p
    for u in prange(units, nogil=True, schedule="static"):
        n = u // C
        c = u % C
        isz = it[4 * n + 1] * it[4 * n + 2] * it[4 * n + 3]
        osz = ot[4 * n + 1] * ot[4 * n + 2] * ot[4 * n + 3]
        _adaptive_plane(xp + it[4 * n] + c * isz, op + ot[4 * n] + c * osz,
                        (ip + ot[4 * n] + c * osz) if want_idx else NULL, want_idx,
                        it[4 * n + 1], it[4 * n + 2], it[4 * n + 3],
                        ot[4 * n + 1], ot[4 * n + 2], ot[4 * n + 3], kind, mode, pp)


cdef void _adaptive_plane_backward(const floating* gp, floating* gip, const floating* xp,
                                   const floating* op, i64 D, i64 H, i64 W,
                                   i64 OD, i64 OH, i64 OW, int kind, int mode,
                                   floating p) noexcept nogil:
    """Gradient of the average (kind 0) and Lp (kind 2) adaptive pools."""
    cdef i64 od, oh, ow, d0, d1, h0, h1, w0, w1, a, b, q, r, i
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


def adaptive_backward(const floating[::1] gout, const i64[:, ::1] otab,
                      floating[::1] gin, const i64[:, ::1] itab, i64 C,
                      int kind, int mode, double p,
                      const floating[::1] x, const floating[::1] out):
    """Gradient of :func:`adaptive_forward` for kind 0 (average) and 2 (Lp).

    The maximum's gradient is :func:`index_scatter` with the argmax indices.
    """
    cdef i64 units = itab.shape[0] * C, u, n, c, isz, osz
    if units == 0:
        return
    cdef const floating* gp = &gout[0]
    cdef floating* gip = &gin[0]
    cdef const floating* xp = &x[0] if kind != 0 else NULL
    cdef const floating* op = &out[0] if kind != 0 else NULL
    cdef const i64* it = &itab[0, 0]
    cdef const i64* ot = &otab[0, 0]
    cdef floating pp = <floating>p
    for u in prange(units, nogil=True, schedule="static"):
        n = u // C
        c = u % C
        isz = it[4 * n + 1] * it[4 * n + 2] * it[4 * n + 3]
        osz = ot[4 * n + 1] * ot[4 * n + 2] * ot[4 * n + 3]
        _adaptive_plane_backward(gp + ot[4 * n] + c * osz, gip + it[4 * n] + c * isz,
                                 (xp + it[4 * n] + c * isz) if kind != 0 else NULL,
                                 (op + ot[4 * n] + c * osz) if kind != 0 else NULL,
                                 it[4 * n + 1], it[4 * n + 2], it[4 * n + 3],
                                 ot[4 * n + 1], ot[4 * n + 2], ot[4 * n + 3], kind, mode, pp)


# ----------------------------------------------------------------------------
# index scatter / gather: max pooling backward, max unpooling and its backward
# ----------------------------------------------------------------------------

def index_scatter(const floating[::1] src, const i64[::1] idx, const i64[:, ::1] stab,
                  floating[::1] dst, const i64[:, ::1] dtab, i64 C, bint accumulate):
    """Per plane: zero ``dst``, then ``dst[idx[j]] (+)= src[j]`` (negative indices skipped).

    ``idx`` is laid out like ``src`` (table ``stab``) and holds flat indices
    into the matching ``dst`` plane (table ``dtab``).  With ``accumulate``
    repeated indices add up (max pooling's gradient); without, the last write
    wins (max unpooling).
    """
    cdef i64 units = stab.shape[0] * C, u, n, c, ssz, dsz, j, q
    if units == 0:
        return
    cdef const floating* sp = &src[0]
    cdef const i64* ip = &idx[0]
    cdef floating* dp = &dst[0]
    cdef const i64* st = &stab[0, 0]
    cdef const i64* dt = &dtab[0, 0]
    cdef const floating* s
    cdef const i64* ii
    cdef floating* d
    for u in prange(units, nogil=True, schedule="static"):
        n = u // C
        c = u % C
        ssz = st[4 * n + 1] * st[4 * n + 2] * st[4 * n + 3]
        dsz = dt[4 * n + 1] * dt[4 * n + 2] * dt[4 * n + 3]
        s = sp + st[4 * n] + c * ssz
        ii = ip + st[4 * n] + c * ssz
        d = dp + dt[4 * n] + c * dsz
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


def index_gather(const floating[::1] src, const i64[:, ::1] stab, const i64[::1] idx,
                 floating[::1] dst, const i64[:, ::1] dtab, i64 C):
    """Per plane: ``dst[j] = src[idx[j]]`` (0 where ``idx[j] < 0``); ``idx`` laid out like ``dst``."""
    cdef i64 units = dtab.shape[0] * C, u, n, c, ssz, dsz, j, q
    if units == 0:
        return
    cdef const floating* sp = &src[0]
    cdef const i64* ip = &idx[0]
    cdef floating* dp = &dst[0]
    cdef const i64* st = &stab[0, 0]
    cdef const i64* dt = &dtab[0, 0]
    cdef const floating* s
    cdef const i64* ii
    cdef floating* d
    for u in prange(units, nogil=True, schedule="static"):
        n = u // C
        c = u % C
        ssz = st[4 * n + 1] * st[4 * n + 2] * st[4 * n + 3]
        dsz = dt[4 * n + 1] * dt[4 * n + 2] * dt[4 * n + 3]
        s = sp + st[4 * n] + c * ssz
        ii = ip + dt[4 * n] + c * dsz
        d = dp + dt[4 * n] + c * dsz
        for j in range(dsz):
            q = ii[j]
            d[j] = s[q] if q >= 0 else 0


# ----------------------------------------------------------------------------
# maxout: maximum over consecutive groups of `pieces` channels
# ----------------------------------------------------------------------------

def maxout_forward(const floating[::1] x, const i64[:, ::1] itab, floating[::1] out,
                   const i64[:, ::1] otab, i64 G, i64 pieces):
    """``out[n, g] = max_q x[n, g * pieces + q]`` elementwise, ``G`` output channels."""
    cdef i64 units = itab.shape[0] * G, u, n, gi, S, q, j
    if units == 0:
        return
    cdef const floating* xp = &x[0]
    cdef floating* op = &out[0]
    cdef const i64* it = &itab[0, 0]
    cdef const i64* ot = &otab[0, 0]
    cdef const floating* s
    cdef floating* d
    cdef floating a, v
    for u in prange(units, nogil=True, schedule="static"):
        n = u // G
        gi = u % G
        S = it[4 * n + 1] * it[4 * n + 2] * it[4 * n + 3]
        s = xp + it[4 * n] + gi * pieces * S
        d = op + ot[4 * n] + gi * S
        for j in range(S):
            d[j] = s[j]
        for q in range(1, pieces):
            for j in range(S):
                a = d[j]
                v = s[q * S + j]
                d[j] = v if ((v > a) | (v != v)) else a


def maxout_backward(const floating[::1] gout, const floating[::1] x,
                    const i64[:, ::1] itab, floating[::1] gin, const i64[:, ::1] otab,
                    i64 G, i64 pieces):
    """Route each output gradient to the channel that won the maximum (same rule as forward)."""
    cdef i64 units = itab.shape[0] * G, u, n, gi, S, q, j, best
    if units == 0:
        return
    cdef const floating* gp = &gout[0]
    cdef const floating* xp = &x[0]
    cdef floating* gip = &gin[0]
    cdef const i64* it = &itab[0, 0]
    cdef const i64* ot = &otab[0, 0]
    cdef const floating* s
    cdef floating* d
    cdef floating m, v
    for u in prange(units, nogil=True, schedule="static"):
        n = u // G
        gi = u % G
        S = it[4 * n + 1] * it[4 * n + 2] * it[4 * n + 3]
        s = xp + it[4 * n] + gi * pieces * S
        d = gip + it[4 * n] + gi * pieces * S
        memset(d, 0, pieces * S * sizeof(floating))
        for j in range(S):
            m = s[j]
            best = 0
            for q in range(1, pieces):
                v = s[q * S + j]
                if (v > m) | (v != v):
                    m = v
                    best = q
            d[best * S + j] = gp[ot[4 * n] + gi * S + j]
