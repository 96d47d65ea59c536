"""The snapshot service's sans-IO bookkeeping: routing keys, merging, settling, slots."""

from __future__ import annotations

import os

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.core.keys import StreamKey
from engine.core.snapshot_book import (
    Expired,
    Resolved,
    SlotState,
    SnapshotBook,
    full_key,
    message_key,
    route_key,
)
from engine.testing import MarketSimulator, default_catalog
from engine.wire.messages import Message, Orderbook, OrderbookUnit
from engine.wire.protocol import decode_frame

settings.register_profile("ci", max_examples=150, deadline=None)
settings.register_profile("long", max_examples=3000, deadline=None)
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")


def book_message(code: str, units: int = 30, level: float = 0.0) -> Orderbook:
    row = OrderbookUnit(ask_price=2.0, bid_price=1.0, ask_size=1.0, bid_size=1.0)
    return Orderbook(
        type="orderbook",
        code=code,
        total_ask_size=float(units),
        total_bid_size=float(units),
        orderbook_units=(row,) * units,
        timestamp=0,
        stream_type="SNAPSHOT",
        level=level,
    )


def ob(code: str, units: int | None = None, level: float | None = None) -> StreamKey:
    return StreamKey("orderbook", code, units, level)


def test_route_keys_fill_in_the_default_level_and_leave_the_depth_out() -> None:
    # A SNAPSHOT is matched by code and level, never by its row count (Upbit has answered with
    # other depths than asked); full_key keeps what the caller asked for.
    assert route_key(ob("KRW-BTC")) == StreamKey("orderbook", "KRW-BTC", None, 0.0)
    assert route_key(ob("KRW-BTC", 30, 0)) == route_key(ob("KRW-BTC", 5))
    assert route_key(ob("KRW-BTC", 5, 1000)) == StreamKey("orderbook", "KRW-BTC", None, 1000.0)
    assert route_key(StreamKey("ticker", "KRW-BTC")) == StreamKey("ticker", "KRW-BTC")
    assert full_key(ob("KRW-BTC")) == StreamKey("orderbook", "KRW-BTC", 30, 0.0)
    assert full_key(ob("KRW-BTC", 5, 1000)) == StreamKey("orderbook", "KRW-BTC", 5, 1000.0)


def test_message_keys_match_the_requests_they_answer() -> None:
    simulator = MarketSimulator(default_catalog(0)[:5], seed=0)
    for data_type, key in [
        ("ticker", StreamKey("ticker", "KRW-BTC")),
        ("trade", StreamKey("trade", "KRW-BTC")),
        ("candle.1m", StreamKey("candle.1m", "KRW-BTC")),
    ]:
        rendered = simulator.render(data_type, "KRW-BTC", "SNAPSHOT")
        assert message_key(decode_frame(orjson.dumps(rendered))) == route_key(key)
    rendered = simulator.render("orderbook", "KRW-ETH", "SNAPSHOT", units=15)
    assert message_key(decode_frame(orjson.dumps(rendered))) == route_key(ob("KRW-ETH", 15))
    assert message_key(decode_frame(b'{"status":"UP"}')) is None


def test_concurrent_asks_for_one_stream_share_one_wire_key() -> None:
    book = SnapshotBook(1)
    book.ticket_up(0)
    book.add(1, [ob("KRW-BTC")], deadline=5, timeout=5)
    book.add(2, [ob("KRW-BTC", 30), ob("KRW-ETH", 5)], deadline=5, timeout=5)
    assert book.wake() == 0
    batch = book.take(0)
    assert batch is not None
    # Once each, at full depth (no .N suffix): one SNAPSHOT serves asks of any depth.
    assert batch.wire == (ob("KRW-BTC"), ob("KRW-ETH")), "first-seen wire form, once"
    message = book_message("KRW-BTC")
    first = book.deliver(message)
    assert first == [Resolved(1, {("orderbook", "KRW-BTC"): message})]
    (second,) = book.deliver(book_message("KRW-ETH", 5))
    assert second.ask_id == 2
    assert second.results[("orderbook", "KRW-BTC")] is message


def test_an_ask_for_a_key_in_flight_waits_for_it_without_a_new_batch() -> None:
    book = SnapshotBook(2)
    book.ticket_up(0)
    book.ticket_up(1)
    book.add(1, [ob("KRW-BTC")], deadline=5, timeout=5)
    book.wake()
    book.take(0)
    book.add(2, [ob("KRW-BTC")], deadline=6, timeout=5)
    assert book.queued == ()
    assert book.wake() is None
    assert [r.ask_id for r in book.deliver(book_message("KRW-BTC"))] == [1, 2]


