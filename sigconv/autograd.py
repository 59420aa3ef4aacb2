"""Define-by-run automatic differentiation on numpy arrays: the tape.

How it works
------------
A :class:`Tensor` holds a numpy array (``.data``), a flag ``requires_grad``
and, after :meth:`Tensor.backward`, its gradient ``.grad`` (a numpy array of
the same shape).  Every differentiable operation is a :class:`Function`
subclass with ``forward`` (numpy arrays in, one numpy array out) and
``backward`` (the gradient of the output in, one gradient per positional
input out) written side by side.  ``Function.apply`` runs ``forward`` and,
when gradients are enabled and an input requires them, records the Function
instance on the output tensor; that instance keeps its inputs, so the
records form the graph (the "tape") of the computation that was actually
run.  ``backward`` sorts the graph topologically, visits each Function once,
in reverse order, with the sum of the gradients that reached its output, and
adds the gradients of leaf tensors into their ``.grad`` (gradients
accumulate across calls until reset to ``None``).

Ragged batches: ``.data`` may also be a :class:`sigconv.Ragged` (items of
different sizes stored back to back), and then its gradient is a Ragged of
the same item shapes.  A Function says what it does with one through its
class attribute ``ragged``: ``"elementwise"`` Functions (arithmetic with
scalars or with a Ragged of the same layout, activations, a full sum) run
on the flat buffer ``Ragged.data`` and the tape wraps their results back;
``"native"`` Functions (convolution, pooling, batch normalisation) take and
return Ragged objects themselves; any other Function refuses one.  A Function learns from
``self.needs_input_grad`` which input gradients are wanted and computes only
those; the tape checks that every gradient has its input's shape.

Layers of sigconv build on this file and on :mod:`sigconv.nn.functional`,
which wraps every op of :mod:`sigconv.functional` with its kernels' own
gradients.  :func:`gradcheck` compares any of them with finite differences.
"""
import contextlib
import numbers
import threading

import numpy as np

from .errors import ArgumentError, DTypeError, ShapeError, SigconvError
from .ragged import Ragged

__all__ = ["Tensor", "Function", "no_grad", "enable_grad", "is_grad_enabled", "gradcheck",
           "GradcheckError", "as_tensor", "cat"]

_state = threading.local()


def is_grad_enabled():
    """Whether operations are currently recorded for :meth:`Tensor.backward`."""
    return getattr(_state, "enabled", True)


class _GradMode(contextlib.ContextDecorator):
    _mode = True

    def __enter__(self):
        self._previous = is_grad_enabled()
        _state.enabled = self._mode

    def __exit__(self, *exc):
        _state.enabled = self._previous
        return False


class no_grad(_GradMode):
    """Context manager (or decorator) that records nothing: for evaluation and updates."""
    _mode = False


class enable_grad(_GradMode):
    """Context manager (or decorator) that turns recording back on inside :class:`no_grad`."""
    _mode = True


# ---------------------------------------------------------------------------
# Tensor
# ---------------------------------------------------------------------------

