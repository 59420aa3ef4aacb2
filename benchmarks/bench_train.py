"""Training speed: one FSDD epoch in sigconv against the same model in PyTorch CPU.

Run from the project root (under the machine's benchmark lock)::

    flock /tmp/sigconv-bench.lock python benchmarks/bench_train.py [--repeats 3] [--store DIR]
    flock /tmp/sigconv-bench.lock python benchmarks/bench_train.py --quick      # smoke run
    flock /tmp/sigconv-bench.lock python benchmarks/bench_train.py --profile    # + cProfile

Data.  The Free Spoken Digit Dataset as raw 8 kHz waveforms, in the store
``datasets/fsdd.py --source <shared>/data/fsdd --out <store>`` writes.  The
store is prepared on the first run (into ``--store``, by default a folder
under the system's temporary directory) and reused afterwards; a store that
already holds every recording is used as it is.  The training items are
loaded as ``sigconv train`` loads them (``sigconv.train.items._split_items`` with
a tenth held out for validation, then the classification task's ``split_item``,
which standardises each clip and numbers its label):
2,438 clips of 1,149 to 18,262 samples (median 3,349).  ``--quick`` keeps
the first 300 of them and times one epoch per framework.

sigconv.  ``sigconv.train.make_model(1, 10, 1, seed)`` (``Classifier``:
four Conv(k=9, "same", no bias) -> BatchNorm -> ReLU blocks of 16, 32, 64, 64
channels, MaxPool(4) between them, global average pooling, Linear(64, 10)),
``optim.Adam(lr=2e-3)`` and ``nn.CrossEntropyLoss``, batches of 32 clips as
``Tensor(Ragged.from_list(items))``: every clip at its own length, unpadded.
The loop is the inner loop of ``sigconv.train.train`` (same batches, drawn
from ``(seed, epoch)``) without the progress bar, the running metrics, the
schedule, evaluation and checkpoints.

PyTorch.  The same architecture in ``torch.nn``, built layer by layer from
the sigconv model (Conv1d ``padding="same"``, BatchNorm1d with the same eps
and momentum, MaxPool1d with the same options, mean over time, Linear),
given sigconv's initial weights through its state dict
(``sigconv.checkpoint.to_torch``), ``torch.optim.Adam(lr=2e-3)``,
``torch.nn.CrossEntropyLoss``, ``torch.set_num_threads(<cores>)``, the
same batches in the same order.  PyTorch has no ragged batches, so each batch
is zero-padded to its longest clip, inside the timed loop (the collate step a
PyTorch user writes).  The padding is not only wasted work (about twice the
samples of the clips themselves): the padded positions enter the batch-norm
statistics and the global average, so on real batches the PyTorch model
computes a somewhat different function from the same weights (the script
prints by how much on one batch) and its losses differ from sigconv's; both
train, which the printed losses show.  ``torch-bucketed`` additionally times
PyTorch with batches of clips of similar length
(``sigconv.data.BucketBatchSampler``, 8 buckets, shuffled), the usual remedy
for padding; it sees different batches, so it is for reference only.

Before timing, the two models are checked to be the same function: on one
dense batch (8 clips cut to equal length, training mode) their logits must
agree to 1e-4 (the loss too, the gradients to 1e-3 relative), else the script
stops.  Each framework is warmed up with a few untimed batches; then every
repeat trains a fresh copy of the initial model for one epoch in each
framework, alternating which goes first, and the median epoch time is reported
with the ratio ``PyTorch / sigconv`` (> 1: sigconv is faster; target >= 1),
and the same ratio of the fastest epochs, which other jobs on the machine
disturb less (on a busy 2-core machine PyTorch's epochs were the ones slowed
most, so a busy machine can flatter sigconv's median).  The epoch's mean
training loss and accuracy are printed for every run, so one can see both
models learn.
"""
import argparse
import cProfile
import os
import pathlib
import pstats
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
from sigconv import checkpoint, nn, optim
from sigconv.autograd import Tensor
from sigconv.data import BucketBatchSampler, Store
from sigconv.ragged import Ragged
from sigconv.train import TASKS, make_model
from sigconv.train.items import _split_items

try:
    import torch
except ImportError:
    torch = None


def _shared_data():
    candidates = [os.environ.get("SIGCONV_SHARED_DATA"), ROOT.parent / "shared" / "data",
                  "/work/shared/data"]
    for folder in candidates:
        if folder and pathlib.Path(folder).is_dir():
            return pathlib.Path(folder)
    return ROOT.parent / "shared" / "data"


