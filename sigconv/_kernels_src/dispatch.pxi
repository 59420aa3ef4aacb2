# Runtime CPU dispatch of the microkernels (see microkernels.h).
import os
import warnings

cdef extern from "microkernels.h" nogil:
    int SIGCONV_BASELINE, SIGCONV_AVX2, SIGCONV_AVX512, SIGCONV_NTARGETS
    int sigconv_cpu_supports(int t) noexcept
    int sigconv_target_compiled(int t) noexcept
    int sigconv_select_target(int t) noexcept
    int sigconv_target
    void sigconv_direct_f32(float* out, isize ostride, const float* x, isize base,
                            const isize* off, const isize* tap, const float* w, isize wstride,
                            const float* bias, int ntaps, int cob, isize n) noexcept
    void sigconv_direct_f64(double* out, isize ostride, const double* x, isize base,
                            const isize* off, const isize* tap, const double* w, isize wstride,
                            const double* bias, int ntaps, int cob, isize n) noexcept
    void sigconv_wgrad_f32(float* gw, isize ck, const float* g, isize gcs, const float* x,
                           const isize* grow, const isize* xrow, const isize* start, isize nk,
                           isize nq, isize wp, const isize* toff, int kw, int cout,
                           float* state, isize* cursor) noexcept
    void sigconv_wgrad_f64(double* gw, isize ck, const double* g, isize gcs, const double* x,
                           const isize* grow, const isize* xrow, const isize* start, isize nk,
                           isize nq, isize wp, const isize* toff, int kw, int cout,
                           double* state, isize* cursor) noexcept

#: dispatch targets, slowest first
TARGETS = ("baseline", "avx2", "avx512")

#: environment variable that forces a target
TARGET_VARIABLE = "SIGCONV_CPU"


def compiled_targets():
    """The targets compiled into this binary, slowest first."""
    return tuple(name for t, name in enumerate(TARGETS) if sigconv_target_compiled(t))


def max_threads():
    """Threads an OpenMP parallel region of the kernels may use."""
    return openmp.omp_get_max_threads()


def available_targets():
    """The targets compiled into this binary that this CPU can run, slowest first."""
    return tuple(name for t, name in enumerate(TARGETS)
                 if sigconv_target_compiled(t) and sigconv_cpu_supports(t))


def current_target():
    """Name of the target the microkernels run."""
    return TARGETS[sigconv_target]


def set_target(str name):
    """Run the microkernels of target ``name`` (``"best"`` for the best available).

    Raises ValueError for an unknown name or a target this CPU (or binary)
    cannot run; returns the previous target's name.
    """
    previous = current_target()
    available = available_targets()
    if name == "best":
        name = available[len(available) - 1]
    if name not in TARGETS:
        raise ValueError(f"unknown CPU target {name!r}; expected one of "
                         f"{', '.join(TARGETS + ('best',))}")
    if name not in available:
        raise ValueError(f"CPU target {name!r} cannot run here; this CPU and build "
                         f"support {', '.join(available)}")
    sigconv_select_target(TARGETS.index(name))
    return previous


def _select_at_import():
    requested = os.environ.get(TARGET_VARIABLE, "").strip().lower()
    if requested in ("", "best", "auto"):
        set_target("best")
        return
    try:
        set_target(requested)
    except ValueError as exc:
        warnings.warn(f"{TARGET_VARIABLE}={requested!r} ignored: {exc}", RuntimeWarning, stacklevel=2)
        set_target("best")


_select_at_import()
