/* Register-blocked inner loop of the direct convolution path.
 *
 * out[c * ostride + j] = bias[c] + sum_t w[tap[t] * wstride + c] * x[base + off[t] + j]
 *
 * for j < n positions along a row (unit stride) and a block of COB output
 * channels.  COB accumulators of one vector of positions stay in registers
 * while the loop runs over the taps: one vector load and COB fused
 * multiply-adds per tap.  Each call sums every tap of its positions, so it
 * stores its results (``bias`` may be NULL for zero) and the output needs no
 * initialisation pass.  Written with GCC vector extensions, so the compiler
 * emits the widest vectors the build targets (AVX-512 with -march=native on
 * this project's machines) and plain scalar code elsewhere.
 */
#ifndef SIGCONV_DIRECT_H
#define SIGCONV_DIRECT_H

#include <stddef.h>
#include <string.h>

#define SIGCONV_VECTOR_BYTES 64

/* Positions j of [j0, j0 + NV * lanes) for COB channels: COB x NV accumulators. */
#define SIGCONV_DEFINE_TILE(T, NAME, COB, NV)                                           \
static inline void NAME##_tile##COB##x##NV(T *out, ptrdiff_t ostride, const T *x, ptrdiff_t base, const ptrdiff_t *off, \
        const ptrdiff_t *tap, const T *w, ptrdiff_t wstride, const T *bias, int ntaps,  \
        ptrdiff_t j)                                                                    \
{                                                                                       \
    typedef T vec __attribute__((vector_size(SIGCONV_VECTOR_BYTES)));                   \
    const ptrdiff_t lanes = SIGCONV_VECTOR_BYTES / sizeof(T);                           \
    vec acc[COB][NV];                                                                   \
    _Pragma("GCC unroll 16")                                                            \
    for (int c = 0; c < COB; c++)                                                       \
        _Pragma("GCC unroll 4")                                                         \
        for (int v = 0; v < NV; v++) acc[c][v] = (vec){0} + (bias ? bias[c] : (T)0);    \
    for (int t = 0; t < ntaps; t++) {                                                   \
        vec xv[NV];                                                                     \
        _Pragma("GCC unroll 4")                                                         \
        for (int v = 0; v < NV; v++) memcpy(&xv[v], x + base + off[t] + j + v * lanes, sizeof(vec)); \
        const T *wt = w + tap[t] * wstride;                                             \
        _Pragma("GCC unroll 16")                                                        \
        for (int c = 0; c < COB; c++) {                                                 \
            const T wc = wt[c];                                                         \
            _Pragma("GCC unroll 4")                                                     \
            for (int v = 0; v < NV; v++) acc[c][v] += wc * xv[v];                       \
        }                                                                               \
    }                                                                                   \
    _Pragma("GCC unroll 16")                                                            \
    for (int c = 0; c < COB; c++)                                                       \
        _Pragma("GCC unroll 4")                                                         \
        for (int v = 0; v < NV; v++)                                                    \
            memcpy(out + c * ostride + j + v * lanes, &acc[c][v], sizeof(vec));         \
}

/* All n positions for COB channels: wide tiles, then single vectors, then scalars. */
#define SIGCONV_DEFINE_BLOCK(T, NAME, COB, NV)                                          \
SIGCONV_DEFINE_TILE(T, NAME, COB, NV)                                                   \
SIGCONV_DEFINE_TILE(T, NAME, COB, 1)                                                    \
static void NAME##_cob##COB(T *out, ptrdiff_t ostride, const T *x, ptrdiff_t base, const ptrdiff_t *off, \
                            const ptrdiff_t *tap, const T *w, ptrdiff_t wstride,        \
                            const T *bias, int ntaps, ptrdiff_t n)                      \
{                                                                                       \
    const ptrdiff_t lanes = SIGCONV_VECTOR_BYTES / sizeof(T);                           \
    ptrdiff_t j = 0;                                                                    \
    for (; j + NV * lanes <= n; j += NV * lanes)                                        \
        NAME##_tile##COB##x##NV(out, ostride, x, base, off, tap, w, wstride, bias, ntaps, j); \
    for (; j + lanes <= n; j += lanes)                                                  \
        NAME##_tile##COB##x1(out, ostride, x, base, off, tap, w, wstride, bias, ntaps, j); \
    for (; j < n; j++) {                                                                \
        T acc[COB];                                                                     \
        for (int c = 0; c < COB; c++) acc[c] = bias ? bias[c] : (T)0;                   \
        for (int t = 0; t < ntaps; t++) {                                               \
            const T v = x[base + off[t] + j];                                           \
            const T *wt = w + tap[t] * wstride;                                         \
            for (int c = 0; c < COB; c++) acc[c] += wt[c] * v;                          \
        }                                                                               \
        for (int c = 0; c < COB; c++) out[c * ostride + j] = acc[c];                    \
    }                                                                                   \
}

/* Block shapes: COB channels x NV vectors of positions, at most 24 accumulators,
 * so that each tap costs fewer loads (NV vectors + COB broadcasts) than
 * fused multiply-adds (COB * NV). */
#define SIGCONV_DEFINE_DIRECT(T, NAME)                                                  \
SIGCONV_DEFINE_BLOCK(T, NAME, 8, 3)                                                     \
SIGCONV_DEFINE_BLOCK(T, NAME, 4, 6)                                                     \
SIGCONV_DEFINE_BLOCK(T, NAME, 3, 6)                                                     \
SIGCONV_DEFINE_BLOCK(T, NAME, 2, 8)                                                     \
SIGCONV_DEFINE_BLOCK(T, NAME, 1, 8)                                                     \
/* Run the block kernels for any number of channels, 8 at a time, then the rest.        \
 * w holds packed weights w[r * wstride + c] for tap row r and channel c.  */           \
static void NAME(T *out, ptrdiff_t ostride, const T *x, ptrdiff_t base, const ptrdiff_t *off, const ptrdiff_t *tap, \
                 const T *w, ptrdiff_t wstride, const T *bias, int ntaps, int cob,      \
                 ptrdiff_t n)                                                           \
{                                                                                       \
    int c = 0;                                                                          \
    for (; c + 8 <= cob; c += 8)                                                        \
        NAME##_cob8(out + c * ostride, ostride, x, base, off, tap, w + c, wstride, bias ? bias + c : NULL, ntaps, n); \
    if (c + 4 <= cob) {                                                                 \
        NAME##_cob4(out + c * ostride, ostride, x, base, off, tap, w + c, wstride, bias ? bias + c : NULL, ntaps, n); \
        c += 4;                                                                         \
    }                                                                                   \
    switch (cob - c) {                                                                  \
    case 3: NAME##_cob3(out + c * ostride, ostride, x, base, off, tap, w + c, wstride, bias ? bias + c : NULL, ntaps, n); break; \
    case 2: NAME##_cob2(out + c * ostride, ostride, x, base, off, tap, w + c, wstride, bias ? bias + c : NULL, ntaps, n); break; \
    case 1: NAME##_cob1(out + c * ostride, ostride, x, base, off, tap, w + c, wstride, bias ? bias + c : NULL, ntaps, n); break; \
    default: break;                                                                     \
    }                                                                                   \
}

SIGCONV_DEFINE_DIRECT(float, sigconv_direct_f32)
SIGCONV_DEFINE_DIRECT(double, sigconv_direct_f64)

#endif
