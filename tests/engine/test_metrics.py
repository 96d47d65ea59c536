"""EngineMetrics pieces that need no engine: latency summaries and the Prometheus text."""

from __future__ import annotations

import math
import re

import attrs
import pytest

from engine.core.efficiency import Efficiency
from engine.core.registry import PoolUsage, SubscriptionKind
from engine.observability.metrics import ConnectionState, EngineMetrics
from engine.observability.records import (
    LatencySummary,
    LatencyTracker,
    MetricsRecorder,
    SnapshotUsage,
    SubscriberMetrics,
    TicketMetrics,
)

#: Fields of EngineMetrics the exposition leaves out on purpose.
NOT_EXPORTED = frozenset({"at"})


def test_latency_tracker_summarises_observations() -> None:
    tracker = LatencyTracker()
    assert tracker.summary() == LatencySummary()
    assert tracker.summary().mean is None
    for value in (0.5, 0.1, -1.0, 0.4):
        tracker.observe(value)
    summary = tracker.summary()
    assert summary.count == 4
    assert math.isclose(summary.total, 1.0)
    assert (summary.minimum, summary.maximum, summary.last) == (0.0, 0.5, 0.4)
    assert math.isclose(summary.mean or 0.0, 0.25)


def test_recorder_counts_received_messages_per_type() -> None:
    recorder = MetricsRecorder()
    recorder.count_received("ticker")
    recorder.count_received("ticker", 2)
    recorder.count_received("trade")
    assert recorder.received == {"ticker": 3, "trade": 1}


def test_prometheus_labels_are_escaped_and_numbers_formatted() -> None:
    from engine.observability.metrics import _label_text, _number

    assert _label_text({"subscription": 'a"b\\c\nd'}) == '{subscription="a\\"b\\\\c\\nd"}'
    assert _label_text({"type": "t", "field": "f"}) == '{type="t",field="f"}'
    assert _label_text({}) == ""
    assert _number(math.inf) == "+Inf"
    assert _number(-math.inf) == "-Inf"
    assert _number(math.nan) == "NaN"
    assert _number(3) == "3"
    assert _number(True) == "1"
    assert _number(0.1 + 0.2) == "0.30000000000000004"
    assert _number(2.0) == "2.0"


def populated(n: int = 1) -> EngineMetrics:
    """Every field set, every map filled; ``n`` scales every number (so 1 and 2 differ in all)."""

    def efficiency(ticket: float) -> Efficiency:
        return Efficiency(4 * n, 5 * n, 4 * n, 3 * n, 15, n, 2 * n, 0.8, 0.5, ticket)

    def pool(mode: SubscriptionKind, base: int) -> PoolUsage:
        b = base * n
        usage = efficiency(0.75 / n), efficiency(0.5 / n)
        return PoolUsage(mode, b, b + 1, b + 2, b + 3, b + 4, b + 5, b + 6, b + 7, *usage)

    def ticket(name: str, state: ConnectionState, base: int) -> TicketMetrics:
        b = base * n
        return TicketMetrics(name, state, 1.0, 2.5 * b, b, b + 1, b + 2, "lost", 1.5, b + 3, b + 4)

    return EngineMetrics(
        at=12.5 * n,
        ticket_usage={
            "realtime": pool(SubscriptionKind.REALTIME, 1),
            "private": pool(SubscriptionKind.PRIVATE, 2),
        },
        snapshot_usage=SnapshotUsage(*(k * n for k in range(3, 16))),
        subscriptions={"pending": 2 * n, "active": 7 * n},
        subscriptions_succeeded=11 * n,
        subscriptions_failed=3 * n,
        subscriptions_broken=2 * n,
        connects=9 * n,
        reconnects=4 * n,
        connection_losses=5 * n,
        restarts=6 * n,
        gaps=7 * n,
        stall_probes=41 * n,
        stalls=43 * n,
        requests_sent=21 * n,
        parking_requests=8 * n,
        messages_received={"trade": 50 * n, "ticker": 100 * n},
        unrouted=13 * n,
        snapshot_requests=14 * n,
        snapshot_failures=15 * n,
        snapshot_latency=LatencySummary(4 * n, 1.25 * n, 0.1, 0.6, 0.3),
        connect_latency=LatencySummary(2 * n, 0.25 * n, 0.1, 0.15, 0.15),
        resubscribe_latency=LatencySummary(n, 3.0 * n, 3.0, 3.0, 3.0),
        subscribers={
            "sub-1": SubscriberMetrics("sub-1", {"trade": 5 * n}, 5 * n, n, 2 * n, 3 * n, n),
            'a\\b"c': SubscriberMetrics('a\\b"c', {"ticker": 9 * n}, 8 * n, 3 * n, 4 * n, 5 * n, 6),
        },
        tickets={
            "realtime-1": ticket("realtime-1", ConnectionState.BACKING_OFF, 2),
            "realtime-0": ticket("realtime-0", ConnectionState.READY, 1),
        },
        requests_rejected=16 * n,
        tickets_failed=17 * n,
        undecodable_frames={"not_json": 3 * n, "identity": 2 * n},
        unknown_types={"announcement": 4 * n},
        field_drift={("trade", "trade_price"): 2 * n, ("ticker", "change"): n},
        snapshots_missing=18 * n,
        orderbook_rows_mismatch={"trimmed": 6 * n, "short": 2 * n},
        subscriptions_cancelled=19 * n,
        rest_requests={"trade": 47 * n, "candle": 53 * n},
        rest_rate_limited=59 * n,
        rest_blocked=61 * n,
        rest_retries=67 * n,
        rest_failures=71 * n,
        backfills=73 * n,
        backfills_incomplete=79 * n,
        backfill_trades=83 * n,
        backfill_pages=89 * n,
        backfills_running=97 * n,
        backfill_streams=101 * n,
        backfill_latency=LatencySummary(3 * n, 1.5 * n, 0.2, 0.8, 0.5),
        error_frames={"INVALID_PARAM": 103 * n},
        operator_events={"connected": 107 * n, "gap": 109 * n},
        operator_events_dropped=113 * n,
        debug_clients=127 * n,
        debug_clients_refused=131 * n,
        debug_clients_dropped=137 * n,
        gateway={
            "stored": 139 * n,
            "duplicates": 149 * n,
            "dropped": 151 * n,
            "retries": 157 * n,
            "queued": 163 * n,
            "connected": 1,
        },
    )


