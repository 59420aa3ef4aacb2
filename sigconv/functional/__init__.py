"""Validated functional ops: convolution, its variants and gradients, pooling.

Every op takes channels-first arrays ``(N, C, *spatial)`` with 1 to 3 spatial
axes and returns the input's float dtype.  Defaults follow
``torch.nn.functional`` where PyTorch has the op.
"""
from . import choose as _choose
from . import conv as _conv
from . import fft as _fft
from . import pooling as _pooling
from . import separable as _separable
from . import transposed as _transposed
from . import unshared as _unshared
from .choose import *  # noqa: F401,F403
from .conv import *  # noqa: F401,F403
from .fft import *  # noqa: F401,F403
from .pooling import *  # noqa: F401,F403
from .separable import *  # noqa: F401,F403
from .transposed import *  # noqa: F401,F403
from .unshared import *  # noqa: F401,F403

__all__ = [name for module in (_conv, _transposed, _unshared, _separable, _fft, _choose, _pooling)
           for name in module.__all__]
