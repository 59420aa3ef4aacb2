"""A sigconv model as an ONNX graph: :func:`to_onnx`.

Every layer is written with the ONNX operators that compute exactly what
it computes (see :mod:`sigconv.export` for the design and the table of
layers).  Sizes that depend on the input (a "same" padding with a stride,
the windows of adaptive pooling, the nearest-neighbour resize to a skip
connection's size, the encoder-decoder's choice to pool) are computed in
the graph from ``Shape``, so one file serves every input size on its
dynamic axes.  Initializers are named by the model's state dict
(``features.0.weight``) and hold its arrays unchanged; a weight used by
several steps (the labeller's shared convolutions) is one initializer.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Union

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

from .. import nn, shapes
from .._atomic import atomic_write_bytes
from .._validation import (as_float_array, as_tuple, check_batch, check_int,
                           check_spatial_nonempty)
from .._version import __version__
from ..autograd import Tensor, no_grad
from ..errors import ArgumentError, ExportError, ShapeError, SigconvError
from ..functional.pooling import gaussian_pool_weights
from ..io._common import require
from ..ragged import Ragged
from ..typing import IntOrTuple, PathLike
from . import _walk

__all__ = ["to_onnx", "INPUT", "OUTPUT", "MIN_OPSET", "DEFAULT_OPSET"]

#: Names of the graph's input and output (the keys of ``dynamic_axes``).
INPUT, OUTPUT = "input", "output"

#: Opsets written: 17 is the first with LayerNormalization-era operators that every
#: current runtime (onnxruntime, onnxruntime-web, OpenVINO) reads.
MIN_OPSET = DEFAULT_OPSET = 17

_EXPORTER = "to_onnx"


class _Value:
    """A tensor of the graph being written: its name and rank."""

    __slots__ = ("name", "rank")

    def __init__(self, name: str, rank: int) -> None:
        self.name, self.rank = name, rank


#: A node's input: a value, or the name of an initializer.
_Input = Union[_Value, str]


class _Graph:
    """The graph being written: nodes, initializers, unique names and shape arithmetic.

    ``nodes`` is a stack: the main graph's nodes, then those of each ``If``
    branch being written.
    """

    def __init__(self, onnx: Any, opset: int, dtype: DTypeLike) -> None:
        self.onnx, self.helper, self.opset = onnx, onnx.helper, opset
        self.dtype = np.dtype(dtype)
        self.elem = self.helper.np_dtype_to_tensor_dtype(self.dtype)
        self.nodes: list[list[Any]] = [[]]
        self.initializers: dict[str, tuple[NDArray[Any], Any]] = {}  # name -> (array, TensorProto)
        self.constants: dict[tuple[str, tuple[int, ...], bytes], str] = {}  # (dtype, shape, bytes)
        self.used: set[str] = set()

    # --- names, nodes, initializers ---
    def fresh(self, hint: str) -> str:
        base = hint.replace(" ", "_")
        name, k = base, 1
        while name in self.used:
            k += 1
            name = f"{base}_{k}"
        self.used.add(name)
        return name

    def op(self, op_type: str, inputs: Sequence[_Input], *, rank: int, path: str = "",
           **attrs: Any) -> _Value:
        """One node; returns its output as a :class:`_Value` of ``rank``."""
        out = self.fresh(f"{path or 'model'}/{op_type}")
        names = [i.name if isinstance(i, _Value) else i for i in inputs]
        self.nodes[-1].append(self.helper.make_node(op_type, names, [out], name=out, **attrs))
        return _Value(out, rank)

    def param(self, path: str, name: str, array: Any) -> str:
        """The initializer of state-dict entry ``path.name``: one per array, shared by its uses."""
        key = f"{path}.{name}" if path else name
        array = np.asarray(getattr(array, "data", array))
        known = self.initializers.get(key)
        if known is not None:
            if known[0] is not array:
                raise ExportError(f"two different arrays are both named {key!r} in the model")
            return key
        self.used.add(key)
        self.initializers[key] = (array, self.onnx.numpy_helper.from_array(
            np.ascontiguousarray(array), key))
        return key

    def const(self, values: ArrayLike, dtype: DTypeLike | None = None) -> str:
        """A constant initializer (one per distinct value)."""
        array = np.asarray(values, dtype=self.dtype if dtype is None else dtype)
        key = (array.dtype.str, array.shape, array.tobytes())
        if key not in self.constants:
            name = self.fresh("const")
            self.initializers[name] = (array, self.onnx.numpy_helper.from_array(array, name))
            self.constants[key] = name
        return self.constants[key]

    def ints(self, values: ArrayLike) -> str:
        return self.const(values, np.int64)

    # --- shape arithmetic (int64) ---
    def shape(self, x: _Value, start: int, end: int | None = None) -> _Value:
        """``Shape(x)[start:end]``, a 1-D int64 value."""
        attrs: dict[str, Any] = {"start": start} if end is None else {"start": start, "end": end}
        return self.op("Shape", [x], rank=1, **attrs)

    def size(self, x: _Value, axis: int) -> _Value:
        """``x.shape[axis]`` as an int64 scalar."""
        return self.op("Gather", [self.op("Shape", [x], rank=1), self.ints(axis)], rank=0)

    def reduce(self, op_type: str, x: _Value, axes: Sequence[int], *, keepdims: bool,
               path: str = "") -> _Value:
        """A Reduce* node over ``axes`` (an attribute before opset 18, an input from 18 on)."""
        rank = x.rank if keepdims else x.rank - len(axes)
        if op_type != "ReduceSum" and self.opset < 18:
            return self.op(op_type, [x], rank=rank, path=path, axes=list(axes),
                           keepdims=int(keepdims))
        return self.op(op_type, [x, self.ints(list(axes))], rank=rank, path=path,
                       keepdims=int(keepdims))

    def reshape(self, x: _Value, parts: Sequence[_Value | Iterable[int]], rank: int,
                path: str = "") -> _Value:
        """``x`` reshaped to the concatenation of ``parts`` (1-D int64 values or lists)."""
        pieces = [p if isinstance(p, _Value) else self.ints(list(p)) for p in parts]
        target = pieces[0] if len(pieces) == 1 else self.op("Concat", pieces, rank=1, axis=0)
        return self.op("Reshape", [x, target], rank=rank, path=path)

    # --- walking the model ---
    def emit(self, module: nn.Module, path: str, x: _Value) -> _Value:
        """The value ``module(x)`` computes; ``path`` names the module in the model."""
        kind, rule = _walk.rule_for(module, path, LAYERS, _EXPORTER)
        if kind == "hook":
            return rule(module, _Ops(self, module, path), x)
        return rule(self, module, path, x)

    # --- shared pieces of several layers ---
    def max_pool(self, x: _Value, kernel_size: IntOrTuple, stride: IntOrTuple | None = None,
                 padding: IntOrTuple = 0, dilation: IntOrTuple = 1, ceil_mode: bool = False,
                 path: str = "") -> _Value:
        k, s, p, d = _walk.window(x.rank - 2, kernel_size, stride, padding, dilation, ceil_mode)
        return self.op("MaxPool", [x], rank=x.rank, path=path, kernel_shape=k, strides=s,
                       pads=p + p, dilations=d, ceil_mode=int(bool(ceil_mode)))

    def nearest(self, x: _Value, sizes: Sequence[_Value | int], path: str = "") -> _Value:
        """Nearest-neighbour resize: output ``i`` of ``m`` reads ``floor(i * n / m)`` (exact ints).

        ``sizes``: one int64 scalar value (or int) per spatial axis.
        """
        for axis, m in enumerate(sizes, start=2):
            m = m if isinstance(m, _Value) else self.const(m, np.int64)
            n = self.size(x, axis)
            steps = self.op("Range", [self.const(0, np.int64), m, self.const(1, np.int64)],
                            rank=1, path=path)
            index = self.op("Div", [self.op("Mul", [steps, n], rank=1, path=path), m], rank=1,
                            path=path)
            x = self.op("Gather", [x, index], rank=x.rank, path=path, axis=axis)
        return x

    def powered(self, x: _Value, p: float, path: str = "") -> _Value:
        """``|x| ** p``, the terms of an Lp norm."""
        if p == 2:
            return self.op("Mul", [x, x], rank=x.rank, path=path)
        magnitude = self.op("Abs", [x], rank=x.rank, path=path)
        if p == 1:
            return magnitude
        return self.op("Pow", [magnitude, self.const(p)], rank=x.rank, path=path)

    def root(self, x: _Value, p: float, path: str = "") -> _Value:
        """``x ** (1 / p)``: an Lp norm from its sum of powers."""
        if p == 1:
            return x
        if p == 2:
            return self.op("Sqrt", [x], rank=x.rank, path=path)
        return self.op("Pow", [x, self.const(1.0 / p)], rank=x.rank, path=path)

    def normalise(self, x: _Value, axes: Sequence[int], eps: float, path: str = "") -> _Value:
        """``(x - mean) / sqrt(var + eps)`` over ``axes`` (biased variance, two passes)."""
        mean = self.reduce("ReduceMean", x, axes, keepdims=True, path=path)
        centred = self.op("Sub", [x, mean], rank=x.rank, path=path)
        square = self.op("Mul", [centred, centred], rank=x.rank, path=path)
        var = self.reduce("ReduceMean", square, axes, keepdims=True, path=path)
        std = self.op("Sqrt", [self.op("Add", [var, self.const(eps)], rank=x.rank, path=path)],
                      rank=x.rank, path=path)
        return self.op("Div", [centred, std], rank=x.rank, path=path)

    def per_channel(self, name: str, rank: int, path: str = "") -> _Input:
        """A ``(C,)`` initializer shaped to broadcast over ``(N, C, *spatial)``."""
        if rank <= 2:
            return name
        axes = [0] + list(range(2, rank))
        return self.op("Unsqueeze", [name, self.ints(axes)], rank=rank, path=path)

    def affine(self, x: _Value, weight: _Input | None, bias: _Input | None,
               path: str = "") -> _Value:
        """``x * weight + bias`` (each may be None), broadcast as given."""
        if weight is not None:
            x = self.op("Mul", [x, weight], rank=x.rank, path=path)
        if bias is not None:
            x = self.op("Add", [x, bias], rank=x.rank, path=path)
        return x

    def channel_affine(self, x: _Value, layer: nn.Module, path: str) -> _Value:
        """A normalisation layer's per-channel ``weight`` and ``bias`` (when it has them)."""
        weight, bias = (None if getattr(layer, n) is None else
                        self.per_channel(self.param(path, n, getattr(layer, n)), x.rank, path)
                        for n in ("weight", "bias"))
        return self.affine(x, weight, bias, path)

    def running_norm(self, x: _Value, layer: nn.BatchNorm | nn.InstanceNorm,
                     path: str) -> _Value:
        """BatchNormalization with the layer's running statistics (evaluation)."""
        channels = layer.running_mean.shape[0]
        scale = (self.param(path, "weight", layer.weight) if layer.weight is not None
                 else self.const(np.ones(channels)))
        shift = (self.param(path, "bias", layer.bias) if layer.bias is not None
                 else self.const(np.zeros(channels)))
        return self.op("BatchNormalization",
                       [x, scale, shift, self.param(path, "running_mean", layer.running_mean),
                        self.param(path, "running_var", layer.running_var)],
                       rank=x.rank, path=path, epsilon=float(layer.eps))


