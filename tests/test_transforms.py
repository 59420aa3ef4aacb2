"""sigconv.transforms: the contract of every transform, orientation, mirroring, batches, presets.

Oracles are independent of the code under test: world coordinates through
the affine (volume flips/turns), forward kinematics of a mirrored pose
(skeleton mirroring), the dominant frequency of a sine (speed), measured
SNRs (noise, background), numpy's own flips and rolls.
"""
import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import sigconv.io as io
import sigconv.transforms as T
from sigconv.errors import ArgumentError
from sigconv.io import Signal
from sigconv.ragged import Ragged
from sigconv.transforms.skeleton import mirror_partner
from sigconv.transforms.temporal import warp_positions


# -- realistic items of every kind -------------------------------------------------------
def _blobs(shape, rng, classes=3):
    """An integer label map of smooth blobs (classes 0..classes-1)."""
    from scipy import ndimage

    field = ndimage.gaussian_filter(rng.standard_normal(shape), max(2.0, max(shape) / 16))
    edges = np.quantile(field, np.linspace(0, 1, classes + 1)[1:-1])
    return np.digitize(field, edges).astype(np.float32)


def rotated_affine(spacing=(3.0, 0.7, 0.9)):
    """A RAS affine with a rotation about two axes and anisotropic spacing."""
    a, b = math.radians(20), math.radians(-35)
    rx = np.array([[1, 0, 0], [0, math.cos(a), -math.sin(a)], [0, math.sin(a), math.cos(a)]])
    rz = np.array([[math.cos(b), -math.sin(b), 0], [math.sin(b), math.cos(b), 0], [0, 0, 1]])
    affine = np.eye(4)
    affine[:3, :3] = rz @ rx @ np.diag(spacing)
    affine[:3, 3] = (-12.5, 40.0, 7.25)
    return affine


def make(kind, targets=0, seed=0):
    """A small realistic Signal of ``kind``; with ``targets``, trailing label channels."""
    rng = np.random.default_rng(seed)
    if kind == "waveform":
        t = np.arange(4000) / 8000.0
        x = (0.5 * np.sin(2 * np.pi * 440 * t) * np.hanning(4000))[None]
        meta = dict(sample_rate=8000.0)
    elif kind == "spectrogram":
        x = np.log1p(rng.gamma(2.0, 1.0, size=(1, 64, 40)))
        meta = dict(sample_rate=8000.0, hop_length=128, n_fft=512,
                    frequencies=np.linspace(0, 4000, 64))
    elif kind == "skeleton":
        names = ["Hips.Xposition", "Hips.Yposition", "Hips.Zposition", "Hips.Zrotation",
                 "Hips.Xrotation", "Hips.Yrotation"]
        for j in ("LeftHip", "RightHip", "Chest"):
            names += [f"{j}.Zrotation", f"{j}.Xrotation", f"{j}.Yrotation"]
        x = np.cumsum(rng.normal(0, 2.0, size=(len(names), 50)), axis=1)
        meta = dict(frame_rate=30.0, channel_names=tuple(names), angle_unit="degrees")
    elif kind == "image":
        x = rng.uniform(0, 1, size=(3, 24, 32))
        meta = dict(channel_names=("R", "G", "B"))
    elif kind == "volume":
        x = rng.normal(40, 200, size=(1, 10, 12, 12))
        meta = dict(spacing=(3.0, 0.7, 0.9), affine=rotated_affine())
    else:
        x = rng.uniform(0, 1, size=(3, 10, 16, 16))
        meta = dict(frame_rate=20.0)
    x = x.astype(np.float32)
    if targets:
        labels = np.stack([_blobs(x.shape[1:], rng) for _ in range(targets)])
        x = np.concatenate([x, labels])
        meta["target_channels"] = targets
        if kind == "skeleton":
            meta["channel_names"] = meta["channel_names"]  # names of the input channels only
    return Signal(x, kind, **meta)


def rng_of(seed=0):
    return T.item_rng(seed, 0, 0)


# -- the catalogue: every transform with settings that change data, for each accepted kind --
CHANGING = [
    (lambda: T.TimeShift(0.2, "zero"), ("waveform", "spectrogram", "skeleton")),
    (lambda: T.TimeShift(0.2, "circular"), ("waveform",)),
    (lambda: T.TimeShift(0.2, "min"), ("spectrogram",)),
    (lambda: T.TimeShift(0.2, "edge"), ("skeleton",)),
    (lambda: T.TimeWarp(0.1), ("spectrogram", "skeleton")),
    (lambda: T.TemporalCrop((0.5, 0.8)), ("video", "skeleton", "waveform", "spectrogram")),
    (lambda: T.Speed((0.8, 0.9)), ("waveform",)),
    (lambda: T.Gain(6.0), ("waveform",)),
    (lambda: T.AddNoise((10, 20)), ("waveform",)),
    (lambda: T.BackgroundMix([np.random.default_rng(1).normal(size=3000)], (0, 10)),
     ("waveform",)),
    (lambda: T.SpecAugment(2, 0.3, 2, 0.3), ("spectrogram",)),
    (lambda: T.Flip("width", p=1.0), ("image", "volume", "video")),
    (lambda: T.Rot90("axial", ks=(1, 3), p=1.0), ("image", "volume", "video")),
    (lambda: T.RandomCrop(pad=0.2), ("image", "volume", "video")),
    (lambda: T.RandomAffine(20, (0.8, 1.2), 0.1), ("image", "volume", "video")),
    (lambda: T.ElasticDeform(3.0, 4), ("image", "volume")),
    (lambda: T.IntensityShift(50.0, (0.9, 1.1)), ("volume",)),
    (lambda: T.ColorJitter(0.4, 0.4, 0.4), ("image", "video")),
    (lambda: T.Mirror(p=1.0), ("skeleton",)),
    (lambda: T.AngleNoise(2.0), ("skeleton",)),
]
CASES = [pytest.param(factory, kind, id=f"{factory().__class__.__name__}-{kind}")
         for factory, kinds in CHANGING for kind in kinds]

