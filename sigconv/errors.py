"""The exceptions sigconv raises for bad input, and the warnings it gives.

Every error derives from :class:`SigconvError`, and also from the built-in
exception a Python user would expect (``ValueError`` or ``TypeError``), so
``except ValueError`` keeps working.
"""


class SigconvError(Exception):
    """Base class of every error raised by sigconv."""


class ShapeError(SigconvError, ValueError):
    """An array has the wrong rank or size for the operation."""


class DTypeError(SigconvError, TypeError):
    """An array has a dtype the operation cannot compute in."""


class ArgumentError(SigconvError, ValueError):
    """An option (stride, padding, mode, ...) has an invalid value."""


class ExportError(SigconvError, ValueError):
    """A model cannot be exported (:mod:`sigconv.export`): a layer the target cannot express."""


class SigconvWarning(UserWarning):
    """Base class of every warning sigconv gives (something works but looks wrong)."""


class IntensityWarning(SigconvWarning):
    """An input's intensities are far from those the model was trained on (another scale
    or units: Hounsfield units against a [0, 1] window, say)."""


__all__ = ["SigconvError", "ShapeError", "DTypeError", "ArgumentError", "SigconvWarning",
           "IntensityWarning", "ExportError"]