#: ``populated().to_prometheus()``, pinned byte for byte (names, HELP/TYPE lines, label order,
#: value formatting, line order). Rendered by the straight-line ``to_prometheus`` this table
#: replaced (issue 13); a change here is a change every scraper sees.
GOLDEN = r"""
# HELP upbit_engine_subscriptions_succeeded_total Accepted subscribe/modify calls.
# TYPE upbit_engine_subscriptions_succeeded_total counter
upbit_engine_subscriptions_succeeded_total 11
# HELP upbit_engine_subscriptions_failed_total Rejected subscribe/modify calls.
# TYPE upbit_engine_subscriptions_failed_total counter
upbit_engine_subscriptions_failed_total 3
# HELP upbit_engine_subscriptions_cancelled_total Subscribe/modify calls cancelled by their caller (no effect).
# TYPE upbit_engine_subscriptions_cancelled_total counter
upbit_engine_subscriptions_cancelled_total 19
# HELP upbit_engine_subscriptions_broken_total Subscriptions failed after acceptance.
# TYPE upbit_engine_subscriptions_broken_total counter
upbit_engine_subscriptions_broken_total 2
# HELP upbit_engine_subscriptions Live subscriptions by state.
# TYPE upbit_engine_subscriptions gauge
upbit_engine_subscriptions{state="active"} 7
upbit_engine_subscriptions{state="pending"} 2
# HELP upbit_engine_connects_total WebSocket connections opened by tickets.
# TYPE upbit_engine_connects_total counter
upbit_engine_connects_total 9
# HELP upbit_engine_reconnects_total Connections replacing an earlier one.
# TYPE upbit_engine_reconnects_total counter
upbit_engine_reconnects_total 4
# HELP upbit_engine_connection_losses_total Connections that ended abnormally.
# TYPE upbit_engine_connection_losses_total counter
upbit_engine_connection_losses_total 5
# HELP upbit_engine_ticket_restarts_total Ticket actor restarts.
# TYPE upbit_engine_ticket_restarts_total counter
upbit_engine_ticket_restarts_total 6
# HELP upbit_engine_requests_rejected_total Error frames traced to the request that caused them.
# TYPE upbit_engine_requests_rejected_total counter
upbit_engine_requests_rejected_total 16
# HELP upbit_engine_tickets_failed_total Tickets that gave up reconnecting.
# TYPE upbit_engine_tickets_failed_total counter
upbit_engine_tickets_failed_total 17
# HELP upbit_engine_gaps_total Outages that interrupted subscribers.
# TYPE upbit_engine_gaps_total counter
upbit_engine_gaps_total 7
# HELP upbit_engine_stall_probes_total Pings sent because a busy connection went silent.
# TYPE upbit_engine_stall_probes_total counter
upbit_engine_stall_probes_total 41
# HELP upbit_engine_stalls_total Connections ended as stalled.
# TYPE upbit_engine_stalls_total counter
upbit_engine_stalls_total 43
# HELP upbit_engine_requests_sent_total Requests sent on realtime tickets.
# TYPE upbit_engine_requests_sent_total counter
upbit_engine_requests_sent_total 21
# HELP upbit_engine_parking_requests_total Soft-unsubscribe parking requests.
# TYPE upbit_engine_parking_requests_total counter
upbit_engine_parking_requests_total 8
# HELP upbit_engine_messages_received_total Frames received, by type.
# TYPE upbit_engine_messages_received_total counter
upbit_engine_messages_received_total{type="ticker"} 100
upbit_engine_messages_received_total{type="trade"} 50
# HELP upbit_engine_unrouted_total Frames with no subscriber.
# TYPE upbit_engine_unrouted_total counter
upbit_engine_unrouted_total 13
# HELP upbit_engine_rest_requests_total Quotation REST requests sent, by group.
# TYPE upbit_engine_rest_requests_total counter
upbit_engine_rest_requests_total{group="candle"} 53
upbit_engine_rest_requests_total{group="trade"} 47
# HELP upbit_engine_rest_rate_limited_total Quotation REST answers 429 (Too Many Requests).
# TYPE upbit_engine_rest_rate_limited_total counter
upbit_engine_rest_rate_limited_total 59
# HELP upbit_engine_rest_blocked_total Quotation REST answers 418 (blocked).
# TYPE upbit_engine_rest_blocked_total counter
upbit_engine_rest_blocked_total 61
# HELP upbit_engine_rest_retries_total Quotation REST requests sent again after a 429.
# TYPE upbit_engine_rest_retries_total counter
upbit_engine_rest_retries_total 67
# HELP upbit_engine_rest_failures_total Quotation REST requests that raised.
# TYPE upbit_engine_rest_failures_total counter
upbit_engine_rest_failures_total 71
# HELP upbit_engine_frames_undecodable_total Frames skipped because they could not be decoded, by reason.
# TYPE upbit_engine_frames_undecodable_total counter
upbit_engine_frames_undecodable_total{reason="identity"} 2
upbit_engine_frames_undecodable_total{reason="not_json"} 3
# HELP upbit_engine_frames_unknown_type_total Data frames of types the engine does not model, by type.
# TYPE upbit_engine_frames_unknown_type_total counter
upbit_engine_frames_unknown_type_total{type="announcement"} 4
# HELP upbit_engine_field_drift_total Fields left None because a frame lacked them, sent null or unreadable values.
# TYPE upbit_engine_field_drift_total counter
upbit_engine_field_drift_total{type="ticker",field="change"} 1
upbit_engine_field_drift_total{type="trade",field="trade_price"} 2
# HELP upbit_engine_snapshots_missing_total SNAPSHOT waits that ran out (REALTIME delivered without one).
# TYPE upbit_engine_snapshots_missing_total counter
upbit_engine_snapshots_missing_total 18
# HELP upbit_engine_orderbook_rows_mismatch_total Orderbook deliveries with more (trimmed) or fewer (short) rows than asked.
# TYPE upbit_engine_orderbook_rows_mismatch_total counter
upbit_engine_orderbook_rows_mismatch_total{kind="short"} 2
upbit_engine_orderbook_rows_mismatch_total{kind="trimmed"} 6
# HELP upbit_engine_snapshot_requests_total Snapshot calls.
# TYPE upbit_engine_snapshot_requests_total counter
upbit_engine_snapshot_requests_total 14
# HELP upbit_engine_snapshot_failures_total Failed snapshot calls.
# TYPE upbit_engine_snapshot_failures_total counter
upbit_engine_snapshot_failures_total 15
# HELP upbit_engine_snapshot_tickets_open Open snapshot tickets.
# TYPE upbit_engine_snapshot_tickets_open gauge
upbit_engine_snapshot_tickets_open 4
# HELP upbit_engine_snapshot_wire_requests_total Snapshot-only requests sent.
# TYPE upbit_engine_snapshot_wire_requests_total counter
upbit_engine_snapshot_wire_requests_total 10
# HELP upbit_engine_snapshot_latency_seconds Snapshot call latency.
# TYPE upbit_engine_snapshot_latency_seconds summary
upbit_engine_snapshot_latency_seconds_count 4
upbit_engine_snapshot_latency_seconds_sum 1.25
# HELP upbit_engine_backfills_total Trade backfills finished.
# TYPE upbit_engine_backfills_total counter
upbit_engine_backfills_total 73
# HELP upbit_engine_backfills_incomplete_total Trade backfills that left part of a gap unfilled.
# TYPE upbit_engine_backfills_incomplete_total counter
upbit_engine_backfills_incomplete_total 79
# HELP upbit_engine_backfill_trades_total Trades fetched by backfills.
# TYPE upbit_engine_backfill_trades_total counter
upbit_engine_backfill_trades_total 83
# HELP upbit_engine_backfill_pages_total REST pages fetched by backfills.
# TYPE upbit_engine_backfill_pages_total counter
upbit_engine_backfill_pages_total 89
# HELP upbit_engine_backfills_running Trade backfills running.
# TYPE upbit_engine_backfills_running gauge
upbit_engine_backfills_running 97
# HELP upbit_engine_backfill_streams Subscribers' trade streams held for a backfill.
# TYPE upbit_engine_backfill_streams gauge
upbit_engine_backfill_streams 101
# HELP upbit_engine_backfill_latency_seconds SNAPSHOT of a restored stream to its backfill's release.
# TYPE upbit_engine_backfill_latency_seconds summary
upbit_engine_backfill_latency_seconds_count 3
upbit_engine_backfill_latency_seconds_sum 1.5
# HELP upbit_engine_error_frames_total Error frames from Upbit.
# TYPE upbit_engine_error_frames_total counter
upbit_engine_error_frames_total{error="INVALID_PARAM"} 103
# HELP upbit_engine_operator_events_total Operator events published, per kind.
# TYPE upbit_engine_operator_events_total counter
upbit_engine_operator_events_total{kind="connected"} 107
upbit_engine_operator_events_total{kind="gap"} 109
# HELP upbit_engine_operator_events_dropped_total Operator events dropped from readers that fell behind.
# TYPE upbit_engine_operator_events_dropped_total counter
upbit_engine_operator_events_dropped_total 113
# HELP upbit_engine_debug_clients Debug channel clients connected.
# TYPE upbit_engine_debug_clients gauge
upbit_engine_debug_clients 127
# HELP upbit_engine_debug_clients_refused_total Debug channel clients turned away (too many).
# TYPE upbit_engine_debug_clients_refused_total counter
upbit_engine_debug_clients_refused_total 131
# HELP upbit_engine_debug_clients_dropped_total Debug channel clients dropped (too slow to read).
# TYPE upbit_engine_debug_clients_dropped_total counter
upbit_engine_debug_clients_dropped_total 137
# HELP upbit_engine_gateway_messages_stored_total Messages the gateway's JetStream stream stored.
# TYPE upbit_engine_gateway_messages_stored_total counter
upbit_engine_gateway_messages_stored_total 139
# HELP upbit_engine_gateway_duplicates_total Messages JetStream already had (another gateway, or a retry).
# TYPE upbit_engine_gateway_duplicates_total counter
upbit_engine_gateway_duplicates_total 149
# HELP upbit_engine_gateway_dropped_total Messages dropped because NATS was unreachable beyond the buffer.
# TYPE upbit_engine_gateway_dropped_total counter
upbit_engine_gateway_dropped_total 151
# HELP upbit_engine_gateway_retries_total Publishes retried.
# TYPE upbit_engine_gateway_retries_total counter
upbit_engine_gateway_retries_total 157
# HELP upbit_engine_gateway_queued Messages waiting for JetStream's ack.
# TYPE upbit_engine_gateway_queued gauge
upbit_engine_gateway_queued 163
# HELP upbit_engine_gateway_connected 1 while NATS acknowledges.
# TYPE upbit_engine_gateway_connected gauge
upbit_engine_gateway_connected 1
# HELP upbit_engine_connect_latency_seconds Subscribe to first message.
# TYPE upbit_engine_connect_latency_seconds summary
upbit_engine_connect_latency_seconds_count 2
upbit_engine_connect_latency_seconds_sum 0.25
# HELP upbit_engine_resubscribe_latency_seconds Connection loss to first message after replay.
# TYPE upbit_engine_resubscribe_latency_seconds summary
upbit_engine_resubscribe_latency_seconds_count 1
upbit_engine_resubscribe_latency_seconds_sum 3.0
# HELP upbit_engine_tickets_open Open tickets per pool.
# TYPE upbit_engine_tickets_open gauge
upbit_engine_tickets_open{pool="private"} 3
upbit_engine_tickets_open{pool="realtime"} 2
# HELP upbit_engine_tickets_parked Parked tickets per pool.
# TYPE upbit_engine_tickets_parked gauge
upbit_engine_tickets_parked{pool="private"} 4
upbit_engine_tickets_parked{pool="realtime"} 3
# HELP upbit_engine_tickets_waiting Tickets waiting for a connection.
# TYPE upbit_engine_tickets_waiting gauge
upbit_engine_tickets_waiting{pool="private"} 6
upbit_engine_tickets_waiting{pool="realtime"} 5
# HELP upbit_engine_streams Distinct streams wanted per pool.
# TYPE upbit_engine_streams gauge
upbit_engine_streams{pool="private"} 7
upbit_engine_streams{pool="realtime"} 6
# HELP upbit_engine_ticket_efficiency Planned ticket efficiency per pool.
# TYPE upbit_engine_ticket_efficiency gauge
upbit_engine_ticket_efficiency{pool="private"} 0.75
upbit_engine_ticket_efficiency{pool="realtime"} 0.75
# HELP upbit_engine_wire_ticket_efficiency Ticket efficiency of what was sent, per pool.
# TYPE upbit_engine_wire_ticket_efficiency gauge
upbit_engine_wire_ticket_efficiency{pool="private"} 0.5
upbit_engine_wire_ticket_efficiency{pool="realtime"} 0.5
# HELP upbit_engine_ticket_state Connection state per ticket (1 for the current state).
# TYPE upbit_engine_ticket_state gauge
upbit_engine_ticket_state{ticket="realtime-0",state="connecting"} 0
upbit_engine_ticket_state{ticket="realtime-0",state="replaying"} 0
upbit_engine_ticket_state{ticket="realtime-0",state="ready"} 1
upbit_engine_ticket_state{ticket="realtime-0",state="parked"} 0
upbit_engine_ticket_state{ticket="realtime-0",state="backing_off"} 0
upbit_engine_ticket_state{ticket="realtime-0",state="closed"} 0
upbit_engine_ticket_state{ticket="realtime-0",state="failed"} 0
upbit_engine_ticket_state{ticket="realtime-1",state="connecting"} 0
upbit_engine_ticket_state{ticket="realtime-1",state="replaying"} 0
upbit_engine_ticket_state{ticket="realtime-1",state="ready"} 0
upbit_engine_ticket_state{ticket="realtime-1",state="parked"} 0
upbit_engine_ticket_state{ticket="realtime-1",state="backing_off"} 1
upbit_engine_ticket_state{ticket="realtime-1",state="closed"} 0
upbit_engine_ticket_state{ticket="realtime-1",state="failed"} 0
# HELP upbit_engine_ticket_time_in_state_seconds Seconds each ticket has been in its current state.
# TYPE upbit_engine_ticket_time_in_state_seconds gauge
upbit_engine_ticket_time_in_state_seconds{ticket="realtime-0"} 2.5
upbit_engine_ticket_time_in_state_seconds{ticket="realtime-1"} 5.0
# HELP upbit_engine_ticket_reconnects_total Connections replacing an earlier one, per ticket.
# TYPE upbit_engine_ticket_reconnects_total counter
upbit_engine_ticket_reconnects_total{ticket="realtime-0"} 2
upbit_engine_ticket_reconnects_total{ticket="realtime-1"} 3
# HELP upbit_engine_ticket_failures_total Connections or attempts that ended abnormally, per ticket.
# TYPE upbit_engine_ticket_failures_total counter
upbit_engine_ticket_failures_total{ticket="realtime-0"} 3
upbit_engine_ticket_failures_total{ticket="realtime-1"} 4
# HELP upbit_engine_subscriber_conflated_total Values conflated per subscription.
# TYPE upbit_engine_subscriber_conflated_total counter
upbit_engine_subscriber_conflated_total{subscription="a\\b\"c"} 4
upbit_engine_subscriber_conflated_total{subscription="sub-1"} 2
# HELP upbit_engine_subscriber_dropped_total Items dropped per subscription.
# TYPE upbit_engine_subscriber_dropped_total counter
upbit_engine_subscriber_dropped_total{subscription="a\\b\"c"} 5
upbit_engine_subscriber_dropped_total{subscription="sub-1"} 3
# HELP upbit_engine_subscriber_buffered Items waiting per subscription.
# TYPE upbit_engine_subscriber_buffered gauge
upbit_engine_subscriber_buffered{subscription="a\\b\"c"} 3
upbit_engine_subscriber_buffered{subscription="sub-1"} 1
""".removeprefix("\n")  # noqa: E501