#: Transforms that may change the shape, and how.
SHAPE_CHANGES = ("Speed", "TemporalCrop", "Rot90")
METADATA = ("sample_rate", "frame_rate", "hop_length", "n_fft", "channel_names", "joints")


def test_catalogue_covers_every_transform():
    covered = {}
    for factory, kinds in CHANGING:
        covered.setdefault(type(factory()), set()).update(kinds)
    assert {cls.__name__ for cls in covered} == set(T.TRANSFORMS)
    for cls, kinds in covered.items():
        assert kinds == set(cls.kinds), cls.__name__


@pytest.mark.parametrize("factory, kind", CASES)
def test_shape_metadata_dtype_and_input_kept(factory, kind):
    t = factory()
    for dtype in (np.float32, np.float64):
        signal = make(kind).astype(dtype)
        before = signal.data.copy()
        out = t(signal, rng_of(3))
        assert isinstance(out, Signal) and out is not signal
        assert np.array_equal(signal.data, before), "the input was modified"
        assert out.kind == kind and out.axes == signal.axes and out.dtype == dtype
        assert out.shape[0] == signal.shape[0]
        name = type(t).__name__
        if name == "Rot90":
            assert sorted(out.shape[1:]) == sorted(signal.shape[1:])
        elif name == "TemporalCrop":
            axis = signal.axis("time")
            assert out.shape[axis] < signal.shape[axis]
            assert out.start_time > 0
        elif name == "Speed":
            assert signal.shape[1] / 0.9 - 2 <= out.shape[1] <= signal.shape[1] / 0.8 + 2
        else:
            assert out.shape == signal.shape
        for field in METADATA:
            assert _same(getattr(out, field), getattr(signal, field)), field
        if name not in ("Rot90",):
            assert _same(out.spacing, signal.spacing)
        if name not in ("Rot90", "Flip", "RandomCrop"):
            assert _same(out.affine, signal.affine)
        assert not np.array_equal(out.data, signal.data) or out.shape != signal.shape


def _same(a, b):
    if a is None or b is None:
        return a is b
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return np.array_equal(a, b)
    return a == b


@pytest.mark.parametrize("factory, kind", CASES)
def test_same_seed_same_output_other_seeds_differ(factory, kind):
    t, signal = factory(), make(kind)
    if isinstance(t, (T.Flip, T.Mirror)):
        t.p = 0.5  # with p=1 they draw nothing
    a, b = t(signal, rng_of(7)), t(signal, rng_of(7))
    assert a.shape == b.shape and np.array_equal(a.data, b.data)
    others = [t(signal, rng_of(s)) for s in range(8, 14)]
    assert any(o.shape != a.shape or not np.array_equal(o.data, a.data) for o in others)


@pytest.mark.parametrize("factory, kind", CASES)
def test_wrong_kind_names_transform_kind_and_accepted(factory, kind):
    t = factory()
    wrong = next(k for k in io.KINDS if k not in t.kinds)
    with pytest.raises(ArgumentError, match=rf"{type(t).__name__} does not apply to a "
                                            rf"'{wrong}' signal; it accepts kinds '{t.kinds[0]}'"):
        t(make(wrong), rng_of())


def test_not_a_signal_or_not_a_generator():
    with pytest.raises(ArgumentError, match="Gain takes a sigconv.io.Signal, got ndarray"):
        T.Gain()(np.zeros((1, 10)), rng_of())
    with pytest.raises(ArgumentError, match="Gain needs rng to be a numpy.random.Generator"):
        T.Gain()(make("waveform"), 0)


# -- identity settings -------------------------------------------------------------------
IDENTITIES = [
    (T.Gain(db=(0, 0)), "waveform"), (T.Gain(db=0), "waveform"),
    (T.TimeShift(max_shift=0), "waveform"), (T.TimeShift(0, "circular"), "skeleton"),
    (T.TimeWarp(max_warp=0), "spectrogram"), (T.TemporalCrop((1, 1)), "video"),
    (T.Speed((1, 1)), "waveform"), (T.AddNoise(p=0), "waveform"),
    (T.BackgroundMix([np.ones(10)], p=0), "waveform"),
    (T.SpecAugment(freq_masks=0, time_masks=0), "spectrogram"),
    (T.SpecAugment(freq_width=0, time_width=0), "spectrogram"),
    (T.Flip(p=0), "image"), (T.Flip(("depth", "height", "width"), p=0), "volume"),
    (T.Rot90(ks=(0,)), "volume"), (T.Rot90(p=0), "image"),
    (T.RandomCrop(pad=0), "image"), (T.RandomAffine(0, (1, 1), 0), "volume"),
    (T.ElasticDeform(max_displacement=0), "volume"), (T.IntensityShift(0, (1, 1)), "volume"),
    (T.ColorJitter(0, 0, 0), "image"), (T.Mirror(p=0), "skeleton"),
    (T.AngleNoise(std=0), "skeleton"), (T.Identity(), "video"), (T.Compose([]), "image"),
    (T.RandomApply(T.Gain(), p=0), "waveform"),
    (T.OneOf([T.Gain(0), T.TimeShift(0)]), "waveform"),
    (T.Compose([T.Flip(p=0), T.Rot90(p=0), T.ColorJitter(0, 0, 0)]), "image"),
]


