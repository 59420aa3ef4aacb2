"""Data-parallel training on a Dask cluster: steps/s, communication share, scaling efficiency.

Run from the project root (under the machine's benchmark lock)::

    flock /tmp/sigconv-bench.lock python benchmarks/bench_distributed.py
    flock /tmp/sigconv-bench.lock python benchmarks/bench_distributed.py --quick   # smoke run

What is timed.  One training epoch of each workload, three ways, from the
same initial weights and the same batches (``task.plan`` from ``(seed,
epoch)``, as ``sigconv train`` draws them):

* ``single``: the single process with 2 threads (sigconv's OpenMP and the
  BLAS held to 2 by threadpoolctl): the inner loop of ``sigconv.train.train``
  (augment the epoch's items, assemble each batch, forward, backward, Adam),
  without evaluation, checkpoints and the progress bar;
* ``1 worker`` and ``2 workers``: ``sigconv.train.distributed.DataParallel``
  on a ``LocalCluster`` of that many single-threaded worker processes (the
  Nanny's default ``OMP_NUM_THREADS=1``; checked and printed), the client in
  this process stepping Adam on the averaged gradient, exactly as ``train(...,
  client=...)`` does.

Workloads.  FSDD: the classifier on raw 8 kHz waveforms, batches of 32
clips, the default waveform augmentation (the store of ``bench_train.py``,
``datasets/fsdd.py``).  CT: the denoising encoder-decoder (16-32 channels)
on crops of 32^3 of the stent's training slab, sigma 100, the default volume
augmentation (``datasets/ct_volumes.py --slabs 0.7 0.1 0.2``), at the task's
2 crops a step and at 4.

Printed per run: the epoch's wall time, steps/s, the median step, the
median of the slowest shard's seconds on its worker (``DataParallel.
shard_seconds``) and the communication share ``1 - shard / step`` (pickling,
scheduling, the weights down and the gradients up, the client's Adam step).
Scaling efficiency is ``T(1 worker) / (2 T(2 workers))``.

Projection to 8 and 32 workers (a model, not a measurement).  A step on W
workers is taken as ``c * ceil(B / W) + a + b W + 2 W S / bandwidth``: ``c``
the measured compute per item of the 1-worker run (a worker to itself, as on
a cluster node), ``a + b W`` the overhead fitted through the 1- and 2-worker
medians (scheduling and (de)serialisation on the client grow with the
number of tasks), ``S`` the bytes of the weights, sent down and a gradient
up per worker through the client's network link (``--bandwidth``, default
1.25 GB/s: 10 Gb/s Ethernet; the LocalCluster's loopback is in ``b``).  FSDD
is projected at its global batch of 32 (strong scaling; at 32 workers a
shard is one clip); CT at 2 crops per worker (weak scaling: the global
batch grows with W, which changes the optimisation, so its efficiency is
that of throughput, crops per second).  The model ignores stragglers and
the shards' unequal clip lengths.
"""
import argparse
import contextlib
import math
import os
import pathlib
import statistics
import sys
import tempfile
import time

import numpy as np

from _common import cpu_count, format_table, machine_line

ROOT = pathlib.Path(__file__).resolve().parents[1]
try:
    import sigconv
except ImportError:  # run from a source checkout without installing
    sys.path.insert(1, str(ROOT))
    import sigconv
from bench_train import DATA, DEFAULT_STORE, ensure_store
from sigconv import optim
from sigconv.data import Store
from sigconv.train import TASKS
from sigconv.train.distributed import DataParallel
from sigconv.train.items import _arrays, _augmented_items, _items, _split_items
from sigconv.train.loop import _transform

DEFAULT_CT_STORE = pathlib.Path(tempfile.gettempdir()) / "sigconv-bench" / "stent"


