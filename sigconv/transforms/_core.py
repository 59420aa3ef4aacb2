"""The transform contract, the combinators, seeding and batches.

A transform is a callable object ``t(signal, rng) -> Signal``: ``signal`` a
:class:`sigconv.io.Signal`, ``rng`` a :class:`numpy.random.Generator`.  It
never modifies its input, keeps the dtype, kind and axes, keeps the metadata
that still hold and updates those that change.

Target channels: the last ``signal.meta.get("target_channels", 0)``
channels are targets (class indices or masks of a dense task, the clean
signal of a denoising pair).  Intensity transforms leave them untouched;
geometric transforms move them with the input, with the same random draw,
resampling them with nearest neighbour (order 0) where the input is
interpolated linearly (order 1), so a label map stays a label map.
"""
from __future__ import annotations

import numbers
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

from .._validation import check_choice, check_int, check_real
from ..errors import ArgumentError
from ..io.signal import KINDS, Signal
from ..ragged import Ragged
from ..typing import BatchLike, SignalKind

__all__ = ["Transform", "Compose", "RandomApply", "OneOf", "Identity", "item_rng",
           "augment_batch", "describe", "SEED_TAG"]

#: The fourth entry of every item's seed sequence: keeps the augmentation's
#: random stream apart from any other stream seeded with ``[seed, epoch, item]``.
SEED_TAG = 0x5A06


# -- argument checks (sigconv._validation has no real-valued range check) -----------
def check_probability(value: object, name: str = "p") -> float:
    """A probability in [0, 1] as a float."""
    return check_real(value, name, minimum=0.0, maximum=1.0)


def check_range(value: Any, name: str, *, minimum: float | None = None,
                maximum: float | None = None, symmetric: bool = False,
                open_minimum: bool = False) -> tuple[float, float]:
    """A ``(low, high)`` pair of reals with ``low <= high``, as a tuple of floats.

    With ``symmetric``, one number ``x >= 0`` stands for ``(-x, x)``.
    """
    if symmetric and isinstance(value, (numbers.Real, np.floating, np.integer)) \
            and not isinstance(value, (bool, np.bool_)):
        x = check_real(value, name, minimum=0.0)
        value = (-x, x)
    try:
        low, high = value
    except (TypeError, ValueError):
        also = " or one number x >= 0 for (-x, x)" if symmetric else ""
        raise ArgumentError(f"{name} must be a (low, high) pair{also}, got {value!r}") from None
    low = check_real(low, f"{name}[0]", minimum=minimum, maximum=maximum, open_minimum=open_minimum)
    high = check_real(high, f"{name}[1]", minimum=minimum, maximum=maximum,
                      open_minimum=open_minimum)
    if low > high:
        raise ArgumentError(f"{name} must have low <= high, got {value!r}")
    return (low, high)


def uniform(rng: np.random.Generator, bounds: tuple[float, float]) -> float:
    """One draw from ``U(low, high)`` (always one draw, so streams stay aligned)."""
    low, high = bounds
    return float(rng.uniform(low, high))


def check_rng(rng: object, name: str) -> None:
    if not isinstance(rng, np.random.Generator):
        raise ArgumentError(f"{name} needs rng to be a numpy.random.Generator (for example "
                            f"sigconv.transforms.item_rng(seed, epoch, item)), got {rng!r}")


# -- target channels and dtypes -------------------------------------------------------
def target_count(signal: Signal) -> int:
    """How many trailing channels of ``signal`` are targets (checked against its channels)."""
    n = signal.meta.get("target_channels", 0) or 0
    if not isinstance(n, (int, np.integer)) or isinstance(n, (bool, np.bool_)) \
            or not 0 <= n < signal.data.shape[0]:
        raise ArgumentError(f"meta['target_channels'] must be an int from 0 to the number of "
                            f"channels - 1 ({signal.data.shape[0] - 1}), got {n!r}")
    return int(n)


def as_dtype(array: NDArray[Any], dtype: DTypeLike) -> NDArray[Any]:
    """``array`` in ``dtype``: integer dtypes are rounded and clipped to their range."""
    dtype = np.dtype(dtype)
    if array.dtype == dtype:
        return array
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        array = np.clip(np.rint(array), info.min, info.max)
    elif dtype.kind == "b":
        array = array > 0.5
    return array.astype(dtype)


def work_dtype(dtype: DTypeLike) -> np.dtype[Any]:
    """The float dtype a transform computes in for data of ``dtype``."""
    return np.dtype(dtype) if np.dtype(dtype) in (np.float32, np.float64) else np.dtype(np.float32)


def on_inputs(signal: Signal, fn: Callable[[NDArray[Any]], ArrayLike]) -> Signal:
    """``signal`` with ``fn`` applied to its input channels only (targets copied as they are).

    ``fn(inputs)`` gets the input channels in the work dtype and returns an
    array of the same shape.
    """
    n = target_count(signal)
    data = signal.data
    c = data.shape[0] - n
    inputs = data[:c].astype(work_dtype(data.dtype), copy=True)
    out = np.empty_like(data)
    out[:c] = as_dtype(np.asarray(fn(inputs)), data.dtype)
    out[c:] = data[c:]
    return signal.replace(out)