def test_any_depth_answers_and_each_ask_gets_the_rows_it_asked_for() -> None:
    book = SnapshotBook(1)
    book.ticket_up(0)
    book.add(1, [ob("KRW-BTC", 5)], deadline=5, timeout=5)
    book.add(2, [ob("KRW-BTC")], deadline=5, timeout=5)
    book.add(3, [ob("KRW-BTC", 15)], deadline=5, timeout=5)
    book.wake()
    batch = book.take(0)
    assert batch is not None
    assert batch.wire == (ob("KRW-BTC"),)
    assert book.deliver(book_message("KRW-BTC", 5, level=10.0)) == [], "another level"
    resolved = book.deliver(book_message("KRW-BTC", 10))  # neither 5, 15 nor 30 rows
    books = {r.ask_id: r.results[("orderbook", "KRW-BTC")] for r in resolved}
    assert all(isinstance(book, Orderbook) for book in books.values())
    rows = {ask: len(b.orderbook_units) for ask, b in books.items() if isinstance(b, Orderbook)}
    assert rows == {1: 5, 2: 10, 3: 10}


def test_expiry_names_what_is_missing_and_drops_late_snapshots() -> None:
    book = SnapshotBook(1)
    book.ticket_up(0)
    book.add(1, [ob("KRW-BTC"), ob("KRW-NOPE")], deadline=5, timeout=3)
    book.wake()
    book.take(0)
    early = book_message("KRW-BTC")
    assert book.deliver(early) == []
    assert book.next_deadline() == 5
    assert book.expire(4.9) == []
    assert book.expire(5) == [
        Expired(1, (("orderbook", "KRW-NOPE"),), {("orderbook", "KRW-BTC"): early}, 3)
    ]
    assert book.deliver(book_message("KRW-NOPE")) == [], "late: dropped"
    assert book.pending_asks == 0
    assert book.next_deadline() is None


def test_a_settled_batch_parks_its_silent_keys_until_other_work_goes_out() -> None:
    book = SnapshotBook(1)
    book.ticket_up(0)
    book.add(1, [ob("KRW-NOPE")], deadline=5, timeout=5)
    book.wake()
    first = book.take(0)
    assert first is not None
    book.settle(0, first.batch_id, lost=False)
    assert book.slot(0) is SlotState.WOKEN, "it pulls again at once"
    assert book.parked == (route_key(ob("KRW-NOPE")),)
    assert book.take(0) is None, "parked keys alone send nothing"
    assert book.slot(0) is SlotState.IDLE
    assert book.wake() is None
    book.add(2, [ob("KRW-ETH")], deadline=5, timeout=5)
    assert book.wake() == 0
    second = book.take(0)
    assert second is not None
    assert second.wire == (ob("KRW-ETH"), ob("KRW-NOPE")), "the parked key rides along"


def test_a_new_ask_for_a_parked_key_sends_it_again() -> None:
    book = SnapshotBook(1)
    book.ticket_up(0)
    book.add(1, [ob("KRW-SLOW")], deadline=5, timeout=5)
    book.wake()
    batch = book.take(0)
    assert batch is not None
    book.settle(0, batch.batch_id, lost=False)
    book.take(0)
    book.add(2, [ob("KRW-SLOW")], deadline=6, timeout=5)
    assert book.queued == (route_key(ob("KRW-SLOW")),)
    assert book.wake() == 0


def test_a_lost_batch_queues_what_is_missing_again() -> None:
    book = SnapshotBook(1)
    book.ticket_up(0)
    book.add(1, [ob("KRW-BTC"), ob("KRW-ETH")], deadline=5, timeout=5)
    book.wake()
    batch = book.take(0)
    assert batch is not None
    book.deliver(book_message("KRW-BTC"))
    book.settle(0, batch.batch_id, lost=True)
    assert book.slot(0) is SlotState.IDLE
    assert book.queued == (route_key(ob("KRW-ETH")),)
    assert book.wake() == 0
    again = book.take(0)
    assert again is not None
    assert again.wire == (ob("KRW-ETH"),)
    book.settle(0, batch.batch_id, lost=True)  # stale: ignored
    assert book.slot(0) is SlotState.BUSY


def test_an_error_frame_fails_only_the_asks_waiting_on_that_batch() -> None:
    book = SnapshotBook(2)
    book.ticket_up(0)
    book.ticket_up(1)
    book.add(1, [ob("KRW-BTC")], deadline=5, timeout=5)
    book.wake()
    first = book.take(0)
    book.add(2, [ob("KRW-ETH")], deadline=5, timeout=5)
    assert book.wake() == 1, "the second ticket serves while the first is busy"
    book.take(1)
    assert first is not None
    book.set_connected(0, True)
    assert book.fail(0, first.batch_id) == [1]
    assert book.slot(0) is SlotState.IDLE
    assert book.connected() == ()
    assert [r.ask_id for r in book.deliver(book_message("KRW-ETH"))] == [2]
    assert book.pending_asks == 0


