"""The training loop behind ``sigconv train``, the same for every task.

``train(store, out)`` fits a model on the store's ``"train"`` items, scores
it on the ``"validation"`` items (or a stable tenth of the training items
when the store has none) after every epoch and on ``"test"`` at the end
with the best model.  What is learnt (classes, denoising, per-sample labels)
is a :mod:`~sigconv.train.tasks` task, told from the records or chosen.

A run folder holds::

    checkpoint.safetensors  the model after the last finished epoch
    optimizer.safetensors   Adam's moments, to resume exactly
    best.safetensors        the model with the best validation score
    state.json              epoch, history, the task's state and the options
    metrics.json            {"history": [one record per epoch], "test": {...}}
    metrics.csv             the history as a table
    *.png                   curves, confusion, kernels, feature maps, example

Every file is written atomically.  ``resume=True`` continues from
``state.json``; because each epoch's batches (noise, dropout masks) come
from ``(seed, epoch)``, each item's augmentation from ``(seed, epoch, item)``
(:func:`sigconv.transforms.item_rng`), and the kernels are deterministic, a
resumed run ends with the same model, bit for bit, as an uninterrupted one
(given the same kernel paths: see docs/train.md on auto-tuning).  A
non-finite loss stops the run with :class:`TrainingError` and leaves the
last good checkpoint in place.
"""
import contextlib
import csv
import io
import json
import math
import os
import sys
import time

import numpy as np

from . import tasks as _tasks
from .. import checkpoint, nn, optim, transforms
from .._atomic import atomic_write_bytes
from .._lock import folder_lock
from ..data import Store
from ..data.sources import hashed_split
from .._validation import check_int, check_positive_real
from ..errors import ArgumentError, SigconvError
from ..io import Signal
from ..io.signal import FIELDS
from .plots import plot_run
from .tasks import MODELS, TASKS, task_of

__all__ = ["train", "load_model", "make_model", "TrainingError", "RUN_FILES"]


class TrainingError(SigconvError, RuntimeError):
    """Training cannot go on (for example the loss became NaN or infinite)."""


def _split_items(store, validation):
    """Train, validation and test records; a stable tenth of train when no validation split."""
    train = [r for r in store.records if r.get("split") == "train"]
    val = [r for r in store.records if r.get("split") == "validation"]
    if not val and validation:
        val = [r for r in train if hashed_split(r["id"], test=0, validation=validation)
               == "validation"]
        chosen = {r["id"] for r in val}
        train = [r for r in train if r["id"] not in chosen]
    test = [r for r in store.records if r.get("split") == "test"]
    if not train:
        raise ArgumentError(f"store {store.path!r} has no items with split 'train'")
    return train, val, test


def _arrays(store, records):
    """The stored arrays of ``records`` (memory-mapped)."""
    index = {r["id"]: i for i, r in enumerate(store.records)}
    return [store[index[r["id"]]][0] for r in records]


def _items(task, store, records):
    """``[(input, target)]`` of ``records`` as the task reads them."""
    return [task.split_item(a, r) for a, r in zip(_arrays(store, records), records)]


#: Values of ``train(augment=...)`` that name a preset strength of
#: :func:`sigconv.transforms.preset` (None is "none").
AUGMENT_STRENGTHS = ("none", "light", "default", "strong")


def _transform(augment, task_name, kind):
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


def _describe(transform):
    """What ``state.json`` records of a transform (as it will read back), or None.

    A sigconv transform by :func:`sigconv.transforms.describe`; any other
    callable by its class's qualified name.
    """
    if transform is None:
        return None
    if isinstance(transform, transforms.Transform):
        return json.loads(json.dumps(transforms.describe(transform)))
    kind = type(transform)
    return {"class": f"{kind.__module__}.{kind.__qualname__}"}


def _signal(array, record):
    """A stored item as the :class:`~sigconv.io.Signal` its record describes (for transforms)."""
    metadata = {k: record[k] for k in FIELDS if k in record and k != "path"}
    if "affine" in metadata:
        metadata["affine"] = np.asarray(metadata["affine"], dtype=np.float64)
    axes = record.get("axes")
    return Signal(np.asarray(array), record["kind"], tuple(axes) if axes else None,
                  target_channels=record.get("target_channels") or 0, **metadata)


