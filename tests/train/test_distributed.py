"""Data-parallel training on a Dask cluster: the split rule, equivalence with the single
process (GroupNorm), what BatchNorm synchronises, reproducible dropout, the CLI, refusals
and an unreachable scheduler.

Tolerance of the equivalence (float32 model, Adam): the two shards' gradients are summed
in another order than the whole batch's, so losses agree to 1e-5 relative and weights to
1e-5 absolute after 8 steps (the differences measured: 5e-8 relative in the losses, 1.2e-7
in the weights).
"""
import copy
import json
import socket
import time

import numpy as np
import pytest

from sigconv import checkpoint, nn
from sigconv.cli import main
from sigconv.data import Store
from sigconv.errors import ArgumentError, ShapeError
from sigconv.models import Classifier
from sigconv.train import train
from sigconv.train.callbacks import Callback
from sigconv.train.items import _items, _split_items
from sigconv.train.tasks import Classification

from ..phantoms import waveform_store

distributed = pytest.importorskip("distributed", reason="training on a cluster needs "
                                  "dask.distributed (pip install 'sigconv[dask]')")
from sigconv.train import distributed as parallel  # noqa: E402

#: Relative tolerance of the losses and absolute tolerance of the weights (module docstring).
LOSS_RTOL, WEIGHT_ATOL = 1e-5, 1e-5


@pytest.fixture(scope="module")
def cluster():
    """Two single-threaded worker processes, started without PYTHONUNBUFFERED (as for users)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("PYTHONUNBUFFERED", raising=False)
        with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                      dashboard_address=None) as local:
            yield local


@pytest.fixture(scope="module")
def client(cluster):
    with distributed.Client(cluster) as connected:
        yield connected


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """40 waveforms of different lengths (a tone or noise), 8 of them for test."""
    rng = np.random.default_rng(3)
    lengths = [int(rng.integers(300, 600)) for _ in range(40)]
    return waveform_store(tmp_path_factory.mktemp("distributed"), rng, lengths, test=8)


def _model(norm, dropout=0.0):
    return Classifier(1, 2, ndim=1, widths=(8, 16), kernel_size=5, pool=4, norm=norm,
                      dropout=dropout, rng=1)


class _Losses(Callback):
    """Records every step's loss."""

    def __init__(self):
        self.values = []

    def on_batch_end(self, run, epoch, batch, loss):
        self.values.append(loss)


OPTIONS = dict(epochs=2, batch_size=8, lr=3e-3, validation=0, progress=False, log=None)


def test_shards_split_every_batch_in_order():
    assert parallel.shards(10, 3) == [(0, 4), (4, 7), (7, 10)]
    assert parallel.shards(8, 2) == [(0, 4), (4, 8)]
    assert parallel.shards(1, 3) == [(0, 1), (1, 1), (1, 1)]
    for count, workers in ((7, 2), (5, 5), (33, 8)):
        bounds = parallel.shards(count, workers)
        sizes = [b - a for a, b in bounds]
        assert bounds[0][0] == 0 and bounds[-1][1] == count and max(sizes) - min(sizes) <= 1
        assert all(bounds[r][1] == bounds[r + 1][0] for r in range(workers - 1))


def test_two_workers_follow_the_single_process(tmp_path, store, client):
    """GroupNorm and augmented items: the same losses, accuracies and weights to tolerance."""
    runs = {}
    for name, on in (("single", None), ("cluster", client)):
        losses = _Losses()
        metrics = train(store, tmp_path / name, model=_model("group"), callbacks=[losses],
                        client=on, **OPTIONS)
        runs[name] = metrics, losses.values, checkpoint.load(tmp_path / name /
                                                             "checkpoint.safetensors")
    (single, single_losses, single_w), (spread, spread_losses, spread_w) = runs.values()
    assert len(single_losses) == len(spread_losses) == 8
    np.testing.assert_allclose(spread_losses, single_losses, rtol=LOSS_RTOL)
    for a, b in zip(single["history"], spread["history"]):
        assert a["train_accuracy"] == b["train_accuracy"]
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=LOSS_RTOL)
    assert single_w.keys() == spread_w.keys()
    for key in single_w:
        np.testing.assert_allclose(spread_w[key], single_w[key], rtol=0, atol=WEIGHT_ATOL,
                                   err_msg=key)
    assert spread["test"]["accuracy"] == single["test"]["accuracy"]
    state = json.loads((tmp_path / "cluster" / "state.json").read_text())
    assert state["options"]["workers"] == 2 and "workers" not in json.loads(
        (tmp_path / "single" / "state.json").read_text())["options"]


