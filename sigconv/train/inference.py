"""Using a trained run: its model's scores on a store and its answers for files.

:func:`evaluate` scores a run's model (:func:`~sigconv.train.loop.load_model`)
on one split of a store.  :func:`load_inputs` loads files the way the run's
store was prepared and checks each against the run (its kind, channels and
spatial axes; its intensities against the training data's) before anything
is inferred; :func:`predict` answers for each file.
"""
from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Iterator, Sequence
from typing import IO, Any

import numpy as np

from ..data import Store
from ..errors import ArgumentError, IntensityWarning, ShapeError
from ..io import Signal
from .. import nn
from ..typing import PathLike, SignalKind
from .items import _items, _scored_items, _signal
from .loop import _read_state, _run_task, load_model
from .tasks import Classification

__all__ = ["evaluate", "predict", "load_inputs", "IntensityWarning", "INTENSITY_LIMITS"]


def evaluate(run: PathLike, store: PathLike, *, split: str = "test",
             model: nn.Module | None = None, client: Any = None) -> dict[str, Any]:
    """Scores of a run's model (see :func:`load_model`) on one split of a store.

    The same scores as ``metrics.json``'s ``"test"`` for the best model on the test split.
    ``model``: for a run trained with a model of yours, an instance of its
    architecture (it is given the run's weights), as for :func:`load_model`.
    ``client``: a ``distributed.Client``; the model's outputs are computed on
    its workers, a task per batch of the task's ``evaluation_batch`` items (a
    classifier's 64, a dense task's one whole item), the workers reading the
    items from the store at its path; they are scored here: the same scores
    as a local evaluate (sums in another order: the loss to float rounding).
    """
    state = _read_state(run)
    task = _run_task(state)
    if client is not None:
        from .distributed import check_client

        check_client(client)
    source = Store(store)
    records = [r for r in source.records if r.get("split") == split]
    if not records:
        raise ArgumentError(f"store {source.path!r} has no items with split {split!r}")
    net = load_model(run, model=model)
    if client is None:
        return task.evaluate(net, _items(task, source, records), records=records)
    from .distributed import cluster_outputs

    outputs = cluster_outputs(client, task, net, os.fspath(source.path), records)
    return task.scores(outputs, _scored_items(task, source, records), records=records)


#: An input is "far" from the training data, and :func:`load_inputs` warns with
#: :class:`~sigconv.errors.IntensityWarning`, when a channel's mean lies more than
#: ``mean_stds`` of the training data's standard deviations from the training mean, or
#: its standard deviation is more than ``std_ratio`` times larger or smaller than the
#: training data's.  Only runs that fit one scale to the training data (denoise, label)
#: are checked: a classifier standardises every item on its own.
INTENSITY_LIMITS = {"mean_stds": 5.0, "std_ratio": 4.0}

#: Options of :func:`sigconv.data.sources.load_item` that predict takes again from the
#: converter a run's records name (``"converter"``, see :func:`sigconv.data.converter_key`).
_REPLAYED = ("sample_rate", "mono", "mode", "size", "spacing")


def _articled(kind: str) -> str:
    return f"{'an' if kind[0] in 'aeiou' else 'a'} {kind}"


def _load_options(spec: dict[str, Any]) -> tuple[SignalKind | None, dict[str, Any]]:
    """``(loader kind, options of load_item)`` that make a file into an item like the store's."""
    kind: SignalKind | None = spec.get("kind")
    options: dict[str, Any] = {}
    converter = spec.get("converter") or {}
    if converter.get("function", "").endswith(".load_item"):
        recorded = converter.get("options", {})
        options.update({k: recorded[k] for k in _REPLAYED if recorded.get(k) is not None})
    if kind in ("waveform", "spectrogram"):
        kind = "waveform"
        if spec.get("sample_rate"):
            options["sample_rate"] = spec["sample_rate"]
    for name in ("size", "spacing"):
        if isinstance(options.get(name), list):
            options[name] = tuple(options[name])
    return kind, dict(options, spectrogram=spec.get("spectrogram"))


def _check_kind(path: PathLike, spec: dict[str, Any], kind: str) -> None:
    """Refuse a file that is not of the loader ``kind`` the run's items came from."""
    from ..io import detect

    found = detect(path)
    if found != kind:
        trained = spec["kind"]
        made = " (computed from audio)" if trained == "spectrogram" else ""
        raise ArgumentError(f"this run was trained on {trained} items{made}; {os.fspath(path)} "
                            f"is {_articled(found)}: give it {_articled(kind)} file")


def _check_shape(signal: Signal, state: dict[str, Any]) -> None:
    """Refuse an item whose channels or spatial axes are not the model's."""
    array, expected = signal.data, state["in_channels"]
    if array.shape[0] != expected or array.ndim - 1 != state["ndim"]:
        raise ShapeError(f"{signal.path}: shape {array.shape}, the model takes {expected} "
                         f"channel{'s' * (expected != 1)} and {state['ndim']} spatial axes")