def _augmented_items(task, transform, arrays, records, seed, epoch):
    """This epoch's ``[(input, target)]``: each raw item through ``transform``, then split.

    Item ``i`` draws from :func:`sigconv.transforms.item_rng` ``(seed, epoch, i)``.
    """
    return [task.split_item(transform(_signal(a, r), transforms.item_rng(seed, epoch, i)).data, r)
            for i, (a, r) in enumerate(zip(arrays, records))]


#: Mixed into the seed of the dropout masks, so they differ from the batch order's draws.
_DROPOUT_TAG = 0xD50


def _reseed_dropout(net, seed, epoch):
    """Every Dropout layer of ``net`` draws its masks from ``(seed, epoch)`` this epoch, so a
    resumed run draws the same masks as an uninterrupted one."""
    for layer in net.modules():
        if isinstance(layer, nn.Dropout):
            layer.rng = np.random.default_rng((seed, epoch, _DROPOUT_TAG))


def make_model(in_channels, num_classes, ndim, seed):
    """The default classifier for items of ``ndim`` spatial axes."""
    return _tasks._build("classifier", in_channels, num_classes, ndim, seed)


def _save_json(path, value):
    atomic_write_bytes(path, json.dumps(value, indent=1, sort_keys=True).encode())


def _save_optimizer(optimizer, params, path):
    arrays, steps = {}, {}
    for i, p in enumerate(params):
        state = optimizer.state.get(id(p))
        if state:
            arrays[f"{i}.m"], arrays[f"{i}.v"] = state["m"], state["v"]
            steps[str(i)] = state["step"]
    checkpoint.save(arrays, path, metadata={"steps": json.dumps(steps)})


def _load_optimizer(optimizer, params, path):
    arrays, metadata = checkpoint.load(path, with_metadata=True)
    steps = json.loads(metadata["steps"])
    for key, step in steps.items():
        p = params[int(key)]
        optimizer.state[id(p)] = {"step": step, "m": arrays[f"{key}.m"].copy(),
                                  "v": arrays[f"{key}.v"].copy()}


def _write_metrics(out, history, test):
    _save_json(os.path.join(out, "metrics.json"), {"history": history, "test": test})
    fields = list(dict.fromkeys(k for record in history for k in record))
    text = io.StringIO()
    writer = csv.DictWriter(text, fields)
    writer.writeheader()
    writer.writerows(history)
    atomic_write_bytes(os.path.join(out, "metrics.csv"), text.getvalue().encode())


def _input_spec(record):
    """What :func:`predict` needs to turn a file into an item like the store's."""
    keys = ("kind", "sample_rate", "spectrogram")
    return {k: record[k] for k in keys if k in record}


def _run_files(run):
    """``(run folder, weights file)`` of a run folder (its best model) or of a checkpoint in one."""
    run = os.fspath(run)
    if os.path.isfile(run):
        return os.path.dirname(os.path.abspath(run)), run
    return run, os.path.join(run, "best.safetensors")


def _read_state(run):
    path = os.path.join(_run_files(run)[0], "state.json")
    if not os.path.isfile(path):
        raise ArgumentError(f"{path} does not exist: not a run folder made by sigconv train")
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def _run_task(state):
    return TASKS[state["task"]](state["task_state"], state["options"]["seed"])


def load_model(run):
    """A run's model in eval mode (``model.classes`` when it has classes).

    ``run`` is a run folder (its best model) or a checkpoint file in one
    (e.g. ``runs/x/checkpoint.safetensors``, the last epoch's model).
    """
    state = _read_state(run)
    task = _run_task(state)
    model = task.model(state["in_channels"], state["ndim"], state["options"]["seed"])
    model.load_state_dict(checkpoint.load(_run_files(run)[1]))
    model.classes = task.state.get("classes")
    return model.eval()


def _check_options(epochs, batch_size, lr, task_class, model):
    """``(epochs, batch_size, lr)`` as int, int, float, or ArgumentError."""
    epochs, batch_size = check_int(epochs, "epochs"), check_int(batch_size, "batch_size")
    lr = check_positive_real(lr, "lr")
    if model is not None and model not in task_class.models:
        raise ArgumentError(f"model {model!r} does not do task {task_class.name!r}; it takes "
                            f"{', '.join(task_class.models)} (all models: {', '.join(MODELS)})")
    return epochs, batch_size, lr


