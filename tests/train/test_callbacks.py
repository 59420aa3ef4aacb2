"""Callbacks of the training loop: hooks, early stopping, snapshots, TensorBoard, MLflow."""
import json
import sys
import types

import numpy as np
import pytest

from sigconv import checkpoint, nn
from sigconv.errors import ArgumentError
from sigconv.train import load_model, train
from sigconv.train.callbacks import (Callback, EarlyStopping, MLflow, ModelCheckpoint,
                                     TensorBoard)
from tests.train.test_loop import _store, _tiny

OPTIONS = dict(batch_size=8, progress=False, log=None)


class _Recorder(Callback):
    """Records every hook call; stops the run at ``stop_at``."""

    def __init__(self, stop_at=None):
        self.calls, self.stop_at = [], stop_at

    def on_train_begin(self, run):
        self.calls.append(("begin", run.first_epoch, run.epochs, run.task, run.metric))

    def on_batch_end(self, run, epoch, batch, loss):
        assert np.isfinite(loss)
        self.calls.append(("batch", epoch, batch))

    def on_epoch_end(self, run, epoch, record):
        assert record["epoch"] == epoch and run.history[-1] is record
        assert isinstance(run.model, nn.Module)
        self.calls.append(("epoch", epoch))
        if epoch == self.stop_at:
            run.stop("enough")

    def on_train_end(self, run, metrics):
        self.calls.append(("end", None if metrics is None else bool(metrics["test"])))


def test_hooks_are_called_in_order_and_a_callback_can_stop_the_run(tmp_path, rng):
    store = _store(tmp_path, rng)
    recorder = _Recorder(stop_at=2)
    metrics = train(store, tmp_path / "run", epochs=5, model=_tiny(), callbacks=[recorder],
                    **OPTIONS)
    calls = recorder.calls
    assert calls[0] == ("begin", 0, 5, "classify", "accuracy") and calls[-1] == ("end", True)
    assert [c for c in calls if c[0] == "epoch"] == [("epoch", 1), ("epoch", 2)]
    batches = [c for c in calls if c[0] == "batch"]
    assert batches[:5] == [("batch", 1, b) for b in range(5)] and len(batches) == 10
    assert metrics["stopped_early"] == {"epoch": 2, "reason": "enough"}


def test_a_failing_run_still_ends_its_callbacks(tmp_path, rng):
    store = _store(tmp_path, rng)
    recorder = _Recorder()
    with pytest.raises(ArgumentError, match="loss must return a scalar Tensor"):
        train(store, tmp_path / "run", epochs=2, model=_tiny(), callbacks=[recorder],
              loss=lambda output, target: output, **OPTIONS)
    assert recorder.calls[-1] == ("end", None)


def test_early_stopping_options(rng):
    from sigconv.train.callbacks import Run

    def run_of(keys):
        return Run(out=".", model=None, optimizer=None, schedule=None, task="denoise",
                   metric="psnr", options={}, epochs=9, history=[], record_keys=keys,
                   first_epoch=0)

    stopper = EarlyStopping(patience=2)
    run = run_of(("epoch", "train_loss", "train_psnr", "validation_loss", "validation_psnr"))
    stopper.on_train_begin(run)
    assert (stopper.metric, stopper.mode) == ("validation_psnr", "max")
    without_validation = EarlyStopping()
    without_validation.on_train_begin(run_of(("epoch", "train_loss", "train_psnr")))
    assert without_validation.metric == "train_psnr"
    losses = EarlyStopping("validation_loss", patience=2, min_delta=0.1)
    losses.on_train_begin(run)
    assert losses.mode == "min"
    for epoch, value in enumerate([1.0, 0.95, 0.85, 0.8, 0.78], start=1):
        losses.on_epoch_end(run, epoch, {"validation_loss": value})
        if run.stop_reason:
            break
    # 0.95 is not 0.1 better than 1.0 (wait 1), 0.85 is (best), 0.8 and 0.78 are not: stop
    assert (losses.best, losses.best_epoch) == (0.85, 3)
    assert epoch == 5 and "validation_loss did not improve by more than 0.1 for 2 epochs " \
                          "(best 0.85 at epoch 3)" in run.stop_reason
    with pytest.raises(ArgumentError, match="metric 'validation_dice' is not in the epoch "
                                            "records, which hold epoch, train_loss"):
        EarlyStopping("validation_dice").on_train_begin(run)
    for bad, message in ((dict(patience=0), "patience must be"),
                         (dict(min_delta=-1.0), "min_delta must be >= 0"),
                         (dict(mode="up"), "mode must be one of 'max', 'min'"),
                         (dict(metric=3), "metric must be a key")):
        with pytest.raises(ArgumentError, match=message):
            EarlyStopping(**bad)


def test_model_checkpoint_keeps_the_newest_snapshots(tmp_path, rng):
    store = _store(tmp_path, rng)
    run = tmp_path / "run"
    train(store, run, epochs=5, model=_tiny(), callbacks=[ModelCheckpoint(every=2, keep=1)],
          **OPTIONS)
    assert [p.name for p in sorted(run.glob("epoch-*"))] == ["epoch-0004.safetensors"]
    train(store, tmp_path / "all", epochs=3, model=_tiny(), callbacks=[ModelCheckpoint()],
          **OPTIONS)
    snapshots = ModelCheckpoint.snapshots(tmp_path / "all")
    assert [p.rsplit("/", 1)[1] for p in snapshots] == [
        "epoch-0001.safetensors", "epoch-0002.safetensors", "epoch-0003.safetensors"]
    last = checkpoint.load(tmp_path / "all" / "checkpoint.safetensors")
    model = load_model(snapshots[-1], model=_tiny())           # the last epoch's model
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(value, last[key])
    # a new run in the folder deletes the old run's snapshots with its other files
    train(store, tmp_path / "all", epochs=1, model=_tiny(), overwrite=True, **OPTIONS)
    assert not list((tmp_path / "all").glob("epoch-*"))
    with pytest.raises(ArgumentError, match="every must be"):
        ModelCheckpoint(every=0)


