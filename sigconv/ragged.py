"""Batches of differently sized items, and the per-item tables the kernels read.

Chapter 9.7: a convolution applies its kernel a different number of times
for each input size.  The kernels of sigconv therefore read a batch through
a table with one row per item, ``(offset, D, H, W)``: where the item's
``(C, D, H, W)`` block starts in a flat buffer and its spatial shape (1-D
and 2-D items are 3-D items with length-1 leading axes).  A dense batch is
the case where every row has the same shape; a :class:`Ragged` batch stores
its items back to back and hands the kernels its own table.

:class:`Batch` is that description, built from either kind: the one way
convolution, pooling, batch normalisation and the autograd read a batch
(its flat buffer, item table, per-channel planes and sums) and give the
caller back the kind of batch it passed.
"""
from __future__ import annotations

import itertools
import math
import numbers
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

from ._validation import INDEX_MAX, as_float_array, check_int, result_dtype
from .errors import ArgumentError, ShapeError

__all__ = ["Ragged", "Batch", "lift3", "item_table", "map_items", "map_grad_input", "sum_over_items"]


def lift3(values: Iterable[Any], fill: Any) -> tuple[Any, ...]:
    """Per-axis values of 1-3 spatial axes as 3 values, prefixed with ``fill``."""
    given = tuple(values)
    return (fill,) * (3 - len(given)) + given


def item_table(channels: int, shapes: ArrayLike, offsets: ArrayLike | None = None) -> NDArray[np.int64]:
    """The kernels' ``(N, 4)`` table: element offset and ``(D, H, W)`` of each item.

    Parameters
    ----------
    channels : int
    shapes : array_like of int, shape (N, nd)
        Spatial shape of each item, 1 <= nd <= 3.
    offsets : array_like of int, shape (N,), optional
        Element offset of each item; by default items follow each other.

    Returns
    -------
    ndarray of int64, shape (N, 4)
    """
    sizes_of = np.asarray(shapes, dtype=np.int64)
    table = np.ones((len(sizes_of), 4), dtype=np.int64)
    if len(sizes_of) == 0:
        return table
    table[:, 4 - sizes_of.shape[1]:] = sizes_of
    if offsets is None:
        sizes = channels * np.prod(sizes_of, axis=1)
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    table[:, 0] = offsets
    return table


def _frozen(array: NDArray[Any]) -> NDArray[Any]:
    array.flags.writeable = False
    return array


