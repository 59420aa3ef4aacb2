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
