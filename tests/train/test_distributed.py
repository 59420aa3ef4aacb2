"""Data-parallel training on a Dask cluster: the split rule, equivalence with the single
process (GroupNorm; classification and denoising), what BatchNorm and labelling's Dice
synchronise, reproducible dropout, workers lost mid-epoch, the CLI, refusals and an
unreachable scheduler; inference on the cluster.

Tolerance of the equivalence (float32 model, Adam): the two shards' gradients are summed
in another order than the whole batch's, so losses agree to 1e-5 relative and weights to
1e-5 absolute after 8 steps (the differences measured: 5e-8 relative in the losses, 1.2e-7
in the weights).
"""
import copy
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from sigconv import checkpoint, nn, transforms
from sigconv.cli import main
from sigconv.data import Store
from sigconv.errors import ArgumentError, ShapeError
from sigconv.models import Classifier, EncoderDecoder, StructuredLabeller
from sigconv.train import train
from sigconv.train.callbacks import Callback
from sigconv.train.items import _items, _split_items
from sigconv.train.tasks import Classification, Labelling

from ..phantoms import volume_store, waveform_store

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


def _shard_oracle(net, task, items, entries, bounds):
    """Gradient and buffers of a step computed here, one shard of ``entries`` (a plan's
    batch) at a time from ``net``."""
    grads, buffers, total = None, None, sum(b - a for a, b in bounds)
    for start, stop in bounds:
        shard = copy.deepcopy(net).train()
        x, y = task.assemble(items.__getitem__, entries[start:stop])
        task.loss(task.forward(shard, x), y).backward()
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
    expected_grads, expected_buffers = _shard_oracle(net, task, items, indices.tolist(),
                                                     parallel.shards(7, 2))
    whole = copy.deepcopy(net).train()
    x, y = task.batch_of([items[i] for i in indices])
    task.loss(whole(x), y).backward()
    step = parallel.DataParallel(client, str(store), records, task, None, 0, net, None)
    try:
        _, count, tally = step.step(0, 0, indices.tolist())
    finally:
        step.close()
    labels = [items[i][1] for i in indices]
    assert count == 7 and tally.confusion.sum(axis=1).tolist() == np.bincount(
        labels, minlength=2).tolist()
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
                step.step(0, first, indices.tolist())
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


def test_a_client_that_is_not_one_is_refused_before_anything_is_written(tmp_path, store):
    with pytest.raises(ArgumentError, match="client must be a distributed.Client"):
        train(store, tmp_path / "run", client="tcp://127.0.0.1:8786", **OPTIONS)
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

    for split, chunk in (("test", Classification.evaluation_batch), ("train", 8)):
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(Classification, "evaluation_batch", chunk)
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
    """Denoising: a task per file, the arrays equal to the local ones to 1e-6; evaluated on
    the cluster (a task per item), the scores equal the local ones."""
    from sigconv.train import evaluate, predict

    train(store, tmp_path / "run", task="denoise", patch=64, **dict(OPTIONS, epochs=1))
    files = wav_files[:3]
    local = predict(tmp_path / "run", files)
    spread = predict(tmp_path / "run", files, client=client)
    assert [r[0] for r in spread] == files
    for (_, here), (_, there) in zip(local, spread):
        assert there.shape == here.shape
        np.testing.assert_allclose(there, here, rtol=0, atol=1e-6)
    local, spread = (evaluate(tmp_path / "run", store, client=on) for on in (None, client))
    assert spread.keys() == local.keys() and {"psnr", "ssim", "psnr_noisy"} <= local.keys()
    for key in local:
        assert spread[key] == pytest.approx(local[key], rel=1e-6), key


@pytest.fixture(scope="module")
def volumes(tmp_path_factory):
    """Six 12x16x16 blob volumes with a label channel (4 train, 1 validation, 1 test)."""
    return volume_store(tmp_path_factory.mktemp("volumes"), np.random.default_rng(5),
                        with_labels=True, kind="volume")


def test_denoising_on_two_workers_follows_the_single_process(tmp_path, volumes, client):
    """Crops planned here from the augmented items (flips, and 90-degree turns that make the
    12x16x16 volumes 16x12x16), read, augmented again and noised on the workers from each
    crop's seed: the same losses and weights as the single process, to tolerance (no
    BatchNorm; crops of one size)."""
    turns = transforms.Compose([transforms.Flip(("depth", "height", "width")),
                                transforms.Rot90(plane=("depth", "height"), ks=(1,), p=0.5)])
    runs = {}
    for name, on in (("single", None), ("cluster", client)):
        losses = _Losses()
        metrics = train(volumes, tmp_path / name, task="denoise", patch=8, epochs=2,
                        batch_size=4, lr=3e-3, progress=False, log=None, callbacks=[losses],
                        augment=turns,
                        model=EncoderDecoder(1, 1, ndim=3, widths=(4, 8), batch_norm=False,
                                             rng=2), client=on)
        runs[name] = metrics, losses.values, checkpoint.load(tmp_path / name /
                                                             "checkpoint.safetensors")
    (single, single_losses, single_w), (spread, spread_losses, spread_w) = runs.values()
    assert len(single_losses) == len(spread_losses) > 4
    np.testing.assert_allclose(spread_losses, single_losses, rtol=LOSS_RTOL)
    for a, b in zip(single["history"], spread["history"]):
        assert a["train_psnr"] == pytest.approx(b["train_psnr"], rel=LOSS_RTOL)
    for key in single_w:
        np.testing.assert_allclose(spread_w[key], single_w[key], rtol=0, atol=WEIGHT_ATOL,
                                   err_msg=key)
    assert spread["test"]["psnr"] == pytest.approx(single["test"]["psnr"], rel=1e-5)