class _Ops:
    """The operations a model's ``_export_forward`` hook writes its forward with (ONNX)."""

    def __init__(self, graph: _Graph, module: nn.Module, path: str) -> None:
        self._graph, self._module, self._path = graph, module, path

    def _at(self, name: str) -> str:
        return f"{self._path}.{name}" if self._path else name

    def child(self, name: str, x: _Value) -> _Value:
        """The submodule ``name`` (dotted, ``"encoders.0"``) applied to ``x``."""
        return self._graph.emit(_walk.submodule(self._module, name), self._at(name), x)

    def add(self, a: _Value, b: _Value) -> _Value:
        return self._graph.op("Add", [a, b], rank=max(a.rank, b.rank), path=self._path)

    def relu(self, x: _Value) -> _Value:
        return self._graph.op("Relu", [x], rank=x.rank, path=self._path)

    def softmax(self, x: _Value, axis: int = 1) -> _Value:
        return self._graph.op("Softmax", [x], rank=x.rank, path=self._path, axis=axis)

    def cat(self, values: Sequence[_Value], axis: int = 1) -> _Value:
        return self._graph.op("Concat", list(values), rank=values[0].rank, path=self._path,
                              axis=axis)

    def max_pool(self, x: _Value, kernel_size: IntOrTuple, *, stride: IntOrTuple | None = None,
                 padding: IntOrTuple = 0, dilation: IntOrTuple = 1,
                 ceil_mode: bool = False) -> _Value:
        return self._graph.max_pool(x, kernel_size, stride, padding, dilation, ceil_mode,
                                    self._path)

    def resize_like(self, x: _Value, like: _Value) -> _Value:
        """``x`` resized (nearest neighbour) to the spatial size of ``like``."""
        g = self._graph
        return g.nearest(x, [g.size(like, a) for a in range(2, like.rank)], self._path)

    def if_spatial_at_least(self, x: _Value, minimum: int,
                            then: Callable[[_Value], _Value]) -> _Value:
        """``then(x)`` where every spatial axis of ``x`` has ``minimum`` samples, else ``x``.

        Written as an ``If`` node, decided for each input at run time.
        """
        g, path = self._graph, self._path
        smallest = g.reduce("ReduceMin", g.shape(x, 2), [0], keepdims=False, path=path)
        condition = g.op("GreaterOrEqual", [smallest, g.const(minimum, np.int64)], rank=0,
                         path=path)
        branches: list[Any] = []
        for branch in (then, None):
            g.nodes.append([])
            out = branch(x) if branch is not None else x
            out = g.op("Identity", [out], rank=out.rank, path=path)  # a branch's own output
            if out.rank != x.rank:
                raise ExportError(f"{_walk.describe(path, self._module)}: both branches of "
                                  f"if_spatial_at_least must keep the rank")
            nodes = g.nodes.pop()
            info = g.helper.make_tensor_value_info(out.name, g.elem, [None] * out.rank)
            branches.append(g.helper.make_graph(nodes, g.fresh(f"{path}/branch"), [], [info]))
        return g.op("If", [condition], rank=x.rank, path=path, then_branch=branches[0],
                    else_branch=branches[1])


