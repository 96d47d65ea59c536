"""The sans-IO core (internal): stream keys, ticket packing and efficiency, the registry state
machine and its lifecycle, rate limits, the snapshot book, the connection-state table and the
facade's one validation path. No I/O: tested with plain pytest and Hypothesis."""

from __future__ import annotations

__all__: tuple[str, ...] = ()
