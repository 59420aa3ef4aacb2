r"""The structured-output labeller of *Deep Learning* 9.6 (figure 9.17).

A recurrent convolutional network that labels every pixel (2-D) or voxel
(3-D).  With input ``X`` and three kernels shared by every step,

.. math::

    H^{(1)} = \mathrm{relu}(U * X), \qquad
    \hat Y^{(t)} = \mathrm{softmax}(V * H^{(t)}), \qquad
    H^{(t)} = \mathrm{relu}(U * X + W * \hat Y^{(t-1)})

so the first step makes an initial guess of the label of each position and
every later step refines it from the neighbouring guesses, applying the
same convolutions again (weights shared across steps, as in a recurrent
network).
"""
from __future__ import annotations
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import DTypeLike

from .. import nn
from ..nn import functional as F
from ..errors import ArgumentError
from ..nn._checks import layer_input, positive_int, spatial_ndim
from ..autograd import Tensor
from ..typing import Seed, TensorLike

if TYPE_CHECKING:
    from ..export._walk import ExportOps

__all__ = ["StructuredLabeller"]


class StructuredLabeller(nn.Module):
    """Per-position labels refined by ``steps`` applications of shared convolutions.

    Parameters
    ----------
    in_channels, num_classes : int
    ndim : {2, 3} (1 also works: labelling every sample of a sequence)
    hidden : int, channels of ``H``
    kernel_size : int
    steps : int >= 1, how many times the estimate is computed
    dtype, rng : parameter dtype and seed

    Notes
    -----
    Modules: ``input_conv`` (the chapter's ``U``), ``output_conv`` (``V``)
    and ``feedback_conv`` (``W``, no bias).  Calling the model returns the
    logits of the last step ``(N, num_classes, *spatial)``; with
    ``return_all=True`` the list of every step's logits (train on all of
    them to supervise the initial guess as well).
    """

    def __init__(self, in_channels: int, num_classes: int, *, ndim: int, hidden: int = 16,
                 kernel_size: int = 3, steps: int = 3, dtype: DTypeLike = np.float32,
                 rng: Seed = None) -> None:
        super().__init__()
        self.ndim = spatial_ndim(ndim)
        self.in_channels = positive_int(in_channels, "in_channels")
        self.steps = positive_int(steps, "steps")
        num_classes = positive_int(num_classes, "num_classes")
        if num_classes < 2:
            raise ArgumentError(f"num_classes must be >= 2 (softmax over classes), got {num_classes}")
        rng = np.random.default_rng(rng)
        options: dict[str, Any] = dict(ndim=ndim, dtype=dtype, rng=rng)
        self.input_conv = nn.Conv(in_channels, hidden, kernel_size, **options)
        self.output_conv = nn.Conv(hidden, num_classes, kernel_size, **options)
        self.feedback_conv = nn.Conv(num_classes, hidden, kernel_size, bias=False, **options)

    def forward(self, x: TensorLike, *, return_all: bool = False) -> Tensor | list[Tensor]:
        x = layer_input(self, x, self.ndim, self.in_channels)
        drive = self.input_conv(x)  # U * X, the same at every step
        hidden = F.relu(drive)
        outputs: list[Any] = []
        for step in range(self.steps):
            if step:
                estimate = F.softmax(outputs[-1], axis=1)  # Y^(t-1)
                hidden = F.relu(drive + self.feedback_conv(estimate))
            outputs.append(self.output_conv(hidden))
        return outputs if return_all else outputs[-1]

    @staticmethod
    def _export_forward(module: StructuredLabeller, ops: ExportOps, x: Any) -> Any:
        """:meth:`forward` (the last step's logits) in an exporter's ops (:mod:`sigconv.export`):
        the steps unrolled, every step applying the same three convolutions."""
        drive = ops.child("input_conv", x)
        hidden = ops.relu(drive)
        logits = None
        for step in range(module.steps):
            if step:
                feedback = ops.child("feedback_conv", ops.softmax(logits, axis=1))
                hidden = ops.relu(ops.add(drive, feedback))
            logits = ops.child("output_conv", hidden)
        return logits