class Tensor:
    """A numpy array that remembers how it was computed.

    Parameters
    ----------
    data : array_like or Ragged
        Stored as a numpy array (not copied when already one), or as the
        :class:`~sigconv.Ragged` batch given.
    requires_grad : bool
        Gradients are computed for this tensor (float dtypes only).
    dtype : numpy dtype, optional
    """

    __array_ufunc__ = None  # numpy defers to the reflected operators below

    def __init__(self, data, *, requires_grad=False, dtype=None):
        if isinstance(data, Tensor):
            data = data.data
        if isinstance(data, Ragged):
            if dtype is not None and np.dtype(dtype) != data.dtype:
                data = data.like(data.data.astype(dtype))
        else:
            data = np.asarray(data, dtype=dtype)
        if requires_grad and data.dtype.kind != "f":
            raise DTypeError(f"only float tensors can require gradients, got dtype {data.dtype}")
        self.data = data
        self.grad = None
        self.requires_grad = bool(requires_grad)
        self._ctx = None  # the Function that produced this tensor, if recorded

    # --- array-like properties ---
    dtype = property(lambda self: self.data.dtype)
    size = property(lambda self: _values(self.data).size)  # elements (all items')
    is_leaf = property(lambda self: self._ctx is None)
    ragged = property(lambda self: isinstance(self.data, Ragged))

    @property
    def shape(self):
        """The array's shape; ``(N, C, None, ...)`` for a Ragged (one None per spatial axis)."""
        if isinstance(self.data, Ragged):
            return (len(self.data), self.data.channels) + (None,) * self.data.ndim
        return self.data.shape

    @property
    def ndim(self):
        """Number of axes, counting ``N`` and ``C`` for a Ragged too."""
        return len(self.shape)

    def __len__(self):
        return len(self.data)

    def __repr__(self):
        flag = ", requires_grad=True" if self.requires_grad else ""
        if self.ragged:
            return f"Tensor({self.data!r}{flag})"
        return f"Tensor({np.array2string(self.data, threshold=20)}, dtype={self.dtype}{flag})"

    def numpy(self):
        """The data array (not a copy)."""
        return self.data

    def item(self):
        return self.data.item()

    def detach(self):
        """The same data, cut from the graph."""
        return Tensor(self.data)

    def astype(self, dtype):
        """A copy in ``dtype``, differentiable."""
        return _Cast.apply(self, dtype=np.dtype(dtype))

    # --- backward ---
    def backward(self, grad=None):
        """Accumulate d(self)/d(leaf) into ``.grad`` of every leaf that requires grad.

        ``grad`` (the gradient of some scalar with respect to this tensor)
        may be omitted for a tensor with one element.
        """
        if not self.requires_grad:
            raise ArgumentError("backward() called on a tensor that does not require grad: no "
                                "input of its computation had requires_grad=True (or it ran "
                                "under no_grad())")
        if grad is None:
            if self.size != 1 or self.ragged:
                raise ShapeError(f"backward() without grad needs a one-element tensor, this one "
                                 f"has shape {self.shape}; pass grad= of that shape")
            grad = np.ones_like(self.data)
        else:
            grad = grad.data if isinstance(grad, Tensor) else grad
            if not isinstance(grad, Ragged):
                grad = np.asarray(grad, dtype=self.dtype)
            grad = _checked_grad(grad, self, "grad has shape {shape}, the tensor has shape "
                                             "{expected}")
        grads = {id(self): grad}
        for tensor in _topological_order(self):
            g = grads.pop(id(tensor), None)
            if g is None:
                continue
            fn = tensor._ctx
            if fn is None:  # a leaf: accumulate
                tensor.grad = _copy(g) if tensor.grad is None else _added(tensor.grad, g)
                continue
            input_grads = fn._backward(g)
            if not isinstance(input_grads, tuple):
                input_grads = (input_grads,)
            if len(input_grads) != len(fn.inputs):
                raise SigconvError(f"{type(fn).__name__}.backward returned {len(input_grads)} "
                                   f"gradients for {len(fn.inputs)} inputs")
            for i, (parent, need, pg) in enumerate(zip(fn.inputs, fn.needs_input_grad,
                                                       input_grads)):
                if not need or pg is None:
                    continue
                pg = _checked_grad(pg, parent, f"{type(fn).__name__}.backward gave a gradient "
                                       f"of shape {{shape}} for input {i} of shape {{expected}}")
                key = id(parent)
                grads[key] = pg if key not in grads else _added(grads[key], pg)

    # --- operators ---
    def __add__(self, other): return Add.apply(self, other)
    def __radd__(self, other): return Add.apply(other, self)
    def __sub__(self, other): return Sub.apply(self, other)
    def __rsub__(self, other): return Sub.apply(other, self)
    def __mul__(self, other): return Mul.apply(self, other)
    def __rmul__(self, other): return Mul.apply(other, self)
    def __truediv__(self, other): return Div.apply(self, other)
    def __rtruediv__(self, other): return Div.apply(other, self)
    def __neg__(self): return Neg.apply(self)
    def __matmul__(self, other): return MatMul.apply(self, other)
    def __rmatmul__(self, other): return MatMul.apply(other, self)
    def __getitem__(self, index): return GetItem.apply(self, index=index)

    def __pow__(self, exponent):
        if not isinstance(exponent, numbers.Real):
            raise ArgumentError(f"Tensor ** takes a real number exponent, got {exponent!r}")
        return Pow.apply(self, exponent=float(exponent))

    def sum(self, axis=None, keepdims=False):
        if self.ragged:  # the sum of every element, or per channel over items and positions
            if axis is None and not keepdims:
                return Sum.apply(self, axis=(0,), keepdims=False)
            if not keepdims and _axes(axis, self.ndim) == _axes((0,) + tuple(range(2, self.ndim)),
                                                                 self.ndim):
                return _ChannelSum.apply(self)
            raise ArgumentError(f"a Ragged tensor sums over all of its elements (axis=None) or "
                                f"over all but the channel axis (axis=(0, 2, ...)), without "
                                f"keepdims; got axis={axis!r}, keepdims={keepdims}; pool it "
                                f"(GlobalPool) for per-item sums")
        return Sum.apply(self, axis=_axes(axis, self.ndim), keepdims=keepdims)

    def mean(self, axis=None, keepdims=False):
        if self.ragged:  # all elements (axis=None), or each channel's elements of all items
            count = self.size if axis is None else self.size // self.data.channels
            return self.sum(axis, keepdims) * (1.0 / max(count, 1))
        axes = _axes(axis, self.ndim)
        count = int(np.prod([self.shape[a] for a in axes]))
        return self.sum(axes, keepdims) * (1.0 / max(count, 1))

    def reshape(self, *shape):
        shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
        return Reshape.apply(self, shape=tuple(shape))

    def transpose(self, *axes):
        axes = axes[0] if len(axes) == 1 and isinstance(axes[0], (tuple, list)) else axes
        return Transpose.apply(self, axes=tuple(axes) if axes else None)

    T = property(lambda self: self.transpose())

    def exp(self): return Exp.apply(self)
    def log(self): return Log.apply(self)
    def relu(self): return ReLU.apply(self)
    def tanh(self): return Tanh.apply(self)
    def sigmoid(self): return Sigmoid.apply(self)
    def log_softmax(self, axis=1): return LogSoftmax.apply(self, axis=axis)
    def softmax(self, axis=1): return self.log_softmax(axis).exp()


