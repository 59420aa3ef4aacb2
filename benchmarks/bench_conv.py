"""Convolution speed: sigconv against PyTorch CPU and a numpy im2col + tensordot.

Usage::

    python benchmarks/bench_conv.py               # the six cases, float32
    python benchmarks/bench_conv.py --dtype float64
    python benchmarks/bench_conv.py --quick       # smaller batches, 3 repeats
    python benchmarks/bench_conv.py --repeat 15 --cases 3,4
    SIGCONV_CPU=avx2 python benchmarks/bench_conv.py   # another dispatch target

The first line names the CPU, the dispatch target and the machine's sgemm
rate.  The first table compares ``method="auto"`` with PyTorch against the
targets of issue 13; the second times every forced kernel path (forward, and
forward plus both gradients with that path) beside ``"auto"``, round-robin in
the same rounds, and says whether auto is within 10% of the fastest forced
path.  ``auto`` remembers its timings in the cache folder of
``sigconv.functional.tuning`` (``SIGCONV_CACHE_DIR``); point it at an empty
folder to include the first-use measurements in the warm-up.

All peers run on the same float32 inputs in one process, padding "same",
stride 1.  Forward times one convolution; forward+backward times the forward
plus both gradients (sigconv: conv + conv_grad_input + conv_grad_weight;
PyTorch: autograd; numpy: im2col forward, tensordot weight gradient and
col2im input gradient).  Throughput counts 2 * N * C_out * C_in / groups *
prod(kernel) * prod(output) floating-point operations for a forward pass and
three times that for forward+backward.  The ratio column is sigconv's
throughput over PyTorch's (> 1: sigconv is faster).  Each case also prints the
largest difference between sigconv's and PyTorch's results, so the comparison
is between equal answers.  PyTorch is optional: without it the torch columns
are empty.
"""
import argparse
import math
import os
import sys

import numpy as np

from _common import (cpu_count, format_table, machine_line, peak_memory, sgemm_gflops, time_call,
                     time_interleaved)

try:
    import sigconv
except ImportError:  # running from a source checkout that is not installed
    sys.path.insert(1, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))
    import sigconv
import sigconv.functional as F

try:
    import torch
except ImportError:
    torch = None

# (name, N, C_in, C_out, spatial, kernel)
CASES = [
    ("1-D 1->32 L=16000 k=9", 16, 1, 32, (16000,), (9,)),
    ("1-D 32->64 L=4000 k=9", 16, 32, 64, (4000,), (9,)),
    ("2-D 16->32 64x64 k=3", 32, 16, 32, (64, 64), (3, 3)),
    ("2-D 3->32 224x224 k=3", 8, 3, 32, (224, 224), (3, 3)),
    ("3-D 8->16 48^3 k=3", 2, 8, 16, (48, 48, 48), (3, 3, 3)),
    ("3-D 3->16 16x112x112 k=3", 2, 3, 16, (16, 112, 112), (3, 3, 3)),
]

# issue 13's targets: sigconv / PyTorch throughput, forward and forward+backward
TARGET_RATIO = {1: 1.0, 2: 0.8, 3: 0.8, 4: 1.0, 5: 0.8, 6: 1.0}
#: forward GFLOP/s as a share of the machine's sgemm rate, on cases 2, 3 and 5
TARGET_SGEMM_SHARE = {2: 0.7, 3: 0.7, 5: 0.7}
#: "auto" within this factor of the fastest forced path
AUTO_SLACK = 1.10
METHODS = ("direct", "gemm")


# ---------------------------------------------------------------------------
# numpy im2col + tensordot peer (stride 1, odd kernels, "same" padding)
# ---------------------------------------------------------------------------

