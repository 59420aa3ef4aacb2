"""The kernel path ``method="auto"`` takes, timed on this machine and remembered.

Which of the direct and gemm paths is faster depends on the CPU (vector
width, caches, the BLAS's kernels) as much as on the layer: on an AVX-512
machine the direct path wins almost every layer, on an AVX2 machine gemm wins
many mid-size ones.  No fixed cost model holds on both, so sigconv does what
cuDNN's benchmark mode does: the first time a *layer signature* is seen it
runs every applicable path on the real call, keeps the fastest, and looks the
answer up afterwards.

A signature is what decides the speed, not the exact shape: dtype, channels
per group, groups, kernel, stride, dilation, input dilation, the number of
OpenMP threads, and the sizes rounded to powers of two (positions per item,
output row length, item count).  Batches of clips of different lengths thus
share one measurement per size class.

A first measurement can be misled by a burst of load on a shared machine,
so each choice is measured once more, on its fifth use, and the best times
of both measurements decide.

Answers are kept in memory (at most :data:`MAX_ENTRIES`) and in a JSON file
per machine in the user's cache folder (``$SIGCONV_CACHE_DIR``, else
``$XDG_CACHE_HOME/sigconv``, else ``~/.cache/sigconv``), like FFTW's wisdom,
so a new process does not measure again.  The file records the CPU, the
dispatch target, the BLAS and sigconv's version; a file of another machine or
version is ignored, a corrupt one is ignored with a warning, and both are
rewritten.  Writes are atomic (temporary file and rename) and merge what
another process wrote meanwhile, so concurrent first uses do not corrupt it.
``SIGCONV_AUTOTUNE=0`` turns measuring off: "auto" then takes the rule of
:func:`default_path`.  A given cache gives the same choices every run.
"""
from __future__ import annotations

import collections
import contextlib
import json
import math
import os
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from numpy.typing import DTypeLike

from .._version import __version__
from .. import _atomic, _cpu, _kernels

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]  # the module is None where it does not exist

__all__ = ["choose_path", "default_path", "cache_path", "clear", "MAX_ENTRIES"]

#: Entries kept in memory and on disk; the oldest go first.
MAX_ENTRIES = 4096

#: Version of the cache file's layout.
FORMAT = 1

#: Each path is timed ``SMALL_REPEAT`` times (the best kept) for problems
#: estimated under ``SMALL_SECONDS`` at ``NOMINAL_RATE`` flop/s, twice under
#: ``LARGE_SECONDS``, once above (the first use then costs one run per path).
SMALL_SECONDS = 2e-3
LARGE_SECONDS = 0.25
SMALL_REPEAT = 3
NOMINAL_RATE = 20e9

PATHS = ("direct", "gemm")

#: measurements a choice gets: the first on its first use, the next on its
#: ``RECHECK_AFTER``-th use (in this or a later process)
CHECKS = 2
RECHECK_AFTER = 5

_lock = threading.Lock()
# signature -> {"path", "times", "checks"}, oldest first
_choices: collections.OrderedDict[str, dict[str, Any]] = collections.OrderedDict()
_uses: dict[str, int] = {}  # signature -> uses in this process while it awaits its second check
# (cache file, target) read into _choices, if any
_loaded_from: tuple[str | None, str] | None = None


_machines: dict[str, dict[str, Any]] = {}  # dispatch target -> _machine() of this process
# (SIGCONV_CACHE_DIR, XDG_CACHE_HOME, HOME) -> cache_path()
_paths: dict[tuple[str | None, ...], str | None] = {}


def _machine():
    """What a cached timing depends on besides the layer."""
    target = _kernels.current_target()
    if target not in _machines:
        info = _cpu.cpu_info()
        blas = info["blas"]
        _machines[target] = {
            "cpu": info["model"], "target": target, "threads": info["threads"],
            "blas": f"{blas.get('internal_api')} {blas.get('architecture')}",
            "sigconv": __version__}
    return _machines[target]


