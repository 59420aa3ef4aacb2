/* Register-blocked inner loop of the direct convolution path: a template,
 * included once per CPU target by microkernels.h.
 *
 *   out[c * ostride + j] = bias[c] + sum_t w[tap[t] * wstride + c] * x[base + off[t] + j]
 *
 * for j < n positions along a row (unit stride) and up to 16 output channels
 * c.  A block of COB channels times NV vectors of positions stays in
 * registers while the loop runs over the taps t, so each tap costs NV vector
 * loads and COB broadcasts for COB * NV fused multiply-adds.  Each call sums
 * every tap of its positions, so it stores its results (bias may be NULL for
 * zero) and the output needs no initialisation pass.  Written with GCC vector
 * extensions, so one source serves every target.
 *
 * The includer defines, for each target:
 *   SIGCONV_TARGET        suffix of the function names (baseline, avx2, avx512)
 *   SIGCONV_VECTOR_BYTES  vector width: 16 (SSE2, NEON), 32 (AVX2), 64 (AVX-512)
 *   SIGCONV_REGISTERS     vector registers: 16 (x86 up to AVX2) or 32 (AVX-512, NEON)
 * Block shapes use at most 24 accumulators with 32 registers and 12 with 16,
 * leaving room for the NV input vectors and one broadcast weight.
 */

#define SIGCONV_CAT3_(a, b, c) a##b##c
#define SIGCONV_CAT3(a, b, c) SIGCONV_CAT3_(a, b, c)
#define SIGCONV_NAME(base) SIGCONV_CAT3(base, _, SIGCONV_TARGET)

#ifndef SIGCONV_DIRECT_COMMON
#define SIGCONV_DIRECT_COMMON
#include <stddef.h>
#include <string.h>

/* The arguments every block function takes, and passes on. */
#define SIGCONV_ARGS(T)                                                              \
    T *out, ptrdiff_t ostride, const T *x, ptrdiff_t base, const ptrdiff_t *off,     \
    const ptrdiff_t *tap, const T *w, ptrdiff_t wstride, const T *bias, int ntaps
#define SIGCONV_PASS out, ostride, x, base, off, tap, w, wstride, bias, ntaps

/* Positions [j, j + NV * lanes) for COB channels. */
#define SIGCONV_DEFINE_TILE(T, NAME, COB, NV)                                        \
static inline void NAME##_tile##COB##x##NV(SIGCONV_ARGS(T), ptrdiff_t j)             \
{                                                                                    \
    typedef T vec __attribute__((vector_size(SIGCONV_VECTOR_BYTES)));                \
    const ptrdiff_t lanes = SIGCONV_VECTOR_BYTES / sizeof(T);                        \
    vec acc[COB][NV];                                                                \
    _Pragma("GCC unroll 16")                                                         \
    for (int c = 0; c < COB; c++)                                                    \
        _Pragma("GCC unroll 8")                                                      \
        for (int v = 0; v < NV; v++) acc[c][v] = (vec){0} + (bias ? bias[c] : (T)0); \
    for (int t = 0; t < ntaps; t++) {                                                \
        const T *row = x + base + off[t] + j;                                        \
        const T *wt = w + tap[t] * wstride;                                          \
        vec xv[NV];                                                                  \
        _Pragma("GCC unroll 8")                                                      \
        for (int v = 0; v < NV; v++) memcpy(&xv[v], row + v * lanes, sizeof(vec));   \
        _Pragma("GCC unroll 16")                                                     \
        for (int c = 0; c < COB; c++) {                                              \
            const T wc = wt[c];                                                      \
            _Pragma("GCC unroll 8")                                                  \
            for (int v = 0; v < NV; v++) acc[c][v] += wc * xv[v];                    \
        }                                                                            \
    }                                                                                \
    _Pragma("GCC unroll 16")                                                         \
    for (int c = 0; c < COB; c++)                                                    \
        _Pragma("GCC unroll 8")                                                      \
        for (int v = 0; v < NV; v++)                                                 \
            memcpy(out + c * ostride + j + v * lanes, &acc[c][v], sizeof(vec));      \
}

