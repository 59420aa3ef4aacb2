"""Transposed convolution speed: sigconv against PyTorch CPU, in one process.

Usage::

    python benchmarks/bench_transposed.py              # issue 4's case (c) and two more
    python benchmarks/bench_transposed.py --repeat 21 --cases 1
    python benchmarks/bench_transposed.py --backward   # also forward + both gradients

Case 1 is issue 4's benchmark (c): float32 ``conv_transpose`` 3-D from
2 x 16 x 24^3 to 8 channels, kernel 4, stride 2 (padding 1, the usual 2x
upsampling layer: 48^3 outputs).  Every peer is warmed up first; sigconv and
PyTorch are timed in alternation, call by call, so that both see the same load
of a shared machine; the reported time is the median of ``--repeat`` runs.  Columns: sigconv with
``method="auto"`` (the sub-pixel phase decomposition at stride > 1), sigconv
with ``method="dilated"`` (one input-dilated convolution, the route that
multiplies the inserted zeros), PyTorch's ``conv_transpose{1,2,3}d``; ratio is
PyTorch's time over sigconv's (> 1: sigconv is faster); the target of case 1
is ratio >= 1.  ``max |diff|`` is the largest difference between sigconv's and
PyTorch's outputs.  With ``--backward`` a second table times forward plus the
input and weight gradients (sigconv: conv_transpose + conv_transpose_grad_input
+ conv_transpose_grad_weight; PyTorch: autograd).
"""
import argparse
import os
import statistics
import sys
import time

import numpy as np

from _common import cpu_count, format_table, time_call, machine_line

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

# (name, N, C_in, C_out, spatial, kernel, stride, padding)
CASES = [
    ("(c) 3-D 16->8 24^3 k=4 s=2", 2, 16, 8, (24, 24, 24), (4, 4, 4), 2, 1),
    ("2-D 64->32 32x32 k=4 s=2", 8, 64, 32, (32, 32), (4, 4), 2, 1),
    ("1-D 32->16 L=4000 k=8 s=4", 8, 32, 16, (4000,), (8,), 4, 2),
]
TARGET = {1: 1.0}


def time_alternating(fns, *, repeat, warmup=2):
    """Median wall time of each of ``fns``, timed in alternation.

    On a shared machine the load changes during a run; alternating the peers
    call by call exposes them to the same load, so their ratio is fair.
    """
    for _ in range(warmup):
        for fn in fns:
            fn()
    times = [[] for _ in fns]
    for _ in range(repeat):
        for fn, spent in zip(fns, times):
            start = time.perf_counter()
            fn()
            spent.append(time.perf_counter() - start)
    return [statistics.median(spent) for spent in times]


def _flops(n, c_in, c_out, spatial, kernel):
    """Useful multiply-adds of a transposed convolution: every input sample times every tap."""
    return 2.0 * n * c_in * c_out * np.prod(spatial) * np.prod(kernel)


def run(cases, repeat, backward):
    rng = np.random.default_rng(0)
    rows, back_rows = [], []
    for number in cases:
        name, n, c_in, c_out, spatial, kernel, stride, padding = CASES[number - 1]
        x = rng.standard_normal((n, c_in) + spatial, dtype=np.float32)
        w = rng.standard_normal((c_in, c_out) + kernel, dtype=np.float32)
        options = dict(stride=stride, padding=padding)
        flops = _flops(n, c_in, c_out, spatial, kernel)
        y = F.conv_transpose(x, w, **options)
        t_dil, _ = time_call(lambda: F.conv_transpose(x, w, method="dilated", **options),
                             repeat=max(3, repeat // 4), warmup=1)
        t_torch = diff = ratio = None
        if torch is None:
            t_auto, _ = time_call(lambda: F.conv_transpose(x, w, **options), repeat=repeat)
        else:
            fn = getattr(torch.nn.functional, f"conv_transpose{len(spatial)}d")
            tx, tw = torch.from_numpy(x), torch.from_numpy(w)
            with torch.no_grad():
                ty = fn(tx, tw, **options)
                t_auto, t_torch = time_alternating(
                    [lambda: F.conv_transpose(x, w, **options), lambda: fn(tx, tw, **options)],
                    repeat=repeat)
            diff = float(np.max(np.abs(ty.numpy() - y)))
            ratio = t_torch / t_auto
        target = TARGET.get(number)
        met = None if ratio is None or target is None else ("met" if ratio >= target else "MISSED")
        rows.append([f"{number} {name}", f"{t_auto * 1e3:.2f}", f"{flops / t_auto / 1e9:.0f}",
                     f"{t_dil * 1e3:.2f}",
                     None if t_torch is None else f"{t_torch * 1e3:.2f}",
                     None if t_torch is None else f"{flops / t_torch / 1e9:.0f}",
                     None if ratio is None else f"{ratio:.2f}", met,
                     None if diff is None else f"{diff:.1e}"])
        if backward:
            gy = rng.standard_normal(y.shape, dtype=np.float32)

            def sig_step():
                F.conv_transpose(x, w, **options)
                F.conv_transpose_grad_input(gy, w, x.shape, **options)
                F.conv_transpose_grad_weight(x, gy, w.shape, **options)

            t_tb = None
            if torch is None:
                t_sig, _ = time_call(sig_step, repeat=repeat)
            else:
                tgy = torch.from_numpy(gy)

                def torch_step():
                    ax = torch.from_numpy(x).requires_grad_()
                    aw = torch.from_numpy(w).requires_grad_()
                    fn(ax, aw, **options).backward(tgy)

                t_sig, t_tb = time_alternating([sig_step, torch_step], repeat=repeat)
            back_rows.append([f"{number} {name}", f"{t_sig * 1e3:.2f}",
                              None if t_tb is None else f"{t_tb * 1e3:.2f}",
                              None if t_tb is None else f"{t_tb / t_sig:.2f}"])
    print(format_table(["case", "sigconv ms", "GFLOP/s", "dilated ms", "torch ms", "GFLOP/s",
                        "ratio", "target", "max |diff|"], rows))
    if back_rows:
        print()
        print("forward + input and weight gradients")
        print(format_table(["case", "sigconv ms", "torch ms", "ratio"], back_rows))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=11, help="timed runs per peer (median)")
    parser.add_argument("--cases", default=",".join(str(i + 1) for i in range(len(CASES))),
                        help="comma-separated case numbers")
    parser.add_argument("--backward", action="store_true", help="also time the gradients")
    parser.add_argument("--threads", type=int, default=cpu_count(),
                        help="PyTorch threads (default: the core count)")
    args = parser.parse_args()
    print(machine_line())  # CPU, dispatch target, sgemm rate: the physical limit
    threads = args.threads
    if torch is not None:
        torch.set_num_threads(threads)
    print(f"sigconv {sigconv.__version__}, numpy {np.__version__}, "
          f"torch {torch.__version__ if torch is not None else 'not installed'}, "
          f"{threads} threads, float32, median of {args.repeat}")
    run([int(c) for c in args.cases.split(",")], args.repeat, args.backward)


if __name__ == "__main__":
    main()
