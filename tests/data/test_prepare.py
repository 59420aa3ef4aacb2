"""Preparation into a store: atomic, resumable after kill -9, idempotent, failures recorded."""
import json
import os
import random
import re
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from sigconv import ArgumentError, ShapeError
from sigconv.data import Source, Store, StoreError, convert_npy, prepare
from sigconv.data.prepare import converter_key
from sigconv.data.store import file_sha256


def _sources(folder, rng, n=12, corrupt=()):
    folder.mkdir(exist_ok=True)
    sources = []
    for i in range(n):
        path = folder / f"clip_{i:03d}.npy"
        if i in corrupt:
            path.write_bytes(b"\x93NUMPY this is not a real npy file")
        else:
            np.save(path, rng.standard_normal(int(rng.integers(5, 40))))
        sources.append(Source(f"clip_{i:03d}", str(path),
                              {"label": i % 3, "split": "test" if i < 4 else "train"}))
    return sources


def _snapshot(out):
    files = {}
    for root, _, names in os.walk(out):
        for name in names:
            path = os.path.join(root, name)
            files[os.path.relpath(path, out)] = file_sha256(path)
    return files


def test_prepare_and_read_back(tmp_path, rng):
    sources = _sources(tmp_path / "src", rng)
    summary = prepare(sources, tmp_path / "store", convert_npy, progress=False, log=None)
    assert (summary.prepared, summary.unchanged, summary.failed) == (12, 0, 0)
    store = Store(tmp_path / "store")
    assert len(store) == 12 and len(store.split("test")) == 4 and len(store.split("train")) == 8
    for (array, record), source in zip(store, sources):
        np.testing.assert_array_equal(array, np.load(source.path)[None].astype(np.float32))
        assert record["label"] == int(source.id[-3:]) % 3 and record["source"] == source.path
    store.verify()
    assert "12 items" in repr(store)


def test_rerun_does_nothing_and_changed_source_is_prepared_again(tmp_path, rng):
    sources = _sources(tmp_path / "src", rng)
    out = tmp_path / "store"
    prepare(sources, out, convert_npy, progress=False, log=None)
    before = _snapshot(out)
    again = prepare(sources, out, convert_npy, progress=False, log=None)
    assert (again.prepared, again.unchanged) == (0, 12)
    assert _snapshot(out) == before
    np.save(sources[5].path, np.arange(7.0))
    changed = prepare(sources, out, convert_npy, progress=False, log=None)
    assert (changed.prepared, changed.unchanged) == (1, 11)
    np.testing.assert_array_equal(Store(out)[5][0], np.arange(7.0)[None])


def test_corrupt_sources_are_recorded_and_skipped(tmp_path, rng, capsys):
    sources = _sources(tmp_path / "src", rng, corrupt=(2, 7))
    sources.append(Source("missing", str(tmp_path / "src" / "nope.npy")))
    summary = prepare(sources, tmp_path / "store", convert_npy, progress=False, log=sys.stdout)
    assert (summary.ok, summary.failed, summary.total) == (10, 3, 13)
    printed = capsys.readouterr().out
    assert "10 ok (10 prepared, 0 unchanged) + 3 failed == 13 total" in printed
    failures = Store(tmp_path / "store").failures()
    assert [f["id"] for f in failures] == ["clip_002", "clip_007", "missing"]
    assert all(f["reason"] for f in failures)
    assert len(Store(tmp_path / "store")) == 10


def test_two_workers_equal_one(tmp_path, rng):
    sources = _sources(tmp_path / "src", rng, n=10)
    prepare(sources, tmp_path / "one", convert_npy, progress=False, log=None)
    prepare(sources, tmp_path / "two", convert_npy, workers=2, progress=False, log=None)
    assert _snapshot(tmp_path / "one") == _snapshot(tmp_path / "two")


def test_dask_cluster_equals_local(tmp_path, rng):
    distributed = pytest.importorskip("distributed", reason="dask.distributed is not installed")
    sources = _sources(tmp_path / "src", rng, n=8, corrupt=(3,))
    prepare(sources, tmp_path / "local", convert_npy, progress=False, log=None)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        summary = prepare(sources, tmp_path / "dask", convert_npy, client=client,
                          progress=False, log=None)
    assert (summary.ok, summary.failed) == (7, 1)
    assert _snapshot(tmp_path / "local") == _snapshot(tmp_path / "dask")


KILLED_RUN = textwrap.dedent("""
    import sys, time
    import numpy as np
    from sigconv.data import Source, prepare, convert_npy

    def slow(path):
        time.sleep(0.02)
        return convert_npy(path)

    names = sys.argv[3:]
    sources = [Source(n[:-4], sys.argv[1] + "/" + n, {"split": "train"}) for n in names]
    prepare(sources, sys.argv[2], slow, progress=False, log=None)
""")