def test_labelling_on_a_cluster_takes_each_shards_dice(volumes, client):
    """Labelling's loss sums its Dice over the batch, so a cluster step's gradient is the
    item-weighted mean of the shards' gradients (each shard's own Dice), not the whole
    batch's; the step's tally counts every crop of the batch."""
    source = Store(volumes)
    records = [r for r in source.records if r["split"] == "train"]
    arrays = [source[i][0] for i in range(len(records))]
    task = Labelling(dict(Labelling.fit(arrays, records, {"patch": [8, 8, 8]}),
                          model="labeller"), 0)
    items = _items(task, source, records)
    [entries] = task.plan(items, 5, np.random.default_rng(1))[:1]
    net = StructuredLabeller(1, 3, ndim=3, hidden=4, steps=2, rng=0)
    expected, _ = _shard_oracle(net, task, items, entries, parallel.shards(5, 2))
    whole = copy.deepcopy(net).train()
    x, y = task.assemble(items.__getitem__, entries)
    task.loss(task.forward(whole, x), y).backward()
    step = parallel.DataParallel(client, str(volumes), records, task, None, 0, net, None)
    try:
        _, count, tally = step.step(0, 0, entries)
    finally:
        step.close()
    assert count == 5 and tally.count == 5 * 8 ** 3
    apart = 0.0
    for p, grad, alone in zip(net.parameters(), expected, whole.parameters()):
        np.testing.assert_allclose(p.grad, grad, rtol=1e-5, atol=1e-7)
        apart = max(apart, float(np.abs(p.grad - alone.grad).max()))
    assert apart > 1e-6  # the whole batch's Dice would give another gradient


@pytest.fixture
def spare_cluster():
    """Two worker processes of a cluster of the test's own (the test kills them)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("PYTHONUNBUFFERED", raising=False)
        with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                      dashboard_address=":0") as local, \
                distributed.Client(local) as connected:
            yield local, connected


class _Kill(Callback):
    """Kills worker processes (SIGKILL) at a step: ``pids`` after batch ``batch`` of
    ``epoch``, a moment later (so that the next step is under way)."""

    def __init__(self, pids, epoch, batch, delay=0.02):
        self.pids, self.at, self.delay, self.done = pids, (epoch, batch), delay, False

    def on_batch_end(self, run, epoch, batch, loss):
        if (epoch, batch) == self.at:
            def kill():
                for pid in self.pids:
                    os.kill(pid, signal.SIGKILL)
                self.done = True

            threading.Timer(self.delay, kill).start()


def test_a_worker_killed_mid_epoch_does_not_change_the_run(tmp_path, store, client,
                                                           spare_cluster):
    """The killed worker's shards are computed again by the other worker (the shards stay
    those of the workers the run started with): the run ends as an uninterrupted one."""
    local, spare = spare_cluster
    pids = spare.run(os.getpid)
    killed = sorted(pids)[0]
    kill = _Kill([pids[killed]], epoch=1, batch=1)
    options = dict(OPTIONS, epochs=2)
    whole = train(store, tmp_path / "whole", model=_model("group"), client=client, **options)
    hit = train(store, tmp_path / "hit", model=_model("group"), client=spare,
                callbacks=[kill], **options)
    assert kill.done and pids[killed] not in spare.run(os.getpid).values()
    np.testing.assert_allclose([h["train_loss"] for h in hit["history"]],
                               [h["train_loss"] for h in whole["history"]], rtol=LOSS_RTOL)
    first, second = (checkpoint.load(tmp_path / run / "checkpoint.safetensors")
                     for run in ("whole", "hit"))
    for key in first:
        np.testing.assert_allclose(second[key], first[key], rtol=0, atol=WEIGHT_ATOL,
                                   err_msg=key)
    assert hit["test"]["accuracy"] == whole["test"]["accuracy"]


@pytest.fixture
def nannyless(tmp_path):
    """A scheduler and two ``dask worker --no-nanny`` processes (a worker killed stays
    dead), started as on a cluster's nodes, without PYTHONUNBUFFERED; a client of them."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    quiet = dict(env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    address_file = tmp_path / "scheduler.json"
    started = [subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler",
                                 "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                                 "--scheduler-file", str(address_file)], **quiet)]
    try:
        for _ in range(300):
            if address_file.exists() and address_file.stat().st_size:
                break
            time.sleep(0.1)
        address = json.loads(address_file.read_text())["address"]
        started += [subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker",
                                      address, "--no-nanny", "--nthreads", "1",
                                      "--no-dashboard"], **quiet) for _ in range(2)]
        with distributed.Client(address, timeout=30) as connected:
            connected.wait_for_workers(2, timeout=30)
            yield connected, started[1:]
    finally:
        for process in started:
            process.kill()
            process.wait()


