"""Training on a store: metrics, checkpoints, exact resume, non-finite loss, CLI."""
import json

import numpy as np
import pytest

from sigconv import checkpoint
from sigconv.cli import main
from sigconv.data import Source, prepare
from sigconv.errors import ArgumentError, ShapeError
from sigconv.train import TrainingError, load_model, train

from ..phantoms import waveform_store


def _store(tmp_path, rng):
    """A small 1-D two-class problem of variable-length signals: a tone or noise."""
    folder = tmp_path / "src"
    folder.mkdir()
    sources = []
    for i in range(48):
        n = int(rng.integers(300, 600))
        label = i % 2
        t = np.arange(n)
        signal = np.sin(0.6 * t + rng.uniform(0, 6)) if label else rng.standard_normal(n)
        np.save(folder / f"s{i:02d}.npy", signal + 0.1 * rng.standard_normal(n))
        split = "test" if i < 8 else "train"
        sources.append(Source(f"s{i:02d}", str(folder / f"s{i:02d}.npy"),
                              {"label": label, "split": split, "speaker": "ab"[i % 4 // 2]}))
    from sigconv.data import convert_npy
    prepare(sources, tmp_path / "store", convert_npy, progress=False, log=None)
    return tmp_path / "store"


def test_train_writes_metrics_and_learns(tmp_path, rng):
    store = _store(tmp_path, rng)
    metrics = train(store, tmp_path / "run", epochs=4, batch_size=8, lr=3e-3, progress=False,
                    log=None)
    assert [h["epoch"] for h in metrics["history"]] == [1, 2, 3, 4]
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert saved["history"] == json.loads(json.dumps(metrics["history"]))
    assert saved["test"]["accuracy"] >= 0.75                  # tone against noise
    assert (tmp_path / "run" / "metrics.csv").read_text().startswith("epoch,lr,")
    model = load_model(tmp_path / "run")
    assert model.classes == [0, 1]
    assert set(saved["test"]["per_speaker"]) == {"a", "b"}
    for name in ("curves.png", "confusion.png", "kernels.png"):
        assert (tmp_path / "run" / name).read_bytes()[:4] == b"\x89PNG"


def test_resume_ends_identical_to_an_uninterrupted_run(tmp_path, rng):
    store = _store(tmp_path, rng)
    options = dict(epochs=3, batch_size=8, progress=False, log=None)
    whole = train(store, tmp_path / "whole", **options)
    train(store, tmp_path / "parts", stop_after=1, **options)     # interrupted after epoch 1
    assert json.loads((tmp_path / "parts" / "state.json").read_text())["epoch"] == 1
    resumed = train(store, tmp_path / "parts", resume=True, **options)
    for name in ("checkpoint.safetensors", "best.safetensors"):
        a = checkpoint.load(tmp_path / "whole" / name)
        b = checkpoint.load(tmp_path / "parts" / name)
        assert list(a) == list(b)
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])
    drop = ("seconds",)
    assert [{k: v for k, v in h.items() if k not in drop} for h in whole["history"]] == \
        [{k: v for k, v in h.items() if k not in drop} for h in resumed["history"]]
    assert whole["test"] == resumed["test"]


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_non_finite_loss_stops_and_keeps_the_checkpoint(tmp_path, rng, monkeypatch):
    store = _store(tmp_path, rng)
    options = dict(epochs=3, batch_size=8, progress=False, log=None)
    train(store, tmp_path / "run", stop_after=1, **options)
    good = (tmp_path / "run" / "checkpoint.safetensors").read_bytes()
    from sigconv import optim
    real_adam = optim.Adam

    def exploding(params, lr=1e-3, **kw):  # a learning rate that overflows in epoch 2
        return real_adam(params, lr=3e38, **kw)

    monkeypatch.setattr(optim, "Adam", exploding)
    with pytest.raises(TrainingError, match="loss became .* epoch 2"):
        train(store, tmp_path / "run", resume=True, **options)
    assert (tmp_path / "run" / "checkpoint.safetensors").read_bytes() == good
    assert json.loads((tmp_path / "run" / "state.json").read_text())["epoch"] == 1


def test_cli_train_and_evaluate(tmp_path, rng, capsys):
    store = _store(tmp_path, rng)
    assert main(["train", str(store), "--out", str(tmp_path / "run"), "--epochs", "2",
                 "--batch-size", "8"]) == 0
    assert "test: accuracy" in capsys.readouterr().out
    assert main(["evaluate", str(tmp_path / "run"), str(store)]) == 0
    assert "accuracy" in capsys.readouterr().out
    last = tmp_path / "run" / "checkpoint.safetensors"   # a checkpoint file works too
    assert main(["evaluate", str(last), str(store), "--split", "train"]) == 0
    assert capsys.readouterr().out.startswith("train: accuracy")
    assert main(["evaluate", str(tmp_path / "run"), str(store), "--split", "nowhere"]) == 2
    assert main(["train", str(tmp_path / "nowhere"), "--out", str(tmp_path / "x")]) == 2


def test_predict_files_like_the_store(tmp_path, shared_data, capsys):
    import importlib.util
    import pathlib

    pytest.importorskip("sigconv.io")
    root = pathlib.Path(__file__).resolve().parents[2]
    spec = importlib.util.spec_from_file_location("fsdd", root / "datasets" / "fsdd.py")
    fsdd = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fsdd)
    sources = fsdd.fsdd_sources(shared_data / "fsdd")[::60]
    prepare(sources, tmp_path / "store", fsdd.converter("waveform"), progress=False, log=None)
    train(tmp_path / "store", tmp_path / "run", epochs=1, batch_size=16, progress=False,
          log=None)
    files = [str(shared_data / "fsdd" / "recordings" / n)
             for n in ("3_theo_2.wav", "7_yweweler_0.wav")]
    assert main(["predict", str(tmp_path / "run")] + files) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split("\t")[0] for line in lines] == files
    assert all(line.split("\t")[1] in {str(d) for d in range(10)} for line in lines)
    assert main(["predict", str(tmp_path / "run"), str(tmp_path / "missing.wav")]) == 2


