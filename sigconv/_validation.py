"""Validation helpers shared by every public op: one helper per concept.

The public wrappers call these once at the boundary; the kernels may then
assume valid, contiguous arrays of a native float dtype.
"""
from __future__ import annotations

import math
import numbers
import os
from collections.abc import Iterable
from typing import Any, TypeGuard, TypeVar

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

from .errors import ArgumentError, DTypeError, ShapeError

#: dtypes the kernels compute in natively.
NATIVE_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))

#: Largest int option (stride, padding, dilation, kernel and output sizes,
#: groups, channels) and largest element count: the kernels compute offsets
#: and window positions in int64, and sums of a few such values stay below
#: 2**63.
INDEX_MAX = 2**60


def _is_int(value: object) -> TypeGuard[int | np.integer[Any]]:
    return isinstance(value, (numbers.Integral, np.integer)) and not isinstance(value, (bool, np.bool_))


def as_tuple(value: Any, n: int, name: str, *, minimum: int | None = None,
             maximum: int | None = INDEX_MAX) -> tuple[int, ...]:
    """Expand an int (or a length-``n`` sequence of ints) to a tuple of ``n`` ints.

    Raises :class:`ArgumentError` naming ``name`` when the value is not an
    integer, has the wrong length, or is below ``minimum`` or above
    ``maximum`` (:data:`INDEX_MAX` by default).
    """
    if _is_int(value):
        values = (int(value),) * n
    else:
        try:
            values = tuple(value)
        except TypeError:
            raise ArgumentError(
                f"{name} must be an int or a sequence of {n} ints, got {value!r}"
            ) from None
        if len(values) != n:
            raise ArgumentError(
                f"{name} must have one value per spatial axis ({n}), got {value!r}"
            )
        if not all(_is_int(v) for v in values):
            raise ArgumentError(f"{name} must hold ints, got {value!r}")
        values = tuple(int(v) for v in values)
    if minimum is not None and any(v < minimum for v in values):
        raise ArgumentError(f"{name} must be >= {minimum} on every axis, got {value!r}")
    if maximum is not None and any(v > maximum for v in values):
        raise ArgumentError(f"{name} must be at most {_limit_text(maximum)} on every axis, "
                            f"got {value!r}")
    return values


def _limit_text(maximum: int) -> str:
    return "2**60" if maximum == INDEX_MAX else str(maximum)


def check_int(value: object, name: str, *, minimum: int = 1, maximum: int = INDEX_MAX) -> int:
    """A single int option (``groups``, ``pieces``, ``channels``) as an int, within its range.

    Raises :class:`ArgumentError` naming ``name`` for a bool, a float, a
    string or any other non-integer, and for values out of range.
    """
    wanted = "a positive int" if minimum == 1 else f"an int >= {minimum}"
    if not _is_int(value) or value < minimum or value > maximum:
        raise ArgumentError(f"{name} must be {wanted} (at most {_limit_text(maximum)}), "
                            f"got {value!r}")
    return int(value)


def check_flag(value: object, name: str) -> bool:
    """``value`` as a bool; only ``True``, ``False`` (or numpy bools) are accepted.

    Strings such as ``"no"``, ints and ``None`` raise :class:`ArgumentError`
    instead of being read by their truth value.
    """
    if not isinstance(value, (bool, np.bool_)):
        raise ArgumentError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def _is_finite_real(value: object) -> TypeGuard[numbers.Real | np.floating[Any] | np.integer[Any]]:
    """Whether ``value`` is a finite real number (bools, strings and complex are not)."""
    return (isinstance(value, (numbers.Real, np.floating, np.integer))
            and not isinstance(value, (bool, np.bool_)) and math.isfinite(float(value)))


def check_positive_real(value: object, name: str, what: str = "") -> float:
    """A finite real number > 0 (``p``, ``sigma``) as a float; bools, strings and complex raise."""
    if not _is_finite_real(value) or float(value) <= 0:
        raise ArgumentError(f"{name} must be a finite number > 0{what}, got {value!r}")
    return float(value)


def check_real(value: object, name: str, *, minimum: float | None = None,
               maximum: float | None = None, open_minimum: bool = False) -> float:
    """A finite real number within ``[minimum, maximum]`` as a float (bools and strings raise)."""
    if not _is_finite_real(value):
        raise ArgumentError(f"{name} must be a finite number, got {value!r}")
    value = float(value)
    if minimum is not None and (value < minimum or (open_minimum and value == minimum)):
        sign = ">" if open_minimum else ">="
        raise ArgumentError(f"{name} must be {sign} {minimum:g}, got {value!r}")
    if maximum is not None and value > maximum:
        raise ArgumentError(f"{name} must be <= {maximum:g}, got {value!r}")
    return value


def memory_limit() -> int:
    """Bytes one array may take: the machine's physical memory, or the process's address-space limit.

    Arrays larger than this cannot be allocated (or would only swap), so the
    ops refuse them before allocating (:func:`check_size`).
    """
    limit = INDEX_MAX
    try:
        limit = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        pass
    try:
        import resource
        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
        if soft != resource.RLIM_INFINITY and soft > 0:
            limit = min(limit, soft)
    except (ImportError, ValueError, OSError):
        pass
    return limit


