"""The dataset preparation scripts on the real sample files."""
import importlib.util
import pathlib

import numpy as np
import pytest

from sigconv.data import Store

ROOT = pathlib.Path(__file__).resolve().parents[2]
pytest.importorskip("sigconv.io")


def _script(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "datasets" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_ct_volumes(tmp_path, shared_data):
    assert _script("ct_volumes").main(["--source", str(shared_data / "volumes"), "--out",
                                       str(tmp_path), "--spacing", "2.0"]) == 0
    store = Store(tmp_path)
    stent = store.filter(lambda r: r["id"] == "stent")[0]
    assert stent[0].shape == (1, 128, 64, 64) and stent[1]["spacing"] == [2.0, 2.0, 2.0]
    slice_ = store.filter(lambda r: r["id"] == "ct_slice")[0][0]
    assert slice_.min() < -500          # Hounsfield units: air is about -1000


def test_mocap(tmp_path, shared_data, capsys):
    # the shared folder holds two skeletons (168 and 60 angle channels): one model takes one
    assert _script("mocap").main(["--source", str(shared_data / "mocap"), "--out",
                                  str(tmp_path / "both")]) == 2
    assert "168 channels: 1 item (freebvh.bvh); 60 channels: 1 item" in capsys.readouterr().err
    source = tmp_path / "one"
    source.mkdir()
    (source / "mocapbank.bvh").symlink_to(shared_data / "mocap" / "mocapbank.bvh")
    assert _script("mocap").main(["--source", str(source), "--out", str(tmp_path / "store")]) == 0
    array, record = Store(tmp_path / "store").filter(lambda r: r["id"] == "mocapbank")[0]
    assert array.shape == (len(record["channel_names"]), 455)
    assert record["kind"] == "skeleton" and abs(record["frame_rate"] - 30) < 0.01


def test_image_folder(tmp_path, shared_data):
    assert _script("image_folder").main(["--source", str(shared_data / "images"), "--out",
                                         str(tmp_path), "--mode", "RGB"]) == 0
    store = Store(tmp_path)
    assert len(store) == 4 and all(a.shape[0] == 3 and 0 <= a.min() and a.max() <= 1
                                   for a, _ in store)


def test_video_clips(tmp_path, shared_data):
    assert _script("video_clips").main(["--source", str(shared_data / "video"), "--out",
                                        str(tmp_path), "--size", "36", "64", "--step", "10",
                                        "--max-frames", "4"]) == 0
    array, record = Store(tmp_path)[0]
    assert array.shape == (3, 4, 36, 64) and np.isfinite(array).all()


def test_ct_patches(tmp_path, shared_data):
    source = tmp_path / "src"
    source.mkdir()
    (source / "stent.npz").write_bytes((shared_data / "volumes" / "stent.npz").read_bytes())
    assert _script("ct_volumes").main(["--source", str(source), "--out", str(tmp_path / "out"),
                                       "--spacing", "4.0", "--patch", "32", "32", "32"]) == 0
    store = Store(tmp_path / "out")
    whole = np.load(source / "stent.npz")["arr_0"]
    assert len(store) == 2 * 1 * 1                   # (64, 32, 32) voxels in patches of 32
    for array, record in store:
        assert array.shape == (1, 32, 32, 32) and record["source_id"] == "stent"
    assert [r["patch_origin"] for r in store.records] == [[0, 0, 0], [32, 0, 0]]
    assert whole.shape == (256, 128, 128)


def test_ct_slabs_and_label_channel(tmp_path, shared_data):
    source = shared_data / "volumes" / "stent.npz"      # a single file is a source too
    assert _script("ct_volumes").main(["--source", str(source), "--out", str(tmp_path),
                                       "--spacing", "4.0", "--slabs", "0.7", "0.1", "0.2",
                                       "--label-thresholds", "250", "800"]) == 0
    store = Store(tmp_path)
    pieces = {r["split"]: (a, r) for a, r in store}
    assert [pieces[s][0].shape[1] for s in ("train", "validation", "test")] == [45, 6, 13]
    assert [pieces[s][1]["slab_origin"] for s in ("train", "validation", "test")] == [0, 45, 51]
    volume, record = pieces["test"]
    assert volume.shape[0] == 2 and record["target_channels"] == 1
    np.testing.assert_array_equal(volume[1], np.digitize(volume[0], [250, 800]))
    with pytest.raises(SystemExit):
        _script("ct_volumes").main(["--source", str(source), "--out", str(tmp_path / "x"),
                                    "--label-thresholds", "800", "250"])
