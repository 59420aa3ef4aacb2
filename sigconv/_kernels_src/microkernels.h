/* The hot microkernels, compiled once per CPU target into the one binary,
 * and the choice among them at import (runtime dispatch, as NumPy and
 * oneDNN do it).
 *
 * The extension itself is built for the architecture's baseline (x86-64:
 * SSE2; aarch64: NEON), so it loads on any CPU of its architecture.  On
 * x86-64 the microkernels are compiled a second and third time, for AVX2 with
 * FMA and for AVX-512 (F, VL, BW, DQ), inside `#pragma GCC target` regions:
 * only code in those regions uses the wider instructions, and it runs only
 * when the CPU (and the OS, which must save the wider registers) reports the
 * features.  sigconv_select_target() picks the best target the CPU supports,
 * or the one asked for.
 */
#ifndef SIGCONV_MICROKERNELS_H
#define SIGCONV_MICROKERNELS_H

#include <stddef.h>

enum { SIGCONV_BASELINE = 0, SIGCONV_AVX2 = 1, SIGCONV_AVX512 = 2, SIGCONV_NTARGETS = 3 };

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#define SIGCONV_X86_DISPATCH 1
#else
#define SIGCONV_X86_DISPATCH 0
#endif

/* baseline: whatever the build's flags target */
#define SIGCONV_TARGET baseline
#if defined(__aarch64__) || defined(__AVX512F__)
#define SIGCONV_REGISTERS 32
#else
#define SIGCONV_REGISTERS 16
#endif
#if defined(__AVX512F__)
#define SIGCONV_VECTOR_BYTES 64
#elif defined(__AVX__)
#define SIGCONV_VECTOR_BYTES 32
#else
#define SIGCONV_VECTOR_BYTES 16
#endif
#include "direct.h"
#undef SIGCONV_TARGET
#undef SIGCONV_REGISTERS
#undef SIGCONV_VECTOR_BYTES

#if SIGCONV_X86_DISPATCH
/* Code between these compiles for target ISA (a string), whatever the build's flags. */
#define SIGCONV_STR(x) #x
#if defined(__clang__)
#define SIGCONV_TARGET_BEGIN(ISA) \
    _Pragma(SIGCONV_STR(clang attribute push(__attribute__((target(ISA))), apply_to = function)))
#define SIGCONV_TARGET_END _Pragma("clang attribute pop")
#else
#define SIGCONV_TARGET_BEGIN(ISA) _Pragma("GCC push_options") _Pragma(SIGCONV_STR(GCC target(ISA)))
#define SIGCONV_TARGET_END _Pragma("GCC pop_options")
#endif

SIGCONV_TARGET_BEGIN("avx2,fma")
#define SIGCONV_TARGET avx2
#define SIGCONV_REGISTERS 16
#define SIGCONV_VECTOR_BYTES 32
#include "direct.h"
#undef SIGCONV_TARGET
#undef SIGCONV_REGISTERS
#undef SIGCONV_VECTOR_BYTES
SIGCONV_TARGET_END

SIGCONV_TARGET_BEGIN("avx512f,avx512vl,avx512bw,avx512dq,avx2,fma")
#define SIGCONV_TARGET avx512
#define SIGCONV_REGISTERS 32
#define SIGCONV_VECTOR_BYTES 64
#include "direct.h"
#undef SIGCONV_TARGET
#undef SIGCONV_REGISTERS
#undef SIGCONV_VECTOR_BYTES
SIGCONV_TARGET_END
#endif  /* SIGCONV_X86_DISPATCH */

typedef void (*sigconv_direct_f32_fn)(float *, ptrdiff_t, const float *, ptrdiff_t,
                                      const ptrdiff_t *, const ptrdiff_t *, const float *,
                                      ptrdiff_t, const float *, int, int, ptrdiff_t);
typedef void (*sigconv_direct_f64_fn)(double *, ptrdiff_t, const double *, ptrdiff_t,
                                      const ptrdiff_t *, const ptrdiff_t *, const double *,
                                      ptrdiff_t, const double *, int, int, ptrdiff_t);

#define SIGCONV_WGRAD_SIGNATURE(T)                                                   \
    (T *gw, ptrdiff_t ck, const T *g, ptrdiff_t gcs, const T *x, const ptrdiff_t *grow, \
     const ptrdiff_t *xrow, const ptrdiff_t *start, ptrdiff_t nk, ptrdiff_t nq,         \
     ptrdiff_t wp, const ptrdiff_t *toff, int kw, int cout, T *state, ptrdiff_t *cursor)
