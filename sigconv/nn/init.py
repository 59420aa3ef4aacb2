r"""Initialisation strategies for convolution kernels (*Deep Learning*, 9.9).

The chapter lists three ways to obtain kernels without (or before)
supervised training, besides plain random initialisation:

random
    :func:`he_normal_`, :func:`he_uniform_` (variance ``2 / fan_in``, for
    ReLU networks) and :func:`glorot_normal_`, :func:`glorot_uniform_`
    (variance ``2 / (fan_in + fan_out)``).
hand-designed
    :func:`edge_kernels` (Sobel derivative kernels, steered to any
    direction) and :func:`gabor_kernels` (a bank of Gabor filters over
    orientations and scales); fill a layer with :func:`edge_` or
    :func:`gabor_`.
unsupervised
    :func:`kmeans_filters`: k-means centroids of whitened patches of real
    data (Coates and Ng); fill a layer with :func:`kmeans_`.

Every ``*_`` function takes a layer (its ``weight`` is filled and its
``bias``, if any, zeroed) or a Parameter / array (filled in place), and
returns it.  Hand-designed and k-means kernels are scaled so that each
output filter has the L2 norm ``sqrt(2)``, which is what He initialisation
gives on average, so training proceeds at the same pace from either start.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TypeVar
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .._validation import as_tuple
from ._checks import positive_int
from ..autograd import Tensor
from ..ragged import Ragged
from ..errors import ArgumentError, ShapeError
from ..typing import Seed

__all__ = ["he_normal_", "he_uniform_", "glorot_normal_", "glorot_uniform_", "zeros_",
           "edge_kernels", "gabor_kernels", "kmeans_filters", "edge_", "gabor_", "kmeans_",
           "fans"]


_Target = TypeVar("_Target")  # a layer with a weight, a Parameter or an array: returned as given


def _target(target: object) -> tuple[Any, Any, Any]:
    """``(weight array, bias array or None, layer or None)`` of a layer, Parameter or array."""
    if isinstance(target, Tensor):
        return target.data, None, None
    if isinstance(target, np.ndarray):
        return target, None, None
    weight = getattr(target, "weight", None)
    if isinstance(weight, Tensor):
        bias = getattr(target, "bias", None)
        return weight.data, (bias.data if isinstance(bias, Tensor) else None), target
    raise ArgumentError(f"expected a layer with a weight, a Parameter or an array, got "
                        f"{type(target).__name__}")


def fans(shape: Sequence[int], layer: Any = None) -> tuple[int, int]:
    """``(fan_in, fan_out)`` of a weight: inputs and outputs each weight value connects.

    ``(C_out, C_in, *kernel)`` (convolution, or ``(out, in)`` for linear) unless
    ``layer`` defines ``fan_in``/``fan_out`` itself (unshared and tiled layouts).
    """
    if layer is not None and hasattr(layer, "fan_in"):
        return layer.fan_in, layer.fan_out
    if len(shape) < 2:
        raise ShapeError(f"a weight needs at least 2 axes (out, in, ...), got shape {shape}")
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def _fill(target: _Target, values: ArrayLike) -> _Target:
    weight, bias, _ = _target(target)
    weight[...] = values
    if bias is not None:
        bias[...] = 0
    return target


def _rng(rng: Seed) -> np.random.Generator:
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def he_normal_(target: _Target, *, rng: Seed = None) -> _Target:
    """Normal with std ``sqrt(2 / fan_in)`` (He et al.; PyTorch's ``kaiming_normal_``)."""
    weight, _, layer = _target(target)
    fan_in, _ = fans(weight.shape, layer)
    return _fill(target, _rng(rng).standard_normal(weight.shape) * math.sqrt(2 / fan_in))


def he_uniform_(target: _Target, *, rng: Seed = None) -> _Target:
    """Uniform on ``±sqrt(6 / fan_in)`` (same variance as :func:`he_normal_`)."""
    weight, _, layer = _target(target)
    fan_in, _ = fans(weight.shape, layer)
    bound = math.sqrt(6 / fan_in)
    return _fill(target, _rng(rng).uniform(-bound, bound, weight.shape))


def glorot_normal_(target: _Target, *, rng: Seed = None) -> _Target:
    """Normal with std ``sqrt(2 / (fan_in + fan_out))`` (Glorot and Bengio; ``xavier_normal_``)."""
    weight, _, layer = _target(target)
    fan_in, fan_out = fans(weight.shape, layer)
    return _fill(target, _rng(rng).standard_normal(weight.shape)
                 * math.sqrt(2 / (fan_in + fan_out)))


def glorot_uniform_(target: _Target, *, rng: Seed = None) -> _Target:
    """Uniform on ``±sqrt(6 / (fan_in + fan_out))`` (``xavier_uniform_``)."""
    weight, _, layer = _target(target)
    fan_in, fan_out = fans(weight.shape, layer)
    bound = math.sqrt(6 / (fan_in + fan_out))
    return _fill(target, _rng(rng).uniform(-bound, bound, weight.shape))


def zeros_(target: _Target) -> _Target:
    return _fill(target, 0)


# ---------------------------------------------------------------------------
# hand-designed kernels
# ---------------------------------------------------------------------------

def _directions(ndim: int, count: int) -> NDArray[np.float64]:
    """``count`` unit vectors spread over a half circle (2-D) or half sphere (3-D)."""
    if ndim == 1:
        return np.ones((1, 1))
    if ndim == 2:
        theta = np.pi * np.arange(count) / count
        return np.stack([np.sin(theta), np.cos(theta)], axis=1)  # (row, column) components
    k = np.arange(count) + 0.5  # Fibonacci points on the upper half sphere
    z = k / count
    phi = np.pi * (1 + 5 ** 0.5) * k
    r = np.sqrt(1 - z * z)
    return np.stack([z, r * np.sin(phi), r * np.cos(phi)], axis=1)


def _unit(bank: NDArray[Any]) -> NDArray[Any]:
    norms = np.sqrt((bank.reshape(len(bank), -1) ** 2).sum(axis=1))
    return bank / np.where(norms > 0, norms, 1).reshape((-1,) + (1,) * (bank.ndim - 1))


def edge_kernels(kernel_size: int | Sequence[int], ndim: int, *,
                 orientations: int | None = None) -> NDArray[np.float64]:
    """Sobel edge detectors: smoothed first derivatives, steered to several directions.

    Along one axis the derivative is ``binomial(k - 2) * [-1, 1]`` (``[-1, 0, 1]``
    for ``k = 3``) and along the others binomial smoothing (``[1, 2, 1]``):
    for ``k = 3`` these are exactly the Sobel kernels.  A kernel for direction
    ``u`` is ``sum_a u_a G_a``.

    Parameters
    ----------
    kernel_size : int or tuple of int, each >= 2
    ndim : {1, 2, 3}
    orientations : int, optional
        Directions over the half circle (2-D) or half sphere (3-D), each used
        with both signs.  Default: the axes themselves.

    Returns
    -------
    float64 array, shape (2 * directions, *kernel_size)
        Unit-norm kernels, each followed by its negation.
    """
    ndim = _ndim(ndim)
    k = as_tuple(kernel_size, ndim, "kernel_size", minimum=2)
    smooth = [np.array([math.comb(n - 1, i) for i in range(n)], float) for n in k]
    deriv = [np.convolve([math.comb(n - 2, i) for i in range(n - 1)], [-1.0, 1.0]) for n in k]
    axis_kernels = []
    for a in range(ndim):
        kernel = np.ones(())
        for b in range(ndim):
            kernel = np.multiply.outer(kernel, deriv[b] if a == b else smooth[b])
        axis_kernels.append(kernel)
    if orientations is None:
        directions = np.eye(ndim)
    else:
        directions = _directions(ndim, positive_int(orientations, "orientations"))
    steered = np.stack([np.tensordot(u, np.stack(axis_kernels), axes=1) for u in directions])
    steered = _unit(steered)
    return np.stack([s for kernel in steered for s in (kernel, -kernel)])


def gabor_kernels(kernel_size: int | Sequence[int], ndim: int, *, orientations: int = 4,
                  scales: int = 2) -> NDArray[np.float64]:
    r"""A Gabor filter bank: ``exp(-|r|^2 / (2 sigma^2)) cos(2 pi (r . u) / lambda + phase)``.

    Wavelengths ``lambda = K / 2^j`` for ``j < scales`` (``K`` the smallest
    window side; never below 2 samples, the Nyquist limit), envelope
    ``sigma = 0.56 lambda`` (about one octave of bandwidth), directions ``u``
    spread over the half circle (2-D) or half sphere (3-D), and both phases
    (even, cosine and odd, sine).  Even filters have their mean removed, so
    no filter responds to a constant input.

    Returns
    -------
    float64 array, shape (scales * directions * 2, *kernel_size)
        Unit-norm kernels; in 1-D there is one direction.
    """
    ndim = _ndim(ndim)
    k = as_tuple(kernel_size, ndim, "kernel_size", minimum=1)
    scales = positive_int(scales, "scales")
    directions = _directions(ndim, positive_int(orientations, "orientations"))
    grids = np.meshgrid(*[np.arange(n) - (n - 1) / 2 for n in k], indexing="ij")
    r = np.stack(grids, axis=-1)  # (*k, ndim)
    radius2 = (r * r).sum(axis=-1)
    bank = []
    for j in range(scales):
        wavelength = max(min(k) / 2 ** j, 2.0)
        sigma = 0.56 * wavelength
        envelope = np.exp(-radius2 / (2 * sigma * sigma))
        for u in directions:
            phase = 2 * np.pi * (r @ u) / wavelength
            even = envelope * np.cos(phase)
            bank.append(even - even.mean())
            bank.append(envelope * np.sin(phase))
    return _unit(np.stack(bank))


def _ndim(ndim: object) -> int:
    if ndim not in (1, 2, 3):
        raise ArgumentError(f"ndim must be 1, 2 or 3, got {ndim!r}")
    return ndim


def _conv_geometry(layer: Any, name: str) -> tuple[NDArray[Any], int, tuple[int, ...]]:
    """``(weight array, C_in per group, kernel shape)`` of a Conv-like layer.

    A layer whose weight holds more than ``(C_out, C_in, *kernel)`` says so
    with a ``_weight_layout`` attribute (LocalConv: ``"per position"``,
    TiledConv: ``"per tile"``), as it gives its own ``fan_in``/``fan_out``;
    such weights are refused, without this module importing the layers.
    """
    if getattr(layer, "_weight_layout", None) is not None:
        raise ArgumentError(f"{name} fills Conv (or ConvTranspose) weights; {type(layer).__name__} "
                            "weights are laid out per position or per tile")
    weight, _, _ = _target(layer)
    if weight.ndim < 3:
        raise ShapeError(f"{name} fills a convolution weight (C_out, C_in, *kernel), got shape "
                         f"{weight.shape}")
    return weight, weight.shape[1], weight.shape[2:]


def _fill_bank(layer: _Target, bank: NDArray[Any]) -> _Target:
    """Output filter ``o`` is ``bank[o % len(bank)]`` on every input channel, norm sqrt(2)."""
    weight, c_in, kernel = _conv_geometry(layer, "bank initialisation")
    filters = np.stack([np.broadcast_to(bank[o % len(bank)], (c_in,) + kernel)
                        for o in range(weight.shape[0])])
    return _fill(layer, _unit(filters) * math.sqrt(2))


def edge_(layer: _Target, *, orientations: int | None = None) -> _Target:
    """Fill a convolution layer with :func:`edge_kernels` (cycled over the output channels)."""
    weight, _, kernel = _conv_geometry(layer, "edge_")
    return _fill_bank(layer, edge_kernels(kernel, len(kernel), orientations=orientations))


def gabor_(layer: _Target, *, orientations: int = 4, scales: int = 2) -> _Target:
    """Fill a convolution layer with :func:`gabor_kernels` (cycled over the output channels)."""
    weight, _, kernel = _conv_geometry(layer, "gabor_")
    return _fill_bank(layer, gabor_kernels(kernel, len(kernel), orientations=orientations,
                                           scales=scales))


# ---------------------------------------------------------------------------
# unsupervised kernels: k-means on whitened patches
# ---------------------------------------------------------------------------

def _patches(data: NDArray[Any], kernel: tuple[int, ...], count: int,
             rng: np.random.Generator) -> NDArray[Any]:
    """``count`` random patches ``(C, *kernel)`` of a batch ``(N, C, *spatial)``, flattened."""
    n, spatial = data.shape[0], data.shape[2:]
    if any(s < kk for s, kk in zip(spatial, kernel)):
        raise ShapeError(f"data of shape {data.shape} is smaller than the kernel {kernel}")
    items = rng.integers(0, n, count)
    starts = [rng.integers(0, s - kk + 1, count) for s, kk in zip(spatial, kernel)]
    out = np.empty((count, data.shape[1] * math.prod(kernel)))
    for i in range(count):
        window = tuple(slice(st[i], st[i] + kk) for st, kk in zip(starts, kernel))
        out[i] = data[(items[i], slice(None)) + window].reshape(-1)
    return out


def _dense_data(data: Any, who: str) -> Any:
    """The array of ``data`` (an array or a Tensor of one); ShapeError for a Ragged batch."""
    data = data.data if isinstance(data, Tensor) else data
    if isinstance(data, Ragged):
        raise ShapeError(f"{who} learns from a dense (N, C, *spatial) array, got {data!r}; "
                         "stack items of one size (or crop them to one) first")
    return data


def kmeans_filters(data: ArrayLike | Tensor, kernel_size: int | Sequence[int], n_filters: int, *,
                   n_patches: int = 10000, iterations: int = 10, whiten_eps: float = 0.1,
                   rng: Seed = None) -> NDArray[np.float64]:
    """Convolution kernels learned without labels: spherical k-means on whitened patches.

    The recipe of Coates and Ng: sample patches, subtract each patch's mean,
    ZCA-whiten them (``W = V diag(1 / sqrt(lambda + eps)) V^T`` with ``eps``
    ``whiten_eps`` times the mean eigenvalue), run spherical k-means (each
    patch assigned to the centroid of largest absolute projection, centroids
    renormalised), and map each centroid ``d`` back to a kernel for the raw
    data, ``W d`` with its mean removed, so that ``conv(x, kernel)`` equals the
    projection of the whitened, mean-subtracted patch on ``d``.

    Parameters
    ----------
    data : array, shape (N, C, *spatial)
        Real signals of the kind the layer will see.
    kernel_size : int or tuple of int
    n_filters : int
    n_patches, iterations : int
    whiten_eps : float > 0
    rng : numpy Generator or seed

    Returns
    -------
    float64 array, shape (n_filters, C, *kernel_size)
        Unit-norm kernels.
    """
    data = np.asarray(_dense_data(data, "kmeans_filters"), dtype=np.float64)
    if not 3 <= data.ndim <= 5:
        raise ShapeError(f"data must have shape (N, C, *spatial) with 1 to 3 spatial axes, got "
                         f"shape {data.shape}")
    kernel = as_tuple(kernel_size, data.ndim - 2, "kernel_size", minimum=1)
    n_filters = positive_int(n_filters, "n_filters")
    n_patches, iterations = positive_int(n_patches, "n_patches"), positive_int(iterations, "iterations")
    if not whiten_eps > 0:
        raise ArgumentError(f"whiten_eps must be > 0, got {whiten_eps!r}")
    rng = _rng(rng)
    patches = _patches(data, kernel, n_patches, rng)
    patches -= patches.mean(axis=1, keepdims=True)
    cov = patches.T @ patches / len(patches)
    eigval, eigvec = np.linalg.eigh(cov)
    eigval = np.maximum(eigval, 0)
    eps = whiten_eps * max(eigval.mean(), 1e-12)
    zca = (eigvec / np.sqrt(eigval + eps)) @ eigvec.T  # symmetric
    white = patches @ zca
    centroids = _unit(rng.standard_normal((n_filters, white.shape[1])))
    for _ in range(iterations):
        scores = white @ centroids.T  # (patches, filters)
        best = np.argmax(np.abs(scores), axis=1)
        codes = np.zeros_like(scores)
        codes[np.arange(len(best)), best] = scores[np.arange(len(best)), best]
        updated = codes.T @ white + centroids
        norms = np.linalg.norm(updated, axis=1)
        empty = norms < 1e-12  # restart a centroid no patch chose
        updated[empty] = rng.standard_normal((int(empty.sum()), white.shape[1]))
        centroids = _unit(updated)
    filters = centroids @ zca
    filters -= filters.mean(axis=1, keepdims=True)
    return _unit(filters.reshape((n_filters, data.shape[1]) + kernel))


def kmeans_(layer: _Target, data: ArrayLike | Tensor, *, n_patches: int = 10000,
            iterations: int = 10, whiten_eps: float = 0.1, rng: Seed = None) -> _Target:
    """Fill a convolution layer (``groups=1``) with :func:`kmeans_filters` learned on ``data``."""
    weight, c_in, kernel = _conv_geometry(layer, "kmeans_")
    data_channels = np.shape(_dense_data(data, "kmeans_"))[1:2]
    if data_channels != (c_in,):
        raise ShapeError(f"kmeans_: the layer takes {c_in} input channels per group, data has "
                         f"shape {np.shape(data)}; k-means initialisation needs groups=1 and "
                         "data with the layer's input channels")
    filters = kmeans_filters(data, kernel, weight.shape[0], n_patches=n_patches,
                             iterations=iterations, whiten_eps=whiten_eps, rng=rng)
    return _fill(layer, filters * math.sqrt(2))
