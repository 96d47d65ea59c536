"""Backoff follows health, not uptime: a connection that came back healthy (replayed, data
flowing) and is lost again reconnects at once, with the backoff and the restart intensity
starting afresh; only connects that fail, or connections that die before becoming healthy, make
the backoff grow."""

from __future__ import annotations

import math

import pytest
import trio
from trio.testing import MockClock

from engine import Engine, Gap
from engine.testing import Emulator

from ._engine_support import engine_on_emulator, settle

DURATION = 120.0


async def _offline_share(eng: Engine, emu: Emulator, every: float) -> tuple[float, list[Gap]]:
    """Drop the connection every ``every`` seconds for DURATION; the share of the time the
    subscription spent in reported outages, and the gaps."""
    sub_id = await eng.subscribe_realtime("trade", ["KRW-BTC"])
    await settle(eng, emu)
    stream = eng.stream(sub_id)
    gaps: list[Gap] = []

    async def read() -> None:
        async for item in stream:
            if isinstance(item, Gap):
                gaps.append(item)

    start = trio.current_time()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(read)
        while trio.current_time() - start + every <= DURATION:
            await trio.sleep(every)
            await emu.drop()
        await trio.sleep(every)  # the last outage ends and is reported
        nursery.cancel_scope.cancel()
    offline = sum((gap.end or trio.current_time()) - gap.start for gap in gaps)
    return offline / (trio.current_time() - start), gaps


@pytest.mark.parametrize("every", [10.0, 30.0])
async def test_periodic_drops_of_a_healthy_connection_cost_almost_nothing(
    autojump_clock: MockClock, every: float
) -> None:
    async with engine_on_emulator() as (eng, emu):
        share, gaps = await _offline_share(eng, emu, every)
    # One outage per drop, each about one connect and replay long; before, the backoff grew
    # with every drop until an hour of uptime reset it (75 % offline with a drop every 10 s).
    assert len(gaps) == int(DURATION // every)
    assert share < 0.05, f"offline {share:.1%} with a drop every {every:g} s: {gaps}"
    # Every outage is short, the last as short as the first: the backoff did not grow.
    lengths = [(gap.end or math.inf) - gap.start for gap in gaps]
    assert max(lengths) < 0.5, lengths
    assert eng.metrics().tickets["realtime-0"].connects == len(gaps) + 1


async def test_a_server_that_refuses_connects_still_meets_a_growing_backoff(
    autojump_clock: MockClock,
) -> None:
    async with engine_on_emulator() as (eng, emu):
        await eng.subscribe_realtime("trade", ["KRW-BTC"])
        await settle(eng, emu)
        before = eng.metrics().tickets["realtime-0"].failures
        start = trio.current_time()
        await emu.restart(downtime=60.0)  # connects are refused by the kernel meanwhile
        attempts = eng.metrics().tickets["realtime-0"].failures - before
        await settle(eng, emu)
    # No hot loop: with a backoff from 0.5 s doubling to 30 s, a minute holds about seven
    # attempts, not the hundreds the connect limiter alone would allow.
    assert 3 <= attempts <= 10, attempts
    assert trio.current_time() - start >= 60.0
