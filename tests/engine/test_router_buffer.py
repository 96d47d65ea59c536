"""SubscriberBuffer: overflow policies, events, ending, wake-ups."""

from __future__ import annotations

import itertools

import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.config import OverflowPolicies
from engine.errors import SubscriptionFailedError
from engine.events import Ended, Gap, Interrupted
from engine.routing.buffer import MIN_EVENT_ROOM
from engine.routing.router import StreamItem, SubscriberBuffer
from engine.wire.messages import Candle, Message, Orderbook, Ticker, Trade
from tests.engine.test_router_support import SNAP, book, candle, drain, my_asset, ticker, trade


def prices(items: list[StreamItem]) -> list[tuple[str, float]]:
    out: list[tuple[str, float]] = []
    for item in items:
        assert isinstance(item, Ticker)
        out.append((item.code, item.trade_price))
    return out


# ---------------------------------------------------------------------------------------------
# Lossless


async def test_lossless_overflow_fails_loudly_after_the_buffered_messages() -> None:
    failures: list[SubscriptionFailedError] = []
    buffer = SubscriberBuffer("sub-1", max_size=3, on_failed=failures.append)
    for sid in (1, 2, 3):
        buffer.put_nowait(trade(sid=sid))
    buffer.put_nowait(trade(sid=4))  # overflow
    buffer.put_nowait(trade(sid=5))  # after the failure: dropped
    assert len(failures) == 1
    cause = failures[0].cause
    assert "3 messages" in cause
    assert "consume faster" in cause
    assert "subscriber_buffer" in cause
    assert failures[0].subscription_id == "sub-1"
    received: list[int] = []

    async def consume() -> None:
        async for item in buffer:
            assert isinstance(item, Trade)
            received.append(item.sequential_id)

    with pytest.raises(SubscriptionFailedError) as caught:
        await consume()
    assert received == [1, 2, 3]
    assert caught.value.cause == cause
    stats = buffer.statistics()
    assert stats.closed
    assert stats.failure == cause
    assert stats.dropped == 2
    assert stats.delivered == 3
    assert stats.buffered == 0
    # The failure stays: every later receive raises it again.
    with pytest.raises(SubscriptionFailedError):
        await buffer.receive()


def test_private_types_are_lossless_by_default() -> None:
    buffer = SubscriberBuffer("s", max_size=1)
    buffer.put_nowait(my_asset("a"))
    buffer.put_nowait(my_asset("b"))
    assert buffer.statistics().failure is not None
    assert "myAsset is lossless" in (buffer.statistics().failure or "")


def test_policies_can_make_ticker_lossless() -> None:
    buffer = SubscriberBuffer("s", max_size=1, policies=OverflowPolicies(ticker="fail"))
    buffer.put_nowait(ticker(price=1.0))
    buffer.put_nowait(ticker(price=2.0))
    assert buffer.closed
    assert buffer.statistics().conflated == 0


# ---------------------------------------------------------------------------------------------
# Conflation


def test_conflation_puts_the_newest_value_where_the_oldest_pending_one_was() -> None:
    buffer = SubscriberBuffer("s", max_size=3)
    buffer.put_nowait(ticker("KRW-A", 1.0))
    buffer.put_nowait(ticker("KRW-B", 1.0))
    buffer.put_nowait(ticker("KRW-A", 2.0))  # now full
    buffer.put_nowait(ticker("KRW-A", 3.0))  # replaces A1, and A2 goes
    stats = buffer.statistics()
    assert stats.conflated == 2
    assert stats.buffered == 2
    buffer.put_nowait(ticker("KRW-C", 1.0))  # room again: appended
    buffer.put_nowait(ticker("KRW-B", 2.0))  # full: replaces B1 in place
    assert prices(drain(buffer)) == [("KRW-A", 3.0), ("KRW-B", 2.0), ("KRW-C", 1.0)]
    assert buffer.statistics().conflated == 3
    assert not buffer.closed


def test_a_full_buffer_still_takes_a_code_with_nothing_pending() -> None:
    buffer = SubscriberBuffer("s", max_size=2)
    buffer.put_nowait(ticker("KRW-A", 1.0))
    buffer.put_nowait(ticker("KRW-B", 1.0))
    for price in (1.0, 2.0, 3.0):
        buffer.put_nowait(ticker("KRW-C", price))
    # One value per code at most beyond max_size: C is appended once, then conflated.
    assert buffer.statistics().buffered == 3
    assert prices(drain(buffer)) == [("KRW-A", 1.0), ("KRW-B", 1.0), ("KRW-C", 3.0)]