def as_tensor(value):
    """``value`` if it is a Tensor, else a constant Tensor wrapping it."""
    return value if isinstance(value, Tensor) else Tensor(value)


def _axes(axis, ndim):
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, numbers.Integral) else tuple(axis)
    return tuple(sorted(int(a) % ndim for a in axes))


def _same_layout(a, b):
    """Whether two Ragged batches have the same channels and item shapes."""
    return a.channels == b.channels and (a.shapes is b.shapes or (
        a.shapes.shape == b.shapes.shape and np.array_equal(a.shapes, b.shapes)))


def _checked_grad(grad, tensor, what):
    """``grad`` in ``tensor``'s dtype, after checking it has ``tensor``'s shape (or Ragged layout).

    ``what`` is the error message, with ``{shape}`` and ``{expected}`` fields.
    """
    if isinstance(tensor.data, Ragged):
        if not isinstance(grad, Ragged) or not _same_layout(grad, tensor.data):
            raise ShapeError(what.format(shape=grad if isinstance(grad, Ragged) else
                                         np.shape(grad), expected=tensor.data))
        return grad if grad.dtype == tensor.dtype else grad.like(grad.data.astype(tensor.dtype))
    if isinstance(grad, Ragged):
        raise ShapeError(what.format(shape=grad, expected=tensor.shape))
    grad = np.asarray(grad)
    if grad.shape != tensor.shape:
        raise ShapeError(what.format(shape=grad.shape, expected=tensor.shape))
    return grad if grad.dtype == tensor.dtype else grad.astype(tensor.dtype)


