"""Define-by-run automatic differentiation on numpy arrays: the tape alone.

This module holds :class:`Tensor`, :class:`Function`, the recording switch
(:class:`no_grad`, :class:`enable_grad`) and ``backward``; the operations
live in :mod:`sigconv._ops` and :func:`~sigconv.autograd.gradcheck` in
:mod:`sigconv._gradcheck`.  The public names are imported from
:mod:`sigconv.autograd`, which gathers the three.

How the modules depend on each other (one direction, no cycle):
``_tape`` imports no autograd module; ``_ops`` imports ``_tape`` (its ops are
:class:`Function` subclasses) and, when imported, attaches the operator
methods (``+``, ``@``, ``sum``, ``reshape``, ``relu``, ...) to
:class:`Tensor`, since those methods are the ops; ``_gradcheck`` imports
``_tape``; ``autograd`` imports all three.  ``import sigconv`` (which runs
before any of its submodules) imports ``autograd``, so every Tensor has its
operators before any code can make one.

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

Layers of sigconv build on the tape, on :mod:`sigconv._ops` and on
:mod:`sigconv.nn.functional`, which wraps every op of :mod:`sigconv.functional`
with its kernels' own gradients.  ``gradcheck`` compares any of them with
finite differences.
"""
from __future__ import annotations

import contextlib
import numbers
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
from numpy.typing import DTypeLike, NDArray

from .errors import ArgumentError, DTypeError, ShapeError, SigconvError
from .ragged import Ragged

if TYPE_CHECKING:
    from .typing import TensorLike

__all__ = ["Tensor", "Function", "no_grad", "enable_grad", "is_grad_enabled", "as_tensor",
           "same_layout", "values"]

_state = threading.local()


def is_grad_enabled() -> bool:
    """Whether operations are currently recorded for :meth:`Tensor.backward`."""
    return getattr(_state, "enabled", True)