def test_orderbooks_of_other_depths_or_levels_are_not_conflated_together() -> None:
    buffer = SubscriberBuffer("s", max_size=1)
    buffer.put_nowait(book(rows=5, stamp=1))
    buffer.put_nowait(book(rows=15, stamp=2))
    buffer.put_nowait(book(rows=15, level=10.0, stamp=3))
    buffer.put_nowait(book(rows=5, stamp=4))
    got = drain(buffer)
    assert all(isinstance(item, Orderbook) for item in got)
    assert [(len(b.orderbook_units), b.level, b.timestamp) for b in got] == [  # type: ignore[union-attr]
        (5, 0.0, 4),
        (15, 0.0, 2),
        (15, 10.0, 3),
    ]


def test_candle_units_are_separate_streams() -> None:
    buffer = SubscriberBuffer("s", max_size=1)
    buffer.put_nowait(candle(unit="candle.1m", price=1.0))
    buffer.put_nowait(candle(unit="candle.5m", price=2.0))
    buffer.put_nowait(candle(unit="candle.1m", price=3.0))
    got = drain(buffer)
    assert [(c.type, c.trade_price) for c in got if isinstance(c, Candle)] == [
        ("candle.1m", 3.0),
        ("candle.5m", 2.0),
    ]


def test_a_snapshot_is_never_replaced_and_nothing_moves_before_it() -> None:
    buffer = SubscriberBuffer("s", max_size=2)
    buffer.put_nowait(ticker("KRW-A", 1.0))
    buffer.put_nowait(ticker("KRW-A", 2.0, stream=SNAP))  # full
    buffer.put_nowait(ticker("KRW-A", 3.0))  # may not go where A1 is (before the SNAPSHOT)
    buffer.put_nowait(ticker("KRW-A", 4.0))
    got = drain(buffer)
    assert prices(got) == [("KRW-A", 1.0), ("KRW-A", 2.0), ("KRW-A", 4.0)]
    assert isinstance(got[1], Ticker)
    assert got[1].stream_type == SNAP


def test_events_are_barriers_and_never_dropped() -> None:
    buffer = SubscriberBuffer("s", max_size=2)
    buffer.put_nowait(ticker("KRW-A", 1.0))
    buffer.put_event(Interrupted("t", 1.0, "lost", ("KRW-A",)))  # full
    buffer.put_event(Gap("t", 1.0, 2.0, "lost", ("KRW-A",)))  # over max_size: events always fit
    buffer.put_nowait(ticker("KRW-A", 2.0))
    buffer.put_nowait(ticker("KRW-A", 3.0))
    got = drain(buffer)
    assert [type(item).__name__ for item in got] == ["Ticker", "Interrupted", "Gap", "Ticker"]
    assert isinstance(got[3], Ticker)
    assert got[3].trade_price == 3.0


def test_events_fit_even_when_a_lossless_buffer_is_full() -> None:
    buffer = SubscriberBuffer("s", max_size=1)
    buffer.put_nowait(trade(sid=1))
    buffer.put_event(Interrupted("t", 0.0, "x", ()))
    assert not buffer.closed
    assert len(drain(buffer)) == 2


def test_too_many_unread_events_fail_the_buffer() -> None:
    failures: list[SubscriptionFailedError] = []
    buffer = SubscriberBuffer("s", max_size=2, on_failed=failures.append)
    for n in range(MIN_EVENT_ROOM):
        buffer.put_event(Interrupted("t", float(n), "x", ()))
    assert not buffer.closed
    buffer.receive_nowait()  # reading one makes room for one more
    buffer.put_event(Interrupted("t", 0.0, "x", ()))
    assert not buffer.closed
    buffer.put_event(Interrupted("t", 0.0, "x", ()))
    assert buffer.statistics().closed
    assert failures
    assert "stopped reading" in failures[0].cause


def test_mixed_subscription_conflates_tickers_and_keeps_every_trade() -> None:
    buffer = SubscriberBuffer("s", max_size=3)
    buffer.put_nowait(trade(sid=1))
    buffer.put_nowait(ticker("KRW-A", 1.0))
    buffer.put_nowait(ticker("KRW-A", 2.0))  # full
    buffer.put_nowait(ticker("KRW-A", 3.0))  # conflated: A3 where A1 was, A2 gone
    assert buffer.statistics().buffered == 2
    buffer.put_nowait(trade(sid=2))  # fits in the room conflation made
    assert not buffer.closed
    buffer.put_nowait(trade(sid=3))  # lossless and full: fails
    assert buffer.statistics().closed
    got = drain(buffer)
    assert [type(m).__name__ for m in got] == ["Trade", "Ticker", "Trade"]
    assert isinstance(got[1], Ticker)
    assert got[1].trade_price == 3.0


