"""Pooling ops (being written; see issue 3)."""
__all__ = []
