"""Router: snapshots to the waiting, holding back, stale and stray frames, unsubscribe, gaps,
de-duplication, orderbook filters, private streams, statistics, and slow consumers."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from engine.core.keys import StreamKey
from engine.errors import SubscriptionFailedError
from engine.events import Gap, Interrupted, SnapshotMissing
from engine.routing.router import Route, Router, RoutingTable, StreamItem, SubscriberBuffer
from engine.wire.messages import Message, Orderbook, Ticker, Trade
from tests.engine.test_router_support import (
    SNAP,
    book,
    drain,
    key,
    my_asset,
    my_order,
    route,
    ticker,
    trade,
)

T = "realtime-0"


def shape(items: list[StreamItem]) -> list[str]:
    """A compact spelling of a received sequence: 'S:ticker:KRW-BTC', 'gap', ..."""
    out: list[str] = []
    for item in items:
        if isinstance(item, Interrupted | Gap):
            out.append(item.type)
        else:
            code = getattr(item, "code", "")
            out.append(f"{item.stream_type[0]}:{item.type}:{code}")
    return out


def sids(items: list[StreamItem]) -> list[int]:
    return [item.sequential_id for item in items if isinstance(item, Trade)]


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, StreamKey, str]] = []

    def __call__(self, ticket: str, stream: StreamKey, sub: str) -> None:
        self.calls.append((ticket, stream, sub))


def connected_router(*routes: Route, recorder: Recorder | None = None) -> Router:
    router = Router(on_snapshot=recorder)
    router.publish(RoutingTable(routes))
    assert router.ticket_connected(T, 1, at=0.0)
    return router


# ---------------------------------------------------------------------------------------------
# SNAPSHOT only to the waiting; REALTIME held back until it


def test_a_joiners_snapshot_reaches_only_the_joiner() -> None:
    calls = Recorder()
    a, b = SubscriberBuffer("a"), SubscriberBuffer("b")
    router = connected_router(route(T, "ticker", "KRW-BTC", a), recorder=calls)
    router.route(T, 1, ticker(stream=SNAP))
    router.route(T, 1, ticker(price=1.0))
    assert shape(drain(a)) == ["S:ticker:KRW-BTC", "R:ticker:KRW-BTC"]
    assert calls.calls == [(T, key("ticker"), "a")]

    # b joins; the registry re-requests KRW-BTC with a SNAPSHOT, which only b may see.
    router.publish(
        RoutingTable([route(T, "ticker", "KRW-BTC", a), route(T, "ticker", "KRW-BTC", b)])
    )
    assert router.route(T, 1, ticker(price=2.0)) == 1  # a streams on; b is held back
    assert router.route(T, 1, ticker(price=3.0, stream=SNAP)) == 1
    assert router.route(T, 1, ticker(price=4.0)) == 2
    assert [m.trade_price for m in drain(a)] == [2.0, 4.0]  # type: ignore[union-attr]
    got = drain(b)
    assert shape(got) == ["S:ticker:KRW-BTC", "R:ticker:KRW-BTC"]
    assert [m.trade_price for m in got] == [3.0, 4.0]  # type: ignore[union-attr]
    assert calls.calls[-1] == (T, key("ticker"), "b")
    stats = router.statistics()
    assert stats.subscribers["b"].held_back == 1
    assert stats.subscribers["a"].held_back == 0
    assert stats.tickets[T].held_back == 1


def test_relisting_a_satisfied_wait_does_not_rearm_it() -> None:
    a = SubscriberBuffer("a")
    table = RoutingTable([route(T, "ticker", "KRW-BTC", a, snapshot=True)])
    router = Router()
    assert router.ticket_connected(T, 1, at=0.0)
    router.publish(table)
    router.route(T, 1, ticker(stream=SNAP))
    # The registry has not processed the report yet and publishes the same wait again.
    router.publish(RoutingTable([route(T, "ticker", "KRW-BTC", a, snapshot=True)]))
    assert router.route(T, 1, ticker(price=5.0)) == 1
    assert router.waiting == frozenset()
    # Dropping the flag and raising it again is a new request: armed again.
    router.publish(RoutingTable([route(T, "ticker", "KRW-BTC", a, snapshot=False)]))
    router.publish(RoutingTable([route(T, "ticker", "KRW-BTC", a, snapshot=True)]))
    assert router.route(T, 1, ticker(price=6.0)) == 0
    assert router.waiting == {(T, key("ticker"), "a")}


def test_a_snapshot_nobody_waits_for_is_not_duplicated_to_streaming_subscribers() -> None:
    a = SubscriberBuffer("a")
    router = connected_router(route(T, "ticker", "KRW-BTC", a))
    router.route(T, 1, ticker(stream=SNAP))
    assert router.route(T, 1, ticker(stream=SNAP)) == 0
    assert len(drain(a)) == 1
    assert router.statistics().tickets[T].unwanted_snapshots == 1


def test_a_route_without_a_wait_streams_at_once() -> None:
    a = SubscriberBuffer("a")
    router = Router()
    router.ticket_connected(T, 1, at=0.0)
    router.publish(RoutingTable([route(T, "ticker", "KRW-BTC", a, snapshot=False)]))
    assert router.route(T, 1, ticker()) == 1


def test_ending_a_wait_lets_realtime_flow_and_refuses_a_late_snapshot() -> None:
    a = SubscriberBuffer("a")
    router = connected_router(route(T, "ticker", "KRW-BTC", a))
    assert router.route(T, 1, ticker()) == 0
    assert router.end_wait((T, key("ticker"), "a"))
    assert not router.end_wait((T, key("ticker"), "a"))
    assert router.route(T, 1, ticker()) == 1
    assert router.route(T, 1, ticker(stream=SNAP)) == 0
    assert router.statistics().subscribers["a"].waiting == 0


# ---------------------------------------------------------------------------------------------
# Stray, parked and stale frames; unsubscribe


def test_parking_reply_and_unknown_codes_are_dropped_and_counted() -> None:
    a = SubscriberBuffer("a")
    router = connected_router(route(T, "ticker", "KRW-BTC", a))
    # The parking request: a snapshot-only ticker of a code nobody on this ticket wants.
    assert router.route(T, 1, ticker("BTC-ETH", stream=SNAP)) == 0
    assert router.route(T, 1, trade("KRW-BTC", 1)) == 0
    assert drain(a) == []
    assert router.statistics().tickets[T].unrouted == 2


def test_frames_of_a_stale_generation_are_dropped() -> None:
    a = SubscriberBuffer("a")
    router = connected_router(route(T, "ticker", "KRW-BTC", a))
    assert router.route(T, 0, ticker(stream=SNAP)) == 0
    assert router.route("nobody", 1, ticker(stream=SNAP)) == 0
    assert router.ticket_connected(T, 2, at=1.0)
    assert router.route(T, 1, ticker(stream=SNAP)) == 0
    assert not router.ticket_connected(T, 2, at=2.0)  # not above the last one: stale
    assert not router.ticket_connected(T, 1, at=2.0)
    assert router.route(T, 2, ticker(stream=SNAP)) == 1
    assert router.ticket_lost(T, 2, "reset", at=3.0)
    assert not router.ticket_lost(T, 2, "again", at=3.0)
    assert router.route(T, 2, ticker()) == 0  # after the loss, nothing of it counts
    stats = router.statistics()
    assert stats.tickets[T].stale == 3
    assert stats.tickets["nobody"].stale == 1
    assert stats.tickets[T].generation is None
    assert stats.tickets[T].down_since == 3.0


def test_unsubscribe_stops_delivery_at_once_even_for_frames_already_decoded() -> None:
    a, b = SubscriberBuffer("a"), SubscriberBuffer("b")
    router = connected_router(
        route(T, "trade", "KRW-BTC", a),
        route(T, "trade", "KRW-BTC", b),
        route(T, "ticker", "KRW-ETH", a),
    )
    router.route(T, 1, trade(sid=1, stream=SNAP))
    router.route(T, 1, ticker("KRW-ETH", stream=SNAP))
    decoded: list[Message] = [trade(sid=2), trade(sid=3), ticker("KRW-ETH", 2.0)]
    router.publish(RoutingTable([route(T, "trade", "KRW-BTC", b, snapshot=False)]))
    a.close("unsubscribed")
    delivered = [router.route(T, 1, msg) for msg in decoded]
    assert delivered == [1, 1, 0]
    assert [item.type for item in drain(a)] == ["ended"]
    assert sids(drain(b)) == [1, 2, 3]
    assert a.statistics().dropped == 2  # the two SNAPSHOTs it never read, discarded by close
    assert "a" not in router.statistics().subscribers
    assert router.statistics().tickets[T].unrouted == 1


def test_stale_frames_after_a_replacement_reach_nobody() -> None:
    a = SubscriberBuffer("a")
    router = connected_router(route(T, "ticker", "KRW-BTC", a))
    router.route(T, 1, ticker(stream=SNAP))
    # a modifies KRW-BTC -> KRW-ETH; Upbit still sends two frames of the old set.
    router.publish(RoutingTable([route(T, "ticker", "KRW-ETH", a)]))
    router.route(T, 1, ticker("KRW-BTC", 9.0))
    router.route(T, 1, ticker("KRW-BTC", 9.5))
    router.route(T, 1, ticker("KRW-ETH", 1.0, stream=SNAP))
    assert shape(drain(a)) == ["S:ticker:KRW-BTC", "S:ticker:KRW-ETH"]


# ---------------------------------------------------------------------------------------------
# Outages


def test_gap_then_snapshot_then_realtime_for_every_affected_subscriber() -> None:
    a, b, c = SubscriberBuffer("a"), SubscriberBuffer("b"), SubscriberBuffer("c")
    router = connected_router(
        route(T, "ticker", "KRW-BTC", a),
        route(T, "ticker", "KRW-ETH", a),
        route(T, "ticker", "KRW-BTC", b),
        route("realtime-1", "ticker", "KRW-XRP", c),
    )
    router.ticket_connected("realtime-1", 1, at=0.0)
    for code in ("KRW-BTC", "KRW-ETH"):
        router.route(T, 1, ticker(code, stream=SNAP))
    router.route("realtime-1", 1, ticker("KRW-XRP", stream=SNAP))
    for buffer in (a, b, c):
        drain(buffer)

    assert router.ticket_lost(T, 1, "connection reset", at=10.0)
    router.route(T, 1, ticker("KRW-BTC", 1.0))  # in flight from the dead connection: stale
    assert router.ticket_connected(T, 2, at=12.5)
    router.route(T, 2, ticker("KRW-BTC", 2.0))  # before its SNAPSHOT: held back
    for code in ("KRW-BTC", "KRW-ETH"):
        router.route(T, 2, ticker(code, 3.0, stream=SNAP))
    router.route(T, 2, ticker("KRW-BTC", 4.0))

    got_a, got_b = drain(a), drain(b)
    assert shape(got_a) == [
        "interrupted",
        "gap",
        "S:ticker:KRW-BTC",
        "S:ticker:KRW-ETH",
        "R:ticker:KRW-BTC",
    ]
    assert shape(got_b) == ["interrupted", "gap", "S:ticker:KRW-BTC", "R:ticker:KRW-BTC"]
    assert got_a[0] == Interrupted(T, 10.0, "connection reset", ("KRW-BTC", "KRW-ETH"))
    assert got_a[1] == Gap(T, 10.0, 12.5, "connection reset", ("KRW-BTC", "KRW-ETH"))
    assert got_b[1] == Gap(T, 10.0, 12.5, "connection reset", ("KRW-BTC",))
    assert drain(c) == []  # another ticket: unaffected


def test_streams_moved_off_a_ticket_while_it_is_down_get_an_open_ended_gap() -> None:
    a, b = SubscriberBuffer("a"), SubscriberBuffer("b")
    router = connected_router(route(T, "ticker", "KRW-BTC", a), route(T, "trade", "KRW-BTC", b))
    router.ticket_lost(T, 1, "stalled", at=5.0)
    # a's stream moves to realtime-1; b unsubscribes.
    router.publish(RoutingTable([route("realtime-1", "ticker", "KRW-BTC", a)]))
    assert shape(drain(a)) == ["interrupted", "gap"]
    assert shape(drain(b)) == ["interrupted", "gap"]  # (its buffer would be closed already)
    router.ticket_connected("realtime-1", 1, at=6.0)
    router.route("realtime-1", 1, ticker(stream=SNAP))
    assert shape(drain(a)) == ["S:ticker:KRW-BTC"]
    # The old ticket coming back owes a nothing more.
    router.ticket_connected(T, 2, at=7.0)
    assert drain(a) == []


def test_a_connection_replaced_without_a_reported_loss_still_gets_its_gap() -> None:
    a = SubscriberBuffer("a")
    router = Router()
    router.publish(RoutingTable([route(T, "ticker", "KRW-BTC", a)]))
    router.ticket_connected(T, 1, at=1.0)
    router.route(T, 1, ticker(stream=SNAP))
    drain(a)
    router.ticket_connected(T, 2, at=9.0)
    got = drain(a)
    assert shape(got) == ["interrupted", "gap"]
    assert isinstance(got[1], Gap)
    assert (got[1].start, got[1].end) == (1.0, 9.0)  # conservative: since generation 1 began
    assert "before its loss was reported" in got[1].cause


def test_trades_are_deduplicated_across_a_reconnect() -> None:
    a = SubscriberBuffer("a")
    router = connected_router(route(T, "trade", "KRW-BTC", a))
    router.route(T, 1, trade(sid=10, stream=SNAP))
    router.route(T, 1, trade(sid=11))
    router.route(T, 1, trade(sid=12))
    router.ticket_lost(T, 1, "reset", at=1.0)
    router.ticket_connected(T, 2, at=2.0)
    assert router.route(T, 2, trade(sid=12, stream=SNAP)) == 0  # a had it: skipped, satisfied
    assert router.route(T, 2, trade(sid=12)) == 0
    assert router.route(T, 2, trade(sid=13)) == 1
    got = drain(a)
    assert shape(got)[3:5] == ["interrupted", "gap"]
    assert sids(got) == [10, 11, 12, 13]
    assert a.statistics().duplicates_skipped == 2
    assert router.statistics().tickets[T].duplicates == 2
    assert router.waiting == frozenset()


def test_a_joiner_gets_a_trade_snapshot_others_already_had() -> None:
    a, b = SubscriberBuffer("a"), SubscriberBuffer("b")
    router = connected_router(route(T, "trade", "KRW-BTC", a))
    router.route(T, 1, trade(sid=1, stream=SNAP))
    router.route(T, 1, trade(sid=2))
    both = [route(T, "trade", "KRW-BTC", a), route(T, "trade", "KRW-BTC", b)]
    router.publish(RoutingTable(both))
    assert router.route(T, 1, trade(sid=2, stream=SNAP)) == 1  # the latest trade: a has it
    assert sids(drain(a)) == [1, 2]
    assert sids(drain(b)) == [2]


def test_a_realtime_trade_racing_a_joiners_snapshot_reaches_the_others_once() -> None:
    a, b = SubscriberBuffer("a"), SubscriberBuffer("b")
    router = connected_router(route(T, "trade", "KRW-BTC", a))
    router.route(T, 1, trade(sid=1, stream=SNAP))
    router.publish(RoutingTable([route(T, "trade", "KRW-BTC", a), route(T, "trade", "KRW-BTC", b)]))
    # Trade 3 happened while b's request was served: its SNAPSHOT comes before the REALTIME.
    assert router.route(T, 1, trade(sid=3, stream=SNAP)) == 1
    assert router.route(T, 1, trade(sid=3)) == 1  # a needs it; b has it
    assert router.route(T, 1, trade(sid=4)) == 2
    assert sids(drain(a)) == [1, 3, 4]
    assert sids(drain(b)) == [3, 4]
    assert b.statistics().duplicates_skipped == 1
    assert a.statistics().duplicates_skipped == 0


def test_trade_dedupe_follows_a_stream_moved_to_another_ticket() -> None:
    a = SubscriberBuffer("a")
    router = connected_router(route(T, "trade", "KRW-BTC", a))
    router.ticket_connected("realtime-1", 1, at=0.0)
    router.route(T, 1, trade(sid=1, stream=SNAP))
    router.route(T, 1, trade(sid=2))
    router.publish(RoutingTable([route("realtime-1", "trade", "KRW-BTC", a)]))
    router.route("realtime-1", 1, trade(sid=2, stream=SNAP))
    router.route("realtime-1", 1, trade(sid=3))
    assert sids(drain(a)) == [1, 2, 3]


def test_the_dedupe_window_is_bounded() -> None:
    a = SubscriberBuffer("a", max_size=100)
    router = Router(dedupe_window=4)
    router.ticket_connected(T, 1, at=0.0)
    router.publish(RoutingTable([route(T, "trade", "KRW-BTC", a, snapshot=False)]))
    for sid in range(10):
        router.route(T, 1, trade(sid=sid))
    assert router.route(T, 1, trade(sid=9)) == 0  # still remembered
    assert router.route(T, 1, trade(sid=1)) == 1  # forgotten: window of 4


# ---------------------------------------------------------------------------------------------
# Orderbook filters and private streams


def test_orderbook_frames_match_by_code_and_level_and_are_trimmed_per_subscriber() -> None:
    five, fifteen, default, grouped, other = (
        SubscriberBuffer(name) for name in ("five", "fifteen", "default", "grouped", "other")
    )
    router = connected_router(
        route(T, "orderbook", "KRW-BTC", five, units=5),
        route(T, "orderbook", "KRW-BTC", fifteen, units=15),
        route(T, "orderbook", "KRW-BTC", default),
        route(T, "orderbook", "KRW-BTC", grouped, units=15, level=10000.0),
        route(T, "orderbook", "KRW-ETH", other, units=5),
    )
    # One SNAPSHOT of the pair (whatever its depth) serves every depth of its level.
    router.route(T, 1, book(rows=30, stream=SNAP, stamp=1))
    router.route(T, 1, book(rows=20, level=10000.0, stream=SNAP, stamp=2))
    router.route(T, 1, book(rows=30, stamp=3))
    router.route(T, 1, book(rows=3, stamp=4))  # shallower than asked: delivered as it came
    router.route(T, 1, book(rows=15, level=10000.0, stamp=5))
    router.route(T, 1, book(rows=30, level=500.0, stamp=6))  # nobody wants that level

    def seen(buffer: SubscriberBuffer) -> list[tuple[int | None, int]]:
        return [
            (b.timestamp, len(b.orderbook_units)) for b in drain(buffer) if isinstance(b, Orderbook)
        ]

    assert seen(five) == [(1, 5), (3, 5), (4, 3)]
    assert seen(fifteen) == [(1, 15), (3, 15), (4, 3)]
    assert seen(default) == [(1, 30), (3, 30), (4, 3)]
    assert seen(grouped) == [(2, 15), (5, 15)]
    assert seen(other) == []
    stats = router.statistics().tickets[T]
    assert stats.unrouted == 1
    # Trimmed: 5 and 15 of frames 1 and 3, and 15 of frame 2. Short: 5, 15, 30 of frame 4.
    assert (stats.books_trimmed, stats.books_short) == (5, 3)


def test_a_trimmed_view_is_the_best_rows_of_the_frame() -> None:
    five = SubscriberBuffer("five")
    router = connected_router(route(T, "orderbook", "KRW-BTC", five, units=5))
    frame = book(rows=30, stream=SNAP)
    router.route(T, 1, frame)
    (view,) = drain(five)
    assert isinstance(view, Orderbook)
    assert view.orderbook_units == frame.orderbook_units[:5]
    assert view.timestamp == frame.timestamp
    assert view.total_ask_size == frame.total_ask_size


def test_private_streams_are_not_gated_and_my_order_of_every_market_sees_each() -> None:
    every, btc, assets = SubscriberBuffer("every"), SubscriberBuffer("btc"), SubscriberBuffer("as")
    router = Router()
    router.publish(
        RoutingTable(
            [
                Route("private-0", StreamKey("myOrder", ""), every),
                Route("private-0", StreamKey("myOrder", "KRW-BTC"), btc),
                Route("private-0", StreamKey("myAsset", ""), assets),
            ]
        )
    )
    router.ticket_connected("private-0", 1, at=0.0)
    assert router.route("private-0", 1, my_order("KRW-BTC")) == 2
    assert router.route("private-0", 1, my_order("KRW-ETH")) == 1
    assert router.route("private-0", 1, my_asset()) == 1
    assert [m.code for m in drain(every)] == ["KRW-BTC", "KRW-ETH"]  # type: ignore[union-attr]
    assert len(drain(btc)) == 1
    assert len(drain(assets)) == 1
    assert router.waiting == frozenset()


def test_my_order_with_no_subscriber_is_unrouted() -> None:
    btc = SubscriberBuffer("btc")
    router = Router()
    router.ticket_connected("private-0", 1, at=0.0)
    router.publish(RoutingTable([Route("private-0", StreamKey("myOrder", "KRW-BTC"), btc)]))
    assert router.route("private-0", 1, my_order("KRW-BTC")) == 1
    assert router.statistics().tickets["private-0"].unrouted == 0
    assert router.route("private-0", 1, my_order("KRW-ETH")) == 0
    assert router.statistics().tickets["private-0"].unrouted == 1


# ---------------------------------------------------------------------------------------------
# Statistics


def test_statistics_count_per_ticket_and_subscriber_across_publishes() -> None:
    a, b = SubscriberBuffer("a"), SubscriberBuffer("b")
    routes = [route(T, "ticker", "KRW-BTC", a), route(T, "trade", "KRW-BTC", b)]
    router = connected_router(*routes)
    router.route(T, 1, ticker(stream=SNAP))
    router.route(T, 1, ticker())
    router.route(T, 1, trade(sid=1))  # b waits: held back
    router.publish(RoutingTable(routes))  # counters survive the swap
    router.route(T, 1, ticker())
    stats = router.statistics()
    assert dict(stats.tickets[T].routed) == {"ticker": 3, "trade": 1}
    assert dict(stats.subscribers["a"].routed) == {"ticker": 3}
    assert stats.subscribers["a"].snapshots == 1
    assert stats.subscribers["b"].held_back == 1
    assert stats.subscribers["b"].waiting == 1
    assert stats.subscribers["a"].buffer.buffered == 3
    assert stats.routes == 2
    assert stats.waiting == 1


def test_publish_takes_only_a_routing_table() -> None:
    with pytest.raises(TypeError, match="RoutingTable"):
        Router().publish([])  # type: ignore[arg-type]


def test_dedupe_window_must_be_positive() -> None:
    with pytest.raises(ValueError, match="window"):
        Router(dedupe_window=0)


# ---------------------------------------------------------------------------------------------
# Slow consumers


async def test_a_slow_consumer_never_delays_another() -> None:
    failures: list[SubscriptionFailedError] = []
    stuck = SubscriberBuffer("stuck", max_size=8, on_failed=failures.append)
    stuck_book = SubscriberBuffer("stuck-book", max_size=8)
    live = SubscriberBuffer("live", max_size=64)
    router = Router()
    router.ticket_connected(T, 1, at=0.0)
    router.publish(
        RoutingTable(
            [
                route(T, "trade", "KRW-BTC", stuck, snapshot=False),
                route(T, "trade", "KRW-BTC", live, snapshot=False),
                route(T, "ticker", "KRW-BTC", stuck_book, snapshot=False),
                route(T, "ticker", "KRW-BTC", live, snapshot=False),
            ]
        )
    )
    received: list[StreamItem] = []
    total = 1000

    async def consume() -> None:
        async for item in live:
            received.append(item)
            if len(received) == 2 * total:
                return

    async with trio.open_nursery() as nursery:
        nursery.start_soon(consume)
        for n in range(total):
            # route() is synchronous: it cannot wait for anybody.
            router.route(T, 1, trade(sid=n))
            router.route(T, 1, ticker(price=float(n)))
            if n % 16 == 15:
                await trio.testing.wait_all_tasks_blocked()
    assert sids(received) == list(range(total))
    assert len(failures) == 1  # the stuck trade reader failed loudly, once
    assert stuck.statistics().dropped == total - 8
    conflating = stuck_book.statistics()
    assert not conflating.closed
    assert conflating.conflated == total - 8
    last = drain(stuck_book)[-1]
    assert isinstance(last, Ticker)
    assert last.trade_price == total - 1


# ---------------------------------------------------------------------------------------------
# SNAPSHOT deadlines


def test_a_wait_ends_at_its_deadline_counted_from_the_request() -> None:
    a, b = SubscriberBuffer("a"), SubscriberBuffer("b")
    router = connected_router(route(T, "ticker", "KRW-BTC", a), route(T, "ticker", "KRW-ETH", b))
    assert router.next_wait_deadline(T, 5.0) is None  # nothing sent yet: no clock runs
    router.note_sent(T, at=10.0)
    router.note_sent(T, at=12.0)  # a later request does not push the deadline back
    assert router.next_wait_deadline(T, 5.0) == 15.0
    router.route(T, 1, ticker("KRW-ETH", stream=SNAP))  # ETH's came; BTC's never does
    assert router.route(T, 1, ticker("KRW-BTC")) == 0  # held back while BTC waits
    assert router.expire_waits(T, now=14.9, timeout=5.0) == []
    ended = router.expire_waits(T, now=15.0, timeout=5.0)
    assert [(ticket, k.code, sub) for ticket, k, sub in ended] == [(T, "KRW-BTC", "a")]
    (missing, held) = drain(a)  # then the REALTIME frame held back meanwhile
    assert isinstance(held, Ticker)
    assert held.code == "KRW-BTC"
    assert isinstance(missing, SnapshotMissing)
    assert (missing.data_type, missing.code, missing.at, missing.waited) == (
        "ticker",
        "KRW-BTC",
        15.0,
        5.0,
    )
    assert router.route(T, 1, ticker("KRW-BTC")) == 1  # REALTIME flows now
    assert router.route(T, 1, ticker("KRW-BTC", stream=SNAP)) == 0  # a late SNAPSHOT does not
    assert router.next_wait_deadline(T, 5.0) is None
    assert router.statistics().tickets[T].snapshots_missing == 1


def test_a_deadline_that_falls_an_ulp_short_still_ends_the_wait() -> None:
    a = SubscriberBuffer("a")
    router = connected_router(route(T, "ticker", "KRW-BTC", a))
    router.note_sent(T, at=1.1)
    deadline = router.next_wait_deadline(T, 3.0)
    assert deadline is not None
    assert deadline - 1.1 < 3.0  # (1.1 + 3.0) - 1.1 == 2.9999999999999996
    # The wake-up at the deadline must end the wait, or the watcher would spin.
    assert len(router.expire_waits(T, now=deadline, timeout=3.0)) == 1


def test_a_reconnect_restarts_the_wait_and_a_republish_keeps_its_clock() -> None:
    a, b = SubscriberBuffer("a"), SubscriberBuffer("b")
    first = route(T, "ticker", "KRW-BTC", a)
    router = connected_router(first)
    router.note_sent(T, at=1.0)
    # Another subscriber's route arrives: the table is rebuilt, the wait keeps its send time.
    router.publish(RoutingTable([first, route(T, "ticker", "KRW-ETH", b)]))
    assert router.next_wait_deadline(T, 5.0) == 6.0
    router.update(add=[route(T, "ticker", "KRW-XRP", b)])
    assert router.next_wait_deadline(T, 5.0) == 6.0
    assert router.ticket_lost(T, 1, "dropped", at=2.0)
    assert router.ticket_connected(T, 2, at=3.0)
    assert router.next_wait_deadline(T, 5.0) is None  # the replay has not gone out yet
    router.note_sent(T, at=3.5)
    assert router.next_wait_deadline(T, 5.0) == 8.5


# ---------------------------------------------------------------------------------------------
# A stream that moves off a down ticket


def test_a_stream_moving_off_a_down_ticket_gets_its_gap_before_its_new_home() -> None:
    sub = SubscriberBuffer("s")
    btc, eth = route(T, "ticker", "KRW-BTC", sub), route(T, "ticker", "KRW-ETH", sub)
    router = connected_router(btc, eth)
    router.route(T, 1, ticker("KRW-BTC", stream=SNAP))
    router.route(T, 1, ticker("KRW-ETH", stream=SNAP))
    drain(sub)
    assert router.ticket_lost(T, 1, "dropped", at=5.0)
    # ETH moves to realtime-1 while realtime-0 is down; BTC stays.
    moved = route("realtime-1", "ticker", "KRW-ETH", sub)
    router.update(remove=[eth.id], add=[moved])
    assert router.ticket_connected("realtime-1", 1, at=6.0)
    router.route("realtime-1", 1, ticker("KRW-ETH", stream=SNAP))
    assert router.ticket_connected(T, 2, at=9.0)
    router.route(T, 2, ticker("KRW-BTC", stream=SNAP))
    items = drain(sub)
    assert [type(item).__name__ for item in items] == [
        "Interrupted",
        "Gap",
        "Ticker",
        "Gap",
        "Ticker",
    ]
    interrupted, eth_gap, eth_snap, btc_gap, btc_snap = items
    assert isinstance(interrupted, Interrupted)
    assert interrupted.codes == ("KRW-BTC", "KRW-ETH")
    assert isinstance(eth_gap, Gap)
    assert (eth_gap.codes, eth_gap.end) == (("KRW-ETH",), None)
    assert isinstance(btc_gap, Gap)
    assert (btc_gap.codes, btc_gap.end) == (("KRW-BTC",), 9.0)
    assert getattr(eth_snap, "code", None) == "KRW-ETH"
    assert getattr(btc_snap, "code", None) == "KRW-BTC"


def test_what_a_wait_held_back_is_delivered_when_it_runs_out_and_dropped_on_a_snapshot() -> None:
    quiet, trades, books = SubscriberBuffer("q"), SubscriberBuffer("t"), SubscriberBuffer("b")
    router = connected_router(
        route(T, "ticker", "KRW-BTC", quiet),
        route(T, "trade", "KRW-BTC", trades),
        route(T, "orderbook", "KRW-BTC", books, units=5),
    )
    router.note_sent(T, at=0.0)
    # A server that omits stream_type: every frame looks REALTIME, so all are held back.
    router.route(T, 1, ticker(price=1.0))
    router.route(T, 1, ticker(price=2.0))
    for sid in (1, 2, 3):
        router.route(T, 1, trade(sid=sid))
    router.route(T, 1, book(rows=30, stamp=7))
    assert router.statistics().tickets[T].books_trimmed == 0  # held, not delivered
    router.expire_waits(T, now=5.0, timeout=5.0)
    got = drain(quiet)
    assert isinstance(got[0], SnapshotMissing)
    assert [item.trade_price for item in got[1:] if isinstance(item, Ticker)] == [2.0]
    assert len(got) == 2
    assert sids(drain(trades)) == [1, 2, 3]  # every trade, in order, once
    assert router.route(T, 1, trade(sid=3)) == 0  # already delivered: not again
    (missing, view) = drain(books)
    assert isinstance(missing, SnapshotMissing)
    assert isinstance(view, Orderbook)
    assert (view.timestamp, len(view.orderbook_units)) == (7, 5)

    # When the SNAPSHOT does come, what was held back predates it and is dropped.
    late = SubscriberBuffer("late")
    router.update(add=[route(T, "ticker", "KRW-ETH", late)])
    router.route(T, 1, ticker("KRW-ETH", price=1.0))
    router.route(T, 1, ticker("KRW-ETH", price=2.0, stream=SNAP))
    router.note_sent(T, at=6.0)
    assert router.expire_waits(T, now=20.0, timeout=5.0) == []
    late_items = drain(late)
    assert [item.trade_price for item in late_items if isinstance(item, Ticker)] == [2.0]
    assert len(late_items) == 1


def test_a_request_starts_the_clock_only_for_the_waits_it_carries() -> None:
    a, b = SubscriberBuffer("a"), SubscriberBuffer("b")
    btc = route(T, "ticker", "KRW-BTC", a)
    router = connected_router(btc)
    router.note_sent(T, at=1.0, keys={btc.key})
    # b's route arrives while that request is out; its own request has not gone yet.
    eth = route(T, "ticker", "KRW-ETH", b)
    router.update(add=[eth])
    router.note_sent(T, at=2.0, keys={btc.key})  # a request without ETH (say, a re-send)
    assert router.next_wait_deadline(T, 5.0) == 6.0  # BTC's, from 1.0; ETH has no clock yet
    router.route(T, 1, ticker("KRW-BTC", stream=SNAP))
    assert router.next_wait_deadline(T, 5.0) is None
    router.note_sent(T, at=9.0, keys={btc.key, eth.key})
    assert router.next_wait_deadline(T, 5.0) == 14.0


def test_held_back_trades_are_released_within_the_buffers_room_and_the_rest_counted() -> None:
    small = SubscriberBuffer("s", max_size=16)
    router = connected_router(route(T, "trade", "KRW-BTC", small))
    router.note_sent(T, at=0.0)
    for sid in range(1, 11):  # ten trades, none marked SNAPSHOT: all held back
        router.route(T, 1, trade(sid=sid))
    router.expire_waits(T, now=5.0, timeout=5.0)
    items = drain(small)
    missing = items[0]
    assert isinstance(missing, SnapshotMissing)
    # A quarter of the buffer (4) is kept while waiting, the newest; the room allows them all.
    assert sids(items[1:]) == [7, 8, 9, 10]
    assert missing.dropped == 6
    assert router.statistics().tickets[T].held_dropped == 6
