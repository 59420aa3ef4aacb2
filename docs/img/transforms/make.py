"""Draw the before/after pictures of docs/transforms.md from the shared sample data.

Run from the repository root:  python docs/img/transforms/make.py
(reads ../shared/data, writes docs/img/transforms/*.png; each under 150 KB).
"""
import pathlib
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import sigconv.io as io  # noqa: E402
import sigconv.transforms as T  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[3]
DATA = ROOT.parent / "shared" / "data"
OUT = pathlib.Path(__file__).resolve().parent
DPI = 80


def save(fig, name):
    path = OUT / name
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    print(f"{path.relative_to(ROOT)}: {path.stat().st_size // 1024} KB")


def rng(item=0):
    return T.item_rng(0, 0, item)


def waveform():
    wave = io.load(DATA / "fsdd" / "recordings" / "3_theo_7.wav")
    steps = [("original", None), ("TimeShift(0.2, 'zero')", T.TimeShift(0.2, "zero")),
             ("Speed((0.85, 0.85))", T.Speed((0.85, 0.85))),
             ("AddNoise((15, 15))", T.AddNoise((15.0, 15.0))),
             ("preset classify/waveform", T.preset("classify", "waveform", "strong"))]
    fig, axes = plt.subplots(len(steps), 1, figsize=(8, 6.5), sharex=True, sharey=True)
    for ax, (title, t) in zip(axes, steps):
        out = wave if t is None else t(wave, rng(3))
        ax.plot(np.arange(out.shape[1]) / out.sample_rate, out.data[0], lw=0.5)
        ax.set_title(f"{title}: {out.shape[1]} samples", fontsize=9)
    axes[-1].set_xlabel("seconds")
    fig.suptitle("waveform: spoken '3' (FSDD)", fontsize=10)
    fig.subplots_adjust(hspace=0.6)
    save(fig, "waveform.png")


def spectrogram():
    wave = io.load(DATA / "fsdd" / "recordings" / "3_theo_7.wav")
    spec = io.spectrogram(wave, kind="log-mel") if _has_kind() else io.spectrogram(wave)
    if spec.meta.get("spectrogram_kind") == "power":
        spec = spec.replace(np.log(spec.data + 1e-6))
    steps = [("original", None), ("TimeWarp(0.1)", T.TimeWarp(0.1)),
             ("SpecAugment(2, 0.27, 2, 0.2)", T.SpecAugment(2, 0.27, 2, 0.2)),
             ("preset classify/spectrogram", T.preset("classify", "spectrogram", "default"))]
    fig, axes = plt.subplots(1, len(steps), figsize=(11, 3), sharey=True)
    for ax, (title, t) in zip(axes, steps):
        out = spec if t is None else t(spec, rng(1))
        ax.imshow(out.data[0], origin="lower", aspect="auto", cmap="magma")
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("frame")
    axes[0].set_ylabel("frequency bin")
    save(fig, "spectrogram.png")


def _has_kind():
    import inspect

    return "kind" in inspect.signature(io.spectrogram).parameters


def skeleton():
    take = io.load(DATA / "mocap" / "mocapbank.bvh")
    frame = 200
    mirrored = T.Mirror(p=1)(take, rng())
    warped = T.TimeWarp(0.15)(take, rng(2))
    fig, axes = plt.subplots(1, 3, figsize=(10, 4))
    for ax, (title, s) in zip(axes[:2], [("original", take), ("Mirror", mirrored)]):
        pos = io.forward_kinematics(s)[frame]
        for j, joint in enumerate(s.joints):
            if joint.parent >= 0:
                p = pos[joint.parent]
                colour = "tab:red" if "Left" in joint.name else \
                    "tab:blue" if "Right" in joint.name else "0.3"
                ax.plot([p[0], pos[j, 0]], [p[1], pos[j, 1]], color=colour, lw=2)
        ax.set_aspect("equal")
        ax.set_title(f"{title}, frame {frame} (front view; red = Left*)", fontsize=9)
        ax.set_xlabel("X (left-right)")
    row = list(take.channel_names).index("LeftElbow.Xrotation")
    t = take.times()
    axes[2].plot(t, take.data[row], label="original")
    axes[2].plot(t, warped.data[row], label="TimeWarp(0.15)")
    axes[2].set_title("LeftElbow.Xrotation (degrees)", fontsize=9)
    axes[2].set_xlabel("seconds")
    axes[2].legend(fontsize=8)
    save(fig, "skeleton.png")