def test_bad_training_arguments_are_refused(tmp_path, rng):
    from sigconv.errors import ArgumentError

    store = _store(tmp_path, rng)
    for options, message in ((dict(epochs=0), "epochs must be"), (dict(batch_size=2.5),
                             "batch_size must be"), (dict(lr=-1.0), "lr must be"),
                             (dict(lr=float("nan")), "lr must be"),
                             (dict(resume=True), "cannot resume"),
                             (dict(task="denoise", model="labeller"), "does not do task")):
        with pytest.raises(ArgumentError, match=message):
            train(store, tmp_path / "run", progress=False, log=None, **options)
    with pytest.raises(ArgumentError, match="not a run folder"):
        load_model(tmp_path / "nowhere")


def test_a_run_folder_is_not_replaced_without_overwrite(tmp_path, rng, capsys):
    from sigconv.errors import ArgumentError

    store = _store(tmp_path, rng)
    run = tmp_path / "run"
    options = dict(epochs=1, batch_size=8, progress=False, log=None)
    train(store, run, **options)
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.name != ".lock"}
    assert {"state.json", "best.safetensors", "curves.png"} <= set(before)
    with pytest.raises(ArgumentError, match=r"already holds a run \(state.json, .*\); continue "
                                            r"it with --resume .* replace it with --overwrite"):
        train(store, run, **options)
    assert main(["train", str(store), "--out", str(run), "--epochs", "1"]) == 2
    err = capsys.readouterr().err
    assert f"run folder '{run}' already holds a run" in err
    assert "--resume" in err and "--overwrite" in err
    assert {name: (run / name).read_bytes() for name in before} == before   # untouched
    (run / "example.png").write_bytes(b"left by an earlier denoising run")
    (run / "notes.txt").write_text("the user's own file")
    assert main(["train", str(store), "--out", str(run), "--epochs", "2", "--batch-size", "8",
                 "--overwrite"]) == 0
    state = json.loads((run / "state.json").read_text())
    assert state["epoch"] == 2 and len(state["history"]) == 2     # a new run, not a resumed one
    assert not (run / "example.png").exists()                     # the old run's files went
    assert (run / "notes.txt").read_text() == "the user's own file"   # nothing else did
    with pytest.raises(ArgumentError, match="resume and overwrite exclude each other"):
        train(store, run, resume=True, overwrite=True, **options)
    (tmp_path / "file").write_text("")
    with pytest.raises(ArgumentError, match="is a file, not a folder"):
        train(store, tmp_path / "file", **options)


