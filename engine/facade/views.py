"""The facade's read-only views of a running engine: ``registry()``, ``get_ticket_usage()``,
``metrics()`` and ``debug_tree()``, built from the shared state (:mod:`engine.runtime.state`).

Synchronous reads: the engine runs on one Trio thread, so a view never interleaves with a write.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

import attrs
import trio

from actors import Supervisor
from engine.core.connection_state import ConnectionState
from engine.core.registry import PoolUsage
from engine.observability.debug import EngineTree, TicketNode
from engine.observability.metrics import EngineMetrics
from engine.observability.records import SnapshotUsage, SubscriberMetrics
from engine.runtime.state import EngineCore

__all__ = (
    "TicketEntry",
    "TicketUsage",
    "debug_tree",
    "engine_metrics",
    "registry_view",
    "stream_pools",
    "ticket_usage",
)

#: Ticket connection states in which its streams flow.
UP = (ConnectionState.READY, ConnectionState.PARKED)


@attrs.frozen
class TicketUsage:
    """``get_ticket_usage()``: each pool's usage, typed (``usage.realtime.open``)."""

    #: Realtime tickets: open/parked/idle/waiting, per connection state, streams, efficiency.
    realtime: PoolUsage
    #: The private ticket (myOrder, myAsset), the same measures.
    private: PoolUsage
    #: The snapshot pool: tickets open, requests in flight, sent, timeouts.
    snapshot: SnapshotUsage

    def to_dict(self) -> dict[str, PoolUsage | SnapshotUsage]:
        """``{"realtime": ..., "private": ..., "snapshot": ...}``, for printing."""
        return {"realtime": self.realtime, "private": self.private, "snapshot": self.snapshot}


def ticket_usage(core: EngineCore) -> TicketUsage:
    """``get_ticket_usage()``: the stream pools, and the snapshot pool."""
    pools = stream_pools(core)
    return TicketUsage(pools["realtime"], pools["private"], core.snapshots.usage())


def stream_pools(core: EngineCore) -> dict[str, PoolUsage]:
    """The realtime and private pools' usage, with tickets counted per connection state."""
    usage = core.registry.usage(trio.current_time())
    pools: dict[str, PoolUsage] = {}
    for pool, value in usage.items():
        if pool == "snapshot":
            continue
        states: dict[str, int] = {}
        for name in core.registry.tickets(pool):
            state = core.tickets[name].state.value
            states[state] = states.get(state, 0) + 1
        pools[pool] = attrs.evolve(value, connection_states=MappingProxyType(states))
    return pools


@attrs.frozen
class TicketEntry:
    """One ticket in ``registry()``: what it carries, its status, and its connection.

    ``status`` is ``"active"`` (connected, streams flowing), ``"inactive"`` or ``"error"``
    (``error`` says why). Times are Trio clock seconds; each has a ``*_utc`` twin, the same
    moment as a wall-clock ``datetime`` in UTC (or ``None``). ``to_dict()`` gives the plain
    mapping, for printing or JSON.
    """

    ticket: str
    mode: str
    data_types: tuple[str, ...]
    symbols: tuple[str, ...]
    created_at: float | None
    last_message: float | None
    status: str
    generation: int | None
    parked: bool
    #: The live subscriptions placed on the ticket.
    subscriptions: tuple[str, ...]
    error: str | None
    #: The latest subscriptions that failed on the ticket -> their cause.
    failed: Mapping[str, str]
    #: Subscriptions the next connection tests one request at a time (after a rejection).
    suspects: tuple[str, ...]
    #: The connection (see :class:`~engine.core.connection_state.ConnectionState`).
    state: str
    state_since: float
    reconnects: int
    last_failure: str | None
    last_failure_at: float | None
    created_at_utc: datetime | None
    last_message_utc: datetime | None
    state_since_utc: datetime | None
    last_failure_at_utc: datetime | None

    def to_dict(self) -> dict[str, object]:
        """The entry as a plain dict (lists for sequences)."""
        plain: dict[str, object] = {}
        for field in attrs.fields(TicketEntry):
            value = getattr(self, field.name)
            if isinstance(value, tuple):
                value = list(value)
            elif isinstance(value, MappingProxyType):
                value = dict(value)
            plain[field.name] = value
        return plain


