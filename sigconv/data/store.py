"""The prepared store: items of different sizes with their metadata, on disk.

Layout of a store folder, readable without sigconv::

    manifest.jsonl      one JSON record per item (sorted by "id")
    items/<id>.npy      the item's array, (C, *spatial), a plain NumPy file
    failures.jsonl      sources that could not be prepared: path and reason

Why this format: one ``.npy`` file per item makes every write atomic on its
own (temporary file in the same folder, fsync, ``os.replace``), so an
interrupted preparation never leaves a half-written item under its final
name, and resuming only redoes the items that have no record.  ``.npy`` files
open memory-mapped (``np.load(path, mmap_mode="r")``) for random access, and
JSON lines are read by any tool.  A record holds ``id``, ``file``, ``shape``,
``dtype``, ``sha256`` (of the ``.npy`` file), ``source`` and
``source_sha256``, ``split``, ``label``, ``kind``, ``axes`` and whatever else
the preparation records (sample rate, spacing, ...).

A record's ``file`` is relative to the store folder and must resolve (symlinks
followed) to a file inside its ``items/`` folder: a manifest naming
``../elsewhere/x.npy``, an absolute path, or a link out of the store is
refused with :class:`StoreError` when the store is opened (and by a resumed
:func:`~sigconv.data.prepare`), so a store copied from elsewhere cannot make
sigconv read, verify, train on or delete files outside it.
"""
from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..errors import ArgumentError, SigconvError
from ..typing import PathLike

__all__ = ["Store", "StoreError", "file_sha256", "read_records", "item_path", "checked_records",
           "MANIFEST", "FAILURES"]

MANIFEST = "manifest.jsonl"
FAILURES = "failures.jsonl"
ITEMS = "items"


class StoreError(SigconvError, OSError):
    """A store folder is missing, incomplete or does not match its manifest."""


def file_sha256(path: PathLike, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def read_records(path: PathLike) -> list[Any]:
    """Records of a JSON-lines file; a partial last line (an interrupted append) is ignored."""
    records: list[Any] = []
    if not os.path.exists(path):
        return records
    with open(path, "rb") as handle:
        lines = handle.read().split(b"\n")
    for number, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            if number == len(lines) - 1:  # the unterminated tail of an interrupted append
                break
            raise StoreError(f"{path}: line {number + 1} is not valid JSON") from None
    return records


def _inside(path: str, folder: str) -> bool:
    """Whether ``path`` lies strictly inside ``folder`` (both absolute and resolved)."""
    try:
        return path != folder and os.path.commonpath([path, folder]) == folder
    except ValueError:  # different drives on Windows
        return False


def item_path(root: PathLike, record: dict[str, Any], *, where: str | None = None) -> str:
    """The path of ``record``'s item file, checked to resolve inside ``root/items``.

    Raises :class:`StoreError` naming the record, its ``file`` and the folder
    it must stay in when ``file`` is missing, not a string, absolute, or
    resolves (after ``..`` and symlinks) anywhere else.  ``where`` names the
    manifest in the message (default ``root/manifest.jsonl``).
    """
    root = os.fspath(root)
    where = where or os.path.join(root, MANIFEST)
    name = record.get("file")
    items = os.path.join(root, ITEMS)
    if not isinstance(name, str) or not name:
        raise StoreError(f"{where}: item {record.get('id')!r} has no file name (its 'file' is "
                         f"{name!r}); expected a path inside {items!r}")
    path = os.path.join(root, name)
    if os.path.isabs(name) or os.path.splitdrive(name)[0] or not _inside(
            os.path.realpath(path), os.path.realpath(items)):
        raise StoreError(f"{where}: item {record.get('id')!r} names the file {name!r}, which "
                         f"resolves outside the store's item folder {items!r}; a store only "
                         "reads items inside it (was the manifest edited, or the store "
                         "copied with links?): remove that record, or prepare the store "
                         "again into a new folder")
    return path


def checked_records(root: PathLike, records: list[Any]) -> list[dict[str, Any]]:
    """``records`` of the manifest of ``root``, each checked to be an object with an ``id``
    and an item file inside the store (:func:`item_path`); raises :class:`StoreError`."""
    where = os.path.join(os.fspath(root), MANIFEST)
    for number, record in enumerate(records, start=1):
        if not isinstance(record, dict) or not isinstance(record.get("id"), str):
            raise StoreError(f"{where}: record {number} is not an object with a string 'id': "
                             f"{str(record)[:80]}")
        item_path(root, record, where=where)
    return records


class Store:
    """Read a prepared store: ``len``, ``store[i]`` and ``store.split(name)``.

    Parameters
    ----------
    path : str or os.PathLike
        The store folder.
    mmap : bool
        Open arrays memory-mapped (default) rather than reading them whole.

    Notes
    -----
    ``store[i]`` returns ``(array, record)``: the item's ``(C, *spatial)``
    array and its manifest record (a dict).  Items are in ``id`` order.
    """

    def __init__(self, path: PathLike, *, mmap: bool = True,
                 _records: list[dict[str, Any]] | None = None) -> None:
        self.path = os.fspath(path)
        manifest = os.path.join(self.path, MANIFEST)
        if _records is None:
            if not os.path.isfile(manifest):
                raise StoreError(f"{self.path!r} is not a prepared store: {MANIFEST} is missing")
            latest: dict[Any, dict[str, Any]] = {}
            # later records supersede earlier ones
            for record in checked_records(self.path, read_records(manifest)):
                latest[record["id"]] = record
            _records = [latest[key] for key in sorted(latest)]
        self.records = _records
        self.mmap = mmap

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> tuple[NDArray[Any], dict[str, Any]]:
        if not isinstance(index, (int, np.integer)):
            raise ArgumentError(f"store items are indexed by an int, got {index!r}")
        if not -len(self) <= index < len(self):
            raise IndexError(f"item {index} of a store of {len(self)} items")
        record = self.records[index]
        path = item_path(self.path, record)
        try:
            array = np.load(path, mmap_mode="r" if self.mmap else None, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise StoreError(f"cannot read item {record['id']!r} from {path}: {exc}") from None
        if list(array.shape) != list(record["shape"]):
            raise StoreError(f"item {record['id']!r}: {path} holds shape {array.shape}, "
                             f"the manifest says {tuple(record['shape'])}")
        return array, record

    def __iter__(self) -> Iterator[tuple[NDArray[Any], dict[str, Any]]]:
        return (self[i] for i in range(len(self)))

    def split(self, name: str) -> Store:
        """The items whose record has ``"split": name``, as a Store."""
        return Store(self.path, mmap=self.mmap,
                     _records=[r for r in self.records if r.get("split") == name])

    def filter(self, predicate: Callable[[dict[str, Any]], bool]) -> Store:
        """The items whose record satisfies ``predicate(record)``, as a Store."""
        return Store(self.path, mmap=self.mmap, _records=[r for r in self.records if predicate(r)])

    def failures(self) -> list[Any]:
        """Records of the sources that could not be prepared (path and reason)."""
        return read_records(os.path.join(self.path, FAILURES))

    def verify(self) -> None:
        """Check every item file against its manifest checksum (:class:`StoreError` if not)."""
        for record in self.records:
            path = item_path(self.path, record)
            if not os.path.isfile(path) or file_sha256(path) != record["sha256"]:
                raise StoreError(f"item {record['id']!r}: {path} is missing or does not match "
                                 "its checksum")

    def __repr__(self) -> str:
        splits = sorted({str(r.get("split")) for r in self.records})
        return f"Store({self.path!r}, {len(self)} items, splits {splits})"
