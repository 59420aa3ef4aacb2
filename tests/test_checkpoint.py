"""safetensors checkpoints: round trip, atomic write, errors naming the key, PyTorch reads them."""
import os

import numpy as np
import pytest

from sigconv import ArgumentError, DTypeError, ShapeError, checkpoint, nn
from sigconv.checkpoint import CheckpointError


def small_model(dtype=np.float32):
    return nn.Sequential(nn.Conv(2, 4, 3, ndim=1, dtype=dtype, rng=0), nn.BatchNorm(4, dtype=dtype),
                         nn.ReLU(), nn.GlobalPool(), nn.Linear(4, 3, dtype=dtype, rng=1))


def trained(rng):
    model = small_model()
    model(rng.standard_normal((5, 2, 9)).astype(np.float32))  # running statistics move
    return model


def test_round_trip(tmp_path, rng):
    model = trained(rng)
    path = tmp_path / "model.safetensors"
    checkpoint.save(model, path, metadata={"epoch": "3"})
    state, meta = checkpoint.load(path, with_metadata=True)
    assert meta == {"epoch": "3"}
    assert list(state) == list(model.state_dict())  # saved order kept
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(state[key], value)
        assert state[key].dtype == value.dtype
    fresh = checkpoint.load_into(small_model(), path)
    x = rng.standard_normal((2, 2, 9)).astype(np.float32)
    model.eval(), fresh.eval()
    np.testing.assert_array_equal(fresh(x).data, model(x).data)


def test_write_is_atomic(tmp_path, rng, monkeypatch):
    path = tmp_path / "model.safetensors"
    checkpoint.save(small_model(), path)
    before = path.read_bytes()
    fsynced = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (fsynced.append(fd), real_fsync(fd)))

    def crash(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        checkpoint.save(trained(rng), path)
    assert fsynced  # the temporary file was flushed to disk before the rename
    assert path.read_bytes() == before  # the old checkpoint is intact
    assert os.listdir(tmp_path) == ["model.safetensors"]  # no temporary file left behind
    monkeypatch.undo()
    checkpoint.save(trained(rng), path)
    assert path.read_bytes() != before and os.listdir(tmp_path) == ["model.safetensors"]


def test_truncated_and_damaged_files(tmp_path):
    path = tmp_path / "model.safetensors"
    checkpoint.save(small_model(), path)
    payload = path.read_bytes()
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(payload[:-10])
    with pytest.raises(CheckpointError, match=r"truncated: tensor '[\w.]+' needs bytes"):
        checkpoint.load(cut)
    cut.write_bytes(payload[:20])
    with pytest.raises(CheckpointError, match="truncated or not a safetensors file"):
        checkpoint.load(cut)
    cut.write_bytes(payload[:5])
    with pytest.raises(CheckpointError, match="not even the 8-byte header length"):
        checkpoint.load(cut)
    cut.write_bytes(b"")
    with pytest.raises(CheckpointError, match="is empty"):
        checkpoint.load(cut)
    damaged = bytearray(payload)
    damaged[8] = ord("#")  # the header JSON no longer parses
    cut.write_bytes(bytes(damaged))
    with pytest.raises(CheckpointError, match="damaged header"):
        checkpoint.load(cut)
    with pytest.raises(CheckpointError, match="does not exist"):
        checkpoint.load(tmp_path / "absent.safetensors")


def test_load_into_errors_name_the_key(tmp_path):
    path = tmp_path / "model.safetensors"
    state = small_model().state_dict()
    state.pop("1.running_var")
    checkpoint.save(state, path)
    with pytest.raises(ArgumentError, match=r"missing keys \['1.running_var'\]"):
        checkpoint.load_into(small_model(), path)
    checkpoint.save(small_model(np.float64), path)
    with pytest.raises(DTypeError, match=r"state_dict\['0.weight'\] has dtype float64"):
        checkpoint.load_into(small_model(), path)
    other = nn.Sequential(nn.Conv(2, 5, 3, ndim=1), nn.BatchNorm(5), nn.ReLU(), nn.GlobalPool(),
                          nn.Linear(5, 3))
    checkpoint.save(other, path)
    with pytest.raises(ShapeError, match=r"state_dict\['0.weight'\] has shape \(5, 2, 3\), the "
                                         r"model expects \(4, 2, 3\)"):
        checkpoint.load_into(small_model(), path)


def test_save_errors(tmp_path):
    with pytest.raises(ArgumentError, match="Module or a mapping"):
        checkpoint.save(3, tmp_path / "x.safetensors")
    with pytest.raises(ArgumentError, match="cannot store"):
        checkpoint.save({"a": np.array(["text"])}, tmp_path / "x.safetensors")
    with pytest.raises(ArgumentError, match="does not exist"):
        checkpoint.save({"a": np.ones(2)}, tmp_path / "no" / "x.safetensors")
    with pytest.raises(ArgumentError, match="metadata must map strings"):
        checkpoint.save({"a": np.ones(2)}, tmp_path / "x.safetensors", metadata={"a": 1})


def test_torch_reads_the_file_and_back(torch, tmp_path, rng):
    safetensors_torch = pytest.importorskip("safetensors.torch")
    model = trained(rng)
    path = tmp_path / "model.safetensors"
    checkpoint.save(model, path)
    tmodel = torch.nn.Sequential(torch.nn.Conv1d(2, 4, 3, padding=1), torch.nn.BatchNorm1d(4),
                                 torch.nn.ReLU(),
                                 torch.nn.Sequential(torch.nn.AdaptiveAvgPool1d(1),
                                                     torch.nn.Flatten()),
                                 torch.nn.Linear(4, 3))
    tmodel.load_state_dict(safetensors_torch.load_file(str(path)))
    model.eval(), tmodel.eval()
    x = rng.standard_normal((3, 2, 9)).astype(np.float32)
    np.testing.assert_allclose(model(x).data, tmodel(torch.from_numpy(x)).detach().numpy(),
                               atol=1e-6)
    safetensors_torch.save_file(tmodel.state_dict(), str(tmp_path / "torch.safetensors"))
    back = checkpoint.load_into(small_model(), tmp_path / "torch.safetensors").eval()
    np.testing.assert_array_equal(back(x).data, model(x).data)


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_atomic_writes_honour_the_umask(tmp_path, umask):
    """Files used to be 0600 whatever the umask (mkstemp's mode)."""
    from sigconv._atomic import atomic_save_npy, atomic_write_bytes

    old = os.umask(umask)
    try:
        checkpoint.save({"w": np.ones(3)}, tmp_path / "model.safetensors")
        atomic_write_bytes(tmp_path / "notes.txt", b"first")
        os.chmod(tmp_path / "notes.txt", 0o600)
        atomic_write_bytes(tmp_path / "notes.txt", b"second")   # a replacement is a new file
        atomic_save_npy(tmp_path / "a.npy", np.zeros(2))
    finally:
        os.umask(old)
    expected = 0o666 & ~umask
    for name in ("model.safetensors", "notes.txt", "a.npy"):
        assert (tmp_path / name).stat().st_mode & 0o777 == expected, name
    assert (tmp_path / "notes.txt").read_bytes() == b"second"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.npy", "model.safetensors",
                                                          "notes.txt"]     # no temporary left
