"""Synchronous data-parallel training on a Dask cluster (``train(..., client=...)``).

Every step of :func:`sigconv.train.train` with a ``client``:

1. The client plans the global batch as the single process does
   (``task.plan``: item indices for classification; for denoising and
   labelling, crops ``(item, region, seed of the crop's noise)`` drawn from
   the augmented items, which the client therefore augments too) and cuts
   it into one contiguous shard per worker (:func:`shards`: the first
   ``count % workers`` shards one entry longer; workers in the order of
   their addresses at the start of the run).
2. It sends each worker the model's weights and buffers and its shard's
   entries.  The worker reads those items from the store (the store's path
   must be readable by every worker: memory-mapped arrays, nothing but
   entries and weights cross the network), augments each with its own
   generator ``(seed, epoch, item)``, assembles the batch
   (``task.assemble``: crops and their noise) and runs forward and backward
   on it; it returns its loss, gradient, buffers and running score (tally).
3. The client sums the shards' gradients weighted by their item counts
   (``sum_r n_r g_r / N``, in shard order: the gradient of the mean loss
   over the global batch, as the single process computes it, up to the
   order of the float sums) and takes one optimiser step itself.

The optimiser lives on the client (design (b) of issue 18), not on replicas
that each step the same optimiser: both designs move the same bytes each
step (a gradient up, a model down, per worker), and keeping the optimiser
in one place leaves nothing on the workers to keep in step: checkpoints,
optimiser state and schedules are the single process's, a worker that joins
needs no state but the weights that come with every step, and replicas on
CPUs that round differently cannot drift apart.  The client's optimiser step
(Adam over the model's parameters) costs far less than a shard's backward
pass (docs/train.md has the step overheads measured).

Normalisation: GroupNorm and InstanceNorm take each item's own statistics,
so a run with them follows the single process.  BatchNorm in training takes
the statistics of each worker's shard (as PyTorch's DistributedDataParallel
without SyncBatchNorm), so outputs and gradients differ from the single
process's, which normalises over the whole batch; its running statistics
(the buffers) are the shards' running statistics averaged with the shards'
item counts as weights, so the running mean follows the single process's
(exactly, for items of one size) and the running variance is the mean of the
shards' variances.  Dropout masks are drawn per shard from ``(seed, epoch,
step, shard)``: reproducible for a number of workers, not the single
process's masks.

Labelling's loss sums its Dice term over the batch, so on a cluster each
shard's Dice is its own (the gradient is the item-weighted mean of the
shards' gradients, as for BatchNorm); its cross-entropy, MSE (denoising, crops
of one size) and classification's cross-entropy are means over items and
follow the single process.  Validation, test and the run's files are
computed and written on the client.

Lost workers.  The shards of a step are those of the workers the run
started with; a worker lost mid-step (killed, its node gone) has its task
computed again by another worker (Dask reschedules it; ``allow_other_workers``),
from the same weights and entries, so the run's numbers do not change.  When
no worker is left for :data:`LOST_TIMEOUT` seconds, the tasks are cancelled
(the workers holding the run's setup are all gone), or a task killed every
worker it ran on (``distributed.KilledWorker``), the step raises
:class:`ClusterError` and :func:`~sigconv.train.train` stops, naming the last
checkpoint (the previous epoch's, written whole and atomically), from which
``resume=True`` continues on any cluster.

Inference (``predict(..., client=...)``, ``evaluate(..., client=...)``):
:func:`map_in_order` scatters the run's task and model to every worker once
and maps one task per part (a batch of files, a volume, a run of store
items) over the workers, yielding the answers in the parts' order.  The
workers receive the model object rather than rebuilding it from the run
folder: a run trained with a model of yours has no recorded architecture to
rebuild, and the run folder need not be on the workers' disks.
"""
from __future__ import annotations

import contextlib
import copy
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .. import nn
from ..data import Store
from ..errors import ArgumentError, SigconvError
from ..autograd import Tensor
from ..io import Signal
from .items import _augmented_item, _items, _loss_value, _output_data
from .tasks import Pair, Task

__all__ = ["ClusterError", "connect", "shards", "check_client", "DataParallel",
           "map_in_order", "cluster_outputs", "LOST_TIMEOUT"]


class ClusterError(SigconvError, ConnectionError):
    """The Dask scheduler cannot be reached, the cluster has no workers, or a run lost them."""


#: Seconds :func:`connect` waits for a scheduler (and :class:`DataParallel` for a worker).
CONNECT_TIMEOUT = 10


def _distributed() -> Any:
    """The ``distributed`` package, or ArgumentError saying how to install it."""
    try:
        import distributed
    except ImportError:
        raise ArgumentError("a Dask cluster (client=, --scheduler) needs dask.distributed "
                            "(pip install 'sigconv[dask]')") from None
    return distributed