def _same_pad(x, kernel):
    nd = len(kernel)
    return np.pad(x, ((0, 0), (0, 0)) + tuple(((k - 1) // 2, (k - 1) // 2) for k in kernel))


def numpy_forward(x, w):
    nd = w.ndim - 2
    xp = _same_pad(x, w.shape[2:])
    # (N, C_in, *out, *kernel): a view; tensordot copies it into the im2col matrix
    cols = np.lib.stride_tricks.sliding_window_view(xp, w.shape[2:], axis=tuple(range(2, 2 + nd)))
    y = np.tensordot(cols, w, axes=([1] + list(range(2 + nd, 2 + 2 * nd)),
                                     list(range(1, 2 + nd))))   # (N, *out, C_out)
    return np.moveaxis(y, -1, 1)


def numpy_backward(x, w, gy):
    nd = w.ndim - 2
    kernel = w.shape[2:]
    xp = _same_pad(x, kernel)
    cols = np.lib.stride_tricks.sliding_window_view(xp, kernel, axis=tuple(range(2, 2 + nd)))
    out_axes = list(range(2, 2 + nd))
    # weight gradient: sum over items and positions of window x grad  -> (C_in, *kernel, C_out)
    gw = np.tensordot(cols, gy, axes=([0] + out_axes, [0] + out_axes))
    gw = np.moveaxis(gw, -1, 0)
    # input gradient: col2im of grad x weight -> (N, *out, C_in, *kernel), scatter-added per tap
    gcols = np.tensordot(gy, w, axes=([1], [0]))
    gxp = np.zeros(xp.shape, dtype=x.dtype)
    out = gy.shape[2:]
    for tap in np.ndindex(*kernel):
        where = (slice(None), slice(None)) + tuple(slice(t, t + o) for t, o in zip(tap, out))
        gxp[where] += np.moveaxis(gcols[(Ellipsis, slice(None)) + tap], -1, 1)
    crop = (slice(None), slice(None)) + tuple(slice((k - 1) // 2, (k - 1) // 2 + n)
                                              for k, n in zip(kernel, x.shape[2:]))
    return gxp[crop], gw


# ---------------------------------------------------------------------------
# PyTorch peer
# ---------------------------------------------------------------------------

def torch_functions(x, w, gy):
    conv = {1: torch.nn.functional.conv1d, 2: torch.nn.functional.conv2d,
            3: torch.nn.functional.conv3d}[x.ndim - 2]
    xt, wt, gyt = torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(gy)
    xg = xt.clone().requires_grad_(True)
    wg = wt.clone().requires_grad_(True)

    def forward():
        with torch.no_grad():
            return conv(xt, wt, padding="same")

    def forward_backward():
        xg.grad = None
        wg.grad = None
        y = conv(xg, wg, padding="same")
        y.backward(gyt)
        return y, xg.grad, wg.grad

    return forward, forward_backward


def warm_up_torch():
    """Run a few convolutions so PyTorch's first-call set-up is not timed."""
    rng = np.random.default_rng(0)
    for nd in (1, 2, 3):
        x = torch.from_numpy(rng.standard_normal((2, 8) + (16,) * nd).astype(np.float32))
        w = torch.from_numpy(rng.standard_normal((8, 8) + (3,) * nd).astype(np.float32))
        x.requires_grad_(True)
        conv = getattr(torch.nn.functional, f"conv{nd}d")
        for _ in range(3):
            conv(x, w, padding="same").sum().backward()


# ---------------------------------------------------------------------------

def gflops(flops, seconds):
    return flops / seconds / 1e9 if seconds else float("nan")


def fmt(v, digits=1):
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return f"{v:.{digits}f}"


def max_abs(a, b):
    return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))


def errors_against(pairs):
    """(max abs error, max abs error / max |reference|) over (result, reference) pairs."""
    worst_abs = max(max_abs(a, b) for a, b in pairs)
    worst_rel = max(max_abs(a, b) / max(float(np.abs(np.asarray(b)).max()), 1e-30)
                    for a, b in pairs)
    return worst_abs, worst_rel


def run_case(number, case, args):
    name, n, c_in, c_out, spatial, kernel = case
    if args.quick:
        n = max(1, n // 4)
    rng = np.random.default_rng(number)
    dtype = np.dtype(args.dtype)
    x = rng.standard_normal((n, c_in) + spatial).astype(dtype)
    w = (rng.standard_normal((c_out, c_in) + kernel) / math.sqrt(c_in * math.prod(kernel))
         ).astype(dtype)
    out = spatial  # "same", stride 1
    gy = rng.standard_normal((n, c_out) + out).astype(dtype)
    flops = 2 * n * c_out * c_in * math.prod(kernel) * math.prod(out)
    opts = dict(padding="same")

    def sc_forward(method="auto"):
        return F.conv(x, w, method=method, **opts)

    def sc_forward_backward(method="auto"):
        y = F.conv(x, w, method=method, **opts)
        return (y, F.conv_grad_input(gy, w, x.shape, method=method, **opts),
                F.conv_grad_weight(x, gy, w.shape, **opts))

    timing = dict(repeat=args.repeat, warmup=args.warmup)
    results = {}
    # auto and the forced paths round-robin, so that load hits them alike
    for phase, fn in (("fwd", sc_forward), ("fwd+bwd", sc_forward_backward)):
        medians = time_interleaved({m: (lambda m=m: fn(m)) for m in ("auto",) + METHODS},
                                   **timing)
        results["sigconv", phase] = medians.pop("auto")
        for method, seconds in medians.items():
            results[method, phase] = seconds
    if torch is not None:
        t_fwd, t_fb = torch_functions(x, w, gy)
        results["torch", "fwd"] = time_call(t_fwd, **timing)[0]
        results["torch", "fwd+bwd"] = time_call(t_fb, **timing)[0]
    if not args.no_numpy:
        results["numpy", "fwd"] = time_call(lambda: numpy_forward(x, w), **timing)[0]
        results["numpy", "fwd+bwd"] = time_call(
            lambda: (numpy_forward(x, w), numpy_backward(x, w, gy)), **timing)[0]

    # honesty check: the peers must compute the same thing
    y, gx, gw = sc_forward_backward()
    errors = {}
    if torch is not None:
        ty, tgx, tgw = t_fb()
        ref = (ty.detach().numpy(), tgx.numpy(), tgw.numpy())
    else:
        ref = (numpy_forward(x, w),) + numpy_backward(x, w, gy)
    errors["fwd"] = errors_against([(y, ref[0])])
    errors["fwd+bwd"] = errors_against(list(zip((y, gx, gw), ref)))

    memory = {}
    if not args.no_memory:
        memory["fwd"] = peak_memory(sc_forward)
        memory["fwd+bwd"] = peak_memory(sc_forward_backward)

    rows, method_rows = [], []
    for phase, factor in (("fwd", 1), ("fwd+bwd", 3)):
        f = flops * factor
        s = results["sigconv", phase]
        t = results.get(("torch", phase))
        p = results.get(("numpy", phase))
        ratio = t / s if t else None
        target = TARGET_RATIO[number]
        met = "-" if ratio is None else ("yes" if ratio >= target else "NO")
        share = gflops(f, s) / args.sgemm
        share_target = TARGET_SGEMM_SHARE.get(number) if phase == "fwd" else None
        share_cell = f"{share:.0%}" + ("" if share_target is None else
                                       (" yes" if share >= share_target else " NO"))
        rss, traced = memory.get(phase, (None, None))
        rows.append([
            f"{number}. {name}" if phase == "fwd" else "", phase,
            fmt(s * 1e3, 2), fmt(gflops(f, s)), share_cell,
            fmt(t * 1e3 if t else None, 2), fmt(gflops(f, t) if t else None),
            fmt(ratio, 2), f"{target:g}x {met}",
            fmt(p * 1e3 if p else None, 2), fmt(gflops(f, p) if p else None),
            f"{errors[phase][0]:.1e}", f"{errors[phase][1]:.1e}",
            fmt(rss, 0), fmt(traced, 0),
        ])
        fastest = min(results[m, phase] for m in METHODS)
        method_rows.append([
            f"{number}. {name}" if phase == "fwd" else "", phase,
            *[fmt(gflops(f, results[m, phase])) for m in METHODS], fmt(gflops(f, s)),
            fmt(fastest / s, 2), "yes" if s <= AUTO_SLACK * fastest else "NO"])
    return rows, method_rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="batches 4x smaller and 3 repeats (a smoke run)")
    parser.add_argument("--repeat", type=int, default=None,
                        help="timed runs per measurement, the median is reported (default 7)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed runs before timing")
    parser.add_argument("--cases", default="1,2,3,4,5,6", help="comma-separated case numbers")
    parser.add_argument("--threads", type=int, default=cpu_count(),
                        help="PyTorch threads (default: the core count)")
    parser.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    parser.add_argument("--no-numpy", action="store_true", help="skip the numpy im2col peer")
    parser.add_argument("--no-memory", action="store_true", help="skip the memory measurement")
    args = parser.parse_args(argv)
    if args.repeat is None:
        args.repeat = 3 if args.quick else 7

    print(machine_line())
    args.sgemm = sgemm_gflops()
    print(f"sigconv {sigconv.__version__}, numpy {np.__version__}, "
          f"torch {torch.__version__ if torch is not None else 'not installed'}; "
          f"{args.dtype}, padding 'same', stride 1; "
          f"median of {args.repeat} after {args.warmup} warm-up runs"
          + ("; --quick: batches / 4" if args.quick else ""))
    if torch is not None:
        torch.set_num_threads(args.threads)
        warm_up_torch()

    headers = ["case", "pass", "sigconv ms", "GFLOP/s", "of sgemm", "torch ms", "GFLOP/s",
               "sc/torch", "target", "numpy ms", "GFLOP/s", "max abs err", "max rel err",
               "peak RSS MiB", "traced MiB"]
    rows, method_rows = [], []
    for number in [int(c) for c in args.cases.split(",") if c.strip()]:
        case_rows, case_methods = run_case(number, CASES[number - 1], args)
        rows += case_rows
        method_rows += case_methods
    print(format_table(headers, rows))
    print()
    print(format_table(["case", "pass"] + [f"{m} GFLOP/s" for m in METHODS]
                       + ["auto GFLOP/s", "auto / fastest", "auto within 10%"], method_rows))
    print("sigconv: method='auto'.  of sgemm: its GFLOP/s over the machine's sgemm rate.  "
          "sc/torch: sigconv throughput / PyTorch throughput.  max abs/rel err: largest "
          "difference of sigconv's output (fwd), or of its output and both gradients (fwd+bwd), "
          "from PyTorch's (numpy's without torch), absolute and relative to the largest "
          "reference value of that array.  peak RSS: growth "
          "of the resident-set peak during one sigconv call (all allocations); traced: "
          "tracemalloc peak (numpy/Python allocations only).")


if __name__ == "__main__":
    main()