def _copy(g):
    return g.like(g.data.copy()) if isinstance(g, Ragged) else g.copy()


def _added(a, b):
    return a.like(a.data + b.data) if isinstance(a, Ragged) else a + b


def _topological_order(root):
    """Tensors of the graph below ``root`` that require grad, each after every consumer."""
    order, seen, stack = [], set(), [(root, False)]
    while stack:
        tensor, expanded = stack.pop()
        if expanded:
            order.append(tensor)
            continue
        if id(tensor) in seen:
            continue
        seen.add(id(tensor))
        stack.append((tensor, True))
        if tensor._ctx is not None:
            stack.extend((p, False) for p in tensor._ctx.inputs
                         if p is not None and p.requires_grad and id(p) not in seen)
    return order[::-1]


# ---------------------------------------------------------------------------
# Function
# ---------------------------------------------------------------------------

class Function:
    """One differentiable operation: subclass and write ``forward`` and ``backward``.

    ``forward(self, *arrays, **options)`` receives the positional inputs as
    numpy arrays (``None`` stays ``None``) and the keyword options as given;
    it returns one array and may save on ``self`` what ``backward`` needs,
    consulting ``self.needs_input_grad`` (one bool per positional input) to
    save only that.  ``backward(self, grad_output)`` returns one gradient per
    positional input, ``None`` for those not needed.  Call ``apply``.

    ``ragged`` says how a :class:`~sigconv.Ragged` input is handled: ``None``
    (refused with an error), ``"elementwise"`` (``forward`` and ``backward``
    see the flat buffers; every other input must be a scalar or a Ragged of
    the same layout) or ``"native"`` (they see the Ragged objects).
    """

    needs_input_grad = ()
    inputs = ()
    ragged = None
    layout = None  # the Ragged whose flat buffer an elementwise Function saw

    def forward(self, *arrays, **options):
        raise NotImplementedError

    def backward(self, grad_output):
        raise NotImplementedError

    @classmethod
    def apply(cls, *inputs, **options):
        """Run ``forward`` on the inputs' data; record the step when a gradient is needed."""
        # Python numbers are weakly typed, as in numpy: they take the tensors' float dtype
        like = next((x.dtype for x in inputs if isinstance(x, Tensor) and x.dtype.kind == "f"),
                    None)
        tensors = tuple(None if x is None else
                        Tensor(x, dtype=like) if isinstance(x, numbers.Number) and like else
                        as_tensor(x) for x in inputs)
        recording = is_grad_enabled()
        fn = cls()
        fn.needs_input_grad = tuple(recording and t is not None and t.requires_grad
                                    for t in tensors)
        arrays = [None if t is None else t.data for t in tensors]
        if any(isinstance(a, Ragged) for a in arrays):
            arrays = fn._ragged_inputs(arrays)
        out = fn.forward(*arrays, **options)
        if fn.layout is not None and np.shape(out) == fn.layout.data.shape:  # elementwise
            out = fn.layout.like(out)
        result = Tensor(out)
        if any(fn.needs_input_grad):
            result.requires_grad = True
            fn.inputs = tensors
            result._ctx = fn
        return result


    def _ragged_inputs(self, arrays):
        """Check Ragged inputs against ``ragged``; flat buffers for an elementwise Function."""
        name = type(self).__name__.lstrip("_")
        if self.ragged == "native":
            return arrays
        if self.ragged != "elementwise":
            raise ArgumentError(f"{name} does not take Ragged batches; pool them to a dense "
                                f"(N, C) array first (GlobalPool or AdaptivePool), or use "
                                f"Ragged.to_padded()")
        layout = next(a for a in arrays if isinstance(a, Ragged))
        for i, a in enumerate(arrays):
            if isinstance(a, Ragged) and not _same_layout(a, layout):
                raise ShapeError(f"{name}: input {i} is {a!r}, which does not match {layout!r}; "
                                 f"Ragged tensors combine only with the same item shapes")
            if a is not None and not isinstance(a, Ragged) and np.ndim(a) != 0:
                raise ShapeError(f"{name}: a Ragged tensor combines with scalars or a Ragged of "
                                 f"the same item shapes, got input {i} of shape {np.shape(a)}")
        self.layout = layout
        return [a.data if isinstance(a, Ragged) else a for a in arrays]

    def _backward(self, grad_output):
        """``backward``, with flat buffers in and Ragged gradients out for an elementwise Ragged step."""
        if self.layout is None:
            return self.backward(grad_output)
        if isinstance(grad_output, Ragged):
            grad_output = grad_output.data
        grads = self.backward(grad_output)
        grads = grads if isinstance(grads, tuple) else (grads,)
        return tuple(self.layout.like(g) if g is not None and t is not None and t.ragged else g
                     for g, t in zip(grads, self.inputs))