def test_a_cluster_that_loses_every_worker_stops_with_its_last_checkpoint(
        tmp_path, store, client, nannyless, monkeypatch):
    """Both workers killed in epoch 2: ClusterError naming the checkpoint of epoch 1, which
    is intact; resumed on another cluster, the run ends as an uninterrupted one."""
    spare, workers = nannyless
    monkeypatch.setattr(parallel, "LOST_TIMEOUT", 3.0)
    options = dict(OPTIONS, epochs=2)
    started = time.perf_counter()
    with pytest.raises(parallel.ClusterError, match=r"step 2 of epoch 2 (lost|found no) .*"
                                                    r"the last checkpoint \(epoch 1\) is in "):
        train(store, tmp_path / "run", model=_model("group"), client=spare,
              callbacks=[_Kill([w.pid for w in workers], epoch=2, batch=0)], **options)
    assert time.perf_counter() - started < 30
    state = json.loads((tmp_path / "run" / "state.json").read_text())
    assert state["epoch"] == 1 and not state["finished"]
    saved = checkpoint.load(tmp_path / "run" / "checkpoint.safetensors")
    assert saved.keys() == _model("group").state_dict().keys()
    resumed = train(store, tmp_path / "run", model=_model("group"), client=client,
                    resume=True, **options)
    whole = train(store, tmp_path / "whole", model=_model("group"), client=client, **options)
    assert [h["epoch"] for h in resumed["history"]] == [1, 2]
    np.testing.assert_allclose([h["train_loss"] for h in resumed["history"]],
                               [h["train_loss"] for h in whole["history"]], rtol=LOSS_RTOL)
    assert resumed["test"]["accuracy"] == whole["test"]["accuracy"]


def test_prepare_refuses_an_unreachable_scheduler(tmp_path, wav_files, capsys, monkeypatch):
    address = f"tcp://127.0.0.1:{_closed_port()}"
    monkeypatch.setattr(parallel, "CONNECT_TIMEOUT", 2)
    started = time.perf_counter()
    assert main(["prepare", os.path.dirname(wav_files[0]), str(tmp_path / "store"),
                 "--kind", "waveform", "--scheduler", address]) == 2
    assert time.perf_counter() - started < 15
    err = capsys.readouterr().err
    assert err.startswith("sigconv prepare:") and f"at {address!r}" in err
    assert not (tmp_path / "store").exists()


def test_a_scheduler_lost_mid_run_stops_it_with_its_last_checkpoint(tmp_path, store,
                                                                      nannyless, monkeypatch):
    """The scheduler process killed in epoch 2: ClusterError within LOST_TIMEOUT and a few
    seconds, naming the scheduler's address and the checkpoint of epoch 1."""
    spare, _ = nannyless
    monkeypatch.setattr(parallel, "LOST_TIMEOUT", 3.0)
    scheduler = spare.run_on_scheduler(os.getpid)
    started = time.perf_counter()
    with pytest.raises(parallel.ClusterError, match=r"step 2 of epoch 2 .*"
                                                    + spare.scheduler.address + r".*"
                                                    r"the last checkpoint \(epoch 1\) is in "):
        train(store, tmp_path / "run", model=_model("group"), client=spare,
              callbacks=[_Kill([scheduler], epoch=2, batch=0)], **dict(OPTIONS, epochs=2))
    assert time.perf_counter() - started < 40
    assert json.loads((tmp_path / "run" / "state.json").read_text())["epoch"] == 1


def test_a_cluster_run_validates_and_tests_on_the_workers(tmp_path, store, client,
                                                          monkeypatch):
    """With a validation split, a classifier's client reads one item (the example plot's)
    and the labels: training, validation and test items are read on the workers; the
    validation and test scores equal the single process's (accuracy exactly, loss to
    1e-5)."""
    from sigconv.train import loop

    read = []
    items = loop._items

    def counted(task, source, records):
        read.append(len(records))
        return items(task, source, records)

    options = dict(OPTIONS, validation=0.25)
    single = train(store, tmp_path / "single", model=_model("group"), **options)
    monkeypatch.setattr(loop, "_items", counted)
    spread = train(store, tmp_path / "cluster", model=_model("group"), client=client,
                   **options)
    assert read == [1]
    for a, b in zip(single["history"], spread["history"]):
        assert b["validation_accuracy"] == a["validation_accuracy"]
        assert b["validation_loss"] == pytest.approx(a["validation_loss"], rel=LOSS_RTOL)
    assert spread["test"]["accuracy"] == single["test"]["accuracy"]
    assert spread["test"]["confusion"] == single["test"]["confusion"]
    assert spread["test"]["loss"] == pytest.approx(single["test"]["loss"], rel=LOSS_RTOL)
    assert (tmp_path / "cluster" / "feature_maps.png").exists()  # of the one item read