def connect(address: str, *, timeout: float | None = None) -> Any:
    """A ``distributed.Client`` of the scheduler at ``address``, or ClusterError naming it
    after ``timeout`` seconds (default :data:`CONNECT_TIMEOUT`)."""
    distributed = _distributed()
    timeout = CONNECT_TIMEOUT if timeout is None else timeout
    try:
        return distributed.Client(address, timeout=timeout)
    except (OSError, TimeoutError, ValueError) as exc:
        raise ClusterError(f"cannot reach the Dask scheduler at {address!r} within {timeout} s "
                           f"({exc}); start it (dask scheduler, dask-jobqueue, ...) or check "
                           f"the address") from None


def shards(count: int, workers: int) -> list[tuple[int, int]]:
    """``[(start, stop)]`` of each worker's share of a batch of ``count`` items.

    Contiguous runs, in worker order, of ``count // workers`` items, the first
    ``count % workers`` one longer; workers beyond ``count`` get empty runs.
    """
    size, extra = divmod(count, workers)
    bounds: list[tuple[int, int]] = []
    start = 0
    for rank in range(workers):
        stop = start + size + (rank < extra)
        bounds.append((start, stop))
        start = stop
    return bounds


def check_client(client: Any) -> None:
    """ArgumentError unless ``client`` is a ``distributed.Client``."""
    distributed = _distributed()
    if not isinstance(client, distributed.Client):
        raise ArgumentError(f"client must be a distributed.Client (or None), got {client!r}")


def wait_for_workers(client: Any) -> list[str]:
    """The addresses of the cluster's workers, sorted; ClusterError when none joins within
    :data:`CONNECT_TIMEOUT` seconds."""
    try:
        client.wait_for_workers(1, timeout=CONNECT_TIMEOUT)
    except (OSError, TimeoutError) as exc:
        raise ClusterError(f"the Dask cluster at {client.scheduler.address!r} has no "
                           f"workers ({exc})") from None
    return sorted(client.scheduler_info()["workers"])


def map_in_order(client: Any, function: Callable[..., Any], shared: Any,
                 parts: Sequence[tuple[Any, ...]]) -> Iterator[Any]:
    """Yield ``function(shared, *part)`` of each part, in order, computed on the workers.

    ``shared`` is sent to every worker once (scatter); each worker may hold
    one part more than it computes, so the parts are not all sent at once.
    The answers of parts not yet yielded are cancelled when the iteration stops.
    """
    ahead = 2 * len(wait_for_workers(client))
    [held] = client.scatter([shared], broadcast=True, hash=False)
    pending: deque[Any] = deque()
    queued = iter(parts)
    try:
        for part in queued:
            pending.append(client.submit(function, held, *part, pure=False))
            if len(pending) >= ahead:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        client.cancel(list(pending))
        held.release()


def _own_copy(shared: Any) -> Any:
    """A copy of a scattered object: the threads of one worker (and the workers in the
    client's process, ``LocalCluster(processes=False)``) are handed the same object, and
    must not run one model at once."""
    return copy.deepcopy(shared)


def predict_part(shared: tuple[Task, nn.Module], arrays: Sequence[NDArray[Any]],
                 batch_size: int) -> list[tuple[Any, ...]]:
    """``task.predict`` of raw items on a worker (``shared``: the run's task and model)."""
    task, model = _own_copy(shared)
    answers: list[tuple[Any, ...]] = task.predict(model, arrays, batch_size=batch_size)
    return answers


def outputs_part(shared: tuple[Task, nn.Module], store: str, records: list[dict[str, Any]],
                 start: int) -> list[NDArray[Any]]:
    """``task.evaluation_outputs`` of store items (items ``start``, ... of the evaluated
    split), read on a worker from the store at ``store``."""
    task, model = _own_copy(shared)
    return task.evaluation_outputs(model, _items(task, Store(store, _records=records), records),
                                   start=start)


def cluster_outputs(client: Any, task: Task, net: nn.Module, store: str,
                    records: list[dict[str, Any]]) -> list[NDArray[Any]]:
    """``task.evaluation_outputs`` of ``records``' items, computed on the workers (a task per
    run of ``task.evaluation_batch`` items, which the workers read from the store at
    ``store``), in order: what ``task.scores`` takes."""
    size = task.evaluation_batch
    parts = [(store, records[i:i + size], i) for i in range(0, len(records), size)]
    return [output for answer in map_in_order(client, outputs_part, (task, net), parts)
            for output in answer]


#: Models larger than this (bytes of weights and buffers) are broadcast with
#: ``client.scatter`` before each step; smaller ones travel in the step's tasks, which
#: saves a round trip to the scheduler (about 20 ms a step on a LocalCluster).
SCATTER_BYTES = 4 * 2 ** 20

