"""sigconv: convolutional networks on 1-D, 2-D and 3-D signals, on the CPU.

Layers of the package, bottom to top: ``sigconv._kernels`` (nogil Cython
loops), :mod:`sigconv.shapes` (every size formula), :mod:`sigconv.functional`
(validated ops), and the model, loader and data layers built on them.
"""
from . import functional, shapes
from .errors import ArgumentError, DTypeError, ShapeError, SigconvError
from .autograd import Tensor, gradcheck, no_grad
from . import checkpoint, models, nn, optim

__version__ = "0.1.0"

__all__ = ["functional", "shapes", "SigconvError", "ShapeError", "DTypeError", "ArgumentError",
           "Tensor", "no_grad", "gradcheck", "nn", "optim", "models", "checkpoint"]
