"""The training loop behind ``sigconv train``, the same for every task.

``train(store, out)`` fits a model on the store's ``"train"`` items, scores
it on the ``"validation"`` items (or a stable tenth of the training items
when the store has none) after every epoch and on ``"test"`` at the end
with the best model.  What is learnt (classes, denoising, per-sample labels)
is a :mod:`~sigconv.train.tasks` task, told from the records or chosen.

A run folder holds::

    checkpoint.safetensors  the model after the last finished epoch
    optimizer.safetensors   the optimiser's state (Adam's moments, SGD's momentum, ...)
    best.safetensors        the model with the best validation score
    state.json              epoch, history, the task's state, the options, whether the
                            run stopped early or finished, the callbacks' state
    metrics.json            {"history": [one record per epoch], "test": {...},
                            "stopped_early": None or {"epoch", "reason"}}
    metrics.csv             the history as a table
    *.png                   curves, confusion, kernels, feature maps, example
    epoch-*.safetensors     snapshots (:class:`~sigconv.train.callbacks.ModelCheckpoint`)
    tensorboard/            scalars (:class:`~sigconv.train.callbacks.TensorBoard`)

The model, loss, optimiser and schedule may be the user's (see :func:`train`);
:mod:`~sigconv.train.callbacks` are called as it trains.

Every file is written atomically.  ``resume=True`` continues from
``state.json``; because each epoch's batches (noise, dropout masks) come
from ``(seed, epoch)``, each item's augmentation from ``(seed, epoch, item)``
(:func:`sigconv.transforms.item_rng`), and the kernels are deterministic, a
resumed run ends with the same model, bit for bit, as an uninterrupted one
(given the same kernel paths: see docs/train.md on auto-tuning).  A
non-finite loss stops the run with :class:`TrainingError` and leaves the
last good checkpoint in place.
"""
from __future__ import annotations

import contextlib
import csv
import glob
import io
import json
import math
import os
import sys
import time
import types
from collections.abc import Callable, Iterable, Sequence
from typing import IO, Any, overload

import numpy as np

from . import tasks as _tasks
from .. import checkpoint, nn, optim, transforms
from .._atomic import atomic_write_bytes
from .._lock import folder_lock
from ..data import Store
from .._validation import check_int, check_positive_real
from ..autograd import Tensor
from ..errors import ArgumentError, DTypeError, ShapeError, SigconvError
from ..io import Signal
from .callbacks import SNAPSHOT_PATTERN, Callback, Run, checked_callbacks
from .items import (_arrays, _augmented_items, _items, _loss_value, _output_data, _scored_items,
                    _split_items, _StoredItems)
from .plots import plot_run
from .tasks import MODELS, TASKS, Pair, Task, task_of
from ..typing import PathLike, Seed

__all__ = ["train", "load_model", "make_model", "TrainingError", "RunFinishedError",
           "RUN_FILES", "RUN_PATTERNS"]


class TrainingError(SigconvError, RuntimeError):
    """Training cannot go on (for example the loss became NaN or infinite)."""


#: Values of ``train(augment=...)`` that name a preset strength of
#: :func:`sigconv.transforms.preset` (None is "none").
AUGMENT_STRENGTHS = ("none", "light", "default", "strong")


def _transform(augment: Any, task_name: str, kind: str | None) -> Any:
    """The training items' transform for ``augment`` (a strength or a transform), or None."""
    if augment is None or isinstance(augment, str):
        strength = "none" if augment is None else augment
        if strength not in AUGMENT_STRENGTHS:
            raise ArgumentError(f"augment must be one of {', '.join(AUGMENT_STRENGTHS)}, None "
                                f"or a transform (a callable(signal, rng)), got {augment!r}")
        if kind is None and strength in ("none", "default"):
            return None  # records that name no data kind: nothing to choose a preset by
    elif not callable(augment):
        raise ArgumentError(f"augment must be one of {', '.join(AUGMENT_STRENGTHS)}, None or a "
                            f"transform (a callable(signal, rng)), got {augment!r}")
    if kind is None:
        raise ArgumentError(f"augment={augment!r} needs the data kind of the items, and the "
                            "store's records name none (a 'kind' field, as sigconv prepare "
                            "and datasets/*.py write)")
    return transforms.preset(task_name, kind, strength) if isinstance(augment, str) else augment


@overload
def _describe(thing: None) -> None: ...


@overload
def _describe(thing: object) -> dict[str, Any]: ...


def _describe(thing: object) -> dict[str, Any] | None:
    """What ``state.json`` records of a transform, loss, model or schedule (as it will read
    back), or None.

    A sigconv transform by :func:`sigconv.transforms.describe`; a function by its
    qualified name (``{"function": ...}``); any other object by its class's.
    """
    if thing is None:
        return None
    if isinstance(thing, transforms.Transform):
        return json.loads(json.dumps(transforms.describe(thing)))
    if isinstance(thing, (types.FunctionType, types.BuiltinFunctionType, types.MethodType)):
        return {"function": f"{thing.__module__}.{thing.__qualname__}"}
    kind = type(thing)
    return {"class": f"{kind.__module__}.{kind.__qualname__}"}


