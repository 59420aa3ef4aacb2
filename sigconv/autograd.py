"""Define-by-run automatic differentiation on numpy arrays: the public names.

The autograd is three modules, each read alone, imported in one direction:

- :mod:`sigconv._tape`: :class:`Tensor`, :class:`Function`, :class:`no_grad`,
  :class:`enable_grad` and ``backward``: the tape, which imports no other
  autograd module (its docstring says how recording and Ragged batches work);
- :mod:`sigconv._ops`: the operations (``Add`` ... ``LogSoftmax``, ``cat``,
  the Ragged plane helpers); it imports the tape and, when imported, attaches
  Tensor's operator methods (``+``, ``@``, ``sum``, ``relu``, ...), which are
  these ops, to :class:`Tensor`;
- :mod:`sigconv._gradcheck`: :func:`gradcheck`, which imports the tape.

This module imports the three and is where user code imports from
(``from sigconv.autograd import Tensor, Function, gradcheck``); ``import
sigconv`` imports it first, so Tensor has its operators before any code can
make one.  The tape cannot itself re-export the ops and ``gradcheck``: they
import it, and the package keeps no import cycle (tests/test_imports.py).
The convolutions, poolings and normalisation on the tape are in
:mod:`sigconv.nn.functional`.
"""
from ._gradcheck import GradcheckError, gradcheck
from ._ops import (  # noqa: F401  (the ops stay importable from here: sigconv.autograd.ReLU)
    Add, Concat, Div, Exp, GetItem, LeakyReLU, Log, LogSoftmax, MatMul, Mul, Neg, Pow, ReLU,
    Reshape, Sigmoid, Sub, Sum, Tanh, Transpose, cat)
from ._tape import Function, Tensor, as_tensor, enable_grad, is_grad_enabled, no_grad

__all__ = ["Tensor", "Function", "no_grad", "enable_grad", "is_grad_enabled", "gradcheck",
           "GradcheckError", "as_tensor", "cat"]