class Ragged:
    """A batch of ``N`` items ``(C, *spatial_i)``: same channels and rank, any sizes.

    The items are stored back to back in one flat buffer (``data``) with
    their spatial shapes (``shapes``).  ``len``, indexing and iteration give
    the items as ``(C, *spatial_i)`` views.

    Parameters
    ----------
    data : ndarray, shape (total,)
        The items' elements, item after item, each C-contiguous.
    shapes : array_like of int, shape (N, nd)
        Spatial shape of each item, 1 <= nd <= 3, every size >= 1.
    channels : int
    """

    __slots__ = ("_data", "_shapes", "_offsets", "_channels")

    def __init__(self, data: ArrayLike, shapes: ArrayLike, channels: int) -> None:
        shapes = np.asarray(shapes)
        if shapes.ndim != 2 or not 1 <= shapes.shape[1] <= 3 or shapes.dtype.kind not in "iu":
            raise ShapeError(f"shapes must be an (N, nd) integer array with 1 <= nd <= 3, "
                             f"got {shapes.dtype} array of shape {shapes.shape}")
        rows = shapes.tolist()  # Python ints: no wrap-around of uint64 or of products
        if any(v < 1 or v > INDEX_MAX for row in rows for v in row):
            raise ShapeError(f"every spatial size in shapes must be >= 1 (and at most 2**60), "
                             f"got shapes {rows}")
        channels = check_int(channels, "channels")
        data = np.asarray(data)
        if data.ndim != 1:
            raise ShapeError(f"data must be a flat array, got shape {data.shape}")
        sizes = [channels * math.prod(row) for row in rows]
        total = sum(sizes)
        if total > INDEX_MAX or data.size != total:
            raise ShapeError(f"data holds {data.size} elements but {channels} channels of "
                             f"shapes {rows} need {total}")
        self._data = data
        self._shapes = _frozen(np.array(rows, dtype=np.int64).reshape(shapes.shape))
        self._channels = channels
        self._offsets = _frozen(np.array([0] + list(itertools.accumulate(sizes))[:-1],
                                         dtype=np.int64))

    @property
    def data(self) -> NDArray[Any]:
        """The items' elements, item after item (values may be written; the
        array cannot be replaced, so its size always matches ``shapes``)."""
        return self._data

    @property
    def shapes(self) -> NDArray[np.int64]:
        """``(N, nd)`` int64 spatial shapes, read-only."""
        return self._shapes

    @property
    def offsets(self) -> NDArray[np.int64]:
        """``(N,)`` int64 element offset of each item in ``data``, read-only."""
        return self._offsets

    @property
    def channels(self) -> int:
        """Number of channels of every item."""
        return self._channels

    @classmethod
    def from_list(cls, items: Iterable[Any], *, dtype: DTypeLike | None = None) -> Ragged:
        """A ragged batch of arrays ``(C, *spatial_i)`` (or objects with ``.data``, like Signals).

        The float dtype follows sigconv's dtype rule unless ``dtype`` is given.
        """
        arrays = [np.asarray(getattr(item, "data", item)) for item in items]
        if not arrays:
            raise ShapeError("a Ragged batch needs at least one item")
        ranks = {a.ndim for a in arrays}
        channels = {a.shape[0] if a.ndim else None for a in arrays}
        if len(ranks) != 1 or not 2 <= arrays[0].ndim <= 4:
            raise ShapeError("items must all be (C, *spatial) arrays with 1 to 3 spatial axes, "
                             f"got shapes {[a.shape for a in arrays]}")
        if len(channels) != 1:
            raise ShapeError(f"items must have the same number of channels, "
                             f"got shapes {[a.shape for a in arrays]}")
        if dtype is None:
            dtype = result_dtype(**{f"item {i}": a for i, a in enumerate(arrays)})
        data = np.concatenate([as_float_array(a, dtype, f"item {i}").reshape(-1)
                               for i, a in enumerate(arrays)])
        return cls(data, [a.shape[1:] for a in arrays], arrays[0].shape[0])

    @classmethod
    def from_padded(cls, array: ArrayLike, shapes: ArrayLike) -> Ragged:
        """Items ``array[i, :, :shape_0, :shape_1, ...]`` of a padded ``(N, C, *spatial)`` array."""
        array = np.asarray(array)
        shapes = np.asarray(shapes, dtype=np.int64)
        if array.ndim < 3 or shapes.shape != (array.shape[0], array.ndim - 2):
            raise ShapeError(f"shapes must be (N, nd) = ({array.shape[0]}, {array.ndim - 2}) "
                             f"for an array of shape {array.shape}, got {shapes.shape}")
        if (shapes > np.array(array.shape[2:])).any():
            raise ShapeError(f"item shapes {shapes.tolist()} exceed the padded shape {array.shape[2:]}")
        return cls.from_list([array[(i, slice(None)) + tuple(slice(0, n) for n in shape)]
                              for i, shape in enumerate(shapes)], dtype=None)

    def to_padded(self, value: float = 0.0) -> tuple[NDArray[Any], NDArray[np.bool_]]:
        """A dense ``(N, C, *max_spatial)`` array padded with ``value`` after each item, and its mask.

        Returns
        -------
        array : ndarray, shape (N, C, *max_spatial)
        mask : ndarray of bool, shape (N, *max_spatial)
            True at the item's own positions.
        """
        largest = tuple(self.shapes.max(axis=0))
        array = np.full((len(self), self.channels) + largest, value, dtype=self.dtype)
        mask = np.zeros((len(self),) + largest, dtype=bool)
        for i, item in enumerate(self):
            region = tuple(slice(0, n) for n in item.shape[1:])
            array[(i, slice(None)) + region] = item
            mask[(i,) + region] = True
        return array, mask

    @property
    def dtype(self) -> np.dtype[Any]:
        """The items' dtype."""
        return self.data.dtype

    @property
    def ndim(self) -> int:
        """Number of spatial axes."""
        return self.shapes.shape[1]

    def table(self) -> NDArray[np.int64]:
        """The kernels' ``(N, 4)`` item table of this batch."""
        return item_table(self.channels, self.shapes, self.offsets)

    def like(self, data: ArrayLike) -> Ragged:
        """A Ragged of the same item shapes holding ``data`` (a flat array of the same size).

        The result shares this batch's ``shapes`` and ``offsets`` arrays, which
        are read-only; only the size of ``data`` is checked.
        """
        data = np.asarray(data)
        if data.ndim != 1:
            raise ShapeError(f"data must be a flat array, got shape {data.shape}")
        if data.size != self.data.size:
            raise ShapeError(f"data holds {data.size} elements but {self.channels} channels of "
                             f"shapes {self.shapes.tolist()} need {self.data.size}")
        return self._trusted(data, self._shapes, self._channels, self._offsets)

    @classmethod
    def _trusted(cls, data: NDArray[Any], shapes: NDArray[np.int64], channels: int,
                 offsets: NDArray[np.int64]) -> Ragged:
        """A Ragged of parts already checked to fit, without checking again (made read-only)."""
        result = object.__new__(cls)
        result._data, result._channels = data, channels
        result._shapes, result._offsets = _frozen(shapes), _frozen(offsets)
        return result

    def __reduce__(self) -> tuple[Any, ...]:  # pickle and copy rebuild (and re-check) the batch
        return type(self), (self._data, self._shapes, self._channels)

    def __len__(self) -> int:
        return len(self.shapes)

    def __getitem__(self, index: int) -> NDArray[Any]:
        if not isinstance(index, (numbers.Integral, np.integer)):
            raise ArgumentError(f"Ragged items are indexed by an int, got {index!r}")
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"item {index} of a Ragged batch of {n} items")
        index = int(index) % n
        shape = (self.channels,) + tuple(int(v) for v in self.shapes[index])
        start = int(self.offsets[index])
        return self.data[start:start + int(np.prod(shape))].reshape(shape)

    def __iter__(self) -> Iterator[NDArray[Any]]:
        return (self[i] for i in range(len(self)))

    def __repr__(self) -> str:
        shown = ", ".join(str(tuple(int(v) for v in s)) for s in self.shapes[:4])
        more = ", ..." if len(self) > 4 else ""
        return (f"Ragged({len(self)} items, {self.channels} channels, {self.dtype}, "
                f"spatial shapes [{shown}{more}])")


