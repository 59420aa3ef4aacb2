"""Resumable preparation of a store from source files, locally or on a Dask cluster.

:func:`prepare` turns a list of :class:`Source` files into a
:class:`~sigconv.data.store.Store`.  It survives being killed at any moment:

- each item is written atomically (temporary file, fsync, ``os.replace``),
  then its record is appended to ``manifest.jsonl``; a record is never
  written before its item;
- a rerun removes orphan temporary files, ignores (and cuts) a partial last
  manifest line, skips sources whose record matches their size, time stamp,
  checksum and converter (:func:`converter_key`: the same function with the
  same options), and prepares the rest again;
- at the end the manifest is rewritten atomically with one record per item,
  sorted by id, and files no record names are deleted, so an interrupted and
  resumed run ends with the same store as an uninterrupted one.

One run at a time: a run holds an exclusive lock on ``out/.lock`` (see
:mod:`sigconv._lock`) from its first look at the store to its last write, and
a second run on the same store fails at once with :class:`StoreError`
naming the store and the holder's pid, instead of deleting the first run's
temporary files.  A resumed run refuses a manifest whose records name files
outside ``out/items`` (:func:`~sigconv.data.store.item_path`) rather than
trust them.

A source that cannot be read or converted is skipped and recorded in
``failures.jsonl`` with its reason; the summary says ``ok + failed == total``.

Every item of a store must have the same number of channels (a model takes
one): a run whose items disagree (a folder of grey and colour images, say)
ends with :class:`~sigconv.errors.ShapeError` naming the files of each
channel count and the option that makes them agree.  The items stay
prepared, so a rerun with that option (another converter) or with the odd
files converted prepares only what changed.
"""
from __future__ import annotations

import concurrent.futures
import functools
import hashlib
import json
import multiprocessing
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import IO, Any, TextIO, Union

import numpy as np

from .._atomic import TEMP_PREFIX, TEMP_SUFFIX, atomic_save_npy, atomic_write_bytes
from .._lock import folder_lock
from .._validation import check_int
from ..typing import PathLike
from ..errors import ArgumentError, ShapeError
from .store import (FAILURES, ITEMS, MANIFEST, StoreError, checked_records, file_sha256,
                    read_records)

__all__ = ["Source", "prepare", "PrepareSummary", "convert_npy", "converter_key"]


@dataclass(frozen=True)
class Source:
    """One source file: its store ``id``, ``path`` and ``fields`` to record (label, split...)."""

    id: str
    path: str
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PrepareSummary:
    """What a :func:`prepare` run did."""

    total: int
    prepared: int
    unchanged: int
    failed: int

    @property
    def ok(self) -> int:
        """Sources whose items are in the store: prepared now or unchanged."""
        return self.prepared + self.unchanged

    def __str__(self) -> str:
        return (f"{self.ok} ok ({self.prepared} prepared, {self.unchanged} unchanged) + "
                f"{self.failed} failed == {self.total} total")


#: What a converter returns: ``(array, metadata)``, or ``(suffix, array, metadata)`` per item.
Converted = Union[tuple[Any, dict[str, Any]], Iterable[tuple[str, Any, dict[str, Any]]]]

#: ``(source, out, convert, previous records, converter key)``: one source's work.
_Task = tuple[Source, str, Callable[[str], Converted], list[dict[str, Any]], dict[str, Any]]


def converter_key(convert: Callable[..., Any]) -> dict[str, Any]:
    """What a record notes of the converter that made it (JSON).

    The function's qualified name, and for a :func:`functools.partial` its
    arguments and options (values that are not JSON by their ``repr``): a
    rerun with another function or other options prepares every source
    again.  Values a closure captures are not seen: fix options with
    ``functools.partial``.
    """
    if isinstance(convert, functools.partial):
        key = converter_key(convert.func)
        key.update(json.loads(json.dumps({"args": list(convert.args),
                                          "options": dict(convert.keywords)},
                                         default=repr, sort_keys=True)))
        return key
    name = getattr(convert, "__qualname__", None) or type(convert).__qualname__
    return {"function": f"{getattr(convert, '__module__', None) or ''}.{name}"}


def _source_stamp(path: str) -> tuple[int, int]:
    stat = os.stat(path)
    return stat.st_size, stat.st_mtime_ns