def _shard_oracle(net, task, items, bounds):
    """Gradient and buffers of a step computed here, one shard at a time from ``net``."""
    grads, buffers, total = None, None, sum(b - a for a, b in bounds)
    for start, stop in bounds:
        shard = copy.deepcopy(net).train()
        x, y = task.batch_of(items[start:stop])
        task.loss(shard(x), y).backward()
        w = (stop - start) / total
        g = [w * p.grad for p in shard.parameters()]
        b = {k: w * v for k, v in shard.named_buffers() if v.dtype.kind == "f"}
        grads = g if grads is None else [s + t for s, t in zip(grads, g)]
        buffers = b if buffers is None else {k: buffers[k] + b[k] for k in b}
    return grads, buffers


def test_batchnorm_normalises_each_shard_and_averages_its_running_statistics(store, client):
    """BatchNorm takes each worker's shard statistics (no SyncBatchNorm): the gradient is
    the item-weighted mean of the shards' gradients, not the whole batch's, and the running
    statistics are the shards' averaged with the same weights."""
    source = Store(store)
    records = _split_items(source, 0)[0]
    task = Classification({"classes": [0, 1], "model": "classifier"}, 0)
    items = _items(task, source, records)
    indices = np.array([5, 0, 17, 3, 30, 11, 8])  # 7 items: shards of 4 and 3
    net = _model("batch")
    expected_grads, expected_buffers = _shard_oracle(net, task, [items[i] for i in indices],
                                                     parallel.shards(7, 2))
    whole = copy.deepcopy(net).train()
    x, y = task.batch_of([items[i] for i in indices])
    task.loss(whole(x), y).backward()
    step = parallel.DataParallel(client, str(store), records, task, None, 0, net, None)
    try:
        _, logits, target = step.step(0, 0, indices)
    finally:
        step.close()
    assert logits.shape == (7, 2) and target.tolist() == [items[i][1] for i in indices]
    apart = 0.0
    for p, expected, alone in zip(net.parameters(), expected_grads, whole.parameters()):
        np.testing.assert_allclose(p.grad, expected, rtol=1e-5, atol=1e-7)
        apart = max(apart, float(np.abs(p.grad - alone.grad).max()))
    assert apart > 1e-4  # the whole batch's statistics would give another gradient
    buffers = dict(net.named_buffers())
    assert set(expected_buffers) == {k for k in buffers if k.endswith(("mean", "var"))}
    for key, expected in expected_buffers.items():
        np.testing.assert_allclose(buffers[key], expected, rtol=1e-5, atol=1e-7, err_msg=key)
    assert all(int(buffers[k]) == 1 for k in buffers if k.endswith("num_batches_tracked"))


def test_workers_in_the_client_process_train_their_own_copy(store):
    """LocalCluster(processes=False) hands its workers the client's objects: two threads on
    one model would add up each other's gradients."""
    source = Store(store)
    records = _split_items(source, 0)[0]
    task = Classification({"classes": [0, 1], "model": "classifier"}, 0)
    items = _items(task, source, records)
    net = _model("group")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=":0") as local, \
            distributed.Client(local) as threads:
        step = parallel.DataParallel(threads, str(store), records, task, None, 0, net, None)
        try:
            for first in range(0, 32, 8):
                indices = np.arange(first, first + 8)
                whole = copy.deepcopy(net).train()
                whole.zero_grad()  # net holds the last step's gradient
                x, y = task.batch_of([items[i] for i in indices])
                task.loss(whole(x), y).backward()
                step.step(0, first, indices)
                for p, alone in zip(net.parameters(), whole.parameters()):
                    np.testing.assert_allclose(p.grad, alone.grad, rtol=1e-4, atol=1e-7)
        finally:
            step.close()


def test_dropout_and_batchnorm_runs_on_a_cluster_are_reproducible(tmp_path, store, client):
    options = dict(OPTIONS, epochs=1)
    for name in ("first", "second"):
        train(store, tmp_path / name, model=_model("batch", dropout=0.5), client=client,
              **options)
    first, second = (checkpoint.load(tmp_path / name / "checkpoint.safetensors")
                     for name in ("first", "second"))
    for key in first:
        np.testing.assert_array_equal(first[key], second[key], err_msg=key)