/* All n positions for COB channels: wide tiles, single vectors, then scalars. */
#define SIGCONV_DEFINE_BLOCK(T, NAME, COB, NV)                                       \
SIGCONV_DEFINE_TILE(T, NAME, COB, NV)                                                \
SIGCONV_DEFINE_TILE(T, NAME, COB, 1)                                                 \
__attribute__((unused)) static void NAME##_cob##COB(SIGCONV_ARGS(T), ptrdiff_t n)                            \
{                                                                                    \
    const ptrdiff_t lanes = SIGCONV_VECTOR_BYTES / sizeof(T);                        \
    ptrdiff_t j = 0;                                                                 \
    for (; j + NV * lanes <= n; j += NV * lanes)                                     \
        NAME##_tile##COB##x##NV(SIGCONV_PASS, j);                                    \
    for (; j + lanes <= n; j += lanes)                                               \
        NAME##_tile##COB##x1(SIGCONV_PASS, j);                                       \
    for (; j < n; j++) {                                                             \
        T acc[COB];                                                                  \
        for (int c = 0; c < COB; c++) acc[c] = bias ? bias[c] : (T)0;                \
        for (int t = 0; t < ntaps; t++) {                                            \
            const T v = x[base + off[t] + j];                                        \
            const T *wt = w + tap[t] * wstride;                                      \
            for (int c = 0; c < COB; c++) acc[c] += wt[c] * v;                       \
        }                                                                            \
        for (int c = 0; c < COB; c++) out[c * ostride + j] = acc[c];                 \
    }                                                                                \
}

/* NAME runs any cob <= 16 channels as blocks of 8 (when USE8), 4, 3, 2
 * or 1 channels of NV8, NV4, ... vectors of positions; w holds packed
 * weights w[r * wstride + c] for tap row r and channel c. */
