"""What a run learns from a store: classification, denoising or labelling.

A task owns everything that depends on what is learnt: how records become
inputs and targets, the model, the training batches, the loss and the
scores.  :func:`sigconv.train.train` runs the same loop for every task.

========== ============================== ================= ==========================
task       store items                    default model     score (higher is better)
========== ============================== ================= ==========================
classify   any rank, a ``label`` each     Classifier        accuracy (test: also
                                                            precision, recall and F1
                                                            per class, macro means)
denoise    clean signals (noise is added) EncoderDecoder    PSNR in dB (test: also
                                                            SSIM)
label      input channels + a last        StructuredLabeller mean Dice of the
           channel of class indices                         foreground classes
========== ============================== ================= ==========================

:meth:`Task.check_records` refuses, before training, a store a task cannot
learn from (no labels to classify, no label channel to label, the default
patch on waveform or spectrogram items); :meth:`Task.check_output` checks a
model's output on the first batch.

Dense tasks (denoise, label) train on random crops of ``patch`` samples per
axis and score whole validation and test items with
:func:`sigconv.data.sliding_window_inference`.

Noise model (denoise, and label when ``noise`` > 0): additive white Gaussian
noise of standard deviation ``noise`` in the store's units (default 5% of
the training data's range), drawn afresh for every training crop from the
crop's own seed (so a cluster's workers draw what the single process draws); the
validation and test items get one draw fixed by the seed, so scores compare
across epochs and runs.  Real CT noise is spatially correlated and depends
on the dose and the attenuation; this is the simplest model, documented as
such.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .. import nn
from .._ops import log_softmax_array as _log_softmax
from ..autograd import Tensor, no_grad
from ..data.sliding import sliding_window_inference
from ..errors import ArgumentError, ShapeError
from ..models import Classifier, EncoderDecoder, StructuredLabeller
from ..ragged import Ragged
from ..typing import Seed
from .metrics import per_class_scores, ssim

__all__ = ["TASKS", "MODELS", "Classification", "Denoising", "Labelling", "task_of"]

#: Classifier shape per number of spatial axes: widths, kernel size, pooling.
ARCHITECTURES: dict[int, dict[str, Any]] = {
    1: dict(widths=(16, 32, 64, 64), kernel_size=9, pool=4),
    2: dict(widths=(16, 32, 64), kernel_size=3, pool=2),
    3: dict(widths=(8, 16, 32), kernel_size=3, pool=2),
}


def _build(name: str, in_channels: int, out_channels: int, ndim: int, seed: Seed,
           dropout: float = 0.0, residual: bool = False) -> nn.Module:
    """One of :data:`MODELS` for this many channels and spatial axes (``dropout`` and
    ``residual``: the classifier's)."""
    if name == "classifier":
        return Classifier(in_channels, out_channels, ndim=ndim, rng=seed, dropout=dropout,
                          residual=residual, **ARCHITECTURES[ndim])
    if name == "encoder-decoder":
        return EncoderDecoder(in_channels, out_channels, ndim=ndim, widths=(16, 32), rng=seed)
    if name == "residual-encoder-decoder":
        # body(x) + x: a denoiser that learns the noise to remove (as DnCNN)
        return nn.Residual(_build("encoder-decoder", in_channels, out_channels, ndim, seed))
    return StructuredLabeller(in_channels, out_channels, ndim=ndim, hidden=16, steps=3, rng=seed)


#: Dropout before the classifier's head in new runs (a run records its own): none. 0.2 was
#: tried on FSDD with the default augmentation, 3 seeds of raw waveforms and 2-3 of log-mel,
#: and lowered the mean validation accuracy of the last 10 epochs on both (docs/train.md).
CLASSIFIER_DROPOUT = 0.0

#: Label smoothing of the classifier's training loss in new runs (a run records its own, and
#: runs saved before it was recorded train with none): 0.1. Validation preferred it on FSDD
#: log-mel over three fresh seeds, with the rule fixed before the runs (docs/train.md).
#: Validation and test losses are the plain cross-entropy.
CLASSIFIER_LABEL_SMOOTHING = 0.1

#: The numbers of spatial axes whose classifier is residual in new runs (a run records its
#: own; runs saved before it was recorded are plain): 2. On FSDD log-mel validation preferred
#: it over three fresh seeds (docs/train.md); a residual 1-D classifier was not tried, as its
#: FSDD epochs take twice as long (60 would pass the 10-minute budget); 3-D is untried.
CLASSIFIER_RESIDUAL_NDIMS = (2,)

#: Model names accepted by ``train(model=...)`` (``--model``).
MODELS = ("classifier", "encoder-decoder", "residual-encoder-decoder", "labeller")


def standardised(array: ArrayLike) -> NDArray[np.float32]:
    """Each channel of an item to zero mean and unit variance (float32)."""
    array = np.asarray(array, dtype=np.float32)
    flat = array.reshape(array.shape[0], -1)
    mean = flat.mean(axis=1, keepdims=True)
    std = flat.std(axis=1, keepdims=True)
    return ((flat - mean) / (std + 1e-6)).reshape(array.shape)


def _as_batch(arrays: Sequence[NDArray[Any]]) -> NDArray[Any] | Ragged:
    """Equal shapes stack into a dense batch; different ones make a Ragged batch."""
    if all(a.shape == arrays[0].shape for a in arrays):
        return np.stack(arrays)
    return Ragged.from_list(arrays)


#: ``(input, target)`` of one item: the input ``(C, *spatial)``, the target a class index or
#: an array.
Pair = tuple[NDArray[Any], Any]


class _Tally(Protocol):
    """A running score of a task's outputs (what :meth:`Task.tally` returns)."""

    def add(self, output: Any, target: Any, /) -> None: ...

    def merge(self, other: Any, /) -> None:
        """Add what ``other`` (a tally of the same kind, e.g. a worker's) has seen."""

    def result(self) -> dict[str, Any]: ...


class Task:
    """The parts of a run that depend on what is learnt (see the module docstring).

    ``state`` is JSON (kept in ``state.json``): what the model and the data
    need to be rebuilt, fitted once on the training items by :meth:`fit`.
    """

    name: str  # each task's: "classify", "denoise", "label"
    metric: str  # the score that picks the best epoch
    models: tuple[str, ...] = ()
    #: Defaults of ``train`` for this task: epochs, items (or crops) per step, learning rate.
    epochs, batch_size, lr = 10, 32, 2e-3

    def __init__(self, state: dict[str, Any], seed: int = 0) -> None:
        self.state, self.seed = state, seed

    @classmethod
    def check_records(cls, train: list[dict[str, Any]], others: list[dict[str, Any]],
                      options: dict[str, Any]) -> None:
        """Refuse (ArgumentError, with the reason) a store this task cannot learn from,
        before anything is trained: ``train`` and ``others`` (validation and test) are
        records, ``options`` the run's."""

    @classmethod
    def fit(cls, arrays: Sequence[NDArray[Any]], records: Sequence[dict[str, Any]],
            options: dict[str, Any]) -> dict[str, Any]:
        """The task's state from the training items (raw arrays) and the options."""
        raise NotImplementedError

    def model(self, in_channels: int, ndim: int, seed: Seed) -> nn.Module:
        """The default model of a new run (or the recorded one of a resumed run)."""
        name = self.state["model"]
        if not isinstance(name, str):
            raise ArgumentError(f"this run was trained with a model of yours ({name}): "
                                "its architecture is not recorded; pass one (model=...)")
        return _build(name, in_channels, self.outputs(in_channels), ndim, seed,
                      dropout=self.state.get("dropout", 0.0),
                      residual=ndim in self.state.get("residual_ndims", ()))

    def check_output(self, output: Any, target: NDArray[Any] | Ragged) -> None:
        """Raise ShapeError unless the model's training ``output`` is what this task's loss
        and scores take for ``target`` (checked on a run's first batch)."""
        if isinstance(output, list) and output:  # the labeller's refinement steps
            output = output[-1]
        if not isinstance(output, Tensor):
            raise ShapeError(f"the model must return a Tensor, got {type(output).__name__}")
        expected = self._output_shapes(target)
        got = [item.shape for item in _batch_items(output.data)]
        if got != expected:
            shown = sorted(set(got)) if len(got) != len(expected) else got[:3]
            raise ShapeError(f"task {self.name!r} needs one output of shape {expected[0]} per "
                             f"item ({self._output_meaning()}); the model gave {shown} "
                             f"for {len(expected)} items")

    def _output_shapes(self, target: NDArray[Any] | Ragged) -> list[tuple[int, ...]]:
        """The shape of each item's output that the loss takes, given the targets."""
        raise NotImplementedError

    def _output_meaning(self) -> str:
        raise NotImplementedError

    def outputs(self, in_channels: int) -> int:
        """The model's output channels for items of ``in_channels`` channels."""
        raise NotImplementedError

    def split_item(self, array: NDArray[Any], record: dict[str, Any]) -> Pair:
        """``(input, target)`` of one stored item, the input float32 and normalised."""
        raise NotImplementedError

    #: Whether :meth:`plan` reads the items (their sizes, their labels) rather than only
    #: counting them: the client of a cluster run then augments the items as the single
    #: process does, to draw the same batches.
    plan_reads_items = False

    def plan(self, data: Sequence[Pair], batch_size: int,
             rng: np.random.Generator) -> list[list[Any]]:
        """One epoch's training batches of the items ``data``, each a list of the entries
        :meth:`assemble` takes (indices of items, or crops of them), drawn from ``rng``."""
        raise NotImplementedError

    def assemble(self, item: Callable[[int], Pair],
                 entries: Sequence[Any]) -> tuple[Tensor, Any]:
        """The training batch ``(input, target)`` of a :meth:`plan`'s entries; ``item(k)``
        is training item ``k`` (read where the batch is made: here, or on a worker)."""
        raise NotImplementedError

    def batches(self, data: Sequence[Pair], batch_size: int,
                rng: np.random.Generator) -> Iterator[tuple[Tensor, Any]]:
        """One epoch's training batches ``(input, target)`` of the items ``data``."""
        for entries in self.plan(data, batch_size, rng):
            yield self.assemble(data.__getitem__, entries)

    def loss(self, output: Any, target: Any) -> Tensor:
        """The training loss of the model's :meth:`forward` output for ``target``."""
        raise NotImplementedError

    def tally(self) -> _Tally:
        """A new running score."""
        raise NotImplementedError

    #: Items per batch of :meth:`evaluation_outputs` (and per task on a cluster's workers).
    evaluation_batch = 1

    def evaluation_outputs(self, model: nn.Module, data: Sequence[Pair], *,
                           start: int = 0) -> list[NDArray[Any]]:
        """The model's outputs that :meth:`scores` takes, for the items ``data``: items
        ``start``, ``start + 1``, ... of the evaluated split (a cluster's workers compute
        runs of them)."""
        raise NotImplementedError

    def scores(self, outputs: Sequence[NDArray[Any]], data: Sequence[Pair], *,
               records: Sequence[dict[str, Any]] | None = None) -> dict[str, Any]:
        """The scores of :meth:`evaluate` from the :meth:`evaluation_outputs` of ``data``
        (computed here or on a cluster's workers)."""
        raise NotImplementedError

    def evaluate(self, model: nn.Module, data: Sequence[Pair], *,
                 records: Sequence[dict[str, Any]] | None = None) -> dict[str, Any]:
        """The scores of ``model`` on the items ``data``."""
        return self.scores(self.evaluation_outputs(model, data), data, records=records)

    def validation_scores(self, outputs: Sequence[NDArray[Any]],
                          data: Sequence[Pair]) -> dict[str, Any]:
        """The scores an epoch's record keeps (``loss`` and the task's metric) from the
        :meth:`evaluation_outputs` of the validation items; by default all of :meth:`scores`'."""
        return self.scores(outputs, data)

    def validate(self, model: nn.Module, data: Sequence[Pair]) -> dict[str, Any]:
        """:meth:`validation_scores` of ``model`` on the validation items ``data``."""
        return self.validation_scores(self.evaluation_outputs(model, data), data)

    def baseline(self, train: Sequence[Pair], test: Sequence[Pair]) -> dict[str, Any]:
        """Test scores of the non-learned baselines tuned on ``train``."""
        raise NotImplementedError

    def forward(self, model: nn.Module, x: Tensor) -> Any:
        """The model's output in training (all refinement steps for the labeller)."""
        return model(x)

    def predict(self, model: nn.Module, arrays: Sequence[ArrayLike], *,
                batch_size: int = 32) -> list[tuple[Any, ...]]:
        """The answer for each raw item ``(C, *spatial)`` of ``arrays``, as a tuple:
        what :func:`sigconv.train.predict` gives after the file's path."""
        raise NotImplementedError

    def example(self, model: nn.Module, x: NDArray[Any],
                y: NDArray[Any]) -> tuple[NDArray[Any], NDArray[Any], NDArray[Any]] | None:
        """``(input, output, target)`` images of one item for ``example.png``, or None
        (the default: no such picture for this task)."""
        return None


class Classification(Task):
    """One class per item (cross-entropy); scores: accuracy, loss and confusion matrix."""

    name, metric = "classify", "accuracy"
    models = ("classifier",)
    epochs = 60

    @classmethod
    def check_records(cls, train: list[dict[str, Any]], others: list[dict[str, Any]],
                      options: dict[str, Any]) -> None:
        """Every item needs a label; training needs two classes or more, and every
        validation and test label must be one of the training labels."""
        unlabelled = [r["id"] for r in train + others if r.get("label") is None]
        if unlabelled:
            hint = ("; to learn from items without labels use task='denoise' (clean "
                    "signals) or task='label' (items with a label channel)")
            raise ArgumentError(f"classification needs a 'label' in every record; "
                                f"{len(unlabelled)} of {len(train) + len(others)} have none "
                                f"(e.g. {unlabelled[0]!r}){hint}")
        classes = {r["label"] for r in train}
        if len(classes) < 2:
            raise ArgumentError(f"classification needs training items of two classes or "
                                f"more; every training item has the label {train[0]['label']!r}")
        unknown = [r for r in others if r["label"] not in classes]
        if unknown:
            raise ArgumentError(f"{unknown[0].get('split')} item {unknown[0]['id']!r} has the "
                                f"label {unknown[0]['label']!r}, which no training item has "
                                f"(training classes: {sorted(classes, key=str)})")

    @classmethod
    def fit(cls, arrays: Sequence[NDArray[Any]], records: Sequence[dict[str, Any]],
            options: dict[str, Any]) -> dict[str, Any]:
        labels = {r.get("label") for r in records}
        return {"classes": sorted(labels, key=str), "dropout": CLASSIFIER_DROPOUT,
                "label_smoothing": CLASSIFIER_LABEL_SMOOTHING,
                "residual_ndims": list(CLASSIFIER_RESIDUAL_NDIMS)}

    def _output_shapes(self, target: NDArray[Any] | Ragged) -> list[tuple[int, ...]]:
        return [(self.outputs(0),)] * len(target)

    def _output_meaning(self) -> str:
        return f"a logit for each of the classes {self.state['classes']}"

    def outputs(self, in_channels: int) -> int:
        return len(self.state["classes"])

    def split_item(self, array: NDArray[Any], record: dict[str, Any]) -> Pair:
        return standardised(array), self.label_of(record)

    def label_of(self, record: dict[str, Any]) -> int:
        """The class index of a record's ``label``, or ArgumentError."""
        classes = self.state["classes"]
        label = record.get("label")
        if label not in classes:
            raise ArgumentError(f"item {record['id']!r}: label {label!r} is not one of the "
                                f"run's classes {classes}")
        return int(classes.index(label))

    def plan(self, data: Sequence[Pair], batch_size: int,
             rng: np.random.Generator) -> list[list[Any]]:
        """The items of each training batch (indices into ``data``; only their number is
        read): a permutation drawn from ``rng``, cut into runs of ``batch_size``."""
        order = rng.permutation(len(data)).tolist()
        return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]

    def assemble(self, item: Callable[[int], Pair],
                 entries: Sequence[Any]) -> tuple[Tensor, NDArray[Any]]:
        return self.batch_of([item(k) for k in entries])

    @staticmethod
    def batch_of(items: Sequence[Pair]) -> tuple[Tensor, NDArray[Any]]:
        """``(Tensor of a Ragged batch, class indices (N,))`` of ``[(input, class)]``."""
        return Tensor(Ragged.from_list([x for x, _ in items])), np.array([y for _, y in items])

    def loss(self, output: Any, target: Any) -> Tensor:
        """Cross-entropy with the run's label smoothing (0 in runs that predate it)."""
        return nn.functional.cross_entropy(
            output, target, label_smoothing=self.state.get("label_smoothing", 0.0))

    def tally(self) -> _Accuracy:
        return _Accuracy(self.outputs(0))

    def predict(self, model: nn.Module, arrays: Sequence[ArrayLike], *,
                batch_size: int = 32) -> list[tuple[Any, ...]]:
        """``(class, probability)`` of each raw item, ``batch_size`` items per Ragged batch."""
        classes = self.state["classes"]
        arrays = [standardised(a) for a in arrays]
        answers: list[tuple[Any, ...]] = []
        model.eval()
        with no_grad():
            for first in range(0, len(arrays), batch_size):
                logits = model(Tensor(Ragged.from_list(arrays[first:first + batch_size])))
                for p in nn.functional.softmax(logits, axis=1).data:
                    k = int(np.argmax(p))
                    answers.append((classes[k], float(p[k])))
        return answers

    evaluation_batch = 64

    def evaluation_outputs(self, model: nn.Module, data: Sequence[Pair], *,
                           start: int = 0) -> list[NDArray[Any]]:
        """The logits ``(n, classes)`` of each run of :attr:`evaluation_batch` items of
        ``data`` (one Ragged batch each)."""
        model.eval()
        size = self.evaluation_batch
        with no_grad():
            return [model(Tensor(Ragged.from_list([x for x, _ in data[i:i + size]]))).data
                    for i in range(0, len(data), size)]

    def scores(self, outputs: Sequence[NDArray[Any]], data: Sequence[Pair], *,
               records: Sequence[dict[str, Any]] | None = None) -> dict[str, Any]:
        """Accuracy, mean loss, confusion matrix, precision, recall and F1 per class and
        their macro averages (:func:`~sigconv.train.metrics.per_class_scores`), and
        ``per_speaker`` accuracy when the ``records`` name speakers, from the logits of
        ``data`` in runs of items (``outputs``); only the labels of ``data`` are read."""
        tally = self.tally()
        labels = np.array([y for _, y in data])
        start = 0
        for chunk in outputs:
            tally.add(chunk, labels[start:start + len(chunk)])
            start += len(chunk)
        scores = tally.result()
        scores.update(per_class_scores(tally.confusion, self.state["classes"]))
        if records and "speaker" in records[0]:
            hits: dict[str, list[int]] = {}
            for record, guess, (_, label) in zip(records, tally.predicted, data):
                counts = hits.setdefault(str(record["speaker"]), [0, 0])
                counts[0] += int(guess == label)
                counts[1] += 1
            scores["per_speaker"] = {k: right / n for k, (right, n) in sorted(hits.items())}
        return scores

    def baseline(self, train: Sequence[Pair], test: Sequence[Pair]) -> dict[str, Any]:
        return {}


