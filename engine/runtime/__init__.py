"""The runtime (internal): the actors. The registry actor, realtime/private tickets, the snapshot
pool, the state they share, and the wiring of the supervision tree."""

from __future__ import annotations

__all__: tuple[str, ...] = ()
