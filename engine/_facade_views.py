"""The facade's read-only views of a running engine: ``registry()``, ``get_ticket_usage()``,
``metrics()`` and ``debug_tree()``, built from the shared state (:mod:`engine.engine_core`).

Synchronous reads: the engine runs on one Trio thread, so a view never interleaves with a write.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import UTC, datetime
from types import MappingProxyType

import attrs
import trio

from actors import Supervisor
from engine.debug import EngineTree, TicketNode
from engine.engine_core import EngineCore
from engine.metrics import ConnectionState, EngineMetrics, SubscriberMetrics
from engine.snapshots import SnapshotUsage
from engine.subscriptions import PoolUsage

__all__ = (
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


def registry_view(core: EngineCore) -> dict[str, dict[str, object]]:
    """``registry()``: the registry's view per ticket, with the connection's state and a
    ``*_utc`` twin of every time."""
    now = trio.current_time()
    wall = time.time()

    def utc(at: object) -> datetime | None:
        if not isinstance(at, int | float):
            return None
        return datetime.fromtimestamp(wall - (now - at), UTC)

    view = core.registry.registry_view(now, stall_after=core.config.stall_timeout)
    for name, entry in view.items():
        runtime = core.tickets.get(name)
        if runtime is not None:
            entry.update(
                state=runtime.state.value,
                state_since=runtime.since,
                reconnects=runtime.reconnects,
                last_failure=runtime.last_failure,
                last_failure_at=runtime.last_failure_at,
            )
            failing = runtime.lost_at is not None and runtime.state not in UP
            if failing and entry["status"] == "inactive" and entry["subscriptions"]:
                # The ticket's own news is synchronous; the registry hears of a failed
                # connect a moment later. Never show a failing ticket as merely inactive.
                entry.update(status="error", error=runtime.last_failure)
        for field in ("created_at", "last_message", "state_since", "last_failure_at"):
            if field in entry:
                entry[f"{field}_utc"] = utc(entry[field])
    return view


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
        orderbook_rows_mismatch=MappingProxyType(
            {
                "trimmed": sum(t.books_trimmed for t in routing.tickets.values()),
                "short": sum(t.books_short for t in routing.tickets.values()),
            }
        ),
    )


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