#: Mixed into the seed of the dropout masks, so they differ from the batch order's draws.
_DROPOUT_TAG = 0xD50


def _reseed_dropout(net: nn.Module, seed: int, epoch: int) -> None:
    """Every Dropout layer of ``net`` draws its masks from ``(seed, epoch)`` this epoch, so a
    resumed run draws the same masks as an uninterrupted one."""
    for layer in net.modules():
        if isinstance(layer, nn.Dropout):
            layer.rng = np.random.default_rng((seed, epoch, _DROPOUT_TAG))


def make_model(in_channels: int, num_classes: int, ndim: int, seed: Seed) -> nn.Module:
    """The default classifier for items of ``ndim`` spatial axes."""
    return _tasks._build("classifier", in_channels, num_classes, ndim, seed)


def _save_json(path: str, value: Any) -> None:
    atomic_write_bytes(path, json.dumps(value, indent=1, sort_keys=True).encode())


def _optimizer_params(optimizer: optim.Optimizer) -> list[Tensor]:
    """Every parameter of ``optimizer``, group by group: the order its saved state is keyed by."""
    return [p for group in optimizer.param_groups for p in group["params"]]


def _save_optimizer(optimizer: optim.Optimizer, path: str) -> None:
    """Write each parameter's optimiser state (Adam's moments and step, SGD's velocity,
    ...): arrays as ``"<index>.<name>"`` tensors, numbers in the metadata."""
    arrays: dict[str, np.ndarray[Any, Any]] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for i, p in enumerate(_optimizer_params(optimizer)):
        for name, value in optimizer.state.get(id(p), {}).items():
            if isinstance(value, np.ndarray):
                arrays[f"{i}.{name}"] = value
            elif isinstance(value, (bool, int, float, np.generic)):
                scalars.setdefault(str(i), {})[name] = value.item() \
                    if isinstance(value, np.generic) else value
            else:
                raise TrainingError(f"cannot save the state {name!r} of "
                                    f"{type(optimizer).__name__} ({type(value).__name__}): an "
                                    "optimizer's state must hold arrays and numbers")
    checkpoint.save(arrays, path, metadata={"scalars": json.dumps(scalars)})


def _load_optimizer(optimizer: optim.Optimizer, path: str) -> None:
    """Give ``optimizer`` the state :func:`_save_optimizer` wrote (or, from runs before it,
    Adam's ``"steps"``); refuses state that does not fit its parameters."""
    arrays, metadata = checkpoint.load(path, with_metadata=True)
    if "scalars" in metadata:
        scalars = json.loads(metadata["scalars"])
    else:  # written before optimisers other than Adam were saved
        scalars = {k: {"step": step} for k, step in json.loads(metadata["steps"]).items()}
    states: dict[str, dict[str, Any]] = {}
    for key, array in arrays.items():
        index, name = key.split(".", 1)
        states.setdefault(index, {})[name] = array.copy()
    for index, values in scalars.items():
        states.setdefault(index, {}).update(values)
    params = _optimizer_params(optimizer)
    for index, state in states.items():
        i = int(index)
        wrong = i >= len(params) or any(
            isinstance(v, np.ndarray) and v.shape != params[i].shape for v in state.values())
        if wrong:
            have = "no such parameter" if i >= len(params) else f"shape {params[i].shape}"
            raise ArgumentError(f"the optimizer state in {path} does not fit the optimizer: it "
                                f"holds state for parameter {i} ({have} here); resume with the "
                                "model and optimizer the run was trained with")
        optimizer.state[id(params[i])] = state


def _metrics(history: list[dict[str, Any]], test: dict[str, Any],
             stopped: dict[str, Any] | None) -> dict[str, Any]:
    """What ``metrics.json`` holds and :func:`train` returns."""
    return {"history": history, "test": test, "stopped_early": stopped}


def _write_metrics(out: str, metrics: dict[str, Any]) -> None:
    history = metrics["history"]
    _save_json(os.path.join(out, "metrics.json"), metrics)
    fields = list(dict.fromkeys(k for record in history for k in record))
    text = io.StringIO()
    writer = csv.DictWriter(text, fields)
    writer.writeheader()
    writer.writerows(history)
    atomic_write_bytes(os.path.join(out, "metrics.csv"), text.getvalue().encode())


def _input_spec(record: dict[str, Any]) -> dict[str, Any]:
    """What :func:`predict` needs to turn a file into an item like the store's."""
    keys = ("kind", "sample_rate", "spectrogram", "converter")
    return {k: record[k] for k in keys if k in record}


def _run_files(run: PathLike) -> tuple[str, str]:
    """``(run folder, weights file)`` of a run folder (its best model) or of a checkpoint in one."""
    run = os.fspath(run)
    if os.path.isfile(run):
        return os.path.dirname(os.path.abspath(run)), run
    return run, os.path.join(run, "best.safetensors")


