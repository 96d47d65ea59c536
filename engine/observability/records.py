"""The records behind the engine's metrics: the live :class:`MetricsRecorder` the engine writes,
and the frozen per-ticket, per-subscriber, latency and snapshot-pool records that
:class:`~engine.observability.metrics.EngineMetrics` is made of."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping

import attrs

from engine.core.connection_state import ConnectionState
from engine.observability.frame_report import FrameReport

__all__ = (
    "LatencySummary",
    "LatencyTracker",
    "MetricsRecorder",
    "SnapshotUsage",
    "SubscriberMetrics",
    "TicketMetrics",
)


@attrs.frozen
class SnapshotUsage:
    """The snapshot pool at a moment (``SnapshotService.usage()``)."""

    #: Tickets in the pool (``EngineConfig.snapshot_pool_size``).
    pool_size: int
    #: Tickets holding an open connection now.
    tickets_open: int
    #: ``request`` calls waiting for their SNAPSHOTs now.
    requests_in_flight: int
    #: ``request`` calls accepted since the service was created.
    requests: int
    #: Calls that received every SNAPSHOT they asked for.
    completed: int
    #: Calls that failed at their timeout with streams missing.
    timeouts: int
    #: Calls failed by an error frame from Upbit.
    server_errors: int
    #: Snapshot-only requests sent on the wire (many calls share one).
    requests_sent: int
    #: SNAPSHOT messages received.
    snapshots_received: int
    #: Connections opened.
    connects: int
    #: Connection attempts that failed (network errors, HTTP 429/418, handshake refusals).
    connect_failures: int
    #: Open connections that broke (dropped, no pong, closed by Upbit).
    connections_lost: int
    #: Frames skipped: undecodable, or of a type the engine does not model.
    malformed_frames: int


@attrs.frozen
class TicketMetrics:
    """One realtime/private ticket's connection at a moment (``EngineMetrics.tickets``)."""

    ticket: str
    state: ConnectionState
    #: Trio time the ticket entered ``state``.
    since: float
    #: Seconds in ``state`` at the snapshot.
    time_in_state: float
    #: Connections opened, and how many of them replaced an earlier connection.
    connects: int
    reconnects: int
    #: Connections (or attempts) that ended abnormally.
    failures: int
    #: Why the last failure happened, and when (Trio time); ``None`` before the first.
    last_failure: str | None
    last_failure_at: float | None
    #: Requests Upbit answered with an error frame that was traced to subscriptions.
    rejected_requests: int
    #: Frames skipped (undecodable, or of a type the engine does not model); the connection
    #: went on.
    frames_skipped: int = 0


@attrs.frozen
class LatencySummary:
    """Count, sum, minimum, maximum and last value of a series of durations (seconds)."""

    count: int = 0
    total: float = 0.0
    minimum: float | None = None
    maximum: float | None = None
    last: float | None = None

    @property
    def mean(self) -> float | None:
        """The average, or ``None`` before the first observation."""
        return None if self.count == 0 else self.total / self.count


class LatencyTracker:
    """Accumulates durations into a :class:`LatencySummary` (O(1) per observation)."""

    __slots__ = ("_count", "_last", "_max", "_min", "_total")

    def __init__(self) -> None:
        self._count = 0
        self._total = 0.0
        self._min = math.inf
        self._max = -math.inf
        self._last: float | None = None

    def observe(self, seconds: float) -> None:
        """Record one duration; negative values (clock misuse) count as 0."""
        value = max(0.0, seconds)
        self._count += 1
        self._total += value
        self._min = min(self._min, value)
        self._max = max(self._max, value)
        self._last = value

    def summary(self) -> LatencySummary:
        """The durations seen so far, frozen."""
        if self._count == 0:
            return LatencySummary()
        return LatencySummary(self._count, self._total, self._min, self._max, self._last)


class MetricsRecorder:
    """The engine's mutable counters. Only the engine writes them; read :class:`EngineMetrics`."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        #: Undecodable frames, unmodelled types and drifted fields, from every receive loop.
        self.frames = FrameReport(clock)
        #: Calls of subscribe_realtime / modify that were accepted, and rejected or failed.
        self.subscriptions_succeeded = 0
        self.subscriptions_failed = 0
        #: Calls of subscribe_realtime / modify cancelled by their caller: they left no trace.
        self.subscriptions_cancelled = 0
        #: Subscriptions the engine failed after acceptance (overflowing lossless buffer...).
        self.subscriptions_broken = 0
        #: Successful WebSocket connections of realtime/private tickets, and how many of them
        #: replaced an earlier connection of the same ticket.
        self.connects = 0
        self.reconnects = 0
        #: Ticket connections that ended abnormally (error, stall, server close).
        self.connection_losses = 0
        #: Ticket actor restarts done by the ticket supervisor.
        self.restarts = 0
        #: Outages during which some subscriber's streams were interrupted.
        self.gaps = 0
        #: Protocol pings sent because a busy connection went silent (engine.core.stall), and
        #: connections ended as stalled (no frame for the heartbeat, or no pong to a probe).
        self.stall_probes = 0
        self.stalls = 0
        #: Requests sent on realtime tickets: full sets, parking requests, text PINGs.
        self.requests_sent = 0
        self.parking_requests = 0
        #: Frames received per message type (``status`` for keepalive ``UP`` frames).
        self.received: dict[str, int] = {}
        self.snapshot_latency = LatencyTracker()
        self.connect_latency = LatencyTracker()
        self.resubscribe_latency = LatencyTracker()
        self.snapshot_requests = 0
        self.snapshot_failures = 0
        #: Error frames traced to the request that caused them (its subscriptions suspected).
        self.requests_rejected = 0
        #: Tickets that stopped reconnecting (restart intensity exceeded, refused keys).
        self.tickets_failed = 0
        #: SNAPSHOT waits that ran out (the subscriber got ``SnapshotMissing``).
        self.snapshots_missing = 0
        #: Trade backfills finished, those that left something unfilled, the trades they
        #: fetched, their REST pages, those running; and from the ask to the release.
        self.backfills = 0
        self.backfills_incomplete = 0
        self.backfill_trades = 0
        self.backfill_pages = 0
        self.backfills_running = 0
        self.backfill_latency = LatencyTracker()

    def count_stall_probe(self) -> None:
        self.stall_probes += 1

    def count_received(self, data_type: str, count: int = 1) -> None:
        """Count ``count`` frames of ``data_type``."""
        received = self.received
        received[data_type] = received.get(data_type, 0) + count


@attrs.frozen
class SubscriberMetrics:
    """What reached one live subscription, and what its buffer had to give up."""

    subscription_id: str
    #: Messages routed into its buffer, per data type.
    routed: Mapping[str, int]
    #: Messages read by its consumer.
    delivered: int
    #: Waiting in its buffer.
    buffered: int
    #: Replaced by newer values of the same stream (CONFLATE policy).
    conflated: int
    #: Discarded (buffer closed or failed).
    dropped: int
    #: Trades skipped because it already had them (same ``sequential_id``).
    duplicates_skipped: int
