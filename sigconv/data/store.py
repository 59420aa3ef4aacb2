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
"""
import hashlib
import json
import os

import numpy as np

from ..errors import ArgumentError, SigconvError

__all__ = ["Store", "StoreError", "file_sha256", "read_records", "MANIFEST", "FAILURES"]

MANIFEST = "manifest.jsonl"
FAILURES = "failures.jsonl"
ITEMS = "items"


class StoreError(SigconvError, OSError):
    """A store folder is missing, incomplete or does not match its manifest."""


def file_sha256(path, chunk=1 << 20):
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def read_records(path):
    """Records of a JSON-lines file; a partial last line (an interrupted append) is ignored."""
    records = []
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


class Store:
    """Read a prepared store: ``len``, ``store[i]`` and ``store.split(name)``.

    Parameters
    ----------
    path : str or os.PathLike
        The store folder.
    mmap : bool
        Open arrays memory-mapped (default) rather than reading them whole.

    ``store[i]`` returns ``(array, record)``: the item's ``(C, *spatial)``
    array and its manifest record (a dict).  Items are in ``id`` order.
    """

    def __init__(self, path, *, mmap=True, _records=None):
        self.path = os.fspath(path)
        manifest = os.path.join(self.path, MANIFEST)
        if _records is None:
            if not os.path.isfile(manifest):
                raise StoreError(f"{self.path!r} is not a prepared store: {MANIFEST} is missing")
            latest = {}
            for record in read_records(manifest):  # later records supersede earlier ones
                latest[record["id"]] = record
            _records = [latest[key] for key in sorted(latest)]
        self.records = _records
        self.mmap = mmap

    def __len__(self):
        return len(self.records)

    def __getitem__(self, index):
        if not isinstance(index, (int, np.integer)):
            raise ArgumentError(f"store items are indexed by an int, got {index!r}")
        if not -len(self) <= index < len(self):
            raise IndexError(f"item {index} of a store of {len(self)} items")
        record = self.records[index]
        path = os.path.join(self.path, record["file"])
        try:
            array = np.load(path, mmap_mode="r" if self.mmap else None, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise StoreError(f"cannot read item {record['id']!r} from {path}: {exc}") from None
        if list(array.shape) != list(record["shape"]):
            raise StoreError(f"item {record['id']!r}: {path} holds shape {array.shape}, "
                             f"the manifest says {tuple(record['shape'])}")
        return array, record

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def split(self, name):
        """The items whose record has ``"split": name``, as a Store."""
        return Store(self.path, mmap=self.mmap,
                     _records=[r for r in self.records if r.get("split") == name])

    def filter(self, predicate):
        """The items whose record satisfies ``predicate(record)``, as a Store."""
        return Store(self.path, mmap=self.mmap, _records=[r for r in self.records if predicate(r)])

    def failures(self):
        """Records of the sources that could not be prepared (path and reason)."""
        return read_records(os.path.join(self.path, FAILURES))

    def verify(self):
        """Check every item file against its manifest checksum (:class:`StoreError` if not)."""
        for record in self.records:
            path = os.path.join(self.path, record["file"])
            if not os.path.isfile(path) or file_sha256(path) != record["sha256"]:
                raise StoreError(f"item {record['id']!r}: {path} is missing or does not match "
                                 "its checksum")

    def __repr__(self):
        splits = sorted({str(r.get("split")) for r in self.records})
        return f"Store({self.path!r}, {len(self)} items, splits {splits})"