def _read_state(run: PathLike) -> dict[str, Any]:
    path = os.path.join(_run_files(run)[0], "state.json")
    if not os.path.isfile(path):
        raise ArgumentError(f"{path} does not exist: not a run folder made by sigconv train")
    with open(path, encoding="utf-8") as handle:
        state: dict[str, Any] = json.load(handle)
    return state


def _run_task(state: dict[str, Any]) -> Task:
    return TASKS[state["task"]](state["task_state"], state["options"]["seed"])


def _is_own_model(recorded: Any) -> bool:
    """Whether a run's recorded model (``task_state["model"]``) is a user's, not one of
    :data:`MODELS` (whose architecture ``state.json`` rebuilds)."""
    return not isinstance(recorded, str)


def _load_weights(model: nn.Module, path: str, recorded: Any) -> nn.Module:
    """Load the weights file ``path`` into ``model``; a state dict that does not fit names
    the file, the model given and the one the run trained."""
    weights = checkpoint.load(path)
    try:
        model.load_state_dict(weights)
    except (ArgumentError, ShapeError, DTypeError) as exc:
        trained = recorded.get("class") if _is_own_model(recorded) else recorded
        raise type(exc)(f"the weights in {path} do not fit the model given "
                        f"({type(model).__name__}; the run trained {trained}): {exc}") from None
    return model


def _ready(model: nn.Module, path: str, task: Task) -> nn.Module:
    """``model`` given the weights in ``path`` and the task's classes, in eval mode."""
    _load_weights(model, path, task.state["model"])
    model.classes = task.state.get("classes")
    return model.eval()


def _checked_module(model: object) -> nn.Module:
    """``model`` if it is a sigconv Module instance, else ArgumentError."""
    if isinstance(model, type) and issubclass(model, nn.Module):
        raise ArgumentError(f"model must be a Module instance (e.g. {model.__name__}(...)), "
                            f"got the class {model.__name__}")
    if not isinstance(model, nn.Module):
        raise ArgumentError(f"model must be one of {', '.join(MODELS)} or a sigconv.nn.Module "
                            f"instance, got {model!r}")
    return model


def load_model(run: PathLike, *, model: nn.Module | None = None) -> nn.Module:
    """A run's model in eval mode (``model.classes`` when it has classes).

    ``run`` is a run folder (its best model) or a checkpoint file in one
    (e.g. ``runs/x/checkpoint.safetensors``, the last epoch's model).  The
    architecture of a built-in model (:data:`MODELS`) is rebuilt from
    ``state.json``.  A run trained with a model of yours records only its
    class: pass ``model``, an instance of the same architecture, and it is
    given the run's weights (and returned).
    """
    state = _read_state(run)
    task = _run_task(state)
    recorded = state["task_state"]["model"]
    if model is None:
        if _is_own_model(recorded):
            raise ArgumentError(f"the run in {_run_files(run)[0]!r} was trained with a model of "
                                f"yours ({recorded['class']}), whose architecture state.json "
                                "does not hold: pass an instance of it, "
                                "load_model(run, model=...), and it gets the run's weights")
        model = task.model(state["in_channels"], state["ndim"], state["options"]["seed"])
    return _ready(_checked_module(model), _run_files(run)[1], task)


def _check_options(epochs: int, batch_size: int, lr: float | None, task_class: type[Task],
                   model: Any) -> tuple[int, int, float | None]:
    """``(epochs, batch_size, lr)`` as int, int, float (lr None stays None), or ArgumentError."""
    epochs, batch_size = check_int(epochs, "epochs"), check_int(batch_size, "batch_size")
    lr = None if lr is None else check_positive_real(lr, "lr")
    if isinstance(model, str) and model not in task_class.models:
        raise ArgumentError(f"model {model!r} does not do task {task_class.name!r}; it takes "
                            f"{', '.join(task_class.models)} (all models: {', '.join(MODELS)})")
    if model is not None and not isinstance(model, str):
        _checked_module(model)
    return epochs, batch_size, lr


def _recorded_model(model: Any, task_class: type[Task], saved: dict[str, Any] | None,
                    out: str) -> Any:
    """What ``state.json`` records of the model: a name of :data:`MODELS`, or the class of
    a model of the user's; on resume, refuses a model other than the run's."""
    given = None if model is None else model if isinstance(model, str) else \
        dict(_describe(model), parameters=sum(p.size for p in model.parameters()))
    if saved is None:
        return given or task_class.models[0]
    recorded = saved["task_state"]["model"]
    if _is_own_model(recorded) and not isinstance(given, dict):
        raise ArgumentError(f"the run in {out!r} was trained with a model of yours "
                            f"({recorded['class']}): resume it with model= an instance of the "
                            "same architecture (the run gives the weights)")
    if not _is_own_model(recorded) and given is not None and given != recorded:
        raise ArgumentError(f"the run in {out!r} trains the model {recorded!r}: resume it "
                            f"with that model (or none), not {model!r}")
    return given or recorded


