"""Training a classifier on a prepared store: the loop behind ``sigconv train``.

``train(store, out)`` fits :class:`sigconv.models.Classifier` (its rank taken
from the items) on the store's ``"train"`` items in Ragged batches, so items
of every size go through the same model unpadded; it evaluates on the
``"validation"`` items (or a stable tenth of the training items when the
store has none) after every epoch and on ``"test"`` at the end.

A run folder holds::

    checkpoint.safetensors  the model after the last finished epoch
    optimizer.safetensors   Adam's moments, to resume exactly
    best.safetensors        the model with the best validation accuracy
    state.json              epoch, history, classes and options (for --resume)
    metrics.json            {"history": [one record per epoch], "test": {...}}
    metrics.csv             the history as a table

Every file is written atomically.  ``resume=True`` continues from
``state.json``; because each epoch's batch order comes from ``(seed,
epoch)`` and the kernels are deterministic, a resumed run ends with the same
model, bit for bit, as an uninterrupted one.  A non-finite loss stops the run
with :class:`TrainingError` and leaves the last good checkpoint in place.
"""
import csv
import io
import json
import math
import os
import sys
import time

import numpy as np

from . import checkpoint, nn, optim
from ._atomic import atomic_write_bytes
from .autograd import Tensor, no_grad
from .data import Store
from .data.sources import hashed_split
from .errors import ArgumentError, SigconvError
from .models import Classifier
from .ragged import Ragged

__all__ = ["train", "evaluate", "TrainingError", "load_model"]

#: Classifier shape per number of spatial axes: widths, kernel size, pooling.
ARCHITECTURES = {
    1: dict(widths=(16, 32, 64, 64), kernel_size=9, pool=4),
    2: dict(widths=(16, 32, 64), kernel_size=3, pool=2),
    3: dict(widths=(8, 16, 32), kernel_size=3, pool=2),
}


class TrainingError(SigconvError, RuntimeError):
    """Training cannot go on (for example the loss became NaN or infinite)."""


def _standardised(array):
    """Each channel of an item to zero mean and unit variance (float32)."""
    array = np.asarray(array, dtype=np.float32)
    flat = array.reshape(array.shape[0], -1)
    mean = flat.mean(axis=1, keepdims=True)
    std = flat.std(axis=1, keepdims=True)
    return ((flat - mean) / (std + 1e-6)).reshape(array.shape)


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


def _load(store, records):
    """``(arrays, labels)`` of ``records``: standardised arrays and the raw labels."""
    index = {r["id"]: i for i, r in enumerate(store.records)}
    arrays = [_standardised(store[index[r["id"]]][0]) for r in records]
    return arrays, [r.get("label") for r in records]


def _batches(count, batch_size, rng=None):
    order = np.arange(count) if rng is None else rng.permutation(count)
    return [order[i:i + batch_size] for i in range(0, count, batch_size)]


def make_model(in_channels, num_classes, ndim, seed):
    """The default classifier for items of ``ndim`` spatial axes."""
    return Classifier(in_channels, num_classes, ndim=ndim, rng=seed, **ARCHITECTURES[ndim])