# --- the layers ---

def _conv(g: _Graph, layer: nn.Conv, path: str, x: _Value) -> _Value:
    inputs: list[_Input] = [x, g.param(path, "weight", layer.weight)]
    if layer.bias is not None:
        inputs.append(g.param(path, "bias", layer.bias))
    pads = _walk.conv_padding(layer)
    if pads is None:  # "same" with a stride: the padding depends on the input size
        inputs[0] = _same_padded(g, layer, path, x)
        pads = ((0, 0),) * layer.ndim
    return g.op("Conv", inputs, rank=x.rank, path=path, kernel_shape=layer.kernel_size,
                strides=layer.stride, dilations=layer.dilation, group=layer.groups,
                pads=[lo for lo, _ in pads] + [hi for _, hi in pads])


def _same_padded(g: _Graph, layer: nn.Conv, path: str, x: _Value) -> _Value:
    """``x`` zero-padded for "same" output ``ceil(n / s)``, the odd sample after (in the graph)."""
    stride = g.ints(list(layer.stride))
    spans = g.ints(list(shapes.dilated_size(layer.kernel_size, layer.dilation)))
    one = g.ints([1])
    n = g.shape(x, 2)
    out = g.op("Div", [g.op("Sub", [g.op("Add", [n, stride], rank=1), one], rank=1), stride],
               rank=1)
    needed = g.op("Sub", [g.op("Add", [g.op("Mul", [g.op("Sub", [out, one], rank=1), stride],
                                               rank=1), spans], rank=1), n], rank=1)
    total = g.op("Max", [needed, g.ints([0] * layer.ndim)], rank=1)
    lo = g.op("Div", [total, g.ints([2])], rank=1)
    hi = g.op("Sub", [total, lo], rank=1)
    zeros = g.ints([0, 0])
    pads = g.op("Concat", [zeros, lo, zeros, hi], rank=1, axis=0)
    return g.op("Pad", [x, pads], rank=x.rank, path=path)


