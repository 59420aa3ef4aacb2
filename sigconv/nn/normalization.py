"""Batch normalisation for any number of spatial axes (``torch.nn.BatchNorm1d/2d/3d``)."""
import numpy as np

from . import functional as F
from ._checks import float_dtype, positive_int
from ..autograd import as_tensor
from ..errors import ArgumentError, ShapeError
from .activation import ReLU
from .module import Module, Parameter

__all__ = ["BatchNorm"]


class BatchNorm(Module):
    """Normalise each channel by batch statistics in training, running statistics in evaluation.

    State: ``weight`` and ``bias`` ``(C,)`` (with ``affine``), buffers
    ``running_mean``, ``running_var`` ``(C,)`` and ``num_batches_tracked``
    (int64 scalar) -- PyTorch's names, so its state dict loads into
    ``torch.nn.BatchNorm2d`` and back.  ``momentum=None`` takes the cumulative
    average.  Input ``(N, C)`` or ``(N, C, *spatial)``.
    """

    def __init__(self, num_channels, *, eps=1e-5, momentum=0.1, affine=True,
                 track_running_stats=True, dtype=np.float32):
        super().__init__()
        self.num_channels = positive_int(num_channels, "num_channels")
        if momentum is not None and not 0 <= momentum <= 1:
            raise ArgumentError(f"momentum must be in [0, 1] or None, got {momentum!r}")
        if not eps > 0:
            raise ArgumentError(f"eps must be > 0, got {eps!r}")
        self.eps, self.momentum, self.affine = float(eps), momentum, bool(affine)
        self.track_running_stats = bool(track_running_stats)
        dtype = float_dtype(dtype)
        if affine:
            self.weight = Parameter(np.ones(num_channels, dtype))
            self.bias = Parameter(np.zeros(num_channels, dtype))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean", np.zeros(num_channels, dtype))
            self.register_buffer("running_var", np.ones(num_channels, dtype))
            self.register_buffer("num_batches_tracked", np.zeros((), np.int64))
        else:
            for name in ("running_mean", "running_var", "num_batches_tracked"):
                self.register_buffer(name, None)

    def forward(self, x):
        return self._normalise(x, F.batch_norm)

    def _normalise(self, x, op):
        """``op(x, ...)`` (:func:`~sigconv.nn.functional.batch_norm` or ``batch_norm_relu``)."""
        x = as_tensor(x)
        if x.ndim < 2 or x.shape[1] != self.num_channels:
            raise ShapeError(f"BatchNorm expects input (N, {self.num_channels}, *spatial), got "
                             f"shape {x.shape}")
        use_batch = self.training or not self.track_running_stats
        momentum = 0.0
        if self.training and self.track_running_stats:
            self.num_batches_tracked += 1
            momentum = (1.0 / float(self.num_batches_tracked) if self.momentum is None
                        else self.momentum)
        return op(x, self.running_mean, self.running_var, self.weight, self.bias,
                  training=use_batch, momentum=momentum, eps=self.eps)

    def _fused_with(self, following):
        """``relu(self(x))`` in one step when ``following`` is a plain ReLU (for Sequential)."""
        if type(self).forward is not BatchNorm.forward or type(following).forward is not \
                ReLU.forward:
            return None
        return lambda x: self._normalise(x, F.batch_norm_relu)

    def extra_repr(self):
        return f"{self.num_channels}, eps={self.eps}, momentum={self.momentum}"