def evaluate(model, arrays, labels, *, batch_size=64):
    """Accuracy, mean loss and confusion matrix of ``model`` on items with integer labels."""
    model.eval()
    classes = int(model.head.weight.shape[0])
    confusion = np.zeros((classes, classes), dtype=np.int64)
    total_loss = 0.0
    with no_grad():
        for batch in _batches(len(arrays), batch_size):
            logits = model(Tensor(Ragged.from_list([arrays[i] for i in batch])))
            target = np.array([labels[i] for i in batch])
            total_loss += float(nn.functional.cross_entropy(logits, target,
                                                            reduction="sum").data)
            np.add.at(confusion, (target, logits.data.argmax(axis=1)), 1)
    n = max(len(arrays), 1)
    return {"accuracy": float(np.trace(confusion) / n), "loss": total_loss / n,
            "confusion": confusion.tolist()}


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
    fields = ["epoch", "lr", "train_loss", "train_accuracy", "validation_loss",
              "validation_accuracy", "seconds"]
    text = io.StringIO()
    writer = csv.DictWriter(text, fields, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(history)
    atomic_write_bytes(os.path.join(out, "metrics.csv"), text.getvalue().encode())


def load_model(run):
    """The best model of a run folder (its classes in ``model.classes``)."""
    with open(os.path.join(run, "state.json"), encoding="utf-8") as handle:
        state = json.load(handle)
    model = make_model(state["in_channels"], len(state["classes"]), state["ndim"],
                       state["options"]["seed"])
    model.load_state_dict(checkpoint.load(os.path.join(run, "best.safetensors")))
    model.classes = state["classes"]
    return model.eval()


def train(store, out, *, epochs=10, batch_size=32, lr=2e-3, seed=0, resume=False,
          validation=0.1, stop_after=None, progress=True, log=sys.stderr):
    """Train the default classifier on a store; return the metrics (as in metrics.json).

    Parameters
    ----------
    store : str or os.PathLike
        A prepared store whose items have a ``label`` and a ``split``.
    out : str or os.PathLike
        Run folder (created; with ``resume`` the run to continue).
    epochs, batch_size, lr, seed : training options (Adam with a cosine schedule).
    validation : float
        Fraction of training items held out when the store has no
        ``"validation"`` split.
    stop_after : int, optional
        Run at most this many epochs in this call and stop as an interrupted
        run would (continue later with ``resume=True``).
    """
    from tqdm.auto import tqdm

    for name, value in (("epochs", epochs), ("batch_size", batch_size)):
        if not isinstance(value, int) or value < 1:
            raise ArgumentError(f"{name} must be a positive int, got {value!r}")
    if not (isinstance(lr, (int, float)) and lr > 0):
        raise ArgumentError(f"lr must be a positive number, got {lr!r}")
    out = os.fspath(out)
    os.makedirs(out, exist_ok=True)
    source = Store(store)
    train_records, val_records, test_records = _split_items(source, validation)
    classes = sorted({r.get("label") for r in source.records if r.get("label") is not None},
                     key=str)
    to_index = {c: i for i, c in enumerate(classes)}
    x_train, y_train = _load(source, train_records)
    x_val, y_val = _load(source, val_records)
    y_train, y_val = [to_index[y] for y in y_train], [to_index[y] for y in y_val]
    ndim, in_channels = x_train[0].ndim - 1, x_train[0].shape[0]
    options = {"epochs": epochs, "batch_size": batch_size, "lr": lr, "seed": seed,
               "store": os.path.abspath(os.fspath(store))}
    model = make_model(in_channels, len(classes), ndim, seed)
    params = list(model.parameters())
    optimizer = optim.Adam(params, lr=lr)
    schedule = optim.CosineAnnealingLR(optimizer, epochs)
    history, first, best = [], 0, -1.0
    state_path = os.path.join(out, "state.json")
    if resume:
        if not os.path.isfile(state_path):
            raise ArgumentError(f"cannot resume: {state_path} does not exist")
        with open(state_path, encoding="utf-8") as handle:
            state = json.load(handle)
        model.load_state_dict(checkpoint.load(os.path.join(out, "checkpoint.safetensors")))
        _load_optimizer(optimizer, params, os.path.join(out, "optimizer.safetensors"))
        history, first, best = state["history"], state["epoch"], state["best"]
        for _ in range(first):
            schedule.step()
    loss_fn = nn.CrossEntropyLoss()
    last = epochs if stop_after is None else min(epochs, first + stop_after)
    for epoch in range(first, last):
        started = time.perf_counter()
        model.train()
        rng = np.random.default_rng((seed, epoch))
        batches = _batches(len(x_train), batch_size, rng)
        total, correct, seen = 0.0, 0, 0
        bar = tqdm(batches, desc=f"epoch {epoch + 1}/{epochs}", unit="batch",
                   disable=not progress, file=log)
        for batch in bar:
            target = np.array([y_train[i] for i in batch])
            logits = model(Tensor(Ragged.from_list([x_train[i] for i in batch])))
            loss = loss_fn(logits, target)
            value = float(loss.data)
            if not math.isfinite(value):
                raise TrainingError(
                    f"the loss became {value} in epoch {epoch + 1}; the last good checkpoint "
                    f"(epoch {epoch}) is in {out}. Lower the learning rate (--lr {lr})")
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += value * len(batch)
            correct += int((logits.data.argmax(axis=1) == target).sum())
            seen += len(batch)
            bar.set_postfix(loss=f"{total / seen:.3f}", accuracy=f"{correct / seen:.3f}")
        record = {"epoch": epoch + 1, "lr": optimizer.param_groups[0]["lr"],
                  "train_loss": total / seen, "train_accuracy": correct / seen}
        schedule.step()
        if x_val:
            metrics = evaluate(model, x_val, y_val)
            record.update(validation_loss=metrics["loss"],
                          validation_accuracy=metrics["accuracy"])
        record["seconds"] = time.perf_counter() - started
        history.append(record)
        score = record.get("validation_accuracy", record["train_accuracy"])
        checkpoint.save(model, os.path.join(out, "checkpoint.safetensors"))
        _save_optimizer(optimizer, params, os.path.join(out, "optimizer.safetensors"))
        if score > best:
            best = score
            checkpoint.save(model, os.path.join(out, "best.safetensors"))
        _save_json(state_path, {"epoch": epoch + 1, "history": history, "best": best,
                                "classes": classes, "ndim": ndim, "in_channels": in_channels,
                                "options": options})
        _write_metrics(out, history, {})
        if log is not None:
            print(f"epoch {epoch + 1}: " + ", ".join(
                f"{k} {v:.4f}" for k, v in record.items() if k != "epoch"), file=log)
    test = {}
    if last < epochs:  # stopped early on purpose: no test yet
        return {"history": history, "test": test}
    if test_records:
        best_model = load_model(out)
        x_test, y_test = _load(source, test_records)
        test = evaluate(best_model, x_test, [to_index[y] for y in y_test])
    _write_metrics(out, history, test)
    return {"history": history, "test": test}