#: The files a run writes: a folder holding any of them holds a run, and
#: ``overwrite=True`` deletes them (and nothing else) before training.
RUN_FILES = ("state.json", "checkpoint.safetensors", "optimizer.safetensors",
             "best.safetensors", "metrics.json", "metrics.csv", "curves.png", "confusion.png",
             "kernels.png", "feature_maps.png", "example.png")


def _run_folder_state(out, resume, overwrite):
    """The saved state of the run to resume, or None for a new run; refuses (ArgumentError)
    to resume without a run, and to start a run over an existing one without ``overwrite``."""
    if resume and overwrite:
        raise ArgumentError("resume and overwrite exclude each other: resume continues the "
                            f"run in {out!r}, overwrite replaces it; pass one of them")
    if os.path.exists(out) and not os.path.isdir(out):
        raise ArgumentError(f"run folder {out!r} is a file, not a folder")
    state_path = os.path.join(out, "state.json")
    if resume:
        if not os.path.isfile(state_path):
            raise ArgumentError(f"cannot resume: {state_path} does not exist")
        return _read_state(out)
    existing = [name for name in RUN_FILES if os.path.lexists(os.path.join(out, name))]
    if existing and not overwrite:
        shown = ", ".join(existing[:3]) + (", ..." if len(existing) > 3 else "")
        raise ArgumentError(f"run folder {out!r} already holds a run ({shown}); continue it "
                            "with --resume (resume=True), replace it with --overwrite "
                            "(overwrite=True), or choose another folder")
    return None


def _summary(record):
    return ", ".join(f"{k} {v:.4f}" for k, v in record.items() if k != "epoch")


