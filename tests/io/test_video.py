"""load_video / iter_video against imageio's own read; the decoder's time limit and crash guard."""
import os
import sys

import numpy as np
import pytest

import sigconv.io as sio
from sigconv.errors import ArgumentError
from sigconv.io import video as video_module

iio = pytest.importorskip("imageio.v3")
pytest.importorskip("av")


@pytest.fixture(scope="module")
def cockatoo(shared_data):
    return shared_data / "video" / "cockatoo.mp4"


@pytest.fixture(scope="module")
def reference(cockatoo):
    """Frames 0-59 read by imageio (PyAV plugin), (T, H, W, 3) uint8."""
    return np.stack(
        [frame for _, frame in zip(range(60), iio.imiter(cockatoo, plugin="pyav"))])


def test_frames_equal_imageio(cockatoo, reference):
    signal = sio.load(cockatoo, stop=60, dtype=np.uint8)
    assert signal.kind == "video" and signal.axes == ("channel", "time", "height", "width")
    assert signal.shape == (3, 60, 720, 1280) and signal.frame_rate == 20.0
    np.testing.assert_array_equal(signal.data, reference.transpose(3, 0, 1, 2))
    assert signal.meta["frames_in_file"] == 280


def test_float_scaling_and_slicing(cockatoo, reference):
    signal = sio.load_video(cockatoo, start=10, stop=50, step=7)
    assert signal.dtype == np.float32 and signal.shape[1] == 6
    expected = reference[10:50:7].transpose(3, 0, 1, 2) / np.float32(255)
    np.testing.assert_allclose(signal.data, expected, atol=1e-7)
    assert signal.frame_rate == pytest.approx(20 / 7) and signal.start_time == 0.5


def test_seek_past_keyframes_equals_sequential(cockatoo):
    late = sio.load_video(cockatoo, start=250, stop=253, dtype=np.uint8)
    frames = [f for i, f in zip(range(253), iio.imiter(cockatoo, plugin="pyav")) if i >= 250]
    np.testing.assert_array_equal(late.data, np.stack(frames).transpose(3, 0, 1, 2))


def test_size_and_grey(cockatoo):
    small = sio.load_video(cockatoo, stop=5, size=(72, 128))
    assert small.shape == (3, 5, 72, 128)
    full = sio.load_video(cockatoo, stop=5)
    # area resize keeps the mean brightness
    np.testing.assert_allclose(small.data.mean(), full.data.mean(), atol=0.01)
    grey = sio.load_video(cockatoo, stop=2, mode="L")
    assert grey.shape == (1, 2, 720, 1280)


def test_chunks_equal_whole_and_inprocess_equals_isolated(cockatoo):
    whole = sio.load_video(cockatoo, stop=45, size=(36, 64), dtype=np.uint8)
    chunks = list(sio.iter_video(cockatoo, chunk=16, stop=45, size=(36, 64), dtype=np.uint8))
    assert [c.shape[1] for c in chunks] == [16, 16, 13]
    assert [c.meta["first_frame"] for c in chunks] == [0, 16, 32]
    assert chunks[1].start_time == pytest.approx(0.8)
    np.testing.assert_array_equal(np.concatenate([c.data for c in chunks], axis=1), whole.data)
    inprocess = sio.load_video(cockatoo, stop=45, size=(36, 64), dtype=np.uint8, isolate=False)
    np.testing.assert_array_equal(inprocess.data, whole.data)


def test_bad_options(cockatoo):
    with pytest.raises(ArgumentError, match="stop must be None or an int > start"):
        sio.load_video(cockatoo, start=5, stop=5)
    with pytest.raises(ArgumentError, match=r"size must be \(height, width\)"):
        sio.load_video(cockatoo, size=(0, 10))
    with pytest.raises(ArgumentError, match="dtype must be float32, float64 or uint8"):
        sio.load_video(cockatoo, dtype=np.int16)
    with pytest.raises(sio.LoadError, match="no frames could be decoded from frame 100000"):
        sio.load_video(cockatoo, start=100000)


def _fake_worker(tmp_path, monkeypatch, body):
    script = tmp_path / "worker.py"
    script.write_text(body)
    monkeypatch.setattr(video_module, "_WORKER", str(script))


def test_a_hanging_decoder_is_stopped(cockatoo, tmp_path, monkeypatch):
    _fake_worker(tmp_path, monkeypatch, "import time\ntime.sleep(60)\n")
    with pytest.raises(sio.LoadError, match="timeout: the decoder made no progress for 1 s"):
        sio.load_video(cockatoo, timeout=1.0)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_a_crashing_decoder_does_not_take_the_caller_down(cockatoo, tmp_path, monkeypatch):
    _fake_worker(tmp_path, monkeypatch, "import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)\n")
    with pytest.raises(sio.LoadError, match="crashed: the video decoder died with SIGSEGV"):
        sio.load_video(cockatoo)


def test_seek_option_is_fast_path(cockatoo):
    sought = sio.load_video(cockatoo, start=20, stop=22, dtype=np.uint8, seek=True)
    assert sought.shape == (3, 2, 720, 1280) and sought.meta["first_frame"] == 20


@pytest.mark.parametrize("claimed", [5, 500])
def test_header_frame_count_wrong(cockatoo, tmp_path, monkeypatch, claimed):
    """Frames beyond (or short of) the header's count still come through, in order."""
    real = video_module._WORKER
    _fake_worker(tmp_path, monkeypatch, (
        "import os, sys\n"
        f"sys.path.insert(0, {os.path.dirname(real)!r})\n"
        "import _video_worker as w\n"
        "info = w._info\n"
        f"w._info = lambda c, s: dict(info(c, s), frames={claimed})\n"
        "sys.exit(w.main(sys.argv))\n"))
    got = sio.load_video(cockatoo, stop=12, size=(36, 64), dtype=np.uint8)
    monkeypatch.setattr(video_module, "_WORKER", real)
    expected = sio.load_video(cockatoo, stop=12, size=(36, 64), dtype=np.uint8)
    assert got.shape == expected.shape == (3, 12, 36, 64)
    np.testing.assert_array_equal(got.data, expected.data)


def test_worker_protocol_does_not_need_pythonunbuffered(cockatoo, monkeypatch):
    """A user's shell has no PYTHONUNBUFFERED: frame messages must still reach the caller
    as they are written (a buffered stdout held them back until both sides waited)."""
    monkeypatch.delenv("PYTHONUNBUFFERED", raising=False)
    signal = sio.load(cockatoo, stop=40, size=(72, 128), timeout=5.0)
    assert signal.shape == (3, 40, 72, 128)
    iterated = list(sio.iter_video(cockatoo, chunk=16, stop=40, size=(72, 128), timeout=5.0))
    np.testing.assert_array_equal(np.concatenate([c.data for c in iterated], axis=1), signal.data)


def test_worker_environment_is_controlled_by_the_parent(cockatoo, tmp_path, monkeypatch):
    """Python variables set in the caller's environment do not reach the decoder:
    neither a PYTHONPATH shadowing PyAV nor PYTHONINSPECT (which would keep the
    child reading stdin after its last frame)."""
    (tmp_path / "av.py").write_text("raise SystemExit('a shadowing av module was imported')\n")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    monkeypatch.setenv("PYTHONINSPECT", "1")
    monkeypatch.delenv("PYTHONUNBUFFERED", raising=False)
    signal = sio.load(cockatoo, stop=3, size=(36, 64), dtype=np.uint8, timeout=5.0)
    assert signal.shape == (3, 3, 36, 64)
    assert "PYTHONINSPECT" not in video_module._worker_env()
