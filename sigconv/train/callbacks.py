"""Callbacks: code of yours that :func:`sigconv.train.train` calls as it trains.

A callback subclasses :class:`Callback` and overrides the hooks it needs;
``train(..., callbacks=[...])`` calls them in the list's order::

    on_train_begin(run)                       before the first epoch of this call
    on_batch_end(run, epoch, batch, loss)     after each optimiser step
    on_epoch_end(run, epoch, record)          after each epoch is scored and saved
    on_train_end(run, metrics)                after the test (or when this call stops;
                                              metrics is None when training raised)

``epoch`` counts from 1, ``record`` is the epoch's line of ``metrics.json``
(``train_loss``, ``validation_<metric>``, ``lr``, ``seconds``, ...), and
``run`` is the :class:`Run`: the model, the optimiser, the run folder, and
:meth:`Run.stop` to end training after this epoch.

Callbacks are not recorded in the run folder, with one exception: what a
callback returns from :meth:`Callback.state_dict` is saved in ``state.json``
after every epoch and given back to the callback of the same
:attr:`Callback.key` when the run is resumed (so :class:`EarlyStopping`
counts its patience across an interruption).  Pass the same callbacks to a
resumed run.

Here: :class:`EarlyStopping`, :class:`ModelCheckpoint` (a snapshot every
``n`` epochs), :class:`TensorBoard` (scalars through tensorboardX, the
``tensorboard`` extra) and :class:`MLflow` (params and metrics, when mlflow
is installed).
"""
from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable
from typing import Any

from .. import checkpoint, nn, optim
from .._validation import check_choice, check_int, check_real
from ..errors import ArgumentError
from ..io._common import MissingDependencyError, require
from ..typing import PathLike

__all__ = ["Callback", "Run", "EarlyStopping", "ModelCheckpoint", "TensorBoard", "MLflow",
           "SNAPSHOT_PATTERN"]


class Run:
    """What a callback sees of the run that calls it.

    Attributes
    ----------
    out : str
        The run folder.
    model : sigconv.nn.Module
    optimizer : sigconv.optim.Optimizer
    schedule : the learning-rate schedule (stepped once per epoch)
    task : str
        ``"classify"``, ``"denoise"`` or ``"label"``.
    metric : str
        The task's score (``"accuracy"``, ``"psnr"``, ``"dice"``; higher is better).
    options : dict
        The options recorded in ``state.json``.
    epochs : int
        Epochs the run is to train.
    history : list of dict
        The records of the epochs trained so far (a resumed run's earlier ones too).
    record_keys : tuple of str
        The keys every epoch's record holds.
    first_epoch : int
        Epochs trained before this call (0 for a new run).
    stop_reason : str or None
        Set by :meth:`stop`.
    """

    def __init__(self, *, out: str, model: nn.Module, optimizer: optim.Optimizer,
                 schedule: Any, task: str, metric: str, options: dict[str, Any], epochs: int,
                 history: list[dict[str, Any]], record_keys: tuple[str, ...],
                 first_epoch: int) -> None:
        self.out, self.model, self.optimizer, self.schedule = out, model, optimizer, schedule
        self.task, self.metric, self.options, self.epochs = task, metric, options, epochs
        self.history, self.record_keys, self.first_epoch = history, record_keys, first_epoch
        self.stop_reason: str | None = None

    @property
    def resumed(self) -> bool:
        """Whether this call continues a run that had trained before."""
        return self.first_epoch > 0

    def stop(self, reason: object) -> None:
        """End training after this epoch: the run is then finished early, ``reason``
        is recorded (``metrics.json``'s ``"stopped_early"``) and the test runs on the
        best model."""
        self.stop_reason = str(reason)


