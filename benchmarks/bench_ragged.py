"""Ragged batches through a model: the FSDD test clips through the Classifier, forward and backward.

Run from the project root (under the machine's benchmark lock)::

    flock /tmp/sigconv-bench.lock python benchmarks/bench_ragged.py [--repeat 7] [--batch 300]

The 300 test clips of the Free Spoken Digit Dataset (official split: takes
0-4, ``{digit}_{speaker}_{take}.wav``) go through ``Classifier(1, 10, ndim=1)``
(float32, training mode: BatchNorm on batch statistics) and cross-entropy,
forward and backward, in three ways:

* ``ragged``: the clips as :class:`sigconv.Ragged` batches of ``--batch``
  clips, each at its own length;
* ``dense-equal``: a dense ``(N, 1, L)`` batch holding the same total number
  of samples (all clips laid end to end and cut into N equal pieces): the
  speed a ragged batch should match;
* ``padded``: every clip zero-padded to the longest of its batch (the usual
  workaround).

Samples/s counts the clips' own samples (the padding is wasted work).  The
three are timed in turn, ``--repeat`` times each, and medians are reported
with the ratios ``ragged / dense-equal`` (target >= 0.9) and
``ragged / padded`` (target > 1).
"""
import argparse
import os
import pathlib
import statistics
import sys
import time

import numpy as np

from _common import machine_line

try:
    import sigconv
except ImportError:  # run from a source checkout without installing
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
    import sigconv
from sigconv.autograd import Tensor
from sigconv.models import Classifier
from sigconv.nn import functional as F
from sigconv.ragged import Ragged

DATA = pathlib.Path(os.environ.get("SIGCONV_SHARED_DATA",
                                   pathlib.Path(__file__).resolve().parents[2] / "shared" / "data"))


def load_test_clips(folder):
    """The test split (take < 5): list of (1, n) float32 clips and their digit labels."""
    from scipy.io import wavfile
    clips, labels = [], []
    for path in sorted(folder.glob("*.wav")):
        digit, _speaker, take = path.stem.split("_")
        if int(take) >= 5:
            continue
        rate, samples = wavfile.read(path)
        samples = samples.astype(np.float32)
        if samples.ndim > 1:
            samples = samples.mean(axis=1)
        scale = np.iinfo(np.int16).max if np.abs(samples).max() > 1 else 1.0
        clips.append((samples / scale)[None])
        labels.append(int(digit))
    return clips, np.array(labels)


def step(model, x, labels):
    """One forward and backward pass; the parameters' gradients are reset first."""
    for p in model.parameters():
        p.grad = None
    loss = F.cross_entropy(model(Tensor(x)), labels)
    loss.backward()
    return float(loss.data)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--batch", type=int, default=300, help="clips per batch (divides 300)")
    parser.add_argument("--data", type=pathlib.Path, default=DATA / "fsdd" / "recordings")
    args = parser.parse_args()
    print(machine_line())  # CPU, dispatch target, sgemm rate: the physical limit

    clips, labels = load_test_clips(args.data)
    n = len(clips)
    lengths = np.array([c.shape[1] for c in clips])
    total = int(lengths.sum())
    b = args.batch
    batches = [(i, min(i + b, n)) for i in range(0, n, b)]
    print(f"{n} test clips, {total} samples, lengths {lengths.min()}..{lengths.max()} "
          f"(median {int(np.median(lengths))}); batches of {b}; "
          f"Classifier(1, 10, ndim=1), float32, forward + backward; sigconv {sigconv.__version__}")

    ragged = [Ragged.from_list(clips[lo:hi]) for lo, hi in batches]
    stream = np.concatenate([c[0] for c in clips])
    piece = total // n
    equal = stream[:piece * n].reshape(n, 1, piece)
    dense = [equal[lo:hi] for lo, hi in batches]
    padded = []
    for lo, hi in batches:  # each batch padded to its own longest clip
        block = np.zeros((hi - lo, 1, int(lengths[lo:hi].max())), np.float32)
        for j, c in enumerate(clips[lo:hi]):
            block[j, :, :c.shape[1]] = c
        padded.append(block)

    model = Classifier(1, 10, ndim=1, rng=0)
    runs = {"ragged": ragged, "dense-equal": dense, "padded": padded}
    samples = {"ragged": total, "dense-equal": piece * n, "padded": total}
    computed = {"ragged": total, "dense-equal": piece * n,
                "padded": sum(block.shape[0] * block.shape[2] for block in padded)}
    times = {name: [] for name in runs}

    def run(name):
        for (lo, hi), x in zip(batches, runs[name]):
            step(model, x, labels[lo:hi])

    for name in runs:  # warm-up
        run(name)
    for _ in range(args.repeat):  # alternate, so that all see the same machine load
        for name in runs:
            start = time.perf_counter()
            run(name)
            times[name].append(time.perf_counter() - start)

    median = {name: statistics.median(t) for name, t in times.items()}
    rate = {name: samples[name] / median[name] for name in runs}
    print(f"\n{'batch':<12} {'median s':>9} {'min s':>7} {'samples/s':>11} {'computed':>10}")
    for name in runs:
        print(f"{name:<12} {median[name]:9.3f} {min(times[name]):7.3f} {rate[name]:11.3g} "
              f"{computed[name]:10d}")
    r_dense = rate["ragged"] / rate["dense-equal"]
    r_pad = rate["ragged"] / rate["padded"]
    print(f"\nragged / dense-equal: {r_dense:.2f}x (target >= 0.9: "
          f"{'met' if r_dense >= 0.9 else 'MISSED'})")
    print(f"ragged / padded:      {r_pad:.2f}x (target > 1: {'met' if r_pad > 1 else 'MISSED'})")


if __name__ == "__main__":
    main()