def test_a_second_train_on_a_run_folder_fails_at_once(tmp_path, rng, capsys):
    import os
    import subprocess
    import sys
    import time

    store = _store(tmp_path, rng)
    run = tmp_path / "run"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    env.pop("PYTHONUNBUFFERED", None)
    child = subprocess.Popen([sys.executable, "-m", "sigconv.cli", "train", str(store),
                              "--out", str(run), "--epochs", "60", "--batch-size", "8"],
                             env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not (run / "state.json").exists():                 # its first epoch is done
            assert child.poll() is None and time.monotonic() < deadline, "training did not start"
            time.sleep(0.02)
        state = (run / "state.json").read_bytes()
        for flag in ("--resume", "--overwrite"):
            assert main(["train", str(store), "--out", str(run), "--epochs", "60", flag]) == 2
            err = capsys.readouterr().err
            assert f"run folder '{run}' is in use by another process (pid {child.pid} on " in err
        assert child.poll() is None                               # still training, and ...
        assert (run / "best.safetensors").exists()                # ... nothing was deleted
        assert json.loads((run / "state.json").read_bytes())["epoch"] >= \
            json.loads(state)["epoch"]
    finally:
        child.kill()
        child.wait()
    # a killed holder leaves no stale lock: the folder can be trained in again at once
    assert main(["train", str(store), "--out", str(run), "--epochs", "1", "--overwrite"]) == 0


def test_run_files_honour_the_umask(tmp_path, rng):
    import os

    store = _store(tmp_path, rng)
    old = os.umask(0o027)
    try:
        train(store, tmp_path / "run", epochs=1, batch_size=8, progress=False, log=None)
    finally:
        os.umask(old)
    modes = {p.name: p.stat().st_mode & 0o777 for p in (tmp_path / "run").iterdir()}
    assert {"state.json", "checkpoint.safetensors", "metrics.csv", "curves.png"} <= set(modes)
    assert modes == dict.fromkeys(modes, 0o640)


# -- augmentation of the training items ---------------------------------------

def _waveform_store(tmp_path, rng, count=24):
    """Waveforms of distinct lengths (they tell the items apart), 4 for test."""
    return waveform_store(tmp_path / "wave", rng, [300 + 7 * i for i in range(count)], test=4)


class _Recording:
    """A transform that records what it saw and shifts every sample by 100."""

    def __init__(self):
        self.seen = []

    def __call__(self, signal, rng):
        self.seen.append((signal.kind, signal.sample_rate, signal.shape[-1]))
        return signal.replace(data=signal.data + 100.0)


def test_augmentation_changes_training_batches_only(tmp_path, rng):
    from sigconv.data import Store

    store = _waveform_store(tmp_path, rng)
    options = dict(epochs=2, batch_size=8, progress=False, log=None)
    transform = _Recording()
    train(store, tmp_path / "custom", augment=transform, **options)
    lengths = {r["shape"][-1]: r["split"] for r in Store(store).records}
    train_lengths = sorted(n for n, split in lengths.items() if split == "train")
    assert all(kind == "waveform" and rate == 8000 for kind, rate, _ in transform.seen)
    # every training item once per epoch, and never a validation or test item
    state = json.loads((tmp_path / "custom" / "state.json").read_text())
    seen = [n for _, _, n in transform.seen]
    assert set(seen) <= set(train_lengths) and len(set(seen)) >= 15  # a tenth validates
    assert all(seen.count(n) == 2 for n in seen)                     # once per epoch
    assert state["options"]["augment"] == {"class": "tests.train.test_loop._Recording"}
    # the preset is recorded in the run folder, and "none" changes nothing but the batches
    train(store, tmp_path / "default", **options)
    state = json.loads((tmp_path / "default" / "state.json").read_text())
    assert state["options"]["augment"]["class"] == "Compose"
    train(store, tmp_path / "none", augment="none", **options)
    state = json.loads((tmp_path / "none" / "state.json").read_text())
    assert state["options"]["augment"] is None
    with_aug = json.loads((tmp_path / "default" / "metrics.json").read_text())["history"]
    without = json.loads((tmp_path / "none" / "metrics.json").read_text())["history"]
    assert with_aug[0]["train_loss"] != without[0]["train_loss"]


def test_resume_with_augmentation_is_bit_identical_and_keeps_it(tmp_path, rng, monkeypatch):
    # fixed kernel paths: auto-tuning times direct against gemm on a signature's first and
    # fifth use, and the two paths round differently; augmented lengths reach new signatures
    # late in a run, where the resumed run may time them to the other path (docs/train.md)
    monkeypatch.setenv("SIGCONV_AUTOTUNE", "0")
    store = _waveform_store(tmp_path, rng)
    options = dict(epochs=3, batch_size=8, progress=False, log=None, augment="strong")
    train(store, tmp_path / "whole", **options)
    train(store, tmp_path / "parts", stop_after=1, **options)
    train(store, tmp_path / "parts", resume=True, **options)
    a = checkpoint.load(tmp_path / "whole" / "checkpoint.safetensors")
    b = checkpoint.load(tmp_path / "parts" / "checkpoint.safetensors")
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    train(store, tmp_path / "again", stop_after=1, **options)
    with pytest.raises(ArgumentError, match="another augmentation"):
        train(store, tmp_path / "again", resume=True, **dict(options, augment="light"))


def test_bad_augment_arguments_are_refused(tmp_path, rng):
    plain = _store(tmp_path, rng)  # records without a kind
    options = dict(epochs=1, batch_size=8, progress=False, log=None)
    for bad in ("heavy", 3, True):
        with pytest.raises(ArgumentError, match="augment must be one of"):
            train(plain, tmp_path / "bad", augment=bad, **options)
    with pytest.raises(ArgumentError, match="needs the data kind"):
        train(plain, tmp_path / "bad", augment="strong", **options)
    assert not (tmp_path / "bad" / "state.json").exists()


# -- a model, loss, optimizer and schedule of the user's ---------------------

def _tiny(seed=0):
    """A user's classifier: one convolution, a global average and a linear head."""
    from sigconv import nn

    return nn.Sequential(nn.Conv(1, 4, 9, ndim=1, rng=seed), nn.ReLU(), nn.GlobalPool("avg"),
                         nn.Linear(4, 2, rng=seed))


class _CountingLoss:
    """Cross-entropy with label smoothing, counting its calls."""

    def __init__(self):
        self.calls = 0

    def __call__(self, output, target):
        from sigconv import nn

        self.calls += 1
        return nn.functional.cross_entropy(output, target, label_smoothing=0.1)


def _sgd(params):
    from sigconv import optim

    return optim.SGD(params, lr=0.2, momentum=0.9)


def _step_schedule(optimizer):
    from sigconv import optim

    return optim.StepLR(optimizer, 2, gamma=0.5)


def test_new_classification_runs_are_residual_in_2d_and_older_runs_stay_plain():
    """The default 2-D classifier has residual blocks (1-D and 3-D: plain); a task state
    saved before ``residual_ndims`` was recorded builds the plain 2-D classifier."""
    from sigconv import nn
    from sigconv.train.tasks import Classification

    def residual_blocks(model):
        return sum(isinstance(m, nn.Residual) for m in model.modules())

    records = [{"label": 0}, {"label": 1}]
    new = Classification(dict(Classification.fit([], records, {}), model="classifier"), seed=0)
    older = Classification({"classes": [0, 1], "dropout": 0.0, "model": "classifier"}, seed=0)
    assert residual_blocks(new.model(1, 2, seed=0)) == 2          # blocks 2 and 3 of 3
    assert residual_blocks(new.model(1, 1, seed=0)) == residual_blocks(new.model(1, 3, 0)) == 0
    assert residual_blocks(older.model(1, 2, seed=0)) == 0
    assert older.model(1, 2, seed=0).state_dict().keys() != new.model(1, 2, 0).state_dict().keys()


def _smoothed(output, target):
    from sigconv import nn

    return nn.functional.cross_entropy(output, target, label_smoothing=0.1)


def _plain(output, target):
    from sigconv import nn

    return nn.functional.cross_entropy(output, target)


def test_classification_trains_with_the_label_smoothing_its_run_records(tmp_path, rng):
    """New runs smooth labels by 0.1 (recorded in the task state); runs saved before it was
    recorded train with none; validation and test losses stay the plain cross-entropy."""
    from sigconv.train.tasks import Classification

    store = _store(tmp_path, rng)
    runs = {name: train(store, tmp_path / name, epochs=2, batch_size=8, loss=loss,
                        progress=False, log=None)
            for name, loss in (("default", None), ("smoothed", _smoothed), ("plain", _plain))}
    state = json.loads((tmp_path / "default" / "state.json").read_text())
    assert state["task_state"]["label_smoothing"] == 0.1
    assert state["task_state"]["residual_ndims"] == [2]
    losses = {name: [h["train_loss"] for h in run["history"]] for name, run in runs.items()}
    # equal up to the kernels' choices (timed per process: the first run may differ in ulps)
    assert losses["default"] == pytest.approx(losses["smoothed"], rel=1e-5)
    assert all(d > p + 0.05 for d, p in zip(losses["default"], losses["plain"]))
    logits, labels = rng.standard_normal((6, 2)), rng.integers(0, 2, 6)
    older = Classification({"classes": [0, 1], "dropout": 0.0}, seed=0)
    assert older.loss(logits, labels).item() == _plain(logits, labels).item()
    tally = Classification(state["task_state"], seed=0).tally()
    tally.add(logits, labels)
    assert tally.result()["loss"] == pytest.approx(_plain(logits, labels).item(), rel=1e-6)


def test_your_model_loss_optimizer_and_schedule_train(tmp_path, rng):
    store = _store(tmp_path, rng)
    loss = _CountingLoss()
    metrics = train(store, tmp_path / "run", epochs=4, batch_size=8, model=_tiny(),
                    loss=loss, optimizer=_sgd, schedule=_step_schedule, progress=False,
                    log=None)
    losses = [h["train_loss"] for h in metrics["history"]]
    assert losses[-1] < 0.8 * losses[0]                             # it learns
    assert loss.calls == 4 * 5                                      # 36 items, 8 a batch
    assert [h["lr"] for h in metrics["history"]] == pytest.approx([0.2, 0.2, 0.1, 0.1])
    assert metrics["test"]["accuracy"] >= 0.75 and "macro_f1" in metrics["test"]
    state = json.loads((tmp_path / "run" / "state.json").read_text())
    assert state["task_state"]["model"] == {"class": "sigconv.nn.module.Sequential",
                                            "parameters": 4 * 9 + 4 + 4 * 2 + 2}
    assert state["options"]["loss"] == {"class": "tests.train.test_loop._CountingLoss"}
    assert state["options"]["optimizer"]["class"] == "sigconv.optim.optimizer.SGD"
    assert state["options"]["optimizer"]["param_groups"][0]["momentum"] == 0.9
    assert state["options"]["schedule"] == {"class": "sigconv.optim.schedule.StepLR"}
    assert state["options"]["lr"] is None
    # the architecture comes from the caller, the weights from the run
    with pytest.raises(ArgumentError, match=r"model of yours \(sigconv.nn.module.Sequential\)"
                                            r".*load_model\(run, model=...\)"):
        load_model(tmp_path / "run")
    model = load_model(tmp_path / "run", model=_tiny(seed=7))
    best = checkpoint.load(tmp_path / "run" / "best.safetensors")
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(value, best[key])
    assert model.classes == [0, 1] and not model.training
    # evaluate takes the architecture the same way, and scores as the run did
    from sigconv.train import evaluate
    with pytest.raises(ArgumentError, match="model of yours"):
        evaluate(tmp_path / "run", store)
    again = evaluate(tmp_path / "run", store, model=_tiny(seed=7))
    assert again["accuracy"] == pytest.approx(metrics["test"]["accuracy"])
    from sigconv import nn

    wider = nn.Sequential(nn.Conv(1, 6, 9, ndim=1), nn.ReLU(), nn.GlobalPool("avg"),
                          nn.Linear(6, 2))
    with pytest.raises(ShapeError, match=r"weights in .*best.safetensors do not fit the model "
                                         r"given \(Sequential; the run trained "
                                         r"sigconv.nn.module.Sequential\).*0.weight"):
        load_model(tmp_path / "run", model=wider)
    with pytest.raises(ArgumentError, match=r"do not fit .*unexpected keys \[.3.weight"):
        load_model(tmp_path / "run", model=nn.Sequential(nn.Linear(4, 2)))


def test_an_optimizer_and_schedule_instance_on_your_model(tmp_path, rng):
    from sigconv import optim

    store = _store(tmp_path, rng)
    net = _tiny()
    sgd = optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    metrics = train(store, tmp_path / "run", epochs=2, batch_size=8, model=net, optimizer=sgd,
                    schedule=optim.StepLR(sgd, 1, gamma=0.1), progress=False, log=None)
    assert [h["lr"] for h in metrics["history"]] == pytest.approx([0.05, 0.005])
    assert sgd.state                                  # the instance given is the one stepped


def test_resume_of_a_run_with_your_model_is_bit_identical(tmp_path, rng):
    store = _store(tmp_path, rng)
    options = dict(epochs=3, batch_size=8, optimizer=_sgd, loss=_CountingLoss(),
                   progress=False, log=None)
    whole = train(store, tmp_path / "whole", model=_tiny(), **options)
    train(store, tmp_path / "parts", model=_tiny(), stop_after=1, **options)
    saved = checkpoint.load(tmp_path / "parts" / "optimizer.safetensors")
    assert "0.velocity" in saved                           # SGD's momentum is kept
    with pytest.raises(ArgumentError, match="trained with a model of yours .* resume it with "
                                            "model= an instance"):
        train(store, tmp_path / "parts", resume=True, **options)
    with pytest.raises(ArgumentError, match="another loss"):
        train(store, tmp_path / "parts", resume=True, model=_tiny(),
              **dict(options, loss=None))
    with pytest.raises(ArgumentError, match="another optimizer: the run used .*SGD.*Adam"):
        train(store, tmp_path / "parts", resume=True, model=_tiny(),
              **dict(options, optimizer=None))
    resumed = train(store, tmp_path / "parts", resume=True, model=_tiny(seed=5), **options)
    for name in ("checkpoint.safetensors", "best.safetensors"):
        a = checkpoint.load(tmp_path / "whole" / name)
        b = checkpoint.load(tmp_path / "parts" / name)
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])
    assert whole["test"] == resumed["test"]