def _conv_transpose(g: _Graph, layer: nn.ConvTranspose, path: str, x: _Value) -> _Value:
    pads, extra = _walk.conv_transpose_padding(layer)
    inputs: list[_Input] = [x, g.param(path, "weight", layer.weight)]
    if layer.bias is not None:
        inputs.append(g.param(path, "bias", layer.bias))
    return g.op("ConvTranspose", inputs, rank=x.rank, path=path,
                kernel_shape=layer.kernel_size, strides=layer.stride, dilations=layer.dilation,
                group=layer.groups, pads=[lo for lo, _ in pads] + [hi for _, hi in pads],
                output_padding=extra)


def _max_pool(g: _Graph, layer: nn.MaxPool, path: str, x: _Value) -> _Value:
    return g.max_pool(x, layer.kernel_size, layer.stride, layer.padding, layer.dilation,
                      layer.ceil_mode, path)


def _avg_pool(g: _Graph, layer: nn.AvgPool, path: str, x: _Value) -> _Value:
    k, s, p, _ = _walk.window(x.rank - 2, layer.kernel_size, layer.stride, layer.padding)
    return g.op("AveragePool", [x], rank=x.rank, path=path, kernel_shape=k, strides=s,
                pads=p + p, ceil_mode=int(bool(layer.ceil_mode)),
                count_include_pad=int(bool(layer.count_include_pad)))


def _lp_pool(g: _Graph, layer: nn.LPPool, path: str, x: _Value) -> _Value:
    k, s, _, _ = _walk.window(x.rank - 2, layer.kernel_size, layer.stride,
                              ceil_mode=layer.ceil_mode)
    extra = _walk.lp_ceil_padding(k, s) if layer.ceil_mode else (0,) * len(k)
    # window sums of |x|^p: the mean over full windows (zeros added after) times the window size
    mean = g.op("AveragePool", [g.powered(x, layer.p, path)], rank=x.rank, path=path,
                kernel_shape=k, strides=s, pads=[0] * len(k) + list(extra), count_include_pad=1)
    total = g.op("Mul", [mean, g.const(float(np.prod(k)))], rank=x.rank, path=path)
    return g.root(total, layer.p, path)


def _gaussian_pool(g: _Graph, layer: nn.GaussianPool, path: str, x: _Value) -> _Value:
    nd = x.rank - 2
    k, s, p, _ = _walk.window(nd, layer.kernel_size, layer.stride, layer.padding)
    weights = g.const(gaussian_pool_weights(k, layer.sigma).reshape((1, 1) + k))
    # every channel alone: (N, C, *spatial) -> (N * C, 1, *spatial), one fixed kernel
    planes = g.reshape(x, [[-1, 1], g.shape(x, 2)], x.rank, path)
    pooled = g.op("Conv", [planes, weights], rank=x.rank, path=path, kernel_shape=k, strides=s,
                  pads=p + p)
    return g.reshape(pooled, [g.shape(x, 0, 2), g.shape(pooled, 2)], x.rank, path)


