"""The walk both exporters share: which rule converts a module, the refusals, resolved options.

:func:`rule_for` looks a module up, by its class, in an exporter's table of
layer rules, or finds the module's ``_export_forward`` hook (a model whose
``forward`` is Python code over its submodules); anything else is refused
with an :class:`~sigconv.errors.ExportError` naming the module's path in the
model.  The option helpers turn a layer's options into explicit numbers (one
``(lo, hi)`` pair per axis, the window tuples) with sigconv's own formulas,
so that both exporters compute exactly what the layer computes.
"""
from __future__ import annotations

import numbers
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np

from .. import nn
from .. import shapes
from .._validation import as_tuple
from ..errors import ArgumentError, ExportError
from ..functional.pooling import _adaptive_size, _window
from ..functional.transposed import _padding_pairs
from ..typing import IntOrTuple

#: Layers no exporter can express, with the reason.
REFUSED: dict[type[nn.Module], str] = {
    nn.LocalConv: "its filters differ at every position (unshared convolution, weights tied "
                  "to one input size); ONNX's Conv and torch's Conv layers share one kernel",
    nn.TiledConv: "it cycles through several kernels by output position (tiled "
                  "convolution); ONNX's Conv and torch's Conv layers share one kernel",
}

#: The hook a model class defines when its ``forward`` is Python code over its layers.
HOOK = "_export_forward"


class ExportOps(Protocol):
    """What a ``_export_forward(module, ops, x)`` hook writes its forward with.

    Each exporter passes its own ops; their values are ONNX graph values
    (:func:`~sigconv.export.to_onnx`) or torch tensors
    (:func:`~sigconv.export.to_torch_module`), and a hook only hands them on.
    """

    def child(self, name: str, x: Any) -> Any:
        """The submodule ``name`` (dotted, ``"encoders.0"``) applied to ``x``."""
        ...

    def add(self, a: Any, b: Any) -> Any: ...

    def relu(self, x: Any) -> Any: ...

    def softmax(self, x: Any, axis: int = 1) -> Any: ...

    def cat(self, values: Sequence[Any], axis: int = 1) -> Any: ...

    def max_pool(self, x: Any, kernel_size: IntOrTuple, *, stride: IntOrTuple | None = None,
                 padding: IntOrTuple = 0, dilation: IntOrTuple = 1,
                 ceil_mode: bool = False) -> Any: ...

    def resize_like(self, x: Any, like: Any) -> Any:
        """``x`` resized (nearest neighbour) to the spatial size of ``like``."""
        ...

    def if_spatial_at_least(self, x: Any, minimum: int, then: Callable[[Any], Any]) -> Any:
        """``then(x)`` where every spatial axis of ``x`` has ``minimum`` samples, else ``x``."""
        ...


def describe(path: str, module: nn.Module) -> str:
    """``"features.3 (LocalConv)"``: where a module sits in the model, for error messages."""
    return f"{path} ({type(module).__name__})" if path else f"the model ({type(module).__name__})"


def _defining_class(cls: type, name: str) -> type | None:
    """The class in ``cls``'s MRO whose own ``__dict__`` defines ``name`` (or None)."""
    return next((c for c in cls.__mro__ if name in vars(c)), None)


def check_module(model: object, what: str) -> nn.Module:
    """``model`` itself, or :class:`ArgumentError` unless it is a sigconv Module."""
    if not isinstance(model, nn.Module):
        raise ArgumentError(f"{what} takes a sigconv.nn.Module, got {type(model).__name__}")
    return model


def rule_for(module: nn.Module, path: str, table: dict[type, Any],
             exporter: str) -> tuple[str, Callable[..., Any]]:
    """How ``exporter`` converts ``module``: ``("hook", function)`` or ``("layer", rule)``.

    ``table`` maps sigconv classes to the exporter's rules.  A subclass uses
    its base's rule only when it keeps the base's ``forward``; a class whose
    ``forward`` is newer than its ``_export_forward`` hook (a subclass that
    changed ``forward``) is refused, since the hook would no longer say what
    ``forward`` does.
    """
    cls = type(module)
    for refused, reason in REFUSED.items():
        if isinstance(module, refused):
            raise ExportError(f"{exporter} cannot export {describe(path, module)}: {reason}")
    forward = _defining_class(cls, "forward")
    hook = _defining_class(cls, HOOK)
    if hook is not None and forward is not None and issubclass(hook, forward):
        return "hook", getattr(cls, HOOK)
    for base in cls.__mro__:
        if base in table:
            if forward is not None and not issubclass(base, forward):
                break  # a subclass with its own forward: the base's rule would be wrong
            return "layer", table[base]
    raise ExportError(
        f"{exporter} cannot export {describe(path, module)}: no export rule for this "
        f"layer, and its forward is Python code the exporter does not read.  A model "
        f"class can define a static method {HOOK}(module, ops, x) that writes its "
        f"forward with the exporter's ops (see sigconv.export)")


