/* Register-blocked inner loop of the direct convolution path.
 *
 * out[c * ostride + j] += sum_t w[tap[t] * COB + c] * src[t][j]
 *
 * for j < n positions along a row (unit stride) and a block of COB output
 * channels.  COB accumulators of one vector of positions stay in registers
 * while the loop runs over the taps: one vector load and COB fused
 * multiply-adds per tap.  Written with GCC vector extensions, so the compiler
 * emits the widest vectors the build targets (AVX-512 with -march=native on
 * this project's machines) and plain scalar code elsewhere.
 */
#ifndef SIGCONV_DIRECT_H
#define SIGCONV_DIRECT_H

#include <stddef.h>
#include <string.h>

#define SIGCONV_VECTOR_BYTES 64

#define SIGCONV_DEFINE_BLOCK(T, NAME, COB)                                             \
static void NAME##_cob##COB(T *out, ptrdiff_t ostride, const T **src,                  \
                            const ptrdiff_t *tap, const T *w, ptrdiff_t wstride,       \
                            int ntaps, ptrdiff_t n)                                   \
{                                                                                      \
    typedef T vec __attribute__((vector_size(SIGCONV_VECTOR_BYTES)));                  \
    const ptrdiff_t lanes = SIGCONV_VECTOR_BYTES / sizeof(T);                          \
    ptrdiff_t j = 0;                                                                   \
    for (; j + lanes <= n; j += lanes) {                                               \
        vec acc[COB];                                                                  \
        _Pragma("GCC unroll 16")                                                       \
        for (int c = 0; c < COB; c++) acc[c] = (vec){0};                               \
        for (int t = 0; t < ntaps; t++) {                                              \
            vec v;                                                                     \
            memcpy(&v, src[t] + j, sizeof(vec));                                       \
            const T *wt = w + tap[t] * wstride;                                            \
            _Pragma("GCC unroll 16")                                                   \
            for (int c = 0; c < COB; c++) acc[c] += wt[c] * v;                         \
        }                                                                              \
        _Pragma("GCC unroll 16")                                                       \
        for (int c = 0; c < COB; c++) {                                                \
            vec o;                                                                     \
            memcpy(&o, out + c * ostride + j, sizeof(vec));                            \
            o += acc[c];                                                               \
            memcpy(out + c * ostride + j, &o, sizeof(vec));                            \
        }                                                                              \
    }                                                                                  \
    for (; j < n; j++) {                                                               \
        T acc[COB] = {0};                                                              \
        for (int t = 0; t < ntaps; t++) {                                              \
            const T v = src[t][j];                                                     \
            const T *wt = w + tap[t] * wstride;                                            \
            for (int c = 0; c < COB; c++) acc[c] += wt[c] * v;                         \
        }                                                                              \
        for (int c = 0; c < COB; c++) out[c * ostride + j] += acc[c];                  \
    }                                                                                  \
}

#define SIGCONV_DEFINE_DIRECT(T, NAME)                                                 \
SIGCONV_DEFINE_BLOCK(T, NAME, 16)                                                      \
SIGCONV_DEFINE_BLOCK(T, NAME, 8)                                                       \
SIGCONV_DEFINE_BLOCK(T, NAME, 4)                                                       \
SIGCONV_DEFINE_BLOCK(T, NAME, 1)                                                       \
/* Run the block kernel for cob <= 16 channels, as 16 / 8 / 4 / 1 sub-blocks.       \
 * w holds packed weights w[r * wstride + c] for tap row r and channel c.  */       \
static void NAME(T *out, ptrdiff_t ostride, const T **src, const ptrdiff_t *tap,       \
                 const T *w, ptrdiff_t wstride, int ntaps, int cob, ptrdiff_t n)       \
{                                                                                      \
    int c = 0;                                                                         \
    if (cob == 16) { NAME##_cob16(out, ostride, src, tap, w, wstride, ntaps, n); return; }      \
    for (; c + 8 <= cob; c += 8)                                                       \
        NAME##_cob8(out + c * ostride, ostride, src, tap, w + c, wstride, ntaps, n);  \
    for (; c + 4 <= cob; c += 4)                                                       \
        NAME##_cob4(out + c * ostride, ostride, src, tap, w + c, wstride, ntaps, n);  \
    for (; c < cob; c++)                                                               \
        NAME##_cob1(out + c * ostride, ostride, src, tap, w + c, wstride, ntaps, n);  \
}

SIGCONV_DEFINE_DIRECT(float, sigconv_direct_f32)
SIGCONV_DEFINE_DIRECT(double, sigconv_direct_f64)

#endif
