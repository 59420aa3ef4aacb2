"""Timing and memory helpers shared by the benchmark scripts.

Every peer is warmed up before it is timed (PyTorch's CPU convolution runs ~3x
slower the first time in a process), and the reported time is the median of
``repeat`` runs.
"""
import os
import re
import statistics
import time
import tracemalloc


def sgemm_gflops(size=2048, repeat=3):
    """The machine's single-precision GEMM rate through numpy (all BLAS threads), GFLOP/s."""
    import numpy as np
    a = np.random.default_rng(0).standard_normal((size, size), dtype=np.float32)
    a @ a
    best = min(_timed(lambda: a @ a) for _ in range(repeat))
    return 2 * size**3 / best / 1e9


def _timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def machine_line():
    """One line naming the CPU, sigconv's dispatch target, the BLAS and its sgemm rate.

    Every benchmark prints it first, so that its ratios can be read against
    the machine's physical limit.
    """
    import sigconv
    info = sigconv.cpu_info()
    blas = info["blas"]
    return (f"CPU: {info['model']} ({info['machine']}, {cpu_count()} cores); sigconv target "
            f"{info['target']} (of {', '.join(info['targets'])}); BLAS {blas.get('internal_api')} "
            f"{blas.get('version')} {blas.get('architecture')}; numpy sgemm 2048^2: "
            f"{sgemm_gflops():.0f} GFLOP/s")


def cpu_count():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def time_call(fn, *, repeat=7, warmup=2):
    """Median wall time of ``fn()`` in seconds, after ``warmup`` untimed calls.

    Returns ``(median, times)``.
    """
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times


def time_interleaved(fns, *, repeat=7, warmup=2):
    """Median wall time of each of ``fns`` (a dict of callables), timed round-robin.

    Each round calls every function once, so that a burst of load on a shared
    machine hits all of them alike; returns ``{name: median seconds}``.
    """
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times = {name: [] for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def _status_kib(field):
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(re.findall(r"\d+", line)[0])
    except OSError:
        pass
    return None


def _reset_peak_rss():
    """Reset the kernel's resident-set high-water mark (Linux >= 4.0)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _trim_heap():
    """Give freed heap pages back to the OS, so re-used memory is counted again."""
    try:
        import ctypes
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def peak_memory(fn):
    """Memory ``fn()`` needs beyond what is already resident, in MiB.

    Returns ``(rss_mib, traced_mib)``: the growth of the resident-set peak
    (``VmHWM`` after resetting it; counts every allocation, C ones included;
    None where /proc cannot be reset) and tracemalloc's peak (allocations made
    through Python's and numpy's allocators only).
    """
    rss = None
    _trim_heap()
    if _reset_peak_rss():
        base = _status_kib("VmRSS")
        fn()
        peak = _status_kib("VmHWM")
        if base is not None and peak is not None:
            rss = max(peak - base, 0) / 1024
    tracemalloc.start()
    try:
        fn()
        _, traced = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return rss, traced / 2**20


def format_table(headers, rows):
    """A plain-text table with right-aligned columns."""
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = []
    for n, r in enumerate(cells):
        lines.append("  ".join(c.rjust(w) if i else c.ljust(w)
                               for i, (c, w) in enumerate(zip(r, widths))))
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)