@pytest.mark.parametrize("t, kind", IDENTITIES, ids=lambda v: v if isinstance(v, str) else
                         type(v).__name__)
def test_identity_settings_return_the_input_exactly(t, kind):
    signal = make(kind, targets=1)
    for seed in range(3):
        out = t(signal, rng_of(seed))
        assert out.shape == signal.shape and out.dtype == signal.dtype
        assert np.array_equal(out.data, signal.data)
        assert out.data.tobytes() == signal.data.tobytes()


# -- bad parameters ----------------------------------------------------------------------
BAD = [
    (lambda: T.Gain(db=(6, -6)), r"Gain db must have low <= high"),
    (lambda: T.Gain(db="loud"), r"Gain db must be a \(low, high\) pair or one number"),
    (lambda: T.Gain(db=-3), r"Gain db must be >= 0, got -3"),
    (lambda: T.Gain(p=1.5), r"p must be <= 1, got 1.5"),
    (lambda: T.Gain(p=True), r"p must be a finite number, got True"),
    (lambda: T.TimeShift(max_shift=-0.1), r"TimeShift max_shift must be >= 0"),
    (lambda: T.TimeShift(mode="wrap"), r"TimeShift mode must be one of 'zero', 'min', 'edge', "
                                       r"'circular'; got 'wrap'"),
    (lambda: T.TimeWarp(max_warp=0.3), r"TimeWarp max_warp must be < 0.5 / \(knots \+ 1\)"),
    (lambda: T.TimeWarp(knots=0), r"TimeWarp knots must be a positive int"),
    (lambda: T.TemporalCrop((0, 1)), r"TemporalCrop fraction\[0\] must be > 0"),
    (lambda: T.Speed((0.1, 1.0)), r"Speed factors must lie in \[0.25, 4\]"),
    (lambda: T.Speed(quality="best"), r"Speed quality must be one of"),
    (lambda: T.AddNoise(snr_db=float("nan")), r"AddNoise snr_db must be a \(low, high\) pair"),
    (lambda: T.AddNoise(snr_db=(float("nan"), 1)), r"AddNoise snr_db\[0\] must be a finite"),
    (lambda: T.BackgroundMix([]), r"BackgroundMix needs at least one clip"),
    (lambda: T.BackgroundMix(5), r"BackgroundMix clips must be a list of waveforms"),
    (lambda: T.BackgroundMix([np.zeros((2, 2, 2))]), r"clip 0 must be a finite \(T,\) or"),
    (lambda: T.SpecAugment(freq_masks=-1), r"SpecAugment freq_masks must be an int >= 0"),
    (lambda: T.SpecAugment(time_width=2), r"SpecAugment time_width must be <= 1"),
    (lambda: T.SpecAugment(fill="nan"), r"SpecAugment fill must be one of 'min', 'mean', 'zero'"),
    (lambda: T.Flip(axes="sideways"), r"Flip axes must be one of 'depth', 'height', 'width', "),
    (lambda: T.Flip(axes=("width", "width")), r"Flip axes names an axis twice"),
    (lambda: T.Rot90(plane="width"), r"Rot90 plane must name two axes"),
    (lambda: T.Rot90(ks=(4,)), r"Rot90 ks must be an int >= 0 \(at most 3\), got 4"),
    (lambda: T.RandomCrop(pad=2), r"RandomCrop pad must be <= 1"),
    (lambda: T.RandomCrop(size=0), r"RandomCrop size must be a positive int"),
    (lambda: T.RandomCrop(mode="nearest"), r"RandomCrop mode must be one of 'reflect'"),
    (lambda: T.RandomAffine(degrees=-1), r"RandomAffine degrees must be >= 0"),
    (lambda: T.RandomAffine(scale=(0, 1)), r"RandomAffine scale\[0\] must be > 0"),
    (lambda: T.RandomAffine(mode="black"), r"RandomAffine mode must be one of 'nearest'"),
    (lambda: T.ElasticDeform(control_points=1), r"ElasticDeform control_points must be an int "
                                                r">= 2"),
    (lambda: T.ElasticDeform(max_displacement=float("inf")), r"max_displacement must be a finite"),
    (lambda: T.IntensityShift(scale=(-1, 1)), r"IntensityShift scale\[0\] must be > 0"),
    (lambda: T.ColorJitter(brightness=2), r"ColorJitter brightness must be <= 1"),
    (lambda: T.ColorJitter(clip=(1, 0)), r"ColorJitter clip must have low <= high"),
    (lambda: T.Mirror(lateral="w"), r"Mirror lateral must be one of 'x', 'y', 'z'"),
    (lambda: T.AngleNoise(std=-1), r"AngleNoise std must be >= 0"),
    (lambda: T.Compose([T.Gain(), "gain"]), r"Compose: item 1 is not a sigconv transform"),
    (lambda: T.Compose(3), r"Compose takes a list of transforms"),
    (lambda: T.RandomApply(lambda s, r: s), r"RandomApply takes a sigconv transform"),
    (lambda: T.OneOf([]), r"OneOf needs at least one transform"),
    (lambda: T.OneOf([T.Gain()], weights=[0]), r"OneOf weights must give one number >= 0 per "
                                               r"transform \(1\) with a positive sum"),
    (lambda: T.item_rng(-1, 0, 0), r"seed must be an int >= 0"),
    (lambda: T.item_rng(0, 1.5, 0), r"epoch must be an int >= 0"),
    (lambda: T.preset("segment", "image"), r"task must be one of 'classify', 'denoise', 'label'"),
    (lambda: T.preset("classify", "audio"), r"kind must be one of 'waveform'"),
    (lambda: T.preset("classify", "image", "max"), r"strength must be one of 'none', 'light'"),
    (lambda: T.describe(print), r"describe takes a sigconv transform"),
]