def _unbroadcast(grad, shape):
    """Sum ``grad`` over the axes numpy broadcasting added or stretched to reach it."""
    if grad.shape == shape:
        return grad
    grad = grad.sum(axis=tuple(range(grad.ndim - len(shape))))
    stretched = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    return grad.sum(axis=stretched, keepdims=True) if stretched else grad


class _Cast(Function):
    ragged = "elementwise"

    def forward(self, x, *, dtype):
        self.dtype = x.dtype
        return x.astype(dtype)

    def backward(self, g):
        return (g.astype(self.dtype),)


class Add(Function):
    ragged = "elementwise"

    def forward(self, a, b):
        self.shapes = a.shape, b.shape
        return a + b

    def backward(self, g):
        return _unbroadcast(g, self.shapes[0]), _unbroadcast(g, self.shapes[1])


class Sub(Function):
    ragged = "elementwise"

    def forward(self, a, b):
        self.shapes = a.shape, b.shape
        return a - b

    def backward(self, g):
        return _unbroadcast(g, self.shapes[0]), _unbroadcast(-g, self.shapes[1])


class Mul(Function):
    ragged = "elementwise"

    def forward(self, a, b):
        self.a, self.b = a, b
        return a * b

    def backward(self, g):
        ga = _unbroadcast(g * self.b, self.a.shape) if self.needs_input_grad[0] else None
        gb = _unbroadcast(g * self.a, self.b.shape) if self.needs_input_grad[1] else None
        return ga, gb


class Div(Function):
    ragged = "elementwise"

    def forward(self, a, b):
        self.a, self.b = a, b
        return a / b

    def backward(self, g):
        ga = _unbroadcast(g / self.b, self.a.shape) if self.needs_input_grad[0] else None
        gb = (_unbroadcast(-g * self.a / (self.b * self.b), self.b.shape)
              if self.needs_input_grad[1] else None)
        return ga, gb


class Neg(Function):
    ragged = "elementwise"

    def forward(self, a):
        return -a

    def backward(self, g):
        return (-g,)


class Pow(Function):
    ragged = "elementwise"

    def forward(self, a, *, exponent):
        self.a, self.exponent = a, exponent
        return a ** exponent

    def backward(self, g):
        return (g * self.exponent * self.a ** (self.exponent - 1),)


class MatMul(Function):
    """Product of two 2-D arrays."""

    def forward(self, a, b):
        if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[0]:
            raise ShapeError(f"matmul needs (m, k) @ (k, n), got shapes {a.shape} and {b.shape}")
        self.a, self.b = a, b
        return a @ b

    def backward(self, g):
        ga = g @ self.b.T if self.needs_input_grad[0] else None
        gb = self.a.T @ g if self.needs_input_grad[1] else None
        return ga, gb