def train(store, out, *, epochs=None, batch_size=None, lr=None, seed=0, resume=False,
          overwrite=False, validation=0.1, task=None, model=None, noise=None, patch=None,
          augment="default", stop_after=None, progress=True, log=sys.stderr):
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
        25, 2 and 2e-3 to denoise, 40, 2 and 5e-3 to label.
    seed : int
    resume : bool
        Continue the run in ``out`` from its ``state.json``.
    overwrite : bool
        Replace the run in ``out``: its files (:data:`RUN_FILES`) are deleted
        first, other files in the folder are left alone.
    validation : float
        Fraction of training items held out when the store has no
        ``"validation"`` split.
    task : {"classify", "denoise", "label"}, optional
        What to learn (default: "classify" when the records have labels,
        "label" when their items carry a label channel).
    model : str, optional
        One of :data:`~sigconv.train.tasks.MODELS` that does the task
        (default: the task's first).
    noise : float, optional
        Dense tasks: standard deviation of the added Gaussian noise in the
        store's units (denoise default: 5% of the training data's range;
        label default: 0).
    patch : int or sequence of int, optional
        Dense tasks: training crop size per spatial axis (default 32);
        evaluation slides windows of twice this size over whole items.
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
    """
    out = os.fspath(out)
    source = Store(store)
    train_records, val_records, test_records = _split_items(source, validation)
    saved = _run_folder_state(out, resume, overwrite)  # refuse before creating anything
    task_name = task if saved is None else saved["task"]
    task_class = task_of(train_records, task_name)
    epochs = task_class.epochs if epochs is None else epochs
    batch_size = task_class.batch_size if batch_size is None else batch_size
    lr = task_class.lr if lr is None else lr
    epochs, batch_size, lr = _check_options(epochs, batch_size, lr, task_class, model)
    transform = _transform(augment, task_class.name, train_records[0].get("kind"))
    options = {"epochs": epochs, "batch_size": batch_size, "lr": lr, "seed": seed,
               "store": os.path.abspath(os.fspath(store)), "noise": noise, "patch": patch,
               "model": model or task_class.models[0],
               "augment": _describe(transform)}
    os.makedirs(out, exist_ok=True)
    with folder_lock(out, what="run folder", error=TrainingError):
        saved = _run_folder_state(out, resume, overwrite)  # again, now that it is ours
        if overwrite:
            for name in RUN_FILES:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(os.path.join(out, name))
        return _train_locked(source, out, task_class, saved, options, transform, train_records,
                             val_records, test_records, stop_after, progress, log)


def _train_locked(source, out, task_class, saved, options, transform, train_records,
                  val_records, test_records, stop_after, progress, log):
    """:func:`train` once it holds the run folder's lock."""
    from tqdm.auto import tqdm

    epochs, batch_size, lr, seed = (options[k] for k in ("epochs", "batch_size", "lr", "seed"))
    state_path = os.path.join(out, "state.json")
    if saved is None:
        task_state = task_class.fit(_arrays(source, train_records), train_records, options)
        task_state["model"] = options["model"]
    else:
        task_state = saved["task_state"]
        recorded = saved["options"].get("augment")
        if recorded != options["augment"]:
            raise ArgumentError(f"cannot resume {out!r} with another augmentation: the run used "
                                f"{json.dumps(recorded)}, this call gives "
                                f"{json.dumps(options['augment'])}")
    task = task_class(task_state, seed)
    train_data = _items(task, source, train_records)
    val_data = _items(task, source, val_records)
    ndim, in_channels = train_data[0][0].ndim - 1, train_data[0][0].shape[0]
    net = task.model(in_channels, ndim, seed)
    params = list(net.parameters())
    optimizer = optim.Adam(params, lr=lr)
    schedule = optim.CosineAnnealingLR(optimizer, epochs)
    history, first, best = [], 0, -math.inf
    if saved is not None:
        net.load_state_dict(checkpoint.load(os.path.join(out, "checkpoint.safetensors")))
        _load_optimizer(optimizer, params, os.path.join(out, "optimizer.safetensors"))
        history, first, best = saved["history"], saved["epoch"], saved["best"]
        for _ in range(first):
            schedule.step()
    metric = task.metric
    last = epochs if stop_after is None else min(epochs, first + stop_after)
    for epoch in range(first, last):
        started = time.perf_counter()
        net.train()
        rng = np.random.default_rng((seed, epoch))
        _reseed_dropout(net, seed, epoch)
        epoch_data = train_data if transform is None else _augmented_items(
            task, transform, _arrays(source, train_records), train_records, seed, epoch)
        batches = list(task.batches(epoch_data, batch_size, rng))
        total, seen, tally = 0.0, 0, task.tally()
        bar = tqdm(batches, desc=f"epoch {epoch + 1}/{epochs}", unit="batch",
                   disable=not progress, file=log)
        for inputs, target in bar:
            output = task.forward(net, inputs)
            loss = task.loss(output, target)
            value = float(loss.data)
            if not math.isfinite(value):
                raise TrainingError(
                    f"the loss became {value} in epoch {epoch + 1}; the last good checkpoint "
                    f"(epoch {epoch}) is in {out}. Lower the learning rate (--lr {lr})")
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            count = len(target)
            total, seen = total + value * count, seen + count
            tally.add([o.data for o in output] if isinstance(output, list) else output.data,
                      target)
            bar.set_postfix(loss=f"{total / seen:.3f}",
                            **{metric: f"{tally.result()[metric]:.3f}"})
        record = {"epoch": epoch + 1, "lr": optimizer.param_groups[0]["lr"],
                  "train_loss": total / seen, f"train_{metric}": tally.result()[metric]}
        schedule.step()
        if val_data:
            scores = task.evaluate(net, val_data)
            record.update({"validation_loss": scores["loss"],
                           f"validation_{metric}": scores[metric]})
        record["seconds"] = time.perf_counter() - started
        history.append(record)
        score = record.get(f"validation_{metric}", record[f"train_{metric}"])
        checkpoint.save(net, os.path.join(out, "checkpoint.safetensors"))
        _save_optimizer(optimizer, params, os.path.join(out, "optimizer.safetensors"))
        if score > best:
            best = score
            checkpoint.save(net, os.path.join(out, "best.safetensors"))
        _save_json(state_path, {"epoch": epoch + 1, "history": history, "best": best,
                                "task": task.name, "task_state": task_state,
                                "ndim": ndim, "in_channels": in_channels, "options": options,
                                "input": _input_spec(train_records[0])})
        _write_metrics(out, history, {})
        if log is not None:
            print(f"epoch {epoch + 1}: {_summary(record)}", file=log)
    test = {}
    if last < epochs:  # stopped early on purpose: no test yet
        return {"history": history, "test": test}
    best_model = load_model(out)
    if test_records:
        test_data = _items(task, source, test_records)
        test = task.evaluate(best_model, test_data, records=test_records)
        test.update(task.baseline(train_data, test_data))
    _write_metrics(out, history, test)
    example = (val_data or train_data)[0]
    plot_run(out, history, test, best_model, metric, example, task)
    return {"history": history, "test": test}