def cache_path() -> str | None:
    """The cache file of this machine, or None when no cache folder can be named."""
    settings = (os.environ.get("SIGCONV_CACHE_DIR"), os.environ.get("XDG_CACHE_HOME"),
                os.environ.get("HOME"))
    if settings not in _paths:
        _paths[settings] = _cache_path()
    return _paths[settings]


def _cache_path():
    folder = os.environ.get("SIGCONV_CACHE_DIR")
    if not folder:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        if base.startswith("~"):
            return None
        folder = os.path.join(base, "sigconv")
    return os.path.join(folder, "conv-paths.json")


def _enabled():
    return os.environ.get("SIGCONV_AUTOTUNE", "1").strip().lower() not in ("0", "off", "no", "false")


def _read(path, machine):
    """Valid entries of the cache file at ``path`` for ``machine`` ({} if none)."""
    try:
        with open(path, "rb") as f:
            raw = f.read(16 << 20)
    except FileNotFoundError:
        return {}
    except OSError as exc:
        warnings.warn(f"sigconv: cannot read the tuning cache {path}: {exc}; measuring again",
                      RuntimeWarning, stacklevel=4)
        return {}
    try:
        data = json.loads(raw.decode("utf-8"))
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ValueError(f"format {data.get('format') if isinstance(data, dict) else None!r}, "
                             f"expected {FORMAT}")
        entries = data.get("paths")
        if not isinstance(entries, dict):
            raise ValueError("no 'paths' table")
    except (ValueError, UnicodeDecodeError) as exc:
        warnings.warn(f"sigconv: ignoring the corrupt tuning cache {path} ({exc}); "
                      "it will be rewritten", RuntimeWarning, stacklevel=4)
        return {}
    if data.get("machine") != machine:
        return {}  # another CPU, target, BLAS or version: its timings do not apply
    return {key: entry for key, entry in entries.items()
            if isinstance(key, str) and _valid_entry(entry)}


def _valid_entry(entry):
    """True for ``{"path": p, "times": {path: seconds}, "checks": n}`` with sane values."""
    if not isinstance(entry, dict) or entry.get("path") not in PATHS:
        return False
    times, checks = entry.get("times"), entry.get("checks")
    return (isinstance(times, dict) and entry["path"] in times and len(times) >= 2
            and all(p in PATHS and isinstance(t, (int, float)) and 0 <= t < math.inf
                    for p, t in times.items())
            and isinstance(checks, int) and not isinstance(checks, bool) and checks >= 1)


@contextlib.contextmanager
def _file_lock(path):
    """Wait for an exclusive lock on ``path`` (POSIX ``flock``; no lock elsewhere).

    Held only around the read-merge-write of the cache file, so that two
    processes measuring at once both keep their entries.
    """
    if fcntl is None:  # pragma: no cover - Windows: the atomic replace alone
        yield
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _write(path, machine):
    """Merge the in-memory choices into the cache file, atomically; failures only warn."""
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with _file_lock(path + ".lock"):
            merged = _read(path, machine)
            merged.update(_choices)
            keys = list(merged)[-MAX_ENTRIES:]
            payload = {"format": FORMAT, "machine": machine,
                       "paths": {k: merged[k] for k in keys}}
            _atomic.atomic_write_bytes(path, json.dumps(payload, indent=0).encode("utf-8"))
    except OSError as exc:
        warnings.warn(f"sigconv: cannot write the tuning cache {path}: {exc}",
                      RuntimeWarning, stacklevel=4)


def _load():
    """Read the cache file once per process (and again when its path changes)."""
    global _loaded_from
    path = cache_path()
    origin = (path, _machine()["target"])
    if origin == _loaded_from:
        return
    _choices.clear()
    _loaded_from = origin
    if path is not None:
        _choices.update(_read(path, _machine()))


def clear(*, disk: bool = False) -> None:
    """Forget every remembered choice (and delete this machine's cache file if ``disk``)."""
    global _loaded_from
    with _lock:
        _choices.clear()
        _uses.clear()
        _loaded_from = None
        path = cache_path()
        if disk and path is not None and os.path.exists(path):
            os.unlink(path)


