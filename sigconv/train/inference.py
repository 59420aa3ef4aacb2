"""Using a trained run: its model's scores on a store and its answers for files.

:func:`evaluate` scores a run's model (:func:`~sigconv.train.loop.load_model`)
on one split of a store; :func:`predict` loads files the way the run's store
was prepared and answers for each.
"""
import os

from ..data import Store
from ..errors import ArgumentError
from .loop import _items, _read_state, _run_task, load_model

__all__ = ["evaluate", "predict"]


def evaluate(run, store, *, split="test"):
    """Scores of a run's model (see :func:`load_model`) on one split of a store.

    The same scores as ``metrics.json``'s ``"test"`` for the best model on the test split.
    """
    state = _read_state(run)
    task = _run_task(state)
    source = Store(store)
    records = [r for r in source.records if r.get("split") == split]
    if not records:
        raise ArgumentError(f"store {source.path!r} has no items with split {split!r}")
    return task.evaluate(load_model(run), _items(task, source, records), records=records)


def _loaded_file(path, spec):
    """A file loaded with :mod:`sigconv.io` the way the run's store was prepared."""
    from ..data.sources import load_item

    kind, options = spec.get("kind"), {}
    if kind in ("waveform", "spectrogram"):
        kind = "waveform"
        if spec.get("sample_rate"):
            options["sample_rate"] = spec["sample_rate"]
    return load_item(path, kind=kind, spectrogram=spec.get("spectrogram"), **options)[0]


def predict(run, paths, *, batch_size=32):
    """The answer of a run's model (see :func:`load_model`) for each file.

    Files are loaded with :func:`sigconv.io.load` and turned into items the
    way the run's store was prepared (resampled to its sample rate, and the
    same spectrogram when the store held spectrograms).

    Returns
    -------
    list of (path, class, probability) for a classifier;
    list of (path, ndarray) for a dense task: the denoised signal in the
    store's units, or the label of every sample.
    """
    state = _read_state(run)
    task, model = _run_task(state), load_model(run)
    arrays = []
    for path in paths:
        array = _loaded_file(path, state.get("input", {}))
        expected = state["in_channels"]
        if array.shape[0] != expected or array.ndim - 1 != state["ndim"]:
            raise ArgumentError(f"{path}: shape {array.shape}, the model takes "
                                f"{expected} channels and {state['ndim']} spatial axes")
        arrays.append(array)
    answers = task.predict(model, arrays, batch_size=batch_size)
    return [(os.fspath(path), *answer) for path, answer in zip(paths, answers)]