def test_a_dead_ticket_hands_its_batch_to_another() -> None:
    book = SnapshotBook(2)
    book.ticket_up(0)
    book.ticket_up(1)
    book.add(1, [ob("KRW-BTC")], deadline=5, timeout=5)
    assert book.wake() == 0
    book.take(0)
    book.ticket_down(0)
    assert book.slot(0) is SlotState.DOWN
    assert book.take(0) is None
    assert book.wake() == 1
    batch = book.take(1)
    assert batch is not None
    assert batch.wire == (ob("KRW-BTC"),)


def test_wake_prefers_a_connected_ticket_and_wakes_one_at_a_time() -> None:
    book = SnapshotBook(3)
    for ticket in range(3):
        book.ticket_up(ticket)
    book.set_connected(2, True)
    book.add(1, [ob("KRW-BTC")], deadline=5, timeout=5)
    assert book.wake() == 2
    book.add(2, [ob("KRW-ETH")], deadline=5, timeout=5)
    assert book.wake() is None, "the woken ticket takes everything queued"
    batch = book.take(2)
    assert batch is not None
    assert len(batch.wire) == 2


def test_cancelled_asks_stop_wanting_their_keys() -> None:
    book = SnapshotBook(1)
    book.ticket_up(0)
    book.add(1, [ob("KRW-BTC")], deadline=5, timeout=5)
    book.cancel(1)
    assert book.queued == ()
    assert book.wake() is None
    with pytest.raises(ValueError, match="at least one"):
        book.add(2, [], deadline=5, timeout=5)
    with pytest.raises(ValueError, match="at least one ticket"):
        SnapshotBook(0)


# -- a model-checked random walk -------------------------------------------------------------

CODES = ("KRW-A", "KRW-B", "KRW-C", "KRW-D")
KEYS = [ob(code, units) for code in CODES for units in (1, 5)]

operations = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.lists(st.sampled_from(KEYS), min_size=1, max_size=3)),
        st.tuples(st.just("take"), st.integers(0, 1)),
        st.tuples(st.just("deliver"), st.sampled_from(KEYS)),
        st.tuples(st.just("settle"), st.integers(0, 1), st.booleans()),
        st.tuples(st.just("fail"), st.integers(0, 1)),
        st.tuples(st.just("down"), st.integers(0, 1)),
        st.tuples(st.just("expire")),
        st.tuples(st.just("cancel"), st.integers(1, 12)),
    ),
    max_size=40,
)


@settings(settings.get_profile(PROFILE), suppress_health_check=[HealthCheck.too_slow])
@given(operations)
def test_random_walks_keep_every_wanted_key_in_exactly_one_place(ops: list[tuple]) -> None:  # type: ignore[type-arg]
    book = SnapshotBook(2)
    book.ticket_up(0)
    book.ticket_up(1)
    model: dict[int, set[StreamKey]] = {}
    now = 0.0
    next_id = 1
    for op in ops:
        now += 1.0
        kind = op[0]
        if kind == "add":
            book.add(next_id, op[1], deadline=now + 3, timeout=3)
            model[next_id] = {route_key(key) for key in op[1]}
            next_id += 1
        elif kind == "take":
            if book.slot(op[1]) is SlotState.DOWN:
                book.ticket_up(op[1])
            batch = book.take(op[1])
            if batch is not None:
                assert len(set(batch.keys)) == len(batch.keys)
                assert all(any(key in keys for keys in model.values()) for key in batch.keys)
        elif kind == "deliver":
            message: Message = book_message(op[1].code, op[1].units or 30)
            resolved = {r.ask_id for r in book.deliver(message)}
            key = route_key(op[1])
            for keys in model.values():
                keys.discard(key)
            assert resolved == {a for a, keys in model.items() if not keys}
            for ask_id in resolved:
                del model[ask_id]
        elif kind == "settle":
            batch = book.batch_of(op[1])
            if batch is not None:
                book.settle(op[1], batch.batch_id, lost=op[2])
        elif kind == "fail":
            batch = book.batch_of(op[1])
            failed = book.fail(op[1], None if batch is None else batch.batch_id)
            for ask_id in failed:
                assert model.pop(ask_id) & set(batch.keys if batch else ())
        elif kind == "down":
            book.ticket_down(op[1])
        elif kind == "expire":
            for expired in book.expire(now):
                keys = model.pop(expired.ask_id)
                assert set(expired.missing) == {(k.data_type, k.code) for k in keys}
        else:
            book.cancel(op[1])
            model.pop(op[1], None)
        assert book.pending_asks == len(model)
        wanted = set().union(*model.values())
        queued, parked, flying = set(book.queued), set(book.parked), set(book.in_flight)
        assert queued | parked <= wanted, "nothing unwanted waits to be sent"
        assert not queued & parked
        assert not queued & flying
        assert not parked & flying
        assert wanted <= queued | parked | flying, "every wanted key is somewhere"
        book.wake()  # as the coordinator does after every message
        states = {book.slot(t) for t in (0, 1)}
        # No lost wake-up: queued work always has a ticket coming for it, or none can take it.
        assert not queued or SlotState.WOKEN in states or SlotState.IDLE not in states