class Sum(Function):
    ragged = "elementwise"

    def forward(self, a, *, axis, keepdims):
        self.shape, self.axis = a.shape, axis
        return np.asarray(a.sum(axis=axis, keepdims=keepdims))

    def backward(self, g):
        g = np.expand_dims(g, self.axis) if g.ndim != len(self.shape) else g
        return (np.broadcast_to(g, self.shape).copy(),)


def _planes(r, flat=None):
    """``(C, P_i)`` views of every item of Ragged ``r`` (or of ``flat``, laid out like ``r``)."""
    flat = r.data if flat is None else flat
    c, sizes = r.channels, np.prod(r.shapes, axis=1).tolist()  # P_i: positions of item i
    return [flat[o:o + c * p].reshape(c, p) for o, p in zip(r.offsets.tolist(), sizes)]


def _rows(r):
    """Start and length of every row (one channel of one item) of Ragged ``r``'s flat buffer.

    Item-major, as the buffer: ``(N * C,)`` arrays, row ``i * C + c``.
    """
    positions = np.prod(r.shapes, axis=1)
    starts = r.offsets[:, None] + np.arange(r.channels) * positions[:, None]
    return starts.reshape(-1), np.repeat(positions, r.channels)


def _channel_sums(r, flat=None):
    """Sum per channel over every item and position of Ragged ``r`` (or of ``flat``): ``(C,)``.

    Each row (one channel of one item) is summed in the buffer's dtype, in
    one call over the flat buffer; a channel's rows are added in float64,
    the dtype of the result.
    """
    flat = r.data if flat is None else flat
    rows = np.add.reduceat(flat, _rows(r)[0]).reshape(len(r), r.channels)
    return rows.sum(axis=0, dtype=np.float64)


def _spread(r, values):
    """Per-channel ``values`` ``(C,)`` repeated over every position of Ragged ``r`` (flat)."""
    values = np.asarray(values)
    return np.repeat(np.tile(values, len(r)), _rows(r)[1])


class _ChannelSum(Function):
    """Sum of a Ragged per channel over every item and position: ``(C,)``."""

    ragged = "native"

    def forward(self, x):
        self.x = x
        return _channel_sums(x).astype(x.dtype)

    def backward(self, g):
        return (self.x.like(_spread(self.x, g).astype(self.x.dtype, copy=False)),)


class Reshape(Function):
    def forward(self, a, *, shape):
        self.shape = a.shape
        try:
            return a.reshape(shape)
        except ValueError:
            raise ShapeError(f"cannot reshape a tensor of shape {a.shape} to {shape}") from None

    def backward(self, g):
        return (g.reshape(self.shape),)


class Transpose(Function):
    def forward(self, a, *, axes):
        self.axes = axes
        return a.transpose(axes)

    def backward(self, g):
        return (g.transpose(None if self.axes is None else np.argsort(self.axes)),)


class GetItem(Function):
    def forward(self, a, *, index):
        self.shape, self.dtype, self.index = a.shape, a.dtype, index
        return np.array(a[index])

    def backward(self, g):
        out = np.zeros(self.shape, self.dtype)
        np.add.at(out, self.index, g)
        return (out,)