def _optimizer(optimizer: Any, params: list[Tensor], lr: float | None) -> optim.Optimizer:
    """The run's optimiser: Adam(``lr``), ``optimizer(params)``, or ``optimizer`` itself;
    refuses one that updates tensors that are not the model's parameters."""
    if optimizer is None:
        assert lr is not None  # train gives the default optimiser the task's lr
        return optim.Adam(params, lr=lr)
    if isinstance(optimizer, optim.Optimizer):
        made = optimizer
    elif callable(optimizer):
        made = optimizer(params)
        if not isinstance(made, optim.Optimizer):
            raise ArgumentError(f"optimizer (a factory params -> Optimizer) returned "
                                f"{type(made).__name__}, not a sigconv.optim.Optimizer")
    else:
        raise ArgumentError(f"optimizer must be a sigconv.optim.Optimizer or a factory "
                            f"params -> Optimizer, got {optimizer!r}")
    own = {id(p) for p in params}
    if any(id(p) not in own for p in _optimizer_params(made)):
        raise ArgumentError("the optimizer holds tensors that are not the model's parameters: "
                            "build it on model.parameters() of the model passed as model=, or "
                            "pass a factory (params -> Optimizer)")
    return made


def _schedule(schedule: Any, optimizer: optim.Optimizer, epochs: int) -> Any:
    """The run's learning-rate schedule: cosine over ``epochs``, ``schedule(optimizer)``,
    or ``schedule`` itself (built on the run's optimiser)."""
    if schedule is None:
        return optim.CosineAnnealingLR(optimizer, epochs)
    if callable(getattr(schedule, "step", None)) and not isinstance(schedule, type):
        made = schedule
        if getattr(made, "optimizer", optimizer) is not optimizer:
            raise ArgumentError("the schedule was built on another optimizer than the run's: "
                                "pass the optimizer it was built on as optimizer=, or a "
                                "factory (optimizer -> schedule)")
    elif callable(schedule):
        made = schedule(optimizer)
        if not callable(getattr(made, "step", None)):
            raise ArgumentError(f"schedule (a factory optimizer -> schedule) returned "
                                f"{type(made).__name__}, which has no step()")
    else:
        raise ArgumentError(f"schedule must be a learning-rate schedule (with step()) or a "
                            f"factory optimizer -> schedule, got {schedule!r}")
    return made


def _describe_optimizer(optimizer: optim.Optimizer) -> dict[str, Any]:
    """The optimiser's class and each group's hyper-parameters, as ``state.json`` holds them."""
    groups = [dict({k: v for k, v in group.items() if k != "params"},
                   params=len(group["params"])) for group in optimizer.param_groups]
    return dict(_describe(optimizer), param_groups=json.loads(json.dumps(groups, default=str)))


#: The parts of a run that resume refuses to change: what is recorded of each in the
#: options, and which of its entries must match (the class: hyper-parameters may change).
_FIXED_ON_RESUME = {"augment": "augmentation", "loss": "loss", "optimizer": "optimizer",
                    "schedule": "schedule"}


def _refuse_changes(out: str, recorded: dict[str, Any], options: dict[str, Any]) -> None:
    """ArgumentError when a resumed run is given another augmentation, loss, optimiser
    class or schedule class than it was trained with (runs that predate a part's record
    are not checked for it)."""
    for key, what in _FIXED_ON_RESUME.items():
        if key not in recorded:
            continue
        before, now = recorded[key], options[key]
        if key in ("optimizer", "schedule"):
            before, now = (None if d is None else {k: v for k, v in d.items()
                                                    if k in ("class", "function")}
                           for d in (before, now))
        if before != now:
            raise ArgumentError(f"cannot resume {out!r} with another {what}: the run used "
                                f"{json.dumps(before)}, this call gives {json.dumps(now)}")


#: The files a run writes: a folder holding any of them holds a run, and
#: ``overwrite=True`` deletes them (and nothing else) before training.
RUN_FILES = ("state.json", "checkpoint.safetensors", "optimizer.safetensors",
             "best.safetensors", "metrics.json", "metrics.csv", "curves.png", "confusion.png",
             "kernels.png", "feature_maps.png", "example.png")

#: What the callbacks write in a run folder, as globs: ``overwrite=True`` deletes these too.
RUN_PATTERNS = (SNAPSHOT_PATTERN, os.path.join("tensorboard", "events.out.tfevents.*"))


def _existing_run_files(out: str) -> list[str]:
    """The run's files present in ``out`` (:data:`RUN_FILES`, then :data:`RUN_PATTERNS`)."""
    names = [name for name in RUN_FILES if os.path.lexists(os.path.join(out, name))]
    for pattern in RUN_PATTERNS:
        names += sorted(os.path.relpath(path, out)
                        for path in glob.glob(os.path.join(glob.escape(out), pattern)))
    return names


def _is_finished(state: dict[str, Any]) -> bool:
    """Whether a saved run has finished: tested after its last epoch, or stopped early
    (runs saved before this was recorded: trained all their epochs)."""
    return state.get("finished", state["epoch"] >= state["options"]["epochs"])


