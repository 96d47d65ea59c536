"""Connect refusals (HTTP 429 / 418) and the 5 connects/s budget, against the emulator."""

from __future__ import annotations

import itertools

import pytest
import trio
from trio.testing import MockClock

from engine.errors import SnapshotTimeoutError
from engine.events import Gap, Interrupted
from engine.testing import Limits
from engine.wire.messages import Ticker, Trade

from ._engine_support import (
    MAJORS,
    WAIT,
    collect,
    engine_on_emulator,
    messages,
    settle,
    until,
)


def most_in_any_second(times: list[float]) -> int:
    """The most events inside any half-open window of one second."""
    ordered = sorted(times)
    return max(
        sum(1 for other in ordered[index:] if other < start + 1.0)
        for index, start in enumerate(ordered)
    )


async def test_429_refusals_back_off_with_growing_spacing_then_deliver(
    autojump_clock: MockClock,
) -> None:
    async with engine_on_emulator() as (eng, emu):
        emu.reject_connects(429, count=4)
        sub_id = await eng.subscribe_realtime("ticker", ["KRW-BTC"])
        items = await until(eng.stream(sub_id), lambda item: isinstance(item, Ticker))
        # The subscriber heard of the refusals at once, once, then of the gap they made.
        assert [type(item) for item in items] == [Interrupted, Gap, Ticker]
        assert isinstance(items[0], Interrupted)
        assert "429" in items[0].cause
        first = items[-1]
        assert isinstance(first, Ticker)
        assert first.stream_type == "SNAPSHOT"
        refusals = emu.refusals()
        assert [refusal.status for refusal in refusals] == [429] * 4  # no extra attempt
        times = [refusal.at for refusal in refusals]
        (conn,) = emu.connections()
        times.append(conn.opened_at)
        spacing = [later - earlier for earlier, later in itertools.pairwise(times)]
        # Retry-After (1 s) is honoured every time, and the wait doubles per repeat.
        assert all(gap >= 1.0 for gap in spacing)
        assert all(later > earlier for earlier, later in itertools.pairwise(spacing))
        assert eng.metrics().restarts == 0


async def test_a_418_block_is_waited_out_with_a_single_attempt(autojump_clock: MockClock) -> None:
    block = 100.0  # longer than the engine's own 418 floor, and than a ticket's start budget
    async with engine_on_emulator() as (eng, emu):
        emu.reject_connects(418, block=block)
        start = trio.current_time()
        sub_id = await eng.subscribe_realtime("ticker", ["KRW-ETH"])
        stream = eng.stream(sub_id)
        # Interrupted (the 418) and Gap come first, then the messages.
        items = await collect(stream, 5, within=block + WAIT)
        assert isinstance(items[0], Interrupted)
        assert "418" in items[0].cause
        got = messages(items)
        assert all(isinstance(m, Ticker) and m.code == "KRW-ETH" for m in got)
        assert len(got) == 3
        (refusal,) = emu.refusals()
        assert refusal.status == 418
        (conn,) = emu.connections()
        assert conn.opened_at >= start + block  # Retry-After honoured to the second
        node = eng.debug_tree().actors.find("tickets", "realtime-0")
        # The waiting ticket was neither restarted nor timed out and relaunched.
        assert (node.generation, node.restarts_in_window) == (0, 0)
        assert eng.metrics().restarts == 0


async def test_a_block_met_by_the_snapshot_pool_holds_realtime_connects_back(
    autojump_clock: MockClock,
) -> None:
    block = 40.0
    async with engine_on_emulator() as (eng, emu):
        emu.reject_connects(418, block=block)
        with pytest.raises(SnapshotTimeoutError):
            await eng.request_snapshot("ticker", ["KRW-BTC"], timeout=2.0)
        (refusal,) = await emu.wait_refusals(1)
        sub_id = await eng.subscribe_realtime("trade", ["KRW-XRP"])
        items = await until(
            eng.stream(sub_id), lambda item: isinstance(item, Trade), within=WAIT * 2
        )
        # Held back by the block, the subscriber was told so at once.
        assert isinstance(items[0], Interrupted)
        assert "rate limit" in items[0].cause
        first = items[-1]
        assert isinstance(first, Trade)
        assert first.code == "KRW-XRP"
        # The realtime ticket did not knock while the IP was blocked: one refusal in all.
        assert emu.refusals() == (refusal,)
        assert min(info.opened_at for info in emu.connections()) >= refusal.at + block


async def test_two_realtime_tickets_and_the_snapshot_ticket_share_the_connect_budget(
    autojump_clock: MockClock,
) -> None:
    # Two connects per second on both sides, so three tickets starting at once must queue.
    async with engine_on_emulator(
        emulator={"limits": Limits(connects_per_second=2)},
        connects_per_second=2,
        ticket_capacity=1,
    ) as (eng, emu):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(eng.subscribe_realtime, "ticker", ["KRW-BTC", "KRW-ETH"])
            nursery.start_soon(eng.request_snapshot, "ticker", ["KRW-XRP"])
        await settle(eng, emu)
        opened = [info.opened_at for info in emu.connections()]
        assert len(opened) == 3
        assert emu.connects_refused == 0
        assert most_in_any_second(opened) <= 2
        assert max(opened) - min(opened) >= 1.0
        usage = eng.get_ticket_usage().realtime
        assert usage.open == 2  # type: ignore[union-attr]


async def test_six_tickets_at_once_stay_within_five_connects_per_second(
    autojump_clock: MockClock,
) -> None:
    codes = list(MAJORS[:5])
    async with engine_on_emulator(realtime_pool_size=5, ticket_capacity=1) as (eng, emu):
        async with trio.open_nursery() as nursery:
            for code in codes:
                nursery.start_soon(eng.subscribe_realtime, "ticker", [code])
            nursery.start_soon(eng.request_snapshot, "trade", [MAJORS[5]])
        await settle(eng, emu)
        opened = [info.opened_at for info in emu.connections()]
        assert len(opened) == 6
        assert emu.connects_refused == 0
        assert most_in_any_second(opened) <= 5
        assert eng.get_ticket_usage().realtime.open == 5
