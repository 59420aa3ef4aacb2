"""Pooling speed: sigconv against PyTorch CPU, in one process, float32.

Run from the project root::

    python benchmarks/bench_pooling.py [--repeat 30]

Each case is warmed first (both libraries), then timed ``--repeat`` times,
alternating the two libraries so that both see the same machine load;
the table gives median times, effective bandwidth (bytes of input read plus
output written, divided by the median time) and the ratio of sigconv's speed
to PyTorch's (``> 1`` means sigconv is faster).  Without PyTorch the script
prints sigconv's figures alone.  Threads: both libraries use all cores
(OpenMP for sigconv, ``torch.get_num_threads()`` for PyTorch) unless
``--threads N`` is given.  Run it on an otherwise idle machine: when another
process keeps a core busy, every parallel region of either library waits for
its second thread to be scheduled, and the figures of both become noise.
"""
import argparse
import pathlib
import statistics
import sys
import time

import numpy as np

from _common import machine_line

try:
    import sigconv.functional as F
except ImportError:  # run from a source checkout without installing
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
    import sigconv.functional as F

try:
    import torch
    import torch.nn.functional as T
except ImportError:  # PyTorch is an optional peer
    torch = None

CASES = [
    # name, input shape, sigconv call, PyTorch call
    ("max_pool 2-D k=2", (32, 32, 64, 64),
     lambda x: F.max_pool(x, 2),
     lambda t: T.max_pool2d(t, 2)),
    ("max_pool 3-D k=2", (2, 16, 48, 48, 48),
     lambda x: F.max_pool(x, 2),
     lambda t: T.max_pool3d(t, 2)),
    ("avg_pool 3-D k=3 s=1 p=1", (2, 16, 48, 48, 48),
     lambda x: F.avg_pool(x, 3, stride=1, padding=1),
     lambda t: T.avg_pool3d(t, 3, stride=1, padding=1)),
    ("L2 pool 2-D k=2", (32, 32, 64, 64),
     lambda x: F.lp_pool(x, 2, 2),
     lambda t: T.lp_pool2d(t, 2, 2)),
]


def _time(fn, arg):
    t0 = time.perf_counter()
    result = fn(arg)
    return time.perf_counter() - t0, result


def median_times(ours, x, theirs, t, repeat, warm=3):
    """Medians of ``ours(x)`` and ``theirs(t)``, timed alternately so that both see
    the same machine load; both are warmed first."""
    for _ in range(warm):
        out = ours(x)
        if theirs is not None:
            ref = theirs(t)
    mine, peer = [], []
    for _ in range(repeat):
        dt, out = _time(ours, x)
        mine.append(dt)
        if theirs is not None:
            dt, ref = _time(theirs, t)
            peer.append(dt)
    return (statistics.median(mine), out,
            statistics.median(peer) if peer else None, ref if peer else None)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for both libraries (default: all cores)")
    args = parser.parse_args()
    print(machine_line())  # CPU, dispatch target, sgemm rate: the physical limit
    if args.threads is not None:
        from threadpoolctl import threadpool_limits
        threadpool_limits(args.threads, user_api="openmp")
        if torch is not None:
            torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    if torch is not None:
        print(f"PyTorch {torch.__version__}, {torch.get_num_threads()} threads")
        torch.set_grad_enabled(False)
    else:
        print("PyTorch is not installed: sigconv figures only")
    header = f"{'case':28s} {'shape':>20s} {'sigconv ms':>11s} {'GB/s':>6s}"
    if torch is not None:
        header += f" {'PyTorch ms':>11s} {'GB/s':>6s} {'ratio':>6s}"
    print(header)
    print("-" * len(header))
    for name, shape, ours, theirs in CASES:
        x = rng.standard_normal(shape).astype(np.float32)
        t = torch.from_numpy(x) if torch is not None else None
        t_ours, out, t_theirs, ref = median_times(ours, x, theirs if torch is not None else None,
                                                  t, args.repeat)
        nbytes = x.nbytes + out.nbytes
        line = (f"{name:28s} {'x'.join(map(str, shape)):>20s} {t_ours * 1e3:11.2f} "
                f"{nbytes / t_ours / 1e9:6.2f}")
        if torch is not None:
            ok = np.allclose(out, ref.numpy(), rtol=1e-4, atol=1e-5)
            line += (f" {t_theirs * 1e3:11.2f} {nbytes / t_theirs / 1e9:6.2f} "
                     f"{t_theirs / t_ours:6.2f}{'' if ok else '  (results differ!)'}")
        print(line)
    if torch is not None:
        print("ratio = sigconv speed / PyTorch speed (PyTorch median / sigconv median)")


if __name__ == "__main__":
    main()