class RunFinishedError(ArgumentError):
    """``resume=True`` on a run that has finished: nothing is left to train.

    ``metrics_path`` is its ``metrics.json``, ``test`` its test scores.
    """

    def __init__(self, message: str, metrics_path: str, test: dict[str, Any]) -> None:
        super().__init__(message)
        self.metrics_path, self.test = metrics_path, test


def _finished_error(out: str, state: dict[str, Any]) -> RunFinishedError:
    """The :class:`RunFinishedError` for the finished run in ``out``."""
    path = os.path.join(out, "metrics.json")
    try:
        with open(path, encoding="utf-8") as handle:
            test = json.load(handle).get("test") or {}
    except (OSError, ValueError):
        test = {}
    metric = TASKS[state["task"]].metric
    stopped = state.get("stopped_early")
    how = (f"stopped early at epoch {stopped['epoch']} of {state['options']['epochs']}: "
           f"{stopped['reason']}" if stopped else f"all {state['epoch']} epochs trained")
    score = (f"its test {metric} is {test[metric]:.4f}" if metric in test
             else "it has no test score (the store has no test items)")
    return RunFinishedError(f"the run in {out!r} is finished ({how}); {score}, and its metrics "
                            f"are in {path}. Nothing is left to resume: to train more, start "
                            "a new run (--overwrite, or another --out)", path, test)


def _run_folder_state(out: str, resume: bool, overwrite: bool) -> dict[str, Any] | None:
    """The saved state of the run to resume, or None for a new run; refuses (ArgumentError)
    to resume without a run or a finished run (:class:`RunFinishedError`), and to start a
    run over an existing one without ``overwrite``."""
    if resume and overwrite:
        raise ArgumentError("resume and overwrite exclude each other: resume continues the "
                            f"run in {out!r}, overwrite replaces it; pass one of them")
    if os.path.exists(out) and not os.path.isdir(out):
        raise ArgumentError(f"run folder {out!r} is a file, not a folder")
    state_path = os.path.join(out, "state.json")
    if resume:
        if not os.path.isfile(state_path):
            raise ArgumentError(f"cannot resume: {state_path} does not exist")
        state = _read_state(out)
        if _is_finished(state):
            raise _finished_error(out, state)
        return state
    existing = _existing_run_files(out) if os.path.isdir(out) else []
    if existing and not overwrite:
        shown = ", ".join(existing[:3]) + (", ..." if len(existing) > 3 else "")
        raise ArgumentError(f"run folder {out!r} already holds a run ({shown}); continue it "
                            "with --resume (resume=True), replace it with --overwrite "
                            "(overwrite=True), or choose another folder")
    return None


def _summary(record: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v:.4f}" for k, v in record.items() if k != "epoch")