#define SIGCONV_DEFINE_DIRECT(T, NAME, USE8, NV8, NV4, NV3, NV2, NV1)                \
SIGCONV_DEFINE_BLOCK(T, NAME, 8, NV8)                                                \
SIGCONV_DEFINE_BLOCK(T, NAME, 4, NV4)                                                \
SIGCONV_DEFINE_BLOCK(T, NAME, 3, NV3)                                                \
SIGCONV_DEFINE_BLOCK(T, NAME, 2, NV2)                                                \
SIGCONV_DEFINE_BLOCK(T, NAME, 1, NV1)                                                \
static void NAME(SIGCONV_ARGS(T), int cob, ptrdiff_t n)                              \
{                                                                                    \
    T *const out0 = out;                                                             \
    const T *const w0 = w, *const bias0 = bias;                                      \
    int c = 0;                                                                       \
    for (;;) {                                                                       \
        const int left = cob - c;                                                    \
        if (left <= 0) break;                                                        \
        out = out0 + c * ostride;                                                    \
        w = w0 + c;                                                                  \
        bias = bias0 ? bias0 + c : NULL;                                             \
        if (USE8 && left >= 8)    { NAME##_cob8(SIGCONV_PASS, n); c += 8; }          \
        else if (left >= 4) { NAME##_cob4(SIGCONV_PASS, n); c += 4; }                \
        else if (left == 3) { NAME##_cob3(SIGCONV_PASS, n); c += 3; }                \
        else if (left == 2) { NAME##_cob2(SIGCONV_PASS, n); c += 2; }                \
        else { NAME##_cob1(SIGCONV_PASS, n); c += 1; }                               \
    }                                                                                \
}
/* Expands NAME before the pasting above. */
#define SIGCONV_INSTANTIATE(T, NAME, ...) SIGCONV_DEFINE_DIRECT(T, NAME, __VA_ARGS__)

#endif  /* SIGCONV_DIRECT_COMMON */

/* Block shapes COB x NV: each tap costs NV vector loads and COB broadcasts
 * for COB * NV multiply-adds, and the COB * NV accumulators, NV inputs and a
 * broadcast weight fit the register file. */
#if SIGCONV_REGISTERS >= 32
SIGCONV_INSTANTIATE(float, SIGCONV_NAME(sigconv_direct_f32), 1, 3, 6, 6, 8, 8)
SIGCONV_INSTANTIATE(double, SIGCONV_NAME(sigconv_direct_f64), 1, 3, 6, 6, 8, 8)
#else
SIGCONV_INSTANTIATE(float, SIGCONV_NAME(sigconv_direct_f32), 0, 2, 3, 4, 6, 8)
SIGCONV_INSTANTIATE(double, SIGCONV_NAME(sigconv_direct_f64), 0, 2, 3, 4, 6, 8)
#endif

/* ---------------------------------------------------------------------------
 * Weight gradient, direct: for cob output channels c and ntaps taps t of one
 * kernel row,
 *
 *   gw[c * gws + t] += sum over rows r, 0 <= j < n of
 *                      g[c * gcs + grow[r] + j] * x[xrow[r] + toff[t] + j]
 *
 * (the caller copies the rows of g and x, zero-padded, so that n is a
 * multiple of 64 bytes' worth of samples and x holds its padding).  Blocks of
 * COB channels times TB taps keep COB * TB vector accumulators over j in
 * registers; the work is cut into pieces of about SIGCONV_WGRAD_PIECE
 * positions (several short rows, or a segment of a long one) so that a
 * block's channel rows stay in the L1 cache while every block passes over
 * them, and the accumulators wait in `state` between pieces.  Lanes are
 * summed once, at the end.
 */
#ifndef SIGCONV_WGRAD_COMMON
#define SIGCONV_WGRAD_COMMON
/* bytes of a channel block's gradient rows that one piece keeps in L1 */
#define SIGCONV_WGRAD_PIECE_BYTES (32 * 1024)
#define SIGCONV_WTILE_ARGS(T)                                                        \
    T *state, const T *g, ptrdiff_t gcs, const T *x, const ptrdiff_t *grow,          \
    const ptrdiff_t *xrow, ptrdiff_t nrows, const ptrdiff_t *toff, ptrdiff_t ja,     \
    ptrdiff_t jb
#define SIGCONV_WTILE_PASS state, g, gcs, x, grow, xrow, nrows, toff, ja, jb

#define SIGCONV_DEFINE_WTILE(T, NAME, COB, TB)                                       \
__attribute__((unused)) static void NAME##_w##COB##x##TB(SIGCONV_WTILE_ARGS(T))      \
{                                                                                    \
    typedef T vec __attribute__((vector_size(SIGCONV_VECTOR_BYTES)));                \
    const ptrdiff_t lanes = SIGCONV_VECTOR_BYTES / sizeof(T);                        \
    vec acc[COB][TB];                                                                \
    _Pragma("GCC unroll 8")                                                          \
    for (int c = 0; c < COB; c++)                                                    \
        _Pragma("GCC unroll 4")                                                      \
        for (int t = 0; t < TB; t++)                                                 \
            memcpy(&acc[c][t], state + (c * TB + t) * lanes, sizeof(vec));           \
    for (ptrdiff_t r = 0; r < nrows; r++) {                                          \
        const T *gr = g + grow[r];                                                   \
        const T *xr = x + xrow[r];                                                   \
        for (ptrdiff_t j = ja; j < jb; j += lanes) {                                 \
            /* TB input vectors in registers, each channel vector loaded once */     \
            vec xv[TB];                                                              \
            _Pragma("GCC unroll 8")                                                  \
            for (int t = 0; t < TB; t++) memcpy(&xv[t], xr + toff[t] + j, sizeof(vec)); \
            _Pragma("GCC unroll 16")                                                 \
            for (int c = 0; c < COB; c++) {                                          \
                vec gv;                                                              \
                memcpy(&gv, gr + c * gcs + j, sizeof(vec));                          \
                _Pragma("GCC unroll 8")                                              \
                for (int t = 0; t < TB; t++) acc[c][t] += gv * xv[t];                \
            }                                                                        \
        }                                                                            \
    }                                                                                \
    _Pragma("GCC unroll 8")                                                          \
    for (int c = 0; c < COB; c++)                                                    \
        _Pragma("GCC unroll 4")                                                      \
        for (int t = 0; t < TB; t++)                                                 \
            memcpy(state + (c * TB + t) * lanes, &acc[c][t], sizeof(vec));           \
}

/* One tile call: channels [c, c + nc) of g, taps [tb, tb + nt) of kernel row
 * k, over `nrows` rows and positions [ja, jb). */
#define SIGCONV_WTILE_CALL(NAME, COBMAX, nc, nt, ...)                                \
    do {                                                                             \
        if (nc == 8) {                                                               \
            if (nt == 3) NAME##_w8x3(__VA_ARGS__);                                   \
            else if (nt == 2) NAME##_w8x2(__VA_ARGS__);                              \
            else NAME##_w8x1(__VA_ARGS__);                                           \
        } else if (nc == 4) {                                                        \
            if (nt == 3) NAME##_w4x3(__VA_ARGS__);                                   \
            else if (nt == 2) NAME##_w4x2(__VA_ARGS__);                              \
            else NAME##_w4x1(__VA_ARGS__);                                           \
        } else if (nc == 2) {                                                        \
            if (nt == 3) NAME##_w2x3(__VA_ARGS__);                                   \
            else if (nt == 2) NAME##_w2x2(__VA_ARGS__);                              \
            else NAME##_w2x1(__VA_ARGS__);                                           \
        } else {                                                                     \
            if (nt == 3) NAME##_w1x3(__VA_ARGS__);                                   \
            else if (nt == 2) NAME##_w1x2(__VA_ARGS__);                              \
            else NAME##_w1x1(__VA_ARGS__);                                           \
        }                                                                            \
    } while (0)

/* The weight gradient of one work unit (nq output rows of one item):
 *
 *   gw[c * ck + k * kw + t] += sum over the rows e of kernel row k, j < wp of
 *       g[c * gcs + grow[e] + j] * x[xrow[e] + toff[t] + j]
 *
 * where kernel row k's rows are entries [start[k], start[k + 1]) of grow
 * and xrow, in increasing grow.  For each block of channels the loops run
 * over pieces of output rows whose channel rows fit the L1 cache (or
 * segments of a long row), and within a piece over every kernel row: the
 * block's g stays in L1 while the input rows stream past.  state holds
 * COBMAX * nk * kw vectors; cursor nk offsets. */
#define SIGCONV_DEFINE_WUNIT(T, NAME, COBMAX)                                        \
static void NAME(T *gw, ptrdiff_t ck, const T *g, ptrdiff_t gcs, const T *x,         \
                 const ptrdiff_t *grow, const ptrdiff_t *xrow, const ptrdiff_t *start,\
                 ptrdiff_t nk, ptrdiff_t nq, ptrdiff_t wp, const ptrdiff_t *toff,    \
                 int kw, int cout, T *state, ptrdiff_t *cursor)                      \
{                                                                                    \
    const ptrdiff_t lanes = SIGCONV_VECTOR_BYTES / sizeof(T);                        \
    for (int c = 0; c < cout;) {                                                     \
        const int nc = cout - c >= COBMAX ? COBMAX : cout - c >= 4 ? 4               \
                       : cout - c >= 2 ? 2 : 1;                                      \
        const T *gc = g + c * gcs;                                                   \
        memset(state, 0, (size_t)nc * nk * kw * lanes * sizeof(T));                  \
        const ptrdiff_t rows_per_piece =                                             \
            (ptrdiff_t)(SIGCONV_WGRAD_PIECE_BYTES / ((size_t)nc * wp * sizeof(T)));  \
        if (rows_per_piece >= 1) {                                                   \
            for (ptrdiff_t k = 0; k < nk; k++) cursor[k] = start[k];                 \
            for (ptrdiff_t p0 = 0; p0 < nq; p0 += rows_per_piece) {                  \
                const ptrdiff_t end = (p0 + rows_per_piece) * wp;                    \
                for (ptrdiff_t k = 0; k < nk; k++) {                                 \
                    const ptrdiff_t e0 = cursor[k];                                  \
                    ptrdiff_t e1 = e0;                                               \
                    while (e1 < start[k + 1] && grow[e1] < end) e1++;                \
                    cursor[k] = e1;                                                  \
                    if (e1 == e0) continue;                                          \
                    for (int tb = 0; tb < kw; tb += 3) {                             \
                        const int nt = kw - tb >= 3 ? 3 : kw - tb;                   \
                        T *st = state + ((k * kw + tb) * (ptrdiff_t)nc) * lanes;     \
                        SIGCONV_WTILE_CALL(NAME, COBMAX, nc, nt, st, gc, gcs, x,     \
                                           grow + e0, xrow + e0, e1 - e0, toff + tb, \
                                           0, wp);                                   \
                    }                                                                \
                }                                                                    \
            }                                                                        \
        } else {                          /* long rows: segments of each */          \
            const ptrdiff_t seg = SIGCONV_WGRAD_PIECE_BYTES / ((ptrdiff_t)nc * sizeof(T)) \
                                  / lanes * lanes;                                   \
            for (ptrdiff_t ja = 0; ja < wp; ja += seg) {                             \
                const ptrdiff_t jb = wp - ja < seg ? wp : ja + seg;                  \
                for (ptrdiff_t k = 0; k < nk; k++) {                                 \
                    if (start[k + 1] == start[k]) continue;                          \
                    for (int tb = 0; tb < kw; tb += 3) {                             \
                        const int nt = kw - tb >= 3 ? 3 : kw - tb;                   \
                        T *st = state + ((k * kw + tb) * (ptrdiff_t)nc) * lanes;     \
                        SIGCONV_WTILE_CALL(NAME, COBMAX, nc, nt, st, gc, gcs, x,     \
                                           grow + start[k], xrow + start[k],         \
                                           start[k + 1] - start[k], toff + tb, ja, jb); \
                    }                                                                \
                }                                                                    \
            }                                                                        \
        }                                                                            \
        for (ptrdiff_t k = 0; k < nk; k++)                                           \
            for (int t = 0; t < kw; t++) {                                           \
                const int tb = t - t % 3, nt = kw - tb >= 3 ? 3 : kw - tb;           \
                for (int cc = 0; cc < nc; cc++) {                                    \
                    T *v = state + ((k * kw + tb) * (ptrdiff_t)nc + cc * nt + (t - tb)) * lanes; \
                    /* pairwise: log2(lanes) independent steps, not a chain */       \
                    for (ptrdiff_t w = lanes / 2; w >= 1; w /= 2)                    \
                        for (ptrdiff_t l = 0; l < w; l++) v[l] += v[l + w];          \
                    gw[(c + cc) * ck + k * kw + t] += v[0];                          \
                }                                                                    \
            }                                                                        \
        c += nc;                                                                     \
    }                                                                                \
}

#define SIGCONV_DEFINE_WGRAD(T, NAME, COBMAX)                                        \
SIGCONV_DEFINE_WTILE(T, NAME, 8, 3)                                                  \
SIGCONV_DEFINE_WTILE(T, NAME, 8, 2)                                                  \
SIGCONV_DEFINE_WTILE(T, NAME, 8, 1)                                                  \
SIGCONV_DEFINE_WTILE(T, NAME, 4, 3)                                                  \
SIGCONV_DEFINE_WTILE(T, NAME, 4, 2)                                                  \
SIGCONV_DEFINE_WTILE(T, NAME, 4, 1)                                                  \
SIGCONV_DEFINE_WTILE(T, NAME, 2, 3)                                                  \
SIGCONV_DEFINE_WTILE(T, NAME, 2, 2)                                                  \
SIGCONV_DEFINE_WTILE(T, NAME, 2, 1)                                                  \
SIGCONV_DEFINE_WTILE(T, NAME, 1, 3)                                                  \
SIGCONV_DEFINE_WTILE(T, NAME, 1, 2)                                                  \
SIGCONV_DEFINE_WTILE(T, NAME, 1, 1)                                                  \
SIGCONV_DEFINE_WUNIT(T, NAME, COBMAX)
#define SIGCONV_INSTANTIATE_WGRAD(T, NAME, COBMAX) SIGCONV_DEFINE_WGRAD(T, NAME, COBMAX)
#endif  /* SIGCONV_WGRAD_COMMON */

/* COBMAX x 3 accumulators, 3 input vectors and one channel vector: 8 x 3
 * (28 registers) with 32, 4 x 3 (16) with 16; then blocks of 4, 2, 1. */
#if SIGCONV_REGISTERS >= 32
SIGCONV_INSTANTIATE_WGRAD(float, SIGCONV_NAME(sigconv_wgrad_f32), 8)
SIGCONV_INSTANTIATE_WGRAD(double, SIGCONV_NAME(sigconv_wgrad_f64), 8)
#else
SIGCONV_INSTANTIATE_WGRAD(float, SIGCONV_NAME(sigconv_wgrad_f32), 4)
SIGCONV_INSTANTIATE_WGRAD(double, SIGCONV_NAME(sigconv_wgrad_f64), 4)
#endif
