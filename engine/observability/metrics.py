"""Engine metrics: live counters kept by the engine, frozen :class:`EngineMetrics` for readers.

The engine writes a :class:`~engine.observability.records.MetricsRecorder` (plain counters, no
locks: everything runs on one Trio thread) from the places where things happen: the facade counts
subscription outcomes and snapshot latency, the registry actor counts connections, restarts, gaps
and realtime connect latency, the ticket pumps count received messages per type.
``Engine.metrics()`` freezes the recorder together with the registry's pool usage and the router's
per-subscriber counters into one :class:`EngineMetrics`, which :meth:`EngineMetrics.to_prometheus`
renders in the Prometheus text exposition format (version 0.0.4). The exposition is the table
``_FAMILIES``: one row per metric family (name, kind, HELP text, how to read its samples), in output
order; adding a metric is adding a row.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Literal, TypeVar

import attrs

from engine.core.connection_state import ConnectionState
from engine.core.registry import PoolUsage
from engine.observability.records import (
    LatencySummary,
    SnapshotUsage,
    SubscriberMetrics,
    TicketMetrics,
)

__all__ = ("EngineMetrics", "prometheus_families")


@attrs.frozen
class EngineMetrics:
    """A frozen statistics snapshot of the whole engine (``Engine.metrics()``)."""

    #: Trio clock time of the snapshot.
    at: float
    #: Per pool (``realtime``, ``private``): tickets, open/parked/idle, efficiency.
    ticket_usage: Mapping[str, PoolUsage]
    #: The snapshot pool: tickets open, requests in flight, sent, timeouts.
    snapshot_usage: SnapshotUsage
    #: Live subscriptions per state name (``pending``, ``active``...).
    subscriptions: Mapping[str, int]
    subscriptions_succeeded: int
    subscriptions_failed: int
    subscriptions_broken: int
    connects: int
    reconnects: int
    connection_losses: int
    restarts: int
    gaps: int
    #: Probes of busy connections that went silent, and connections ended as stalled.
    stall_probes: int
    stalls: int
    requests_sent: int
    parking_requests: int
    #: Frames received per message type.
    messages_received: Mapping[str, int]
    #: Realtime frames the router had no subscriber for (parking replies, stale frames...).
    unrouted: int
    snapshot_requests: int
    snapshot_failures: int
    #: ``request_snapshot`` / batch call to result.
    snapshot_latency: LatencySummary
    #: ``subscribe_realtime`` call to the subscription's first message (its SNAPSHOT).
    connect_latency: LatencySummary
    #: Connection loss to the first message of the restored connection.
    resubscribe_latency: LatencySummary
    #: Per live subscription.
    subscribers: Mapping[str, SubscriberMetrics]
    #: Per realtime/private ticket: connection state, time in state, reconnects, last failure.
    tickets: Mapping[str, TicketMetrics] = attrs.field(factory=dict)
    #: Error frames traced to a request (see ``TicketMetrics.rejected_requests``).
    requests_rejected: int = 0
    #: Tickets that gave up (restart intensity exceeded, refused keys).
    tickets_failed: int = 0
    #: Frames skipped because they could not be decoded, per reason (``not_json``,
    #: ``identity``, ``unknown_status``...: ``engine.wire.protocol.FRAME_PROBLEMS``). None of them
    #: ended a connection.
    undecodable_frames: Mapping[str, int] = attrs.field(factory=dict)
    #: Data frames of types the engine does not model, per type (skipped).
    unknown_types: Mapping[str, int] = attrs.field(factory=dict)
    #: Fields a frame did not carry as modelled (missing, null, unreadable), left ``None``,
    #: per ``(data type, field)``.
    field_drift: Mapping[tuple[str, str], int] = attrs.field(factory=dict)
    #: SNAPSHOT waits that ran out: the subscriber got ``SnapshotMissing``, then REALTIME.
    snapshots_missing: int = 0
    #: Orderbook deliveries with more rows than asked (``trimmed`` for the subscriber) or fewer
    #: (``short``, delivered as they came).
    orderbook_rows_mismatch: Mapping[str, int] = attrs.field(factory=dict)
    #: subscribe_realtime / modify calls cancelled by their caller (they changed nothing;
    #: counted in neither ``subscriptions_succeeded`` nor ``subscriptions_failed``).
    subscriptions_cancelled: int = 0
    #: Quotation REST requests sent (history calls and the engine's own), by group, retries
    #: included; 429 and 418 answers; requests sent again after a 429; requests that raised.
    rest_requests: Mapping[str, int] = attrs.field(factory=dict)
    rest_rate_limited: int = 0
    rest_blocked: int = 0
    rest_retries: int = 0
    rest_failures: int = 0
    #: Trade backfills after gaps: finished, finished with something unfilled (each
    #: ``Backfilled`` event says what), trades fetched, REST pages, running now; and the time
    #: from the restored stream's SNAPSHOT to the release of the fetched trades.
    backfills: int = 0
    backfills_incomplete: int = 0
    backfill_trades: int = 0
    backfill_pages: int = 0
    backfills_running: int = 0
    #: Trade streams of subscribers whose live trades are held for a backfill right now.
    backfill_streams: int = 0
    backfill_latency: LatencySummary = attrs.field(factory=LatencySummary)
    #: Error frames Upbit sent, per error name (each closed its connection).
    error_frames: Mapping[str, int] = attrs.field(factory=dict)
    #: Operator events published (``Engine.events()``, the debug channel), per kind, and those
    #: dropped from readers that fell behind.
    operator_events: Mapping[str, int] = attrs.field(factory=dict)
    operator_events_dropped: int = 0
    #: Debug channel clients connected now, turned away (too many), dropped (too slow).
    debug_clients: int = 0
    debug_clients_refused: int = 0
    debug_clients_dropped: int = 0
    #: A gateway's counters (``upbit-engine serve``; empty otherwise): ``stored``,
    #: ``duplicates``, ``dropped``, ``retries`` (totals), ``queued`` and ``connected`` (now).
    gateway: Mapping[str, float] = attrs.field(factory=dict)

    @property
    def ticket_efficiency(self) -> float:
        """The realtime pool's planned ticket efficiency (``engine.core.efficiency.Efficiency``)."""
        usage = self.ticket_usage.get("realtime")
        return 1.0 if usage is None else usage.efficiency.ticket

    @property
    def subscription_success_rate(self) -> float:
        """Accepted / all subscribe and modify calls (1.0 before any)."""
        calls = self.subscriptions_succeeded + self.subscriptions_failed
        return 1.0 if calls == 0 else self.subscriptions_succeeded / calls

    def to_prometheus(self, prefix: str = "upbit_engine") -> str:
        """The metrics in the Prometheus text exposition format (one family per row of
        ``_FAMILIES``, in table order)."""
        lines: list[str] = []
        for family in _FAMILIES:
            full = f"{prefix}_{family.name}"
            lines.append(f"# HELP {full} {family.text}")
            lines.append(f"# TYPE {full} {family.kind}")
            lines.extend(
                f"{full}{suffix}{_label_text(labels)} {_number(value)}"
                for suffix, labels, value in family.read(self)
            )
        return "\n".join(lines) + "\n"