def _write_item(out: str, item_id: str, array: np.ndarray[Any, Any]) -> tuple[str, str]:
    """Write one item atomically; return its file name relative to ``out`` and its SHA-256."""
    item_file = os.path.join(ITEMS, f"{item_id}.npy")
    data = atomic_save_npy(os.path.join(out, item_file), array)
    return item_file, hashlib.sha256(data).hexdigest()


def _items_of(source: Source, converted: Converted) -> list[tuple[str, Any, dict[str, Any]]]:
    """``[(item id, array, metadata)]`` from a converter's result: one item, or several."""
    if isinstance(converted, tuple):
        array, metadata = converted
        return [(source.id, array, metadata)]
    items = []
    for suffix, array, metadata in converted:
        items.append((f"{source.id}__{suffix}", array, metadata))
    if not items:
        raise ValueError("the converter gave no items")
    return items


def _complete(records: Sequence[dict[str, Any]]) -> bool:
    """Whether ``records`` are all the items of their source (a run killed while appending
    a source's records leaves only some of them)."""
    return bool(records) and all(r.get("source_items") == len(records) for r in records)


def _prepare_one(source: Source, out: str, convert: Callable[[str], Converted],
                 previous: list[dict[str, Any]],
                 key: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    """Convert one source and write its items; return ``(status, records)``.

    ``status`` is "ok", "unchanged" or "failed" (then ``records`` is one
    failure record).  ``previous`` holds the source's records of an earlier
    run, ``key`` the :func:`converter_key` of ``convert``.  Runs in a worker
    process: everything it needs comes in its arguments.
    """
    try:
        size, mtime = _source_stamp(source.path)
        source_sha = file_sha256(source.path)
        if _complete(previous) and all(
                r.get("source_sha256") == source_sha and r.get("converter") == key
                and os.path.isfile(os.path.join(out, r["file"]))
                and file_sha256(os.path.join(out, r["file"])) == r.get("sha256")
                for r in previous):
            # the converter's metadata may override the source's fields (a slab's split,
            # say), so the records are kept as written; only where the source is changes
            return "unchanged", [dict(r, source=source.path, source_size=size,
                                      source_mtime_ns=mtime) for r in previous]
        records = []
        items = _items_of(source, convert(source.path))
        for item_id, array, metadata in items:
            array = np.asarray(array)
            item_file, item_sha = _write_item(out, item_id, array)
            record = dict(source.fields)
            record.update(metadata)
            record.update(id=item_id, source_id=source.id, file=item_file,
                          shape=list(array.shape), dtype=str(array.dtype),
                          sha256=item_sha, source=source.path, source_items=len(items),
                          source_sha256=source_sha, source_size=size, source_mtime_ns=mtime,
                          converter=key)
            records.append(record)
        return "ok", records
    except Exception as exc:  # any failure of one source is recorded, never fatal
        reason = f"{type(exc).__name__}: {exc}"
        return "failed", [dict(id=source.id, source=source.path, reason=reason.strip())]


def _append_record(handle: TextIO, record: dict[str, Any]) -> None:
    """Append one record after its item is in place.

    Flushed, not fsynced: a record lost to a crash only means its item is
    prepared again on the next run, and the final manifest is written
    atomically with fsync.
    """
    handle.write(json.dumps(record, sort_keys=True) + "\n")
    handle.flush()


def _clean(out: str) -> None:
    """Remove orphan temporary files and cut a partial last manifest line."""
    for folder in (out, os.path.join(out, ITEMS)):
        for name in os.listdir(folder):
            if name.startswith(TEMP_PREFIX) and name.endswith(TEMP_SUFFIX):
                os.unlink(os.path.join(folder, name))
    manifest = os.path.join(out, MANIFEST)
    if os.path.exists(manifest):
        with open(manifest, "rb+") as handle:
            if handle.seek(0, os.SEEK_END) == 0:
                return
            handle.seek(-1, os.SEEK_END)
            if handle.read(1) != b"\n":  # only then is the whole file read, to find the cut
                handle.seek(0)
                content = handle.read()
                handle.truncate(content.rfind(b"\n") + 1)
                handle.flush()
                os.fsync(handle.fileno())


def _json_lines(records: Iterable[dict[str, Any]]) -> bytes:
    """``records`` as JSON-lines bytes, keys sorted (the manifest's format)."""
    return "".join(json.dumps(r, sort_keys=True) + "\n" for r in records).encode()


def _compact(out: str, current_ids: set[str]) -> list[dict[str, Any]]:
    """Rewrite the manifest with the records of ``current_ids`` only; delete unnamed files.

    Returns the records kept."""
    latest: dict[str, dict[str, Any]] = {}
    for record in read_records(os.path.join(out, MANIFEST)):
        latest[record["id"]] = record
    records = [latest[key] for key in sorted(latest) if key in current_ids]
    atomic_write_bytes(os.path.join(out, MANIFEST), _json_lines(records))
    named = {os.path.normpath(r["file"]) for r in records}  # all inside items/ (checked)
    items = os.path.join(out, ITEMS)
    for name in sorted(os.listdir(items)):
        path = os.path.join(items, name)
        if os.path.join(ITEMS, name) not in named and not os.path.isdir(path):
            os.unlink(path)
    return records


#: How to make the items of each kind agree on a channel count (see :func:`_check_channels`).
CHANNEL_FIXES = {
    "image": "convert them on loading: mode='RGB' (3 channels) or mode='L' (1 grey channel) "
             "(sigconv prepare --mode RGB or --mode L)",
    "video": "decode them alike: mode='RGB' (3 channels) or mode='L' (1) "
             "(sigconv prepare --mode RGB or --mode L)",
    "waveform": "mix every file down to one channel: mono=True (sigconv prepare's default)",
    "spectrogram": "mix every file down to one channel: mono=True (sigconv prepare's default)",
    "skeleton": "the files hold different skeletons (channels are joint angles): prepare "
                "each skeleton into a store of its own",
}

#: Files named per channel count in the message of :func:`_check_channels`.
SHOWN_FILES = 5


def _check_channels(out: str, records: Sequence[dict[str, Any]]) -> None:
    """Refuse (ShapeError) a store whose items have different channel counts, naming the
    files of each count and the fix."""
    groups: dict[int | None, list[dict[str, Any]]] = {}
    for record in records:
        channels = record["shape"][0] if record.get("shape") else None
        groups.setdefault(channels, []).append(record)
    if len(groups) < 2:
        return
    parts = []
    for channels, group in sorted(groups.items(), key=lambda g: (-len(g[1]), str(g[0]))):
        names = sorted({r.get("relative_path") or os.path.basename(str(r.get("source", r["id"])))
                        for r in group})
        shown = ", ".join(names[:SHOWN_FILES]) + (
            f", ... ({len(names) - SHOWN_FILES} more)" if len(names) > SHOWN_FILES else "")
        unit = "channel" if channels == 1 else "channels"
        parts.append(f"{channels} {unit}: {len(group)} item{'s' * (len(group) != 1)} ({shown})")
    kinds = sorted({str(r.get("kind")) for r in records})
    fix = CHANNEL_FIXES.get(kinds[0]) if len(kinds) == 1 else None
    fix = fix or "give every item the same channels, or prepare each channel count into a " \
                 "store of its own"
    raise ShapeError(f"the items of store {out!r} have different channel counts, and a model "
                     f"takes one: {'; '.join(parts)}. To fix: {fix}")


def _run_local(tasks: Sequence[_Task],
               workers: int) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    if workers == 1:
        for task in tasks:
            yield _prepare_one(*task)
        return
    context = multiprocessing.get_context("spawn")  # fork is unsafe after OpenMP started
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context) as pool:
        futures = [pool.submit(_prepare_one, *task) for task in tasks]
        for future in concurrent.futures.as_completed(futures):
            yield future.result()


