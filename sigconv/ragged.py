"""Batches of differently sized items, and the per-item tables the kernels read.

Chapter 9.7: a convolution applies its kernel a different number of times
for each input size.  The kernels of sigconv therefore read a batch through
a table with one row per item, ``(offset, D, H, W)``: where the item's
``(C, D, H, W)`` block starts in a flat buffer and its spatial shape (1-D
and 2-D items are 3-D items with length-1 leading axes).  A dense batch is
the case where every row has the same shape; a :class:`Ragged` batch stores
its items back to back and hands the kernels its own table.
"""
import itertools
import math
import numbers

import numpy as np

from ._validation import INDEX_MAX, as_float_array, check_int, result_dtype
from .errors import ArgumentError, ShapeError

__all__ = ["Ragged", "lift3", "item_table", "map_items", "map_grad_input", "sum_over_items"]


def lift3(values, fill):
    """Per-axis values of 1-3 spatial axes as 3 values, prefixed with ``fill``."""
    values = tuple(values)
    return (fill,) * (3 - len(values)) + values


def item_table(channels, shapes, offsets=None):
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
    shapes = np.asarray(shapes, dtype=np.int64)
    table = np.ones((len(shapes), 4), dtype=np.int64)
    if len(shapes) == 0:
        return table
    table[:, 4 - shapes.shape[1]:] = shapes
    if offsets is None:
        sizes = channels * np.prod(shapes, axis=1)
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    table[:, 0] = offsets
    return table


def _frozen(array):
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

    def __init__(self, data, shapes, channels):
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

    #: The items' elements, item after item (values may be written; the
    #: array cannot be replaced, so its size always matches ``shapes``).
    data = property(lambda self: self._data)
    #: ``(N, nd)`` int64 spatial shapes, read-only.
    shapes = property(lambda self: self._shapes)
    #: ``(N,)`` int64 element offset of each item in ``data``, read-only.
    offsets = property(lambda self: self._offsets)
    #: Number of channels of every item.
    channels = property(lambda self: self._channels)

    @classmethod
    def from_list(cls, items, *, dtype=None):
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
    def from_padded(cls, array, shapes):
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

    def to_padded(self, value=0.0):
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
    def dtype(self):
        return self.data.dtype

    @property
    def ndim(self):
        """Number of spatial axes."""
        return self.shapes.shape[1]

    def table(self):
        """The kernels' ``(N, 4)`` item table of this batch."""
        return item_table(self.channels, self.shapes, self.offsets)

    def like(self, data):
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
        result = object.__new__(type(self))
        result._shapes, result._channels, result._offsets = self._shapes, self._channels, self._offsets
        result._data = data
        return result

    def __reduce__(self):  # pickle and copy rebuild (and re-check) the batch
        return type(self), (self._data, self._shapes, self._channels)

    def __len__(self):
        return len(self.shapes)

    def __getitem__(self, index):
        if not isinstance(index, (numbers.Integral, np.integer)):
            raise ArgumentError(f"Ragged items are indexed by an int, got {index!r}")
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"item {index} of a Ragged batch of {n} items")
        index = int(index) % n
        shape = (self.channels,) + tuple(int(v) for v in self.shapes[index])
        start = int(self.offsets[index])
        return self.data[start:start + int(np.prod(shape))].reshape(shape)

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def __repr__(self):
        shown = ", ".join(str(tuple(int(v) for v in s)) for s in self.shapes[:4])
        more = ", ..." if len(self) > 4 else ""
        return (f"Ragged({len(self)} items, {self.channels} channels, {self.dtype}, "
                f"spatial shapes [{shown}{more}])")


# -- item by item: for ops whose algorithm sizes its work per item (FFT lengths,
#    separable passes, tile phases), a Ragged batch runs one item at a time ----

def map_items(fn, batch, *args, **kwargs):
    """``fn(item[None], *args, **kwargs)[0]`` for every item of ``batch``, as a Ragged."""
    return Ragged.from_list([fn(item[None], *args, **kwargs)[0] for item in batch])


def map_grad_input(fn, grad_output, weight, forward_input, **kwargs):
    """An op's input gradient item by item: ``fn(g_i[None], weight, (1, *x_i.shape))``.

    ``forward_input`` is the forward's Ragged input; the result is laid out
    like it.
    """
    _check_pair(grad_output, forward_input, "grad_output", "the forward input")
    pieces = [fn(g[None], weight, (1,) + item.shape, **kwargs)[0].reshape(-1)
              for g, item in zip(grad_output, forward_input)]
    return forward_input.like(np.concatenate(pieces))


def sum_over_items(fn, batch, grad_output, *args, **kwargs):
    """An op's parameter gradient: the sum over items of ``fn(x_i[None], g_i[None], ...)``.

    ``fn`` may return an array or a list of arrays (one per parameter).
    """
    _check_pair(grad_output, batch, "grad_output", "x")
    total = None
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


def _check_pair(a, b, a_name, b_name):
    if not isinstance(a, Ragged) or not isinstance(b, Ragged) or len(a) != len(b):
        raise ShapeError(f"{a_name} and {b_name} must be Ragged batches of the same number of "
                         f"items, got {a!r} and {b!r}")