@pytest.mark.parametrize("kind", ["SGD", "Adam", "AdamW"])
def test_every_sigconv_optimizer_resumes_exactly(tmp_path, rng, kind):
    from sigconv import nn, optim
    from sigconv.autograd import Tensor
    from sigconv.train.loop import _load_optimizer, _save_optimizer

    make = {"SGD": lambda p: optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True),
            "Adam": lambda p: optim.Adam(p, lr=0.01),
            "AdamW": lambda p: optim.AdamW(p, lr=0.01)}[kind]
    x = Tensor(rng.standard_normal((6, 3)).astype(np.float32))

    def steps(model, optimizer, count):
        for _ in range(count):
            optimizer.zero_grad()
            (model(x) ** 2).mean().backward()
            optimizer.step()

    first = nn.Linear(3, 2, rng=0)
    optimizer = make(list(first.parameters()))
    steps(first, optimizer, 3)
    _save_optimizer(optimizer, tmp_path / "optimizer.safetensors")
    second = nn.Linear(3, 2, rng=1)
    second.load_state_dict(first.state_dict())
    restored = make(list(second.parameters()))
    _load_optimizer(restored, tmp_path / "optimizer.safetensors")
    steps(first, optimizer, 2)
    steps(second, restored, 2)
    for key, value in first.state_dict().items():
        np.testing.assert_array_equal(value, second.state_dict()[key])
    small = make([nn.Parameter(np.zeros(1, np.float32))])
    with pytest.raises(ArgumentError, match="optimizer state in .* does not fit"):
        _load_optimizer(small, tmp_path / "optimizer.safetensors")