DATA = _shared_data()
DEFAULT_STORE = pathlib.Path(tempfile.gettempdir()) / "sigconv-bench" / "fsdd-waveform"


def _fsdd():
    """``datasets/fsdd.py`` as a module (it is a script, not part of the package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("fsdd", ROOT / "datasets" / "fsdd.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def ensure_store(path, source):
    """The waveform store at ``path``: reused when complete, else prepared (or resumed) there."""
    path = pathlib.Path(path)
    have = len(Store(path)) if (path / "manifest.jsonl").is_file() else 0
    if pathlib.Path(source).is_dir():
        fsdd = _fsdd()
        wanted = len(fsdd.fsdd_sources(os.fspath(source)))
        if have < wanted:
            print(f"preparing {wanted} FSDD clips into {path} (datasets/fsdd.py; resumes, "
                  "done once)", flush=True)
            if fsdd.main(["--source", os.fspath(source), "--out", os.fspath(path)]) != 0:
                raise SystemExit(f"datasets/fsdd.py reported failures; see {path}/failures.jsonl")
    elif not have:
        raise SystemExit(f"no store at {path} and no FSDD source at {source}; pass --store with "
                         "a prepared waveform store or --source with the dataset")
    store = Store(path)
    kind = store.records[0].get("kind")
    if kind != "waveform" or len(store.records[0]["shape"]) != 2:
        raise SystemExit(f"{path} holds {kind!r} items of shape {store.records[0]['shape']}; "
                         "this benchmark wants raw waveforms (datasets/fsdd.py --input waveform)")
    return store


# ---------------------------------------------------------------------------
# the PyTorch twin of a sigconv Classifier
# ---------------------------------------------------------------------------

def torch_twin(model):
    """A ``torch.nn.Module`` computing what the sigconv ``Classifier`` computes.

    Built layer by layer from the sigconv model, with the same attribute names
    (``features.<i>``, ``head``), so the state dicts match key for key.  Any
    layer this translation does not know stops the script.
    """
    tnn = torch.nn
    d = model.ndim
    conv_cls = {1: tnn.Conv1d, 2: tnn.Conv2d, 3: tnn.Conv3d}[d]
    bn_cls = {1: tnn.BatchNorm1d, 2: tnn.BatchNorm2d, 3: tnn.BatchNorm3d}[d]
    pool_cls = {1: tnn.MaxPool1d, 2: tnn.MaxPool2d, 3: tnn.MaxPool3d}[d]
    layers = []
    for layer in model.features:
        if isinstance(layer, nn.Conv):
            if layer.padding != "same" or any(s != 1 for s in layer.stride):
                raise SystemExit(f"torch_twin: cannot translate {layer!r}")
            layers.append(conv_cls(layer.in_channels, layer.out_channels, layer.kernel_size,
                                   padding="same", dilation=layer.dilation, groups=layer.groups,
                                   bias=layer.bias is not None))
        elif isinstance(layer, nn.BatchNorm):
            layers.append(bn_cls(layer.num_channels, eps=layer.eps, momentum=layer.momentum,
                                 affine=layer.affine,
                                 track_running_stats=layer.track_running_stats))
        elif isinstance(layer, nn.ReLU):
            layers.append(tnn.ReLU())
        elif isinstance(layer, nn.MaxPool):
            layers.append(pool_cls(layer.kernel_size, stride=layer.stride, padding=layer.padding,
                                   dilation=layer.dilation, ceil_mode=layer.ceil_mode))
        else:
            raise SystemExit(f"torch_twin: no PyTorch layer for {layer!r}")
    if not isinstance(model.dropout, nn.Identity):
        raise SystemExit("torch_twin: dropout is not translated (its masks would differ)")
    kind = model.pool.kind
    if kind not in ("avg", "max"):
        raise SystemExit(f"torch_twin: global pooling {kind!r} is not translated")
    axes = tuple(range(2, 2 + d))

    class Twin(tnn.Module):
        def __init__(self):
            super().__init__()
            self.features = tnn.Sequential(*layers)
            self.head = tnn.Linear(model.head.in_features, model.head.out_features,
                                   bias=model.head.bias is not None)

        def forward(self, x):
            x = self.features(x)
            x = x.mean(dim=axes) if kind == "avg" else x.amax(dim=axes)
            return self.head(x)

    twin = Twin()
    twin.load_state_dict(checkpoint.to_torch(model))
    return twin


def epoch_batches(count, batch_size, seed, epoch=0):
    """The training loop's batches of epoch ``epoch``: a ``(seed, epoch)`` permutation in chunks.

    As ``sigconv.train`` draws them (``Classification.batches``), as item indices.
    """
    order = np.random.default_rng((seed, epoch)).permutation(count)
    return [order[i:i + batch_size] for i in range(0, count, batch_size)]


def padded(items):
    """Zero-pad a list of ``(C, *spatial)`` arrays to the largest size: ``(N, C, *max)``."""
    shape = tuple(max(s) for s in zip(*(a.shape for a in items)))
    block = np.zeros((len(items),) + shape, np.float32)
    for j, a in enumerate(items):
        block[(j,) + tuple(slice(0, n) for n in a.shape)] = a
    return block


# ---------------------------------------------------------------------------
# one epoch in each framework
# ---------------------------------------------------------------------------

def sigconv_setup(seed, lr):
    model = make_model(1, 10, 1, seed)
    return model, optim.Adam(list(model.parameters()), lr=lr), nn.CrossEntropyLoss()


def sigconv_epoch(state, x, y, batches):
    """The inner loop of ``sigconv.train.train``: ``(mean loss, accuracy)`` of the epoch."""
    model, optimizer, loss_fn = state
    model.train()
    total, correct, seen = 0.0, 0, 0
    for batch in batches:
        target = np.array([y[i] for i in batch])
        logits = model(Tensor(Ragged.from_list([x[i] for i in batch])))
        loss = loss_fn(logits, target)
        value = float(loss.data)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total += value * len(batch)
        correct += int((logits.data.argmax(axis=1) == target).sum())
        seen += len(batch)
    return total / seen, correct / seen


def torch_setup(seed, lr):
    twin = torch_twin(make_model(1, 10, 1, seed))
    return twin, torch.optim.Adam(twin.parameters(), lr=lr), torch.nn.CrossEntropyLoss()


def torch_epoch(state, x, y, batches):
    """The same loop in PyTorch, each batch zero-padded to its longest clip."""
    model, optimizer, loss_fn = state
    model.train()
    total, correct, seen = 0.0, 0, 0
    for batch in batches:
        target = torch.as_tensor(np.array([y[i] for i in batch]))
        logits = model(torch.from_numpy(padded([x[i] for i in batch])))
        loss = loss_fn(logits, target)
        value = loss.item()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total += value * len(batch)
        correct += int((logits.detach().argmax(dim=1) == target).sum())
        seen += len(batch)
    return total / seen, correct / seen


# ---------------------------------------------------------------------------
# checks
# ---------------------------------------------------------------------------

def check_equivalence(x, y, seed, tolerance=1e-4):
    """Both models from the same weights on one dense batch: logits, loss and gradients."""
    lengths = [a.shape[-1] for a in x[:8]]
    n = min(lengths)
    dense = np.stack([a[:, :n] for a in x[:8]])
    target = np.array(y[:8])
    s_model, _, s_loss = sigconv_setup(seed, 1e-3)
    t_model, _, t_loss = torch_setup(seed, 1e-3)
    s_model.train()
    t_model.train()
    s_logits = s_model(Tensor(dense))
    s_value = s_loss(s_logits, target)
    s_value.backward()
    t_logits = t_model(torch.from_numpy(dense))
    t_value = t_loss(t_logits, torch.as_tensor(target))
    t_value.backward()
    logit_diff = float(np.abs(s_logits.data - t_logits.detach().numpy()).max())
    loss_diff = abs(float(s_value.data) - t_value.item())
    t_params = dict(t_model.named_parameters())
    grad_diff = 0.0
    for name, p in s_model.named_parameters():
        g = t_params[name].grad.numpy()
        grad_diff = max(grad_diff, float(np.abs(p.grad - g).max() / (np.abs(g).max() + 1e-12)))
    print(f"equivalence on a dense batch of 8 x {n} samples (training mode): "
          f"max |logit diff| {logit_diff:.2e}, |loss diff| {loss_diff:.2e}, "
          f"max relative gradient diff {grad_diff:.2e}")
    if not (logit_diff <= tolerance and loss_diff <= tolerance and grad_diff <= 1e-3):
        raise SystemExit(f"the PyTorch twin does not compute what the sigconv model computes "
                         f"(tolerance {tolerance:g} on logits and loss, 1e-3 on gradients); "
                         "the timing would compare different models")

    # what padding changes: one real batch, ragged in sigconv, padded in PyTorch
    s_model, _, _ = sigconv_setup(seed, 1e-3)
    t_model, _, _ = torch_setup(seed, 1e-3)
    batch = list(range(min(32, len(x))))
    s_out = s_model(Tensor(Ragged.from_list([x[i] for i in batch]))).data
    t_out = t_model(torch.from_numpy(padded([x[i] for i in batch]))).detach().numpy()
    print(f"padding's effect on one real batch of {len(batch)} clips (ragged vs padded): max "
          f"|logit diff| {np.abs(s_out - t_out).max():.3f} (expected: the zeros enter batch "
          "norm and the global average)")


# ---------------------------------------------------------------------------

#: the training step's parts: (label, file suffix, function names) of their entry points
PROFILE_PARTS = [
    ("conv forward", "functional/conv.py", ("conv",)),
    ("conv input gradient", "functional/conv.py", ("conv_grad_input",)),
    ("conv weight gradient", "functional/conv.py", ("conv_grad_weight",)),
    ("batch norm (+ReLU) forward", "nn/functional.py", ("batch_norm", "batch_norm_relu")),
    ("ReLU forward (unfused)", "nn/functional.py", ("relu",)),
    ("max pool forward", "functional/pooling.py", ("max_pool",)),
    ("max pool backward", "functional/pooling.py", ("max_pool_backward",)),
    ("global pool forward", "nn/functional.py", ("global_pool",)),
    ("Ragged batch assembly", "ragged.py", ("from_list",)),
    ("optimizer step", "optimizer.py", ("step",)),
]


def profile_sigconv(x, y, batches, seed, lr, top=10):
    """cProfile of one sigconv epoch (CPU time of the process): per part, and the top functions.

    CPU time, not wall time: other jobs on the machine disturb it less (it
    counts every thread of the process, so an OpenMP kernel's spinning counts).
    """
    state = sigconv_setup(seed, lr)
    sigconv_epoch(state, x, y, batches[:1])  # path choices and first-use costs outside
    profiler = cProfile.Profile(timer=time.process_time)
    profiler.enable()
    sigconv_epoch(state, x, y, batches)
    profiler.disable()
    stats = pstats.Stats(profiler, stream=sys.stdout)
    total = stats.total_tt
    print(f"\nCPU time of one sigconv epoch by part (cumulative; {total:.2f} s profiled):")
    rows = []
    for label, suffix, names in PROFILE_PARTS:
        t = sum(v[3] for k, v in stats.stats.items() if k[0].endswith(suffix) and k[2] in names)
        rows.append([label, f"{t:.2f}", f"{100 * t / total:.1f}"])
    # each backward method by the class defining it (the line numbers of its code)
    import inspect
    import sigconv._ops as ops_module
    import sigconv.nn.functional as nn_functional
    owners = {}
    for module in (ops_module, nn_functional):
        for cls in vars(module).values():
            if inspect.isclass(cls) and "backward" in vars(cls):
                code = vars(cls)["backward"].__code__
                owners[(code.co_filename, code.co_firstlineno)] = cls.__name__
    backward = {}
    for (path, line, name), v in stats.stats.items():
        if name == "backward" and (path, line) in owners:
            label = owners[(path, line)]
            label = "whole backward pass" if label == "Tensor" else f"{label}.backward"
            backward[label] = v[3]
    for label, t in sorted(backward.items(), key=lambda kv: -kv[1])[:7]:
        rows.append([label, f"{t:.2f}", f"{100 * t / total:.1f}"])
    own = sum(v[2] for k, v in stats.stats.items() if k[0].endswith("sigconv/autograd.py"))
    rows.append(["autograd.py own time (tape)", f"{own:.2f}", f"{100 * own / total:.1f}"])
    print(format_table(["part", "CPU s", "%"], rows))
    for key in ("cumulative", "tottime"):
        print(f"\ncProfile of one sigconv epoch, top {top} by {key}:")
        pstats.Stats(profiler, stream=sys.stdout).strip_dirs().sort_stats(key).print_stats(top)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="timed epochs per framework")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 300 training clips, 1 repeat")
    parser.add_argument("--items", type=int, default=None,
                        help="use only the first N training clips")
    parser.add_argument("--store", type=pathlib.Path, default=DEFAULT_STORE,
                        help="waveform store to use, or to prepare when it is missing or "
                        "incomplete (default %(default)s)")
    parser.add_argument("--source", type=pathlib.Path, default=DATA / "fsdd",
                        help="FSDD clone for the preparation (default %(default)s)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-bucketed", action="store_true",
                        help="skip the bucketed PyTorch variant")
    parser.add_argument("--profile", action="store_true",
                        help="also print a cProfile of one (extra, untimed) sigconv epoch")
    args = parser.parse_args()
    print(machine_line())  # CPU, dispatch target, sgemm rate: the physical limit
    if args.quick:
        args.repeats = 1
        args.items = args.items or 300

    store = ensure_store(args.store, args.source)
    train_records, _, _ = _split_items(store, 0.1)
    if args.items:
        train_records = train_records[:args.items]
    # the classes of every labelled clip (not only the kept ones: the model has all 10)
    classify = TASKS["classify"]
    task = classify(classify.fit(None, [r for r in store.records if r.get("label") is not None],
                                 {}), args.seed)
    started = time.perf_counter()
    kept = {r["id"] for r in train_records}
    items = [task.split_item(array, record)
             for array, record in store.filter(lambda r: r["id"] in kept)]
    x, y = [a for a, _ in items], [label for _, label in items]
    lengths = np.array([a.shape[-1] for a in x])
    # the training loop's batch order of epoch 0; every framework and repeat uses this one
    batches = epoch_batches(len(x), args.batch_size, args.seed)
    cores = cpu_count()
    print(f"{len(x)} training clips from {store.path} (loaded in "
          f"{time.perf_counter() - started:.1f} s), {int(lengths.sum())} samples, lengths "
          f"{lengths.min()}..{lengths.max()} (median {int(np.median(lengths))}); "
          f"{len(batches)} batches of {args.batch_size}; {cores} cores; sigconv "
          f"{sigconv.__version__}")

    runs = {"sigconv": (sigconv_setup, sigconv_epoch, batches)}
    computed = {"sigconv": int(lengths.sum())}
    if torch is None:
        print("PyTorch is not installed: only sigconv is timed, no ratio")
    else:
        torch.set_num_threads(cores)
        print(f"PyTorch {torch.__version__}, {torch.get_num_threads()} threads")
        check_equivalence(x, y, args.seed)
        runs["torch"] = (torch_setup, torch_epoch, batches)
        computed["torch"] = sum(len(b) * int(lengths[b].max()) for b in batches)
        if not args.no_bucketed:
            bucketed = list(BucketBatchSampler(lengths, args.batch_size, num_buckets=8,
                                               seed=args.seed))
            runs["torch-bucketed"] = (torch_setup, torch_epoch, bucketed)
            computed["torch-bucketed"] = sum(len(b) * int(lengths[b].max()) for b in bucketed)

    for name, (setup, epoch, order) in runs.items():  # warm-up: a few untimed batches
        epoch(setup(args.seed, args.lr), x, y, order[:3])

    times = {name: [] for name in runs}
    results = {name: [] for name in runs}
    names = list(runs)
    for r in range(args.repeats):  # alternate which framework goes first
        for name in (names if r % 2 == 0 else names[::-1]):
            setup, epoch, order = runs[name]
            state = setup(args.seed, args.lr)  # a fresh model from the same initial weights
            start = time.perf_counter()
            loss, accuracy = epoch(state, x, y, order)
            times[name].append(time.perf_counter() - start)
            results[name].append((loss, accuracy))
            print(f"  repeat {r + 1} {name:<15} {times[name][-1]:7.2f} s   train loss "
                  f"{loss:.4f}  accuracy {accuracy:.3f}", flush=True)

    median = {name: statistics.median(t) for name, t in times.items()}
    rows = []
    for name in runs:
        ratio = f"{median[name] / median['sigconv']:.2f}"
        rows.append([name, f"{median[name]:.2f}", f"{min(times[name]):.2f}",
                     f"{len(x) / median[name]:.0f}", computed[name], ratio,
                     f"{results[name][-1][0]:.4f}", f"{results[name][-1][1]:.3f}"])
    print()
    print(format_table(["framework", "median s", "min s", "clips/s", "samples computed",
                        "time / sigconv", "train loss", "accuracy"], rows))
    if "torch" in median:
        ratio = median["torch"] / median["sigconv"]
        print(f"\nPyTorch / sigconv epoch time: {ratio:.2f}x (> 1: sigconv faster; target >= 1: "
              f"{'met' if ratio >= 1 else 'MISSED'}); median of {args.repeats} epoch(s) each")
        print(f"fastest epoch of each:         {min(times['torch']) / min(times['sigconv']):.2f}x "
              "(less sensitive to other jobs on the machine)")
        if "torch-bucketed" in median:
            print(f"PyTorch bucketed / sigconv:   "
                  f"{median['torch-bucketed'] / median['sigconv']:.2f}x (different batches; "
                  "for reference)")
    if args.profile:
        profile_sigconv(x, y, batches, args.seed, args.lr)


if __name__ == "__main__":
    main()