def _size_class(value):
    """``value`` rounded to a power of two (0 stays 0)."""
    return 0 if value <= 0 else 1 << round(math.log2(value))


def signature(op: str, dtype: DTypeLike, weight_shape: Sequence[int], groups: int,
              stride: Sequence[int], dilation: Sequence[int], input_dilation: Sequence[int],
              sizes: Sequence[float], threads: int) -> str:
    """The key under which a path choice is remembered (a string, for JSON).

    ``sizes`` is ``(items, mean output positions per item, mean output row
    length)``; each is rounded to a power of two.
    """
    parts = (op, np.dtype(dtype).name, weight_shape[0] // groups, weight_shape[1], groups,
             tuple(weight_shape[2:]), tuple(stride), tuple(dilation), tuple(input_dilation),
             threads) + tuple(_size_class(int(v)) for v in sizes)
    return repr(parts)


def default_path(stride: Sequence[int], input_dilation: Sequence[int]) -> str:
    """The rule without measurements: direct when its vector loop applies, else gemm."""
    return "direct" if stride[-1] == 1 and input_dilation[-1] == 1 else "gemm"


def _measure(candidates: Sequence[str], run: Callable[[str], object], rounds: int,
             times: dict[str, float] | None = None) -> dict[str, float]:
    """Best seconds of each path over ``rounds`` interleaved rounds (merged into ``times``)."""
    times = dict(times or {})
    for _ in range(rounds):  # interleaved, so that a burst of load hits both paths
        for path in candidates:
            start = time.perf_counter()
            run(path)
            times[path] = min(times.get(path, math.inf), time.perf_counter() - start)
    return times


def _remember(key: str, times: dict[str, float], checks: int) -> str:
    """Store ``key``'s timings in memory and on disk; return the fastest path."""
    fastest = min(times, key=times.__getitem__)
    with _lock:
        _choices[key] = {"path": fastest, "times": times, "checks": checks}
        _choices.move_to_end(key)
        while len(_choices) > MAX_ENTRIES:
            _choices.popitem(last=False)
        path = cache_path()
        if path is not None:
            _write(path, _machine())
    return fastest


def choose_path(key: str, candidates: Sequence[str], run: Callable[[str], object],
                flops: float) -> str:
    """Run the remembered (or fastest) path of ``candidates`` for ``key``; return its name.

    ``run(path)`` computes the whole result by ``path``; ``flops`` estimates
    the work, so that small problems are timed a few times (the best kept)
    and large ones fewer.  The result of the last run is the caller's output:
    every path computes all of it.

    A first measurement can be misled by a burst of load on a shared
    machine, and the answer is kept for good; so a choice is measured a
    second time, one round in the other order, on its ``RECHECK_AFTER``-th
    use (in this process or a later one), and the best times of both
    measurements decide.
    """
    if len(candidates) == 1 or not _enabled():
        run(candidates[0])
        return candidates[0]
    with _lock:
        _load()
        known = _choices.get(key)
        if known is not None and known["checks"] < CHECKS:
            _uses[key] = _uses.get(key, 0) + 1
            recheck = _uses[key] >= RECHECK_AFTER
        else:
            recheck = False
    if known is not None and set(known["times"]) == set(candidates):
        if not recheck:
            run(known["path"])
            return known["path"]
        times = _measure(tuple(reversed(candidates)), run, 1, known["times"])
        fastest = _remember(key, times, known["checks"] + 1)
        if fastest != candidates[0]:
            run(fastest)
        return fastest
    estimate = flops / NOMINAL_RATE
    rounds = SMALL_REPEAT if estimate < SMALL_SECONDS else 2 if estimate < LARGE_SECONDS else 1
    times = _measure(candidates, run, rounds)
    fastest = _remember(key, times, 1)
    _uses[key] = 1
    if fastest != candidates[-1]:
        run(fastest)  # the output must be the chosen path's (paths agree to rounding)
    return fastest
