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

__all__ = ["train", "evaluate", "predict", "plot_run", "TrainingError", "load_model"]

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
    return _scores(model, labels, *_predict(model, arrays, labels, batch_size))


def _scores(model, labels, predicted, losses):
    """Accuracy, mean loss and confusion matrix from predictions and per-item losses."""
    classes = int(model.head.weight.shape[0])
    confusion = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(confusion, (np.asarray(labels, dtype=np.int64), predicted), 1)
    n = max(len(labels), 1)
    return {"accuracy": float(np.trace(confusion) / n), "loss": float(np.sum(losses)) / n,
            "confusion": confusion.tolist()}


def _predict(model, arrays, labels=None, batch_size=64):
    """Predicted class of every item (and each item's loss when ``labels`` are given)."""
    model.eval()
    predicted, losses = [], []
    with no_grad():
        for batch in _batches(len(arrays), batch_size):
            logits = model(Tensor(Ragged.from_list([arrays[i] for i in batch])))
            predicted.extend(logits.data.argmax(axis=1).tolist())
            if labels is not None:
                target = np.array([labels[i] for i in batch])
                losses.extend(nn.functional.cross_entropy(logits, target,
                                                          reduction="none").data.tolist())
    return np.array(predicted, dtype=np.int64), losses


def _per_group(predicted, labels, records, field="speaker"):
    """Accuracy per value of ``field`` (e.g. per speaker) when the records have it."""
    if not records or field not in records[0]:
        return {}
    groups = {}
    for record, guess, label in zip(records, predicted, labels):
        hits = groups.setdefault(str(record[field]), [0, 0])
        hits[0] += int(guess == label)
        hits[1] += 1
    return {f"per_{field}": {k: v[0] / v[1] for k, v in sorted(groups.items())}}


def _save_figure(fig, path):
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    atomic_write_bytes(path, buffer.getvalue())


def plot_run(out, history, test, model):
    """Loss and accuracy curves, the test confusion matrix and the first-layer kernels (PNG).

    Needs matplotlib (the ``plot`` extra); without it nothing is drawn.
    """
    try:
        import matplotlib
    except ImportError:
        return []
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    epochs = [h["epoch"] for h in history]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    for key, label in (("train", "train"), ("validation", "validation")):
        if f"{key}_loss" in history[0]:
            axes[0].plot(epochs, [h[f"{key}_loss"] for h in history], marker="o", label=label)
            axes[1].plot(epochs, [h[f"{key}_accuracy"] for h in history], marker="o",
                         label=label)
    axes[0].set(xlabel="epoch", ylabel="cross-entropy", title="loss")
    axes[1].set(xlabel="epoch", ylabel="accuracy", title="accuracy")
    for ax in axes:
        ax.legend()
        ax.grid(alpha=0.3)
    fig.tight_layout()
    written.append(os.path.join(out, "curves.png"))
    _save_figure(fig, written[-1])
    plt.close(fig)
    if test.get("confusion"):
        confusion = np.array(test["confusion"])
        fig, ax = plt.subplots(figsize=(4.5, 4))
        image = ax.imshow(confusion, cmap="Blues")
        for (i, j), value in np.ndenumerate(confusion):
            ax.text(j, i, str(value), ha="center", va="center", fontsize=7)
        ax.set(xlabel="predicted", ylabel="true",
               title=f"test confusion (accuracy {test['accuracy']:.3f})")
        fig.colorbar(image)
        fig.tight_layout()
        written.append(os.path.join(out, "confusion.png"))
        _save_figure(fig, written[-1])
        plt.close(fig)
    weight = next(iter(model.parameters())).data  # the first convolution's kernels
    if weight.ndim == 3:  # 1-D kernels: draw each as a curve
        fig, ax = plt.subplots(figsize=(6, 3))
        ax.plot(weight[:, 0].T, alpha=0.7)
        ax.set(xlabel="tap", title="first-layer kernels")
    else:
        tiles = weight[:, 0].reshape((weight.shape[0], -1) + weight.shape[-2:])[:, 0]
        columns = min(8, len(tiles))
        rows = -(-len(tiles) // columns)
        fig, axes = plt.subplots(rows, columns, figsize=(columns, rows), squeeze=False)
        for ax in axes.ravel():
            ax.axis("off")
        for ax, tile in zip(axes.ravel(), tiles):
            ax.imshow(tile, cmap="RdBu_r")
        fig.suptitle("first-layer kernels")
    written.append(os.path.join(out, "kernels.png"))
    _save_figure(fig, written[-1])
    plt.close(fig)
    return written


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


def _input_spec(record):
    """What :func:`predict` needs to turn a file into an item like the store's."""
    keys = ("kind", "sample_rate", "spectrogram")
    return {k: record[k] for k in keys if k in record}


def predict(run, paths, *, batch_size=32):
    """The best model's class and probability for each file.

    Files are loaded with :func:`sigconv.io.load` and turned into items the
    way the run's store was prepared (resampled to its sample rate, and the
    same spectrogram when the store held spectrograms).

    Returns
    -------
    list of (path, class, probability)
    """
    from . import io as sio

    model = load_model(run)
    with open(os.path.join(run, "state.json"), encoding="utf-8") as handle:
        spec = json.load(handle).get("input", {})
    arrays = []
    for path in paths:
        kind = spec.get("kind")
        options = {}
        if kind in ("waveform", "spectrogram"):
            kind = "waveform"
            if spec.get("sample_rate"):
                options["sample_rate"] = spec["sample_rate"]
        signal = sio.load(path, kind=kind, **options)
        if spec.get("spectrogram"):
            signal = sio.spectrogram(signal, **spec["spectrogram"])
        expected = next(iter(model.parameters())).shape[1]  # the first layer's input channels
        if signal.data.shape[0] != expected:
            raise ArgumentError(f"{path}: {signal.data.shape[0]} channels, the model takes "
                                f"{expected}")
        arrays.append(_standardised(signal.data))
    results = []
    with no_grad():
        for batch in _batches(len(arrays), batch_size):
            logits = model(Tensor(Ragged.from_list([arrays[i] for i in batch])))
            probabilities = nn.functional.softmax(logits, axis=1).data
            for i, p in zip(batch, probabilities):
                k = int(np.argmax(p))
                results.append((os.fspath(paths[i]), model.classes[k], float(p[k])))
    return results


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
                                "options": options, "input": _input_spec(train_records[0])})
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
        y_test = [to_index[y] for y in y_test]
        predicted, losses = _predict(best_model, x_test, y_test)
        test = _scores(best_model, y_test, predicted, losses)
        test.update(_per_group(predicted, y_test, test_records))
    _write_metrics(out, history, test)
    plot_run(out, history, test, load_model(out))
    return {"history": history, "test": test}