def test_a_resumed_cluster_run_ends_identical_to_an_uninterrupted_one(tmp_path, store, client):
    """Stopped after one epoch and resumed on the cluster: the same model, bit for bit, as a
    run of both epochs (BatchNorm and dropout: per-shard draws from (seed, epoch, step))."""
    options = dict(OPTIONS, epochs=2)
    whole = train(store, tmp_path / "whole", model=_model("batch", dropout=0.5), client=client,
                  **options)
    train(store, tmp_path / "parts", model=_model("batch", dropout=0.5), client=client,
          stop_after=1, **options)
    resumed = train(store, tmp_path / "parts", model=_model("batch", dropout=0.5),
                    client=client, resume=True, **options)
    assert [h["train_loss"] for h in resumed["history"]] == \
        [h["train_loss"] for h in whole["history"]]
    for name in ("checkpoint.safetensors", "optimizer.safetensors"):
        first, second = (checkpoint.load(tmp_path / run / name) for run in ("whole", "parts"))
        assert first.keys() == second.keys()
        for key in first:
            np.testing.assert_array_equal(first[key], second[key], err_msg=f"{name}: {key}")
    assert resumed["test"]["accuracy"] == whole["test"]["accuracy"]


def test_cli_trains_on_a_scheduler(tmp_path, store, cluster, capsys):
    assert main(["train", str(store), "--out", str(tmp_path / "run"), "--epochs", "1",
                 "--batch-size", "8", "--scheduler", cluster.scheduler_address,
                 "--quiet"]) == 0
    assert "test: accuracy" in capsys.readouterr().out
    state = json.loads((tmp_path / "run" / "state.json").read_text())
    assert state["options"]["workers"] == 2 and state["finished"]


def _closed_port():
    """A local TCP port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_an_unreachable_scheduler_fails_fast_naming_its_address(tmp_path, store, capsys,
                                                                monkeypatch):
    address = f"tcp://127.0.0.1:{_closed_port()}"
    monkeypatch.setattr(parallel, "CONNECT_TIMEOUT", 2)
    started = time.perf_counter()
    with pytest.raises(parallel.ClusterError, match=address):
        parallel.connect(address)
    assert main(["train", str(store), "--out", str(tmp_path / "run"), "--scheduler",
                 address]) == 2
    assert time.perf_counter() - started < 15
    assert address in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_what_cannot_train_on_a_cluster_is_refused_before_anything_is_written(tmp_path, store,
                                                                              client):
    with pytest.raises(ArgumentError, match="client must be a distributed.Client"):
        train(store, tmp_path / "run", client="tcp://127.0.0.1:8786", **OPTIONS)
    with pytest.raises(ArgumentError, match="supports the task 'classify' so far, not 'denoise'"):
        train(store, tmp_path / "run", task="denoise", patch=64, client=client, **OPTIONS)
    assert not (tmp_path / "run").exists()


def test_a_model_of_the_wrong_output_is_refused_from_the_workers(tmp_path, store, client):
    three = nn.Sequential(nn.Conv(1, 4, 9, ndim=1, rng=0), nn.ReLU(), nn.GlobalPool("avg"),
                          nn.Linear(4, 3, rng=0))
    with pytest.raises(ShapeError, match=r"needs one output of shape \(2,\) per item"):
        train(store, tmp_path / "run", model=three, client=client, **OPTIONS)


@pytest.fixture(scope="module")
def classify_run(tmp_path_factory, store):
    """A run trained here for one epoch on the store (BatchNorm: eval-mode statistics)."""
    run = tmp_path_factory.mktemp("inference") / "run"
    train(store, run, model=_model("batch"), **dict(OPTIONS, epochs=1))
    return run


@pytest.fixture(scope="module")
def wav_files(tmp_path_factory, store):
    """The store's source waveforms as 8 kHz float WAV files (its test items first)."""
    from scipy.io import wavfile

    folder = tmp_path_factory.mktemp("wav")
    files = []
    for source in sorted(store.parent.glob("w*.npy")):
        files.append(str(folder / f"{source.stem}.wav"))
        wavfile.write(files[-1], 8000, np.load(source)[0].astype(np.float32))
    return files


