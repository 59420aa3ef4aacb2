# What every kernel of sigconv._kernels shares: the index type, the item
# table's columns, the window geometry, the thread rule and checked allocation.
from cython cimport floating
from cython.parallel cimport prange, threadid
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy, memset

cimport openmp
import numpy as np

ctypedef Py_ssize_t isize

cdef enum:
    # Columns of an item table: row n describes item n of a flat buffer, where
    # it is stored C-contiguous as (C, D, H, W) from element X_OFF.  Pooling
    # tables have the first four columns (one table for the input, one for the
    # output); convolution tables hold input, output and padding in one row.
    X_OFF = 0
    X_D = 1
    X_H = 2
    X_W = 3
    OUT_OFF = 4
    OUT_D = 5
    OUT_H = 6
    OUT_W = 7
    PAD_D = 8
    PAD_H = 9
    PAD_W = 10
    POOL_COLS = 4

#: jobs of fewer operations than this run on the calling thread: waking a
#: second thread costs microseconds on an idle machine and up to a scheduler
#: tick (milliseconds) on a busy one.
PARALLEL_MIN_WORK = 1 << 20


cdef struct Geometry:
    isize k[3]       # kernel size per axis (D, H, W)
    isize s[3]       # stride
    isize dil[3]     # kernel dilation
    isize idil[3]    # input dilation (1 except for the input gradient of a strided conv)
    isize pad[3]     # zeros before the input (when every item has the same padding)
    isize size[3]    # input size (when every item has the same shape)
    isize osize[3]   # output size (idem)
    isize groups
    isize cin        # input channels
    isize cout       # output channels
    isize cin_g      # input channels per group
    isize cout_g     # output channels per group
    isize taps       # kernel taps per channel: prod(k)
    isize ck         # rows of a patch: cin_g * taps
    isize P          # output positions: prod(osize)


cdef tuple ONES = (1, 1, 1)
cdef tuple ZEROS = (0, 0, 0)


cdef Geometry make_geometry(tuple kernel, tuple stride, tuple dilation, tuple input_dilation,
                            tuple pad, tuple size, tuple osize,
                            isize cin, isize cout, isize groups):
    """The one Geometry constructor; every tuple has three entries (D, H, W).

    Unused entries take ``ONES`` (stride, dilations) or ``ZEROS`` (pad, sizes).
    """
    cdef Geometry g
    cdef int a
    for a in range(3):
        g.k[a] = kernel[a]
        g.s[a] = stride[a]
        g.dil[a] = dilation[a]
        g.idil[a] = input_dilation[a]
        g.pad[a] = pad[a]
        g.size[a] = size[a]
        g.osize[a] = osize[a]
    g.groups = groups
    g.cin = cin
    g.cout = cout
    g.cin_g = cin // groups
    g.cout_g = cout // groups
    g.taps = g.k[0] * g.k[1] * g.k[2]
    g.ck = g.cin_g * g.taps
    g.P = g.osize[0] * g.osize[1] * g.osize[2]
    return g


cdef int team_threads(isize units, isize work) noexcept:
    """Threads worth waking for ``units`` independent units and ``work`` operations."""
    cdef int n = openmp.omp_get_max_threads()
    if work < PARALLEL_MIN_WORK or units < 2:
        return 1
    return n if n < units else <int>units


cdef inline isize floor_div(isize a, isize b) noexcept nogil:
    """Floor division for a possibly negative numerator and a positive divisor."""
    if a >= 0:
        return a // b
    return -((-a + b - 1) // b)


cdef inline void* try_alloc(isize count, isize itemsize) noexcept nogil:
    """``malloc(count * itemsize)``, or NULL when the size overflows or memory is short.

    For scratch inside ``nogil`` loops: callers record a NULL and raise
    :func:`raise_no_memory` once the loop is over.
    """
    if count < 0 or itemsize <= 0:
        return NULL
    if count == 0:
        count = 1
    if count > (<isize>0x7fffffffffffffff) // itemsize:
        return NULL
    return malloc(<size_t>(count * itemsize))


cdef int raise_no_memory(str what, isize count, isize itemsize) except -1:
    raise MemoryError(f"sigconv kernels: could not allocate {what} "
                      f"({count} x {itemsize} bytes per thread)")


cdef object scratch_array(isize count, object dtype):
    """A numpy work buffer of ``count`` elements (at least one), with a clear MemoryError."""
    try:
        return np.empty(max(count, 1), dtype=dtype)
    except (MemoryError, ValueError) as exc:
        raise MemoryError(f"sigconv kernels: could not allocate a work buffer of "
                          f"{count} {np.dtype(dtype).name} elements") from exc