class Concat(Function):
    ragged = "native"  # Ragged batches of the same item shapes join along the channel axis 1

    def forward(self, *arrays, axis):
        self.axis, self.layouts = axis, None
        if any(isinstance(a, Ragged) for a in arrays):
            return self._forward_ragged(arrays, axis)
        self.bounds = np.cumsum([0] + [a.shape[axis] for a in arrays])
        try:
            return np.concatenate(arrays, axis=axis)
        except ValueError as exc:
            raise ShapeError(f"cannot concatenate shapes {[a.shape for a in arrays]} along "
                             f"axis {axis}: {exc}") from None

    def _forward_ragged(self, arrays, axis):
        first = next(a for a in arrays if isinstance(a, Ragged))
        if axis not in (1, -first.ndim - 1):
            raise ArgumentError(f"Ragged batches concatenate along the channel axis 1 only, "
                                f"got axis={axis}")
        for i, a in enumerate(arrays):
            if (not isinstance(a, Ragged) or a.shapes.shape != first.shapes.shape
                    or not np.array_equal(a.shapes, first.shapes)):
                raise ShapeError(f"cannot concatenate input {i} ({a!r}) with {first!r}: Ragged "
                                 f"batches join along channels, with the same item shapes")
        self.layouts = arrays
        joined = [np.concatenate(items, axis=0) for items in zip(*arrays)]  # (sum C, *s_i) each
        return Ragged(np.concatenate([j.reshape(-1) for j in joined]), first.shapes,
                      sum(a.channels for a in arrays))

    def backward(self, g):
        if self.layouts is not None:  # split each item's channels back
            bounds = np.cumsum([0] + [a.channels for a in self.layouts])
            parts = [[] for _ in self.layouts]
            for item in g:
                for k, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:])):
                    parts[k].append(item[lo:hi].reshape(-1))
            return tuple(a.like(np.concatenate(p)) if need else None
                         for a, p, need in zip(self.layouts, parts, self.needs_input_grad))
        index = [slice(None)] * g.ndim
        pieces = []
        for lo, hi, need in zip(self.bounds[:-1], self.bounds[1:], self.needs_input_grad):
            index[self.axis] = slice(lo, hi)
            pieces.append(g[tuple(index)] if need else None)
        return tuple(pieces)


def cat(tensors, axis=0):
    """Concatenate tensors along ``axis`` (differentiable ``np.concatenate``)."""
    return Concat.apply(*tensors, axis=axis)


class Exp(Function):
    ragged = "elementwise"

    def forward(self, a):
        self.out = np.exp(a)
        return self.out

    def backward(self, g):
        return (g * self.out,)


class Log(Function):
    ragged = "elementwise"

    def forward(self, a):
        self.a = a
        return np.log(a)

    def backward(self, g):
        return (g / self.a,)


class ReLU(Function):
    ragged = "elementwise"

    def forward(self, a):
        self.positive = a > 0 if self.needs_input_grad[0] else None
        # fmax, not maximum: NaN gives 0, as before (`a > 0` is False for it); one pass
        return np.fmax(a, 0)

    def backward(self, g):
        return (g * self.positive,)


class LeakyReLU(Function):
    ragged = "elementwise"

    def forward(self, a, *, slope):
        self.scale = np.where(a > 0, 1, slope).astype(a.dtype, copy=False)
        return a * self.scale

    def backward(self, g):
        return (g * self.scale,)


class Tanh(Function):
    ragged = "elementwise"

    def forward(self, a):
        self.out = np.tanh(a)
        return self.out

    def backward(self, g):
        return (g * (1 - self.out * self.out),)


class Sigmoid(Function):
    ragged = "elementwise"

    def forward(self, a):
        # exp of a non-positive number only: no overflow for large |a|
        e = np.exp(-np.abs(a))
        self.out = np.where(a >= 0, 1 / (1 + e), e / (1 + e)).astype(a.dtype, copy=False)
        return self.out

    def backward(self, g):
        return (g * self.out * (1 - self.out),)


def _log_softmax(a, axis):
    """``log(softmax(a))`` along ``axis`` of an array, shifted by the maximum for stability."""
    shifted = a - a.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


class LogSoftmax(Function):
    ragged = "native"  # over the channel axis of a Ragged, item by item

    def forward(self, a, *, axis):
        if isinstance(a, Ragged):
            if axis not in (1, -a.ndim - 1):
                raise ArgumentError(f"log_softmax of a Ragged batch runs over the channel axis 1 "
                                    f"only, got axis={axis}")
            self.ragged_a = a
            out = np.empty_like(a.data)
            for p, o in zip(_planes(a), _planes(a, out)):
                o[...] = _log_softmax(p, 0)
            self.out, self.axis = out, 0
            return a.like(out)
        self.ragged_a = None
        self.out = _log_softmax(a, axis)
        self.axis = axis
        return self.out

    def backward(self, g):
        if self.ragged_a is not None:
            a, gin = self.ragged_a, np.empty_like(self.out)
            for gp, op, o in zip(_planes(a, g.data), _planes(a, self.out), _planes(a, gin)):
                o[...] = gp - np.exp(op) * gp.sum(axis=0, keepdims=True)
            return (a.like(gin),)
        return (g - np.exp(self.out) * g.sum(axis=self.axis, keepdims=True),)