def _scalars(folder):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(folder))
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)]
            for tag in events.Tags()["scalars"]}


def test_tensorboard_event_files_hold_the_metrics(tmp_path, rng):
    pytest.importorskip("tensorboardX", reason="tensorboardX (the tensorboard extra) is not "
                                               "installed")
    pytest.importorskip("tensorboard", reason="tensorboard's event reader is not installed")
    store = _store(tmp_path, rng)
    run = tmp_path / "run"
    train(store, run, epochs=3, model=_tiny(), callbacks=[TensorBoard()], stop_after=2,
          **OPTIONS)
    train(store, run, epochs=3, model=_tiny(), callbacks=[TensorBoard()], resume=True,
          **OPTIONS)
    saved = json.loads((run / "metrics.json").read_text())
    scalars = _scalars(run / "tensorboard")
    for key in ("train_loss", "train_accuracy", "validation_loss", "validation_accuracy",
                "lr", "seconds"):
        steps, values = zip(*scalars[key])
        assert steps == (1, 2, 3)                                  # the resume appended
        np.testing.assert_allclose(values, [h[key] for h in saved["history"]], rtol=1e-6)
    assert scalars["test_accuracy"] == [(3, pytest.approx(saved["test"]["accuracy"]))]
    assert scalars["test_macro_f1"][0][1] == pytest.approx(saved["test"]["macro_f1"], rel=1e-6)
    custom = tmp_path / "logs"
    train(store, tmp_path / "elsewhere", epochs=1, model=_tiny(),
          callbacks=[TensorBoard(custom)], **OPTIONS)
    assert _scalars(custom)["train_loss"][0][0] == 1


def test_tensorboard_without_tensorboardx_names_the_extra(monkeypatch):
    from sigconv.io._common import MissingDependencyError

    monkeypatch.setitem(sys.modules, "tensorboardX", None)   # as if not installed
    with pytest.raises(MissingDependencyError, match=r"needs the package 'tensorboardX'.*"
                                                     r"pip install 'sigconv\[tensorboard\]'"):
        TensorBoard()


def test_mlflow_without_mlflow_says_so(monkeypatch):
    from sigconv.io._common import MissingDependencyError

    monkeypatch.setitem(sys.modules, "mlflow", None)
    with pytest.raises(MissingDependencyError, match="needs the package 'mlflow'.*"
                                                     "pip install mlflow"):
        MLflow()


class _FakeMlflow(types.ModuleType):
    """Records the calls the MLflow callback makes (mlflow's functions of those names)."""

    def __init__(self):
        super().__init__("mlflow")
        self.calls, self.active = [], None

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)

        def call(*args, **kwargs):
            self.calls.append((name, args, kwargs))
            if name == "start_run":
                self.active = "run"
            if name == "end_run":
                self.active = None

        return call

    def active_run(self):
        return self.active


def test_mlflow_logs_params_epochs_and_the_test(tmp_path, rng, monkeypatch):
    fake = _FakeMlflow()
    monkeypatch.setitem(sys.modules, "mlflow", fake)
    store = _store(tmp_path, rng)
    metrics = train(store, tmp_path / "run", epochs=2, model=_tiny(),
                    callbacks=[MLflow(experiment="sigconv-tests", run_name="tiny")], **OPTIONS)
    names = [name for name, _, _ in fake.calls]
    assert names == ["set_experiment", "start_run", "log_params", "set_tag", "log_metrics",
                     "log_metrics", "log_metrics", "log_artifact", "end_run"]
    params = fake.calls[2][1][0]
    assert params["task"] == "classify" and params["epochs"] == "2" and "store" not in params
    _, args, kwargs = fake.calls[5]
    assert kwargs["step"] == 2 and args[0]["validation_accuracy"] == \
        metrics["history"][1]["validation_accuracy"]
    assert fake.calls[6][1][0]["test_accuracy"] == metrics["test"]["accuracy"]
    assert fake.calls[7][1][0].endswith("metrics.json")
    assert fake.calls[-1][2] == {"status": "FINISHED"}


def test_mlflow_logs_into_a_real_tracking_folder(tmp_path, rng):
    mlflow = pytest.importorskip("mlflow", reason="mlflow is not installed")
    store = _store(tmp_path, rng)
    uri = (tmp_path / "mlruns").as_uri()
    metrics = train(store, tmp_path / "run", epochs=2, model=_tiny(),
                    callbacks=[MLflow(tracking_uri=uri, experiment="sigconv")], **OPTIONS)
    client = mlflow.tracking.MlflowClient(uri)
    [found] = client.search_runs([client.get_experiment_by_name("sigconv").experiment_id])
    assert found.data.params["epochs"] == "2"
    assert found.data.metrics["test_accuracy"] == pytest.approx(metrics["test"]["accuracy"])
    history = client.get_metric_history(found.info.run_id, "train_loss")
    assert [m.step for m in history] == [1, 2]