@pytest.mark.parametrize("build, match", BAD, ids=[m[:40] for _, m in BAD])
def test_bad_parameters_raise_argument_error(build, match):
    with pytest.raises(ArgumentError, match=match):
        build()


def test_bad_input_at_call_time():
    with pytest.raises(ArgumentError, match=r"Flip: this image has axes .* no axis 'depth'"):
        T.Flip("depth", p=1)(make("image"), rng_of())
    with pytest.raises(ArgumentError, match=r"RandomCrop size 40 is larger than axis 'height'"):
        T.RandomCrop(size=40, pad=0)(make("image"), rng_of())
    with pytest.raises(ArgumentError, match=r"Mirror needs the skeleton's channel_names"):
        T.Mirror(p=1)(make("skeleton").replace(channel_names=None), rng_of())
    with pytest.raises(ArgumentError, match=r"meta\['target_channels'\] must be an int from 0"):
        T.Gain()(make("waveform").replace(target_channels=1), rng_of())


# -- target channels -------------------------------------------------------------------
INTENSITY = [(T.Gain(6), "waveform"), (T.AddNoise((0, 5)), "waveform"),
             (T.BackgroundMix([np.ones(100)], (0, 1)), "waveform"),
             (T.SpecAugment(3, 0.3, 3, 0.3), "spectrogram"), (T.IntensityShift(100), "volume"),
             (T.ColorJitter(0.5, 0.5, 0.5), "image"), (T.ColorJitter(0.5, 0.5, 0.5), "video"),
             (T.AngleNoise(5), "skeleton"), (T.Mirror(p=1), "skeleton")]


@pytest.mark.parametrize("t, kind", INTENSITY, ids=lambda v: v if isinstance(v, str) else
                         type(v).__name__)
def test_intensity_transforms_leave_targets_untouched(t, kind):
    signal = make(kind, targets=1)
    out = t(signal, rng_of(2))
    assert np.array_equal(out.data[-1], signal.data[-1])
    assert not np.array_equal(out.data[:-1], signal.data[:-1])


GEOMETRIC = [(T.TimeShift(0.3, "zero"), "waveform", True), (T.TimeShift(0.3, "min"), "spectrogram",
                                                            True),
             (T.TimeShift(0.3, "circular"), "skeleton", True),
             (T.TimeShift(0.3, "edge"), "skeleton", True),
             (T.TimeWarp(0.2), "spectrogram", False), (T.TimeWarp(0.2, 1), "skeleton", False),
             (T.TemporalCrop((0.5, 0.7)), "video", True), (T.Speed((0.8, 0.8)), "waveform", False),
             (T.Flip(("height", "width"), p=1), "volume", True),
             (T.Flip("width", p=1), "video", True), (T.Rot90(ks=(1,), p=1), "image", True),
             (T.Rot90(ks=(3,), p=1), "volume", True), (T.RandomCrop(pad=0.25), "image", True),
             (T.RandomCrop(size=(6, 8, 8), pad=0.1), "volume", True),
             (T.RandomAffine(25, (0.8, 1.2), 0.1), "image", False),
             (T.RandomAffine(25, (0.8, 1.2), 0.1), "volume", False),
             (T.RandomAffine(25, (0.8, 1.2), 0.1), "video", False),
             (T.ElasticDeform(4.0, 4), "image", False), (T.ElasticDeform(3.0, 4), "volume", False)]


@pytest.mark.parametrize("t, kind, exact", GEOMETRIC, ids=lambda v: v if isinstance(v, str) else
                         type(v).__name__)
def test_geometric_transforms_move_targets_with_the_input(t, kind, exact):
    """The label map, given both as the input and as the target, comes out the same.

    Exact transforms (flips, turns, crops, shifts) move both identically;
    interpolating ones agree wherever linear and nearest sampling round alike
    (everywhere but at label boundaries).  The target stays a label set.
    """
    labels = make(kind, targets=1, seed=5).data[-1:]
    signal = make(kind).replace(data=np.concatenate([labels, labels]), target_channels=1)
    if kind == "skeleton":
        signal = signal.replace(channel_names=("Hips.Xposition",))
    out = t(signal, rng_of(4))
    moved_input, moved_target = out.data[0], out.data[1]
    assert set(np.unique(moved_target)) <= set(np.unique(labels))
    assert not np.array_equal(out.data, signal.data) or out.shape != signal.shape
    if exact:
        if type(t).__name__ == "TimeShift" and t.mode != "circular":
            fill = moved_target == 0
            assert np.array_equal(moved_input[~fill], moved_target[~fill])
        else:
            assert np.array_equal(moved_input, moved_target)
    else:
        agree = np.mean(np.rint(moved_input) == moved_target)
        assert agree > 0.85, agree


# -- orientation: flips and quarter turns keep world coordinates ------------------------
def _marked_volume(affine, spacing, shape=(7, 9, 11), seed=0):
    values = np.random.default_rng(seed).permutation(np.prod(shape)).astype(np.float32)
    return Signal(values.reshape((1,) + shape), "volume", spacing=spacing, affine=affine)


