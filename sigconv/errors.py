"""The exceptions sigconv raises for bad input.

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


__all__ = ["SigconvError", "ShapeError", "DTypeError", "ArgumentError", "ExportError"]