# ---------------------------------------------------------------------------
# gradcheck
# ---------------------------------------------------------------------------

def _values(data):
    """The array of a Tensor's data: the flat buffer of a Ragged."""
    return data.data if isinstance(data, Ragged) else data


class GradcheckError(SigconvError, AssertionError):
    """The analytic gradient of a function disagrees with its finite differences."""


def gradcheck(fn, inputs, *, eps=1e-6, atol=1e-5, rtol=1e-3, seed=0):
    """Compare the tape's gradients of ``fn`` with central finite differences.

    The output is projected on a fixed random direction ``r``; the gradient
    of ``sum(fn(*inputs) * r)`` with respect to every input tensor that
    requires grad is computed by :meth:`Tensor.backward` and by central
    differences ``(f(x + eps) - f(x - eps)) / (2 eps)``, one element at a
    time.  Tensors that ``fn`` reads without taking them as arguments (a
    layer's parameters) may be listed in ``inputs`` too; ``fn`` is called
    with all of ``inputs`` as positional arguments.

    Parameters
    ----------
    fn : callable returning a Tensor
    inputs : sequence of Tensor
        float64 (finite differences in float32 are too coarse to check).
    eps, atol, rtol : float
        Step and tolerances of ``np.allclose(analytic, numeric)``.
    seed : int
        Seed of the projection direction.

    Returns
    -------
    True
        Or raises :class:`GradcheckError` naming the input and the worst element.
    """
    inputs = list(inputs)
    for i, t in enumerate(inputs):
        if not isinstance(t, Tensor):
            raise ArgumentError(f"gradcheck inputs must be Tensors; input {i} is {type(t).__name__}")
        if t.requires_grad and t.dtype != np.float64:
            raise DTypeError(f"gradcheck needs float64 tensors; input {i} has dtype {t.dtype}")
    checked = [t for t in inputs if t.requires_grad]
    if not checked:
        raise ArgumentError("gradcheck: no input has requires_grad=True")
    saved = [t.grad for t in checked]
    try:
        for t in checked:
            t.grad = None
        out = fn(*inputs)
        r = np.random.default_rng(seed).standard_normal(_values(out.data).shape)
        out.backward(out.data.like(r.astype(out.dtype)) if out.ragged else r.astype(out.dtype))
        analytic = [np.zeros(_values(t.data).shape) if t.grad is None else _values(t.grad).copy()
                    for t in checked]
        with no_grad():
            for number, (t, grad) in enumerate(zip(checked, analytic)):
                values = _values(t.data)  # a Ragged is perturbed through its flat buffer
                numeric = np.empty(values.shape)
                for idx in np.ndindex(values.shape):
                    original = values[idx]
                    values[idx] = original + eps
                    plus = float(np.sum(_values(fn(*inputs).data) * r))
                    values[idx] = original - eps
                    minus = float(np.sum(_values(fn(*inputs).data) * r))
                    values[idx] = original
                    numeric[idx] = (plus - minus) / (2 * eps)
                if not np.allclose(grad, numeric, atol=atol, rtol=rtol):
                    err = np.abs(grad - numeric)
                    worst = np.unravel_index(np.argmax(err), err.shape)
                    raise GradcheckError(
                        f"gradient of input {inputs.index(t)} (checked tensor {number}, shape "
                        f"{values.shape}) differs from finite differences: max abs error "
                        f"{err.max():.3g} at {tuple(int(i) for i in worst)}, analytic "
                        f"{grad[worst]:.6g}, numeric {numeric[worst]:.6g}")
    finally:
        for t, g in zip(checked, saved):
            t.grad = g
    return True