def test_predict_on_the_cluster_equals_local_predict(wav_files, classify_run, client):
    """Batches of 16 files over the two workers: the same classes, in order, and the same
    probabilities to 1e-6; batches no longer than the files (a short last batch too)."""
    from sigconv.train import predict

    files = wav_files
    local = predict(classify_run, files, batch_size=16, model=_model("batch"))
    spread = predict(classify_run, files, batch_size=16, model=_model("batch"), client=client)
    assert [r[0] for r in spread] == files
    assert [r[1] for r in spread] == [r[1] for r in local]
    np.testing.assert_allclose([r[2] for r in spread], [r[2] for r in local], rtol=0,
                               atol=1e-6)


def test_evaluate_on_the_cluster_equals_local_evaluate(store, classify_run, client):
    """Accuracy and confusion exactly, the loss to 1e-9 relative (float64 sums), on the
    test split (one task) and on the 32 training items with chunks of 8 (four tasks)."""
    from sigconv.train import evaluate
    from sigconv.train import inference

    for split, chunk in (("test", inference.EVALUATE_CHUNK), ("train", 8)):
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(inference, "EVALUATE_CHUNK", chunk)
            local = evaluate(classify_run, store, split=split, model=_model("batch"))
            spread = evaluate(classify_run, store, split=split, model=_model("batch"),
                              client=client)
        assert spread["accuracy"] == local["accuracy"] and \
            spread["confusion"] == local["confusion"]
        assert spread["loss"] == pytest.approx(local["loss"], rel=1e-9)
        assert spread.keys() == local.keys()


def test_cli_predict_and_evaluate_on_a_scheduler(tmp_path, store, wav_files, cluster, capsys):
    run = str(tmp_path / "run")
    assert main(["train", str(store), "--out", run, "--epochs", "1", "--batch-size", "8",
                 "--quiet"]) == 0
    files = wav_files[:5]
    capsys.readouterr()
    outputs = {}
    for where in ("local", "cluster"):
        scheduler = ["--scheduler", cluster.scheduler_address] if where == "cluster" else []
        assert main(["predict", run, *files, "--batch-size", "2", "--quiet", *scheduler]) == 0
        assert main(["evaluate", run, str(store), *scheduler]) == 0
        outputs[where] = capsys.readouterr().out
    assert outputs["cluster"] == outputs["local"]
    assert [line.split("\t")[0] for line in outputs["local"].splitlines()[:5]] == files


def test_predict_and_evaluate_refuse_an_unreachable_scheduler(tmp_path, store, wav_files,
                                                               capsys, monkeypatch):
    address = f"tcp://127.0.0.1:{_closed_port()}"
    monkeypatch.setattr(parallel, "CONNECT_TIMEOUT", 2)
    run = str(tmp_path / "run")
    assert main(["train", str(store), "--out", run, "--epochs", "1", "--quiet"]) == 0
    capsys.readouterr()
    started = time.perf_counter()
    assert main(["predict", run, wav_files[0], "--scheduler", address]) == 2
    assert main(["evaluate", run, str(store), "--scheduler", address]) == 2
    assert time.perf_counter() - started < 15
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert [line.split(":")[0] for line in lines] == ["sigconv predict", "sigconv evaluate"]
    assert all(f"at {address!r}" in line for line in lines) and captured.out == ""


def test_a_dense_run_predicts_on_the_cluster_file_by_file(tmp_path, store, wav_files, client):
    """Denoising: a task per file, the arrays equal to the local ones to 1e-6; evaluating
    it on the cluster is refused (classify only so far)."""
    from sigconv.train import evaluate, predict

    train(store, tmp_path / "run", task="denoise", patch=64, **dict(OPTIONS, epochs=1))
    files = wav_files[:3]
    local = predict(tmp_path / "run", files)
    spread = predict(tmp_path / "run", files, client=client)
    assert [r[0] for r in spread] == files
    for (_, here), (_, there) in zip(local, spread):
        assert there.shape == here.shape
        np.testing.assert_allclose(there, here, rtol=0, atol=1e-6)
    with pytest.raises(ArgumentError, match="evaluating on a Dask cluster supports the task "
                                            "'classify' so far, not 'denoise'"):
        evaluate(tmp_path / "run", store, client=client)