def resample_channels(signal: Signal, fn: Callable[[NDArray[Any], int], ArrayLike],
                      **changes: Any) -> Signal:
    """``signal`` with ``fn(array, order)`` applied to inputs (order 1) and targets (order 0).

    ``fn`` returns the new array; both groups must come back with the same
    spatial shape.  ``changes`` are metadata updates for :meth:`Signal.replace`.
    """
    n = target_count(signal)
    data = signal.data
    c = data.shape[0] - n
    parts = [as_dtype(np.asarray(fn(data[:c].astype(work_dtype(data.dtype)), 1)), data.dtype)]
    if n:
        parts.append(as_dtype(np.asarray(fn(data[c:], 0)), data.dtype))
    out = np.ascontiguousarray(np.concatenate(parts, axis=0) if n else parts[0])
    return signal.replace(out, **changes)


def _plain(value: object) -> Any:
    """A JSON-serialisable copy of a parameter value."""
    if isinstance(value, Transform):
        return describe(value)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (np.floating, np.integer, np.bool_)):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return repr(value)


# -- the contract ------------------------------------------------------------------
class Transform:
    """Base class: kind check, probability ``p``, repr and description.

    Subclasses set :attr:`kinds`, store their parameters as attributes named
    in :attr:`params` and implement ``_apply(signal, rng)``.  With
    probability ``1 - p`` the input is returned as it is (one uniform draw
    when ``0 < p < 1``, none otherwise).
    """

    #: The kinds this transform accepts.
    kinds: tuple[str, ...] = KINDS
    #: Parameter names shown by repr and :func:`describe` (in this order).
    params: tuple[str, ...] = ("p",)
    #: False when ``_apply`` uses ``p`` itself (Flip: one draw per axis).
    gated = True

    def __init__(self, p: float = 1.0) -> None:
        self.p = check_probability(p)

    def check_signal(self, signal: object) -> None:
        name = type(self).__name__
        if not isinstance(signal, Signal):
            raise ArgumentError(f"{name} takes a sigconv.io.Signal, got {type(signal).__name__}")
        if signal.kind not in self.kinds:
            accepted = ", ".join(repr(k) for k in self.kinds)
            raise ArgumentError(f"{name} does not apply to a {signal.kind!r} signal; it accepts "
                                f"kinds {accepted}")

    def __call__(self, signal: Signal, rng: np.random.Generator) -> Signal:
        self.check_signal(signal)
        check_rng(rng, type(self).__name__)
        if self.p == 0.0:
            return signal
        if self.gated and self.p < 1.0 and not rng.random() < self.p:
            return signal
        return self._apply(signal, rng)

    def _apply(self, signal: Signal, rng: np.random.Generator) -> Signal:  # pragma: no cover - abstract
        raise NotImplementedError

    def parameters(self) -> dict[str, Any]:
        """``{name: value}`` of the constructor parameters."""
        return {name: getattr(self, name) for name in self.params}

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={v!r}" for k, v in self.parameters().items())
        return f"{type(self).__name__}({shown})"


class Identity(Transform):
    """Returns its input."""

    params = ()

    def __init__(self) -> None:
        super().__init__(1.0)

    def _apply(self, signal: Signal, rng: np.random.Generator) -> Signal:
        return signal


def _check_transforms(transforms: Iterable[Transform], name: str) -> list[Transform]:
    try:
        transforms = list(transforms)
    except TypeError:
        raise ArgumentError(f"{name} takes a list of transforms, got {transforms!r}") from None
    for i, t in enumerate(transforms):
        if not isinstance(t, Transform):
            raise ArgumentError(f"{name}: item {i} is not a sigconv transform, got {t!r}")
    return transforms


class Compose(Transform):
    """Applies ``transforms`` in order, drawing from the one ``rng``.

    Accepts a kind when every member accepts it (an empty Compose is the identity).
    """

    params = ("transforms",)

    def __init__(self, transforms: Iterable[Transform]) -> None:
        super().__init__(1.0)
        self.transforms = _check_transforms(transforms, "Compose")
        kinds = set(KINDS)
        for t in self.transforms:
            kinds &= set(t.kinds)
        self.kinds = tuple(k for k in KINDS if k in kinds)

    def _apply(self, signal: Signal, rng: np.random.Generator) -> Signal:
        for t in self.transforms:
            signal = t(signal, rng)
        return signal

    def __len__(self) -> int:
        return len(self.transforms)

    def __iter__(self) -> Iterator[Transform]:
        return iter(self.transforms)

    def __repr__(self) -> str:
        inner = ",\n".join("    " + repr(t).replace("\n", "\n    ") for t in self.transforms)
        return "Compose([\n" + inner + "\n])" if self.transforms else "Compose([])"


class RandomApply(Transform):
    """Applies ``transform`` with probability ``p``."""

    params = ("transform", "p")

    def __init__(self, transform: Transform, p: float = 0.5) -> None:
        super().__init__(p)
        if not isinstance(transform, Transform):
            raise ArgumentError(f"RandomApply takes a sigconv transform, got {transform!r}")
        self.transform = transform
        self.kinds = transform.kinds

    def _apply(self, signal: Signal, rng: np.random.Generator) -> Signal:
        return self.transform(signal, rng)


