"""Intensity transforms of volumes, images and video: HU shift and colour jitter.

Intensity transforms change the input channels only; target channels are
copied as they are.
"""
from __future__ import annotations
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ._core import Transform, check_range, check_real, on_inputs, uniform
from ..io.signal import Signal

__all__ = ["IntensityShift", "ColorJitter"]

#: ITU-R BT.601 luma weights (as torchvision's rgb_to_grayscale).
LUMA = (0.299, 0.587, 0.114)


class IntensityShift(Transform):
    """``x * a + b``: ``b`` uniform in ``shift`` (HU for CT), ``a`` uniform in ``scale``.

    ``shift`` is a pair or one number ``x`` for ``(-x, x)``; ``scale``
    defaults to ``(1, 1)`` (no scaling).  Models the calibration drift between
    scanners and reconstruction kernels.  Targets are untouched.
    """

    kinds = ("volume",)
    params = ("shift", "scale", "p")

    def __init__(self, shift: float | tuple[float, float] = (-20.0, 20.0), scale: tuple[float, float] = (1.0, 1.0),
                 p: float = 1.0) -> None:
        super().__init__(p)
        self.shift = check_range(shift, "IntensityShift shift", symmetric=True)
        self.scale = check_range(scale, "IntensityShift scale", minimum=0.0, maximum=10.0,
                                 open_minimum=True)

    def _apply(self, signal: Signal, rng: np.random.Generator) -> Signal:
        b = uniform(rng, self.shift)
        a = uniform(rng, self.scale)
        if a == 1.0 and b == 0.0:
            return signal
        return on_inputs(signal, lambda x: x * x.dtype.type(a) + x.dtype.type(b))


class ColorJitter(Transform):
    """Random brightness, contrast and saturation, in that order (torchvision's definitions).

    Factors are uniform in ``[1 - v, 1 + v]`` for ``brightness``, ``contrast``
    and ``saturation`` ``= v``: brightness multiplies, contrast blends with
    the mean grey level, saturation blends with the grey image (BT.601
    luma; needs 3 input channels, skipped on grey images).  A video uses one
    draw for all its frames.  Values are not clipped unless ``clip`` is a
    ``(low, high)`` pair (``(0, 1)`` for images as loaded).  Targets are untouched.
    """

    kinds = ("image", "video")
    params = ("brightness", "contrast", "saturation", "clip", "p")

    def __init__(self, brightness: float = 0.2, contrast: float = 0.2, saturation: float = 0.2,
                 clip: tuple[float, float] | None = None, p: float = 1.0) -> None:
        super().__init__(p)
        self.brightness = check_real(brightness, "ColorJitter brightness", minimum=0.0, maximum=1.0)
        self.contrast = check_real(contrast, "ColorJitter contrast", minimum=0.0, maximum=1.0)
        self.saturation = check_real(saturation, "ColorJitter saturation", minimum=0.0,
                                     maximum=1.0)
        self.clip = None if clip is None else check_range(clip, "ColorJitter clip")

    def _apply(self, signal: Signal, rng: np.random.Generator) -> Signal:
        factors = [uniform(rng, (1.0 - v, 1.0 + v))
                   for v in (self.brightness, self.contrast, self.saturation)]
        if factors == [1.0, 1.0, 1.0]:
            return signal
        b, c, s = factors

        def jitter(x: NDArray[Any]) -> NDArray[Any]:
            t = x.dtype.type
            x *= t(b)
            if c != 1.0:
                mean = t(_grey(x).mean(dtype=np.float64))
                x = (x - mean) * t(c) + mean
            if x.shape[0] == 3 and s != 1.0:
                grey = _grey(x)
                x = grey + (x - grey) * t(s)
            if self.clip is not None:
                x = np.clip(x, t(self.clip[0]), t(self.clip[1]))
            return x

        return on_inputs(signal, jitter)


def _grey(x: NDArray[Any]) -> NDArray[Any]:
    """``(1, ...)`` luma of an RGB ``x`` (3, ...), or the mean over channels otherwise."""
    if x.shape[0] == 3:
        w = np.asarray(LUMA, dtype=x.dtype).reshape((3,) + (1,) * (x.ndim - 1))
        return (x * w).sum(axis=0, keepdims=True)
    return x.mean(axis=0, keepdims=True)