# ---------------------------------------------------------------------------------------------
# Ending and waking


async def test_close_discards_pending_and_ends_iteration_cleanly() -> None:
    buffer = SubscriberBuffer("s")
    buffer.put_nowait(ticker())
    buffer.put_nowait(ticker())
    buffer.close("unsubscribed")
    buffer.put_nowait(ticker())
    # Pending messages are gone; one Ended event says why the stream stops.
    (ended,) = [item async for item in buffer]
    assert isinstance(ended, Ended)
    assert (ended.subscription_id, ended.reason, ended.discarded) == ("s", "unsubscribed", 2)
    with pytest.raises(trio.EndOfChannel):
        await buffer.receive()
    stats = buffer.statistics()
    assert stats.dropped == 3
    assert stats.close_reason == "unsubscribed"
    assert stats.failure is None
    buffer.fail("too late")  # fail after close changes nothing
    assert buffer.statistics().failure is None


async def test_a_parked_consumer_wakes_on_put_and_on_close() -> None:
    buffer = SubscriberBuffer("s")
    received: list[StreamItem] = []

    async def consume() -> None:
        async for item in buffer:
            received.append(item)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(consume)
        await trio.testing.wait_all_tasks_blocked()
        buffer.put_nowait(ticker(price=1.0))
        await trio.testing.wait_all_tasks_blocked()
        assert prices(received) == [("KRW-BTC", 1.0)]
        buffer.close()
    assert len(received) == 2
    assert isinstance(received[-1], Ended)
    assert received[-1].reason == "closed"


async def test_a_cancelled_receive_loses_nothing(autojump_clock: trio.testing.MockClock) -> None:
    buffer = SubscriberBuffer("s")
    with trio.move_on_after(1) as scope:  # autojumped: no message arrives meanwhile
        await buffer.receive()
    assert scope.cancelled_caught
    buffer.put_nowait(ticker(price=7.0))
    item = await buffer.receive()
    assert isinstance(item, Ticker)
    assert item.trade_price == 7.0


async def test_receive_is_a_checkpoint_even_when_an_item_is_waiting() -> None:
    buffer = SubscriberBuffer("s")
    buffer.put_nowait(ticker())
    with trio.CancelScope() as scope:
        scope.cancel()
        with pytest.raises(trio.Cancelled):
            await buffer.receive()
    assert buffer.statistics().buffered == 1


def test_receive_nowait_would_block_when_empty() -> None:
    buffer = SubscriberBuffer("s")
    with pytest.raises(trio.WouldBlock):
        buffer.receive_nowait()


@pytest.mark.parametrize("size", [0, -1, True, 1.5])
def test_max_size_must_be_a_positive_int(size: object) -> None:
    with pytest.raises(ValueError, match="subscriber_buffer"):
        SubscriberBuffer("s", max_size=size)  # type: ignore[arg-type]


def test_policies_must_be_overflow_policies() -> None:
    with pytest.raises(TypeError, match="OverflowPolicies"):
        SubscriberBuffer("s", policies={"ticker": "fail"})  # type: ignore[arg-type]


def test_repr_names_the_state() -> None:
    buffer = SubscriberBuffer("sub-9", max_size=4)
    assert "sub-9 open 0/4" in repr(buffer)
    buffer.fail("x")
    assert "failed" in repr(buffer)


# ---------------------------------------------------------------------------------------------
# Conflation against a model


_CODES = ("KRW-A", "KRW-B", "KRW-C")
_ops = st.lists(
    st.one_of(
        st.tuples(st.just("put"), st.sampled_from(_CODES), st.booleans()),
        st.tuples(st.just("read"), st.integers(1, 4), st.just(False)),
        st.tuples(st.just("gap"), st.just(""), st.just(False)),
    ),
    max_size=60,
)


