"""What sigconv runs on: the CPU, the microkernel target chosen for it, the BLAS.

sigconv's one compiled module is built for the architecture's baseline and
carries its hot microkernels for several targets (x86-64: ``"baseline"``
SSE2, ``"avx2"`` AVX2 + FMA, ``"avx512"`` AVX-512 F/VL/BW/DQ); at import it
takes the best one the CPU and OS support.  ``SIGCONV_CPU=avx2`` (or
``baseline``, ``avx512``, ``best``) in the environment forces a target; one
the CPU cannot run is refused with a warning.
"""
from __future__ import annotations

import os
import platform
from typing import Any

from . import _kernels

__all__ = ["cpu_info", "cpu_model"]


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux, else :func:`platform.processor`)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() in ("model name", "Model", "Processor", "cpu model"):
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def _blas() -> dict[str, Any]:
    """The BLAS that scipy's gemm calls: library, version, kernel family and threads."""
    try:
        import scipy.linalg  # noqa: F401  (loads the BLAS library)
        from threadpoolctl import threadpool_info
    except ImportError:  # pragma: no cover
        return {}
    pools = [pool for pool in threadpool_info() if pool.get("user_api") == "blas"]
    # sigconv's kernels call scipy's BLAS (numpy may load another one)
    pools.sort(key=lambda pool: "scipy.libs" not in str(pool.get("filepath", "")).lower())
    if not pools:
        return {}
    return {key: pools[0].get(key) for key in
            ("internal_api", "version", "architecture", "num_threads", "threading_layer")}


def cpu_info() -> dict[str, Any]:
    """A description of the machine as sigconv uses it.

    Returns
    -------
    dict
        ``model`` (CPU name), ``machine`` (architecture), ``target`` (the
        microkernel target in use), ``targets`` (those this CPU and build can
        run, slowest first), ``compiled`` (every target in the binary),
        ``forced`` (the value of ``SIGCONV_CPU``, or None), ``threads``
        (OpenMP threads) and ``blas`` (library, version, its own kernel
        family and threads).
    """
    return {
        "model": cpu_model(),
        "machine": platform.machine(),
        "target": _kernels.current_target(),
        "targets": _kernels.available_targets(),
        "compiled": _kernels.compiled_targets(),
        "forced": os.environ.get(_kernels.TARGET_VARIABLE) or None,
        "threads": _kernels.max_threads(),
        "blas": _blas(),
    }
