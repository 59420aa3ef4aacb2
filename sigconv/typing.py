"""Type aliases used in sigconv's signatures, for annotating code that calls sigconv.

Like :mod:`numpy.typing`: every alias is an ordinary union that mypy and the
API reference read; nothing here is needed at run time.

==================  ==========================================================
alias               meaning
==================  ==========================================================
``IntOrTuple``      one int for every spatial axis, or one int per axis
``PaddingMode``     ``"valid"``, ``"same"`` or ``"full"``
``Padding``         a mode, an int, one int per axis or ``(lo, hi)`` per axis
``Shape``           a tuple of ints
``ConvMethod``      a convolution algorithm: ``"auto"``, ``"gemm"``, ``"direct"``, ``"fft"``, ``"separable"``
``TransposeMethod`` a transposed-convolution algorithm: ``"auto"``, ``"phase"``, ``"dilated"``
``PoolKind``        what a global or adaptive pool computes: ``"avg"``, ``"max"``, ``"lp"``
``SignalKind``      a :class:`~sigconv.io.Signal`'s kind: ``"waveform"``, ``"spectrogram"``, ``"skeleton"``, ``"image"``, ``"volume"``, ``"video"``
``PadMode``         a :func:`numpy.pad` mode (``"constant"``, ``"edge"``, ``"reflect"``, ...)
``FloatArray``      a float32 or float64 ndarray
``Seed``            what :func:`numpy.random.default_rng` takes
``PathLike``        a path: ``str`` or :class:`os.PathLike`
``BatchLike``       a dense array (anything :func:`numpy.asarray` takes) or a Ragged batch
``TensorLike``      a Tensor, or what a Tensor is made from (an array, a number, a Ragged)
==================  ==========================================================
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal, TypeAlias, Union

import numpy as np
from numpy.typing import ArrayLike, NDArray

if TYPE_CHECKING:
    from ._tape import Tensor
    from .ragged import Ragged

__all__ = ["IntOrTuple", "PaddingMode", "Padding", "Shape", "ConvMethod", "TransposeMethod",
           "PoolKind", "SignalKind", "PadMode",
           "FloatArray", "Seed", "PathLike", "BatchLike", "TensorLike"]

IntOrTuple: TypeAlias = Union[int, Sequence[int]]
PaddingMode: TypeAlias = Literal["valid", "same", "full"]
Padding: TypeAlias = Union[PaddingMode, int, Sequence[int], Sequence[tuple[int, int]]]
Shape: TypeAlias = tuple[int, ...]
ConvMethod: TypeAlias = Literal["auto", "gemm", "direct", "fft", "separable"]
TransposeMethod: TypeAlias = Literal["auto", "phase", "dilated"]
PoolKind: TypeAlias = Literal["avg", "max", "lp"]
SignalKind: TypeAlias = Literal["waveform", "spectrogram", "skeleton", "image", "volume", "video"]
PadMode: TypeAlias = Literal["constant", "edge", "linear_ramp", "maximum", "mean", "median",
                             "minimum", "reflect", "symmetric", "wrap", "empty"]
FloatArray: TypeAlias = NDArray[np.floating[Any]]
Seed: TypeAlias = Union[int, Sequence[int], np.random.SeedSequence, np.random.BitGenerator,
                        np.random.Generator, None]
PathLike: TypeAlias = Union[str, "os.PathLike[str]"]
BatchLike: TypeAlias = Union[ArrayLike, "Ragged"]
TensorLike: TypeAlias = Union["Tensor", ArrayLike, "Ragged"]