def _world_of_values(signal):
    """{value: world coordinate of the voxel holding it}."""
    idx = np.indices(signal.shape[1:]).reshape(3, -1)
    world = (np.asarray(signal.affine) @ np.vstack([idx, np.ones(idx.shape[1])]))[:3]
    return dict(zip(signal.data[0].reshape(-1).tolist(), world.T.tolist()))


REORDERS = [T.Flip("width", p=1), T.Flip("depth", p=1), T.Flip(("depth", "height", "width"), p=1),
            T.Rot90("axial", ks=(1,), p=1), T.Rot90("axial", ks=(2,), p=1),
            T.Rot90("axial", ks=(3,), p=1), T.Rot90(("depth", "width"), ks=(1,), p=1),
            T.Compose([T.Rot90(ks=(1,), p=1), T.Flip("height", p=1)])]


@pytest.mark.parametrize("t", REORDERS, ids=repr)
def test_flips_and_turns_keep_every_voxels_world_position(t):
    spacing = (3.0, 0.7, 0.9)
    signal = _marked_volume(rotated_affine(spacing), spacing)
    out = t(signal, rng_of())
    before, after = _world_of_values(signal), _world_of_values(out)
    assert before.keys() == after.keys()
    assert np.allclose([before[v] for v in before], [after[v] for v in before], atol=1e-9)
    columns = np.linalg.norm(np.asarray(out.affine)[:3, :3], axis=0)
    assert np.allclose(columns, out.spacing)
    assert np.array_equal(out.data, _numpy_reorder(t, signal.data))


@settings(max_examples=30, deadline=None)
@given(shape=st.tuples(st.integers(1, 6), st.integers(1, 6), st.integers(1, 6)),
       spacing=st.tuples(*[st.floats(0.2, 5.0)] * 3), angles=st.tuples(*[st.floats(-3.2, 3.2)] * 3),
       origin=st.tuples(*[st.floats(-100, 100)] * 3), seed=st.integers(0, 1000))
def test_world_positions_kept_for_any_affine_and_any_reordering(shape, spacing, angles, origin,
                                                                seed):
    from scipy.spatial.transform import Rotation

    affine = np.eye(4)
    affine[:3, :3] = Rotation.from_euler("xyz", angles).as_matrix() @ np.diag(spacing)
    affine[:3, 3] = origin
    signal = _marked_volume(affine, spacing, shape=shape, seed=seed)
    t = T.Compose([T.Flip(("depth", "height", "width"), p=0.5),
                   T.Rot90(("depth", "height"), p=0.75), T.Rot90("axial", p=0.75)])
    out = t(signal, rng_of(seed))
    before, after = _world_of_values(signal), _world_of_values(out)
    assert np.allclose([before[v] for v in before], [after[v] for v in before], atol=1e-6)
    assert np.allclose(np.linalg.norm(np.asarray(out.affine)[:3, :3], axis=0), out.spacing)


def _numpy_reorder(t, data):
    """The same reordering with numpy's own flip and rot90 (the oracle of the array part)."""
    axes = {"depth": 1, "height": 2, "width": 3}
    if isinstance(t, T.Compose):
        for inner in t:
            data = _numpy_reorder(inner, data)
        return data
    if isinstance(t, T.Flip):
        return np.flip(data, [axes[a] for a in t.axes])
    return np.rot90(data, t.ks[0], axes=[axes[a] for a in t.plane])


def test_flip_keeps_world_positions_on_the_shared_nifti():
    import nibabel

    path = f"{nibabel.__path__[0]}/tests/data/anatomical.nii"
    signal = io.load(path)
    assert not np.allclose(signal.affine, np.diag(np.diag(signal.affine)))
    k = np.unravel_index(np.argmax(signal.data[0]), signal.shape[1:])
    marked = signal.data.copy()
    marked[(0,) + k] = 1e6
    signal = signal.replace(marked)
    for t in (T.Flip("width", p=1), T.Rot90(ks=(1,), p=1), T.Rot90(ks=(3,), p=1)):
        out = t(signal, rng_of())
        n = np.argwhere(out.data[0] == 1e6)[0]
        old = np.asarray(signal.affine) @ np.r_[k, 1]
        new = np.asarray(out.affine) @ np.r_[n, 1]
        assert np.allclose(old, new)


def test_image_rot90_swaps_spacing_and_shape():
    image = make("image").replace(spacing=(0.5, 0.25))
    out = T.Rot90(ks=(1,), p=1)(image, rng_of())
    assert out.shape == (3, 32, 24) and out.spacing == (0.25, 0.5)
    assert np.array_equal(out.data, np.rot90(image.data, 1, axes=(1, 2)))


def test_random_crop_moves_the_affine_origin():
    spacing = (3.0, 0.7, 0.9)
    signal = _marked_volume(rotated_affine(spacing), spacing, shape=(8, 10, 10))
    out = T.RandomCrop(size=(5, 6, 6), pad=0.0)(signal, rng_of(1))
    before, after = _world_of_values(signal), _world_of_values(out)
    assert all(np.allclose(before[v], after[v]) for v in after)


# -- skeletons: mirroring on the shared BVH files -------------------------------------------
@pytest.fixture(scope="module", params=["freebvh.bvh", "mocapbank.bvh"])
def bvh(request, shared_data):
    return io.load(shared_data / "mocap" / request.param)


