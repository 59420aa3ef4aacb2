"""Build sigconv's one compiled module, ``sigconv._kernels``.

``sigconv/_kernels.pyx`` includes its parts from ``sigconv/_kernels_src/``
and is compiled with ``-O3`` and OpenMP for the architecture's baseline
(no flag tied to the build machine's CPU), so that a binary built on one
machine runs on any CPU of its architecture.  The hot microkernels are compiled for several
targets inside the same binary (x86-64: baseline SSE2, AVX2 + FMA, AVX-512)
and chosen at import from what the CPU reports; see ``docs/convolution.md``.
``SIGCONV_CFLAGS`` appends compiler flags for experiments (a flag that
targets the build machine's CPU gives up portability and is not needed for
speed).
"""
import os
import shlex

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup


def _compile_args():
    return ["-O3", "-fopenmp", "-ffp-contract=fast"] + shlex.split(os.environ.get("SIGCONV_CFLAGS", ""))


def _extensions():
    ext = Extension(
        "sigconv._kernels",
        [os.path.join("sigconv", "_kernels.pyx")],
        include_dirs=[numpy.get_include(), os.path.join("sigconv", "_kernels_src")],
        depends=[os.path.join("sigconv", "_kernels_src", name)
                 for name in sorted(os.listdir(os.path.join("sigconv", "_kernels_src")))],
        extra_compile_args=_compile_args(),
        extra_link_args=["-fopenmp"],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
    )
    return cythonize(
        [ext],
        language_level=3,
        compiler_directives={
            "boundscheck": False,
            "wraparound": False,
            "initializedcheck": False,
            "cdivision": True,
            "nonecheck": False,
        },
    )


setup(ext_modules=_extensions())
