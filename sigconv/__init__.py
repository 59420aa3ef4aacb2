"""sigconv: convolutional networks on 1-D, 2-D and 3-D signals, on the CPU.

Layers of the package, bottom to top: ``sigconv._kernels`` (nogil Cython
loops), :mod:`sigconv.shapes` (every size formula), :mod:`sigconv.functional`
(validated ops), :class:`Ragged` batches, and the model (:mod:`sigconv.nn`),
loader (:mod:`sigconv.io`, imported on demand) and data (:mod:`sigconv.data`)
layers built on them.
"""
from . import functional, shapes
from .errors import ArgumentError, DTypeError, ShapeError, SigconvError
from .ragged import Ragged
from .autograd import Tensor, gradcheck, no_grad
from . import checkpoint, data, models, nn, optim
from ._cpu import cpu_info

from ._version import __version__

__all__ = ["functional", "shapes", "SigconvError", "ShapeError", "DTypeError", "ArgumentError",
           "Ragged", "Tensor", "no_grad", "gradcheck", "nn", "optim", "models", "checkpoint",
           "data", "cpu_info"]