def test_mirror_twice_is_the_identity(bvh):
    m = T.Mirror(p=1)
    once = m(bvh, rng_of())
    assert not np.array_equal(once.data, bvh.data)
    assert np.array_equal(m(once, rng_of()).data, bvh.data)
    assert once.channel_names == bvh.channel_names and once.joints == bvh.joints
    assert once.frame_rate == bvh.frame_rate


def test_mirror_swaps_left_and_right_joints(bvh):
    out = T.Mirror(p=1)(bvh, rng_of())
    names = list(bvh.channel_names)
    row = {n: i for i, n in enumerate(names)}
    prefix = "mixamorig:" if names[0].startswith("mixamorig:") else ""
    pairs = [("LeftShoulder", "RightShoulder"), ("LeftHip", "RightHip")] if not prefix else \
        [("LeftArm", "RightArm"), ("LeftUpLeg", "RightUpLeg"), ("LeftHandThumb1",
                                                                  "RightHandThumb1")]
    for left, right in pairs:
        for axis, sign in (("X", 1), ("Y", -1), ("Z", -1)):
            a, b = f"{prefix}{left}.{axis}rotation", f"{prefix}{right}.{axis}rotation"
            assert np.array_equal(out.data[row[a]], sign * bvh.data[row[b]])
            assert np.array_equal(out.data[row[b]], sign * bvh.data[row[a]])
    hips = f"{prefix}Hips"
    assert np.array_equal(out.data[row[f"{hips}.Xposition"]], -bvh.data[row[f"{hips}.Xposition"]])
    assert np.array_equal(out.data[row[f"{hips}.Yposition"]], bvh.data[row[f"{hips}.Yposition"]])
    assert np.array_equal(out.data[row[f"{hips}.Xrotation"]], bvh.data[row[f"{hips}.Xrotation"]])
    assert np.array_equal(out.data[row[f"{hips}.Zrotation"]], -bvh.data[row[f"{hips}.Zrotation"]])
    joints = [j.name for j in bvh.joints if j.channels]
    paired = [j for j in joints if mirror_partner(j, joints) != j]
    assert len(paired) == sum("Left" in j or "Right" in j for j in joints)


def test_mirrored_pose_is_the_mirror_image_of_the_pose(bvh):
    """Forward kinematics of the mirrored channels = the original joints' positions with
    X negated and left/right swapped (on the skeleton with its offsets made symmetric)."""
    joints = [j.name for j in bvh.joints]
    partner = [joints.index(mirror_partner(j, joints)) for j in joints]
    offsets = [np.array(j.offset, dtype=float) for j in bvh.joints]
    for i, p in enumerate(partner):
        if p == i:
            offsets[i][0] = 0.0
        elif i < p:
            offsets[p] = offsets[i] * [-1, 1, 1]
    symmetric = bvh.replace(joints=tuple(j._replace(offset=tuple(o))
                                         for j, o in zip(bvh.joints, offsets)),
                            data=bvh.data.astype(np.float64))
    mirrored = T.Mirror(p=1)(symmetric, rng_of())
    pose = io.forward_kinematics(symmetric)
    expected = pose[:, partner] * [-1, 1, 1]
    assert np.allclose(io.forward_kinematics(mirrored), expected, atol=1e-6)


@pytest.mark.parametrize("name, partner", [
    ("LeftArm", "RightArm"), ("mixamorig:RightHand", "mixamorig:LeftHand"), ("lhip", "rhip"),
    ("LHip", "RHip"), ("Hand_L", "Hand_R"), ("hand.r", "hand.l"), ("Hips", "Hips"),
    ("Root", "Root"), ("leftfoot", "rightfoot"), ("RightHandThumb1", "LeftHandThumb1")])
def test_mirror_partner_by_name(name, partner):
    names = [name, partner, "Spine", "Loot", "Rips"]
    assert mirror_partner(name, names) == partner


def test_angle_noise_only_on_rotations_and_time_warp_blends_angles_on_the_short_arc(bvh):
    out = T.AngleNoise(1.0)(bvh, rng_of())
    rot = np.array([n.endswith("rotation") for n in bvh.channel_names])
    assert np.array_equal(out.data[~rot], bvh.data[~rot])
    diff = out.data[rot] - bvh.data[rot]
    assert 0.9 < float(diff.std()) < 1.1
    wrapped = Signal(np.array([[179.0, -179.0] * 10, [0.0, 10.0] * 10], np.float32), "skeleton",
                     channel_names=("A.Zrotation", "A.Xposition"))
    warped = T.TimeWarp(0.2)(wrapped, rng_of(1))
    angles = warped.data[0]
    assert np.all((angles >= 179.0) | (angles <= -179.0)), angles
    assert np.all((warped.data[1] >= 0) & (warped.data[1] <= 10))


# -- waveforms and spectrograms: oracles -------------------------------------------------
def _peak_hz(x, rate):
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return np.argmax(spectrum) * rate / len(x)


def test_speed_scales_length_and_pitch_and_keeps_the_rate():
    t = np.arange(16000) / 8000.0
    signal = Signal(np.sin(2 * np.pi * 500 * t)[None].astype(np.float32), "waveform",
                    sample_rate=8000)
    out = T.Speed((1.1, 1.1))(signal, rng_of())
    assert out.sample_rate == 8000 and abs(out.shape[1] - 16000 / 1.1) <= 2
    assert abs(_peak_hz(out.data[0], 8000) - 550) < 2