@settings(max_examples=150, deadline=None)
@given(ops=_ops, max_size=st.integers(1, 5))
def test_conflation_model(ops: list[tuple[str, str | int, bool]], max_size: int) -> None:
    """Per code: order kept, the newest value always arrives, every SNAPSHOT arrives; the
    buffer holds at most max_size + one value per code + the events; nothing is lost silently:
    every put is either delivered or counted as conflated."""
    buffer = SubscriberBuffer("s", max_size=max_size)
    counter = 0
    put_values: dict[str, list[float]] = {code: [] for code in _CODES}
    snapshots: set[float] = set()
    received: list[StreamItem] = []
    events = 0
    for op, arg, flag in ops:
        if op == "put":
            assert isinstance(arg, str)
            counter += 1
            msg: Message = ticker(arg, float(counter), stream=SNAP if flag else "REALTIME")
            if flag:
                snapshots.add(float(counter))
            put_values[arg].append(float(counter))
            buffer.put_nowait(msg)
        elif op == "read":
            assert isinstance(arg, int)
            for _ in range(arg):
                try:
                    received.append(buffer.receive_nowait())
                except trio.WouldBlock:
                    break
        else:
            events += 1
            buffer.put_event(Gap("t", float(events), None, "x", ()))
        bound = max_size + len(_CODES) + events + len(snapshots)
        assert buffer.statistics().buffered <= bound
    received.extend(drain(buffer))
    assert not buffer.closed
    seen: dict[str, list[float]] = {code: [] for code in _CODES}
    for item in received:
        if isinstance(item, Ticker):
            seen[item.code].append(item.trade_price)
    for code in _CODES:
        assert seen[code] == sorted(seen[code])
        if put_values[code]:
            assert seen[code][-1] == put_values[code][-1]
        assert set(seen[code]) <= set(put_values[code])
    delivered_prices = {p for values in seen.values() for p in values}
    assert snapshots <= delivered_prices
    stats = buffer.statistics()
    assert stats.conflated + len(delivered_prices) == counter
    assert stats.delivered == len(received)
    assert sum(isinstance(item, Gap) for item in received) == events


@settings(max_examples=100, deadline=None)
@given(
    ops=st.lists(
        st.tuples(st.sampled_from(["put", "gap", "read"]), st.sampled_from(_CODES)), max_size=50
    )
)
def test_nothing_crosses_an_event(ops: list[tuple[str, str]]) -> None:
    """A value put after the n-th event is received after the n-th event and before the next."""
    buffer = SubscriberBuffer("s", max_size=2)
    epoch = 0
    received: list[StreamItem] = []
    for op, code in ops:
        if op == "put":
            buffer.put_nowait(ticker(code, float(epoch)))
        elif op == "gap":
            epoch += 1
            buffer.put_event(Gap("t", float(epoch), None, "x", ()))
        else:
            received.extend(drain(buffer))
    received.extend(drain(buffer))
    gaps = 0
    for item in received:
        if isinstance(item, Gap):
            gaps += 1
            continue
        assert isinstance(item, Ticker)
        assert item.trade_price == float(gaps)


async def test_a_reader_keeps_pace_with_a_pump_that_routes_a_whole_read_per_turn() -> None:
    # The fast transport hands a pump ~150 frames per socket read, all routed in one turn. A
    # reader taking one item per turn would overflow this lossless buffer within a few turns.
    buffer = SubscriberBuffer("s", max_size=1024)
    per_turn, turns = 400, 50
    received: list[StreamItem] = []

    async def pump() -> None:
        for turn in range(turns):
            for index in range(per_turn):
                buffer.put_nowait(trade(sid=turn * per_turn + index))
            await trio.lowlevel.checkpoint()
        while buffer.statistics().buffered:  # close() ends the stream without the rest
            await trio.lowlevel.checkpoint()
        buffer.close("done")

    async def read() -> None:
        async for item in buffer:
            received.append(item)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(read)
        nursery.start_soon(pump)
    assert isinstance(received[-1], Ended)
    assert len(received) == per_turn * turns + 1
    assert buffer.statistics().delivered == per_turn * turns + 1  # the messages and the event


async def test_a_reader_draining_a_full_buffer_still_lets_other_tasks_run() -> None:
    buffer = SubscriberBuffer("s", max_size=4096)
    for sid in range(4000):
        buffer.put_nowait(trade(sid=sid))
    reads = 0
    seen_at: list[int] = []  # how many items had been read each time the other task ran

    async def other_task() -> None:
        while True:
            seen_at.append(reads)
            await trio.lowlevel.checkpoint()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(other_task)
        for _ in range(4000):
            await buffer.receive()
            reads += 1
        await trio.lowlevel.checkpoint()
        nursery.cancel_scope.cancel()
    # Bounded streaks: a schedule point every 1024 items, so the other task runs at least once
    # per two streaks (Trio may run the reader first in one batch and last in the next).
    marks = [0, *seen_at, reads]
    assert max(after - before for before, after in itertools.pairwise(marks)) <= 2 * 1024
    assert len(seen_at) >= 2
