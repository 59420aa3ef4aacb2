"""Validated functional ops: convolution and its gradients, pooling.

Every op takes channels-first arrays ``(N, C, *spatial)`` with 1 to 3 spatial
axes and returns the input's float dtype.  Defaults follow
``torch.nn.functional`` where PyTorch has the op.
"""
from .conv import *  # noqa: F401,F403
from .conv import __all__ as _conv_all
from .pooling import *  # noqa: F401,F403
from .pooling import __all__ as _pooling_all

__all__ = list(_conv_all) + list(_pooling_all)
