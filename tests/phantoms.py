"""Small generated data (volumes, waveform stores) for the training, inference and CLI tests."""
import numpy as np


def blobs(rng, shape, *, scale=1.0, dtype=np.float64):
    """Four balls of value ``scale`` or ``2 * scale`` on 0 in a volume of ``shape``: a
    piecewise-constant signal to denoise and label."""
    grids = np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")
    volume = np.zeros(shape, dtype=dtype)
    for _ in range(4):
        centre = [rng.uniform(0, n) for n in shape]
        radius = rng.uniform(2, 4)
        inside = sum((g - c) ** 2 for g, c in zip(grids, centre)) < radius ** 2
        volume[inside] = scale * rng.integers(1, 3)
    return volume


def waveform_store(folder, rng, lengths, test):
    """A prepared store of 8 kHz waveforms, a tone (label 1) or noise (label 0) in turn, of
    the given ``lengths``; the first ``test`` items are the test split.  Its records name
    their kind, as prepared stores do."""
    from sigconv.data import Source, convert_npy, prepare

    folder.mkdir(parents=True, exist_ok=True)
    sources = []
    for i, n in enumerate(lengths):
        label = i % 2
        t = np.arange(n)
        signal = np.sin(0.6 * t + rng.uniform(0, 6)) if label else rng.standard_normal(n)
        np.save(folder / f"w{i:02d}.npy", (signal + 0.1 * rng.standard_normal(n))[None])
        sources.append(Source(f"w{i:02d}", str(folder / f"w{i:02d}.npy"),
                              {"label": label, "split": "test" if i < test else "train",
                               "kind": "waveform", "sample_rate": 8000,
                               "axes": ["channel", "time"]}))
    prepare(sources, folder / "store", convert_npy, progress=False, log=None)
    return folder / "store"


def volume_store(folder, rng, *, with_labels, kind=None):
    """A prepared store of six 12x16x16 :func:`blobs` volumes (4 train, 1 validation, 1
    test); ``with_labels``: a second channel holds the blobs' classes (0, 1, 2);
    ``kind="volume"``: the records name their kind and axes (as prepared CT stores do, so
    that training augments them by default)."""
    from sigconv.data import Source, convert_npy, prepare

    folder.mkdir(parents=True, exist_ok=True)
    sources = []
    for i, split in enumerate(["train"] * 4 + ["validation", "test"]):
        clean = blobs(rng, (12, 16, 16))
        item = np.stack([clean, clean]) if with_labels else clean[None]
        path = folder / f"v{i}.npy"
        np.save(path, item.astype(np.float32))
        fields = {"split": split}
        if kind is not None:
            fields.update(kind=kind, axes=["channel", "depth", "height", "width"])
        if with_labels:
            fields.update(target_channels=1, label_thresholds=[0.5, 1.5])
        sources.append(Source(f"v{i}", str(path), fields))
    prepare(sources, folder / "store", convert_npy, progress=False, log=None)
    return folder / "store"