def _batch_items(batch: ArrayLike | Ragged) -> list[NDArray[Any]]:
    """The items of a dense batch or a Ragged, each ``(C, *spatial)``."""
    return list(batch) if isinstance(batch, Ragged) else list(np.asarray(batch))


class _Accuracy:
    """Running accuracy, mean cross-entropy and confusion matrix (every prediction kept)."""

    def __init__(self, classes: int) -> None:
        self.confusion = np.zeros((classes, classes), dtype=np.int64)
        self.loss = 0.0
        self.predicted: list[int] = []

    def add(self, logits: ArrayLike, target: ArrayLike, /) -> None:
        log_p = _log_softmax(np.asarray(logits, dtype=np.float64), axis=1)
        target = np.asarray(target, dtype=np.int64)
        predicted = log_p.argmax(axis=1)
        np.add.at(self.confusion, (target, predicted), 1)
        self.loss -= float(log_p[np.arange(len(target)), target].sum())
        self.predicted.extend(predicted.tolist())

    def merge(self, other: _Accuracy, /) -> None:
        self.confusion += other.confusion
        self.loss += other.loss
        self.predicted.extend(other.predicted)

    def result(self) -> dict[str, Any]:
        n = max(len(self.predicted), 1)
        return {"accuracy": float(np.trace(self.confusion) / n), "loss": self.loss / n,
                "confusion": self.confusion.tolist()}


