"""A way out of sigconv for a trained model: ONNX files and PyTorch modules.

:func:`to_onnx` writes an ONNX file (for onnxruntime, OpenVINO, browsers);
:func:`to_torch_module` builds the equivalent ``torch.nn.Module`` with the
weights copied.  Neither package is needed to import this module: ``onnx``
(the ``sigconv[onnx]`` extra) when ``to_onnx`` is called, PyTorch when
``to_torch_module`` is.  See ``docs/export.md``.

Design
------
Both exporters walk the model's module tree, not a trace of numpy calls:

* a **layer** (Conv, BatchNorm, MaxPool, ...) is converted from its options
  by a rule in the exporter's table (``sigconv.export.onnx.LAYERS``,
  ``sigconv.export.torch.LAYERS``); the options are first made explicit with
  sigconv's own formulas (:mod:`sigconv.export._walk`: the ``(lo, hi)``
  padding of each axis, the pooling windows), so that both compute exactly
  what the layer computes;
* a **model** whose ``forward`` is Python code over its submodules
  (:class:`~sigconv.nn.Residual`, the models of :mod:`sigconv.models`) has a
  static ``_export_forward(module, ops, x)`` hook beside its ``forward``: the
  same steps written with a few operations, which each exporter supplies.
  The ONNX exporter's ops write nodes (size-dependent steps become graph
  arithmetic on ``Shape``, the encoder-decoder's choice to pool an ``If``);
  PyTorch's run eagerly, so the same hook is the twin's ``forward``.  One
  description of each model's forward serves both exporters, and it sits
  next to the ``forward`` it mirrors;
* anything else is refused with :class:`~sigconv.errors.ExportError`
  naming the module's path (``features.3 (LocalConv)``), and so is a
  subclass whose ``forward`` is newer than the rule or hook it inherits.

The ops a hook may use (``module`` is the sigconv model for ONNX, its torch
twin for PyTorch, with the same submodule names and plain options):
``ops.child(name, x)`` (the submodule at dotted ``name`` applied to ``x``),
``ops.add(a, b)``, ``ops.relu(x)``, ``ops.softmax(x, axis=1)``,
``ops.cat(values, axis=1)``, ``ops.max_pool(x, kernel_size, *, stride=None,
padding=0, dilation=1, ceil_mode=False)``, ``ops.resize_like(x, like)``
(nearest neighbour to ``like``'s spatial size) and
``ops.if_spatial_at_least(x, minimum, then)`` (``then(x)`` where every
spatial axis has ``minimum`` samples, else ``x``).

Supported: ``Conv`` and ``ConvTranspose`` (1-3 D, stride, every padding,
dilation, groups, output padding), ``MaxPool``, ``AvgPool``, ``LPPool``,
``GaussianPool``, ``GlobalPool``, ``AdaptivePool`` (every output size, on
dynamic axes too), ``Maxout``, ``BatchNorm`` (running statistics),
``GroupNorm``, ``InstanceNorm``, ``LayerNorm``, ``ReLU``, ``LeakyReLU``,
``Tanh``, ``Sigmoid``, ``GELU``, ``SiLU``, ``Softmax``, ``Linear``,
``Flatten``, ``Dropout`` (the identity), ``Identity``, ``Upsample``,
``Residual``, ``Sequential``, ``ModuleList`` and the models of
:mod:`sigconv.models`.  Refused: ``LocalConv`` and ``TiledConv`` (no
shared kernel), and modules without a rule or hook.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from .. import nn
from ..errors import ExportError
from .onnx import DEFAULT_OPSET, INPUT, MIN_OPSET, OUTPUT, to_onnx

if TYPE_CHECKING:
    import torch

__all__ = ["to_onnx", "to_torch_module", "ExportError", "INPUT", "OUTPUT", "MIN_OPSET",
           "DEFAULT_OPSET"]


def to_torch_module(model: nn.Module) -> torch.nn.Module:
    """The ``torch.nn.Module`` that computes what ``model`` computes, its weights copied.

    The twin has the model's submodule names and state-dict layouts
    (``twin.state_dict()`` has the keys of ``model.state_dict()``), so
    weights trained in PyTorch come back with
    ``model.load_state_dict(sigconv.checkpoint.from_torch(twin))``.  Each of
    its modules is in the training mode of the matching sigconv module;
    parameters keep their dtype.

    Parameters
    ----------
    model : sigconv.nn.Module
        Built from the layers :mod:`sigconv.export` lists.

    Returns
    -------
    torch.nn.Module
        ``torch.nn.Conv1d/2d/3d``, ``Linear``, ``GroupNorm``, ``LayerNorm``,
        ``Sequential``, ... where PyTorch has the layer, and the modules of
        :mod:`sigconv.export.torch` where sigconv computes something PyTorch
        has no layer for (asymmetric padding, any-rank pooling and batch
        normalisation, a model's forward).

    Raises
    ------
    ExportError
        For a layer with no PyTorch equivalent, naming its path.
    MissingDependencyError
        When PyTorch is not installed.
    """
    try:
        import torch  # noqa: F401
    except ImportError as exc:
        from ..io._common import MissingDependencyError

        raise MissingDependencyError(
            f"sigconv.export.to_torch_module needs PyTorch, which is not installed ({exc}); "
            f"install it with: pip install torch (see pytorch.org for CPU-only wheels)") from None
    from .torch import to_torch_module as convert

    return convert(model)
