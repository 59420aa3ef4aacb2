"""Source discovery, the sigconv.io converter, and the FSDD preparation script."""
import importlib.util
import os
import pathlib
import re

import numpy as np
import pytest

from sigconv import ArgumentError
from sigconv.data import Store, prepare
from sigconv.data.sources import folder_sources, hashed_split, load_item, prepare_folder

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _fsdd_module():
    spec = importlib.util.spec_from_file_location("fsdd_script", ROOT / "datasets" / "fsdd.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_class_per_subfolder(tmp_path):
    for label in ("cat", "dog"):
        (tmp_path / label).mkdir()
        for i in range(3):
            (tmp_path / label / f"{i}.npy").write_bytes(b"")
    (tmp_path / "cat" / "notes.txt").write_text("x")
    (tmp_path / ".hidden").mkdir()
    (tmp_path / ".hidden" / "x.npy").write_bytes(b"")
    sources = folder_sources(tmp_path, extensions={".npy"})
    assert [s.fields["label"] for s in sources] == ["cat"] * 3 + ["dog"] * 3
    assert sources[0].id == "cat__0" and sources[0].path.endswith("cat/0.npy")
    assert {s.fields["split"] for s in sources} <= {"train", "validation", "test"}


def test_labels_file(tmp_path):
    (tmp_path / "a.npy").write_bytes(b"")
    (tmp_path / "b.npy").write_bytes(b"")
    (tmp_path / "labels.csv").write_text("path,label,split\na.npy,1,test\nb.npy,0,\n")
    sources = folder_sources(tmp_path, labels=tmp_path / "labels.csv")
    assert [(s.id, s.fields["label"], s.fields["split"]) for s in sources] == [
        ("a", "1", "test"), ("b", "0", hashed_split("b.npy"))]
    (tmp_path / "bad.csv").write_text("file,class\n")
    with pytest.raises(ArgumentError, match="'path' and 'label'"):
        folder_sources(tmp_path, labels=tmp_path / "bad.csv")
    with pytest.raises(ArgumentError, match="does not exist"):
        folder_sources(tmp_path / "nowhere")


def test_hashed_split_is_stable_and_proportional():
    splits = [hashed_split(f"item{i}") for i in range(5000)]
    assert splits == [hashed_split(f"item{i}") for i in range(5000)]
    assert 0.08 < splits.count("test") / 5000 < 0.12
    assert 0.08 < splits.count("validation") / 5000 < 0.12


def test_fsdd_prepared_equals_direct_loading(tmp_path, shared_data):
    io = pytest.importorskip("sigconv.io")
    fsdd = _fsdd_module()
    sources = fsdd.fsdd_sources(shared_data / "fsdd")
    assert len(sources) == 3000
    assert sum(s.fields["split"] == "test" for s in sources) == 300   # takes 0-4
    assert {s.fields["split"] for s in sources} == {"test", "train"}  # validation: the trainer's
    subset = sources[::100]
    summary = prepare(subset, tmp_path / "store", fsdd.converter("waveform"), progress=False,
                      log=None)
    assert summary.ok == len(subset)
    store = Store(tmp_path / "store")
    for (array, record), source in zip(store, sorted(subset, key=lambda s: s.id)):
        signal = io.load(source.path)
        np.testing.assert_array_equal(array, signal.data)
        assert record["sample_rate"] == 8000 and record["kind"] == "waveform"
        digit, speaker, take = source.id.split("_")
        assert (record["label"], record["speaker"], record["take"]) == (int(digit), speaker, int(take))
        assert record["split"] == ("test" if int(take) < 5 else "train")


def test_fsdd_validation_takes_mirror_the_test_takes(shared_data):
    fsdd = _fsdd_module()
    assert [fsdd.split_of(t, "takes") for t in (0, 4, 5, 9, 10, 49)] == \
        ["test", "test", "validation", "validation", "train", "train"]
    assert [fsdd.split_of(t) for t in (0, 4, 5, 9, 10)] == \
        ["test", "test", "train", "train", "train"]
    with pytest.raises(ValueError, match="validation must be one of"):
        fsdd.split_of(5, "tenth")
    sources = fsdd.fsdd_sources(shared_data / "fsdd", "takes")
    # every speaker and digit gives five validation takes, as it gives five test takes
    for split in ("test", "validation"):
        cells = {}
        for s in sources:
            if s.fields["split"] == split:
                key = (s.fields["speaker"], s.fields["label"])
                cells[key] = cells.get(key, 0) + 1
        assert len(cells) == 60 and set(cells.values()) == {5}


def test_fsdd_refuses_a_store_prepared_with_other_splits(tmp_path, shared_data, capsys):
    pytest.importorskip("sigconv.io")
    fsdd = _fsdd_module()
    out = tmp_path / "store"
    # the first 46 names in sorted order hold george's zeros, takes 0-4, 10-49 and 5
    options = ["--source", str(shared_data / "fsdd"), "--out", str(out), "--limit", "46"]
    assert fsdd.main(options) == 0
    assert fsdd.other_splits(out, fsdd.fsdd_sources(shared_data / "fsdd")) == []
    assert fsdd.other_splits(out, fsdd.fsdd_sources(shared_data / "fsdd", "takes")) == \
        ["0_george_5"]
    capsys.readouterr()
    assert fsdd.main(options + ["--validation", "takes"]) == 2
    assert "prepared with other splits (e.g. '0_george_5'" in capsys.readouterr().err
    assert fsdd.main(options + ["--validation", "random"]) == 0   # the same splits: fine
    takes = tmp_path / "takes"
    assert fsdd.main(options[:3] + [str(takes), "--limit", "46", "--validation", "takes"]) == 0
    splits = {r["take"]: r["split"] for r in Store(takes).records}
    assert (splits[4], splits[5], splits[10]) == ("test", "validation", "train")


def test_fsdd_log_mel_items(tmp_path, shared_data):
    pytest.importorskip("librosa", reason="librosa is needed for spectrograms")
    fsdd = _fsdd_module()
    subset = fsdd.fsdd_sources(shared_data / "fsdd")[:4]
    prepare(subset, tmp_path / "mel", fsdd.converter("log-mel"), progress=False, log=None)
    array, record = Store(tmp_path / "mel")[0]
    assert array.shape[:2] == (1, 40) and record["kind"] == "spectrogram"
    assert record["hop_length"] == 64 and len(record["frequencies"]) == 40


def test_load_item_records_metadata(shared_data):
    pytest.importorskip("sigconv.io")
    data, meta = load_item(str(shared_data / "volumes" / "stent.npz"))
    assert data.dtype == np.float32 and data.ndim == 4
    assert meta["kind"] == "volume" and len(meta["spacing"]) == 3


def test_cli_prepare(tmp_path, shared_data, capsys):
    pytest.importorskip("sigconv.io")
    from sigconv.cli import main

    # camera.png is grey, the others RGB: one channel count for the store
    assert main(["prepare", str(shared_data / "images"), str(tmp_path / "images"),
                 "--kind", "image", "--mode", "RGB"]) == 0
    assert len(Store(tmp_path / "images")) == 4
    assert {r["shape"][0] for r in Store(tmp_path / "images").records} == {3}
    source = tmp_path / "clips"
    (source / "yes").mkdir(parents=True)
    for name in ("0_george_0.wav", "0_george_1.wav"):
        (source / "yes" / name).write_bytes((shared_data / "fsdd" / "recordings" / name).read_bytes())
    (source / "yes" / "broken.wav").write_bytes(b"RIFF not really")
    assert main(["prepare", str(source), str(tmp_path / "clips_store"), "--kind", "waveform",
                 "--workers", "2"]) == 1
    store = Store(tmp_path / "clips_store")
    assert len(store) == 2 and store[0][1]["label"] == "yes"
    assert [f["id"] for f in store.failures()] == ["yes__broken"]
    assert main(["prepare", str(tmp_path / "nowhere"), str(tmp_path / "x"), "--kind", "image"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_fsdd_download_from_an_archive(tmp_path, shared_data):
    """Without --source the script fetches the archive (here a local file:// URL) once."""
    import zipfile

    pytest.importorskip("sigconv.io")
    fsdd = _fsdd_module()
    archive = tmp_path / "fsdd.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        for name in ("0_george_0.wav", "1_jackson_7.wav"):
            zipped.write(shared_data / "fsdd" / "recordings" / name,
                         f"free-spoken-digit-dataset-master/recordings/{name}")
        zipped.writestr("free-spoken-digit-dataset-master/README.md", "not a recording")
    out = tmp_path / "prepared" / "fsdd"
    assert fsdd.main(["--out", str(out), "--url", archive.as_uri()]) == 0
    store = Store(out)
    assert [r["id"] for r in store.records] == ["0_george_0", "1_jackson_7"]
    assert [r["split"] for r in store.records] == ["test", "train"]
    archive.unlink()                                   # a second run does not download again
    assert fsdd.main(["--out", str(out), "--url", archive.as_uri()]) == 0
    with pytest.raises(SystemExit, match="cannot download"):
        fsdd.main(["--out", str(tmp_path / "other" / "x"), "--url", archive.as_uri()])


def test_labels_file_paths_stay_inside_the_source_folder(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    (root / "a.npy").write_bytes(b"")
    (tmp_path / "secret.npy").write_bytes(b"")
    for line, bad in ((3, str(tmp_path / "secret.npy")), (3, "../secret.npy"),
                      (3, "sub/../../secret.npy")):
        (tmp_path / "labels.csv").write_text(f"path,label\na.npy,1\n{bad},0\n")
        with pytest.raises(ArgumentError, match=rf"labels.csv', line {line}: the path "
                                                rf"'{re.escape(bad)}' is outside the source "
                                                rf"folder '{re.escape(str(root))}'"):
            folder_sources(root, labels=tmp_path / "labels.csv")
    (tmp_path / "labels.csv").write_text("path,label\n,1\n")
    with pytest.raises(ArgumentError, match=r"line 2: the path '' names no file"):
        folder_sources(root, labels=tmp_path / "labels.csv")
    (tmp_path / "labels.csv").write_text("path,label\n./a.npy,1\nsub/../a2.npy,0\n")
    assert [s.path for s in folder_sources(root, labels=tmp_path / "labels.csv")] == [
        os.path.join(root, "./a.npy"), os.path.join(root, "sub/../a2.npy")]


def test_load_item_resizes_images_and_resamples_volumes(shared_data):
    pytest.importorskip("sigconv.io")
    data, meta = load_item(str(shared_data / "images" / "camera.png"), kind="image", mode="RGB",
                           size=(32, 48))
    assert data.shape == (3, 32, 48) and meta["channel_names"] == ["R", "G", "B"]
    data, meta = load_item(str(shared_data / "volumes" / "stent.npz"), kind="volume",
                           spacing=(4.0, 2.0, 2.0))
    assert data.shape == (1, 64, 64, 64) and meta["spacing"] == [4.0, 2.0, 2.0]


@pytest.mark.parametrize("kind,options,message", [
    ("image", {"spacing": 1.0}, "spacing=1.0 is an option of volume items, not of image items"),
    ("volume", {"size": (8, 8)}, r"size=\(8, 8\) is an option of image and video items"),
    ("image", {"size": (8,)}, r"size must be \(height, width\)"),
    ("volume", {"spacing": (1.0, -2.0, 1.0)}, "spacing must be one voxel size"),
    ("image", {"size": (True, 8)}, r"size must be \(height, width\), two ints"),
    ("volume", {"spacing": True}, "spacing must be one voxel size"),
    ("video", {"mode": "RGBA"}, "mode of video items must be one of L, RGB"),
    ("waveform", {"sample_rate": 0}, "sample_rate must be a finite number > 0"),
    ("image", {"spectrogram": {"n_mels": 8}}, "spectrogram options are for audio"),
    ("spectrogram", {"spectrogram": {"n_mels": 0}}, "spectrogram n_mels must be"),
])
def test_prepare_folder_refuses_options_before_reading(tmp_path, kind, options, message):
    (tmp_path / "src").mkdir()
    with pytest.raises(ArgumentError, match=message):
        prepare_folder(tmp_path / "src", tmp_path / "out", kind=kind, progress=False, **options)
    assert not (tmp_path / "out").exists()