def test_kill_at_random_moments_then_resume(tmp_path, rng):
    """kill -9 at random points, then the same command: the store equals an uninterrupted one."""
    sources = _sources(tmp_path / "src", rng, n=40)
    names = [os.path.basename(s.path) for s in sources]
    script = tmp_path / "run.py"
    script.write_text(KILLED_RUN)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    src = str(tmp_path / "src")
    command = [sys.executable, str(script), src, str(tmp_path / "store")] + names
    subprocess.run([sys.executable, str(script), src, str(tmp_path / "reference")] + names,
                   check=True, env=env, timeout=120)
    expected = _snapshot(tmp_path / "reference")

    chooser = random.Random(20261126)
    kills = 0
    for trial in range(6):
        process = subprocess.Popen(command, env=env)
        time.sleep(chooser.uniform(0.3, 1.2))
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            kills += 1
        process.wait()
        store = tmp_path / "store"
        if (store / "manifest.jsonl").exists():   # what a reader sees after a crash is sound
            records = [json.loads(line) for line in
                       (store / "manifest.jsonl").read_bytes().split(b"\n")[:-1] if line]
            for record in records:
                assert file_sha256(store / record["file"]) == record["sha256"]
        if (store / "items").exists():            # no partial item under its final name
            for name in os.listdir(store / "items"):
                if not name.startswith(".tmp-"):
                    assert file_sha256(store / "items" / name) == expected["items/" + name]
    assert kills >= 3
    subprocess.run(command, check=True, env=env, timeout=120)
    assert _snapshot(tmp_path / "store") == expected
    assert not [n for n in os.listdir(tmp_path / "store" / "items") if n.startswith(".tmp-")]
    assert len(Store(tmp_path / "store")) == 40


def test_bad_arguments_and_bad_store(tmp_path, rng):
    sources = _sources(tmp_path / "src", rng, n=2)
    with pytest.raises(ArgumentError, match="unique"):
        prepare(sources + sources[:1], tmp_path / "s", convert_npy, log=None)
    with pytest.raises(ArgumentError, match="plain file names"):
        prepare([Source("a/b", sources[0].path)], tmp_path / "s", convert_npy, log=None)
    with pytest.raises(ArgumentError, match="workers"):
        prepare(sources, tmp_path / "s", convert_npy, workers=0, log=None)
    with pytest.raises(StoreError, match="not a prepared store"):
        Store(tmp_path)
    prepare(sources, tmp_path / "s", convert_npy, progress=False, log=None)
    store = Store(tmp_path / "s")
    np.save(tmp_path / "s" / store.records[0]["file"], np.zeros((1, 3)))
    with pytest.raises(StoreError, match="manifest says"):
        store[0]
    with pytest.raises(StoreError, match="checksum"):
        store.verify()
    with pytest.raises(IndexError):
        store[5]


def convert_halves(path):
    """A converter giving two items per source (its first and second half)."""
    array, _ = convert_npy(path)
    half = array.shape[-1] // 2
    return [("a", array[..., :half], {"part": 0}), ("b", array[..., half:], {"part": 1})]


def convert_thirds(path):
    array, _ = convert_npy(path)
    return [(str(k), part, {"part": k}) for k, part in enumerate(np.array_split(array, 3, -1))]


def test_several_items_per_source(tmp_path, rng):
    sources = _sources(tmp_path / "src", rng, n=4)
    out = tmp_path / "store"
    summary = prepare(sources, out, convert_halves, progress=False, log=None)
    assert (summary.prepared, summary.total) == (4, 4)
    store = Store(out)
    assert len(store) == 8 and store.records[0]["id"] == "clip_000__a"
    whole = np.load(sources[0].path)[None].astype(np.float32)
    np.testing.assert_array_equal(np.concatenate([store[0][0], store[1][0]], -1), whole)
    assert store[1][1]["source_id"] == "clip_000" and store[1][1]["part"] == 1
    again = prepare(sources, out, convert_halves, progress=False, log=None)
    assert (again.prepared, again.unchanged) == (0, 4)
    other = prepare(sources, out, convert_thirds, progress=False, log=None)
    assert (other.prepared, other.unchanged) == (4, 0)  # another converter: every source again
    np.save(sources[2].path, np.arange(9.0))      # a changed source (its items change too)
    for source in sources:
        os.utime(source.path)
    changed = prepare(sources, out, convert_thirds, progress=False, log=None)
    assert changed.prepared == 1 and changed.unchanged == 3
    ids = [r["id"] for r in Store(out).records]
    assert [i for i in ids if i.startswith("clip_002")] == ["clip_002__0", "clip_002__1",
                                                            "clip_002__2"]
    assert sorted(os.listdir(out / "items")) == sorted(f"{i}.npy" for i in ids)


