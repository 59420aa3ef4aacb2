"""Convolution algorithms: conv(method="auto") against PyTorch CPU and scipy.signal.fftconvolve.

Usage::

    flock /tmp/sigconv-bench.lock python benchmarks/bench_methods.py
    python benchmarks/bench_methods.py --repeat 15 --cases a,d
    python benchmarks/bench_methods.py --calibrate     # the cost model's rates on this machine

Cases of issue 4, float32, one process, every peer warmed up, median of
``--repeat`` runs:

(a) 2-D single channel 512x512, random kernel 31x31, padding "same";
(b) 1-D 16 signals of 160,000 samples, random kernel of 1,025 taps, "same";
(d) separable 3-D Gaussian, kernel 15 (sigma 3), on a 1x1x128^3 volume, "same".

Targets: on (a) and (b) ``conv(method="auto")`` at least 10x faster than
PyTorch and within 1.2x of ``scipy.signal.fftconvolve``; on (d) at least 5x
faster than the same kernel applied unfactored (``method="direct"``).  Each
case prints the method auto chose, the times, the ratios and the largest
difference from the peer's result relative to the output's scale.
"""
import argparse
import math
import os
import sys

import numpy as np

from _common import cpu_count, format_table, time_call, machine_line

try:
    import sigconv
except ImportError:  # running from a source checkout that is not installed
    sys.path.insert(1, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))
    import sigconv
import scipy.signal

import sigconv.functional as F

try:
    import torch
except ImportError:
    torch = None


def gaussian(k, sigma):
    t = np.arange(k) - (k - 1) / 2
    g = np.exp(-t ** 2 / (2 * sigma ** 2))
    return (g / g.sum()).astype(np.float32)


def rel_diff(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30))


def torch_conv(x, w):
    """PyTorch's conv on the same arrays (cross-correlation, padding "same")."""
    xt, wt = torch.from_numpy(x), torch.from_numpy(w)
    fn = {3: torch.nn.functional.conv1d, 4: torch.nn.functional.conv2d,
          5: torch.nn.functional.conv3d}[x.ndim]

    def run():
        with torch.no_grad():
            return fn(xt, wt, padding="same").numpy()
    return run


def fftconvolve_peer(x, w):
    """scipy.signal.fftconvolve over the spatial axes, one call for the whole batch."""
    nd = x.ndim - 2
    kernel = w[0, 0][(slice(None, None, -1),) * nd]          # correlation = convolution, flipped
    axes = tuple(range(-nd, 0))
    # (N, *spatial) against (1, *kernel): scipy broadcasts the batch axis
    return lambda: scipy.signal.fftconvolve(x[:, 0], kernel[None], mode="same", axes=axes)


def run_case(name, x, w, peers, repeat):
    """Time sigconv auto and each peer; return table rows and the auto time."""
    method = F.choose_conv_method(x, w, padding="same")
    auto = lambda: F.conv(x, w, padding="same")  # noqa: E731
    y = auto()
    t_auto, _ = time_call(auto, repeat=repeat, warmup=2)
    rows = [(name, f"sigconv auto ({method})", f"{t_auto * 1e3:.1f}", "1.00", "")]
    times = {}
    for peer_name, fn in peers:
        t, _ = time_call(fn, repeat=repeat, warmup=2)
        out = fn()
        diff = rel_diff(y[:, 0] if out.ndim == y.ndim - 1 else y, out)
        times[peer_name] = t
        rows.append((name, peer_name, f"{t * 1e3:.1f}", f"{t / t_auto:.2f}", f"{diff:.1e}"))
    return rows, t_auto, times, method


