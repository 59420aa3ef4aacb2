r"""A slow numpy reference for convolution, written from the chapter's formula.

Deep Learning, ch. 9, eq. 9.8 (strided, multi-channel cross-correlation):

.. math:: Z_{i,j,k} = \sum_{l,m,n} V_{l,\, j s + m,\, k s + n} \, K_{i,l,m,n}

(0-based indices here), generalised to 1-3 spatial axes, dilation ``d`` (tap
``m`` reads ``V`` at ``j s + m d``), zero padding ``(lo, hi)`` per axis, a
batch axis, groups and a bias.  ``flip=True`` is true convolution: the kernel
is reversed along every spatial axis before the sum (``scipy.signal.convolve``).

The gradients are the chapter's h(K, G, s) (eq. 9.13, with respect to the
input) and g(G, V, s) (eq. 9.11, with respect to the kernel), written as the
adjoints of the forward sum: every term ``V[..] K[..]`` of ``Z`` sends
``G * K`` back to ``V`` and ``G * V`` back to ``K``.

Nothing here imports sigconv: the tests use this module as an independent
oracle.  Everything is computed in float64.
"""
import itertools
import math

import numpy as np

PADDING_MODES = ("valid", "same", "full")


def as_tuple(value, n):
    if isinstance(value, (int, np.integer)):
        return (int(value),) * n
    value = tuple(int(v) for v in value)
    assert len(value) == n
    return value


def padding_pairs(padding, input_size, kernel_size, stride=1, dilation=1, flip=False):
    """``(lo, hi)`` zero padding of every spatial axis (the GUIDE §3 contract)."""
    n = len(input_size)
    stride, dilation = as_tuple(stride, n), as_tuple(dilation, n)
    spans = [(k - 1) * d + 1 for k, d in zip(kernel_size, dilation)]
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0),) * n
        if padding == "full":
            return tuple((e - 1, e - 1) for e in spans)
        if padding == "same":
            pairs = []
            for size, e, s in zip(input_size, spans, stride):
                out = math.ceil(size / s)
                total = max((out - 1) * s + e - size, 0)
                # odd sample after the input for cross-correlation (PyTorch),
                # before it for true convolution (scipy.signal.convolve)
                lo = total - total // 2 if flip else total // 2
                pairs.append((lo, total - lo))
            return tuple(pairs)
        raise ValueError(padding)
    if isinstance(padding, (int, np.integer)):
        return ((int(padding), int(padding)),) * n
    pairs = []
    for item in padding:
        if isinstance(item, (int, np.integer)):
            pairs.append((int(item), int(item)))
        else:
            lo, hi = item
            pairs.append((int(lo), int(hi)))
    assert len(pairs) == n
    return tuple(pairs)


def output_size(input_size, kernel_size, stride=1, padding="valid", dilation=1, flip=False):
    """Number of window positions per axis, counted by brute force."""
    n = len(input_size)
    stride, dilation = as_tuple(stride, n), as_tuple(dilation, n)
    pads = padding_pairs(padding, input_size, kernel_size, stride, dilation, flip)
    sizes = []
    for size, (lo, hi), k, s, d in zip(input_size, pads, kernel_size, stride, dilation):
        padded = size + lo + hi
        span = (k - 1) * d + 1
        # window starts 0, s, 2s, ... whose last tap is still inside the padded input
        sizes.append(len(range(0, padded - span + 1, s)))
    return tuple(sizes)


def _pad(x, pads):
    return np.pad(x, ((0, 0), (0, 0)) + tuple(pads))


def _flip_spatial(w):
    nd = w.ndim - 2
    return w[(slice(None), slice(None)) + (slice(None, None, -1),) * nd]


def _tap_slices(tap, out, stride, dilation):
    """Slices of the padded input read by kernel tap ``tap`` for every output position."""
    return tuple(slice(m * d, m * d + (o - 1) * s + 1, s)
                 for m, o, s, d in zip(tap, out, stride, dilation))


def _setup(x, w, stride, padding, dilation, groups, flip):
    x = np.asarray(x, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)
    nd = x.ndim - 2
    stride, dilation = as_tuple(stride, nd), as_tuple(dilation, nd)
    pads = padding_pairs(padding, x.shape[2:], w.shape[2:], stride, dilation, flip)
    out = output_size(x.shape[2:], w.shape[2:], stride, pads, dilation)
    assert all(o >= 1 for o in out), "kernel larger than the padded input"
    assert x.shape[1] == w.shape[1] * groups and w.shape[0] % groups == 0
    return x, w, nd, stride, dilation, pads, out


def conv_naive(x, w, bias=None, *, stride=1, padding="valid", dilation=1, groups=1, flip=False):
    """Literal scalar loops over every output element and every term of the sum.

    Only for tiny inputs; :func:`conv` is checked against it.
    """
    x, w, nd, stride, dilation, pads, out = _setup(x, w, stride, padding, dilation, groups, flip)
    if flip:
        w = _flip_spatial(w)
    v = _pad(x, pads)
    n_items, c_out = x.shape[0], w.shape[0]
    cin_g, cout_g = w.shape[1], c_out // groups
    z = np.zeros((n_items, c_out) + out)
    for b in range(n_items):
        for i in range(c_out):
            g = i // cout_g
            for pos in itertools.product(*(range(o) for o in out)):
                total = 0.0 if bias is None else float(bias[i])
                for l in range(cin_g):
                    for tap in itertools.product(*(range(k) for k in w.shape[2:])):
                        where = tuple(p * s + m * d for p, m, s, d in zip(pos, tap, stride, dilation))
                        total += v[(b, g * cin_g + l) + where] * w[(i, l) + tap]
                z[(b, i) + pos] = total
    return z