def prometheus_families(
    metrics: EngineMetrics, prefix: str = "upbit_engine"
) -> Iterator[tuple[str, str, str, list[tuple[str, Mapping[str, str], float]]]]:
    """Each family as ``(full name, kind, HELP text, samples)``, in table order, for an
    exposition library (``engine.runtime.metrics_http``); a sample is ``(suffix, labels,
    value)`` with suffix ``""``, ``"_count"`` or ``"_sum"``."""
    for family in _FAMILIES:
        yield f"{prefix}_{family.name}", family.kind, family.text, list(family.read(metrics))


# -- Prometheus exposition: a table of families and the readers that fill them -------------------

#: One exposition line: a suffix of the family's name (``_count``, ``_sum`` or ``""``), the
#: labels in their output order, and the value.
_Sample = tuple[str, Mapping[str, str], float]
#: Reads a family's samples, in output order, from one snapshot.
_Read = Callable[[EngineMetrics], Iterable[_Sample]]
_T = TypeVar("_T")


@attrs.frozen
class _Family:
    """One metric family of the exposition: a row of ``_FAMILIES``."""

    #: The name after the prefix (``connects_total`` is ``upbit_engine_connects_total``).
    name: str
    kind: Literal["counter", "gauge", "summary"]
    #: The HELP text.
    text: str
    read: _Read