_REDUCE = {"avg": "ReduceMean", "max": "ReduceMax", "lp": "ReduceSum"}


def _global_pool(g: _Graph, layer: nn.GlobalPool, path: str, x: _Value) -> _Value:
    axes = list(range(2, x.rank))
    if layer.kind != "lp":
        return g.reduce(_REDUCE[layer.kind], x, axes, keepdims=False, path=path)
    total = g.reduce("ReduceSum", g.powered(x, layer.p, path), axes, keepdims=False, path=path)
    return g.root(total, layer.p, path)


def _adaptive_pool(g: _Graph, layer: nn.AdaptivePool, path: str, x: _Value) -> _Value:
    """Output ``i`` of ``m`` on an axis pools ``[floor(i n / m), ceil((i + 1) n / m))``.

    Separable: each axis in turn, a ``Slice`` per window (bounds from ``Shape``), reduced,
    concatenated.
    """
    reduce = _REDUCE[layer.kind]
    h = g.powered(x, layer.p, path) if layer.kind == "lp" else x
    for axis, m in enumerate(_walk.adaptive_sizes(layer.output_size, x.rank - 2), start=2):
        if m is None:  # this axis keeps its size
            continue
        if m == 1:
            h = g.reduce(reduce, h, [axis], keepdims=True, path=path)
            continue
        n = g.shape(h, axis, axis + 1)
        windows = []
        for i in range(m):
            start = g.op("Div", [g.op("Mul", [n, g.ints([i])], rank=1), g.ints([m])], rank=1)
            end = g.op("Div", [g.op("Add", [g.op("Mul", [n, g.ints([i + 1])], rank=1),
                                            g.ints([m - 1])], rank=1), g.ints([m])], rank=1)
            piece = g.op("Slice", [h, start, end, g.ints([axis])], rank=h.rank, path=path)
            windows.append(g.reduce(reduce, piece, [axis], keepdims=True, path=path))
        h = g.op("Concat", windows, rank=h.rank, path=path, axis=axis)
    return g.root(h, layer.p, path) if layer.kind == "lp" else h


def _maxout(g: _Graph, layer: nn.Maxout, path: str, x: _Value) -> _Value:
    groups = g.reshape(x, [g.shape(x, 0, 1), [-1, layer.pieces], g.shape(x, 2)], x.rank + 1,
                       path)
    return g.reduce("ReduceMax", groups, [2], keepdims=False, path=path)


def _batch_norm(g: _Graph, layer: nn.BatchNorm, path: str, x: _Value) -> _Value:
    if layer.track_running_stats:
        return g.running_norm(x, layer, path)
    # no running statistics: evaluation takes the batch's, as sigconv does
    axes = [0] + list(range(2, x.rank))
    return g.channel_affine(g.normalise(x, axes, layer.eps, path), layer, path)


def _instance_norm(g: _Graph, layer: nn.InstanceNorm, path: str, x: _Value) -> _Value:
    if layer.track_running_stats:
        return g.running_norm(x, layer, path)
    return g.channel_affine(g.normalise(x, list(range(2, x.rank)), layer.eps, path), layer, path)


def _group_norm(g: _Graph, layer: nn.GroupNorm, path: str, x: _Value) -> _Value:
    groups = g.reshape(x, [[0, layer.num_groups, -1]], 3, path)
    normed = g.normalise(groups, [2], layer.eps, path)
    return g.channel_affine(g.reshape(normed, [g.op("Shape", [x], rank=1)], x.rank, path),
                            layer, path)


def _layer_norm(g: _Graph, layer: nn.LayerNorm, path: str, x: _Value) -> _Value:
    axes = list(range(x.rank - len(layer.normalized_shape), x.rank))
    weight, bias = (None if getattr(layer, n) is None else g.param(path, n, getattr(layer, n))
                    for n in ("weight", "bias"))
    return g.affine(g.normalise(x, axes, layer.eps, path), weight, bias, path)


def _gelu(g: _Graph, layer: nn.GELU, path: str, x: _Value) -> _Value:
    def op(name: str, *inputs: _Input) -> _Value:
        return g.op(name, list(inputs), rank=x.rank, path=path)

    if layer.approximate == "tanh":  # 0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3)))
        cube = op("Mul", op("Mul", x, x), x)
        inner = op("Mul", op("Add", x, op("Mul", cube, g.const(0.044715))),
                   g.const(np.sqrt(2.0 / np.pi)))
        return op("Mul", op("Mul", x, g.const(0.5)), op("Add", op("Tanh", inner), g.const(1.0)))
    cdf = op("Mul", op("Add", op("Erf", op("Mul", x, g.const(np.sqrt(0.5)))), g.const(1.0)),
             g.const(0.5))
    return op("Mul", x, cdf)


