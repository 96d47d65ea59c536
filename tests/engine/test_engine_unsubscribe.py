"""Modify, soft and hard unsubscribe, parking, against the emulator."""

from __future__ import annotations

import pytest
import trio
from trio.testing import MockClock

from engine.errors import InvalidSubscriptionError
from engine.events import Ended
from engine.testing import Quirks

from ._engine_support import (
    WAIT,
    collect,
    emulator_set,
    engine_on_emulator,
    messages,
    settle,
    subscribe_requests,
    wire_set,
)


async def test_modify_reuses_the_ticket_and_snapshots_only_new_codes(
    autojump_clock: MockClock,
) -> None:
    async with engine_on_emulator() as (eng, emu):
        other = await eng.subscribe_realtime("ticker", ["KRW-XRP"])
        sub_id = await eng.subscribe_realtime("ticker", ["KRW-BTC"])
        stream = eng.stream(sub_id)
        await collect(stream, 2)
        await settle(eng, emu)
        await eng.modify_subscription(sub_id, ["KRW-BTC", "KRW-ETH"])
        got = messages(await collect(stream, 12))
        eth = [m.stream_type for m in got if m.code == "KRW-ETH"]
        assert eth
        assert eth[0] == "SNAPSHOT"
        assert all(m.stream_type == "REALTIME" for m in got if m.code == "KRW-BTC")
        (conn,) = emu.connections(open_only=True)
        last = wire_set(subscribe_requests(emu, conn.conn_id)[-1])
        assert last == {
            ("ticker", "KRW-XRP"): True,
            ("ticker", "KRW-BTC"): True,
            ("ticker", "KRW-ETH"): False,
        }
        assert eng.subscription(other).tickets == ("realtime-0",)


async def test_soft_unsubscribe_of_the_last_subscription_parks_the_ticket(
    autojump_clock: MockClock,
) -> None:
    async with engine_on_emulator() as (eng, emu):
        sub_id = await eng.subscribe_realtime("ticker", ["KRW-BTC", "KRW-ETH"])
        stream = eng.stream(sub_id)
        await collect(stream, 3)
        await settle(eng, emu)
        await eng.unsubscribe_realtime(sub_id)
        with trio.fail_after(WAIT):
            rest = [item async for item in stream]  # ends cleanly, nothing after
        (last,) = rest  # pending messages are dropped at an unsubscribe: only the event is left
        assert isinstance(last, Ended)
        assert (last.subscription_id, last.reason) == (sub_id, "unsubscribed")
        (conn,) = emu.connections(open_only=True)
        await emu.wait_requests(2, conn_id=conn.conn_id, kind="subscribe")
        parking = subscribe_requests(emu, conn.conn_id)[-1].json()
        assert isinstance(parking, list)
        (ask,) = parking[1:-1]
        assert ask["type"] == "ticker"
        assert ask["is_only_snapshot"] is True
        assert ask["codes"][0].split("-")[0] != "KRW"  # parked in another quote market
        await settle(eng, emu)
        usage = eng.get_ticket_usage().realtime
        assert (usage.open, usage.parked) == (1, 1)
        # A parked ticket streams nothing: the emulator sends no more frames.
        sent = emu.connection(conn.conn_id).frames_sent
        await trio.sleep(30)
        assert emu.connection(conn.conn_id).frames_sent - sent <= 3  # status frames only
        assert emulator_set(emu, conn.conn_id) <= {("ticker", ask["codes"][0])}
        assert eng.metrics().parking_requests == 1