class Callback:
    """Base class of callbacks: every hook does nothing (see the module docstring)."""

    @property
    def key(self) -> str:
        """The name this callback's :meth:`state_dict` is saved under (its class name;
        a second callback of one class in a list gets ``"#2"`` added)."""
        return type(self).__name__

    def on_train_begin(self, run: Run) -> None:
        pass

    def on_batch_end(self, run: Run, epoch: int, batch: int, loss: float) -> None:
        pass

    def on_epoch_end(self, run: Run, epoch: int, record: dict[str, Any]) -> None:
        pass

    def on_train_end(self, run: Run, metrics: dict[str, Any] | None) -> None:
        pass

    def state_dict(self) -> Any:
        """What must survive a resume, as JSON (None: nothing, the default)."""
        return None

    def load_state_dict(self, state: Any) -> None:
        """Take back what :meth:`state_dict` gave, when the run is resumed."""


def checked_callbacks(callbacks: Iterable[Callback]) -> tuple[list[Callback], list[str]]:
    """``callbacks`` as a list of :class:`Callback` and their keys, or ArgumentError."""
    if isinstance(callbacks, Callback) or isinstance(callbacks, (str, bytes)) or \
            not hasattr(callbacks, "__iter__"):
        raise ArgumentError(f"callbacks must be a list of sigconv.train.callbacks.Callback, "
                            f"got {callbacks!r}")
    callbacks = list(callbacks)
    for callback in callbacks:
        if not isinstance(callback, Callback):
            raise ArgumentError(f"callbacks must be a list of sigconv.train.callbacks.Callback "
                                f"instances, got {callback!r} in it")
    keys: list[str] = []
    seen: dict[str, int] = {}
    for callback in callbacks:
        seen[callback.key] = seen.get(callback.key, 0) + 1
        keys.append(callback.key if seen[callback.key] == 1
                    else f"{callback.key}#{seen[callback.key]}")
    return callbacks, keys


class EarlyStopping(Callback):
    """Stop training when a score has not improved for ``patience`` epochs.

    Parameters
    ----------
    metric : str, optional
        A key of the epoch records (default ``"validation_<task metric>"``, or
        ``"train_<task metric>"`` when the run has no validation items).
    patience : int
        Epochs without improvement after which the run stops.
    min_delta : float >= 0
        A change of at most this much is not an improvement.
    mode : {"max", "min"}, optional
        Whether higher or lower is better (default ``"min"`` for a metric
        ending in ``loss``, else ``"max"``).

    Notes
    -----
    The run then ends as finished: ``metrics.json`` and ``state.json`` record
    ``"stopped_early": {"epoch": k, "reason": ...}``, the test runs on
    ``best.safetensors`` (the best validation score of the task's metric),
    and a resume is refused as for any finished run.  Its counts are saved
    in ``state.json``, so a resumed run keeps its patience.
    """

    def __init__(self, metric: str | None = None, *, patience: int = 5, min_delta: float = 0.0,
                 mode: str | None = None) -> None:
        if metric is not None and not isinstance(metric, str):
            raise ArgumentError(f"metric must be a key of the epoch records (a str), "
                                f"got {metric!r}")
        self.metric, self.mode = metric, mode
        if mode is not None:
            check_choice(mode, "mode", ("max", "min"))
        self.patience = check_int(patience, "patience")
        self.min_delta = check_real(min_delta, "min_delta", minimum=0)
        self.best: float | None = None
        self.best_epoch: int | None = None
        self.wait = 0

    def on_train_begin(self, run: Run) -> None:
        if self.metric is None:
            split = "validation" if f"validation_{run.metric}" in run.record_keys else "train"
            self.metric = f"{split}_{run.metric}"
        if self.metric not in run.record_keys:
            raise ArgumentError(f"EarlyStopping metric {self.metric!r} is not in the epoch "
                                f"records, which hold {', '.join(run.record_keys)}")
        if self.mode is None:
            self.mode = "min" if self.metric.endswith("loss") else "max"

    def _improved(self, value: float) -> bool:
        if not math.isfinite(value):
            return False
        if self.best is None:
            return True
        if self.mode == "max":
            return value > self.best + self.min_delta
        return value < self.best - self.min_delta

    def on_epoch_end(self, run: Run, epoch: int, record: dict[str, Any]) -> None:
        assert self.metric is not None  # on_train_begin chose it
        value = float(record[self.metric])
        if self._improved(value):
            self.best, self.best_epoch, self.wait = value, epoch, 0
        else:
            self.wait += 1
        if self.wait >= self.patience:
            best = "never finite" if self.best is None else \
                f"best {self.best:.6g} at epoch {self.best_epoch}"
            run.stop(f"{self.metric} did not improve by more than {self.min_delta:g} for "
                     f"{self.patience} epochs ({best})")

    def state_dict(self) -> dict[str, Any]:
        return {"metric": self.metric, "mode": self.mode, "best": self.best,
                "best_epoch": self.best_epoch, "wait": self.wait}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.metric not in (None, state["metric"]):
            raise ArgumentError(f"EarlyStopping watches {self.metric!r}, the run being "
                                f"resumed watched {state['metric']!r}")
        self.metric, self.mode = state["metric"], state["mode"]
        self.best, self.best_epoch, self.wait = state["best"], state["best_epoch"], state["wait"]