def test_optimizer_files_of_earlier_runs_still_resume(tmp_path):
    from sigconv import nn, optim
    from sigconv.train.loop import _load_optimizer

    weight = nn.Parameter(np.ones((2, 2), np.float32))
    m, v = np.full((2, 2), 0.5, np.float32), np.full((2, 2), 0.25, np.float32)
    checkpoint.save({"0.m": m, "0.v": v}, tmp_path / "old.safetensors",
                    metadata={"steps": json.dumps({"0": 7})})      # as runs before wrote it
    adam = optim.Adam([weight])
    _load_optimizer(adam, tmp_path / "old.safetensors")
    state = adam.state[id(weight)]
    assert state["step"] == 7
    np.testing.assert_array_equal(state["m"], m)
    np.testing.assert_array_equal(state["v"], v)


def test_bad_models_losses_and_optimizers_are_refused(tmp_path, rng):
    from sigconv import nn, optim
    from sigconv.train.callbacks import Callback

    store = _store(tmp_path, rng)
    options = dict(epochs=1, batch_size=8, progress=False, log=None)
    net = _tiny()
    other = optim.SGD(_tiny().parameters(), lr=0.1)
    for given, message in (
            (dict(model=nn.Sequential), "a Module instance .*Sequential\\(...\\).*the class"),
            (dict(model=3), "model must be one of classifier, .* or a sigconv.nn.Module"),
            (dict(model=net, optimizer=other), "tensors that are not the model's parameters"),
            (dict(optimizer="adam"), "optimizer must be a sigconv.optim.Optimizer or a factory"),
            (dict(optimizer=lambda p: "adam"), "returned str, not a sigconv.optim.Optimizer"),
            (dict(optimizer=_sgd, lr=0.1), "with optimizer= give the learning rate"),
            (dict(model=net, schedule=optim.StepLR(other, 1)), "built on another optimizer"),
            (dict(schedule=3), "schedule must be a learning-rate schedule"),
            (dict(loss="mse"), "loss must be a callable"),
            (dict(loss=lambda output, target: output), "loss must return a scalar Tensor, got "
                                                       "a Tensor of ndarray \\(8, 2\\)"),
            (dict(callbacks=Callback()), "callbacks must be a list"),
            (dict(callbacks=[print]), "Callback instances, got <built-in function print>")):
        with pytest.raises(ArgumentError, match=message):
            train(store, tmp_path / "bad", overwrite=True, **options, **given)
    three = nn.Sequential(nn.Conv(1, 4, 9, ndim=1), nn.GlobalPool("avg"), nn.Linear(4, 3))
    with pytest.raises(ShapeError, match=r"task 'classify' needs one output of shape \(2,\) "
                                         r"per item \(a logit for each of the classes \[0, 1\]\); "
                                         r"the model gave \[\(3,\), \(3,\), \(3,\)\]"):
        train(store, tmp_path / "bad", overwrite=True, model=three, **options)
    train(store, tmp_path / "builtin", stop_after=1, **dict(options, epochs=2))
    with pytest.raises(ArgumentError, match="trains the model 'classifier': resume it"):
        train(store, tmp_path / "builtin", resume=True, model=_tiny(), **dict(options, epochs=2))


