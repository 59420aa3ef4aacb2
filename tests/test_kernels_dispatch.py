"""Runtime CPU dispatch of the microkernels (sigconv._kernels, sigconv.cpu_info).

Every target the CPU can run gives the oracle's result; targets it cannot run
are skipped with the reason.  The default build must stay portable: outside
the AVX2 and AVX-512 microkernels the binary uses no 256- or 512-bit
registers, which a ``-march=native`` build on an AVX machine would.
"""
import importlib
import os
import re
import shutil
import subprocess
import sys
import threading

import numpy as np
import pytest

import sigconv
import sigconv.functional as F
from sigconv import _kernels

from .functional import conv_reference as reference

ALL_TARGETS = ("baseline", "avx2", "avx512")


def _target_or_skip(name):
    if name not in _kernels.compiled_targets():
        pytest.skip(f"target {name} is not compiled for {sigconv.cpu_info()['machine']}")
    if name not in _kernels.available_targets():
        pytest.skip(f"this CPU ({sigconv.cpu_info()['model']}) cannot run target {name}")


@pytest.fixture
def target():
    """Restores the import-time target after a test that switches it."""
    before = _kernels.current_target()
    yield _kernels.set_target
    _kernels.set_target(before)


def test_cpu_info_names_the_target_in_use():
    info = sigconv.cpu_info()
    assert info["target"] == _kernels.current_target()
    assert info["target"] in info["targets"]
    assert set(info["targets"]) <= set(info["compiled"]) <= set(ALL_TARGETS)
    assert "baseline" in info["targets"]
    assert info["model"] and info["threads"] >= 1


def test_import_takes_the_best_target():
    if os.environ.get("SIGCONV_CPU"):
        pytest.skip("SIGCONV_CPU forces the target of this process")
    assert _kernels.current_target() == _kernels.available_targets()[-1]


@pytest.mark.parametrize("name", ALL_TARGETS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", [
    # (x shape, weight shape, options): channel counts that use every register block
    ((2, 3, 70), (13, 3, 5), dict(padding="same")),
    ((2, 5, 9, 37), (16, 5, 3, 3), dict(padding=1, dilation=(1, 2))),
    ((1, 4, 5, 6, 19), (14, 2, 2, 3, 3), dict(padding="full", groups=2)),
    ((3, 2, 130), (40, 2, 9), dict(padding="valid")),
])
def test_every_target_gives_the_reference_result(target, name, dtype, case):
    _target_or_skip(name)
    x_shape, w_shape, options = case
    rng = np.random.default_rng(3)
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal(w_shape).astype(dtype)
    b = rng.standard_normal(w_shape[0]).astype(dtype)
    expected = reference.conv(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64),
                              **options)
    target(name)
    got = F.conv(x, w, b, method="direct", **options)
    tol = 1e-4 if dtype == np.float32 else 1e-11
    np.testing.assert_allclose(got, expected, rtol=tol, atol=tol * np.abs(expected).max())
    # the weight gradient's own microkernels, against the reference
    g = rng.standard_normal(got.shape).astype(dtype)
    gw = F.conv_grad_weight(x, g, w.shape, method="direct", **options)
    expected_gw = reference.conv_grad_weight(x.astype(np.float64), g.astype(np.float64), w.shape,
                                             **options)
    np.testing.assert_allclose(gw, expected_gw, rtol=tol, atol=tol * np.abs(expected_gw).max())
    # the input gradient runs the forward microkernels on the flipped kernel
    gx = F.conv_grad_input(g, w, x.shape, method="direct", **options)
    target("baseline")
    gx_base = F.conv_grad_input(g, w, x.shape, method="direct", **options)
    np.testing.assert_allclose(gx, gx_base, rtol=tol, atol=tol * np.abs(gx_base).max())


def test_set_target_refuses_unknown_and_unsupported(target):
    with pytest.raises(ValueError, match="unknown CPU target 'sse9'.*baseline, avx2, avx512"):
        target("sse9")
    missing = [t for t in ALL_TARGETS if t not in _kernels.available_targets()]
    if missing:
        with pytest.raises(ValueError, match=f"{missing[0]!r} cannot run here"):
            target(missing[0])


def _run_child(code, **env):
    environment = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    environment.update(env)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=environment, timeout=120)


def test_environment_variable_forces_a_target():
    code = "import sigconv; print(sigconv.cpu_info()['target'])"
    done = _run_child(code, SIGCONV_CPU="baseline")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "baseline"
    done = _run_child(code, SIGCONV_CPU="no-such-cpu")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == _kernels.available_targets()[-1]
    assert "SIGCONV_CPU='no-such-cpu' ignored" in done.stderr