#: Data kinds whose samples are time steps (or frequency bins by time steps): crops of the
#: default patch are a few milliseconds long, so dense tasks on them need an explicit patch.
TIME_KINDS = ("waveform", "spectrogram")

#: Crop size per axis when ``patch`` is not given (sized for images and volumes).
DEFAULT_PATCH = 32


class _Dense(Task):
    """Shared by denoising and labelling: global normalisation, crops, sliding windows."""

    @classmethod
    def check_records(cls, train: list[dict[str, Any]], others: list[dict[str, Any]],
                      options: dict[str, Any]) -> None:
        """Refuse the default patch on audio: on waveforms and spectrograms
        (:data:`TIME_KINDS`) ``patch`` must be given (see docs/train.md)."""
        kind = train[0].get("kind")
        if options.get("patch") is not None or kind not in TIME_KINDS:
            return
        shapes = [r["shape"][1:] for r in train if r.get("shape")]
        median = [int(v) for v in np.median(np.array(shapes), axis=0)] if shapes else None
        rate = train[0].get("sample_rate")
        duration = (f" = {1000 * DEFAULT_PATCH / rate:.0f} ms at {rate} Hz"
                    if kind == "waveform" and rate else "")
        items = f"; the median training item is {tuple(median)} samples" if median else ""
        raise ArgumentError(
            f"task {cls.name!r} on {kind} items needs an explicit patch (patch=..., --patch): "
            f"the default crop of {DEFAULT_PATCH} samples per axis is sized for images and "
            f"volumes, and on {kind} items it is {DEFAULT_PATCH} time steps{duration}{items}. "
            f"Give a crop long enough to hold what is to be learnt")

    def _output_shapes(self, target: NDArray[Any] | Ragged) -> list[tuple[int, ...]]:
        channels = self.outputs(len(self.state["mean"]))  # the input channels' statistics
        return [(channels,) + item.shape[1:] for item in _batch_items(target)]

    def _output_meaning(self) -> str:
        return ("the input's channels at every sample" if self.name == "denoise"
                else f"a logit for each of the classes {self.state['classes']} at every sample")

    @classmethod
    def _fit_scale(cls, inputs: Sequence[NDArray[Any]],
                   options: dict[str, Any]) -> dict[str, Any]:
        """Per-channel mean and std over every training sample; the data range; the noise.

        ``inputs`` may be memory-mapped: two passes read one item at a time (float64),
        so the fit holds no copy of the training set.
        """
        channels = inputs[0].shape[0]

        def flat(a: NDArray[Any]) -> NDArray[np.float64]:
            return np.asarray(a, dtype=np.float64).reshape(channels, -1)

        count = sum(int(np.prod(a.shape[1:])) for a in inputs)
        mean = sum(flat(a).sum(axis=1) for a in inputs) / count
        var = sum(((flat(a) - mean[:, None]) ** 2).sum(axis=1) for a in inputs) / count
        peak = float(max(float(np.max(a)) for a in inputs) - min(float(np.min(a)) for a in inputs))
        noise = options.get("noise")
        noise = 0.05 * peak if noise is None else float(noise)
        if noise < 0 or not math.isfinite(noise):
            raise ArgumentError(f"noise must be a finite standard deviation >= 0, got {noise!r}")
        ndim = inputs[0].ndim - 1
        patch = np.atleast_1d(options.get("patch") or DEFAULT_PATCH).astype(int).tolist()
        patch = patch * ndim if len(patch) == 1 else patch
        if len(patch) != ndim or min(patch) < 1:
            raise ArgumentError(f"patch must be a positive size per spatial axis ({ndim}), "
                                f"got {options.get('patch')!r}")
        return {"mean": mean.tolist(), "std": np.sqrt(var + 1e-12).tolist(), "peak": peak,
                "noise": noise, "patch": patch}

    def _normalise(self, array: NDArray[Any]) -> NDArray[np.float32]:
        shape = (-1,) + (1,) * (array.ndim - 1)
        mean = np.asarray(self.state["mean"]).reshape(shape)
        std = np.asarray(self.state["std"]).reshape(shape)
        return ((array - mean) / std).astype(np.float32)

    def _in_store_units(self, array: NDArray[Any]) -> NDArray[np.float64]:
        """A normalised item ``(C, *spatial)`` back in the store's units (float64)."""
        shape = (-1,) + (1,) * (array.ndim - 1)
        return array * np.asarray(self.state["std"]).reshape(shape) + \
            np.asarray(self.state["mean"]).reshape(shape)

    def _noise_scale(self) -> NDArray[np.float32]:
        """The noise's standard deviation per channel in normalised units."""
        std = np.asarray(self.state["std"], dtype=np.float32)
        return (self.state["noise"] / std).reshape((-1,) + (1,) * len(self.state["patch"]))

    def _noisy(self, x: NDArray[np.float32], rng: np.random.Generator) -> NDArray[np.float32]:
        if not self.state["noise"]:
            return x
        return (x + self._noise_scale() * rng.standard_normal(x.shape, dtype=np.float32))

    def _crops(self, data: Sequence[Pair],
               rng: np.random.Generator) -> list[tuple[int, tuple[slice, ...]]]:
        """Random crops of ``patch`` samples (clipped to the item), about one item's worth each.

        Every other crop is centred on a sample of one of the item's
        :meth:`_oversampled` groups (chosen uniformly) when it has any.
        """
        patch = self.state["patch"]
        crops: list[tuple[int, tuple[slice, ...]]] = []
        for index, (x, y) in enumerate(data):
            spatial = x.shape[1:]
            size = [min(p, n) for p, n in zip(patch, spatial)]
            count = math.ceil(np.prod(spatial) / np.prod(size))
            groups = self._oversampled(index, y)
            for k in range(count):
                if groups and k % 2:
                    where = groups[int(rng.integers(len(groups)))]
                    centre = np.unravel_index(where[int(rng.integers(len(where)))], spatial)
                    origin = [int(np.clip(c - s // 2, 0, n - s))
                              for c, s, n in zip(centre, size, spatial)]
                else:
                    origin = [int(rng.integers(0, n - s + 1)) for n, s in zip(spatial, size)]
                crops.append((index, tuple(slice(o, o + s) for o, s in zip(origin, size))))
        return [crops[i] for i in rng.permutation(len(crops))]

    def _oversampled(self, index: int, target: NDArray[Any]) -> list[NDArray[np.intp]]:
        """Groups of flat positions of training item ``index`` (target ``target``) that
        half the crops are centred on; none by default (every crop uniform)."""
        return []

    plan_reads_items = True

    def plan(self, data: Sequence[Pair], batch_size: int,
             rng: np.random.Generator) -> list[list[Any]]:
        """Runs of ``batch_size`` crops of :meth:`_crops`, each crop an entry
        ``(item index, region, seed of its noise)``."""
        crops = self._crops(data, rng)
        seeds = rng.integers(2 ** 63, size=len(crops)).tolist()
        entries = [(index, region, seed) for (index, region), seed in zip(crops, seeds)]
        return [entries[i:i + batch_size] for i in range(0, len(entries), batch_size)]

    def assemble(self, item: Callable[[int], Pair],
                 entries: Sequence[Any]) -> tuple[Tensor, NDArray[Any] | Ragged]:
        """The crops of a :meth:`plan`'s batch, inputs with their noise drawn (the
        denoiser's) from each crop's own seed."""
        inputs, targets, read = [], [], {}
        for index, region, seed in entries:
            if index not in read:
                read[index] = item(index)
            x, y = read[index]
            inputs.append(self._noisy(x[(slice(None),) + region], np.random.default_rng(seed)))
            targets.append(y[(slice(None),) * (y.ndim - len(region)) + region])
        return Tensor(_as_batch(inputs)), _as_batch(targets)

    def _whole(self, model: nn.Module, x: NDArray[Any]) -> NDArray[Any]:
        """The model's output for one whole item, window by window."""
        window = [2 * p for p in self.state["patch"]]

        def predict(batch: NDArray[Any]) -> NDArray[Any]:
            return model(Tensor(batch)).data

        with no_grad():
            return sliding_window_inference(x[None], predict, window, overlap=0.25)[0]

    def example(self, model: nn.Module, x: NDArray[Any],
                y: NDArray[Any]) -> tuple[NDArray[Any], NDArray[Any], NDArray[Any]]:
        """``(input, output, target)`` of one item's first channel, as drawn by plot_run."""
        noisy = self.evaluation_inputs([(x, y)])[0]
        return noisy[0], self._readout(self._whole(model.eval(), noisy))[0], y[0]

    def _readout(self, output: NDArray[Any]) -> NDArray[Any]:
        """The answer in a model's output ``(C_out, *spatial)``: itself (denoise)."""
        return output

    def predict(self, model: nn.Module, arrays: Sequence[ArrayLike], *,
                batch_size: int = 32) -> list[tuple[Any, ...]]:
        """``(answer,)`` of each raw item: :meth:`_answer`, item by item (the sliding
        windows of one item are its batches, so ``batch_size`` is not used)."""
        return [(self._answer(model, array),) for array in arrays]

    def _answer(self, model: nn.Module, array: ArrayLike) -> NDArray[Any]:
        raise NotImplementedError

    def evaluation_inputs(self, data: Sequence[Pair], *,
                          start: int = 0) -> list[NDArray[np.float32]]:
        """The noisy input of each item (items ``start``, ``start + 1``, ... of a split),
        the same draw in every epoch and run."""
        return [self._noisy(x, np.random.default_rng([self.seed, 1, start + i]))
                for i, (x, _) in enumerate(data)]

    def evaluation_outputs(self, model: nn.Module, data: Sequence[Pair], *,
                           start: int = 0) -> list[NDArray[Any]]:
        """The model's output for each whole noisy evaluation input (window by window)."""
        model.eval()
        return [self._whole(model, x) for x in self.evaluation_inputs(data, start=start)]


class Denoising(_Dense):
    """Clean items; the input is the item plus noise; MSE loss; PSNR in dB."""

    name, metric = "denoise", "psnr"
    # as for labelling: 2 crops a step (best validation PSNR on the stent 35.38 dB, 35.03
    # with 8)
    epochs, batch_size = 25, 2
    models = ("encoder-decoder", "residual-encoder-decoder")

    @classmethod
    def fit(cls, arrays: Sequence[NDArray[Any]], records: Sequence[dict[str, Any]],
            options: dict[str, Any]) -> dict[str, Any]:
        return cls._fit_scale([cls._signal(a, r) for a, r in zip(arrays, records)], options)

    @staticmethod
    def _signal(array: NDArray[Any], record: dict[str, Any]) -> NDArray[Any]:
        """The item's channels without label channels (a labelling store denoises too): a
        view of ``array`` (memory-mapped in a store)."""
        labels = record.get("target_channels") or 0
        return array[:array.shape[0] - labels]

    def outputs(self, in_channels: int) -> int:
        return in_channels

    def split_item(self, array: NDArray[Any], record: dict[str, Any]) -> Pair:
        x = self._normalise(self._signal(array, record))
        return x, x

    def loss(self, output: Any, target: Any) -> Tensor:
        return nn.functional.mse_loss(output, Tensor(target))

    def tally(self) -> _PSNR:
        return _PSNR(self.state)

    def _answer(self, model: nn.Module, array: ArrayLike) -> NDArray[Any]:
        """The denoised signal of one raw item ``(C, *spatial)``, in the store's units."""
        output = self._whole(model.eval(), self._normalise(np.asarray(array, np.float32)))
        return self._in_store_units(output)

    def _ssim(self, outputs: Sequence[NDArray[Any]], data: Sequence[Pair]) -> float:
        """Mean over items of :func:`~sigconv.train.metrics.ssim`, in the store's units,
        of each normalised output against its clean item (data range: the clean item's)."""
        return float(np.mean([ssim(self._in_store_units(y), self._in_store_units(clean))
                              for y, (_, clean) in zip(outputs, data)]))

    def scores(self, outputs: Sequence[NDArray[Any]], data: Sequence[Pair], *,
               records: Sequence[dict[str, Any]] | None = None,
               with_ssim: bool = True) -> dict[str, Any]:
        """PSNR (dB) and SSIM of the model's outputs and of the noisy inputs; mean
        normalised MSE."""
        tally, noisy_tally = self.tally(), self.tally()
        noisy_inputs = self.evaluation_inputs(data)
        for output, noisy, (_, clean) in zip(outputs, noisy_inputs, data):
            tally.add(output[None], clean[None])
            noisy_tally.add(noisy[None], clean[None])
        scores = dict(tally.result(), psnr_noisy=noisy_tally.result()["psnr"])
        if with_ssim:
            scores.update(ssim=self._ssim(outputs, data),
                          ssim_noisy=self._ssim(noisy_inputs, data))
        return scores

    def validation_scores(self, outputs: Sequence[NDArray[Any]],
                          data: Sequence[Pair]) -> dict[str, Any]:
        """:meth:`scores` without the SSIMs, which an epoch's record does not keep."""
        return self.scores(outputs, data, with_ssim=False)

    def baseline(self, train: Sequence[Pair], test: Sequence[Pair]) -> dict[str, Any]:
        """PSNR of the non-learned filters, each tuned on the noisy training items.

        A Gaussian filter (its width) and, for 2-D and 3-D items when
        scikit-image is installed, non-local means
        (``skimage.restoration.denoise_nl_means``, its ``h``).  Returns
        ``{"gaussian_sigma": samples, "psnr_gaussian": dB on test}``, and
        ``"nlm_h"`` (in units of the noise's standard deviation) and
        ``"psnr_nlm"``.
        """
        train_inputs, train_targets = self.evaluation_inputs(train), [y for _, y in train]
        sigma = _tune_sigma(train_inputs, train_targets,
                            lambda smoothed, y: -np.sum((smoothed - y) ** 2))
        test_inputs = self.evaluation_inputs(test)
        result: dict[str, Any] = {"gaussian_sigma": sigma}
        result.update(self._baseline_scores(
            "gaussian", [_gaussian(noisy, sigma) for noisy in test_inputs], test))
        noise = float(np.mean(self._noise_scale()))
        if noise > 0 and train[0][1].ndim in (3, 4) and _nl_means_available():
            h = _tune_nlm(train_inputs, train_targets, noise)
            result["nlm_h"] = h
            result.update(self._baseline_scores(
                "nlm", [_nl_means(noisy, h * noise, noise) for noisy in test_inputs], test))
        return result

    def _baseline_scores(self, name: str, outputs: Sequence[NDArray[Any]],
                         data: Sequence[Pair]) -> dict[str, float]:
        """``{"psnr_<name>", "ssim_<name>"}`` of a baseline's outputs for the items of ``data``."""
        tally = self.tally()
        for output, (_, clean) in zip(outputs, data):
            tally.add(output[None], clean[None])
        return {f"psnr_{name}": tally.result()["psnr"], f"ssim_{name}": self._ssim(outputs, data)}


def _gaussian(x: NDArray[Any], sigma: float) -> NDArray[Any]:
    """``x`` (C, *spatial) smoothed along its spatial axes (scipy.ndimage.gaussian_filter)."""
    from scipy.ndimage import gaussian_filter

    return gaussian_filter(x, sigma=(0,) + (sigma,) * (x.ndim - 1), mode="nearest")


#: Gaussian widths (samples) tried when tuning the baseline filter.
SIGMAS = tuple(np.round(np.geomspace(0.25, 4.0, 13), 3).tolist())


def _tune_sigma(inputs: Sequence[NDArray[Any]], targets: Sequence[NDArray[Any]],
                score: Callable[[NDArray[Any], NDArray[Any]], float]) -> float:
    """The width in :data:`SIGMAS` whose smoothing of ``inputs`` scores best against ``targets``."""
    totals = [sum(score(_gaussian(x, s), y) for x, y in zip(inputs, targets)) for s in SIGMAS]
    return SIGMAS[int(np.argmax(totals))]


def _nl_means_available() -> bool:
    """Whether scikit-image (the ``baselines`` extra) is installed."""
    try:
        import skimage.restoration  # noqa: F401
    except ImportError:
        return False
    return True


#: Non-local means settings: ``h`` tried as multiples of the noise's standard
#: deviation, and the patch (5 samples) and search distance (6) of each axis.
NLM_H = (0.4, 0.6, 0.8, 1.0, 1.2)
NLM_PATCH = dict(patch_size=5, patch_distance=6)

#: Largest side of the centred block of each training item that tunes ``h``
#: (the filter's cost grows with the search window times the voxels).
NLM_TUNING_SIDE = 48


def _nl_means(x: NDArray[Any], h: float, noise: float) -> NDArray[np.float32]:
    """``x`` (C, *spatial), 2-D or 3-D, through scikit-image's non-local means (fast mode)."""
    from skimage.restoration import denoise_nl_means

    x = np.asarray(x, dtype=np.float64)
    if x.shape[0] == 1:
        return denoise_nl_means(x[0], h=h, sigma=noise, fast_mode=True,
                                **NLM_PATCH)[None].astype(np.float32)
    return denoise_nl_means(x, h=h, sigma=noise, fast_mode=True, channel_axis=0,
                            **NLM_PATCH).astype(np.float32)


def _tune_nlm(inputs: Sequence[NDArray[Any]], targets: Sequence[NDArray[Any]],
              noise: float) -> float:
    """The ``h`` of :data:`NLM_H` (times ``noise``) with the least squared error on centred
    blocks of at most :data:`NLM_TUNING_SIDE` samples per axis of the training items."""
    blocks = []
    for x, y in zip(inputs, targets):
        region = (slice(None),) + tuple(
            slice(max((n - NLM_TUNING_SIDE) // 2, 0), max((n - NLM_TUNING_SIDE) // 2, 0)
                  + min(n, NLM_TUNING_SIDE)) for n in x.shape[1:])
        blocks.append((x[region], y[region]))
    errors = [sum(float(np.sum((_nl_means(x, h * noise, noise) - y) ** 2)) for x, y in blocks)
              for h in NLM_H]
    return NLM_H[int(np.argmin(errors))]


class _PSNR:
    """Running squared error; PSNR ``10 log10(peak^2 / MSE)`` in the store's units."""

    def __init__(self, state: dict[str, Any]) -> None:
        self.scale2 = np.asarray(state["std"], dtype=np.float64) ** 2
        self.peak = state["peak"]
        self.error = self.scaled = 0.0
        self.count = 0

    def add(self, output: ArrayLike | Ragged, target: ArrayLike | Ragged, /) -> None:
        for y, t in zip(_batch_items(output), _batch_items(target)):
            sums = ((y.astype(np.float64) - t) ** 2).reshape(len(self.scale2), -1).sum(axis=1)
            self.error += float(sums.sum())
            self.scaled += float((sums * self.scale2).sum())
            self.count += y.size

    def merge(self, other: _PSNR, /) -> None:
        self.error += other.error
        self.scaled += other.scaled
        self.count += other.count

    def result(self) -> dict[str, Any]:
        mse = self.scaled / max(self.count, 1)
        psnr = 10 * math.log10(self.peak ** 2 / mse) if mse > 0 else math.inf
        return {"psnr": psnr, "loss": self.error / max(self.count, 1)}


class Labelling(_Dense):
    """Items whose last channel holds a class per sample; cross-entropy + Dice; Dice score."""

    name, metric = "label", "dice"
    # one training volume gives about 90 crops of 32^3 an epoch: small steps, many of them
    # (2 crops a step) let the chapter's small labeller learn (docs/train.md)
    epochs, batch_size, lr = 40, 2, 5e-3
    models = ("labeller", "encoder-decoder")

    def __init__(self, state: dict[str, Any], seed: int = 0) -> None:
        super().__init__(state, seed)
        self._foreground_positions: dict[int, tuple[NDArray[Any], list[NDArray[np.intp]]]] = {}

    @classmethod
    def check_records(cls, train: list[dict[str, Any]], others: list[dict[str, Any]],
                      options: dict[str, Any]) -> None:
        """Every item needs a last channel of labels after one input channel or more
        (records with ``target_channels == 1``), and audio an explicit patch."""
        without = [r["id"] for r in train + others if r.get("target_channels") != 1]
        if without:
            raise ArgumentError(f"labelling needs items whose last channel holds the labels "
                                f"(records with target_channels == 1, e.g. "
                                f"datasets/ct_volumes.py --label-thresholds); "
                                f"{len(without)} of {len(train) + len(others)} records have "
                                f"none (e.g. {without[0]!r})")
        narrow = [r for r in train + others if r.get("shape") and r["shape"][0] < 2]
        if narrow:
            raise ArgumentError(f"labelling needs at least one input channel before the "
                                f"label channel; item {narrow[0]['id']!r} has "
                                f"{narrow[0]['shape'][0]} channel")
        super().check_records(train, others, options)

    @classmethod
    def fit(cls, arrays: Sequence[NDArray[Any]], records: Sequence[dict[str, Any]],
            options: dict[str, Any]) -> dict[str, Any]:
        options = dict(options)
        options.setdefault("noise", 0.0)
        state = cls._fit_scale([a[:-1] for a in arrays], options)
        labels = np.unique(np.concatenate([np.unique(a[-1]) for a in arrays]))
        if labels.min() < 0 or not np.array_equal(labels, np.round(labels)):
            raise ArgumentError(f"the label channel must hold class indices 0, 1, ...; got "
                                f"values {labels[:10].tolist()}")
        count = int(labels.max()) + 1
        names = records[0].get("label_names") or [str(k) for k in range(count)]
        state.update(classes=list(names), thresholds=records[0].get("label_thresholds"))
        return state

    def outputs(self, in_channels: int) -> int:
        return max(len(self.state["classes"]), 2)

    def split_item(self, array: NDArray[Any], record: dict[str, Any]) -> Pair:
        array = np.asarray(array, dtype=np.float32)
        return self._normalise(array[:-1]), array[-1:].astype(np.int64)

    def forward(self, model: nn.Module, x: Tensor) -> Any:
        if isinstance(model, StructuredLabeller):
            return model(x, return_all=True)
        return model(x)

    def loss(self, output: Any, target: Any) -> Tensor:
        steps = output if isinstance(output, list) else [output]
        labels = target if isinstance(target, Ragged) else target[:, 0]
        masks = _one_hot(target, self.outputs(0))
        total: Tensor | None = None
        for logits in steps:  # every refinement step is supervised
            term = nn.functional.cross_entropy(logits, labels) + \
                nn.functional.dice_loss(logits, masks)
            total = term if total is None else total + term
        assert total is not None  # output holds one step or more
        return total * (1.0 / len(steps))

    def tally(self) -> _Dice:
        return _Dice(self.outputs(0))

    def _readout(self, logits: NDArray[Any]) -> NDArray[Any]:
        return logits.argmax(axis=0)[None]

    def _oversampled(self, index: int, labels: NDArray[Any]) -> list[NDArray[np.intp]]:
        """Flat positions of each foreground class present in training item ``index``'s
        ``labels`` (1, *spatial), found once per item (once per run without
        augmentation): half the crops are centred on a
        foreground sample, so that rare classes are seen (as nnU-Net oversamples
        foreground)."""
        cached = self._foreground_positions.get(index)
        if cached is None or cached[0] is not labels:  # an augmented item is new each epoch
            flat = labels.reshape(-1)
            cached = self._foreground_positions[index] = (
                labels, [np.flatnonzero(flat == k) for k in np.unique(flat) if k > 0])
        return cached[1]

    def _answer(self, model: nn.Module, array: ArrayLike) -> NDArray[Any]:
        """The class of every sample of one raw item ``(C, *spatial)`` (input channels only)."""
        x = self._normalise(np.asarray(array, np.float32))
        return self._readout(self._whole(model.eval(), x))[0]

    def scores(self, outputs: Sequence[NDArray[Any]], data: Sequence[Pair], *,
               records: Sequence[dict[str, Any]] | None = None) -> dict[str, Any]:
        """Mean foreground Dice, Dice per class and mean cross-entropy of the last step."""
        tally = self.tally()
        for logits, (_, y) in zip(outputs, data):
            tally.add(logits[None], y[None])
        return tally.result()

    def baseline(self, train: Sequence[Pair], test: Sequence[Pair]) -> dict[str, Any]:
        """Dice of thresholding the Gaussian-smoothed input at the store's label thresholds.

        The filter width is tuned for Dice on the training items.  Returns
        ``{}`` when the records carry no ``label_thresholds``.
        """
        thresholds = self.state.get("thresholds")
        if not thresholds:
            return {}
        shape = (-1,) + (1,) * len(self.state["patch"])
        mean = np.asarray(self.state["mean"]).reshape(shape)[:1]
        std = np.asarray(self.state["std"]).reshape(shape)[:1]

        def classes(smoothed: NDArray[Any]) -> NDArray[np.intp]:
            # the first input channel, back in the store's units
            return np.digitize(smoothed[:1] * std + mean, thresholds)

        def dice(smoothed: NDArray[Any], y: NDArray[Any]) -> float:
            tally = _Dice(self.outputs(0))
            tally.add_labels(classes(smoothed), y)
            return tally.result()["dice"]

        sigma = _tune_sigma(self.evaluation_inputs(train), [y for _, y in train], dice)
        tally = _Dice(self.outputs(0))
        for x, (_, y) in zip(self.evaluation_inputs(test), test):
            tally.add_labels(classes(_gaussian(x, sigma)), y)
        return {"threshold_sigma": sigma, "dice_threshold": tally.result()["dice"]}


def _one_hot(target: NDArray[Any] | Ragged, classes: int) -> NDArray[np.float32] | Ragged:
    """Masks ``(N, classes, *spatial)`` of labels ``(N, 1, *spatial)`` (a Ragged gives a Ragged)."""
    if isinstance(target, Ragged):
        return Ragged.from_list([_one_hot(t[None], classes)[0] for t in target])
    codes = np.arange(classes).reshape((1, classes) + (1,) * (target.ndim - 2))
    return (target == codes).astype(np.float32)


class _Dice:
    """Per-class Dice of hard predictions, summed over every sample seen."""

    def __init__(self, classes: int) -> None:
        self.overlap = np.zeros(classes)
        self.total = np.zeros(classes)
        self.loss, self.count = 0.0, 0

    def add(self, logits: ArrayLike | Ragged | list[Any], target: ArrayLike | Ragged, /) -> None:
        if isinstance(logits, list):  # the labeller's steps: score the last
            logits = logits[-1]
        for z, labels in zip(_batch_items(logits), _batch_items(target)):
            log_p = _log_softmax(np.asarray(z, dtype=np.float64), axis=0)
            labels = labels[0].astype(np.int64)
            self.loss -= float(np.take_along_axis(log_p, labels[None], axis=0).sum())
            self.count += labels.size
            self.add_labels(log_p.argmax(axis=0), labels)

    def add_labels(self, predicted: ArrayLike, labels: ArrayLike) -> None:
        predicted, labels = np.ravel(predicted), np.ravel(labels)
        for k in range(len(self.total)):
            p, t = predicted == k, labels == k
            self.overlap[k] += np.count_nonzero(p & t)
            self.total[k] += np.count_nonzero(p) + np.count_nonzero(t)

    def merge(self, other: _Dice, /) -> None:
        self.overlap += other.overlap
        self.total += other.total
        self.loss += other.loss
        self.count += other.count

    def result(self) -> dict[str, Any]:
        dice = np.where(self.total > 0, 2 * self.overlap / np.maximum(self.total, 1), 1.0)
        return {"dice": float(dice[1:].mean()), "dice_per_class": dice.tolist(),
                "loss": self.loss / max(self.count, 1)}


TASKS: dict[str, type[Task]] = {task_class.name: task_class
                                for task_class in (Classification, Denoising, Labelling)}


def task_of(records: Sequence[dict[str, Any]], task: str | None = None) -> type[Task]:
    """The task class named ``task``, or the one the records imply."""
    if task is None:
        if all("label" in r and r["label"] is not None for r in records):
            task = "classify"
        elif all(r.get("target_channels") for r in records):
            task = "label"
        else:
            raise ArgumentError("cannot tell the task: the training records have neither a "
                                "'label' (classify) nor 'target_channels' (label); pass "
                                "task='denoise' (--task denoise) for clean signals")
    if task not in TASKS:
        raise ArgumentError(f"task must be one of {sorted(TASKS)}, got {task!r}")
    return TASKS[task]

