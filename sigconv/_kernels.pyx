# cython: language_level=3
"""sigconv's compiled kernels: one extension, ``nogil`` loops for every op.

Private: call them through :mod:`sigconv.functional`, which validates every
argument; the kernels trust their caller.  The parts are included from
``sigconv/_kernels_src/``:

``common.pxi``      index type, item-table columns, window geometry, thread
                    rule, checked allocation
``dispatch.pxi``    runtime CPU dispatch of the C microkernels
                    (``microkernels.h``, ``direct.h``)
``conv.pxi``        convolution forward / input gradient and weight gradient
``pool.pxi``        pooling and its gradients
``unshared.pxi``    unshared (locally connected) convolution
``norm.pxi``        batch-norm statistics and the fused normalise(+ReLU) passes
"""
include "_kernels_src/common.pxi"
include "_kernels_src/dispatch.pxi"
include "_kernels_src/conv.pxi"
include "_kernels_src/pool.pxi"
include "_kernels_src/unshared.pxi"
include "_kernels_src/norm.pxi"