class Batch:
    """A batch as the kernels read it: one flat buffer, its channels, each item's spatial shape.

    A dense ``(N, C, *spatial)`` array is the case where every item has the
    same shape; a :class:`Ragged` gives each item its own.  An op takes
    :meth:`of` its input, makes one kernel call on :attr:`flat` and
    :meth:`table`, and returns :meth:`result` of its output batch
    (:meth:`empty_like`): an array for an array, a Ragged for a Ragged.

    Parameters
    ----------
    flat : ndarray, shape (total,)
        The items' elements, item after item, each C-contiguous.
    channels : int
    shapes : ndarray of int64, shape (N, nd)
        Spatial shape of each item.
    dense_shape : tuple of int, optional
        ``(N, C, *spatial)`` of a dense batch; None for a Ragged one.
    offsets : ndarray of int64, shape (N,), optional
        Element offset of each item; by default items follow each other.
    """

    __slots__ = ("flat", "channels", "shapes", "dense_shape", "_offsets")

    def __init__(self, flat: NDArray[Any], channels: int, shapes: ArrayLike,
                 dense_shape: Sequence[int] | None = None,
                 offsets: NDArray[np.int64] | None = None) -> None:
        self.flat = flat
        self.channels = int(channels)
        self.shapes = np.asarray(shapes, dtype=np.int64)
        self.dense_shape = None if dense_shape is None else tuple(dense_shape)
        self._offsets = offsets

    @classmethod
    def of(cls, x: ArrayLike | Ragged, dtype: DTypeLike | None = None, name: str = "x") -> Batch:
        """The batch ``x``, a Ragged or an ``(N, C, *spatial)`` array (flattened, a view if contiguous).

        With ``dtype``, the elements are converted to that float dtype
        (:func:`sigconv._validation.as_float_array`, errors naming ``name``).
        """
        if isinstance(x, Ragged):
            data = x.data if dtype is None else as_float_array(x.data, dtype, name)
            return cls(data, x.channels, x.shapes, None, x.offsets)
        array = np.asarray(x) if dtype is None else as_float_array(x, dtype, name)
        return cls(array.reshape(-1), array.shape[1], np.tile(np.array(array.shape[2:], np.int64),
                                                              (array.shape[0], 1)), array.shape)

    @classmethod
    def layout(cls, x: Ragged | Sequence[int], dtype: DTypeLike = np.float64) -> Batch:
        """An uninitialised batch laid out like ``x``: a Ragged, or a shape ``(N, C, *spatial)``."""
        if isinstance(x, Ragged):
            return cls(np.empty(x.data.size, dtype), x.channels, x.shapes, None, x.offsets)
        return cls.of(np.empty(x, dtype))

    def empty_like(self, shapes: ArrayLike | None = None, channels: int | None = None,
                   dtype: DTypeLike | None = None) -> Batch:
        """An uninitialised batch of the same kind and number of items.

        ``shapes`` are the new spatial shapes, ``(N, nd)`` or one row for
        every item (a dense batch takes one shape for all); by default the
        same as this batch's, as are ``channels`` and ``dtype``.
        """
        sizes = self.shapes if shapes is None else np.asarray(shapes, dtype=np.int64)
        count = self.channels if channels is None else int(channels)
        dtype = self.dtype if dtype is None else dtype
        n = len(self.shapes)
        if self.dense_shape is not None:
            shape = (n, count) + tuple(sizes[0].tolist() if len(sizes) else self.dense_shape[2:])
            return Batch.of(np.empty(shape, dtype))
        sizes = np.broadcast_to(sizes, (n, sizes.shape[-1]))
        return Batch(np.empty(count * int(np.prod(sizes, axis=1).sum()), dtype), count, sizes)

    def with_flat(self, flat: NDArray[Any]) -> Batch:
        """This layout holding another flat buffer of the same size (say, in another dtype)."""
        return Batch(flat, self.channels, self.shapes, self.dense_shape, self._offsets)

    @property
    def ragged(self) -> bool:
        """Whether the items may differ in shape (a Ragged batch)."""
        return self.dense_shape is None

    @property
    def dtype(self) -> np.dtype[Any]:
        """The flat buffer's dtype."""
        return self.flat.dtype

    @property
    def ndim(self) -> int:
        """Number of spatial axes."""
        return int(self.shapes.shape[1])

    def __len__(self) -> int:
        return len(self.shapes)

    @property
    def positions(self) -> NDArray[np.int64]:
        """``(N,)`` int64: the spatial positions of each item."""
        return np.prod(self.shapes, axis=1)

    @property
    def offsets(self) -> NDArray[np.int64]:
        """``(N,)`` int64: where each item starts in :attr:`flat`."""
        if self._offsets is None:
            sizes = self.channels * self.positions
            self._offsets = np.concatenate([[0], np.cumsum(sizes[:-1])]).astype(np.int64) \
                if len(sizes) else np.zeros(0, np.int64)
        return self._offsets

    def table(self) -> NDArray[np.int64]:
        """The kernels' ``(N, 4)`` item table: element offset and ``(D, H, W)`` of each item."""
        if self.dense_shape is not None:  # computed directly: every row alike
            table = np.empty((len(self), 4), dtype=np.int64)
            table[:, 0] = np.arange(len(self)) * math.prod(self.dense_shape[1:])
            table[:, 1:] = lift3(self.dense_shape[2:], 1)
            return table
        return item_table(self.channels, self.shapes, self.offsets)

    def rows(self) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """Start and length of every row (one channel of one item) in :attr:`flat`.

        Item-major, as the buffer: ``(N * C,)`` arrays, row ``i * C + c``.
        """
        positions = self.positions
        starts = self.offsets[:, None] + np.arange(self.channels) * positions[:, None]
        return starts.reshape(-1), np.repeat(positions, self.channels)

    def planes(self, flat: NDArray[Any] | None = None) -> list[NDArray[Any]]:
        """``(C, P_i)`` views of every item of :attr:`flat` (or of ``flat``, laid out alike)."""
        flat = self.flat if flat is None else flat
        c = self.channels
        return [flat[o:o + c * p].reshape(c, p)
                for o, p in zip(self.offsets.tolist(), self.positions.tolist())]

    def channel_sums(self, flat: NDArray[Any] | None = None) -> NDArray[np.float64]:
        """Sum per channel over every item and position of :attr:`flat` (or ``flat``): ``(C,)``.

        Each row (one channel of one item) is summed in the buffer's dtype,
        in one call over the flat buffer; a channel's rows are added in
        float64, the dtype of the result.
        """
        flat = self.flat if flat is None else flat
        if not len(self) or not flat.size:
            return np.zeros(self.channels)
        rows = np.add.reduceat(flat, self.rows()[0]).reshape(len(self), self.channels)
        return rows.sum(axis=0, dtype=np.float64)

    def spread(self, values: ArrayLike) -> NDArray[Any]:
        """Per-channel ``values`` ``(C,)`` repeated over every position: a flat buffer."""
        return np.repeat(np.tile(np.asarray(values), len(self)), self.rows()[1])

    def result(self, flat: NDArray[Any] | None = None) -> Any:
        """The batch as the caller gave it: an ``(N, C, *spatial)`` array, or a Ragged."""
        flat = self.flat if flat is None else flat
        if self.dense_shape is not None:
            return flat.reshape(self.dense_shape)
        return Ragged._trusted(flat, self.shapes, self.channels, self.offsets)

    def same_layout(self, other: Batch) -> bool:
        """Whether ``other`` has the same kind, channels and item shapes."""
        return (self.ragged == other.ragged and self.channels == other.channels
                and np.array_equal(self.shapes, other.shapes)
                and (self.ragged or self.dense_shape == other.dense_shape))

    def describe(self) -> str:
        """The batch's layout, as errors quote it."""
        if self.ragged:
            return (f"Ragged of {self.channels} channels and item shapes "
                    f"{[tuple(s) for s in self.shapes.tolist()]}")
        return f"shape {self.dense_shape}"

    def __repr__(self) -> str:
        return f"Batch({self.describe()}, {self.dtype})"


