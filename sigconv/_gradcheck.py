"""``gradcheck``: the tape's gradients against central finite differences.

Imports the tape (:mod:`sigconv._tape`) only; :mod:`sigconv.autograd` and
the package re-export :func:`gradcheck` and :class:`GradcheckError`.  (The
module is private so that ``sigconv.gradcheck`` stays the function.)
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from ._tape import Tensor, no_grad, values as _values
from .ragged import Ragged
from .errors import ArgumentError, DTypeError, SigconvError

__all__ = ["gradcheck", "GradcheckError"]


class GradcheckError(SigconvError, AssertionError):
    """The analytic gradient of a function disagrees with its finite differences."""


def gradcheck(fn: Callable[..., Tensor], inputs: Sequence[Tensor], *, eps: float = 1e-6,
              atol: float = 1e-5, rtol: float = 1e-3, seed: int = 0) -> bool:
    """Compare the tape's gradients of ``fn`` with central finite differences.

    The output is projected on a fixed random direction ``r``; the gradient
    of ``sum(fn(*inputs) * r)`` with respect to every input tensor that
    requires grad is computed by :meth:`Tensor.backward` and by central
    differences ``(f(x + eps) - f(x - eps)) / (2 eps)``, one element at a
    time.  Tensors that ``fn`` reads without taking them as arguments (a
    layer's parameters) may be listed in ``inputs`` too; ``fn`` is called
    with all of ``inputs`` as positional arguments.

    Parameters
    ----------
    fn : callable returning a Tensor
    inputs : sequence of Tensor
        float64 (finite differences in float32 are too coarse to check).
    eps, atol, rtol : float
        Step and tolerances of ``np.allclose(analytic, numeric)``.
    seed : int
        Seed of the projection direction.

    Returns
    -------
    True
        Or raises :class:`GradcheckError` naming the input and the worst element.
    """
    inputs = list(inputs)
    for i, t in enumerate(inputs):
        if not isinstance(t, Tensor):
            raise ArgumentError(f"gradcheck inputs must be Tensors; input {i} is {type(t).__name__}")
        if t.requires_grad and t.dtype != np.float64:
            raise DTypeError(f"gradcheck needs float64 tensors; input {i} has dtype {t.dtype}")
    checked = [t for t in inputs if t.requires_grad]
    if not checked:
        raise ArgumentError("gradcheck: no input has requires_grad=True")
    saved = [t.grad for t in checked]
    try:
        for t in checked:
            t.grad = None
        out = fn(*inputs)
        r = np.random.default_rng(seed).standard_normal(_values(out.data).shape)
        out.backward(out.data.like(r.astype(out.dtype)) if isinstance(out.data, Ragged)
                     else r.astype(out.dtype))
        analytic = [np.zeros(_values(t.data).shape) if t.grad is None else _values(t.grad).copy()
                    for t in checked]
        with no_grad():
            for number, (t, grad) in enumerate(zip(checked, analytic)):
                values = _values(t.data)  # a Ragged is perturbed through its flat buffer
                numeric = np.empty(values.shape)
                for idx in np.ndindex(values.shape):
                    original = values[idx]
                    values[idx] = original + eps
                    plus = float(np.sum(_values(fn(*inputs).data) * r))
                    values[idx] = original - eps
                    minus = float(np.sum(_values(fn(*inputs).data) * r))
                    values[idx] = original
                    numeric[idx] = (plus - minus) / (2 * eps)
                if not np.allclose(grad, numeric, atol=atol, rtol=rtol):
                    err = np.abs(grad - numeric)
                    worst = np.unravel_index(np.argmax(err), err.shape)
                    raise GradcheckError(
                        f"gradient of input {inputs.index(t)} (checked tensor {number}, shape "
                        f"{values.shape}) differs from finite differences: max abs error "
                        f"{err.max():.3g} at {tuple(int(i) for i in worst)}, analytic "
                        f"{grad[worst]:.6g}, numeric {numeric[worst]:.6g}")
    finally:
        for t, g in zip(checked, saved):
            t.grad = g
    return True