# -- refusals: a finished run, an early stop ------------------------------------

def test_resuming_a_finished_run_says_it_is_finished(tmp_path, rng, capsys):
    from sigconv.train import RunFinishedError

    store = _store(tmp_path, rng)
    run = tmp_path / "run"
    metrics = train(store, run, epochs=1, batch_size=8, model=_tiny(), progress=False, log=None)
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    with pytest.raises(RunFinishedError, match=r"the run in '.*run' is finished \(all 1 epochs "
                                               r"trained\); its test accuracy is \d\.\d{4}, and "
                                               r"its metrics are in .*run/metrics.json") as caught:
        train(store, run, resume=True, model=_tiny(), progress=False, log=None)
    assert caught.value.test == json.loads(json.dumps(metrics["test"]))
    assert caught.value.metrics_path == str(run / "metrics.json")
    assert main(["train", str(store), "--out", str(run), "--resume"]) == 2
    err = capsys.readouterr().err
    assert "is finished" in err and "test accuracy" in err and "metrics.json" in err
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == before


def test_a_resumed_run_keeps_its_epochs_batch_size_and_lr(tmp_path, rng):
    store = _store(tmp_path, rng)
    options = dict(model=_tiny(), progress=False, log=None)
    train(store, tmp_path / "run", epochs=2, batch_size=12, lr=1e-2, stop_after=1, **options)
    metrics = train(store, tmp_path / "run", resume=True, **options)       # no --epochs etc.
    state = json.loads((tmp_path / "run" / "state.json").read_text())
    assert len(metrics["history"]) == 2 and state["finished"] is True
    assert (state["options"]["epochs"], state["options"]["batch_size"],
            state["options"]["lr"]) == (2, 12, 1e-2)