#: The file names :class:`ModelCheckpoint` writes in a run folder (a glob).
SNAPSHOT_PATTERN = "epoch-*.safetensors"
_SNAPSHOT = re.compile(r"epoch-(\d+)\.safetensors")


class ModelCheckpoint(Callback):
    """Keep the model of every ``every``-th epoch as ``RUN/epoch-0005.safetensors``.

    The run folder always holds the last epoch's model
    (``checkpoint.safetensors``) and the best one (``best.safetensors``);
    this adds snapshots, written atomically, of which the newest ``keep``
    are kept (all when None).  ``load_model("RUN/epoch-0005.safetensors")``
    loads one, and ``overwrite=True`` deletes them with the run.
    """

    def __init__(self, every: int = 1, *, keep: int | None = None) -> None:
        self.every = check_int(every, "every")
        self.keep = None if keep is None else check_int(keep, "keep")

    @staticmethod
    def snapshots(out: PathLike) -> list[str]:
        """The snapshot files in run folder ``out``, oldest epoch first."""
        found: list[tuple[int, str]] = []
        for name in os.listdir(out):
            match = _SNAPSHOT.fullmatch(name)
            if match:
                found.append((int(match.group(1)), os.path.join(out, name)))
        return [path for _, path in sorted(found)]

    def on_epoch_end(self, run: Run, epoch: int, record: dict[str, Any]) -> None:
        if epoch % self.every:
            return
        checkpoint.save(run.model, os.path.join(run.out, f"epoch-{epoch:04d}.safetensors"))
        if self.keep is not None:
            for path in self.snapshots(run.out)[:-self.keep]:
                os.unlink(path)


def _numbers(mapping: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """The int and float values of ``mapping`` (not bools), keys prefixed."""
    return {prefix + k: float(v) for k, v in mapping.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)}