async def test_partial_soft_unsubscribe_keeps_the_other_symbols(
    autojump_clock: MockClock,
) -> None:
    async with engine_on_emulator() as (eng, emu):
        sub_id = await eng.subscribe_realtime("trade", ["KRW-BTC", "KRW-ETH"])
        stream = eng.stream(sub_id)
        await collect(stream, 3)
        await eng.soft_unsubscribe(sub_id, release=["KRW-ETH"])
        await settle(eng, emu)
        (conn,) = emu.connections(open_only=True)
        assert emulator_set(emu, conn.conn_id) == {("trade", "KRW-BTC")}
        later = messages(await collect(stream, 20))
        # Frames already buffered before the change may be ETH; none after it.
        assert later[-1].code == "KRW-BTC"
        assert eng.subscription(sub_id).codes == ("KRW-BTC",)


async def test_the_briefs_current_symbols_name_what_streams_and_end_it(
    autojump_clock: MockClock,
) -> None:
    async with engine_on_emulator() as (eng, emu):
        sub_id = await eng.subscribe_realtime("trade", ["KRW-BTC", "KRW-ETH"])
        await settle(eng, emu)
        # Naming fewer than it streams is refused before anything is sent, pointing at release=.
        sent = len(subscribe_requests(emu))
        with pytest.raises(InvalidSubscriptionError, match="release=") as info:
            await eng.soft_unsubscribe(sub_id, current_symbols=["KRW-ETH"])
        assert "KRW-BTC, KRW-ETH" in str(info.value)
        assert len(subscribe_requests(emu)) == sent
        assert eng.subscription(sub_id).codes == ("KRW-BTC", "KRW-ETH")
        # Naming them all (current_symbols: what the subscription streams now) ends it.
        await eng.soft_unsubscribe(sub_id, current_symbols=["KRW-ETH", "KRW-BTC"])
        assert not eng.subscription(sub_id).is_live
        other = await eng.subscribe_realtime("trade", ["KRW-BTC"])
        with pytest.raises(InvalidSubscriptionError, match="does not stream KRW-XRP"):
            await eng.soft_unsubscribe(other, release=["KRW-XRP"])


async def test_nothing_reaches_a_subscriber_after_unsubscribe(autojump_clock: MockClock) -> None:
    async with engine_on_emulator(emulator={"quirks": Quirks(stale_frames=2)}) as (eng, emu):
        keep = await eng.subscribe_realtime("ticker", ["KRW-BTC"])
        gone = await eng.subscribe_realtime("ticker", ["KRW-ETH"])
        gone_stream = eng.stream(gone)
        await collect(gone_stream, 2)
        await eng.unsubscribe_realtime(gone)
        with trio.fail_after(WAIT):
            async for _ in gone_stream:
                pass
        await collect(eng.stream(keep), 10)
        stats = eng.metrics().subscribers
        assert gone not in stats
        assert emulator_set(emu, emu.connections(open_only=True)[0].conn_id) == {
            ("ticker", "KRW-BTC")
        }


async def test_hard_unsubscribe_reopens_the_connection_with_what_remains(
    autojump_clock: MockClock,
) -> None:
    async with engine_on_emulator() as (eng, emu):
        keep = await eng.subscribe_realtime("ticker", ["KRW-BTC"])
        gone = await eng.subscribe_realtime("trade", ["KRW-ETH"])
        keep_stream = eng.stream(keep)
        await collect(keep_stream, 2)
        await settle(eng, emu)
        (first,) = emu.connections(open_only=True)
        await eng.hard_unsubscribe(gone)
        await emu.wait_closed(first.conn_id)
        (second,) = await emu.wait_connections(1)
        assert second.conn_id != first.conn_id
        await settle(eng, emu)
        (request,) = subscribe_requests(emu, second.conn_id)
        assert wire_set(request) == {("ticker", "KRW-BTC"): False}
        assert emulator_set(emu, second.conn_id) == {("ticker", "KRW-BTC")}
        items = await collect(keep_stream, 8)
        kinds = [item.type for item in items]
        assert "interrupted" in kinds
        assert "gap" in kinds
        after_gap = items[kinds.index("gap") + 1 :]
        assert after_gap[0].type == "ticker"
        assert after_gap[0].stream_type == "SNAPSHOT"  # type: ignore[union-attr]