def present(child: nn.Module | None, where: str, exporter: str) -> nn.Module:
    """``child``, a container's submodule at ``where``; :class:`ExportError` for an empty
    (None) slot, which the container's forward could not run either."""
    if child is None:
        raise ExportError(f"{exporter} cannot export {where}: the slot holds None, not a layer")
    return child


def submodule(module: nn.Module, name: str) -> nn.Module:
    """The submodule at the dotted ``name`` (``"encoders.0"``) of a sigconv module;
    :class:`ExportError` when it has none of that name (an ``_export_forward`` hook's
    ``ops.child`` named another)."""
    found: nn.Module | None = module
    for part in name.split("."):
        found = None if found is None else found._modules.get(part)
    if found is None:
        raise ExportError(f"{describe('', module)} has no submodule {name!r} "
                          f"(an _export_forward hook's ops.child names its submodules)")
    return found


def config_of(module: nn.Module) -> dict[str, Any]:
    """A module's plain options (ints, floats, strings, tuples): what a hook may read."""
    def plain(value: object) -> bool:
        if isinstance(value, tuple):
            return all(plain(v) for v in value)
        return value is None or isinstance(value, (bool, numbers.Number, str))

    return {k: v for k, v in vars(module).items()
            if not k.startswith("_") and k != "training" and plain(v)}


def float_dtype_of(model: nn.Module) -> np.dtype[Any] | None:
    """The one float dtype of the model's parameters and float buffers (None if it has none)."""
    dtypes = {np.dtype(p.dtype) for p in model.parameters()}
    dtypes |= {b.dtype for _, b in model.named_buffers() if b.dtype.kind == "f"}
    if len(dtypes) > 1:
        raise ExportError(f"the model mixes parameter dtypes {sorted(map(str, dtypes))}; "
                          f"convert it to one with model.astype(np.float32)")
    return dtypes.pop() if dtypes else None


# --- options made explicit, with sigconv's own formulas ---

def conv_padding(layer: nn.Conv,
                 spatial: Sequence[int] | None = None) -> tuple[tuple[int, int], ...] | None:
    """A :class:`~sigconv.nn.Conv`'s padding as ``((lo, hi), ...)``.

    Returns None when it depends on the input size (``"same"`` with a stride
    above 1) and ``spatial`` is not given.
    """
    if layer.padding == "same" and any(s > 1 for s in layer.stride) and spatial is None:
        return None
    size = (1,) * layer.ndim if spatial is None else tuple(spatial)
    return shapes.resolve_padding(layer.padding, size, layer.kernel_size, layer.stride,
                                  layer.dilation)


def conv_transpose_padding(
        layer: nn.ConvTranspose) -> tuple[tuple[tuple[int, int], ...], tuple[int, ...]]:
    """A :class:`~sigconv.nn.ConvTranspose`'s cropping ``((lo, hi), ...)`` and output padding."""
    pads = _padding_pairs(layer.padding, layer.ndim, layer.kernel_size)
    extra = as_tuple(layer.output_padding, layer.ndim, "output_padding", minimum=0)
    return pads, extra


def window(nd: int, kernel_size: IntOrTuple, stride: IntOrTuple | None = None,
           padding: IntOrTuple = 0, dilation: IntOrTuple = 1,
           ceil_mode: bool = False) -> tuple[tuple[int, ...], ...]:
    """Kernel, stride, padding and dilation tuples of a pooling window on ``nd`` axes.

    Checked as the pooling ops check them (``padding <= kernel_size // 2``).
    """
    k, s, p, d, _ = _window(nd, kernel_size, stride, padding, dilation, ceil_mode)
    return k, s, p, d


def lp_ceil_padding(kernel: Sequence[int], stride: Sequence[int]) -> tuple[int, ...]:
    """Zeros to add after each axis so that floor-mode windows are the ceil-mode ones.

    A ceil-mode window starts at ``j * s`` for every ``j * s < min(n, n - k + s)``
    (PyTorch's rule, :func:`sigconv.shapes.pool_output_size`); floor-mode
    windows over ``n + q`` samples start where ``j * s <= n + q - k``, the
    same set for ``q = min(k, s) - 1``.  The added zeros add nothing to a
    window's sum, so a partial window's norm is that of its samples.
    """
    return tuple(min(k, s) - 1 for k, s in zip(kernel, stride))


def adaptive_sizes(output_size: int | None | Sequence[int | None],
                   nd: int) -> tuple[int | None, ...]:
    """An adaptive pool's output size per axis, None where the axis keeps its size."""
    given = output_size if isinstance(output_size, (tuple, list)) else (output_size,) * nd
    resolved = _adaptive_size(output_size, (1,) * nd)  # validates; a None entry becomes 1
    return tuple(None if v is None else m for v, m in zip(given, resolved))