def test_a_fully_populated_snapshot_renders_exactly_the_pinned_text() -> None:
    text = populated().to_prometheus()
    assert text.splitlines() == GOLDEN.splitlines()
    assert text == GOLDEN


def test_the_prefix_replaces_upbit_engine_everywhere() -> None:
    text = populated().to_prometheus("x")
    assert text == GOLDEN.replace("upbit_engine_", "x_")


def test_the_fixture_sets_every_field() -> None:
    metrics = populated()
    for field in attrs.fields(EngineMetrics):
        assert getattr(metrics, field.name), field.name  # non-zero numbers, non-empty maps


@pytest.mark.parametrize("field", [field.name for field in attrs.fields(EngineMetrics)])
def test_every_field_of_engine_metrics_shows_in_the_text(field: str) -> None:
    """Changing any one field changes the text, unless the field is in NOT_EXPORTED (a new
    EngineMetrics field fails here until it gets a row in the table or joins that set)."""
    base, other = populated(1), populated(2)
    assert getattr(base, field) != getattr(other, field)
    changed = attrs.evolve(base, **{field: getattr(other, field)})
    if field in NOT_EXPORTED:
        assert changed.to_prometheus() == base.to_prometheus()
    else:
        assert changed.to_prometheus() != base.to_prometheus()