class TensorBoard(Callback):
    """Write each epoch's numbers as TensorBoard scalars (needs the ``tensorboard`` extra).

    Every number of an epoch's record (``train_loss``, ``train_<metric>``,
    ``validation_loss``, ``validation_<metric>``, ``lr``, ``seconds``) is a
    scalar of that tag at step ``epoch``, and the test scores are
    ``test_<name>`` at the last epoch.  ``log_dir`` defaults to
    ``RUN/tensorboard``; a resumed run appends to it (events at or after the
    resumed epoch left by an interrupted run are purged).  View it with
    ``tensorboard --logdir RUN/tensorboard``.
    """

    def __init__(self, log_dir: PathLike | None = None) -> None:
        self._writer_class = require("tensorboardX", "tensorboard",
                                     "the TensorBoard callback").SummaryWriter
        self.log_dir = None if log_dir is None else os.fspath(log_dir)
        self.writer: Any = None  # tensorboardX SummaryWriter, open from on_train_begin

    def on_train_begin(self, run: Run) -> None:
        folder = self.log_dir or os.path.join(run.out, "tensorboard")
        # one file per call, named after its first epoch: a resume in the same second as
        # the last call's end must not reopen (and truncate) that call's file
        self.writer = self._writer_class(
            folder, purge_step=run.first_epoch + 1 if run.resumed else None,
            filename_suffix=f".epoch-{run.first_epoch + 1:06d}")

    def on_epoch_end(self, run: Run, epoch: int, record: dict[str, Any]) -> None:
        for tag, value in _numbers({k: v for k, v in record.items() if k != "epoch"}).items():
            self.writer.add_scalar(tag, value, epoch)
        self.writer.flush()

    def on_train_end(self, run: Run, metrics: dict[str, Any] | None) -> None:
        if self.writer is None:
            return
        if metrics and metrics.get("test"):
            step = metrics["history"][-1]["epoch"] if metrics["history"] else 0
            for tag, value in _numbers(metrics["test"], "test_").items():
                self.writer.add_scalar(tag, value, step)
        self.writer.close()
        self.writer = None


#: Longest parameter value MLflow accepts everywhere (older servers: 500 characters).
_MLFLOW_PARAM_LENGTH = 500


class MLflow(Callback):
    """Log a run's options as MLflow params and its numbers as metrics (needs mlflow).

    At the start: the options of ``state.json`` (epochs, batch size, learning
    rate, seed, model, optimiser, ...) as params and the run folder as the
    tag ``sigconv.run``; after each epoch: the record's numbers at step
    ``epoch``; at the end: the test scores as ``test_<name>`` and
    ``metrics.json`` as an artifact.  It logs into the active MLflow run, or
    starts one (named ``run_name``, in ``experiment`` when given) and ends
    it.  ``tracking_uri`` is passed to ``mlflow.set_tracking_uri``.
    """

    def __init__(self, *, experiment: str | None = None, run_name: str | None = None,
                 tracking_uri: str | None = None) -> None:
        try:
            import mlflow  # type: ignore[import-not-found,unused-ignore]  # optional, untyped here
        except ImportError as exc:
            raise MissingDependencyError(
                f"the MLflow callback needs the package 'mlflow', which is not installed "
                f"({exc}); install it with: pip install mlflow") from None
        self.mlflow = mlflow
        self.experiment, self.run_name, self.tracking_uri = experiment, run_name, tracking_uri
        self._owns_run = False

    def on_train_begin(self, run: Run) -> None:
        mlflow = self.mlflow
        if self.tracking_uri is not None:
            mlflow.set_tracking_uri(self.tracking_uri)
        if self.experiment is not None:
            mlflow.set_experiment(self.experiment)
        if mlflow.active_run() is None:
            mlflow.start_run(run_name=self.run_name)
            self._owns_run = True
        params = {"task": run.task, **{k: v for k, v in run.options.items() if k != "store"}}
        mlflow.log_params({k: str(v)[:_MLFLOW_PARAM_LENGTH] for k, v in params.items()})
        mlflow.set_tag("sigconv.run", os.path.abspath(run.out))

    def on_epoch_end(self, run: Run, epoch: int, record: dict[str, Any]) -> None:
        self.mlflow.log_metrics(_numbers({k: v for k, v in record.items() if k != "epoch"}),
                                step=epoch)

    def on_train_end(self, run: Run, metrics: dict[str, Any] | None) -> None:
        mlflow = self.mlflow
        if metrics and metrics.get("test"):
            step = metrics["history"][-1]["epoch"] if metrics["history"] else 0
            mlflow.log_metrics(_numbers(metrics["test"], "test_"), step=step)
            mlflow.log_artifact(os.path.join(run.out, "metrics.json"))
        if self._owns_run:
            mlflow.end_run(status="FINISHED" if metrics is not None else "FAILED")
            self._owns_run = False