def _linear(g: _Graph, layer: nn.Linear, path: str, x: _Value) -> _Value:
    weight = g.param(path, "weight", layer.weight)
    bias = None if layer.bias is None else g.param(path, "bias", layer.bias)
    if x.rank == 2:
        inputs: list[_Input] = [x, weight] if bias is None else [x, weight, bias]
        return g.op("Gemm", inputs, rank=2, path=path, transB=1)
    product = g.op("MatMul", [x, g.op("Transpose", [weight], rank=2, path=path, perm=[1, 0])],
                   rank=x.rank, path=path)
    return g.affine(product, None, bias, path)


def _flatten(g: _Graph, layer: nn.Flatten, path: str, x: _Value) -> _Value:
    kept = len(range(x.rank)[:layer.start_axis])  # x.shape[:start_axis] + (-1,), as sigconv
    if kept == 1:
        return g.op("Flatten", [x], rank=2, path=path, axis=1)
    return g.reshape(x, [g.shape(x, 0, kept), [-1]] if kept else [[-1]], kept + 1, path)


def _upsample(g: _Graph, layer: nn.Upsample, path: str, x: _Value) -> _Value:
    nd = x.rank - 2
    if layer.size is not None:
        return g.nearest(x, as_tuple(layer.size, nd, "size", minimum=1), path)
    factors = as_tuple(layer.scale_factor, nd, "scale_factor", minimum=1)
    return g.nearest(x, [g.op("Mul", [g.size(x, a), g.const(f, np.int64)], rank=0, path=path)
                         for a, f in enumerate(factors, start=2)], path)


def _sequential(g: _Graph, layer: nn.Sequential, path: str, x: _Value) -> _Value:
    for name, child in layer._modules.items():
        where = f"{path}.{name}" if path else name
        x = g.emit(_walk.present(child, where, _EXPORTER), where, x)
    return x


def _elementwise(op_type: str,
                 **attrs_of: str) -> Callable[[_Graph, nn.Module, str, _Value], _Value]:
    """The rule of a one-node elementwise layer (``attrs_of``: attribute -> layer option)."""
    def rule(g: _Graph, layer: nn.Module, path: str, x: _Value) -> _Value:
        attrs = {k: float(getattr(layer, v)) for k, v in attrs_of.items()}
        return g.op(op_type, [x], rank=x.rank, path=path, **attrs)
    return rule


def _silu(g: _Graph, layer: nn.SiLU, path: str, x: _Value) -> _Value:
    return g.op("Mul", [x, g.op("Sigmoid", [x], rank=x.rank, path=path)], rank=x.rank, path=path)


def _softmax(g: _Graph, layer: nn.Softmax, path: str, x: _Value) -> _Value:
    return g.op("Softmax", [x], rank=x.rank, path=path, axis=layer.axis)


def _unchanged(g: _Graph, layer: nn.Module, path: str, x: _Value) -> _Value:
    return x


#: sigconv layer class -> rule(graph, layer, path, x) -> value.
LAYERS: dict[type[nn.Module], Callable[[_Graph, Any, str, _Value], _Value]] = {
    nn.Conv: _conv, nn.ConvTranspose: _conv_transpose,
    nn.MaxPool: _max_pool, nn.AvgPool: _avg_pool, nn.LPPool: _lp_pool,
    nn.GaussianPool: _gaussian_pool, nn.GlobalPool: _global_pool,
    nn.AdaptivePool: _adaptive_pool, nn.Maxout: _maxout,
    nn.BatchNorm: _batch_norm, nn.InstanceNorm: _instance_norm, nn.GroupNorm: _group_norm,
    nn.LayerNorm: _layer_norm,
    nn.ReLU: _elementwise("Relu"), nn.LeakyReLU: _elementwise("LeakyRelu", alpha="negative_slope"),
    nn.Tanh: _elementwise("Tanh"), nn.Sigmoid: _elementwise("Sigmoid"), nn.GELU: _gelu,
    nn.SiLU: _silu, nn.Softmax: _softmax,
    nn.Linear: _linear, nn.Flatten: _flatten, nn.Upsample: _upsample,
    nn.Dropout: _unchanged, nn.Identity: _unchanged,
    nn.Sequential: _sequential,
}


# --- to_onnx ---

def _check_path(path: PathLike | bytes) -> str:
    try:
        path = os.fspath(path)
    except TypeError:
        raise ArgumentError(f"path must be a file path (str or os.PathLike), got "
                            f"{type(path).__name__}") from None
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise ArgumentError(f"cannot write {path!r}: folder {folder!r} does not exist")
    if os.path.isdir(path):
        raise ArgumentError(f"cannot write {path!r}: it is a folder; give a file name such "
                            f"as model.onnx")
    return path


def _check_opset(opset: int | None, onnx: Any) -> int:
    newest = onnx.defs.onnx_opset_version()
    if opset is None:
        return DEFAULT_OPSET
    opset = check_int(opset, "opset", minimum=MIN_OPSET, maximum=newest)
    return opset