def calibrate(repeat):
    """Measure the cost model's rates (float32) and print them as COST_CONSTANTS entries."""
    rng = np.random.default_rng(0)
    found = {}
    # direct: 2-D single channel 31x31 and a 3x3 case for the per-output overhead
    x = rng.standard_normal((1, 1, 512, 512), dtype=np.float32)
    big, small = (rng.standard_normal((1, 1, k, k), dtype=np.float32) for k in (31, 3))
    t_big, _ = time_call(lambda: F.conv(x, big, padding="same", method="direct"), repeat=repeat)
    t_small, _ = time_call(lambda: F.conv(x, small, padding="same", method="direct"),
                           repeat=repeat)
    outputs = 512 * 512
    found["direct_rate_single"] = 2 * outputs * (961 - 9) / max(t_big - t_small, 1e-9)
    found["direct_per_output"] = max(t_small - 2 * outputs * 9 / found["direct_rate_single"],
                                     0) / outputs
    xm = rng.standard_normal((4, 16, 64, 64), dtype=np.float32)
    wm = rng.standard_normal((16, 16, 7, 7), dtype=np.float32)
    t, _ = time_call(lambda: F.conv(xm, wm, padding="same", method="direct"), repeat=repeat)
    found["direct_rate_multi"] = 2 * 4 * 16 * 16 * 49 * 64 * 64 / t
    t, _ = time_call(lambda: F.conv(xm, wm, padding="same", method="gemm"), repeat=repeat)
    found["gemm_rate"] = 2 * 4 * 16 * 16 * 49 * 64 * 64 / t
    # fft: the frame of (a), three transforms dominate
    t, _ = time_call(lambda: F.fft_conv(x, big, padding="same"), repeat=repeat)
    size = 540 * 540
    found["fft_rate"] = 3 * size * math.log2(size) / t
    # separable: one depthwise pass along the middle axis of a volume
    v = rng.standard_normal((1, 1, 96, 96, 96), dtype=np.float32)
    g = gaussian(15, 3.0)
    t, _ = time_call(lambda: F.separable_conv(v, [np.ones(1, np.float32), g,
                                                  np.ones(1, np.float32)], padding="same"),
                     repeat=repeat)
    found["separable_rate"] = 2 * 96 ** 3 * 17 / t
    print("measured rates (float32); compare with sigconv.functional.choose.COST_CONSTANTS:")
    from sigconv.functional.choose import COST_CONSTANTS
    for key, value in found.items():
        print(f"    {key:22s} measured {value:10.3g}   in use {COST_CONSTANTS[key]:10.3g}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--cases", default="a,b,d")
    parser.add_argument("--calibrate", action="store_true")
    args = parser.parse_args(argv)
    print(machine_line())  # CPU, dispatch target, sgemm rate: the physical limit
    print(f"sigconv {getattr(sigconv, '__version__', '?')}, numpy {np.__version__}, "
          f"scipy {scipy.__version__}, torch {torch.__version__ if torch else 'absent'}, "
          f"{cpu_count()} CPUs")
    if args.calibrate:
        calibrate(args.repeat)
        return 0
    rng = np.random.default_rng(0)
    wanted = set(args.cases.split(","))
    rows, verdicts = [], []
    if "a" in wanted:
        x = rng.standard_normal((1, 1, 512, 512), dtype=np.float32)
        w = rng.standard_normal((1, 1, 31, 31), dtype=np.float32)
        peers = [("scipy fftconvolve", fftconvolve_peer(x, w))]
        if torch is not None:
            peers.insert(0, ("torch conv2d", torch_conv(x, w)))
        r, t, times, _ = run_case("(a) 2-D 512^2 k31", x, w, peers, args.repeat)
        rows += r
        verdicts += _verdicts("(a)", t, times)
    if "b" in wanted:
        x = rng.standard_normal((16, 1, 160000), dtype=np.float32)
        w = rng.standard_normal((1, 1, 1025), dtype=np.float32)
        peers = [("scipy fftconvolve", fftconvolve_peer(x, w))]
        if torch is not None:
            peers.insert(0, ("torch conv1d", torch_conv(x, w)))
        r, t, times, _ = run_case("(b) 1-D 16x160000 k1025", x, w, peers, args.repeat)
        rows += r
        verdicts += _verdicts("(b)", t, times)
    if "d" in wanted:
        x = rng.standard_normal((1, 1, 128, 128, 128), dtype=np.float32)
        g = gaussian(15, 3.0)
        w = np.multiply.outer(np.multiply.outer(g, g), g)[None, None].astype(np.float32)
        peers = [("unfactored (direct)", lambda: F.conv(x, w, padding="same", method="direct")),
                 ("sigconv fft", lambda: F.conv(x, w, padding="same", method="fft"))]
        if torch is not None:
            peers.append(("torch conv3d", torch_conv(x, w)))
        r, t, times, method = run_case("(d) 3-D 128^3 Gaussian k15", x, w, peers, args.repeat)
        rows += r
        ratio = times["unfactored (direct)"] / t
        verdicts.append(f"(d) auto chose {method}: {ratio:.1f}x faster than unfactored "
                        f"(target >= 5x): {'met' if ratio >= 5 else 'MISSED'}")
    print(format_table(["case", "implementation", "ms (median)", "time / auto", "rel. diff"],
                       rows))
    print()
    for line in verdicts:
        print(line)
    return 0


def _verdicts(case, t_auto, times):
    lines = []
    for name, t in times.items():
        if name.startswith("torch"):
            ratio = t / t_auto
            lines.append(f"{case} {ratio:.1f}x faster than PyTorch (target >= 10x): "
                         f"{'met' if ratio >= 10 else 'MISSED'}")
        elif name.startswith("scipy"):
            ratio = t_auto / t
            lines.append(f"{case} {ratio:.2f}x scipy.signal.fftconvolve's time (target <= 1.2x): "
                         f"{'met' if ratio <= 1.2 else 'MISSED'}")
    return lines


if __name__ == "__main__":
    sys.exit(main())
