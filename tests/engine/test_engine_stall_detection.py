"""Stalls found in seconds, end to end: the emulator keeps the TCP connection open but sends
nothing and answers no pings. A busy connection is probed and reconnected within 5 s, a quiet
one within 15 s (Upbit's 10 s status heartbeat), and a long run of quiet and busy pairs is never
restarted by mistake (tests/engine/test_stall.py runs hours of simulated markets against the
judgement alone)."""

from __future__ import annotations

import trio
from trio.testing import MockClock

from engine import Engine, Gap, Interrupted, SubscriptionStream
from engine.testing import Emulator

from ._engine_support import engine_on_emulator, settle


async def _stall_detection_time(eng: Engine, emu: Emulator, stream: SubscriptionStream) -> float:
    """Stall the one connection; seconds until the subscriber hears of the loss."""
    (conn,) = emu.connections(open_only=True)
    stalled_at = trio.current_time()
    emu.stall(conn.conn_id)
    with trio.fail_after(60):
        async for item in stream:
            if isinstance(item, Interrupted):
                # The stall judgement, or the keepalive ping that happened to go out at the
                # stall (whichever fires first: both bound detection).
                assert "stalled" in item.cause or "no pong" in item.cause, item.cause
                return trio.current_time() - stalled_at
    raise AssertionError("the stream ended")


async def _learn(stream: SubscriptionStream, seconds: float) -> int:
    """Read the stream for ``seconds`` (the engine learns the connection's pace)."""
    count = 0
    with trio.move_on_after(seconds):
        async for _ in stream:
            count += 1
    return count


async def test_a_stall_on_a_busy_connection_is_found_within_five_seconds(
    autojump_clock: MockClock,
) -> None:
    async with engine_on_emulator() as (eng, emu):
        emu.set_rate("KRW-BTC", 20.0)
        sub_id = await eng.subscribe_realtime("trade", ["KRW-BTC"])
        await settle(eng, emu)
        async with eng.stream(sub_id) as stream:
            assert await _learn(stream, 30.0) > 300
            detected = await _stall_detection_time(eng, emu, stream)
            assert detected <= 5.0, detected
            assert eng.metrics().stall_probes >= 1
            assert eng.metrics().stalls == 1
            lost_at = trio.current_time()
            with trio.fail_after(30):
                async for item in stream:
                    if isinstance(item, Gap):
                        break  # back, and the subscriber is told what it missed
            # A dead connection is closed without a close handshake (its peer would never
            # answer one): the reconnect does not wait out disconnect_timeout (2 s).
            assert trio.current_time() - lost_at < 1.0


async def test_a_stall_on_a_quiet_connection_is_found_within_fifteen_seconds(
    autojump_clock: MockClock,
) -> None:
    async with engine_on_emulator() as (eng, emu):
        emu.set_rate("KRW-DOGE", 0.0)
        sub_id = await eng.subscribe_realtime("trade", ["KRW-DOGE"])
        await settle(eng, emu)
        async with eng.stream(sub_id) as stream:
            await _learn(stream, 60.0)
            detected = await _stall_detection_time(eng, emu, stream)
            assert detected <= 15.0, detected
            assert eng.metrics().stall_probes == 0  # a quiet pair is never probed


async def test_no_false_restart_in_ten_minutes_of_quiet_and_busy_pairs(
    autojump_clock: MockClock,
) -> None:
    async with engine_on_emulator() as (eng, emu):
        rates = {"KRW-BTC": 10.0, "KRW-ETH": 3.0, "KRW-XRP": 0.2, "KRW-DOGE": 0.0}
        for code, rate in rates.items():
            emu.set_rate(code, rate)
        sub_id = await eng.subscribe_realtime("trade", list(rates))
        await settle(eng, emu)
        async with eng.stream(sub_id) as stream:
            end = trio.current_time() + 600.0
            while trio.current_time() < end:
                # The busy pairs go quiet now and then: the connection, used to dozens of
                # frames a second, falls silent for seconds at a time. Probes answered by
                # pongs, no restart.
                for code in ("KRW-BTC", "KRW-ETH"):
                    emu.set_rate(code, rates[code])
                await _learn(stream, 60.0)
                for code in ("KRW-BTC", "KRW-ETH"):
                    emu.set_rate(code, 0.0)
                await _learn(stream, 30.0)
        metrics = eng.metrics()
    assert metrics.connects == 1
    assert metrics.stalls == 0
    assert metrics.tickets["realtime-0"].failures == 0
    assert metrics.stall_probes >= 7  # every quiet spell was probed
