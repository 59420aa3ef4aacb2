"""Geometric transforms of images, volumes and video: flips, 90-degree turns, crops,
small affine maps and elastic deformation.

Orientation.  Flips and 90-degree turns reorder the array; they do not move
the content in the world.  A volume's ``affine`` (index -> RAS+ mm) is
updated so that every voxel's content keeps its world coordinates: if the
new array's index ``n`` holds what the old one held at index ``o = T n``
(``T`` a 4x4 integer map: flipping axis ``i`` of length ``N`` sends ``j`` to
``N - 1 - j``; a swap of two axes permutes them), the new affine is
``affine @ T``.  ``spacing`` is permuted with the axes.  The loaders of
:mod:`sigconv.io` give volumes as ``(depth, height, width)`` = (S, A, R), so
the axial plane is ``("height", "width")`` and a left-right flip is a flip
of ``"width"``.

Small affine maps and elastic deformations do move the content (that is
their purpose), so the affine and spacing are kept as they are.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from .._validation import check_choice, check_int
from ..errors import ArgumentError
from ._core import Transform, check_range, check_real, resample_channels, uniform
from ..io.signal import Signal

__all__ = ["Flip", "Rot90", "RandomCrop", "RandomAffine", "ElasticDeform", "SCIPY_MODES"]

#: Boundary modes of scipy.ndimage's interpolation (values outside the array).
SCIPY_MODES = ("nearest", "reflect", "mirror", "constant", "wrap")

_SPATIAL_NAMES = ("depth", "height", "width", "time")


def _check_axis_names(axes: str | Sequence[str], name: str,
                      allowed: Sequence[str] = _SPATIAL_NAMES) -> tuple[str, ...]:
    if isinstance(axes, str):
        axes = ("height", "width") if axes == "axial" else (axes,)
    try:
        axes = tuple(axes)
    except TypeError:
        raise ArgumentError(f"{name} must be an axis name or a tuple of names, got {axes!r}") \
            from None
    if not axes:
        raise ArgumentError(f"{name} must name at least one axis")
    for a in axes:
        check_choice(a, name, allowed)
    if len(set(axes)) != len(axes):
        raise ArgumentError(f"{name} names an axis twice: {axes!r}")
    return axes


def _indices(signal: Signal, axes: Sequence[str], who: str) -> list[int]:
    out = []
    for a in axes:
        if a not in signal.axes:
            raise ArgumentError(f"{who}: this {signal.kind} has axes {signal.axes}; no axis {a!r}")
        out.append(signal.axes.index(a))
    return out


class _Reorder:
    """Flips and axis swaps applied to a ``(C, *spatial)`` array, with the index map they make.

    ``T`` ((nd + 1) square, homogeneous) maps a new index to the old one.
    """

    def __init__(self, signal: Signal) -> None:
        self.data = signal.data
        self.nd = signal.data.ndim - 1
        self.T = np.eye(self.nd + 1)
        self.order = list(range(self.nd))  # which old spatial axis each new axis came from

    def flip(self, axis: int) -> None:  # axis: array axis (>= 1)
        k = axis - 1
        op = np.eye(self.nd + 1)
        op[k, k] = -1.0
        op[k, self.nd] = self.data.shape[axis] - 1
        self.T = self.T @ op
        self.data = np.flip(self.data, axis)

    def swap(self, a: int, b: int) -> None:
        op = np.eye(self.nd + 1)
        op[[a - 1, b - 1]] = op[[b - 1, a - 1]]
        self.T = self.T @ op
        self.order[a - 1], self.order[b - 1] = self.order[b - 1], self.order[a - 1]
        self.data = np.swapaxes(self.data, a, b)

    def rot90(self, a: int, b: int, k: int) -> None:
        """As ``np.rot90(data, k, axes=(a, b))``: each quarter turn flips ``b`` then swaps."""
        for _ in range(k % 4):
            self.flip(b)
            self.swap(a, b)

    def result(self, signal: Signal) -> Signal:
        changes: dict[str, Any] = {}
        if signal.spacing is not None and len(signal.spacing) == self.nd:
            changes["spacing"] = tuple(signal.spacing[i] for i in self.order)
        if signal.affine is not None and self.nd == 3:
            changes["affine"] = np.asarray(signal.affine, dtype=float) @ self.T
        return signal.replace(np.ascontiguousarray(self.data), **changes)


class Flip(Transform):
    """Flip each axis of ``axes`` independently with probability ``p`` (default 0.5).

    ``axes``: an axis name (``"width"``: horizontal flip), a tuple of names,
    or ``"axial"`` = ``("height", "width")``.  All channels, targets
    included, are flipped (exactly: no interpolation).  A volume's affine is
    updated so that each voxel's content keeps its world position (see the
    module's notes); the shape is kept.
    """

    kinds = ("image", "volume", "video")
    params = ("axes", "p")
    gated = False

    def __init__(self, axes: str | Sequence[str] = "width", p: float = 0.5) -> None:
        super().__init__(p)
        self.axes = _check_axis_names(axes, "Flip axes")

    def _apply(self, signal: Signal, rng: np.random.Generator) -> Signal:
        indices = _indices(signal, self.axes, "Flip")
        chosen = [i for i in indices if rng.random() < self.p]
        if not chosen:
            return signal
        reorder = _Reorder(signal)
        for i in chosen:
            reorder.flip(i)
        return reorder.result(signal)


class Rot90(Transform):
    """Turn ``plane`` by ``k`` quarter turns, ``k`` uniform in ``ks``, with probability ``p``.

    ``plane`` (default ``"axial"`` = ``("height", "width")``) is a pair of
    axis names; a quarter turn is ``np.rot90(data, 1, axes=plane)``.  The
    default ``ks=(1, 2, 3)`` with ``p=0.75`` makes the four orientations
    equally likely.  An odd ``k`` on a non-square plane swaps the two sizes
    (documented shape change).  ``spacing`` follows the axes and a volume's
    affine is updated (world positions kept).  Targets turn with the input.
    """

    kinds = ("image", "volume", "video")
    params = ("plane", "ks", "p")

    def __init__(self, plane: str | Sequence[str] = "axial", ks: Sequence[int] = (1, 2, 3),
                 p: float = 0.75) -> None:
        super().__init__(p)
        plane = _check_axis_names(plane, "Rot90 plane")
        if len(plane) != 2:
            raise ArgumentError(f"Rot90 plane must name two axes, got {plane!r}")
        self.plane = plane
        try:
            ks = tuple(ks)
        except TypeError:
            raise ArgumentError(f"Rot90 ks must be a tuple of quarter turns, got {ks!r}") from None
        if not ks:
            raise ArgumentError("Rot90 ks must hold at least one number of quarter turns")
        self.ks = tuple(check_int(k, "Rot90 ks", minimum=0, maximum=3) for k in ks)

    def _apply(self, signal: Signal, rng: np.random.Generator) -> Signal:
        a, b = _indices(signal, self.plane, "Rot90")
        k = self.ks[int(rng.integers(len(self.ks)))]
        if k == 0:
            return signal
        reorder = _Reorder(signal)
        reorder.rot90(a, b, k)
        return reorder.result(signal)


def _default_axes(signal: Signal) -> tuple[str, ...]:
    return tuple(a for a in signal.axes[1:] if a != "time")


class RandomCrop(Transform):
    """Pad by ``pad`` of each axis's length (``mode``, default reflect), then crop a random window.

    The window has the input's size (CIFAR-style translation: ``pad=0.125``
    is 4 pixels of 32), or ``size`` (an int or one int per axis of ``axes``,
    a documented shape change).  ``axes`` defaults to every spatial axis but
    time.  Targets are padded and cropped alike (reflected labels stay
    labels; ``mode="constant"`` gives them 0).  The affine origin follows
    the crop (:meth:`Signal.pad`, :meth:`Signal.crop`).
    """

    kinds = ("image", "volume", "video")
    params = ("size", "pad", "mode", "axes", "p")
    MODES = ("reflect", "symmetric", "edge", "constant", "wrap")

    def __init__(self, size: int | Sequence[int] | None = None, pad: float = 0.125,
                 mode: Literal["reflect", "symmetric", "edge", "constant", "wrap"] = "reflect",
                 axes: str | Sequence[str] | None = None, p: float = 1.0) -> None:
        super().__init__(p)
        self.pad = check_real(pad, "RandomCrop pad", minimum=0.0, maximum=1.0)
        check_choice(mode, "RandomCrop mode", self.MODES)
        self.mode = mode
        self.axes = None if axes is None else _check_axis_names(axes, "RandomCrop axes")
        if size is not None:
            if isinstance(size, (int, np.integer)):
                size = check_int(size, "RandomCrop size")
            else:
                try:
                    size = tuple(check_int(s, "RandomCrop size") for s in size)
                except TypeError:
                    raise ArgumentError(f"RandomCrop size must be an int or a tuple of ints, "
                                        f"got {size!r}") from None
        self.size = size

    def _apply(self, signal: Signal, rng: np.random.Generator) -> Signal:
        axes = self.axes or _default_axes(signal)
        indices = _indices(signal, axes, "RandomCrop")
        lengths = [signal.data.shape[i] for i in indices]
        if self.size is None:
            sizes = lengths
        elif isinstance(self.size, int):
            sizes = [self.size] * len(indices)
        else:
            sizes = list(self.size)
            if len(sizes) != len(indices):
                raise ArgumentError(f"RandomCrop size {self.size} needs one value per axis of "
                                    f"{axes}")
        pads = [int(round(self.pad * n)) for n in lengths]
        for a, n, p, s in zip(axes, lengths, pads, sizes):
            if s > n + 2 * p:
                raise ArgumentError(f"RandomCrop size {s} is larger than axis {a!r} ({n}) with its "
                                    f"padding ({p} each side)")
            if self.mode == "reflect" and p >= n:
                raise ArgumentError(f"RandomCrop: reflect padding of {p} needs axis {a!r} longer "
                                    f"than {p}, got {n}")
        starts = [int(rng.integers(0, n + 2 * p - s + 1)) for n, p, s in zip(lengths, pads, sizes)]
        if sizes == lengths and all(st == p for st, p in zip(starts, pads)):
            return signal
        padded = signal.pad(mode=self.mode, **{a: p for a, p in zip(axes, pads) if p}) \
            if any(pads) else signal
        return padded.crop(**{a: (st, st + s) for a, st, s in zip(axes, starts, sizes)})


def _plane_rotation(n: int, axes_idx: Sequence[int], angle: float) -> NDArray[np.float64]:
    """An n x n rotation by ``angle`` (radians) in the plane of spatial axes ``axes_idx``."""
    r = np.eye(n)
    i, j = axes_idx
    c, s = math.cos(angle), math.sin(angle)
    r[i, i], r[i, j], r[j, i], r[j, j] = c, -s, s, c
    return r


class RandomAffine(Transform):
    """A small random rotation, isotropic scaling and translation (scipy's affine_transform).

    - rotation by an angle uniform in ``[-degrees, degrees]`` in ``plane``
      (default ``("height", "width")``: the image plane, a volume's axial
      plane, every frame of a video alike), about the centre, in millimetres
      when ``spacing`` is known (so anisotropic voxels rotate correctly);
    - scaling by a factor uniform in ``scale``;
    - translation by up to ``translate`` of each axis's length (uniform).

    Input channels are interpolated linearly, target channels by nearest
    neighbour; outside the array ``mode`` (scipy's: nearest, reflect, mirror,
    constant (0), wrap).  The content moves, so affine and spacing are kept.
    """

    kinds = ("image", "volume", "video")
    params = ("degrees", "scale", "translate", "plane", "mode", "p")

    def __init__(self, degrees: float = 10.0, scale: tuple[float, float] = (0.9, 1.1),
                 translate: float = 0.05, plane: str | Sequence[str] = "axial",
                 mode: Literal["nearest", "reflect", "mirror", "constant", "wrap"] = "nearest",
                 p: float = 1.0) -> None:
        super().__init__(p)
        self.degrees = check_real(degrees, "RandomAffine degrees", minimum=0.0, maximum=180.0)
        self.scale = check_range(scale, "RandomAffine scale", minimum=0.0, maximum=10.0,
                                 open_minimum=True)
        self.translate = check_real(translate, "RandomAffine translate", minimum=0.0, maximum=1.0)
        plane = _check_axis_names(plane, "RandomAffine plane")
        if len(plane) != 2:
            raise ArgumentError(f"RandomAffine plane must name two axes, got {plane!r}")
        self.plane = plane
        self.mode = check_choice(mode, "RandomAffine mode", SCIPY_MODES)

    def _apply(self, signal: Signal, rng: np.random.Generator) -> Signal:
        from scipy import ndimage

        angle = math.radians(uniform(rng, (-self.degrees, self.degrees)))
        zoom = uniform(rng, self.scale)
        spatial = signal.data.shape[1:]
        nd = len(spatial)
        moves = rng.uniform(-self.translate, self.translate, size=nd) * np.array(spatial)
        plane = [i - 1 for i in _indices(signal, self.plane, "RandomAffine")]
        moving = [i for i, a in enumerate(signal.axes[1:]) if a != "time"]
        moves[[i for i in range(nd) if i not in moving]] = 0.0
        if angle == 0.0 and zoom == 1.0 and not moves.any():
            return signal
        spacing = np.ones(nd)
        if signal.spacing is not None and len(signal.spacing) == nd:
            spacing = np.asarray(signal.spacing, dtype=float)
        # forward, in mm: x_out = c + zoom R (x_in - c) + t; scipy wants i_in = M i_out + offset
        scale = np.ones(nd)
        scale[moving] = zoom
        rotation = _plane_rotation(nd, plane, angle)
        forward = np.diag(1.0 / spacing) @ rotation @ np.diag(spacing) @ np.diag(scale)
        matrix = np.linalg.inv(forward)
        centre = (np.array(spatial, dtype=float) - 1.0) / 2.0
        offset = centre - matrix @ (centre + moves)

        def mapped(array: NDArray[Any], order: int) -> NDArray[Any]:
            out = np.empty(array.shape, dtype=array.dtype)
            for c in range(array.shape[0]):
                ndimage.affine_transform(array[c], matrix, offset=offset, order=order,
                                         mode=self.mode, cval=0.0, output=out[c], prefilter=False)
            return out

        return resample_channels(signal, mapped)


def _bspline_weights(n: int, knots: int) -> NDArray[np.float64]:
    """``(n, knots)`` cubic B-spline weights spreading ``knots`` control values over ``n``."""
    u = np.linspace(0.0, knots - 1.0, n)[:, None] - np.arange(knots)[None, :]
    a = np.abs(u)
    w = np.where(a < 1, (4 - 6 * a ** 2 + 3 * a ** 3) / 6, np.where(a < 2, (2 - a) ** 3 / 6, 0.0))
    return w / w.sum(axis=1, keepdims=True)


class ElasticDeform(Transform):
    """A smooth random displacement field applied with ``scipy.ndimage.map_coordinates``.

    Each spatial axis gets a displacement uniform in
    ``[-max_displacement, max_displacement]`` (in samples: voxels or pixels)
    at a grid of ``control_points`` per axis, spread over the array by cubic
    B-splines (a smooth field with a few bumps, as in TorchIO's
    RandomElasticDeformation; the field is built by three small tensor
    products, so a 100^3 volume takes a fraction of a second).  Input
    channels are sampled linearly, target channels (label maps, masks) by
    nearest neighbour with the same field; ``mode`` as scipy's.  The content
    moves, so affine and spacing are kept.
    """

    kinds = ("image", "volume")
    params = ("max_displacement", "control_points", "mode", "p")

    def __init__(self, max_displacement: float = 3.0, control_points: int = 6,
                 mode: Literal["nearest", "reflect", "mirror", "constant", "wrap"] = "nearest",
                 p: float = 1.0) -> None:
        super().__init__(p)
        self.max_displacement = check_real(max_displacement, "ElasticDeform max_displacement",
                                           minimum=0.0, maximum=1000.0)
        self.control_points = check_int(control_points, "ElasticDeform control_points",
                                        minimum=2, maximum=64)
        self.mode = check_choice(mode, "ElasticDeform mode", SCIPY_MODES)

    def field(self, shape: Sequence[int], rng: np.random.Generator) -> NDArray[np.float32]:
        """``(nd, *shape)`` float32 displacements of one draw."""
        nd, k = len(shape), self.control_points
        coarse = rng.uniform(-self.max_displacement, self.max_displacement, size=(nd,) + (k,) * nd)
        weights = [_bspline_weights(n, k).astype(np.float32) for n in shape]
        out = coarse.astype(np.float32)
        for axis, w in enumerate(weights):  # contract control axis `axis + 1` with its weights
            out = np.moveaxis(np.tensordot(w, out, axes=([1], [axis + 1])), 0, axis + 1)
        return out

    def _apply(self, signal: Signal, rng: np.random.Generator) -> Signal:
        from scipy import ndimage

        if self.max_displacement == 0.0:
            return signal
        shape = signal.data.shape[1:]
        coords = self.field(shape, rng)
        coords += np.indices(shape, dtype=np.float32)

        def mapped(array: NDArray[Any], order: int) -> NDArray[Any]:
            out = np.empty(array.shape, dtype=array.dtype)
            for c in range(array.shape[0]):
                ndimage.map_coordinates(array[c], coords, output=out[c], order=order,
                                        mode=self.mode, prefilter=False)
            return out

        return resample_channels(signal, mapped)