def test_add_noise_and_background_mix_reach_the_snr():
    x = make("waveform").data
    signal = Signal(np.tile(x, (1, 4)), "waveform", sample_rate=8000.0)
    power = np.mean(signal.data.astype(np.float64) ** 2)
    out = T.AddNoise((12.0, 12.0))(signal, rng_of())
    noise = out.data.astype(np.float64) - signal.data
    assert abs(10 * np.log10(power / np.mean(noise ** 2)) - 12.0) < 0.3
    clip = Signal(np.random.default_rng(0).normal(size=(1, 4000)).astype(np.float32), "waveform",
                  sample_rate=16000)
    out = T.BackgroundMix([clip], (6.0, 6.0))(signal, rng_of())
    noise = out.data.astype(np.float64) - signal.data
    assert abs(10 * np.log10(power / np.mean(noise ** 2)) - 6.0) < 1e-3


def test_spec_augment_masks_bands_with_the_fill():
    signal = make("spectrogram")
    for fill in ("min", "mean", "zero"):
        t = T.SpecAugment(1, 0.5, 0, 0.0, fill=fill)
        out = next(o for o in (t(signal, rng_of(s)) for s in range(3, 20)) if o is not signal)
        changed = np.where((out.data != signal.data).any(axis=(0, 2)))[0]
        assert 0 < len(changed) <= 32 and np.all(np.diff(changed) == 1)
        value = {"min": signal.data.min(), "mean": signal.data.mean(), "zero": 0.0}[fill]
        assert np.allclose(out.data[:, changed], value, rtol=1e-5)


def test_time_shift_modes_against_numpy_roll():
    signal = make("waveform")
    x = signal.data
    for mode in ("zero", "circular", "edge"):
        out = T.TimeShift(0.3, mode)(signal, rng_of(5)).data
        shift = next(s for s in range(-1200, 1201) if np.array_equal(
            out[:, 1200:-1200], np.roll(x, s, axis=1)[:, 1200:-1200]))
        rolled = np.roll(x, shift, axis=1)
        if mode == "circular":
            assert np.array_equal(out, rolled)
        else:
            edge = x[:, :1] if shift > 0 else x[:, -1:]
            vacated = slice(0, shift) if shift > 0 else slice(len(x[0]) + shift, None)
            expected = rolled.copy()
            expected[:, vacated] = 0 if mode == "zero" else edge
            assert np.array_equal(out, expected)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(3, 400), warp=st.floats(0.0, 0.249), knots=st.integers(1, 1),
       seed=st.integers(0, 2**32 - 1))
def test_time_warp_positions_are_monotone_and_keep_the_ends(n, warp, knots, seed):
    positions = warp_positions(n, np.random.default_rng(seed), warp, knots)
    assert positions[0] == 0 and positions[-1] == n - 1
    assert np.all(np.diff(positions) >= -1e-9)


def test_integer_volumes_keep_their_dtype():
    ct = make("volume").replace(data=np.rint(make("volume").data).astype(np.int16))
    for t in (T.IntensityShift(30.5), T.RandomAffine(10), T.ElasticDeform(2.0, 4)):
        out = t(ct, rng_of(2))
        assert out.dtype == np.int16


def test_color_jitter_brightness_is_a_scale_and_grey_images_work():
    image = make("image")
    out = T.ColorJitter(0.5, 0, 0)(image, rng_of())
    ratio = out.data / image.data
    assert np.allclose(ratio, ratio.flat[0], rtol=1e-5) and ratio.flat[0] != 1
    grey = image.replace(data=image.data[:1])
    assert T.ColorJitter(0.2, 0.2, 0.2)(grey, rng_of()).shape == grey.shape
    clipped = T.ColorJitter(1.0, 1.0, 1.0, clip=(0, 1))(image, rng_of(4))
    assert clipped.data.min() >= 0 and clipped.data.max() <= 1


# -- combinators ---------------------------------------------------------------------
def test_compose_applies_in_order_with_one_rng():
    a, b = T.TimeShift(0.2), T.Gain(6)
    signal = make("waveform")
    rng1, rng2 = rng_of(9), rng_of(9)
    composed = T.Compose([a, b])(signal, rng1)
    by_hand = b(a(signal, rng2), rng2)
    assert np.array_equal(composed.data, by_hand.data)
    assert T.Compose([T.Flip(), T.ColorJitter()]).kinds == ("image", "video")
    assert T.OneOf([T.Flip(), T.ElasticDeform()]).kinds == ("image", "volume")


def test_random_apply_and_one_of():
    signal = make("waveform")
    applied = [not np.array_equal(T.RandomApply(T.Gain(6), p=0.5)(signal, rng_of(s)).data,
                                  signal.data) for s in range(40)]
    assert 8 < sum(applied) < 32
    one = T.OneOf([T.Gain((6, 6)), T.Gain((-6, -6))], weights=[1, 0])
    assert np.allclose(one(signal, rng_of()).data, signal.data * 10 ** (6 / 20), rtol=1e-6)


def test_repr_shows_parameters():
    assert repr(T.Gain(3)) == "Gain(db=(-3.0, 3.0), p=1.0)"
    assert repr(T.Flip("axial")) == "Flip(axes=('height', 'width'), p=0.5)"
    assert "TimeShift(max_shift=0.1, mode='zero', p=1.0)" in repr(T.Compose([T.TimeShift()]))
    assert repr(T.BackgroundMix([np.ones(5)] * 3)) == \
        "BackgroundMix(clips='<3 clips>', snr_db=(5.0, 20.0), p=1.0)"


