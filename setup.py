"""Build the Cython kernels.

Every ``sigconv/_kernels/*.pyx`` becomes one extension module compiled with
``-O3`` and OpenMP.  Because ``pip install`` compiles on the machine that will
run the code, the default also passes ``-march=native`` so that the compiler
vectorises the direct loops for the local CPU; set ``SIGCONV_PORTABLE=1`` to
build a binary that runs on any x86-64 (or other) CPU.  ``SIGCONV_EXT`` (a
comma-separated list of module names such as ``conv``) restricts a developer
build to some modules.
"""
import glob
import os
import platform

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup


def _compile_args():
    args = ["-O3", "-fopenmp", "-ffp-contract=fast"]
    if os.environ.get("SIGCONV_PORTABLE", "") not in ("1", "true", "yes"):
        args.append("-march=native" if platform.machine() in ("x86_64", "AMD64") else "-mcpu=native")
    return args


def _extensions():
    only = {name for name in os.environ.get("SIGCONV_EXT", "").split(",") if name}
    exts = []
    for path in sorted(glob.glob(os.path.join("sigconv", "_kernels", "*.pyx"))):
        name = os.path.splitext(os.path.basename(path))[0]
        if only and name not in only:
            continue
        exts.append(
            Extension(
                f"sigconv._kernels.{name}",
                [path],
                include_dirs=[numpy.get_include(), os.path.join("sigconv", "_kernels")],
                extra_compile_args=_compile_args(),
                extra_link_args=["-fopenmp"],
                define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
            )
        )
    return cythonize(
        exts,
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
