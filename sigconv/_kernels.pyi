"""Type stub of the compiled extension ``sigconv._kernels`` (``_kernels.pyx``).

Written by hand from the ``def`` signatures in ``sigconv/_kernels_src/*.pxi``;
``tests/test_kernels_stub.py`` checks that every function here exists in the
compiled module with the same parameter names, and that every public name of
the module is here.  Memoryview parameters are typed as the contiguous numpy
arrays the callers pass: ``floating[::1]`` (a fused float32/float64 type) as
:data:`Floats`, ``double[::1]`` as float64, ``isize`` (``Py_ssize_t``) arrays
as ``intp``.  The kernels write their results into ``out``-style arguments and
return None.
"""
from typing import Any, Union

import numpy as np
from numpy.typing import NDArray

#: a 1-D C-contiguous float32 or float64 array (the fused ``floating[::1]``)
Floats = Union[NDArray[np.float32], NDArray[np.float64]]
#: a ``Py_ssize_t`` array: 1-D ``isize[::1]`` or 2-D item table ``isize[:, ::1]``
Indices = NDArray[np.intp]
Doubles = NDArray[np.float64]

TARGETS: tuple[str, ...]
TARGET_VARIABLE: str
PARALLEL_MIN_WORK: int
OPS_PER_SAMPLE: int
NORM_OPS_PER_SAMPLE: int

# dispatch.pxi
def compiled_targets() -> tuple[str, ...]: ...
def max_threads() -> int: ...
def available_targets() -> tuple[str, ...]: ...
def current_target() -> str: ...
def set_target(name: str) -> str: ...

# conv.pxi
def conv_forward(x: Floats, w: Floats, out: Floats, items: Indices, cin: int, cout: int,
                 groups: int, kernel: tuple[int, ...], stride: tuple[int, ...],
                 dilation: tuple[int, ...], input_dilation: tuple[int, ...], bias: Floats,
                 direct: bool, workspace_bytes: int) -> None: ...
def conv_weight_grad(x: Floats, grad_out: Floats, grad_w: Floats, items: Indices, cin: int,
                     cout: int, groups: int, kernel: tuple[int, ...], stride: tuple[int, ...],
                     dilation: tuple[int, ...], workspace_bytes: int) -> None: ...
def conv_weight_grad_direct(x: Floats, grad_out: Floats, grad_w: Floats, items: Indices,
                            cin: int, cout: int, groups: int, kernel: tuple[int, ...],
                            stride: tuple[int, ...], dilation: tuple[int, ...]) -> None: ...

# norm.pxi
def bn_row_stats(x: Floats, itab: Indices, C: int, sums: Doubles, m2: Doubles) -> None: ...
def bn_apply(x: Floats, itab: Indices, C: int, mean: Floats, scale: Floats, shift: Floats,
             out: Floats, relu: bool) -> None: ...
def bn_grad_sums(g: Floats, y: Floats, x: Floats, itab: Indices, C: int, mean: Floats,
                 relu: bool, sum_g: Doubles, sum_gx: Doubles) -> None: ...
def bn_grad_input(g: Floats, y: Floats, x: Floats, itab: Indices, C: int, mean: Floats,
                  a: Floats, k: Floats, b: Floats, relu: bool, out: Floats) -> None: ...

# pool.pxi
def max_pool_forward(x: Floats, itab: Indices, out: Floats, idx: Indices, otab: Indices, C: int,
                     geom: Indices, want_idx: bool) -> None: ...
def window_sum_forward(x: Floats, itab: Indices, out: Floats, otab: Indices, C: int,
                       geom: Indices, weights: Floats, divmode: int, mode: int,
                       p: float) -> None: ...
def window_sum_backward(gout: Floats, otab: Indices, gin: Floats, itab: Indices, C: int,
                        geom: Indices, weights: Floats, divmode: int, mode: int, p: float,
                        x: Floats, out: Floats) -> None: ...
def adaptive_forward(x: Floats, itab: Indices, out: Floats, idx: Indices, otab: Indices, C: int,
                     kind: int, mode: int, p: float, want_idx: bool) -> None: ...
def adaptive_backward(gout: Floats, otab: Indices, gin: Floats, itab: Indices, C: int, kind: int,
                      mode: int, p: float, x: Floats, out: Floats) -> None: ...
def index_scatter(src: Floats, idx: Indices, stab: Indices, dst: Floats, dtab: Indices, C: int,
                  accumulate: bool) -> None: ...
def index_gather(src: Floats, stab: Indices, idx: Indices, dst: Floats, dtab: Indices,
                 C: int) -> None: ...
def maxout_forward(x: Floats, itab: Indices, out: Floats, otab: Indices, G: int,
                   pieces: int) -> None: ...
def maxout_backward(gout: Floats, x: Floats, itab: Indices, gin: Floats, otab: Indices, G: int,
                    pieces: int) -> None: ...

# unshared.pxi
def local_forward(x: Floats, w: Floats, out: Floats, bias: Floats, bias_mode: int, n_items: int,
                  cin: int, cout: int, size: tuple[int, ...], osize: tuple[int, ...],
                  kernel: tuple[int, ...], stride: tuple[int, ...], pad: tuple[int, ...],
                  units: Indices, workspace_bytes: int) -> None: ...
def local_grad_weight(x: Floats, gy: Floats, gw: Floats, n_items: int, cin: int, cout: int,
                      size: tuple[int, ...], osize: tuple[int, ...], kernel: tuple[int, ...],
                      stride: tuple[int, ...], pad: tuple[int, ...], units: Indices,
                      workspace_bytes: int) -> None: ...
def local_grad_input(gy: Floats, w: Floats, gx: Floats, n_items: int, cin: int, cout: int,
                     size: tuple[int, ...], osize: tuple[int, ...], kernel: tuple[int, ...],
                     stride: tuple[int, ...], pad: tuple[int, ...],
                     workspace_bytes: int) -> None: ...
def interleave_phases(z: Floats, out: Floats, n_items: int, groups: int, cout_g: int,
                      phases: tuple[int, ...], q_count: tuple[int, ...], out_size: tuple[int, ...],
                      r_d: Indices, q_d: Indices, r_h: Indices, q_h: Indices, r_w: Indices,
                      q_w: Indices) -> None: ...

