"""Ticket failures: restart with backoff, ordered replay, Interrupted/Gap, metrics."""

from __future__ import annotations

import trio
from trio.testing import MockClock

from engine.events import Gap

from ._engine_support import (
    WAIT,
    collect,
    emulator_set,
    engine_on_emulator,
    settle,
    subscribe_requests,
    until,
    wire_set,
)


async def test_a_dropped_connection_is_restored_and_replayed_in_order(
    autojump_clock: MockClock,
) -> None:
    async with engine_on_emulator() as (eng, emu):
        first = await eng.subscribe_realtime("ticker", ["KRW-BTC"])
        second = await eng.subscribe_realtime(["trade", "ticker"], ["KRW-ETH"])
        stream = eng.stream(first)
        await collect(stream, 2)
        await settle(eng, emu)
        (before,) = emu.connections(open_only=True)
        await emu.drop(before.conn_id)
        items = await until(stream, lambda item: isinstance(item, Gap))
        gap = items[-1]
        assert isinstance(gap, Gap)
        assert gap.codes == ("KRW-BTC",)
        assert gap.end is not None
        assert gap.end >= gap.start
        (after,) = await emu.wait_connections(1)
        assert after.conn_id != before.conn_id
        await settle(eng, emu)
        (replay,) = subscribe_requests(emu, after.conn_id)
        # One request, the whole set, types merged over codes in first-appearance order,
        # each with a fresh SNAPSHOT.
        assert list(wire_set(replay)) == [
            ("ticker", "KRW-BTC"),
            ("ticker", "KRW-ETH"),
            ("trade", "KRW-ETH"),
        ]
        assert not any(wire_set(replay).values())
        (snapshot,) = await collect(stream, 1)
        assert snapshot.stream_type == "SNAPSHOT"  # type: ignore[union-attr]
        assert emulator_set(emu, after.conn_id) == {
            ("ticker", "KRW-BTC"),
            ("trade", "KRW-ETH"),
            ("ticker", "KRW-ETH"),
        }
        metrics = eng.metrics()
        assert metrics.restarts == 1
        assert metrics.reconnects == 1
        assert metrics.connection_losses == 1
        assert metrics.resubscribe_latency.count == 1
        assert metrics.gaps == 1
        assert eng.subscription(second).state.value == "active"
        node = eng.debug_tree().actors.find("tickets", "realtime-0")
        assert node.restarts_in_window == 1


async def test_an_error_frame_restarts_the_ticket_without_losing_subscriptions(
    autojump_clock: MockClock,
) -> None:
    async with engine_on_emulator() as (eng, emu):
        sub_id = await eng.subscribe_realtime("ticker", ["KRW-XRP"])
        stream = eng.stream(sub_id)
        await collect(stream, 1)
        (before,) = emu.connections(open_only=True)
        emu.inject_error(before.conn_id, "INVALID_PARAM")
        await until(stream, lambda item: isinstance(item, Gap))
        (after,) = await emu.wait_connections(1)
        await settle(eng, emu)
        assert emulator_set(emu, after.conn_id) == {("ticker", "KRW-XRP")}
        assert eng.subscription(sub_id).state.value == "active"


async def test_a_stalled_connection_is_detected_by_the_keepalive(
    autojump_clock: MockClock,
) -> None:
    async with engine_on_emulator() as (eng, emu):
        sub_id = await eng.subscribe_realtime("ticker", ["KRW-BTC"])
        stream = eng.stream(sub_id)
        await collect(stream, 1)
        (before,) = emu.connections(open_only=True)
        emu.stall(before.conn_id)
        start = trio.current_time()
        await until(stream, lambda item: isinstance(item, Gap))
        took = trio.current_time() - start
        config = eng.config
        assert took <= config.ping_interval + config.ping_timeout + config.backoff_max
        with trio.fail_after(WAIT):
            await emu.wait_connections(1)
        await settle(eng, emu)
        assert eng.metrics().connection_losses == 1


async def test_quiet_pairs_cause_no_false_restart(autojump_clock: MockClock) -> None:
    async with engine_on_emulator(emulator={"rates": {"BTC-XRP": 0.0}}) as (eng, emu):
        sub_id = await eng.subscribe_realtime("trade", ["BTC-XRP"])
        stream = eng.stream(sub_id)
        (snapshot,) = await collect(stream, 1)
        assert snapshot.stream_type == "SNAPSHOT"  # type: ignore[union-attr]
        await trio.sleep(200)  # several ping intervals of silence on the pair
        assert eng.metrics().connection_losses == 0
        assert len(emu.connections()) == 1
        assert emu.connection(1).pings_received >= 10