def _intensity_message(signal: Signal, task_state: dict[str, Any]) -> str | None:
    """Why ``signal`` is far from the training data (:data:`INTENSITY_LIMITS`), or None."""
    mean, std = task_state.get("mean"), task_state.get("std")
    if mean is None or std is None:  # a classifier: every item is standardised on its own
        return None
    array = np.asarray(signal.data, dtype=np.float64)
    flat = array.reshape(array.shape[0], -1)
    for channel, (values, trained_mean, trained_std) in enumerate(zip(flat, mean, std)):
        values = values[np.isfinite(values)]
        if not values.size:
            continue
        m, s = float(values.mean()), float(values.std())
        shift = abs(m - trained_mean) / trained_std
        ratio = s / trained_std
        if (shift <= INTENSITY_LIMITS["mean_stds"]
                and 1 / INTENSITY_LIMITS["std_ratio"] <= ratio <= INTENSITY_LIMITS["std_ratio"]):
            continue
        which = f" (channel {channel})" if len(mean) > 1 else ""
        peak = task_state.get("peak")
        wide = f", a range {peak:.4g} wide" if peak is not None else ""
        return (f"{signal.path}: its intensities{which} (mean {m:.4g}, std {s:.4g}, "
                f"{values.min():.4g} to {values.max():.4g}) are far from the training data's "
                f"(mean {trained_mean:.4g}, std {trained_std:.4g}{wide}): the model was "
                "trained on another intensity scale or units (Hounsfield units against a "
                "window or [0, 1], say), and its output may mean nothing; give it inputs "
                "scaled as the training store was prepared")
    return None


def load_inputs(run: PathLike, paths: Sequence[PathLike]) -> list[Signal]:
    """Each file loaded as the run's store was prepared, checked against the run.

    Every file is loaded and checked before the first answer is computed, so
    a bad file is reported at once, not after the others were inferred.

    Parameters
    ----------
    run : str or os.PathLike
        A run folder or a checkpoint file in one.
    paths : sequence of str or os.PathLike

    Returns
    -------
    list of Signal
        The items as the model takes them (resampled to the store's sample
        rate, the same spectrogram, ...), ``path`` as given, with their
        metadata (a volume's ``spacing`` and ``affine``).

    Raises
    ------
    ArgumentError
        A file of another kind than the run's items ("this run was trained
        on waveform items; x.png is an image").
    ShapeError
        An item with other channels or spatial axes than the model takes.
    sigconv.io.LoadError
        A file that cannot be read.

    Warns
    -----
    IntensityWarning
        An item's intensities are far from the training data's
        (:data:`INTENSITY_LIMITS`; denoising and labelling runs).
    """
    from ..data.sources import load_item

    state = _read_state(run)
    spec = state.get("input", {})
    kind, options = _load_options(spec)
    signals: list[Signal] = []
    for path in paths:
        if kind is not None:
            _check_kind(path, spec, kind)
        array, metadata = load_item(path, kind=kind, **options)
        signal = _signal(array, metadata).replace(path=os.fspath(path))
        _check_shape(signal, state)
        signals.append(signal)
    for signal in signals:
        message = _intensity_message(signal, state["task_state"])
        if message is not None:
            warnings.warn(message, IntensityWarning, stacklevel=2)
    return signals


def _predictions(run: PathLike, inputs: Sequence[PathLike | Signal], *, batch_size: int = 32,
                 progress: bool = False, log: IO[str] | None = sys.stderr,
                 model: nn.Module | None = None,
                 client: Any = None) -> Iterator[tuple[Any, ...]]:
    """Yield ``(path, *answer)`` of each input, in order, as soon as it is computed.

    ``inputs`` as for :func:`predict`; all of them are loaded and checked
    before the first answer.
    """
    from tqdm.auto import tqdm

    if client is not None:
        from .distributed import check_client

        check_client(client)
    state = _read_state(run)
    paths = [x for x in inputs if not isinstance(x, Signal)]
    loaded = iter(load_inputs(run, paths))
    signals = [x if isinstance(x, Signal) else next(loaded) for x in inputs]
    for signal in signals:
        _check_shape(signal, state)
    task, model = _run_task(state), load_model(run, model=model)
    # a classifier answers a batch of files at once; dense tasks go file by file anyway
    chunk = batch_size if isinstance(task, Classification) else 1
    parts = [signals[first:first + chunk] for first in range(0, len(signals), chunk)]
    arrays = [([np.asarray(s.data) for s in part], batch_size) for part in parts]
    if client is None:
        answered: Iterator[list[tuple[Any, ...]]] = (
            task.predict(model, items, batch_size=size) for items, size in arrays)
    else:  # one task per part on the workers, the answers in order
        from .distributed import map_in_order, predict_part

        answered = map_in_order(client, predict_part, (task, model), arrays)
    with tqdm(total=len(signals), desc="predict", unit="file", disable=not progress,
              file=log) as bar:
        for part, answers in zip(parts, answered):
            for signal, answer in zip(part, answers):
                yield (signal.path, *answer)
            bar.update(len(part))


def predict(run: PathLike, inputs: Sequence[PathLike | Signal], *, batch_size: int = 32,
            progress: bool = False, log: IO[str] | None = sys.stderr,
            model: nn.Module | None = None, client: Any = None) -> list[tuple[Any, ...]]:
    """The answer of a run's model (see :func:`load_model`) for each input.

    Parameters
    ----------
    run : str or os.PathLike
        A run folder (its best model) or a checkpoint file in one.
    inputs : sequence of str, os.PathLike or Signal
        Files, loaded and checked by :func:`load_inputs` (all of them before
        the first answer), or the signals :func:`load_inputs` gave (their
        shapes are checked again, nothing else).
    batch_size : int
        Files a classifier takes per batch.
    progress : bool
        A tqdm bar over the files on ``log``.
    model : Module, optional
        For a run trained with a model of yours: an instance of its
        architecture, given the run's weights (see :func:`load_model`).
    client : distributed.Client, optional
        Infer on its workers: the model is sent to each once, then one task
        per batch of files (a classifier) or per file (dense tasks), the
        files loaded and checked here first; the answers in the inputs' order,
        equal to the local ones to float rounding.

    Returns
    -------
    list of (path, class, probability) for a classifier;
    list of (path, ndarray) for a dense task: the denoised signal in the
    store's units ``(C, *spatial)``, or the label of every sample
    ``(*spatial)``.
    """
    return list(_predictions(run, inputs, batch_size=batch_size, progress=progress, log=log,
                             model=model, client=client))