def _check_example(example: object, dtype: np.dtype[Any]) -> NDArray[Any]:
    """The example as a dense ``(N, C, *spatial)`` array of ``dtype``."""
    if isinstance(example, Ragged) or (isinstance(example, Tensor) and example.ragged):
        raise ArgumentError("example must be a dense (N, C, *spatial) array, got a Ragged "
                            "batch: pass one item as a batch of one (item[None])")
    example = example.data if isinstance(example, Tensor) else example
    if not isinstance(example, (np.ndarray, list, tuple)) and not hasattr(example, "__array__"):
        raise ArgumentError(f"example must be an array (N, C, *spatial), got "
                            f"{type(example).__name__}")
    array = np.asarray(example)
    check_batch(array, "example")
    if array.shape[0] < 1 or array.shape[1] < 1:
        raise ShapeError(f"example needs at least one item and one channel, got shape "
                         f"{array.shape}")
    check_spatial_nonempty(array.shape, "example")
    return as_float_array(array, dtype, "example")


def _axes(dynamic_axes: Mapping[str, Any] | None, rank: int) -> dict[str, dict[int, str]]:
    """``dynamic_axes`` (torch.onnx.export's convention) as ``{name: {axis: dim name}}``."""
    named: dict[str, dict[int, str]]
    if dynamic_axes is None:
        named = {INPUT: {0: "batch"}, OUTPUT: {0: "batch"}}
        if rank == 3:  # a waveform or sequence model takes any length
            named[INPUT][2] = "length"
        return named
    if not isinstance(dynamic_axes, Mapping):
        raise ArgumentError(f"dynamic_axes must be a mapping such as {{'input': {{0: 'batch'}}}}, "
                            f"got {type(dynamic_axes).__name__}")
    named = {}
    for key, axes in dynamic_axes.items():
        if key not in (INPUT, OUTPUT):
            raise ArgumentError(f"dynamic_axes names {key!r}; the graph's tensors are "
                                f"{INPUT!r} and {OUTPUT!r}")
        if isinstance(axes, Mapping):
            pairs = list(axes.items())
        elif isinstance(axes, (list, tuple)):
            pairs = [(a, f"{key}_dynamic_axes_{i + 1}") for i, a in enumerate(axes)]
        else:
            raise ArgumentError(f"dynamic_axes[{key!r}] must map axes to names or list axes, "
                                f"got {axes!r}")
        named[key] = {}
        for axis, name in pairs:
            axis = check_int(axis, f"dynamic_axes[{key!r}] axis", minimum=0)
            if not isinstance(name, str) or not name:
                raise ArgumentError(f"dynamic_axes[{key!r}][{axis}] must be a non-empty name, "
                                    f"got {name!r}")
            if key == INPUT and axis >= rank:
                raise ArgumentError(f"dynamic_axes[{key!r}] names axis {axis}, but the input "
                                    f"has {rank} axes (N, C, *spatial)")
            if key == INPUT and axis == 1:
                raise ArgumentError(f"dynamic_axes[{key!r}] names axis 1, the channels, which "
                                    f"the model fixes")
            named[key][axis] = name
    return named


def _output_dims(onnx: Any, proto: Any, reference: NDArray[Any], axes: dict[str, dict[int, str]],
                 given_output: bool) -> list[int | str | None]:
    """The output's dims: named dynamic ones, static ones, and None where unknown."""
    spatial_dynamic = any(a >= 2 for a in axes.get(INPUT, {}))
    inferred: list[int | None] = [None] * reference.ndim
    if spatial_dynamic:
        try:
            typed = onnx.shape_inference.infer_shapes(proto).graph.output[0].type.tensor_type
            inferred = [d.dim_value if d.HasField("dim_value") else None
                        for d in typed.shape.dim]
        except Exception:  # noqa: BLE001 - inference is only a refinement of the output type
            pass
    named = axes.get(OUTPUT, {})
    beyond = sorted(a for a in named if a >= reference.ndim)
    if beyond:
        raise ArgumentError(f"dynamic_axes[{OUTPUT!r}] names axes {beyond}, but the output has "
                            f"{reference.ndim} axes (shape {reference.shape} for the example)")
    dims: list[int | str | None] = []
    for axis, size in enumerate(reference.shape):
        if axis in named:
            dims.append(named[axis])
        elif axis == 0 and not given_output and 0 in axes.get(INPUT, {}):
            dims.append(axes[INPUT][0])  # the batch axis flows through every sigconv model
        elif not spatial_dynamic or (axis < len(inferred) and inferred[axis] == size):
            dims.append(int(size))
        else:
            dims.append(None)
    return dims


