"""`sigconv info` and `sigconv show` on real files."""
import pytest

from sigconv.cli import main

pytest.importorskip("matplotlib")


def test_info_prints_kind_shape_and_metadata(shared_data, capsys):
    assert main(["info", str(shared_data / "volumes" / "ct_slice.dcm")]) == 0
    out = capsys.readouterr().out
    assert "kind:     volume" in out and "(1, 1, 512, 512)" in out and "float32" in out
    assert "units:    HU" in out and "original_orientation: LPS" in out


def test_info_of_a_bad_file_exits_2(tmp_path, capsys):
    path = tmp_path / "empty.wav"
    path.write_bytes(b"")
    assert main(["info", str(path)]) == 2
    assert "empty: the file has 0 bytes" in capsys.readouterr().err


@pytest.mark.parametrize("relative,extra", [
    ("fsdd/recordings/2_lucas_4.wav", []),
    ("fsdd/recordings/2_lucas_4.wav", ["--spectrogram", "log-mel"]),
    ("mocap/mocapbank.bvh", []),
    ("images/astronaut.png", []),
    ("volumes/stent.npz", []),
    ("video/cockatoo.mp4", ["--stop", "40"]),
])
def test_show_writes_a_png(shared_data, tmp_path, capsys, relative, extra):
    out = tmp_path / "out.png"
    assert main(["show", str(shared_data / relative), "-o", str(out), *extra]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 5000
    assert f"wrote {out}" in capsys.readouterr().out


def test_prediction_names_are_unique_and_follow_the_paths(tmp_path):
    from sigconv.cli import _prediction_names

    assert _prediction_names([tmp_path / "scan.nii", tmp_path / "other.nii"]) == [
        "scan.nii.npy", "other.nii.npy"]                       # one folder: the file names
    assert _prediction_names([tmp_path / "x" / "a" / "scan.nii",
                              tmp_path / "x" / "b" / "scan.nii"]) == [
        "a/scan.nii.npy", "b/scan.nii.npy"]                     # told apart by their folders
    assert _prediction_names([str(tmp_path / "series") + "/", tmp_path / "series" / "s.dcm"]) \
        == ["series.npy", "series/s.dcm.npy"]


def test_info_cpu_names_the_target_in_use(capsys):
    import sigconv
    assert main(["info", "--cpu"]) == 0
    out = capsys.readouterr().out
    info = sigconv.cpu_info()
    assert f"target: {info['target']}" in out
    assert info["model"] in out and "blas: " in out


def test_info_without_a_file_or_cpu_exits_2(capsys):
    assert main(["info"]) == 2
    assert "give a data file, or --cpu" in capsys.readouterr().err
