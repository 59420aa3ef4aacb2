/* Register-blocked inner loop of the direct convolution path.
 *
 *   out[c * ostride + j] = bias[c] + sum_t w[tap[t] * wstride + c] * x[base + off[t] + j]
 *
 * for j < n positions along a row (unit stride) and up to 16 output channels
 * c.  A block of COB channels times NV vectors of positions stays in
 * registers while the loop runs over the taps t, so each tap costs NV vector
 * loads and COB broadcasts for COB * NV fused multiply-adds.  Each call sums
 * every tap of its positions, so it stores its results (bias may be NULL for
 * zero) and the output needs no initialisation pass.  Written with GCC vector
 * extensions: the compiler emits the widest vectors the build targets
 * (AVX-512 with -march=native on this project's machines), or scalar code.
 */
#ifndef SIGCONV_DIRECT_H
#define SIGCONV_DIRECT_H

#include <stddef.h>
#include <string.h>

#define SIGCONV_VECTOR_BYTES 64

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
static void NAME##_cob##COB(SIGCONV_ARGS(T), ptrdiff_t n)                            \
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

/* Block shapes COB x NV with at most 24 accumulators, so that each tap costs
 * fewer loads (NV vectors + COB broadcasts) than multiply-adds (COB * NV).
 * NAME runs any cob <= 16 channels as blocks of 8, then 4, then 3, 2 or 1;
 * w holds packed weights w[r * wstride + c] for tap row r and channel c. */
#define SIGCONV_DEFINE_DIRECT(T, NAME)                                               \
SIGCONV_DEFINE_BLOCK(T, NAME, 8, 3)                                                  \
SIGCONV_DEFINE_BLOCK(T, NAME, 4, 6)                                                  \
SIGCONV_DEFINE_BLOCK(T, NAME, 3, 6)                                                  \
SIGCONV_DEFINE_BLOCK(T, NAME, 2, 8)                                                  \
SIGCONV_DEFINE_BLOCK(T, NAME, 1, 8)                                                  \
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
        if (left >= 8) { NAME##_cob8(SIGCONV_PASS, n); c += 8; }                     \
        else if (left >= 4) { NAME##_cob4(SIGCONV_PASS, n); c += 4; }                \
        else if (left == 3) { NAME##_cob3(SIGCONV_PASS, n); c += 3; }                \
        else if (left == 2) { NAME##_cob2(SIGCONV_PASS, n); c += 2; }                \
        else { NAME##_cob1(SIGCONV_PASS, n); c += 1; }                               \
    }                                                                                \
}

SIGCONV_DEFINE_DIRECT(float, sigconv_direct_f32)
SIGCONV_DEFINE_DIRECT(double, sigconv_direct_f64)

#endif
