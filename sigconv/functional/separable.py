"""Being written (issue 4)."""
__all__ = []