# -- seeding and batches -----------------------------------------------------------------
def test_item_rng_is_a_pure_function_of_seed_epoch_item():
    draws = {(s, e, i): T.item_rng(s, e, i).random(4).tolist()
             for s in (0, 1) for e in (0, 1, 2) for i in (0, 1, 7)}
    assert len({tuple(v) for v in draws.values()}) == len(draws)
    assert T.item_rng(1, 2, 7).random(4).tolist() == draws[(1, 2, 7)]
    ref = np.random.default_rng([3, 4, 5, T.SEED_TAG]).random(3)
    assert np.array_equal(T.item_rng(3, 4, 5).random(3), ref)


def test_augment_batch_dense_and_ragged():
    t = T.Compose([T.TimeShift(0.2), T.Gain(6)])
    batch = np.stack([make("waveform", seed=s).data for s in range(3)])
    items = [10, 11, 12]
    out = T.augment_batch(t, batch, kind="waveform", seed=1, epoch=2, items=items,
                          sample_rate=8000.0)
    assert isinstance(out, np.ndarray) and out.shape == batch.shape and out.dtype == batch.dtype
    for i, item in enumerate(items):
        alone = t(Signal(batch[i], "waveform", sample_rate=8000.0), T.item_rng(1, 2, item))
        assert np.array_equal(out[i], alone.data)
    again = T.augment_batch(t, batch, kind="waveform", seed=1, epoch=2, items=items)
    assert np.array_equal(out, again)
    other_epoch = T.augment_batch(t, batch, kind="waveform", seed=1, epoch=3, items=items)
    assert not np.array_equal(out, other_epoch)
    # sizes change: a dense batch gives a Ragged
    speed = T.augment_batch(T.Speed((0.8, 1.2)), batch, kind="waveform", seed=0, epoch=0,
                            items=items, sample_rate=8000.0)
    assert isinstance(speed, Ragged) and len(speed) == 3 and len(set(speed.shapes[:, 0])) == 3
    # a Ragged batch stays Ragged, and metadata reach every item
    ragged = Ragged.from_list([make("volume", targets=1, seed=s).data[:, :8 + s] for s in range(3)])
    out = T.augment_batch(T.Compose([T.Flip("width", p=1), T.IntensityShift(50)]), ragged,
                          kind="volume", seed=0, epoch=0, items=[0, 1, 2], target_channels=1,
                          spacing=(1, 1, 1))
    assert isinstance(out, Ragged) and np.array_equal(out.shapes, ragged.shapes)
    for a, b in zip(out, ragged):
        assert np.array_equal(a[1], b[1, :, :, ::-1])
    with pytest.raises(ArgumentError, match=r"items must give one index per batch item \(3\)"):
        T.augment_batch(t, batch, kind="waveform", seed=0, epoch=0, items=[1])
    with pytest.raises(ArgumentError, match=r"kind must be one of"):
        T.augment_batch(t, batch, kind="sound", seed=0, epoch=0, items=items)


# -- presets and descriptions -------------------------------------------------------------
@pytest.fixture(scope="module")
def real_items(shared_data):
    wave = io.load(shared_data / "fsdd" / "recordings" / "3_theo_7.wav")
    image = io.load(shared_data / "images" / "chelsea.png").resize(height=48, width=72)
    volume = io.load(shared_data / "volumes" / "stent.npz").crop(depth=(100, 132))
    volume = volume.resize(height=48, width=48)
    return {"waveform": wave, "spectrogram": io.spectrogram(wave),
            "skeleton": io.load(shared_data / "mocap" / "mocapbank.bvh").crop(time=(0, 120)),
            "image": image, "volume": volume, "video": make("video")}


@pytest.mark.parametrize("task", T.TASKS)
def test_every_preset_runs_on_a_real_item(task, real_items):
    for kind in io.KINDS:
        assert T.preset(task, kind, "none") is None
        for strength in ("light", "default", "strong"):
            t = T.preset(task, kind, strength)
            assert isinstance(t, T.Compose) and kind in t.kinds, (task, kind, strength)
            signal = real_items[kind]
            if task == "label" and kind != "skeleton":
                labels = (signal.data[:1] > np.median(signal.data[:1])).astype(signal.dtype)
                signal = signal.replace(np.concatenate([signal.data, labels]),
                                        target_channels=1)
            out = t(signal, T.item_rng(0, 1, 2))
            assert out.kind == kind and out.dtype == signal.dtype
            assert out.shape[0] == signal.shape[0]
            if task == "label" and kind != "skeleton":
                assert set(np.unique(out.data[-1])) <= {0.0, 1.0}
            description = T.describe(t)
            assert json.loads(json.dumps(description)) == description
            assert [d["class"] for d in description["transforms"]] == \
                [name for name, _ in T.PRESETS[task][kind][strength]]


def test_describe_nests_and_is_json():
    t = T.Compose([T.OneOf([T.Gain(3), T.AddNoise()], weights=[2, 1]),
                   T.RandomApply(T.BackgroundMix([np.ones(4)]), p=0.3), T.Identity()])
    d = T.describe(t)
    assert json.loads(json.dumps(d)) == d
    assert d["transforms"][0] == {"class": "OneOf", "transforms": [
        {"class": "Gain", "db": [-3.0, 3.0], "p": 1.0},
        {"class": "AddNoise", "snr_db": [10.0, 40.0], "p": 1.0}], "weights": [2.0, 1.0],
        "p": 1.0}
    assert d["transforms"][1] == {"class": "RandomApply", "transform": {
        "class": "BackgroundMix", "clips": "<1 clip>", "snr_db": [5.0, 20.0], "p": 1.0}, "p": 0.3}
    assert d["transforms"][2] == {"class": "Identity"}