def _run_dask(tasks: Sequence[_Task], client: Any) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    from distributed import as_completed

    futures = client.map(lambda task: _prepare_one(*task), tasks, pure=False)
    for future in as_completed(futures):
        yield future.result()


def prepare(sources: Sequence[Source], out: PathLike, convert: Callable[[str], Converted], *,
            workers: int = 1, client: Any = None, progress: bool = True,
            log: IO[str] | None = sys.stderr) -> PrepareSummary:
    """Prepare ``sources`` into the store folder ``out``; resumable and idempotent.

    Parameters
    ----------
    sources : list of Source
        Ids must be unique and usable as file names.
    out : str or os.PathLike
        Store folder (created if needed).
    convert : callable
        ``convert(path) -> (array, metadata)``: the item's ``(C, *spatial)``
        array and a JSON-serialisable dict to record; or a list of
        ``(suffix, array, metadata)``: several items from one source (patches
        of a volume, say), with ids ``f"{source.id}__{suffix}"``.  With ``workers > 1`` or
        a Dask ``client`` it must be picklable (a module-level function).
    workers : int
        Local worker processes; 1 runs in this process.
    client : dask.distributed.Client, optional
        Run one task per source on this Dask cluster instead of locally; the
        workers must see ``out`` (a shared file system).
    progress : bool
        Show a tqdm progress bar with items/s and ETA.

    Returns
    -------
    PrepareSummary

    Raises
    ------
    ShapeError
        The items have different channel counts (they stay prepared; see the
        module docstring).
    """
    out = os.fspath(out)
    ids = [s.id for s in sources]
    if len(set(ids)) != len(ids):
        raise ArgumentError("source ids must be unique")
    separators = {s for s in (os.sep, os.altsep) if s is not None}
    bad = [i for i in ids if not isinstance(i, str) or not i or i.startswith(".")
           or any(c in i for c in separators)]
    if bad:
        raise ArgumentError(f"source ids must be plain file names, got {bad[:3]}")
    workers = check_int(workers, "workers")
    os.makedirs(os.path.join(out, ITEMS), exist_ok=True)
    with folder_lock(out, what="store", error=StoreError):
        return _prepare_locked(sources, out, convert, workers, client, progress, log)