def _counter(name: str, text: str, read: _Read) -> _Family:
    return _Family(name, "counter", text, read)


def _gauge(name: str, text: str, read: _Read) -> _Family:
    return _Family(name, "gauge", text, read)


def _summary(name: str, text: str, get: Callable[[EngineMetrics], LatencySummary]) -> _Family:
    """A summary family without quantiles: ``_count`` and ``_sum`` lines."""

    def read(metrics: EngineMetrics) -> list[_Sample]:
        summary = get(metrics)
        return [("_count", {}, summary.count), ("_sum", {}, summary.total)]

    return _Family(name, "summary", text, read)


def _one(get: Callable[[EngineMetrics], float]) -> _Read:
    """A single unlabelled sample."""
    return lambda metrics: [("", {}, get(metrics))]


def _each(
    label: str, get: Callable[[EngineMetrics], Mapping[str, _T]], value: Callable[[_T], float]
) -> _Read:
    """One sample per key of a mapping (sorted), labelled ``label="key"``."""

    def read(metrics: EngineMetrics) -> list[_Sample]:
        items = get(metrics)
        return [("", {label: key}, value(items[key])) for key in sorted(items)]

    return read


def _by(label: str, get: Callable[[EngineMetrics], Mapping[str, int]]) -> _Read:
    """One sample per key of a count mapping (sorted), labelled ``label="key"``."""
    return _each(label, get, lambda count: count)


def _gateway(key: str) -> _Read:
    """A gateway counter; no sample at all when the engine is not a gateway."""

    def read(metrics: EngineMetrics) -> list[_Sample]:
        value = metrics.gateway.get(key)
        return [] if value is None else [("", {}, value)]

    return read


def _per_pool(value: Callable[[PoolUsage], float]) -> _Read:
    return _each("pool", lambda metrics: metrics.ticket_usage, value)


def _per_ticket(value: Callable[[TicketMetrics], float]) -> _Read:
    return _each("ticket", lambda metrics: metrics.tickets, value)


def _per_subscriber(value: Callable[[SubscriberMetrics], float]) -> _Read:
    return _each("subscription", lambda metrics: metrics.subscribers, value)


def _field_drift(metrics: EngineMetrics) -> list[_Sample]:
    drift = metrics.field_drift
    return [
        ("", {"type": kind, "field": field}, drift[kind, field]) for kind, field in sorted(drift)
    ]


def _ticket_states(metrics: EngineMetrics) -> list[_Sample]:
    """Every state of every ticket: 1 for the ticket's current state, 0 for the others."""
    tickets = metrics.tickets
    return [
        ("", {"ticket": name, "state": state.value}, int(state is tickets[name].state))
        for name in sorted(tickets)
        for state in ConnectionState
    ]


