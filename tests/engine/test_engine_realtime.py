"""Realtime subscriptions end to end, against the emulator over loopback sockets."""

from __future__ import annotations

from trio.testing import MockClock

from engine.wire.messages import Ticker

from ._engine_support import (
    collect,
    emulator_set,
    engine_on_emulator,
    messages,
    subscribe_requests,
    wire_set,
)


async def test_subscribe_streams_a_snapshot_then_realtime(autojump_clock: MockClock) -> None:
    async with engine_on_emulator() as (eng, emu):
        sub_id = await eng.subscribe_realtime("ticker", ["KRW-BTC"])
        stream = eng.stream(sub_id)
        items = messages(await collect(stream, 5))
        assert all(isinstance(item, Ticker) and item.code == "KRW-BTC" for item in items)
        assert [item.stream_type for item in items][:2] == ["SNAPSHOT", "REALTIME"]
        (conn,) = emu.connections(open_only=True)
        assert emulator_set(emu, conn.conn_id) == {("ticker", "KRW-BTC")}
        (request,) = subscribe_requests(emu)
        assert wire_set(request) == {("ticker", "KRW-BTC"): False}


async def test_a_second_subscriber_gets_its_snapshot_and_the_first_no_duplicate(
    autojump_clock: MockClock,
) -> None:
    async with engine_on_emulator() as (eng, emu):
        first = await eng.subscribe_realtime("ticker", ["KRW-BTC"])
        first_stream = eng.stream(first)
        await collect(first_stream, 2)
        second = await eng.subscribe_realtime("ticker", ["KRW-BTC", "KRW-ETH"])
        second_stream = eng.stream(second)
        got = messages(await collect(second_stream, 6))
        snapshots = [(m.code, m.stream_type) for m in got if m.stream_type == "SNAPSHOT"]
        assert sorted(snapshots)[:2] == [("KRW-BTC", "SNAPSHOT"), ("KRW-ETH", "SNAPSHOT")]
        # Each of its streams starts with its SNAPSHOT.
        for code in ("KRW-BTC", "KRW-ETH"):
            assert next(m.stream_type for m in got if m.code == code) == "SNAPSHOT"
        later = messages(await collect(first_stream, 10))
        assert all(m.stream_type == "REALTIME" and m.code == "KRW-BTC" for m in later)
        # Every request carried the whole set, on the one connection.
        (conn,) = emu.connections(open_only=True)
        sets = [wire_set(r) for r in subscribe_requests(emu, conn.conn_id)]
        assert set(sets[-1]) == {("ticker", "KRW-BTC"), ("ticker", "KRW-ETH")}
        assert emulator_set(emu, conn.conn_id) == {("ticker", "KRW-BTC"), ("ticker", "KRW-ETH")}


async def test_a_subscriber_joining_without_new_codes_gets_a_snapshot_only_for_itself(
    autojump_clock: MockClock,
) -> None:
    async with engine_on_emulator() as (eng, emu):
        first = await eng.subscribe_realtime("trade", ["KRW-BTC"])
        first_stream = eng.stream(first)
        await collect(first_stream, 3)
        second = await eng.subscribe_realtime("trade", ["KRW-BTC"])
        (head,) = messages(await collect(eng.stream(second), 1))
        assert head.stream_type == "SNAPSHOT"
        later = messages(await collect(first_stream, 5))
        assert all(m.stream_type == "REALTIME" for m in later)
        requests = subscribe_requests(emu)
        assert len(requests) == 2
        assert wire_set(requests[1]) == {("trade", "KRW-BTC"): False}
