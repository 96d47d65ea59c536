"""A small, generic, supervised actor runtime on Trio. It knows nothing about Upbit."""

from __future__ import annotations

__all__ = ()