class OneOf(Transform):
    """Applies one of ``transforms``, chosen with probabilities ``weights`` (uniform by default).

    Accepts the kinds every member accepts.
    """

    params = ("transforms", "weights", "p")

    def __init__(self, transforms: Iterable[Transform], weights: Sequence[float] | None = None,
                 p: float = 1.0) -> None:
        super().__init__(p)
        self.transforms = _check_transforms(transforms, "OneOf")
        if not self.transforms:
            raise ArgumentError("OneOf needs at least one transform")
        if weights is None:
            self.weights = None
        else:
            try:
                weights = [check_real(w, "OneOf weights", minimum=0.0) for w in weights]
            except TypeError:
                raise ArgumentError(f"OneOf weights must be a list of numbers, got {weights!r}") \
                    from None
            if len(weights) != len(self.transforms) or sum(weights) <= 0:
                raise ArgumentError(f"OneOf weights must give one number >= 0 per transform "
                                    f"({len(self.transforms)}) with a positive sum, "
                                    f"got {weights!r}")
            self.weights = tuple(weights)
        kinds = set(KINDS)
        for t in self.transforms:
            kinds &= set(t.kinds)
        self.kinds = tuple(k for k in KINDS if k in kinds)

    def _apply(self, signal: Signal, rng: np.random.Generator) -> Signal:
        probs = None if self.weights is None else np.array(self.weights) / sum(self.weights)
        choice = int(rng.choice(len(self.transforms), p=probs))
        return self.transforms[choice](signal, rng)


# -- seeding, batches, descriptions --------------------------------------------------
def item_rng(seed: int, epoch: int, item: int) -> np.random.Generator:
    """The generator of one item in one epoch: ``default_rng([seed, epoch, item, SEED_TAG])``.

    The stream depends on nothing else (not on the batch, the worker or the
    items before), so a run and its ``--resume`` draw the same augmentation
    for every item, and any item of any epoch can be replayed alone.
    """
    seed = check_int(seed, "seed", minimum=0)
    epoch = check_int(epoch, "epoch", minimum=0)
    item = check_int(item, "item", minimum=0)
    return np.random.default_rng([seed, epoch, item, SEED_TAG])


def augment_batch(transform: Transform, batch: BatchLike, *, kind: SignalKind, seed: int,
                  epoch: int, items: Sequence[int], **metadata: Any) -> NDArray[Any] | Ragged:
    """Apply ``transform`` to each item of ``batch`` with the item's own :func:`item_rng`.

    Parameters
    ----------
    transform : Transform
    batch : ndarray, shape (N, C, *spatial), or Ragged
    kind : str
        The items' kind (one of :data:`sigconv.io.KINDS`).
    seed, epoch : int
    items : sequence of int, length N
        The item index of each row (its rng is ``item_rng(seed, epoch, items[i])``).
    **metadata
        Given to every item's Signal (``sample_rate``, ``spacing``, ``affine``,
        ``target_channels``, ...).

    Returns
    -------
    ndarray, shape (N, C, *spatial'), when the input is dense and every
    output item has the same shape; otherwise a Ragged.
    """
    if not isinstance(transform, Transform):
        raise ArgumentError(f"augment_batch takes a sigconv transform, got {transform!r}")
    check_choice(kind, "kind", KINDS)
    if isinstance(batch, Ragged):
        arrays, dense = list(batch), False
    else:
        batch = np.asarray(batch)
        if batch.ndim < 3:
            raise ArgumentError(f"augment_batch takes an (N, C, *spatial) array or a Ragged, "
                                f"got shape {batch.shape}")
        arrays, dense = list(batch), True
    try:
        items = [int(i) if isinstance(i, (numbers.Integral, np.integer)) else i for i in items]
    except TypeError:
        raise ArgumentError(f"items must be a sequence of item indices, got {items!r}") from None
    if len(items) != len(arrays):
        raise ArgumentError(f"items must give one index per batch item ({len(arrays)}), "
                            f"got {len(items)}")
    out = []
    for array, item in zip(arrays, items):
        signal = Signal(array, kind, **metadata)
        out.append(transform(signal, item_rng(seed, epoch, item)).data)
    dtype = batch.dtype
    if dense and len({a.shape for a in out}) == 1:
        return np.stack(out).astype(dtype, copy=False)
    return Ragged.from_list(out, dtype=dtype)


def describe(transform: Transform) -> dict[str, Any]:
    """A JSON-serialisable description: ``{"class": name, **parameters}``, nested for
    combinators (``Compose``'s ``"transforms"``, ``RandomApply``'s ``"transform"``)."""
    if not isinstance(transform, Transform):
        raise ArgumentError(f"describe takes a sigconv transform, got {transform!r}")
    out: dict[str, Any] = {"class": type(transform).__name__}
    for name, value in transform.parameters().items():
        out[name] = _plain(value)
    return out