def test_baseline_process_computes_what_the_best_target_does(tmp_path):
    """A whole process on the baseline target (what a CPU without AVX runs)."""
    code = ("import numpy as np, sigconv.functional as F\n"
            "rng = np.random.default_rng(0)\n"
            "x = rng.standard_normal((2, 4, 33, 41)); w = rng.standard_normal((9, 4, 3, 3))\n"
            "y = F.conv(x, w, padding='same')\n"
            "p = F.max_pool(x, 3, stride=2, padding=1)\n"
            "a = F.avg_pool(x, 2)\n"
            f"np.savez({str(tmp_path / 'out.npz')!r}, y=y, p=p, a=a)\n")
    done = _run_child(code, SIGCONV_CPU="baseline")
    assert done.returncode == 0, done.stderr
    saved = np.load(tmp_path / "out.npz")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 4, 33, 41))
    w = rng.standard_normal((9, 4, 3, 3))
    np.testing.assert_allclose(saved["y"], F.conv(x, w, padding="same"), rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(saved["p"], F.max_pool(x, 3, stride=2, padding=1))
    np.testing.assert_allclose(saved["a"], F.avg_pool(x, 2), rtol=1e-15)


def _functions_using_wide_registers(path):
    """``{function: set of register widths}`` for functions of ``path`` using ymm or zmm."""
    listing = subprocess.run(["objdump", "-d", "--no-show-raw-insn", str(path)],
                             capture_output=True, text=True, check=True).stdout
    found = {}
    function = None
    header = re.compile(r"^[0-9a-f]+ <(.+)>:$")
    for line in listing.splitlines():
        m = header.match(line)
        if m:
            function = m.group(1)
            continue
        if function and ("%ymm" in line or "%zmm" in line):
            found.setdefault(function, set()).add("zmm" if "%zmm" in line else "ymm")
    return found


@pytest.mark.skipif(shutil.which("objdump") is None, reason="objdump (binutils) is not installed")
def test_default_build_is_portable():
    """Only the AVX2 and AVX-512 microkernels may use AVX registers.

    A build with -march=native (or -mavx2) on an AVX machine vectorises the
    Cython loops with ymm/zmm registers too, and dies with SIGILL on an older
    CPU; this test then fails.
    """
    if sigconv.cpu_info()["machine"] not in ("x86_64", "AMD64"):
        pytest.skip("the check reads x86-64 register names")
    if os.environ.get("SIGCONV_CFLAGS"):
        pytest.skip("SIGCONV_CFLAGS asks for a non-default build")
    wide = _functions_using_wide_registers(_kernels.__file__)
    assert any("avx512" in f for f in wide), "the AVX-512 microkernels are missing"
    assert any("avx2" in f for f in wide), "the AVX2 microkernels are missing"
    stray = {f: widths for f, widths in wide.items() if "avx2" not in f and "avx512" not in f}
    assert not stray, f"code outside the dispatched microkernels uses AVX registers: {stray}"
    avx2_with_zmm = [f for f, widths in wide.items() if "avx2" in f and "zmm" in widths]
    assert not avx2_with_zmm, f"AVX2 microkernels use 512-bit registers: {avx2_with_zmm}"


def _blas_threads():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    return [p["num_threads"] for p in threadpoolctl.threadpool_info() if p["user_api"] == "blas"]


def test_blas_limit_is_restored_when_callers_overlap():
    """Caller A enters, B enters, A leaves, B leaves: BLAS gets its threads back.

    (Each caller saving and restoring the limits it found on entry would
    leave BLAS at one thread: B found A's limit.)
    """
    conv_module = importlib.import_module("sigconv.functional._core")
    before = _blas_threads()
    if not before or max(before) < 2:
        pytest.skip("BLAS runs one thread here; nothing to restore")
    a, b = conv_module._blas_single_thread(), conv_module._blas_single_thread()
    a.__enter__()
    b.__enter__()
    assert max(_blas_threads()) == 1
    a.__exit__(None, None, None)
    assert max(_blas_threads()) == 1, "B is still inside: BLAS must stay at one thread"
    b.__exit__(None, None, None)
    assert _blas_threads() == before


def test_blas_limit_is_restored_after_concurrent_calls():
    before = _blas_threads()
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 8, 40, 40))
    w = rng.standard_normal((8, 8, 3, 3))
    errors = []

    def work():
        try:
            for _ in range(20):
                F.conv(x, w, method="gemm")
                F.conv_grad_weight(x, np.ones((2, 8, 38, 38)), w.shape)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert _blas_threads() == before