def _prepare_locked(sources: Sequence[Source], out: str, convert: Callable[[str], Converted],
                    workers: int, client: Any, progress: bool,
                    log: IO[str] | None) -> PrepareSummary:
    """:func:`prepare` once it holds the store's lock."""
    _clean(out)
    previous: dict[str, dict[str, dict[str, Any]]] = {}  # the latest records of each source
    for record in checked_records(out, read_records(os.path.join(out, MANIFEST))):
        previous.setdefault(record.get("source_id", record["id"]), {})[record["id"]] = record
    tasks: list[_Task] = []
    unchanged = 0
    current_ids: set[str] = set()
    key = converter_key(convert)
    for source in sources:
        records = list(previous.get(source.id, {}).values())
        try:
            stamp = _source_stamp(source.path)
        except OSError:
            stamp = None
        if _complete(records) and stamp is not None and all(
                (r.get("source_size"), r.get("source_mtime_ns")) == stamp
                and r.get("source") == source.path and r.get("converter") == key
                and os.path.isfile(os.path.join(out, r["file"])) for r in records):
            unchanged += 1
            current_ids.update(r["id"] for r in records)
            continue
        tasks.append((source, out, convert, records, key))

    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(sources), initial=unchanged, unit="item", desc="prepare", file=log)
    prepared = 0
    failures: list[dict[str, Any]] = []
    runner = _run_dask(tasks, client) if client is not None else _run_local(tasks, workers)
    with open(os.path.join(out, MANIFEST), "a", encoding="utf-8") as manifest:
        for status, records in runner:
            if status == "failed":
                failures.extend(records)
            else:
                for record in records:
                    _append_record(manifest, record)
                    current_ids.add(record["id"])
                prepared += status == "ok"
                unchanged += status == "unchanged"
            if bar is not None:
                bar.update(1)
    if bar is not None:
        bar.close()
    failures.sort(key=lambda r: r["id"])
    atomic_write_bytes(os.path.join(out, FAILURES), _json_lines(failures))
    records = _compact(out, current_ids)
    summary = PrepareSummary(total=len(sources), prepared=prepared, unchanged=unchanged,
                             failed=len(failures))
    if log is not None:
        print(f"prepared {out}: {summary}", file=log)
        for failure in failures[:10]:
            print(f"  failed {failure['source']}: {failure['reason']}", file=log)
    _check_channels(out, records)
    return summary


def convert_npy(path: PathLike) -> tuple[np.ndarray[Any, Any], dict[str, Any]]:
    """A converter for ``.npy`` sources: the array as ``(C, *spatial)`` float32, no metadata.

    A 1-D array becomes one channel.
    """
    array = np.load(path, allow_pickle=False)
    if array.ndim == 1:
        array = array[None]
    if array.dtype.kind not in "fiub":
        raise ArgumentError(f"{path}: expected a real numeric array, got dtype {array.dtype}")
    return array.astype(np.float32, copy=False), {}
