"""The engine's face for operators: metrics, the supervision tree, operator events, and where
the Prometheus endpoint and the debug channel listen. :class:`~engine.facade.engine.Engine`
inherits it."""

from __future__ import annotations

from actors import Supervisor
from engine.facade.views import debug_tree, engine_metrics
from engine.observability.debug import EngineTree
from engine.observability.metrics import EngineMetrics
from engine.runtime.event_feed import EventFeed
from engine.runtime.state import EngineCore

__all__ = ("Observing",)


class Observing:
    """Read-only views of a running engine (synchronous: one Trio thread, no torn reads)."""

    _core: EngineCore
    _root: Supervisor

    @property
    def metrics_address(self) -> tuple[str, int] | None:
        """``(host, port)`` of the Prometheus endpoint (``EngineConfig.metrics_port``), or None."""
        return self._core.metrics_address

    @property
    def debug_address(self) -> str | None:
        """Where the debug channel listens (``unix:PATH`` or ``127.0.0.1:PORT``, the form
        ``upbit-engine inspect`` takes), or ``None`` when ``EngineConfig.debug`` is not set."""
        return self._core.debug_address

    def metrics(self) -> EngineMetrics:
        """A frozen statistics snapshot (:class:`~engine.observability.metrics.EngineMetrics`)."""
        return engine_metrics(self._core)

    def debug_tree(self) -> EngineTree:
        """The supervision tree (states, generations, restarts, mailboxes) with each ticket's
        registry status, connection state and routing counters."""
        return debug_tree(self._core, self._root)

    def events(self, *, capacity: int = 1024, replay: int = 0) -> EventFeed:
        """Operator events from now on (and the last ``replay`` ones), as an async iterator:
        connects, losses with their cause, failed attempts, replays, actor restarts, error
        frames, 429/418s, catalog refreshes, drifted frames, slow and failed subscribers, and
        every subscriber's Interrupted/Gap/SnapshotMissing/Backfilled/Ended
        (:mod:`engine.observability.operator_events`).

        Its buffer holds ``capacity`` events; a reader that falls behind gets an
        ``EventsDropped`` with the count, and never slows the engine. The iteration ends when
        the engine stops; ``with eng.events() as feed:`` (or ``feed.close()``) detaches it
        earlier."""
        return EventFeed(self._core.journal, capacity=capacity, replay=replay)