def to_onnx(model: nn.Module, example: ArrayLike | Tensor, path: PathLike, *,
            dynamic_axes: Mapping[str, Mapping[int, str] | Sequence[int]] | None = None,
            opset: int | None = None) -> Any:
    """Write ``model`` as an ONNX file, for onnxruntime, OpenVINO and browsers.

    The model is exported in evaluation mode (BatchNorm with its running
    statistics, Dropout as the identity); its own modes are restored
    afterwards.  The file is written atomically.

    Parameters
    ----------
    model : sigconv.nn.Module
        Built from the layers and models :mod:`sigconv.export` lists.
    example : array, shape (N, C, *spatial)
        An input the model takes: it fixes the rank and the channels (and
        the sizes of the axes that are not dynamic).  The model runs on it
        once, which checks that it fits.
    path : str or path-like
        The file to write (its folder must exist).
    dynamic_axes : mapping, optional
        ``torch.onnx.export``'s convention: ``{"input": {0: "batch", 2:
        "length"}, "output": {0: "batch"}}`` (or lists of axes).  Default:
        the batch axis, and for 1-D models the length axis too.  A mapping
        given replaces the default (``{}``: every axis static).
    opset : int, optional
        ONNX opset, from 17 (the default) to the newest the installed onnx knows.

    Returns
    -------
    onnx.ModelProto
        The model written, checked by ``onnx.checker.check_model``.  Its input
        is named ``"input"``, its output ``"output"``, in the model's dtype (a
        model without parameters: float64 for a float64 example, else float32).

    Raises
    ------
    ExportError
        For a layer ONNX cannot express, naming its path (``features.3 (LocalConv)``).
    ShapeError, ArgumentError
        For an example that does not fit the model, bad options or path.
    MissingDependencyError
        When the ``onnx`` package is missing (``pip install 'sigconv[onnx]'``).
    """
    onnx = require("onnx", "onnx", "sigconv.export.to_onnx")
    model = _walk.check_module(model, "to_onnx")
    path = _check_path(path)
    opset = _check_opset(opset, onnx)
    dtype = _walk.float_dtype_of(model) or np.dtype(  # no parameters: float64 stays float64
        np.float64 if getattr(example, "dtype", None) == np.float64 else np.float32)
    example = _check_example(example, dtype)
    axes = _axes(dynamic_axes, example.ndim)
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        graph = _Graph(onnx, opset, dtype)
        out = graph.emit(model, "", _Value(INPUT, example.ndim))  # refuses a layer by its path
        try:
            with no_grad():
                reference = model(example)
        except SigconvError as exc:
            raise type(exc)(f"the example of shape {example.shape} does not fit the model: "
                            f"{exc}") from None
        reference = np.asarray(getattr(reference, "data", reference))
    finally:
        for module, training in modes:
            object.__setattr__(module, "training", training)
    proto = _model_proto(onnx, graph, model, example, reference, out, axes,
                         OUTPUT in (dynamic_axes or {}))
    atomic_write_bytes(path, proto.SerializeToString())
    return proto


def _model_proto(onnx: Any, graph: _Graph, model: nn.Module, example: NDArray[Any],
                 reference: NDArray[Any], out: _Value, axes: dict[str, dict[int, str]],
                 given_output: bool) -> Any:
    """The checked ModelProto of the written graph."""
    helper = onnx.helper
    if out.rank != reference.ndim:
        raise ExportError(f"internal error: the graph's output has rank {out.rank} but the "
                          f"model's has {reference.ndim}")
    producers = {o for node in graph.nodes[0] for o in node.output}
    consumed = {i for node in graph.nodes[0] for i in node.input}
    if out.name in producers and out.name not in consumed:  # rename the last output
        for node in graph.nodes[0]:
            node.output[:] = [OUTPUT if o == out.name else o for o in node.output]
    else:
        graph.nodes[0].append(helper.make_node("Identity", [out.name], [OUTPUT], name=OUTPUT))
    in_dims = [axes.get(INPUT, {}).get(a, int(n)) for a, n in enumerate(example.shape)]
    inputs = [helper.make_tensor_value_info(INPUT, graph.elem, in_dims)]
    outputs = [helper.make_tensor_value_info(OUTPUT, graph.elem, [None] * reference.ndim)]
    body = helper.make_graph(graph.nodes[0], type(model).__name__, inputs, outputs,
                             initializer=[t for _, t in graph.initializers.values()])
    opsets = [helper.make_opsetid("", graph.opset)]
    proto = helper.make_model(body, opset_imports=opsets, producer_name="sigconv",
                              producer_version=__version__,
                              ir_version=helper.find_min_ir_version_for(opsets))
    dims = _output_dims(onnx, proto, reference, axes, given_output)
    proto.graph.output[0].CopyFrom(helper.make_tensor_value_info(OUTPUT, graph.elem, dims))
    try:
        onnx.checker.check_model(proto, full_check=True)
    except onnx.checker.ValidationError as exc:
        raise ExportError(f"internal error: the ONNX graph of {type(model).__name__} does not "
                          f"pass onnx.checker: {exc}") from None
    return proto