typedef void (*sigconv_wgrad_f32_fn) SIGCONV_WGRAD_SIGNATURE(float);
typedef void (*sigconv_wgrad_f64_fn) SIGCONV_WGRAD_SIGNATURE(double);

static sigconv_direct_f32_fn sigconv_direct_f32_impl = sigconv_direct_f32_baseline;
static sigconv_direct_f64_fn sigconv_direct_f64_impl = sigconv_direct_f64_baseline;
static sigconv_wgrad_f32_fn sigconv_wgrad_f32_impl = sigconv_wgrad_f32_baseline;
static sigconv_wgrad_f64_fn sigconv_wgrad_f64_impl = sigconv_wgrad_f64_baseline;
static int sigconv_target = SIGCONV_BASELINE;

/* 1 when the CPU and the OS can run target t. */
static int sigconv_cpu_supports(int t)
{
    if (t == SIGCONV_BASELINE) return 1;
#if SIGCONV_X86_DISPATCH
    __builtin_cpu_init();
    if (t == SIGCONV_AVX2)
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (t == SIGCONV_AVX512)
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl")
            && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq")
            && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
    return 0;
}

/* 1 when target t is compiled into this binary. */
static int sigconv_target_compiled(int t)
{
    if (t == SIGCONV_BASELINE) return 1;
    return SIGCONV_X86_DISPATCH && (t == SIGCONV_AVX2 || t == SIGCONV_AVX512);
}

/* Use target t (which the caller has checked); returns the target in use. */
static int sigconv_select_target(int t)
{
    sigconv_direct_f32_impl = sigconv_direct_f32_baseline;
    sigconv_direct_f64_impl = sigconv_direct_f64_baseline;
    sigconv_wgrad_f32_impl = sigconv_wgrad_f32_baseline;
    sigconv_wgrad_f64_impl = sigconv_wgrad_f64_baseline;
    sigconv_target = SIGCONV_BASELINE;
#if SIGCONV_X86_DISPATCH
    if (t == SIGCONV_AVX2) {
        sigconv_direct_f32_impl = sigconv_direct_f32_avx2;
        sigconv_direct_f64_impl = sigconv_direct_f64_avx2;
        sigconv_wgrad_f32_impl = sigconv_wgrad_f32_avx2;
        sigconv_wgrad_f64_impl = sigconv_wgrad_f64_avx2;
        sigconv_target = t;
    } else if (t == SIGCONV_AVX512) {
        sigconv_direct_f32_impl = sigconv_direct_f32_avx512;
        sigconv_direct_f64_impl = sigconv_direct_f64_avx512;
        sigconv_wgrad_f32_impl = sigconv_wgrad_f32_avx512;
        sigconv_wgrad_f64_impl = sigconv_wgrad_f64_avx512;
        sigconv_target = t;
    }
#endif
    return sigconv_target;
}

static inline void sigconv_direct_f32(float *out, ptrdiff_t ostride, const float *x, ptrdiff_t base,
                                      const ptrdiff_t *off, const ptrdiff_t *tap, const float *w,
                                      ptrdiff_t wstride, const float *bias, int ntaps, int cob,
                                      ptrdiff_t n)
{
    sigconv_direct_f32_impl(out, ostride, x, base, off, tap, w, wstride, bias, ntaps, cob, n);
}

static inline void sigconv_direct_f64(double *out, ptrdiff_t ostride, const double *x, ptrdiff_t base,
                                      const ptrdiff_t *off, const ptrdiff_t *tap, const double *w,
                                      ptrdiff_t wstride, const double *bias, int ntaps, int cob,
                                      ptrdiff_t n)
{
    sigconv_direct_f64_impl(out, ostride, x, base, off, tap, w, wstride, bias, ntaps, cob, n);
}

/* state: room for 8 * nk * kw vectors of the widest target (64 bytes each) */
static inline void sigconv_wgrad_f32 SIGCONV_WGRAD_SIGNATURE(float)
{
    sigconv_wgrad_f32_impl(gw, ck, g, gcs, x, grow, xrow, start, nk, nq, wp, toff, kw, cout,
                           state, cursor);
}

static inline void sigconv_wgrad_f64 SIGCONV_WGRAD_SIGNATURE(double)
{
    sigconv_wgrad_f64_impl(gw, ck, g, gcs, x, grow, xrow, start, nk, nq, wp, toff, kw, cout,
                           state, cursor);
}

#endif  /* SIGCONV_MICROKERNELS_H */
