"""conv(method="auto"): timed on first use of a layer signature, remembered per machine."""
import json
import os
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import sigconv.functional as F
from sigconv.functional import tuning


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """A fresh, empty cache folder for one test."""
    monkeypatch.setenv("SIGCONV_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("SIGCONV_AUTOTUNE", raising=False)
    tuning.clear()
    yield tmp_path / "conv-paths.json"
    tuning.clear()


def _fake_run(seconds):
    """A ``run(path)`` that sleeps ``seconds[path]`` and records the calls."""
    calls = []

    def run(path):
        calls.append(path)
        time.sleep(seconds[path])
    return run, calls


def test_first_use_times_every_path_and_keeps_the_fastest(cache):
    run, calls = _fake_run({"gemm": 0.02, "direct": 0.0})
    assert tuning.choose_path("k1", ("gemm", "direct"), run, flops=1e12) == "direct"
    assert calls == ["gemm", "direct"]      # a large problem: one run per path
    saved = json.loads(cache.read_text())
    assert list(saved["paths"]) == ["k1"]
    entry = saved["paths"]["k1"]
    assert entry["path"] == "direct" and entry["checks"] == 1
    assert entry["times"]["gemm"] >= 0.02 > entry["times"]["direct"]
    assert saved["machine"]["target"]


def test_the_chosen_path_computes_the_output(cache):
    run, calls = _fake_run({"gemm": 0.0, "direct": 0.02})
    assert tuning.choose_path("k1", ("gemm", "direct"), run, flops=1e12) == "gemm"
    assert calls == ["gemm", "direct", "gemm"]   # the last run, whose output is kept, is gemm's


def test_small_problems_are_timed_several_times_interleaved(cache):
    run, calls = _fake_run({"gemm": 0.0, "direct": 0.0})
    tuning.choose_path("k1", ("gemm", "direct"), run, flops=1e3)
    assert calls[:2 * tuning.SMALL_REPEAT] == ["gemm", "direct"] * tuning.SMALL_REPEAT
    run, calls = _fake_run({"gemm": 0.0, "direct": 0.0})
    tuning.choose_path("k2", ("gemm", "direct"), run, flops=tuning.NOMINAL_RATE * 0.1)
    assert calls[:4] == ["gemm", "direct", "gemm", "direct"]


def test_a_remembered_choice_is_used_without_timing(cache):
    run, calls = _fake_run({"gemm": 0.02, "direct": 0.0})
    tuning.choose_path("k1", ("gemm", "direct"), run, flops=1e12)
    calls.clear()
    assert tuning.choose_path("k1", ("gemm", "direct"), run, flops=1e12) == "direct"
    assert calls == ["direct"]


def test_a_choice_is_measured_again_on_its_fifth_use(cache):
    """A first measurement under a burst of load is corrected by the second one."""
    seconds = {"gemm": 0.01, "direct": 0.03}         # the load hit the direct path
    run, calls = _fake_run(seconds)
    assert tuning.choose_path("k1", ("gemm", "direct"), run, flops=1e12) == "gemm"
    seconds["direct"] = 0.002                          # quiet again: direct is faster
    seconds["gemm"] = 0.02
    for use in range(2, tuning.RECHECK_AFTER + 1):
        calls.clear()
        chosen = tuning.choose_path("k1", ("gemm", "direct"), run, flops=1e12)
        if use < tuning.RECHECK_AFTER:
            assert (chosen, calls) == ("gemm", ["gemm"])
    assert chosen == "direct"
    assert calls[:2] == ["direct", "gemm"]             # one round, the other order
    entry = json.loads(cache.read_text())["paths"]["k1"]
    assert entry["checks"] == 2 and entry["path"] == "direct"
    calls.clear()
    for _ in range(10):                                # measured enough: no more timing
        tuning.choose_path("k1", ("gemm", "direct"), run, flops=1e12)
    assert calls == ["direct"] * 10


def test_a_new_process_reads_the_choice_from_the_cache(cache):
    """Deterministic for a given cache: the file decides, whatever is faster now."""
    tuning.choose_path("k1", ("gemm", "direct"), _fake_run({"gemm": 0.0, "direct": 0.0})[0], 1e12)
    data = json.loads(cache.read_text())
    data["paths"]["k1"] = {"path": "gemm", "times": {"gemm": 1.0, "direct": 2.0}, "checks": 2}
    cache.write_text(json.dumps(data))
    tuning.clear()                                   # as a new process
    run, calls = _fake_run({"gemm": 0.02, "direct": 0.0})
    assert tuning.choose_path("k1", ("gemm", "direct"), run, flops=1e12) == "gemm"
    assert calls == ["gemm"]


@pytest.mark.parametrize("content", [
    b"\x00\xff not json", b"[1, 2, 3]", b'{"format": 99, "paths": {}}', b'{"format": 1}',
    b'{"format": 1, "machine": {}, "paths": ',
])
def test_a_corrupt_cache_is_ignored_with_a_warning_and_rewritten(cache, content):
    cache.write_bytes(content)
    run, calls = _fake_run({"gemm": 0.02, "direct": 0.0})
    with pytest.warns(RuntimeWarning, match="ignoring the corrupt tuning cache"):
        assert tuning.choose_path("k1", ("gemm", "direct"), run, flops=1e12) == "direct"
    assert calls[:2] == ["gemm", "direct"]
    assert json.loads(cache.read_text())["paths"]["k1"]["path"] == "direct"


def test_a_foreign_cache_is_not_trusted(cache):
    """Timings of another CPU (or target, BLAS, version) do not apply here."""
    cache.write_text(json.dumps({"format": 1, "machine": {"cpu": "some other CPU"},
                                 "paths": {"k1": {"path": "gemm", "checks": 2,
                                                  "times": {"gemm": 1.0, "direct": 2.0}}}}))
    run, calls = _fake_run({"gemm": 0.02, "direct": 0.0})
    assert tuning.choose_path("k1", ("gemm", "direct"), run, flops=1e12) == "direct"
    assert calls[:2] == ["gemm", "direct"]
    saved = json.loads(cache.read_text())
    assert saved["paths"]["k1"]["path"] == "direct" and saved["machine"]["cpu"] != "some other CPU"


def test_invalid_entries_are_dropped(cache):
    tuning.choose_path("k0", ("gemm", "direct"), _fake_run({"gemm": 0.0, "direct": 0.0})[0], 1e12)
    data = json.loads(cache.read_text())
    data["paths"].update({"k1": {"path": "rm -rf /", "times": {}, "checks": 2}, "k2": 3,
                          "k3": {"path": "gemm", "times": {"gemm": -1, "direct": 1}, "checks": 2}})
    cache.write_text(json.dumps(data))
    tuning.clear()
    run, calls = _fake_run({"gemm": 0.02, "direct": 0.0})
    assert tuning.choose_path("k1", ("gemm", "direct"), run, flops=1e12) == "direct"
    assert calls[:2] == ["gemm", "direct"]


def test_the_cache_is_bounded(cache, monkeypatch):
    monkeypatch.setattr(tuning, "MAX_ENTRIES", 3)
    for i in range(5):
        tuning.choose_path(f"k{i}", ("gemm", "direct"), _fake_run({"gemm": 0, "direct": 0})[0], 1e12)
    assert list(json.loads(cache.read_text())["paths"]) == ["k2", "k3", "k4"]


def test_measuring_can_be_turned_off(cache, monkeypatch):
    monkeypatch.setenv("SIGCONV_AUTOTUNE", "0")
    run, calls = _fake_run({"gemm": 0.0, "direct": 0.0})
    assert tuning.choose_path("k1", ("gemm", "direct"), run, flops=1e12) == "gemm"
    assert calls == ["gemm"] and not cache.exists()


def test_an_unwritable_cache_folder_only_warns(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("SIGCONV_CACHE_DIR", str(blocker / "sub"))
    tuning.clear()
    run, _ = _fake_run({"gemm": 0.0, "direct": 0.0})
    with pytest.warns(RuntimeWarning, match="cannot write the tuning cache"):
        assert tuning.choose_path("k1", ("gemm", "direct"), run, flops=1e12) in ("gemm", "direct")
    tuning.clear()


def test_conv_auto_records_its_choice_and_equals_both_paths(cache):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 4, 30, 30))
    w = rng.standard_normal((6, 4, 3, 3))
    y = F.conv(x, w, padding="same")
    paths = json.loads(cache.read_text())["paths"]
    assert len(paths) == 1 and "'forward'" in next(iter(paths))
    for method in ("direct", "gemm"):
        np.testing.assert_allclose(y, F.conv(x, w, padding="same", method=method), rtol=1e-12,
                                   atol=1e-12)
    g = F.conv_grad_input(np.ones_like(y), w, x.shape, padding="same")
    assert any("'grad_input'" in k for k in json.loads(cache.read_text())["paths"])
    np.testing.assert_allclose(g, F.conv_grad_input(np.ones_like(y), w, x.shape, padding="same",
                                                    method="gemm"), rtol=1e-12, atol=1e-12)


def test_ragged_batches_of_one_size_class_share_a_signature(cache):
    from sigconv.ragged import Ragged
    rng = np.random.default_rng(0)
    w = rng.standard_normal((4, 1, 9))
    for lengths in ((3000, 3100, 2900), (3050, 2950, 3000)):
        F.conv(Ragged.from_list([rng.standard_normal((1, n)) for n in lengths]), w)
    assert len(json.loads(cache.read_text())["paths"]) == 1


def test_concurrent_first_uses_keep_every_entry(cache):
    """Four processes measuring different layers at once: a valid file with all their entries."""
    script = textwrap.dedent("""
        import sys, time
        from sigconv.functional import tuning
        for i in range(5):
            tuning.choose_path(f"{sys.argv[1]}-{i}", ("gemm", "direct"),
                               lambda path: time.sleep(0.001), 1e12)
    """)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    procs = [subprocess.Popen([sys.executable, "-c", script, f"p{n}"], env=env)
             for n in range(4)]
    assert all(p.wait(timeout=120) == 0 for p in procs)
    paths = json.loads(cache.read_text())["paths"]
    assert set(paths) == {f"p{n}-{i}" for n in range(4) for i in range(5)}