def registry_view(core: EngineCore) -> dict[str, TicketEntry]:
    """``registry()``: the registry's view per ticket, with the connection's state and a
    ``*_utc`` twin of every time."""
    now = trio.current_time()
    wall = time.time()

    def utc(at: float | None) -> datetime | None:
        return None if at is None else datetime.fromtimestamp(wall - (now - at), UTC)

    entries: dict[str, TicketEntry] = {}
    for name, entry in core.registry.registry_view(
        now, stall_after=core.config.stall_timeout
    ).items():
        runtime = core.tickets[name]
        status, error = entry["status"], entry["error"]
        failing = runtime.lost_at is not None and runtime.state not in UP
        if failing and status == "inactive" and entry["subscriptions"]:
            # The ticket's own news is synchronous; the registry hears of a failed connect a
            # moment later. Never show a failing ticket as merely inactive.
            status, error = "error", runtime.last_failure
        created_at = _optional_float(entry["created_at"])
        last_message = _optional_float(entry["last_message"])
        entries[name] = TicketEntry(
            ticket=name,
            mode=str(entry["mode"]),
            data_types=_strings(entry["data_types"]),
            symbols=_strings(entry["symbols"]),
            created_at=created_at,
            last_message=last_message,
            status=str(status),
            generation=_optional_int(entry["generation"]),
            parked=bool(entry["parked"]),
            subscriptions=_strings(entry["subscriptions"]),
            error=None if error is None else str(error),
            failed=_causes(entry["failed"]),
            suspects=_strings(entry["suspects"]),
            state=runtime.state.value,
            state_since=runtime.since,
            reconnects=runtime.reconnects,
            last_failure=runtime.last_failure,
            last_failure_at=runtime.last_failure_at,
            created_at_utc=utc(created_at),
            last_message_utc=utc(last_message),
            state_since_utc=utc(runtime.since),
            last_failure_at_utc=utc(runtime.last_failure_at),
        )
    return entries


# The sans-IO registry builds each ticket's view as a plain mapping; these read it back typed.


def _strings(value: object) -> tuple[str, ...]:
    return tuple(str(item) for item in value) if isinstance(value, list | tuple) else ()


def _optional_float(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) else None


def _optional_int(value: object) -> int | None:
    return value if isinstance(value, int) else None


def _causes(value: object) -> Mapping[str, str]:
    if not isinstance(value, dict):
        return MappingProxyType({})
    return MappingProxyType({str(key): str(cause) for key, cause in value.items()})


