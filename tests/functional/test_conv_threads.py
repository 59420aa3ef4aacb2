"""The kernels' OpenMP threads give the serial result.

On the direct path each output element of the forward pass and of the input
gradient is summed by one thread in a fixed order, so one thread and two
threads agree to the bit.  The gemm path tiles the positions differently for
two threads, and BLAS may order a dot product differently at a tile's edge,
so it agrees to rounding; so does the weight gradient, which adds per-thread
partial sums.  (Jobs under about a million multiply-adds run on one thread
anyway, so the shapes here are larger than that.)
"""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

SCRIPT = textwrap.dedent("""
    import sys
    import numpy as np
    import sigconv.functional as F
    rng = np.random.default_rng(7)
    x = rng.standard_normal((4, 8, 40, 64))       # large enough to wake both threads
    w = rng.standard_normal((12, 4, 3, 4))
    g = rng.standard_normal((4, 12, 20, 32))
    options = dict(stride=(2, 2), padding="same", dilation=(1, 2), groups=2)
    for method in ("direct", "gemm"):
        y = F.conv(x, w, method=method, **options)
        gx = F.conv_grad_input(g, w, x.shape, method=method, **options)
        gw = F.conv_grad_weight(x, g, w.shape, **options)
        np.save(sys.argv[1] + method + "_y.npy", y)
        np.save(sys.argv[1] + method + "_gx.npy", gx)
        np.save(sys.argv[1] + method + "_gw.npy", gw)
""")


def _run(threads, prefix):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    subprocess.run([sys.executable, "-c", SCRIPT, prefix], check=True, env=env, timeout=120)


@pytest.mark.parametrize("method", ["direct", "gemm"])
def test_one_thread_equals_two_threads(tmp_path, method):
    _run(1, str(tmp_path / "one_"))
    _run(2, str(tmp_path / "two_"))
    load = lambda tag, name: np.load(tmp_path / f"{tag}_{method}_{name}.npy")  # noqa: E731
    same = np.testing.assert_array_equal if method == "direct" else (
        lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-13))
    same(load("one", "y"), load("two", "y"))
    same(load("one", "gx"), load("two", "gx"))
    np.testing.assert_allclose(load("one", "gw"), load("two", "gw"), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("method", ["direct", "gemm"])
def test_weight_gradient_is_the_same_on_every_run(rng, method):
    """The per-thread partial sums are assigned statically: repeated runs of one kernel path
    agree bit for bit.  (The path is named: "auto" may time the two paths again on a later
    call and, on a busy machine, choose the other one, which rounds differently.)"""
    import sigconv.functional as F

    x = rng.standard_normal((4, 8, 40, 64))
    g = rng.standard_normal((4, 12, 40, 64))
    first = F.conv_grad_weight(x, g, (12, 8, 3, 3), padding="same", method=method)
    for _ in range(5):
        np.testing.assert_array_equal(
            F.conv_grad_weight(x, g, (12, 8, 3, 3), padding="same", method=method), first)
