"""``Engine.events()``: the operator events an application can follow, through the public API,
against the emulator with real faults (drops, error frames, 429s, drift, slow readers)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest
import trio
from trio.testing import MockClock

from engine.errors import RateLimitedError
from engine.events import Ended, Gap, Interrupted
from engine.observability.operator_events import (
    ActorRestarting,
    CatalogRefreshed,
    Connected,
    ConnectFailed,
    ConnectionLost,
    ErrorFrame,
    EventsDropped,
    FrameDrift,
    OperatorEvent,
    RateLimited,
    Replayed,
    SlowSubscriber,
    StreamEvent,
)
from engine.runtime.event_feed import EventFeed
from engine.testing import Drift

from ._engine_support import WAIT, engine_on_emulator, settle


async def _until(
    feed: EventFeed, kind: type[OperatorEvent], seen: list[OperatorEvent]
) -> OperatorEvent:
    """Read ``feed`` (keeping what passes in ``seen``) until an event of ``kind``."""
    with trio.fail_after(WAIT):
        async for event in feed:
            seen.append(event)
            if isinstance(event, kind):
                return event
    raise AssertionError(f"the feed ended before a {kind.__name__}; saw {seen}")


async def test_a_dropped_connection_tells_loss_reconnect_replay_and_the_gap(
    autojump_clock: MockClock,
) -> None:
    async with engine_on_emulator() as (eng, emu):
        with eng.events() as feed:
            sub_id = await eng.subscribe_realtime("trade", ["KRW-BTC", "KRW-ETH"])
            seen: list[OperatorEvent] = []
            first = await _until(feed, Connected, seen)
            assert isinstance(first, Connected)
            assert not first.reconnect
            await settle(eng, emu)
            await emu.drop()
            lost = await _until(feed, ConnectionLost, seen)
            assert isinstance(lost, ConnectionLost)
            assert lost.ticket == first.ticket
            assert lost.generation == first.generation
            assert lost.cause
            again = await _until(feed, Connected, seen)
            assert isinstance(again, Connected)
            assert again.reconnect
            assert again.generation > first.generation
            assert again.failed_attempts >= 1
            replayed = await _until(feed, Replayed, seen)
            assert isinstance(replayed, Replayed)
            assert replayed.seconds >= 0
            while not any(isinstance(e, StreamEvent) and isinstance(e.event, Gap) for e in seen):
                await _until(feed, StreamEvent, seen)
            stream = [e for e in seen if isinstance(e, StreamEvent)]
            assert all(e.subscription_id == sub_id for e in stream)
            kinds = [type(e.event) for e in stream]
            assert kinds.index(Interrupted) < kinds.index(Gap)
            # The supervisor restarted the ticket actor after its backoff delay, and said so.
            restarts = [e for e in seen if isinstance(e, ActorRestarting)]
            assert [e.actor for e in restarts] == [f"engine/tickets/{first.ticket}"]
            assert restarts[0].delay >= 0
            assert restarts[0].caused_by == first.ticket
            assert all(e.summary() for e in seen)


async def test_the_feed_ends_after_the_streams_end_when_the_engine_closes(
    autojump_clock: MockClock,
) -> None:
    seen: list[OperatorEvent] = []
    async with engine_on_emulator() as (eng, emu):
        feed = eng.events()
        sub_id = await eng.subscribe_realtime("ticker", ["KRW-BTC"])
        await settle(eng, emu)
    with trio.fail_after(WAIT):
        async for event in feed:  # ends by itself: the engine is closed
            seen.append(event)
    ended = [e for e in seen if isinstance(e, StreamEvent) and isinstance(e.event, Ended)]
    assert [e.subscription_id for e in ended] == [sub_id]
    refreshed = [e for e in seen if isinstance(e, CatalogRefreshed)]
    assert refreshed
    assert refreshed[0].markets == len(emu.catalog)


async def test_a_reader_that_falls_behind_loses_the_oldest_and_is_told(
    autojump_clock: MockClock,
) -> None:
    async with engine_on_emulator() as (eng, emu):
        feed = eng.events(capacity=3)
        await eng.subscribe_realtime("trade", ["KRW-BTC"])
        await settle(eng, emu)
        for _ in range(3):  # each drop: loss, interrupted, reconnect, replay, gap, ...
            await emu.drop()
            await settle(eng, emu)
        first = feed.receive_nowait()
        assert isinstance(first, EventsDropped)
        assert first.count > 0
        assert feed.dropped == first.count
        rest = [feed.receive_nowait() for _ in range(3)]
        assert all(e is not None and not isinstance(e, EventsDropped) for e in rest)
        assert feed.receive_nowait() is None
        assert eng.metrics().operator_events_dropped >= first.count
        feed.close()


async def test_error_frames_429s_drift_and_slow_subscribers_are_events(
    autojump_clock: MockClock,
) -> None:
    async with engine_on_emulator(subscriber_buffer=4) as (eng, emu):
        with eng.events(capacity=10_000) as feed:
            slow = await eng.subscribe_realtime("ticker", ["KRW-BTC", "KRW-ETH", "KRW-XRP"])
            await settle(eng, emu)
            await trio.sleep(30)  # the ticker subscriber never reads
            (conn,) = emu.connections(open_only=True)
            emu.inject_error(conn.conn_id, "INVALID_PARAM", "bad request")
            seen: list[OperatorEvent] = []
            error = await _until(feed, ErrorFrame, seen)
            assert isinstance(error, ErrorFrame)
            assert error.error == "INVALID_PARAM"
            emu.reject_connects(429, count=2, block=None)
            for conn in emu.connections(open_only=True):
                await emu.drop(conn.conn_id)
            limited = await _until(feed, RateLimited, seen)
            assert isinstance(limited, RateLimited)
            assert (limited.source, limited.status) == ("websocket", 429)
            await _until(feed, ConnectFailed, seen)
            await _until(feed, Connected, seen)
            emu.set_drift(Drift(null_fields=frozenset({("ticker", "trade_price")})))
            drift = await _until(feed, FrameDrift, seen)
            assert isinstance(drift, FrameDrift)
            assert drift.problem == "field"
            assert any(isinstance(e, SlowSubscriber) and e.subscription_id == slow for e in seen)
        assert eng.metrics().error_frames == {"INVALID_PARAM": 1}


async def test_rest_429s_are_events_and_leave_one_log_line_a_minute(
    autojump_clock: MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="engine")
    async with engine_on_emulator() as (eng, emu):
        with eng.events() as feed:
            emu.fail_rest(429, group="trade")
            with pytest.raises(RateLimitedError):
                await eng.fetch_trades("KRW-BTC", start=datetime.now(UTC) - timedelta(minutes=1))
            emu.fail_rest(None)
            events = []
            while (event := feed.receive_nowait()) is not None:
                events.append(event)
    limited = [e for e in events if isinstance(e, RateLimited)]
    assert len(limited) >= 2
    assert all(e.source == "rest" and e.status == 429 for e in limited)
    assert all(len(e.request) < 200 for e in limited)
    lines = [r for r in caplog.records if r.name == "engine.ratelimit"]
    assert len(lines) == 1  # the rest are counted into the next line
    assert lines[0].__dict__["status"] == 429


async def test_two_readers_see_the_same_events_independently(autojump_clock: MockClock) -> None:
    async with engine_on_emulator() as (eng, emu):
        one, two = eng.events(), eng.events()
        await eng.subscribe_realtime("trade", ["KRW-BTC"])
        await settle(eng, emu)
        await emu.drop()
        await settle(eng, emu)
        first: list[OperatorEvent] = []
        while (event := one.receive_nowait()) is not None:
            first.append(event)
        assert any(isinstance(e, ConnectionLost) for e in first)
        second: list[OperatorEvent] = []
        while (event := two.receive_nowait()) is not None:
            second.append(event)
        assert second == first