class _GradMode(contextlib.ContextDecorator):
    _mode = True

    def __enter__(self) -> None:
        self._previous = is_grad_enabled()
        _state.enabled = self._mode

    def __exit__(self, *exc: object) -> Literal[False]:
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

    def __init__(self, data: TensorLike, *, requires_grad: bool = False,
                 dtype: DTypeLike | None = None) -> None:
        if isinstance(data, Tensor):
            data = data.data
        array: NDArray[Any] | Ragged
        if isinstance(data, Ragged):
            array = data
            if dtype is not None and np.dtype(dtype) != data.dtype:
                array = data.like(data.data.astype(dtype))
        else:
            array = np.asarray(data, dtype=dtype)
        if requires_grad and array.dtype.kind != "f":
            raise DTypeError(f"only float tensors can require gradients, got dtype {array.dtype}")
        self.data: NDArray[Any] | Ragged = array
        self.grad: NDArray[Any] | Ragged | None = None
        self.requires_grad = bool(requires_grad)
        self._ctx: Function | None = None  # the Function that produced this tensor, if recorded

    # --- array-like properties ---
    @property
    def dtype(self) -> np.dtype[Any]:
        """The data's dtype."""
        return self.data.dtype

    @property
    def size(self) -> int:
        """Number of elements (of all items, for a Ragged)."""
        return int(values(self.data).size)

    @property
    def is_leaf(self) -> bool:
        """Whether no recorded operation made this tensor."""
        return self._ctx is None

    @property
    def ragged(self) -> bool:
        """Whether the data is a :class:`~sigconv.Ragged` batch."""
        return isinstance(self.data, Ragged)

    @property
    def shape(self) -> tuple[Any, ...]:
        """The array's shape; ``(N, C, None, ...)`` for a Ragged (one None per spatial axis)."""
        if isinstance(self.data, Ragged):
            return (len(self.data), self.data.channels) + (None,) * self.data.ndim
        return self.data.shape

    @property
    def ndim(self) -> int:
        """Number of axes, counting ``N`` and ``C`` for a Ragged too."""
        return len(self.shape)

    def __len__(self) -> int:
        return len(self.data)

    def __repr__(self) -> str:
        flag = ", requires_grad=True" if self.requires_grad else ""
        if isinstance(self.data, Ragged):
            return f"Tensor({self.data!r}{flag})"
        return f"Tensor({np.array2string(self.data, threshold=20)}, dtype={self.dtype}{flag})"

    def numpy(self) -> NDArray[Any] | Ragged:
        """The data array (not a copy)."""
        return self.data

    def item(self) -> Any:
        return self.data.item()  # type: ignore[union-attr]  # a Ragged has no single item: AttributeError

    def detach(self) -> Tensor:
        """The same data, cut from the graph."""
        return Tensor(self.data)

    # --- backward ---
    def backward(self, grad: TensorLike | None = None) -> None:
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
                if not need or pg is None or parent is None:
                    continue
                pg = _checked_grad(pg, parent, f"{type(fn).__name__}.backward gave a gradient "
                                       f"of shape {{shape}} for input {i} of shape {{expected}}")
                key = id(parent)
                grads[key] = pg if key not in grads else _added(grads[key], pg)

    # the operator methods (+, -, *, /, @, [], **, sum, mean, reshape, transpose, T,
    # astype, exp, log, relu, tanh, sigmoid, log_softmax, softmax) are the ops:
    # sigconv._ops attaches them here when it is imported; their signatures, for
    # type checkers (sigconv._ops._TensorOperators implements them, and mypy checks
    # that the implementations match):
    if TYPE_CHECKING:
        def astype(self, dtype: DTypeLike) -> Tensor: ...
        def __add__(self, other: TensorLike) -> Tensor: ...
        def __radd__(self, other: TensorLike) -> Tensor: ...
        def __sub__(self, other: TensorLike) -> Tensor: ...
        def __rsub__(self, other: TensorLike) -> Tensor: ...
        def __mul__(self, other: TensorLike) -> Tensor: ...
        def __rmul__(self, other: TensorLike) -> Tensor: ...
        def __truediv__(self, other: TensorLike) -> Tensor: ...
        def __rtruediv__(self, other: TensorLike) -> Tensor: ...
        def __neg__(self) -> Tensor: ...
        def __matmul__(self, other: TensorLike) -> Tensor: ...
        def __rmatmul__(self, other: TensorLike) -> Tensor: ...
        def __getitem__(self, index: Any) -> Tensor: ...
        def __pow__(self, exponent: float) -> Tensor: ...
        def sum(self, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Tensor: ...
        def mean(self, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Tensor: ...
        def reshape(self, *shape: int | Sequence[int]) -> Tensor: ...
        def transpose(self, *axes: int | Sequence[int]) -> Tensor: ...
        @property
        def T(self) -> Tensor: ...
        def exp(self) -> Tensor: ...
        def log(self) -> Tensor: ...
        def relu(self) -> Tensor: ...
        def tanh(self) -> Tensor: ...
        def sigmoid(self) -> Tensor: ...
        def log_softmax(self, axis: int = 1) -> Tensor: ...
        def softmax(self, axis: int = 1) -> Tensor: ...


def as_tensor(value: TensorLike) -> Tensor:
    """``value`` if it is a Tensor, else a constant Tensor wrapping it."""
    return value if isinstance(value, Tensor) else Tensor(value)


def values(data: Any) -> Any:
    """The array of a Tensor's data: the flat buffer of a Ragged."""
    return data.data if isinstance(data, Ragged) else data


def same_layout(a: Ragged, b: Ragged) -> bool:
    """Whether two Ragged batches have the same channels and item shapes."""
    return a.channels == b.channels and (a.shapes is b.shapes or (
        a.shapes.shape == b.shapes.shape and np.array_equal(a.shapes, b.shapes)))


def _checked_grad(grad: Any, tensor: Tensor, what: str) -> Any:
    """``grad`` in ``tensor``'s dtype, after checking it has ``tensor``'s shape (or Ragged layout).

    ``what`` is the error message, with ``{shape}`` and ``{expected}`` fields.
    """
    if isinstance(tensor.data, Ragged):
        if not isinstance(grad, Ragged) or not same_layout(grad, tensor.data):
            raise ShapeError(what.format(shape=grad if isinstance(grad, Ragged) else
                                         np.shape(grad), expected=tensor.data))
        return grad if grad.dtype == tensor.dtype else grad.like(grad.data.astype(tensor.dtype))
    if isinstance(grad, Ragged):
        raise ShapeError(what.format(shape=grad, expected=tensor.shape))
    grad = np.asarray(grad)
    if grad.shape != tensor.shape:
        raise ShapeError(what.format(shape=grad.shape, expected=tensor.shape))
    return grad if grad.dtype == tensor.dtype else grad.astype(tensor.dtype)


def _copy(g: Any) -> Any:
    return g.like(g.data.copy()) if isinstance(g, Ragged) else g.copy()


def _added(a: Any, b: Any) -> Any:
    return a.like(a.data + b.data) if isinstance(a, Ragged) else a + b


def _topological_order(root: Tensor) -> list[Tensor]:
    """Tensors of the graph below ``root`` that require grad, each after every consumer."""
    order: list[Tensor] = []
    seen: set[int] = set()
    stack = [(root, False)]
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

    needs_input_grad: tuple[bool, ...] = ()
    inputs: tuple[Tensor | None, ...] = ()
    ragged: ClassVar[str | None] = None
    layout: Ragged | None = None  # the Ragged whose flat buffer an elementwise Function saw

    def forward(self, *arrays: Any, **options: Any) -> Any:
        raise NotImplementedError

    def backward(self, grad_output: Any) -> Any:
        raise NotImplementedError

    @classmethod
    def apply(cls, *inputs: TensorLike | None, **options: Any) -> Tensor:
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


    def _ragged_inputs(self, arrays: list[Any]) -> list[Any]:
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
            if isinstance(a, Ragged) and not same_layout(a, layout):
                raise ShapeError(f"{name}: input {i} is {a!r}, which does not match {layout!r}; "
                                 f"Ragged tensors combine only with the same item shapes")
            if a is not None and not isinstance(a, Ragged) and np.ndim(a) != 0:
                raise ShapeError(f"{name}: a Ragged tensor combines with scalars or a Ragged of "
                                 f"the same item shapes, got input {i} of shape {np.shape(a)}")
        self.layout = layout
        return [a.data if isinstance(a, Ragged) else a for a in arrays]

    def _backward(self, grad_output: Any) -> Any:
        """``backward``, with flat buffers in and Ragged gradients out for an elementwise Ragged step."""
        if self.layout is None:
            return self.backward(grad_output)
        if isinstance(grad_output, Ragged):
            grad_output = grad_output.data
        grads = self.backward(grad_output)
        grads = grads if isinstance(grads, tuple) else (grads,)
        return tuple(self.layout.like(g) if g is not None and t is not None and t.ragged else g
                     for g, t in zip(grads, self.inputs))