# -- item by item: for ops whose algorithm sizes its work per item (FFT lengths,
#    separable passes, tile phases), a Ragged batch runs one item at a time ----

def map_items(fn: Callable[..., Any], batch: Ragged, *args: Any, **kwargs: Any) -> Ragged:
    """``fn(item[None], *args, **kwargs)[0]`` for every item of ``batch``, as a Ragged."""
    return Ragged.from_list([fn(item[None], *args, **kwargs)[0] for item in batch])


def map_grad_input(fn: Callable[..., Any], grad_output: Ragged, weight: Any,
                   forward_input: Any, **kwargs: Any) -> Ragged:
    """An op's input gradient item by item: ``fn(g_i[None], weight, (1, *x_i.shape))``.

    ``forward_input`` is the forward's Ragged input; the result is laid out
    like it.
    """
    _check_pair(grad_output, forward_input, "grad_output", "the forward input")
    pieces = [fn(g[None], weight, (1,) + item.shape, **kwargs)[0].reshape(-1)
              for g, item in zip(grad_output, forward_input)]
    return forward_input.like(np.concatenate(pieces))


def sum_over_items(fn: Callable[..., Any], batch: Ragged, grad_output: Any, *args: Any,
                   **kwargs: Any) -> Any:
    """An op's parameter gradient: the sum over items of ``fn(x_i[None], g_i[None], ...)``.

    ``fn`` may return an array or a list of arrays (one per parameter).
    """
    _check_pair(grad_output, batch, "grad_output", "x")
    total: Any = None
    for item, g in zip(batch, grad_output):
        part = fn(item[None], g[None], *args, **kwargs)
        if total is None:
            total = [np.array(p, copy=True) for p in part] if isinstance(part, list) else part.copy()
        elif isinstance(part, list):
            for acc, p in zip(total, part):
                acc += p
        else:
            total += part
    return total


def _check_pair(a: object, b: object, a_name: str, b_name: str) -> None:
    if not isinstance(a, Ragged) or not isinstance(b, Ragged) or len(a) != len(b):
        raise ShapeError(f"{a_name} and {b_name} must be Ragged batches of the same number of "
                         f"items, got {a!r} and {b!r}")