def ensure_ct_store(path, source):
    """The stent store at ``path`` (datasets/ct_volumes.py --slabs 0.7 0.1 0.2), prepared once."""
    path = pathlib.Path(path)
    if not (path / "manifest.jsonl").is_file():
        import importlib.util

        spec = importlib.util.spec_from_file_location("ct_volumes",
                                                      ROOT / "datasets" / "ct_volumes.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        print(f"preparing the stent slabs into {path} (done once)", flush=True)
        if module.main(["--source", os.fspath(source), "--out", os.fspath(path),
                        "--slabs", "0.7", "0.1", "0.2",
                        "--label-thresholds", "250", "800"]) != 0:
            raise SystemExit(f"datasets/ct_volumes.py failed; see {path}/failures.jsonl")
    return Store(path)


class Workload:
    """A task, its training items and a fresh default model, as ``sigconv train`` sets them up."""

    def __init__(self, name, store, task_name, options, batch_size, seed=0, items=None):
        self.name, self.store, self.batch_size, self.seed = name, store, batch_size, seed
        records = _split_items(store, 0.1)[0]
        self.records = records[:items] if items else records
        task_class = TASKS[task_name]
        labelled = [r for r in store.records if r.get("label") is not None] or self.records
        state = task_class.fit(_arrays(store, self.records), labelled if task_name == "classify"
                               else self.records, options)
        state["model"] = task_class.models[0]
        self.task = task_class(state, seed)
        self.transform = _transform("default", task_name, self.records[0].get("kind"))
        self.data = _items(self.task, store, self.records)
        x = self.data[0][0]
        self.in_channels, self.ndim = x.shape[0], x.ndim - 1

    def model(self):
        return self.task.model(self.in_channels, self.ndim, self.seed)

    def epoch_items(self, epoch):
        return _augmented_items(self.task, self.transform, _arrays(self.store, self.records),
                                self.records, self.seed, epoch)

    def plan(self, epoch, items=None):
        return self.task.plan(items if items is not None else self.data, self.batch_size,
                              np.random.default_rng((self.seed, epoch)))


def single_epoch(work, steps=None):
    """(epoch seconds, step seconds, last loss) of the single process."""
    from threadpoolctl import threadpool_limits

    net = work.model()
    optimizer = optim.Adam(list(net.parameters()), lr=work.task.lr)
    with threadpool_limits(limits=2):
        for entries in work.plan(1)[:2]:  # warm-up: untimed
            x, y = work.task.assemble(work.data.__getitem__, entries)
            work.task.loss(work.task.forward(net, x), y).backward()
        net = work.model()
        optimizer = optim.Adam(list(net.parameters()), lr=work.task.lr)
        started = time.perf_counter()
        items = work.epoch_items(0)
        times = []
        for entries in work.plan(0, items)[:steps]:
            begun = time.perf_counter()
            x, y = work.task.assemble(items.__getitem__, entries)
            loss = work.task.loss(work.task.forward(net, x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            times.append(time.perf_counter() - begun)
        return time.perf_counter() - started, times, float(loss.data), []


def cluster_epoch(work, workers, steps=None):
    """(epoch seconds, step seconds, last loss, slowest shard seconds) on ``workers``."""
    import distributed
    from threadpoolctl import threadpool_info

    with distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                  dashboard_address=":0") as cluster, \
            distributed.Client(cluster) as client:
        threads = {info["internal_api"]: info["num_threads"]
                   for infos in client.run(threadpool_info).values() for info in infos}
        net = work.model()
        optimizer = optim.Adam(list(net.parameters()), lr=work.task.lr)
        parallel = DataParallel(client, os.fspath(work.store.path), work.records, work.task,
                                work.transform, work.seed, net, None)
        try:
            for index, entries in enumerate(work.plan(1)[:2]):  # warm-up: setup, first reads
                parallel.step(1, index, entries)
            net.load_state_dict(work.model().state_dict())  # the initial weights again
            parallel.shard_seconds.clear()
            started = time.perf_counter()
            items = work.epoch_items(0) if work.task.plan_reads_items else None
            times = []
            for index, entries in enumerate(work.plan(0, items)[:steps]):
                begun = time.perf_counter()
                value, _, _ = parallel.step(0, index, entries)
                optimizer.step()
                times.append(time.perf_counter() - begun)
            return time.perf_counter() - started, times, value, list(parallel.shard_seconds), \
                threads
        finally:
            parallel.close()


def model_bytes(work):
    return sum(w.nbytes for w in work.model().state_dict().values())


def project(work, measured, bandwidth, counts=(1, 2, 8, 32)):
    """Rows of the projection (see the module docstring) from the 1- and 2-worker runs."""
    one, two = measured[1], measured[2]
    batch = work.batch_size
    c = statistics.median(one["shard"]) / batch
    overhead = {w: statistics.median(np.subtract(m["steps"], m["shard"]))
                for w, m in ((1, one), (2, two))}
    b = overhead[2] - overhead[1]
    a = overhead[1] - b
    size = model_bytes(work)
    weak = work.task.plan_reads_items  # dense: 2 crops per worker

    def step(w):
        items = batch if weak else math.ceil(batch / w)
        return c * items + a + b * w + 2 * w * size / bandwidth

    rows = []
    for w in counts:
        seconds = step(w)
        per_second = (w * batch if weak else batch) / seconds
        efficiency = per_second / (w * (batch / step(1)))
        median = f"{statistics.median(measured[w]['steps']) * 1e3:.0f}" if w in measured and (
            not weak or w == 1) else ""
        rows.append((w, median, f"{seconds * 1e3:.0f}", f"{per_second:.1f}",
                     f"{efficiency:.2f}"))
    return rows, (c, a, b, size)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 200 FSDD clips, 8 CT steps")
    parser.add_argument("--store", type=pathlib.Path, default=DEFAULT_STORE,
                        help="FSDD waveform store (prepared when missing; default %(default)s)")
    parser.add_argument("--source", type=pathlib.Path, default=DATA / "fsdd")
    parser.add_argument("--ct-store", type=pathlib.Path, default=DEFAULT_CT_STORE,
                        help="stent store (prepared when missing; default %(default)s)")
    parser.add_argument("--ct-source", type=pathlib.Path, default=DATA / "volumes" / "stent.npz")
    parser.add_argument("--bandwidth", type=float, default=1.25e9,
                        help="bytes/s of the client's link in the projection (10 Gb/s)")
    parser.add_argument("--only", choices=("fsdd", "ct"), default=None)
    args = parser.parse_args()
    print(machine_line())
    print(f"{cpu_count()} cores; sigconv {sigconv.__version__}")
    steps = 8 if args.quick else None
    works = []
    if args.only in (None, "fsdd"):
        works.append(Workload("FSDD classify, batch 32", ensure_store(args.store, args.source),
                              "classify", {}, 32, items=200 if args.quick else None))
    if args.only in (None, "ct"):
        stent = ensure_ct_store(args.ct_store, args.ct_source)
        for batch in (2, 4):
            works.append(Workload(f"CT denoise, batch {batch}", stent, "denoise",
                                  {"patch": [32, 32, 32], "noise": 100.0}, batch))
    for work in works:
        print(f"\n{work.name}: {len(work.records)} training items, {len(work.plan(0))} steps "
              f"an epoch, model {model_bytes(work) / 1024:.0f} KiB", flush=True)
        measured, rows = {}, []
        single = single_epoch(work, steps)
        for label, result in [("single, 2 threads", single)] + [
                (f"{w} worker{'s' * (w > 1)}", cluster_epoch(work, w, steps)) for w in (1, 2)]:
            seconds, times, loss = result[:3]
            shard = result[3]
            if shard:
                workers = int(label[0])
                measured[workers] = {"steps": times, "shard": shard, "seconds": seconds}
                print(f"  {label}: worker threads {result[4]}")
            share = (f"{statistics.median(1 - np.divide(shard, times)):.0%}" if shard else "")
            rows.append((label, f"{seconds:.1f}", f"{len(times) / seconds:.2f}",
                         f"{statistics.median(times) * 1e3:.0f}",
                         f"{statistics.median(shard) * 1e3:.0f}" if shard else "", share,
                         f"{loss:.4f}"))
        print(format_table(("run", "epoch s", "steps/s", "median step ms", "slowest shard ms",
                            "communication", "last loss"), rows))
        efficiency = measured[1]["seconds"] / (2 * measured[2]["seconds"])
        print(f"  measured scaling efficiency (the same global batch), 2 workers against 1: "
              f"{efficiency:.2f}; speed-up of 2 workers over the single process with 2 "
              f"threads: {single[0] / measured[2]['seconds']:.2f}x")
        projection, (c, a, b, size) = project(work, measured, args.bandwidth)
        print(f"  projection: compute {c * 1e3:.1f} ms per item, overhead {a * 1e3:.1f} ms + "
              f"{b * 1e3:.1f} ms per worker, {size / 1024:.0f} KiB of weights each way at "
              f"{args.bandwidth / 1e9:.2f} GB/s")
        scaling = "weak: %d crops per worker" % work.batch_size if work.task.plan_reads_items \
            else "strong: a global batch of %d" % work.batch_size
        print(format_table(("workers", "measured step ms", f"model step ms ({scaling})",
                            "items/s", "efficiency"), projection))


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