def test_early_stopping_stops_a_stalled_run_and_tests_its_best_model(tmp_path, rng):
    from sigconv import optim
    from sigconv.train import EarlyStopping, RunFinishedError

    store = _store(tmp_path, rng)
    frozen = lambda params: optim.SGD(params, lr=0.0)  # noqa: E731 - validation cannot move
    metrics = train(store, tmp_path / "run", epochs=20, batch_size=8, model=_tiny(),
                    optimizer=frozen, callbacks=[EarlyStopping(patience=2)], progress=False,
                    log=None)
    assert len(metrics["history"]) == 3 < 20             # one best epoch, two without gain
    assert metrics["stopped_early"]["epoch"] == 3
    assert "validation_accuracy did not improve by more than 0 for 2 epochs (best" in \
        metrics["stopped_early"]["reason"]
    assert "accuracy" in metrics["test"]                  # the test still ran
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert saved["stopped_early"] == metrics["stopped_early"]
    state = json.loads((tmp_path / "run" / "state.json").read_text())
    assert state["stopped_early"]["epoch"] == 3 and state["finished"] is True
    assert state["callbacks"]["EarlyStopping"]["wait"] == 2
    with pytest.raises(RunFinishedError, match="stopped early at epoch 3 of 20: "
                                               "validation_accuracy did not improve"):
        train(store, tmp_path / "run", resume=True, model=_tiny(), optimizer=frozen,
              progress=False, log=None)