#: Mixed into the seed of each shard's dropout masks (as loop._DROPOUT_TAG).
_SHARD_DROPOUT_TAG = 0xD51


class _WorkerRun:
    """What a worker keeps of a run between steps: the store, the model, the task."""

    def __init__(self, setup: dict[str, Any]) -> None:
        # a copy: workers in the client's process (LocalCluster(processes=False)) are handed
        # the client's objects themselves, and must not share one model between threads
        setup = copy.deepcopy(setup)
        self.store = Store(setup["store"])
        index = {r["id"]: i for i, r in enumerate(self.store.records)}
        self.records = setup["records"]
        self.positions = [index[r["id"]] for r in self.records]
        self.task, self.transform, self.seed = setup["task"], setup["transform"], setup["seed"]
        self.net, self.loss = setup["model"], setup["loss"] or self.task.loss
        self.params = list(self.net.parameters())

    def item(self, index: int, epoch: int) -> Pair:
        """``(input, target)`` of training item ``index`` in ``epoch``, read from the store
        (its memory map: nothing is kept between steps)."""
        index = int(index)
        array, record = self.store[self.positions[index]][0], self.records[index]
        if self.transform is None:
            return self.task.split_item(array, record)
        return _augmented_item(self.task, self.transform, array, record, self.seed, epoch,
                               index)


#: The runs of this process's workers, by worker address (one process may hold several
#: workers, as ``LocalCluster(processes=False)``): ``{address: (key of the setup, run)}``.
_RUNS: dict[str, tuple[str, _WorkerRun]] = {}


def _forget_runs(dask_worker: Any) -> None:
    """Drop the run of ``dask_worker`` (called on every worker when a run ends)."""
    _RUNS.pop(dask_worker.address, None)


def _worker_run(key: str, setup: dict[str, Any]) -> _WorkerRun:
    """This worker's :class:`_WorkerRun` of the setup ``key``, made on its first step."""
    from distributed import get_worker

    address = get_worker().address
    held = _RUNS.get(address)
    if held is None or held[0] != key:
        held = _RUNS[address] = (key, _WorkerRun(setup))
    return held[1]


def _shard_step(key: str, setup: dict[str, Any], weights: dict[str, NDArray[Any]], epoch: int,
                step: int, rank: int, entries: Sequence[Any],
                check: bool) -> tuple[float, list[NDArray[Any]], dict[str, NDArray[Any]], Any,
                                      float]:
    """One worker's share of a step: ``(loss, gradients, buffers, tally, seconds)``.

    Runs where the items are read; ``entries`` are the shard's part of the
    batch (``task.plan``'s: item indices, or crops); ``loss`` is the shard's
    mean loss, ``gradients`` its gradient (list in parameter order),
    ``buffers`` the model's buffers after the forward pass (BatchNorm's
    running statistics), ``tally`` the task's running score of the shard,
    ``seconds`` the wall time of all this on the worker.
    """
    started = time.perf_counter()
    run = _worker_run(key, setup)
    net = run.net
    net.load_state_dict(weights)
    net.train()
    for layer in net.modules():
        if isinstance(layer, nn.Dropout):
            layer.rng = np.random.default_rng((run.seed, epoch, step, rank, _SHARD_DROPOUT_TAG))
    inputs, target = run.task.assemble(lambda index: run.item(index, epoch), entries)
    output = run.task.forward(net, inputs)
    if check:
        run.task.check_output(output, target)
    loss = run.loss(output, target)
    value = _loss_value(loss, epoch)
    net.zero_grad()
    loss.backward()
    grads = [np.zeros_like(p.data) if p.grad is None else p.grad for p in run.params]
    buffers = {name: buf.copy() for name, buf in net.named_buffers()}
    tally = run.task.tally()
    tally.add(_output_data(output), target)
    return value, grads, buffers, tally, time.perf_counter() - started


#: Seconds a step waits while the cluster has no worker (or the scheduler is out of reach)
#: before it stops the run with :class:`ClusterError`.
LOST_TIMEOUT = 60.0