def train(store: PathLike, out: PathLike, *, epochs: int | None = None,
          batch_size: int | None = None, lr: float | None = None, seed: int = 0,
          resume: bool = False, overwrite: bool = False, validation: float = 0.1,
          task: str | None = None, model: str | nn.Module | None = None,
          noise: float | None = None, patch: int | Sequence[int] | None = None,
          augment: str | Callable[..., Signal] | None = "default", stop_after: int | None = None,
          progress: bool = True, log: IO[str] | None = sys.stderr,
          loss: Callable[[Any, Any], Tensor] | None = None,
          optimizer: optim.Optimizer | Callable[[list[Tensor]], optim.Optimizer] | None = None,
          schedule: Any = None, callbacks: Iterable[Callback] = (),
          client: Any = None) -> dict[str, Any]:
    """Train a model on a store; return the metrics (as in metrics.json).

    Parameters
    ----------
    store : str or os.PathLike
        A prepared store whose items have a ``split`` (and a ``label`` to classify).
    out : str or os.PathLike
        Run folder (created; with ``resume`` the run to continue).  A folder
        that already holds a run is refused unless ``resume`` or ``overwrite``
        is given.  The run holds an exclusive lock on ``out/.lock`` while it
        trains: a second ``train`` on the same folder fails at once with
        :class:`TrainingError` naming the holder's pid.
    epochs, batch_size, lr : int, int, float, optional
        Passes over the training items, items (or crops) per step and Adam's
        learning rate (with a cosine schedule); by default the task's
        ``epochs``, ``batch_size`` and ``lr``: 60, 32 and 2e-3 to classify,
        25, 2 and 2e-3 to denoise, 40, 2 and 5e-3 to label (a resumed run:
        the run's own).  ``lr`` is for the default optimiser only.
    seed : int
    resume : bool
        Continue the run in ``out`` from its ``state.json``.  A finished run
        (tested, or stopped early) is refused with :class:`RunFinishedError`,
        naming its test score and its ``metrics.json``.
    overwrite : bool
        Replace the run in ``out``: its files (:data:`RUN_FILES`, and the
        callbacks' :data:`RUN_PATTERNS`) are deleted first, other files in the
        folder are left alone.
    validation : float
        Fraction of training items held out when the store has no
        ``"validation"`` split.
    task : {"classify", "denoise", "label"}, optional
        What to learn (default: "classify" when the records have labels,
        "label" when their items carry a label channel).  A store the task
        cannot learn from is refused before training (see docs/train.md).
    model : str or sigconv.nn.Module, optional
        One of :data:`~sigconv.train.tasks.MODELS` that does the task
        (default: the task's first), or a model of yours: it takes the
        task's batches (classify: a Tensor of a Ragged batch ``(N, C,
        *spatial)``; dense tasks: crops ``(N, C, *patch)``) and returns
        ``(N, classes)`` logits, ``(N, C, *patch)`` signals (denoise) or
        ``(N, classes, *patch)`` logits (label).  ``state.json`` records its
        class only: resume with ``model=`` an instance of the same
        architecture, and load it with ``load_model(run, model=...)``.
    noise : float, optional
        Dense tasks: standard deviation of the added Gaussian noise in the
        store's units (denoise default: 5% of the training data's range;
        label default: 0).
    patch : int or sequence of int, optional
        Dense tasks: training crop size per spatial axis (default 32; on
        waveform and spectrogram items it must be given); evaluation slides
        windows of twice this size over whole items.
    augment : {"default", "light", "strong", "none"}, None or a transform
        Augmentation of the training items, drawn afresh each epoch: a
        strength of :func:`sigconv.transforms.preset` for the task and the
        items' kind, or any ``transform(signal, rng) -> Signal`` (see
        :mod:`sigconv.transforms`).  Validation and test items are never
        augmented.  What was used is recorded in ``state.json``; a resumed
        run must be given the same.
    stop_after : int, optional
        Run at most this many epochs in this call and stop as an interrupted
        run would (continue later with ``resume=True``).
    loss : callable, optional
        ``loss(output, target) -> Tensor`` (a scalar), given the model's
        output and the task's targets (classify: class indices ``(N,)``;
        denoise: the clean crops, an array ``(N, C, *patch)`` or a Ragged;
        label: class indices ``(N, 1, *patch)``); default the task's.
    optimizer : sigconv.optim.Optimizer or callable, optional
        An optimiser built on the model's parameters, or a factory
        ``params -> Optimizer`` (default ``Adam(params, lr)``).  Its state
        (any of sigconv's optimisers) is saved every epoch to resume exactly.
    schedule : schedule or callable, optional
        A learning-rate schedule built on ``optimizer``, or a factory
        ``optimizer -> schedule``; stepped once per epoch (a resumed run
        steps a new one through the epochs done, so it must depend on the
        epoch count only, as sigconv's do).  Default: cosine over ``epochs``.
        A resumed run needs new instances (or factories), not the ones an
        earlier call stepped.
    callbacks : list of sigconv.train.callbacks.Callback
        Called as the run trains (:mod:`sigconv.train.callbacks`:
        EarlyStopping, ModelCheckpoint, TensorBoard, MLflow).
    client : distributed.Client, optional
        Train on a Dask cluster's workers: synchronous data parallelism, each
        global batch split over the workers, which read their items from
        ``store`` (a path every worker can read), the gradients averaged and
        the optimiser stepped here (:mod:`sigconv.train.distributed`; every
        task).  Validation, test and the run's files stay here.  A cluster
        left without workers raises ClusterError naming the last checkpoint.

    Notes
    -----
    A resumed run refuses another augmentation, loss, optimiser class or
    schedule class than the run's (hyper-parameters such as ``lr`` may change).

    Returns
    -------
    dict
        ``{"history": [one record per epoch], "test": {...}, "stopped_early":
        None or {"epoch", "reason"}}`` (``test`` is empty when ``stop_after``
        paused the run).
    """
    out = os.fspath(out)
    source = Store(store)
    train_records, val_records, test_records = _split_items(source, validation)
    saved = _run_folder_state(out, resume, overwrite)  # refuse before creating anything
    task_name = task if saved is None else saved["task"]
    task_class = task_of(train_records, task_name)
    recorded = {} if saved is None else saved["options"]
    if epochs is None:
        epochs = recorded.get("epochs", task_class.epochs)
    if batch_size is None:
        batch_size = recorded.get("batch_size", task_class.batch_size)
    if optimizer is not None and lr is not None:
        raise ArgumentError("lr is the default optimizer's learning rate: with optimizer= "
                            "give the learning rate to the optimizer, not lr=")
    if lr is None and optimizer is None:
        lr = recorded.get("lr") or task_class.lr
    epochs, batch_size, lr = _check_options(epochs, batch_size, lr, task_class, model)
    callbacks, callback_keys = checked_callbacks(callbacks)
    if loss is not None and not callable(loss):
        raise ArgumentError(f"loss must be a callable (output, target) -> Tensor, got {loss!r}")
    transform = _transform(augment, task_class.name, train_records[0].get("kind"))
    options = {"epochs": epochs, "batch_size": batch_size, "lr": lr, "seed": seed,
               "store": os.path.abspath(os.fspath(store)), "noise": noise, "patch": patch,
               "model": _recorded_model(model, task_class, saved, out),
               "augment": _describe(transform), "loss": _describe(loss)}
    if saved is None:
        task_class.check_records(train_records, val_records + test_records, options)
    if client is not None:
        from . import distributed as _distributed

        _distributed.check_client(client)
    parts = {"model": None if model is None or isinstance(model, str) else model,
             "loss": loss, "optimizer": optimizer, "schedule": schedule,
             "callbacks": dict(zip(callback_keys, callbacks)), "client": client}
    os.makedirs(out, exist_ok=True)
    with folder_lock(out, what="run folder", error=TrainingError):
        saved = _run_folder_state(out, resume, overwrite)  # again, now that it is ours
        if overwrite:
            for name in _existing_run_files(out):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(os.path.join(out, name))
        return _train_locked(source, out, task_class, saved, options, transform, train_records,
                             val_records, test_records, stop_after, progress, log, parts)