def test_a_source_whose_records_were_cut_short_is_prepared_again(tmp_path, rng):
    sources = _sources(tmp_path / "src", rng, n=2)
    out = tmp_path / "store"
    prepare(sources, out, convert_halves, progress=False, log=None)
    manifest = out / "manifest.jsonl"
    lines = manifest.read_text().splitlines(keepends=True)
    manifest.write_text(lines[0] + lines[2] + lines[3])  # killed between clip_000's records
    again = prepare(sources, out, convert_halves, progress=False, log=None)
    assert (again.prepared, again.unchanged) == (1, 1)
    assert [r["id"] for r in Store(out).records] == ["clip_000__a", "clip_000__b",
                                                     "clip_001__a", "clip_001__b"]
    Store(out).verify()                                   # every item file matches


def test_a_moved_source_is_recorded_at_its_new_path(tmp_path, rng):
    sources = _sources(tmp_path / "a", rng, n=2)
    prepare(sources, tmp_path / "store", convert_halves, progress=False, log=None)
    os.rename(tmp_path / "a", tmp_path / "b")
    moved = [Source(s.id, s.path.replace(os.sep + "a" + os.sep, os.sep + "b" + os.sep),
                    s.fields) for s in sources]
    assert prepare(moved, tmp_path / "store", convert_halves, progress=False,
                   log=None).unchanged == 2
    assert {r["source"] for r in Store(tmp_path / "store").records} == {s.path for s in moved}
    again = prepare(moved, tmp_path / "store", convert_halves, progress=False, log=None)
    assert again.unchanged == 2


def _copy_out(store, record, outside):
    """A copy of ``record``'s item outside the store, with the same bytes (so its checksum
    matches): what a crafted manifest would point to."""
    outside.mkdir(exist_ok=True)
    target = outside / "secret.npy"
    target.write_bytes((store / record["file"]).read_bytes())
    return target


def _rewrite_file(store, item_id, new_file):
    lines = (store / "manifest.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    for record in records:
        if record["id"] == item_id:
            record["file"] = new_file
    (store / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))


@pytest.mark.parametrize("escape", ["relative", "absolute", "symlink"])
def test_a_manifest_naming_files_outside_the_store_is_refused(tmp_path, rng, escape):
    sources = _sources(tmp_path / "src", rng, n=3)
    out = tmp_path / "store"
    prepare(sources, out, convert_npy, progress=False, log=None)
    record = Store(out).records[0]
    secret = _copy_out(out, record, tmp_path / "outside")
    if escape == "symlink":     # the name stays inside, the link leads out
        (out / record["file"]).unlink()
        (out / record["file"]).symlink_to(secret)
        named = record["file"]
    else:
        named = "../outside/secret.npy" if escape == "relative" else str(secret)
        _rewrite_file(out, record["id"], named)
    pattern = (rf"item 'clip_000' names the file '{re.escape(named)}', which resolves "
               r"outside .*items")
    with pytest.raises(StoreError, match=pattern):
        Store(out)                                    # so neither store[i] nor verify() reads it
    item = out / "items" / "clip_000.npy"
    if escape != "symlink":
        item.write_bytes(secret.read_bytes())         # the real item is still there
    with pytest.raises(StoreError, match=pattern):    # a resumed run refuses too ...
        prepare(sources, out, convert_npy, progress=False, log=None)
    assert item.exists() and secret.exists()          # ... and deletes nothing
    from sigconv.train import train
    with pytest.raises(StoreError, match=pattern):
        train(out, tmp_path / "run", epochs=1, progress=False, log=None)


def test_a_damaged_record_is_refused_with_its_line(tmp_path, rng):
    sources = _sources(tmp_path / "src", rng, n=2)
    out = tmp_path / "store"
    prepare(sources, out, convert_npy, progress=False, log=None)
    with open(out / "manifest.jsonl", "a") as handle:
        handle.write('[1, 2]\n{"id": "x"}\n')
    with pytest.raises(StoreError, match=r"record 3 is not an object with a string 'id'"):
        Store(out)
    (out / "manifest.jsonl").write_text('{"id": "x"}\n')
    with pytest.raises(StoreError, match=r"item 'x' has no file name \(its 'file' is None\)"):
        Store(out)


SLOW_RUN = textwrap.dedent("""
    import sys, time
    from sigconv.data import Source, prepare, convert_npy

    def slow(path):
        time.sleep(0.05)
        return convert_npy(path)

    names = sys.argv[3:]
    sources = [Source(n[:-4], sys.argv[1] + "/" + n, {"split": "train"}) for n in names]
    prepare(sources, sys.argv[2], slow, progress=False, log=None)
""")