def test_early_stopping_keeps_its_patience_across_a_resume(tmp_path, rng):
    from sigconv import optim
    from sigconv.train import EarlyStopping

    store = _store(tmp_path, rng)
    frozen = lambda params: optim.SGD(params, lr=0.0)  # noqa: E731
    options = dict(epochs=20, batch_size=8, optimizer=frozen, progress=False, log=None)
    train(store, tmp_path / "run", model=_tiny(), stop_after=2,
          callbacks=[EarlyStopping(patience=3)], **options)
    metrics = train(store, tmp_path / "run", model=_tiny(), resume=True,
                    callbacks=[EarlyStopping(patience=3)], **options)
    assert metrics["stopped_early"]["epoch"] == 4                     # not 2 + 3 + 1
    assert len(metrics["history"]) == 4 and metrics["test"]


def test_an_early_stopped_run_interrupted_before_its_test_resumes_to_the_test(tmp_path, rng):
    from sigconv import optim
    from sigconv.train import EarlyStopping

    store = _store(tmp_path, rng)
    frozen = lambda params: optim.SGD(params, lr=0.0)  # noqa: E731
    options = dict(epochs=20, batch_size=8, optimizer=frozen, progress=False, log=None)
    train(store, tmp_path / "run", model=_tiny(), callbacks=[EarlyStopping(patience=1)],
          **options)
    state_path = tmp_path / "run" / "state.json"
    state = json.loads(state_path.read_text())
    state["finished"] = False                  # as if killed between the stop and the test
    state_path.write_text(json.dumps(state))
    metrics = train(store, tmp_path / "run", model=_tiny(), resume=True, **options)
    assert len(metrics["history"]) == 2 and metrics["test"]       # no epoch more: the test
    assert json.loads(state_path.read_text())["finished"] is True
