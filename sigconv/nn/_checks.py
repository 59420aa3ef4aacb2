"""Argument checks shared by the layers (one helper per concept)."""
from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import DTypeLike

from .._validation import check_int
from ..autograd import Tensor, as_tensor
from ..errors import ArgumentError, DTypeError, ShapeError
from ..typing import TensorLike

_AXES = {1: "(N, C, W)", 2: "(N, C, H, W)", 3: "(N, C, D, H, W)"}


def positive_int(value: object, name: str) -> int:
    """``value`` as an int >= 1, or :class:`ArgumentError` "``name`` must be a positive int"."""
    return check_int(value, name)


def spatial_ndim(ndim: Any) -> int:
    if ndim not in (1, 2, 3) or isinstance(ndim, bool):
        raise ArgumentError(f"ndim must be 1, 2 or 3 (spatial axes of the input), got {ndim!r}")
    return int(ndim)


def float_dtype(dtype: DTypeLike) -> np.dtype[Any]:
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise DTypeError(f"parameters are float32 or float64, got dtype {dtype}")
    return dtype


def layer_input(layer: object, x: TensorLike, ndim: int, channels: int) -> Tensor:
    """``x`` as a Tensor, checked to be ``(N, channels, *spatial)`` with ``ndim`` spatial axes."""
    x = as_tensor(x)
    if x.ndim != ndim + 2:
        raise ShapeError(f"{type(layer).__name__} with ndim={ndim} expects input {_AXES[ndim]}, "
                         f"got shape {x.shape}")
    if x.shape[1] != channels:
        raise ShapeError(f"{type(layer).__name__} expects {channels} input channels, got input "
                         f"of shape {x.shape} ({x.shape[1]} channels)")
    return x