def test_a_second_run_on_a_store_being_prepared_fails_at_once(tmp_path, rng, shared_data,
                                                               capsys):
    """Two runs on one store at once used to delete each other's temporary files."""
    import importlib.util
    import pathlib

    sources = _sources(tmp_path / "src", rng, n=40)
    names = [os.path.basename(s.path) for s in sources]
    script = tmp_path / "slow.py"
    script.write_text(SLOW_RUN)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    env.pop("PYTHONUNBUFFERED", None)
    out = tmp_path / "store"
    child = subprocess.Popen([sys.executable, str(script), str(tmp_path / "src"), str(out)]
                             + names, env=env)
    try:
        deadline = time.monotonic() + 60
        while not ((out / "manifest.jsonl").exists() and (out / "manifest.jsonl").read_bytes()):
            assert child.poll() is None and time.monotonic() < deadline, "the run did not start"
            time.sleep(0.01)
        busy = (rf"store '{re.escape(str(out))}' is in use by another process "
                rf"\(pid {child.pid} on .*\): it holds the lock file")
        with pytest.raises(StoreError, match=busy):
            prepare(sources, out, convert_npy, progress=False, log=None)
        # the dataset scripts say so and exit 2
        path = pathlib.Path(__file__).resolve().parents[2] / "datasets" / "fsdd.py"
        spec = importlib.util.spec_from_file_location("fsdd_lock", path)
        fsdd = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(fsdd)
        assert fsdd.main(["--source", str(shared_data / "fsdd"), "--out", str(out),
                          "--limit", "2"]) == 2
        assert f"pid {child.pid}" in capsys.readouterr().err
        assert child.poll() is None                   # it was still running all along
    finally:
        assert child.wait(timeout=120) == 0
    store = Store(out)                                # the first run finished untouched
    assert len(store) == 40 and not store.failures()
    store.verify()
    prepare(sources, out, convert_npy, progress=False, log=None)   # free again afterwards


def test_the_store_lock_is_taken_in_one_process_too(tmp_path, rng, capsys):
    from sigconv._lock import folder_lock

    sources = _sources(tmp_path / "src", rng, n=2)
    out = tmp_path / "store"
    prepare(sources, out, convert_npy, progress=False, log=None)
    with folder_lock(out, what="store", error=StoreError):
        with pytest.raises(StoreError, match=rf"pid {os.getpid()}"):
            prepare(sources, out, convert_npy, progress=False, log=None)
        from sigconv.cli import main            # sigconv prepare says so and exits 2
        assert main(["prepare", str(tmp_path / "src"), str(out), "--kind", "volume"]) == 2
        assert "is in use by another process" in capsys.readouterr().err
    assert (out / ".lock").read_bytes() == b""        # no holder noted once released
    assert prepare(sources, out, convert_npy, progress=False, log=None).unchanged == 2


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_store_files_honour_the_umask(tmp_path, rng, umask):
    sources = _sources(tmp_path / "src", rng, n=3, corrupt=(1,))
    old = os.umask(umask)
    try:
        prepare(sources, tmp_path / "store", convert_npy, progress=False, log=None)
    finally:
        os.umask(old)
    modes = {name: os.stat(tmp_path / "store" / name).st_mode & 0o777
             for name in _snapshot(tmp_path / "store")}
    assert {"manifest.jsonl", "failures.jsonl", "items/clip_000.npy"} <= set(modes)
    assert modes == dict.fromkeys(modes, 0o666 & ~umask)


def _channels_of_the_name(path):
    """A converter whose items have as many channels as the file's name says (c1, c3)."""
    array, _ = convert_npy(path)
    return np.repeat(array, int(os.path.basename(path)[1]), axis=0), {"kind": "image"}


def test_items_of_different_channel_counts_are_refused_naming_the_files(tmp_path, rng):
    (tmp_path / "src").mkdir()
    sources = []
    for name in ("c1a", "c3a", "c3b"):
        np.save(tmp_path / "src" / f"{name}.npy", rng.standard_normal(8))
        sources.append(Source(name, str(tmp_path / "src" / f"{name}.npy")))
    out = tmp_path / "store"
    with pytest.raises(ShapeError, match=r"3 channels: 2 items \(c3a.npy, c3b.npy\); 1 channel: "
                                         r"1 item \(c1a.npy\)\. To fix: .*mode='RGB'"):
        prepare(sources, out, _channels_of_the_name, progress=False, log=None)
    assert len(Store(out)) == 3                 # prepared, so that a fix redoes only what changed
    # another converter (options included) prepares every source again
    import functools
    key = converter_key(functools.partial(convert_npy))
    assert key == {"function": "sigconv.data.prepare.convert_npy", "args": [], "options": {}}
    again = prepare(sources, out, functools.partial(convert_npy), progress=False, log=None)
    assert (again.prepared, again.unchanged) == (3, 0)
    assert {r["converter"]["function"] for r in Store(out).records} == {key["function"]}