def conv(x, w, bias=None, *, stride=1, padding="valid", dilation=1, groups=1, flip=False):
    """The same sum, one kernel tap at a time (vectorised over items and positions)."""
    x, w, nd, stride, dilation, pads, out = _setup(x, w, stride, padding, dilation, groups, flip)
    if flip:
        w = _flip_spatial(w)
    v = _pad(x, pads)
    n_items, c_out = x.shape[0], w.shape[0]
    cin_g, cout_g = w.shape[1], c_out // groups
    z = np.zeros((n_items, c_out) + out)
    for g in range(groups):
        vg = v[:, g * cin_g:(g + 1) * cin_g]            # (N, cin_g, *padded)
        wg = w[g * cout_g:(g + 1) * cout_g]             # (cout_g, cin_g, *kernel)
        for tap in itertools.product(*(range(k) for k in w.shape[2:])):
            patch = vg[(slice(None), slice(None)) + _tap_slices(tap, out, stride, dilation)]
            # (N, cin_g, *out) x (cout_g, cin_g) -> (N, cout_g, *out)
            z[:, g * cout_g:(g + 1) * cout_g] += np.einsum(
                "nl...,il->ni...", patch, wg[(slice(None), slice(None)) + tap])
    if bias is not None:
        z += np.asarray(bias, dtype=np.float64).reshape((1, c_out) + (1,) * nd)
    return z


def conv_grad_input(grad_output, w, input_shape, *, stride=1, padding="valid", dilation=1,
                    groups=1, flip=False):
    """dL/dx for L = sum(conv(x, w) * grad_output): the adjoint of :func:`conv` in x."""
    gy = np.asarray(grad_output, dtype=np.float64)
    x0 = np.zeros(input_shape)
    x0, w, nd, stride, dilation, pads, out = _setup(x0, w, stride, padding, dilation, groups, flip)
    assert gy.shape == (input_shape[0], w.shape[0]) + out, (gy.shape, out)
    if flip:
        w = _flip_spatial(w)
    padded = tuple(n + lo + hi for n, (lo, hi) in zip(input_shape[2:], pads))
    gv = np.zeros(tuple(input_shape[:2]) + padded)
    cin_g, cout_g = w.shape[1], w.shape[0] // groups
    for g in range(groups):
        gyg = gy[:, g * cout_g:(g + 1) * cout_g]
        wg = w[g * cout_g:(g + 1) * cout_g]
        for tap in itertools.product(*(range(k) for k in w.shape[2:])):
            where = (slice(None), slice(g * cin_g, (g + 1) * cin_g)) + _tap_slices(
                tap, out, stride, dilation)
            gv[where] += np.einsum("ni...,il->nl...", gyg, wg[(slice(None), slice(None)) + tap])
    crop = (slice(None), slice(None)) + tuple(slice(lo, lo + n) for n, (lo, _) in
                                              zip(input_shape[2:], pads))
    return gv[crop]


def conv_grad_weight(x, grad_output, weight_shape, *, stride=1, padding="valid", dilation=1,
                     groups=1, flip=False):
    """dL/dw for L = sum(conv(x, w) * grad_output): the adjoint of :func:`conv` in w."""
    gy = np.asarray(grad_output, dtype=np.float64)
    w0 = np.zeros(weight_shape)
    x, w0, nd, stride, dilation, pads, out = _setup(x, w0, stride, padding, dilation, groups, flip)
    assert gy.shape == (x.shape[0], weight_shape[0]) + out, (gy.shape, out)
    v = _pad(x, pads)
    gw = np.zeros(weight_shape)
    cin_g, cout_g = weight_shape[1], weight_shape[0] // groups
    for g in range(groups):
        vg = v[:, g * cin_g:(g + 1) * cin_g]
        gyg = gy[:, g * cout_g:(g + 1) * cout_g]
        for tap in itertools.product(*(range(k) for k in weight_shape[2:])):
            patch = vg[(slice(None), slice(None)) + _tap_slices(tap, out, stride, dilation)]
            # sum over items and output positions: (N, cin_g, P) x (N, cout_g, P) -> (cout_g, cin_g)
            gw[(slice(g * cout_g, (g + 1) * cout_g), slice(None)) + tap] = np.einsum(
                "nlp,nip->il", patch.reshape(patch.shape[:2] + (-1,)),
                gyg.reshape(gyg.shape[:2] + (-1,)))
    return _flip_spatial(gw) if flip else gw


def conv_grad_bias(grad_output):
    gy = np.asarray(grad_output, dtype=np.float64)
    return gy.sum(axis=(0,) + tuple(range(2, gy.ndim)))
