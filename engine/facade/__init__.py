"""The facade (internal): :class:`~engine.Engine` and :func:`~engine.open_engine`, re-exported by
:mod:`engine`, with their read-only views and waits."""

from __future__ import annotations

__all__: tuple[str, ...] = ()
