"""How a store's records become a task's training pairs.

The records of a store are split into train, validation and test
(:func:`_split_items`); each stored array is read memory-mapped
(:func:`_arrays`) and split by the task into ``(input, target)``
(:func:`_items`), or, to augment, first made the :class:`~sigconv.io.Signal`
its record describes and passed through a transform with the item's own
generator (:func:`_augmented_item`).  The training loop, inference and the
workers of distributed training read items through these functions only.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, overload

import numpy as np

from .. import transforms
from ..autograd import Tensor
from ..data import Store
from ..data.sources import hashed_split
from ..errors import ArgumentError
from ..io import Signal
from ..io.signal import FIELDS
from .tasks import Classification, Pair, Task


def _split_items(store: Store, validation: float) -> tuple[list[dict[str, Any]], ...]:
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


def _arrays(store: Store, records: Sequence[dict[str, Any]]) -> list[np.ndarray[Any, Any]]:
    """The stored arrays of ``records`` (memory-mapped)."""
    index = {r["id"]: i for i, r in enumerate(store.records)}
    return [store[index[r["id"]]][0] for r in records]


def _items(task: Task, store: Store, records: Sequence[dict[str, Any]]) -> list[Pair]:
    """``[(input, target)]`` of ``records`` as the task reads them."""
    return [task.split_item(a, r) for a, r in zip(_arrays(store, records), records)]


class _StoredItems(Sequence[Pair]):
    """``[(input, target)]`` of ``records`` as :func:`_items` gives them, each read from the
    store (memory-mapped) and split when it is indexed, nothing kept: what the client of a
    cluster run holds of a classifier's training items (the workers read them)."""

    def __init__(self, task: Task, store: Store, records: Sequence[dict[str, Any]]) -> None:
        self.task, self.store, self.records = task, store, records
        index = {r["id"]: i for i, r in enumerate(store.records)}
        self.positions = [index[r["id"]] for r in records]

    def __len__(self) -> int:
        return len(self.records)

    @overload
    def __getitem__(self, index: int) -> Pair: ...

    @overload
    def __getitem__(self, index: slice) -> list[Pair]: ...

    def __getitem__(self, index: int | slice) -> Pair | list[Pair]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        return self.task.split_item(self.store[self.positions[index]][0], self.records[index])


def _scored_items(task: Task, store: Store, records: Sequence[dict[str, Any]]) -> list[Any]:
    """What :meth:`Task.scores` reads of ``records``' items: a classifier's labels only
    (``(None, class)`` pairs: its outputs were computed elsewhere), a dense task's items."""
    if isinstance(task, Classification):
        return [(None, task.label_of(r)) for r in records]
    return _items(task, store, records)


def _signal(array: np.ndarray[Any, Any], record: dict[str, Any]) -> Signal:
    """A stored item as the :class:`~sigconv.io.Signal` its record describes (for transforms)."""
    metadata = {k: record[k] for k in FIELDS if k in record and k != "path"}
    if "affine" in metadata:
        metadata["affine"] = np.asarray(metadata["affine"], dtype=np.float64)
    axes = record.get("axes")
    return Signal(np.asarray(array), record["kind"], tuple(axes) if axes else None,
                  target_channels=record.get("target_channels") or 0, **metadata)


def _augmented_items(task: Task, transform: Callable[..., Signal],
                     arrays: Sequence[np.ndarray[Any, Any]], records: Sequence[dict[str, Any]],
                     seed: int, epoch: int) -> list[Pair]:
    """This epoch's ``[(input, target)]``: each raw item through ``transform``, then split.

    Item ``i`` draws from :func:`sigconv.transforms.item_rng` ``(seed, epoch, i)``.
    """
    return [_augmented_item(task, transform, a, r, seed, epoch, i)
            for i, (a, r) in enumerate(zip(arrays, records))]


def _augmented_item(task: Task, transform: Callable[..., Signal], array: np.ndarray[Any, Any],
                    record: dict[str, Any], seed: int, epoch: int, index: int) -> Pair:
    """``(input, target)`` of training item ``index`` in ``epoch``: the raw ``array`` through
    ``transform`` with :func:`sigconv.transforms.item_rng` ``(seed, epoch, index)``, split."""
    rng = transforms.item_rng(seed, epoch, index)
    return task.split_item(transform(_signal(array, record), rng).data, record)


def _loss_value(loss: object, epoch: int) -> float:
    """The float of a loss Tensor, or ArgumentError naming what the loss returned."""
    if not isinstance(loss, Tensor) or not isinstance(loss.data, np.ndarray) or \
            loss.data.size != 1:
        shown = f"a Tensor of {type(loss.data).__name__} {getattr(loss.data, 'shape', '')}" \
            if isinstance(loss, Tensor) else type(loss).__name__
        raise ArgumentError(f"the loss must return a scalar Tensor, got {shown} in epoch "
                            f"{epoch + 1}")
    return float(loss.data)


def _output_data(output: Any) -> Any:
    """The arrays of a task's training output (a Tensor, or the labeller's list of steps)."""
    return [o.data for o in output] if isinstance(output, list) else output.data