def image():
    cat = io.load(DATA / "images" / "chelsea.png").resize(height=100, width=150)
    steps = [("original", None), ("Flip('width', p=1)", T.Flip("width", p=1)),
             ("RandomCrop(pad=0.125)", T.RandomCrop(pad=0.125)),
             ("RandomAffine(20, (0.8, 1.2))", T.RandomAffine(20, (0.8, 1.2), 0.05,
                                                              mode="reflect")),
             ("ElasticDeform(6, 5)", T.ElasticDeform(6.0, 5)),
             ("ColorJitter(0.4, 0.4, 0.4)", T.ColorJitter(0.4, 0.4, 0.4, clip=(0, 1)))]
    fig, axes = plt.subplots(2, 3, figsize=(6.6, 3.3))
    for ax, (title, t) in zip(axes.flat, steps):
        out = cat if t is None else t(cat, rng(5))
        ax.imshow(np.clip(out.data.transpose(1, 2, 0), 0, 1), interpolation="nearest")
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    save(fig, "image.png")


def volume():
    stent = io.load(DATA / "volumes" / "stent.npz")
    from scipy import ndimage

    # a two-class label map to show the target channel moving: smoothed intensity > 150
    labels = (ndimage.gaussian_filter(stent.data[:1], (0, 2, 2, 2)) > 150).astype(np.float32)
    ct = stent.replace(np.concatenate([stent.data, labels]), target_channels=1)
    steps = [("original", None), ("Flip('width', p=1)", T.Flip("width", p=1)),
             ("Rot90(ks=(1,), p=1)", T.Rot90(ks=(1,), p=1)),
             ("RandomAffine(15, (0.9, 1.1))", T.RandomAffine(15, (0.9, 1.1), 0.05)),
             ("ElasticDeform(6, 5)", T.ElasticDeform(6.0, 5)),
             ("IntensityShift(200)", T.IntensityShift((200, 200)))]
    k = 100
    fig, axes = plt.subplots(2, len(steps), figsize=(13, 4.6))
    for i, (title, t) in enumerate(steps):
        out = ct if t is None else t(ct, rng(2))
        axes[0, i].imshow(out.data[0, k], cmap="gray", vmin=0, vmax=1200)
        axes[0, i].set_title(title, fontsize=8)
        axes[1, i].imshow(out.data[1, k], cmap="viridis", vmin=0, vmax=1,
                          interpolation="nearest")
        for ax in axes[:, i]:
            ax.set_xticks([])
            ax.set_yticks([])
    axes[0, 0].set_ylabel(f"axial slice {k}", fontsize=8)
    axes[1, 0].set_ylabel("target channel\n(moves, stays 0/1)", fontsize=8)
    save(fig, "volume.png")


def video():
    clip = io.load_video(DATA / "video" / "cockatoo.mp4", stop=80, step=8, size=(72, 128))
    out = T.Compose([T.TemporalCrop((0.6, 0.6)), T.Flip("width", p=1)])(clip, rng(1))
    fig, axes = plt.subplots(2, clip.shape[1], figsize=(14, 2.4))
    for row, (title, s) in enumerate([("original", clip), ("TemporalCrop(0.6) + Flip", out)]):
        times = s.times()
        for i, ax in enumerate(axes[row]):
            ax.axis("off")
            if i < s.shape[1]:
                ax.imshow(s.data[:, i].transpose(1, 2, 0))
                ax.set_title(f"{times[i]:.1f} s", fontsize=7)
        axes[row, 0].text(-0.1, 0.5, title, transform=axes[row, 0].transAxes, ha="right",
                          va="center", fontsize=8)
    save(fig, "video.png")


if __name__ == "__main__":
    if not DATA.is_dir():
        sys.exit(f"the shared sample data are not at {DATA}")
    for draw in (waveform, spectrogram, skeleton, image, volume, video):
        draw()