def engine_metrics(core: EngineCore) -> EngineMetrics:
    """``metrics()``: a frozen statistics snapshot."""
    recorder = core.metrics
    routing = core.router.statistics()
    states: dict[str, int] = {}
    for sub in core.registry.subscriptions():
        states[sub.state.value] = states.get(sub.state.value, 0) + 1
    subscribers = {
        sub_id: SubscriberMetrics(
            subscription_id=sub_id,
            routed=stats.routed,
            delivered=stats.buffer.delivered,
            buffered=stats.buffer.buffered,
            conflated=stats.buffer.conflated,
            dropped=stats.buffer.dropped,
            duplicates_skipped=stats.buffer.duplicates_skipped,
        )
        for sub_id, stats in routing.subscribers.items()
    }
    now = trio.current_time()
    return EngineMetrics(
        at=now,
        ticket_usage=MappingProxyType(stream_pools(core)),
        snapshot_usage=core.snapshots.usage(),
        subscriptions=MappingProxyType(states),
        subscriptions_succeeded=recorder.subscriptions_succeeded,
        subscriptions_failed=recorder.subscriptions_failed,
        subscriptions_cancelled=recorder.subscriptions_cancelled,
        subscriptions_broken=recorder.subscriptions_broken,
        connects=recorder.connects,
        reconnects=recorder.reconnects,
        connection_losses=recorder.connection_losses,
        restarts=recorder.restarts,
        gaps=recorder.gaps,
        stall_probes=recorder.stall_probes,
        stalls=recorder.stalls,
        requests_sent=recorder.requests_sent,
        parking_requests=recorder.parking_requests,
        messages_received=MappingProxyType(dict(recorder.received)),
        unrouted=sum(t.unrouted for t in routing.tickets.values()),
        snapshot_requests=recorder.snapshot_requests,
        snapshot_failures=recorder.snapshot_failures,
        snapshot_latency=recorder.snapshot_latency.summary(),
        connect_latency=recorder.connect_latency.summary(),
        resubscribe_latency=recorder.resubscribe_latency.summary(),
        subscribers=MappingProxyType(subscribers),
        tickets=MappingProxyType(
            {name: runtime.metrics(now) for name, runtime in core.tickets.items()}
        ),
        requests_rejected=recorder.requests_rejected,
        tickets_failed=recorder.tickets_failed,
        undecodable_frames=MappingProxyType(dict(recorder.frames.undecodable)),
        unknown_types=MappingProxyType(dict(recorder.frames.unknown_types)),
        field_drift=MappingProxyType(dict(recorder.frames.drifted_fields)),
        snapshots_missing=recorder.snapshots_missing,
        backfill_streams=sum(sub.filling for sub in routing.subscribers.values()),
        **_operations_metrics(core),
        **_rest_metrics(core),
        orderbook_rows_mismatch=MappingProxyType(
            {
                "trimmed": sum(t.books_trimmed for t in routing.tickets.values()),
                "short": sum(t.books_short for t in routing.tickets.values()),
            }
        ),
    )


def _operations_metrics(core: EngineCore) -> dict[str, Any]:
    journal = core.journal
    channel = core.debug_channel
    stats = channel.stats if channel is not None else None
    return {
        "error_frames": MappingProxyType(dict(core.metrics.frames.error_frames)),
        "operator_events": MappingProxyType(dict(journal.by_kind)),
        "operator_events_dropped": journal.dropped,
        "debug_clients": stats.clients if stats else 0,
        "debug_clients_refused": stats.refused if stats else 0,
        "debug_clients_dropped": stats.dropped_slow if stats else 0,
        "gateway": MappingProxyType(dict(core.gateway_metrics())) if core.gateway_metrics else {},
    }


def _rest_metrics(core: EngineCore) -> dict[str, Any]:
    rest = core.quotation.statistics()
    recorder = core.metrics
    return {
        "rest_requests": MappingProxyType(dict(rest.requests)),
        "rest_rate_limited": rest.rate_limited,
        "rest_blocked": rest.blocked,
        "rest_retries": rest.retries,
        "rest_failures": rest.failures,
        "backfills": recorder.backfills,
        "backfills_incomplete": recorder.backfills_incomplete,
        "backfill_trades": recorder.backfill_trades,
        "backfill_pages": recorder.backfill_pages,
        "backfills_running": recorder.backfills_running,
        "backfill_latency": recorder.backfill_latency.summary(),
    }


def debug_tree(core: EngineCore, root: Supervisor) -> EngineTree:
    """``debug_tree()``: the supervision tree with each ticket's registry status, connection
    state and routing counters."""
    now = trio.current_time()
    routing = core.router.statistics().tickets
    tickets: Mapping[str, TicketNode] = MappingProxyType(
        {
            name: TicketNode(
                core.registry.ticket_status(name),
                routing.get(name),
                runtime.metrics(now) if (runtime := core.tickets.get(name)) else None,
            )
            for name in core.registry.tickets()
            if not name.startswith("snapshot-")
        }
    )
    return EngineTree(root.tree(), tickets)