def _train_locked(source: Store, out: str, task_class: type[Task], saved: dict[str, Any] | None,
                  options: dict[str, Any], transform: Any, train_records: list[dict[str, Any]],
                  val_records: list[dict[str, Any]], test_records: list[dict[str, Any]],
                  stop_after: int | None, progress: bool, log: IO[str] | None,
                  parts: dict[str, Any]) -> dict[str, Any]:
    """:func:`train` once it holds the run folder's lock."""
    from tqdm.auto import tqdm

    epochs, batch_size, lr, seed = (options[k] for k in ("epochs", "batch_size", "lr", "seed"))
    if saved is None:
        task_state = task_class.fit(_arrays(source, train_records), train_records, options)
        task_state["model"] = options["model"]
    else:
        task_state = saved["task_state"]
    task = task_class(task_state, seed)
    client = parts["client"]
    # on a cluster the workers read the items: a classifier's client keeps none (it reads
    # one when asked), a dense task's plans its crops from them; validation and test are
    # computed on the workers and scored here (a classifier's scores read only labels)
    train_data: Sequence[Pair] = _StoredItems(task, source, train_records) \
        if client is not None and not task.plan_reads_items else \
        _items(task, source, train_records)
    val_data = (_scored_items if client is not None else _items)(task, source, val_records)
    ndim, in_channels = train_data[0][0].ndim - 1, train_data[0][0].shape[0]
    net = parts["model"] if parts["model"] is not None else task.model(in_channels, ndim, seed)
    params = list(net.parameters())
    if not params:
        raise ArgumentError(f"the model {type(net).__name__} has no parameters to train")
    optimizer = _optimizer(parts["optimizer"], params, lr)
    schedule = _schedule(parts["schedule"], optimizer, epochs)
    callbacks = parts["callbacks"]
    options.update(optimizer=_describe_optimizer(optimizer), schedule=_describe(schedule),
                   callbacks=list(callbacks))
    loss_of = parts["loss"] or task.loss
    history, first, best, stopped = [], 0, -math.inf, None
    if saved is not None:
        _refuse_changes(out, saved["options"], options)
        _load_weights(net, os.path.join(out, "checkpoint.safetensors"), task_state["model"])
        _load_optimizer(optimizer, os.path.join(out, "optimizer.safetensors"))
        history, first, best = saved["history"], saved["epoch"], saved["best"]
        stopped = saved.get("stopped_early")
        for _ in range(first):
            schedule.step()
        for key, state in (saved.get("callbacks") or {}).items():
            if key in callbacks and state is not None:
                callbacks[key].load_state_dict(state)
    metric = task.metric
    record_keys = ("epoch", "lr", "train_loss", f"train_{metric}") + (
        ("validation_loss", f"validation_{metric}") if val_records else ()) + ("seconds",)
    run = Run(out=out, model=net, optimizer=optimizer, schedule=schedule, task=task.name,
              metric=metric, options=options, epochs=epochs, history=history,
              record_keys=record_keys, first_epoch=first)

    def save_state(finished: bool) -> None:
        _save_json(os.path.join(out, "state.json"), {
            "epoch": len(history), "history": history, "best": best, "task": task.name,
            "task_state": task_state, "ndim": ndim, "in_channels": in_channels,
            "options": options, "input": _input_spec(train_records[0]),
            "stopped_early": stopped, "finished": finished,
            "callbacks": {key: callback.state_dict() for key, callback in callbacks.items()}})

    metrics, parallel = None, None
    try:
        if client is not None:
            from .distributed import ClusterError, DataParallel

            parallel = DataParallel(client, options["store"], train_records, task,
                                    transform, seed, net, parts["loss"])
            options["workers"] = len(parallel.workers)
        for callback in callbacks.values():
            callback.on_train_begin(run)
        last = first if stopped else epochs if stop_after is None else \
            min(epochs, first + stop_after)
        checked = False
        for epoch in range(first, last):
            started = time.perf_counter()
            net.train()
            rng = np.random.default_rng((seed, epoch))
            _reseed_dropout(net, seed, epoch)
            # on a cluster the workers read (and augment) the items of their shards; the
            # items are augmented here too only when the batches' crops depend on them
            epoch_data = train_data if transform is None or (
                parallel is not None and not task.plan_reads_items) else _augmented_items(
                task, transform, _arrays(source, train_records), train_records, seed, epoch)
            plan = task.plan(epoch_data, batch_size, rng)
            batches = plan if parallel is not None else \
                [task.assemble(epoch_data.__getitem__, entries) for entries in plan]
            total, seen, tally = 0.0, 0, task.tally()
            bar = tqdm(batches, desc=f"epoch {epoch + 1}/{epochs}", unit="batch",
                       disable=not progress, file=log)
            for index, batch in enumerate(bar):
                if parallel is None:
                    inputs, target = batch
                    output = task.forward(net, inputs)
                    if not checked:  # a model of the user's: its output, once
                        task.check_output(output, target)
                        checked = True
                    loss = loss_of(output, target)
                    value = _loss_value(loss, epoch)
                else:  # the gradient of the batch, averaged over the workers' shards
                    try:
                        value, count, shard_tally = parallel.step(epoch, index, batch)
                    except ClusterError as exc:
                        saved = (f"the last checkpoint (epoch {epoch}) is in {out}" if epoch
                                 else f"no epoch had finished ({out})")
                        raise ClusterError(f"{exc}; {saved}: resume the run (--resume, "
                                           f"resume=True) once the cluster has workers "
                                           f"again") from None
                if not math.isfinite(value):
                    hint = f"(--lr {lr})" if lr is not None else "(the optimizer's)"
                    raise TrainingError(
                        f"the loss became {value} in epoch {epoch + 1}; the last good "
                        f"checkpoint (epoch {epoch}) is in {out}. Lower the learning rate {hint}")
                if parallel is None:
                    optimizer.zero_grad()
                    loss.backward()
                    count = len(target)
                    tally.add(_output_data(output), target)
                else:
                    tally.merge(shard_tally)
                optimizer.step()
                total, seen = total + value * count, seen + count
                bar.set_postfix(loss=f"{total / seen:.3f}",
                                **{metric: f"{tally.result()[metric]:.3f}"})
                for callback in callbacks.values():
                    callback.on_batch_end(run, epoch + 1, index, value)
            record = {"epoch": epoch + 1, "lr": optimizer.param_groups[0]["lr"],
                      "train_loss": total / seen, f"train_{metric}": tally.result()[metric]}
            schedule.step()
            if val_records:
                scores = task.validate(net, val_data) if parallel is None else \
                    task.validation_scores(parallel.outputs(net, val_records), val_data)
                record.update({"validation_loss": scores["loss"],
                               f"validation_{metric}": scores[metric]})
            record["seconds"] = time.perf_counter() - started
            history.append(record)
            score = record.get(f"validation_{metric}", record[f"train_{metric}"])
            checkpoint.save(net, os.path.join(out, "checkpoint.safetensors"))
            _save_optimizer(optimizer, os.path.join(out, "optimizer.safetensors"))
            if score > best:
                best = score
                checkpoint.save(net, os.path.join(out, "best.safetensors"))
            for callback in callbacks.values():
                callback.on_epoch_end(run, epoch + 1, record)
            if run.stop_reason is not None:
                stopped = {"epoch": epoch + 1, "reason": run.stop_reason}
            save_state(False)
            _write_metrics(out, _metrics(history, {}, stopped))
            if log is not None:
                print(f"epoch {epoch + 1}: {_summary(record)}"
                      + (f"; stopped early: {stopped['reason']}" if stopped else ""), file=log)
            if stopped:
                break
        metrics = _metrics(history, {}, stopped)
        if stopped or len(history) >= epochs:  # else paused by stop_after: no test yet
            metrics = _test(out, task, net, source, test_records, train_data, metrics,
                            parallel)
            save_state(True)
            example = (_items(task, source, val_records[:1]) or [train_data[0]])[0]
            plot_run(out, history, metrics["test"], net, metric, example, task)
    except BaseException:
        for callback in callbacks.values():
            callback.on_train_end(run, None)
        raise
    finally:
        if parallel is not None:
            parallel.close()
    for callback in callbacks.values():
        callback.on_train_end(run, metrics)
    return metrics


def _test(out: str, task: Task, net: nn.Module, source: Store,
          test_records: list[dict[str, Any]], train_data: Sequence[Pair],
          metrics: dict[str, Any], parallel: Any = None) -> dict[str, Any]:
    """``metrics`` with the best model's test scores and the baselines', written to
    ``metrics.json``; ``net`` is left holding the best model, in eval mode.  With
    ``parallel`` (a DataParallel) the model's outputs are computed on its cluster."""
    _ready(net, os.path.join(out, "best.safetensors"), task)
    test: dict[str, Any] = {}
    if test_records:
        if parallel is None:
            test_data = _items(task, source, test_records)
            outputs = task.evaluation_outputs(net, test_data)
        else:  # computed on the workers; the client reads only what the scores need
            test_data = _scored_items(task, source, test_records)
            outputs = parallel.outputs(net, test_records)
        test = task.scores(outputs, test_data, records=test_records)
        test.update(task.baseline(train_data, test_data))
    metrics = dict(metrics, test=test)
    _write_metrics(out, metrics)
    return metrics
