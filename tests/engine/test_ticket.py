"""The realtime ticket actor through the engine: coalescing, stale changes, parking, resets."""

from __future__ import annotations

import trio
from trio.testing import MockClock

from actors import NodeState
from engine.core.keys import StreamKey
from engine.core.registry import TicketChange

from ._engine_support import (
    WAIT,
    collect,
    emulator_set,
    engine_on_emulator,
    settle,
    subscribe_requests,
    wire_set,
)


async def test_quick_changes_coalesce_into_one_request_with_the_complete_set(
    autojump_clock: MockClock,
) -> None:
    async with engine_on_emulator() as (eng, emu):
        await eng.subscribe_realtime("ticker", ["KRW-BTC"])
        await settle(eng, emu)
        (conn,) = emu.connections(open_only=True)
        # Three changes inside the coalesce window (no Trio time passes between them).
        second = await eng.subscribe_realtime("trade", ["KRW-ETH"])
        await eng.subscribe_realtime("ticker", ["KRW-XRP"])
        await eng.modify_subscription(second, ["KRW-ETH", "KRW-SOL"])
        await settle(eng, emu)
        first, merged = subscribe_requests(emu, conn.conn_id)
        assert wire_set(first) == {("ticker", "KRW-BTC"): False}
        # One request: the whole set, streaming codes only-realtime, new ones with a SNAPSHOT.
        assert wire_set(merged) == {
            ("ticker", "KRW-BTC"): True,
            ("ticker", "KRW-XRP"): False,
            ("trade", "KRW-ETH"): False,
            ("trade", "KRW-SOL"): False,
        }
        assert emulator_set(emu, conn.conn_id) == set(wire_set(merged))
        assert eng.metrics().requests_sent == 3  # two requests and the text PING


async def test_a_change_for_an_older_generation_is_dropped_by_the_ticket(
    autojump_clock: MockClock,
) -> None:
    async with engine_on_emulator() as (eng, emu):
        await eng.subscribe_realtime("ticker", ["KRW-BTC"])
        await settle(eng, emu)
        (conn,) = emu.connections(open_only=True)
        core = eng._core  # tests look inside
        generation = core.registry.ticket_status("realtime-0").generation
        assert generation is not None
        tickets = core.tickets_supervisor()
        with trio.fail_after(WAIT):  # started() is acknowledged by the supervisor just after
            await emu.wait_for(lambda: tickets.tree().find("realtime-0").state is NodeState.RUNNING)
        ticket = tickets.ref("realtime-0")
        extra = (StreamKey("ticker", "KRW-BTC"), StreamKey("ticker", "KRW-DOGE"))
        ticket.cast_nowait(TicketChange("realtime-0", generation - 1, extra))
        await trio.sleep(5)
        assert len(subscribe_requests(emu, conn.conn_id)) == 1
        assert emulator_set(emu, conn.conn_id) == {("ticker", "KRW-BTC")}
        # The same change for the live generation is sent: the ref and the path are right.
        ticket.cast_nowait(TicketChange("realtime-0", generation, extra))
        with trio.fail_after(WAIT):
            await emu.wait_requests(2, conn_id=conn.conn_id, kind="subscribe")
        assert emulator_set(emu, conn.conn_id) == {("ticker", "KRW-BTC"), ("ticker", "KRW-DOGE")}


async def test_a_parked_ticket_streams_nothing_but_its_parking_snapshot(
    autojump_clock: MockClock,
) -> None:
    async with engine_on_emulator() as (eng, emu):
        sub_id = await eng.subscribe_realtime(["ticker", "trade"], ["KRW-BTC"])
        await collect(eng.stream(sub_id), 4)
        await settle(eng, emu)
        (conn,) = emu.connections(open_only=True)
        await eng.unsubscribe_realtime(sub_id)
        with trio.fail_after(WAIT):
            await emu.wait_requests(2, conn_id=conn.conn_id, kind="subscribe")
        await settle(eng, emu)
        parking = subscribe_requests(emu, conn.conn_id)[-1].json()
        assert isinstance(parking, list)
        (ask,) = parking[1:-1]
        assert ask["is_only_snapshot"] is True
        (code,) = ask["codes"]
        assert emulator_set(emu, conn.conn_id) <= {(ask["type"], code)}
        before = emu.connection(conn.conn_id).frames_sent
        await trio.sleep(45)
        info = emu.connection(conn.conn_id)
        after = info.recent_messages()[len(info.recent_frames) - (info.frames_sent - before) :]
        assert after  # the status frames keep coming: the connection is alive
        for message in after:
            assert isinstance(message, dict)
            if "status" in message:
                continue
            # At most the parking SNAPSHOT itself, and never a realtime frame.
            assert (message["code"], message["stream_type"]) == (code, "SNAPSHOT")
        data = [
            message for message in after if isinstance(message, dict) and "status" not in message
        ]
        assert len(data) <= 1
        assert info.open


async def test_hard_reset_reopens_with_what_remains_in_creation_order(
    autojump_clock: MockClock,
) -> None:
    async with engine_on_emulator() as (eng, emu):
        await eng.subscribe_realtime("ticker", ["KRW-SOL"])
        gone = await eng.subscribe_realtime("trade", ["KRW-ETH"])
        await eng.subscribe_realtime("ticker", ["KRW-BTC"])
        await eng.subscribe_realtime("trade", ["KRW-XRP"])
        await settle(eng, emu)
        (first,) = emu.connections(open_only=True)
        await eng.hard_unsubscribe(gone)
        with trio.fail_after(WAIT):
            await emu.wait_closed(first.conn_id)
        await settle(eng, emu)
        (second,) = emu.connections(open_only=True)
        assert second.conn_id != first.conn_id
        (replay,) = subscribe_requests(emu, second.conn_id)
        # Types in first-appearance order, each type's codes in subscription-creation order.
        assert list(wire_set(replay)) == [
            ("ticker", "KRW-SOL"),
            ("ticker", "KRW-BTC"),
            ("trade", "KRW-XRP"),
        ]
        assert not any(wire_set(replay).values())  # a fresh connection: every SNAPSHOT again
        assert eng.subscription(gone).state.value == "closed"
        assert eng.metrics().connection_losses == 0  # closed on purpose, not lost