#: The exposition, one row per family, in output order. ``EngineMetrics.at`` is not exported.
_FAMILIES: tuple[_Family, ...] = (
    _counter(
        "subscriptions_succeeded_total",
        "Accepted subscribe/modify calls.",
        _one(lambda m: m.subscriptions_succeeded),
    ),
    _counter(
        "subscriptions_failed_total",
        "Rejected subscribe/modify calls.",
        _one(lambda m: m.subscriptions_failed),
    ),
    _counter(
        "subscriptions_cancelled_total",
        "Subscribe/modify calls cancelled by their caller (no effect).",
        _one(lambda m: m.subscriptions_cancelled),
    ),
    _counter(
        "subscriptions_broken_total",
        "Subscriptions failed after acceptance.",
        _one(lambda m: m.subscriptions_broken),
    ),
    _gauge(
        "subscriptions", "Live subscriptions by state.", _by("state", lambda m: m.subscriptions)
    ),
    _counter(
        "connects_total", "WebSocket connections opened by tickets.", _one(lambda m: m.connects)
    ),
    _counter(
        "reconnects_total", "Connections replacing an earlier one.", _one(lambda m: m.reconnects)
    ),
    _counter(
        "connection_losses_total",
        "Connections that ended abnormally.",
        _one(lambda m: m.connection_losses),
    ),
    _counter("ticket_restarts_total", "Ticket actor restarts.", _one(lambda m: m.restarts)),
    _counter(
        "requests_rejected_total",
        "Error frames traced to the request that caused them.",
        _one(lambda m: m.requests_rejected),
    ),
    _counter(
        "tickets_failed_total",
        "Tickets that gave up reconnecting.",
        _one(lambda m: m.tickets_failed),
    ),
    _counter("gaps_total", "Outages that interrupted subscribers.", _one(lambda m: m.gaps)),
    _counter(
        "stall_probes_total",
        "Pings sent because a busy connection went silent.",
        _one(lambda m: m.stall_probes),
    ),
    _counter("stalls_total", "Connections ended as stalled.", _one(lambda m: m.stalls)),
    _counter(
        "requests_sent_total", "Requests sent on realtime tickets.", _one(lambda m: m.requests_sent)
    ),
    _counter(
        "parking_requests_total",
        "Soft-unsubscribe parking requests.",
        _one(lambda m: m.parking_requests),
    ),
    _counter(
        "messages_received_total",
        "Frames received, by type.",
        _by("type", lambda m: m.messages_received),
    ),
    _counter("unrouted_total", "Frames with no subscriber.", _one(lambda m: m.unrouted)),
    _counter(
        "rest_requests_total",
        "Quotation REST requests sent, by group.",
        _by("group", lambda m: m.rest_requests),
    ),
    _counter(
        "rest_rate_limited_total",
        "Quotation REST answers 429 (Too Many Requests).",
        _one(lambda m: m.rest_rate_limited),
    ),
    _counter(
        "rest_blocked_total",
        "Quotation REST answers 418 (blocked).",
        _one(lambda m: m.rest_blocked),
    ),
    _counter(
        "rest_retries_total",
        "Quotation REST requests sent again after a 429.",
        _one(lambda m: m.rest_retries),
    ),
    _counter(
        "rest_failures_total",
        "Quotation REST requests that raised.",
        _one(lambda m: m.rest_failures),
    ),
    _counter(
        "frames_undecodable_total",
        "Frames skipped because they could not be decoded, by reason.",
        _by("reason", lambda m: m.undecodable_frames),
    ),
    _counter(
        "frames_unknown_type_total",
        "Data frames of types the engine does not model, by type.",
        _by("type", lambda m: m.unknown_types),
    ),
    _counter(
        "field_drift_total",
        "Fields left None because a frame lacked them, sent null or unreadable values.",
        _field_drift,
    ),
    _counter(
        "snapshots_missing_total",
        "SNAPSHOT waits that ran out (REALTIME delivered without one).",
        _one(lambda m: m.snapshots_missing),
    ),
    _counter(
        "orderbook_rows_mismatch_total",
        "Orderbook deliveries with more (trimmed) or fewer (short) rows than asked.",
        _by("kind", lambda m: m.orderbook_rows_mismatch),
    ),
    _counter("snapshot_requests_total", "Snapshot calls.", _one(lambda m: m.snapshot_requests)),
    _counter(
        "snapshot_failures_total", "Failed snapshot calls.", _one(lambda m: m.snapshot_failures)
    ),
    _gauge(
        "snapshot_tickets_open",
        "Open snapshot tickets.",
        _one(lambda m: m.snapshot_usage.tickets_open),
    ),
    _counter(
        "snapshot_wire_requests_total",
        "Snapshot-only requests sent.",
        _one(lambda m: m.snapshot_usage.requests_sent),
    ),
    _summary("snapshot_latency_seconds", "Snapshot call latency.", lambda m: m.snapshot_latency),
    _counter("backfills_total", "Trade backfills finished.", _one(lambda m: m.backfills)),
    _counter(
        "backfills_incomplete_total",
        "Trade backfills that left part of a gap unfilled.",
        _one(lambda m: m.backfills_incomplete),
    ),
    _counter(
        "backfill_trades_total",
        "Trades fetched by backfills.",
        _one(lambda m: m.backfill_trades),
    ),
    _counter(
        "backfill_pages_total", "REST pages fetched by backfills.", _one(lambda m: m.backfill_pages)
    ),
    _gauge("backfills_running", "Trade backfills running.", _one(lambda m: m.backfills_running)),
    _gauge(
        "backfill_streams",
        "Subscribers' trade streams held for a backfill.",
        _one(lambda m: m.backfill_streams),
    ),
    _summary(
        "backfill_latency_seconds",
        "SNAPSHOT of a restored stream to its backfill's release.",
        lambda m: m.backfill_latency,
    ),
    _counter(
        "error_frames_total", "Error frames from Upbit.", _by("error", lambda m: m.error_frames)
    ),
    _counter(
        "operator_events_total",
        "Operator events published, per kind.",
        _by("kind", lambda m: m.operator_events),
    ),
    _counter(
        "operator_events_dropped_total",
        "Operator events dropped from readers that fell behind.",
        _one(lambda m: m.operator_events_dropped),
    ),
    _gauge("debug_clients", "Debug channel clients connected.", _one(lambda m: m.debug_clients)),
    _counter(
        "debug_clients_refused_total",
        "Debug channel clients turned away (too many).",
        _one(lambda m: m.debug_clients_refused),
    ),
    _counter(
        "debug_clients_dropped_total",
        "Debug channel clients dropped (too slow to read).",
        _one(lambda m: m.debug_clients_dropped),
    ),
    _counter(
        "gateway_messages_stored_total",
        "Messages the gateway's JetStream stream stored.",
        _gateway("stored"),
    ),
    _counter(
        "gateway_duplicates_total",
        "Messages JetStream already had (another gateway, or a retry).",
        _gateway("duplicates"),
    ),
    _counter(
        "gateway_dropped_total",
        "Messages dropped because NATS was unreachable beyond the buffer.",
        _gateway("dropped"),
    ),
    _counter("gateway_retries_total", "Publishes retried.", _gateway("retries")),
    _gauge("gateway_queued", "Messages waiting for JetStream's ack.", _gateway("queued")),
    _gauge("gateway_connected", "1 while NATS acknowledges.", _gateway("connected")),
    _summary("connect_latency_seconds", "Subscribe to first message.", lambda m: m.connect_latency),
    _summary(
        "resubscribe_latency_seconds",
        "Connection loss to first message after replay.",
        lambda m: m.resubscribe_latency,
    ),
    _gauge("tickets_open", "Open tickets per pool.", _per_pool(lambda u: u.open)),
    _gauge("tickets_parked", "Parked tickets per pool.", _per_pool(lambda u: u.parked)),
    _gauge("tickets_waiting", "Tickets waiting for a connection.", _per_pool(lambda u: u.waiting)),
    _gauge("streams", "Distinct streams wanted per pool.", _per_pool(lambda u: u.streams)),
    _gauge(
        "ticket_efficiency",
        "Planned ticket efficiency per pool.",
        _per_pool(lambda u: u.efficiency.ticket),
    ),
    _gauge(
        "wire_ticket_efficiency",
        "Ticket efficiency of what was sent, per pool.",
        _per_pool(lambda u: u.wire_efficiency.ticket),
    ),
    _gauge(
        "ticket_state", "Connection state per ticket (1 for the current state).", _ticket_states
    ),
    _gauge(
        "ticket_time_in_state_seconds",
        "Seconds each ticket has been in its current state.",
        _per_ticket(lambda t: t.time_in_state),
    ),
    _counter(
        "ticket_reconnects_total",
        "Connections replacing an earlier one, per ticket.",
        _per_ticket(lambda t: t.reconnects),
    ),
    _counter(
        "ticket_failures_total",
        "Connections or attempts that ended abnormally, per ticket.",
        _per_ticket(lambda t: t.failures),
    ),
    _counter(
        "subscriber_conflated_total",
        "Values conflated per subscription.",
        _per_subscriber(lambda s: s.conflated),
    ),
    _counter(
        "subscriber_dropped_total",
        "Items dropped per subscription.",
        _per_subscriber(lambda s: s.dropped),
    ),
    _gauge(
        "subscriber_buffered",
        "Items waiting per subscription.",
        _per_subscriber(lambda s: s.buffered),
    ),
)


def _label_text(labels: Mapping[str, str]) -> str:
    if not labels:
        return ""
    parts = []
    for key, value in labels.items():
        escaped = value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
        parts.append(f'{key}="{escaped}"')
    return "{" + ",".join(parts) + "}"


def _number(value: float) -> str:
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))