def _bytes_text(n: int) -> str:
    for unit, size in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} bytes"


def check_size(shape: Iterable[int], dtype: DTypeLike, what: str, options: str) -> int:
    """Raise :class:`ShapeError` unless an array of ``shape`` and ``dtype`` can exist.

    The element count is computed with Python ints (no int64 wrap-around)
    and compared with :data:`INDEX_MAX` and :func:`memory_limit`, before
    anything is allocated.  ``what`` names the array (``"the output"``);
    ``options`` names the arguments that decide its size, for the message.
    Returns the element count.
    """
    shape = tuple(int(v) for v in shape)
    count = math.prod(shape)
    nbytes = count * np.dtype(dtype).itemsize
    limit = memory_limit()
    if count > INDEX_MAX or nbytes > limit:
        raise ShapeError(
            f"{what} would have shape {shape}: {count} elements ({_bytes_text(nbytes)}), more "
            f"than the {_bytes_text(limit)} of memory this process can allocate; check {options}")
    return count


_Value = TypeVar("_Value")


def check_choice(value: _Value, name: str, choices: Iterable[str]) -> _Value:
    """Raise :class:`ArgumentError` listing every accepted value unless ``value`` is one."""
    if not isinstance(value, str) or value not in choices:
        listed = ", ".join(repr(c) for c in choices)
        raise ArgumentError(f"{name} must be one of {listed}; got {value!r}")
    return value


def _float_dtype_of(dtype: np.dtype[Any], name: str) -> np.dtype[Any] | None:
    """The dtype an array of ``dtype`` is computed in, or None for bool/int (undecided).

    Byte order is a memory layout, not a dtype: big-endian floats (common in
    NIfTI and Analyze files) are computed like native ones.
    """
    if dtype.kind in "fiub" and dtype.byteorder not in ("=", "|"):
        dtype = dtype.newbyteorder("=")
    if dtype in NATIVE_DTYPES:
        return dtype
    if dtype == np.float16:
        return np.dtype(np.float32)
    if dtype.kind in "biu":
        return None
    raise DTypeError(
        f"{name} has dtype {dtype}; sigconv computes in float32 or float64 "
        "(bool, integer and float16 arrays are converted; complex, object and "
        "other dtypes are not supported)"
    )


def result_dtype(**arrays: object) -> np.dtype[Any]:
    """The one dtype rule of sigconv, applied to named arrays (``None`` entries are skipped).

    float32 and float64 are computed natively; float16 is computed in float32;
    bool and integer arrays take the float dtype of the other operands, or
    float64 when no operand is floating.  Two floating operands of different
    precision raise :class:`DTypeError` (cast one of them explicitly).
    """
    given, chosen = {}, {}
    for name, array in arrays.items():
        if array is None:
            continue
        given[name] = np.dtype(array.dtype if hasattr(array, "dtype") else np.asarray(array).dtype)
        dtype = _float_dtype_of(given[name], name)
        if dtype is not None:
            chosen[name] = dtype
    kinds = set(chosen.values())
    if len(kinds) > 1:
        described = " but ".join(f"{name} is {given[name]}" for name in chosen)
        raise DTypeError(
            f"dtypes do not match: {described}; cast them to one float dtype "
            "(for example with .astype(np.float32))"
        )
    return kinds.pop() if kinds else np.dtype(np.float64)


def as_float_array(array: object, dtype: DTypeLike, name: str) -> NDArray[Any]:
    """``array`` as a C-contiguous array of ``dtype`` (a copy only when needed)."""
    try:
        result = np.ascontiguousarray(array, dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise DTypeError(f"{name} cannot be converted to {dtype}: {exc}") from None
    return result


def check_batch(x: ArrayLike, name: str = "x", *, min_spatial: int = 1, max_spatial: int = 3) -> int:
    """Check ``x`` is ``(N, C, *spatial)`` with 1-3 spatial axes; return the spatial rank."""
    ndim = np.ndim(x)
    if ndim < 2 + min_spatial or ndim > 2 + max_spatial:
        raise ShapeError(
            f"{name} must have shape (N, C, *spatial) with {min_spatial} to {max_spatial} "
            f"spatial axes, got shape {np.shape(x)} ({ndim}-d)"
        )
    return ndim - 2


def check_spatial_nonempty(shape: tuple[int, ...], name: str = "x") -> None:
    """Raise :class:`ShapeError` if any spatial axis of ``shape`` has length 0."""
    if any(n == 0 for n in shape[2:]):
        raise ShapeError(f"{name} has a zero-length spatial axis: shape {tuple(shape)}")


def shape_argument(value: object, name: str) -> tuple[int, ...]:
    """A shape given as an argument (``input_shape=``, ``weight_shape=``) as a tuple of ints.

    Accepts a tuple, list or 1-D integer array of non-negative ints; raises
    :class:`ArgumentError` naming ``name`` otherwise.
    """
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if not isinstance(value, (tuple, list)) or not all(
            _is_int(v) and 0 <= v <= INDEX_MAX for v in value):
        raise ArgumentError(f"{name} must be a tuple of non-negative ints (at most 2**60), "
                            f"got {value!r}")
    return tuple(int(v) for v in value)