class DataParallel:
    """Steps of a run computed on a cluster's workers, the optimiser stepped here.

    Parameters
    ----------
    client : distributed.Client
    store : str
        The store's path (every worker must be able to read it).
    records : list of dict
        The training records (the entries of :meth:`step` count into them).
    task, transform, seed, net, loss
        The run's task, augmentation (or None), seed, model and loss (None:
        the task's).
    """

    def __init__(self, client: Any, store: str, records: list[dict[str, Any]], task: Task,
                 transform: Callable[..., Signal] | None, seed: int, net: nn.Module,
                 loss: Callable[[Any, Any], Tensor] | None) -> None:
        check_client(client)
        self.client, self.net, self.task, self.store = client, net, task, store
        self.params = list(net.parameters())
        # the shards of every step: one per worker of the start (a worker lost later has its
        # shards computed by the others, so a run's numbers do not depend on faults)
        self.workers = wait_for_workers(client)
        self.key = uuid.uuid4().hex
        setup = {"store": store, "records": records, "task": task, "transform": transform,
                 "seed": seed, "model": net, "loss": loss}
        [self.setup] = client.scatter([setup], broadcast=True, hash=False)
        self.checked = False
        self.float_buffers = {name for name, buf in net.named_buffers() if buf.dtype.kind == "f"}
        self.scatter_weights = sum(w.nbytes for w in net.state_dict().values()) > SCATTER_BYTES
        #: The slowest shard's seconds on its worker, for every step (the rest of a step's
        #: wall time is communication and scheduling: benchmarks/bench_distributed.py).
        self.shard_seconds: list[float] = []

    def step(self, epoch: int, step: int, entries: Sequence[Any]) -> tuple[float, int, Any]:
        """Compute the gradient of the batch of ``entries`` (``task.plan``'s) over the
        workers, set it as the parameters' gradient; returns ``(mean loss, items, tally)``.

        The model's buffers are set to the shards' mean (float buffers, weighted by
        item count) or the first shard's (counters).  ClusterError when the workers are
        lost (:data:`LOST_TIMEOUT`) or a shard's task killed its workers.
        """
        weights = self.net.state_dict()
        if self.scatter_weights:  # the model's size does not change from step to step
            [weights] = self.client.scatter([weights], broadcast=True, hash=False)
        count = len(entries)
        futures: list[Any] = []
        counts: list[int] = []
        for rank, (start, stop) in enumerate(shards(count, len(self.workers))):
            if stop == start:
                continue
            futures.append(self.client.submit(
                _shard_step, self.key, self.setup, weights, epoch, step, rank,
                list(entries[start:stop]), not self.checked, workers=[self.workers[rank]],
                allow_other_workers=True, pure=False))
            counts.append(stop - start)
        results = self._gather(futures, f"step {step + 1} of epoch {epoch + 1}")
        self.checked = True
        self.shard_seconds.append(max(r[4] for r in results))
        weights_of = [n / count for n in counts]
        value = sum(w * r[0] for w, r in zip(weights_of, results))
        for i, p in enumerate(self.params):
            p.grad = sum(w * r[1][i] for w, r in zip(weights_of, results)).astype(
                p.data.dtype, copy=False)
        buffers: dict[str, NDArray[Any]] = {}
        for name, first in results[0][2].items():
            if name in self.float_buffers:
                buffers[name] = sum(w * r[2][name] for w, r in zip(weights_of, results)).astype(
                    first.dtype, copy=False)
            else:
                buffers[name] = first
        if buffers:
            self.net.load_state_dict(buffers, strict=False)
        tally = results[0][3]
        for result in results[1:]:
            tally.merge(result[3])
        return value, count, tally

    def outputs(self, net: nn.Module, records: list[dict[str, Any]]) -> list[NDArray[Any]]:
        """:func:`cluster_outputs` of ``net`` on ``records`` of the run's store (validation,
        test)."""
        return cluster_outputs(self.client, self.task, net, self.store, records)

    def _gather(self, futures: list[Any], what: str) -> list[Any]:
        """The futures' results; ClusterError when the cluster has had no worker (or the
        scheduler has been out of reach) for :data:`LOST_TIMEOUT` seconds, when the tasks
        were cancelled (the workers holding the run's data were all lost), or when a task
        killed every worker it ran on (``distributed.KilledWorker``)."""
        distributed = _distributed()
        address = self.client.scheduler.address
        lost_since: float | None = None
        results: list[Any] = []
        try:
            for future in futures:  # Future.result waits on its own client's loop
                while True:
                    try:
                        results.append(future.result(timeout=1.0))
                        break
                    except TimeoutError:
                        if self.client.status == "running" and \
                                self.client.scheduler_info()["workers"]:
                            lost_since = None
                            continue
                        lost_since = lost_since if lost_since is not None else time.monotonic()
                        if time.monotonic() - lost_since > LOST_TIMEOUT:
                            raise ClusterError(
                                f"{what} found no worker on the Dask cluster at {address!r} "
                                f"for {LOST_TIMEOUT:.0f} s") from None
        except distributed.KilledWorker as exc:
            raise ClusterError(f"{what}: a shard's task was lost with every worker it ran on "
                               f"({exc})") from None
        except (OSError, distributed.CancelledError) as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ClusterError(f"{what} lost the workers of the Dask cluster at {address!r} "
                               f"that held the run ({reason})") from None
        return results

    def close(self) -> None:
        """Release the run's data on the cluster."""
        self.setup.release()
        if self.client.status != "running":  # the scheduler is gone: nothing to release
            return
        with contextlib.suppress(OSError, TimeoutError):  # workers gone: nothing to release
            self.client.run(_forget_runs)