def test_the_table_names_each_family_once_and_only_counters_end_in_total() -> None:
    from engine.observability.metrics import _FAMILIES

    names = [family.name for family in _FAMILIES]
    assert len(names) == len(set(names))
    for family in _FAMILIES:
        assert re.fullmatch(r"[a-z][a-z0-9_]*", family.name), family.name
        assert family.kind in {"counter", "gauge", "summary"}
        assert family.name.endswith("_total") == (family.kind == "counter"), family.name
        assert family.text
        assert "\n" not in family.text
    families = re.findall(r"^# TYPE upbit_engine_(\w+) (\w+)$", GOLDEN, flags=re.MULTILINE)
    assert families == [(family.name, family.kind) for family in _FAMILIES]


def test_an_empty_snapshot_still_lists_every_family() -> None:
    from engine.observability.metrics import _FAMILIES

    empty = EngineMetrics(
        at=0.0,
        ticket_usage={},
        snapshot_usage=SnapshotUsage(*([0] * 13)),
        subscriptions={},
        subscriptions_succeeded=0,
        subscriptions_failed=0,
        subscriptions_broken=0,
        connects=0,
        reconnects=0,
        connection_losses=0,
        restarts=0,
        gaps=0,
        stall_probes=0,
        stalls=0,
        requests_sent=0,
        parking_requests=0,
        messages_received={},
        unrouted=0,
        snapshot_requests=0,
        snapshot_failures=0,
        snapshot_latency=LatencySummary(),
        connect_latency=LatencySummary(),
        resubscribe_latency=LatencySummary(),
        subscribers={},
    )
    lines = empty.to_prometheus().splitlines()
    assert sum(line.startswith("# HELP ") for line in lines) == len(_FAMILIES)
    assert sum(line.startswith("# TYPE ") for line in lines) == len(_FAMILIES)
    samples = [line for line in lines if not line.startswith("#")]
    assert samples
    assert all(re.fullmatch(r"upbit_engine_\w+ 0(\.0)?", line) for line in samples), samples
