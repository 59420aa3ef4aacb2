"""Type stub of the compiled extension ``sigconv._kernels`` (``_kernels.pyx``).

Written by hand from the ``def`` signatures in ``sigconv/_kernels_src/*.pxi``;
CI runs ``python -m mypy.stubtest sigconv._kernels``, which checks it against
the compiled module (every name, every parameter's name and position).
Memoryview parameters are typed as the contiguous numpy arrays the callers
pass: ``floating[::1]`` (a fused float32/float64 type) as ``_Floats``,
``double[::1]`` as float64, ``isize`` (``Py_ssize_t``) arrays as ``intp``.  The kernels write their results into ``out``-style arguments and
return None.
"""
from typing import Union

import numpy as np
from numpy.typing import NDArray

#: a 1-D C-contiguous float32 or float64 array (the fused ``floating[::1]``)
_Floats = Union[NDArray[np.float32], NDArray[np.float64]]
#: a ``Py_ssize_t`` array: 1-D ``isize[::1]`` or 2-D item table ``isize[:, ::1]``
_Indices = NDArray[np.intp]
_Doubles = NDArray[np.float64]

__test__: dict[str, str]  # Cython's doctest table
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
def conv_forward(x: _Floats, w: _Floats, out: _Floats, items: _Indices, cin: int, cout: int,
                 groups: int, kernel: tuple[int, ...], stride: tuple[int, ...],
                 dilation: tuple[int, ...], input_dilation: tuple[int, ...], bias: _Floats,
                 direct: bool, workspace_bytes: int) -> None: ...
def conv_weight_grad(x: _Floats, grad_out: _Floats, grad_w: _Floats, items: _Indices, cin: int,
                     cout: int, groups: int, kernel: tuple[int, ...], stride: tuple[int, ...],
                     dilation: tuple[int, ...], workspace_bytes: int) -> None: ...
def conv_weight_grad_direct(x: _Floats, grad_out: _Floats, grad_w: _Floats, items: _Indices,
                            cin: int, cout: int, groups: int, kernel: tuple[int, ...],
                            stride: tuple[int, ...], dilation: tuple[int, ...]) -> None: ...

# norm.pxi
def bn_row_stats(x: _Floats, itab: _Indices, C: int, sums: _Doubles, m2: _Doubles) -> None: ...
def bn_apply(x: _Floats, itab: _Indices, C: int, mean: _Floats, scale: _Floats, shift: _Floats,
             out: _Floats, relu: bool) -> None: ...
def bn_grad_sums(g: _Floats, y: _Floats, x: _Floats, itab: _Indices, C: int, mean: _Floats,
                 relu: bool, sum_g: _Doubles, sum_gx: _Doubles) -> None: ...
def bn_grad_input(g: _Floats, y: _Floats, x: _Floats, itab: _Indices, C: int, mean: _Floats,
                  a: _Floats, k: _Floats, b: _Floats, relu: bool, out: _Floats) -> None: ...

# pool.pxi
def max_pool_forward(x: _Floats, itab: _Indices, out: _Floats, idx: _Indices, otab: _Indices, C: int,
                     geom: _Indices, want_idx: bool) -> None: ...
def window_sum_forward(x: _Floats, itab: _Indices, out: _Floats, otab: _Indices, C: int,
                       geom: _Indices, weights: _Floats, divmode: int, mode: int,
                       p: float) -> None: ...
def window_sum_backward(gout: _Floats, otab: _Indices, gin: _Floats, itab: _Indices, C: int,
                        geom: _Indices, weights: _Floats, divmode: int, mode: int, p: float,
                        x: _Floats, out: _Floats) -> None: ...
def adaptive_forward(x: _Floats, itab: _Indices, out: _Floats, idx: _Indices, otab: _Indices, C: int,
                     kind: int, mode: int, p: float, want_idx: bool) -> None: ...
def adaptive_backward(gout: _Floats, otab: _Indices, gin: _Floats, itab: _Indices, C: int, kind: int,
                      mode: int, p: float, x: _Floats, out: _Floats) -> None: ...
def index_scatter(src: _Floats, idx: _Indices, stab: _Indices, dst: _Floats, dtab: _Indices, C: int,
                  accumulate: bool) -> None: ...
def index_gather(src: _Floats, stab: _Indices, idx: _Indices, dst: _Floats, dtab: _Indices,
                 C: int) -> None: ...
def maxout_forward(x: _Floats, itab: _Indices, out: _Floats, otab: _Indices, G: int,
                   pieces: int) -> None: ...
def maxout_backward(gout: _Floats, x: _Floats, itab: _Indices, gin: _Floats, otab: _Indices, G: int,
                    pieces: int) -> None: ...

# unshared.pxi
def local_forward(x: _Floats, w: _Floats, out: _Floats, bias: _Floats, bias_mode: int, n_items: int,
                  cin: int, cout: int, size: tuple[int, ...], osize: tuple[int, ...],
                  kernel: tuple[int, ...], stride: tuple[int, ...], pad: tuple[int, ...],
                  units: _Indices, workspace_bytes: int) -> None: ...
def local_grad_weight(x: _Floats, gy: _Floats, gw: _Floats, n_items: int, cin: int, cout: int,
                      size: tuple[int, ...], osize: tuple[int, ...], kernel: tuple[int, ...],
                      stride: tuple[int, ...], pad: tuple[int, ...], units: _Indices,
                      workspace_bytes: int) -> None: ...
def local_grad_input(gy: _Floats, w: _Floats, gx: _Floats, n_items: int, cin: int, cout: int,
                     size: tuple[int, ...], osize: tuple[int, ...], kernel: tuple[int, ...],
                     stride: tuple[int, ...], pad: tuple[int, ...],
                     workspace_bytes: int) -> None: ...
def interleave_phases(z: _Floats, out: _Floats, n_items: int, groups: int, cout_g: int,
                      phases: tuple[int, ...], q_count: tuple[int, ...], out_size: tuple[int, ...],
                      r_d: _Indices, q_d: _Indices, r_h: _Indices, q_h: _Indices, r_w: _Indices,
                      q_w: _Indices) -> None: ...

