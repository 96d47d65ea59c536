"""Explicit subscription states for the subscriber: ``wait_active`` and an event on the stream
when the connection cannot be made, with ``registry()`` showing the failure."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

import pytest
import trio
from trio.testing import MockClock

from engine import (
    Engine,
    Gap,
    Interrupted,
    InvalidSubscriptionError,
    NotSettledError,
    SubscriptionTimeoutError,
    open_engine,
)
from engine.core.registry import SubscriptionState
from engine.testing import RejectConnects
from engine.wire.messages import Ticker

from ._engine_support import WAIT, emulator_set, engine_on_emulator, transport_name, until
from .test_markets_samples import catalog

CONNECT_TIMEOUT = 3.0


@asynccontextmanager
async def _silent_server() -> AsyncIterator[str]:
    """A TCP server on loopback that accepts and never answers the WebSocket handshake."""

    async def hold(stream: trio.SocketStream) -> None:
        async with stream:
            await trio.sleep_forever()

    async with trio.open_nursery() as nursery:
        (listener,) = await nursery.start(partial(trio.serve_tcp, hold, 0, host="127.0.0.1"))
        port = listener.socket.getsockname()[1]
        yield f"ws://127.0.0.1:{port}/websocket/v1"
        nursery.cancel_scope.cancel()


@asynccontextmanager
async def _engine_without_a_server() -> AsyncIterator[Engine]:
    """An engine whose WebSocket URL is a server that never answers the handshake."""
    async with (
        _silent_server() as url,
        open_engine(
            ws_url=url,
            catalog=catalog(),
            connect_timeout=CONNECT_TIMEOUT,
            transport=transport_name(),
            seed=1,
        ) as eng,
    ):
        yield eng


async def test_wait_active_returns_once_the_snapshot_is_in_the_stream(
    autojump_clock: MockClock,
) -> None:
    async with engine_on_emulator() as (eng, _emu):
        sid = await eng.subscribe_realtime("ticker", ["KRW-BTC", "KRW-ETH"])
        sub = await eng.wait_active(sid, timeout=WAIT)
        assert sub.state is SubscriptionState.ACTIVE
        # Both SNAPSHOTs are already buffered: reading them takes no time at all.
        before = trio.current_time()
        async with eng.stream(sid) as stream:
            first = [await stream.receive(), await stream.receive()]
        assert trio.current_time() == before, "wait_active returned before the SNAPSHOTs came"
        assert all(isinstance(item, Ticker) for item in first)
        assert {item.stream_type for item in first if isinstance(item, Ticker)} == {"SNAPSHOT"}


async def test_wait_active_refuses_an_ended_subscription(autojump_clock: MockClock) -> None:
    async with engine_on_emulator() as (eng, _emu):
        sid = await eng.subscribe_realtime("ticker", "KRW-BTC")
        await eng.unsubscribe_realtime(sid)
        with pytest.raises(InvalidSubscriptionError, match="unsubscribed"):
            await eng.wait_active(sid)


async def test_a_connection_that_cannot_be_made_is_an_event_and_an_error(
    autojump_clock: MockClock,
) -> None:
    # The reported case: the server accepts TCP and never answers the handshake.
    async with _engine_without_a_server() as eng:
        started = trio.current_time()
        sid = await eng.subscribe_realtime("ticker", "KRW-BTC")
        async with eng.stream(sid) as stream:
            with trio.fail_after(CONNECT_TIMEOUT + 1):
                item = await stream.receive()
            assert isinstance(item, Interrupted), "the subscriber hears of the failure"
            assert item.codes == ("KRW-BTC",)
            assert item.start - started <= CONNECT_TIMEOUT + 0.5
            assert "timed out" in item.cause or "timeout" in item.cause, item.cause
            (entry,) = eng.registry().values()
            assert entry.status == "error", "registry() shows the failure"
            assert entry.error == item.cause
            with pytest.raises(SubscriptionTimeoutError) as info:
                await eng.wait_active(sid, timeout=2 * CONNECT_TIMEOUT)
            assert info.value.cause is not None
            assert "realtime-0" in info.value.cause
            # A subscriber placed on the failing ticket hears of it at once, not at the next try.
            other = await eng.subscribe_realtime("ticker", "KRW-ETH")
            joined = trio.current_time()
            async with eng.stream(other) as second:
                event = await second.receive()
                assert isinstance(event, Interrupted)
                assert event.codes == ("KRW-ETH",)
                assert trio.current_time() == joined


async def test_a_first_connection_that_fails_then_works_brings_a_gap_then_the_snapshot(
    autojump_clock: MockClock,
) -> None:
    async with engine_on_emulator() as (eng, emu):
        await eng.wait_catalog()
        await emu.apply(RejectConnects(status=429, count=2))
        sid = await eng.subscribe_realtime("ticker", "KRW-BTC")
        async with eng.stream(sid) as stream:
            items = await until(stream, lambda item: isinstance(item, Ticker))
        kinds = [type(item) for item in items]
        assert kinds == [Interrupted, Gap, Ticker], kinds
        interrupted, gap, snapshot = items
        assert isinstance(interrupted, Interrupted)
        assert "429" in interrupted.cause
        assert isinstance(gap, Gap)
        assert gap.start == interrupted.start
        assert isinstance(snapshot, Ticker)
        assert snapshot.stream_type == "SNAPSHOT"
        sub = await eng.wait_active(sid)
        assert sub.state is SubscriptionState.ACTIVE
        (entry,) = eng.registry().values()
        assert entry.status == "active", "the error clears once connected"


async def test_wait_settled_returns_once_the_wire_matches_even_with_nothing_left(
    autojump_clock: MockClock,
) -> None:
    async with engine_on_emulator() as (eng, emu):
        first = await eng.subscribe_realtime("ticker", "KRW-BTC")
        second = await eng.subscribe_realtime("trade", ["KRW-ETH", "KRW-XRP"])
        await eng.wait_settled(timeout=WAIT)
        assert all(sub.state is SubscriptionState.ACTIVE for sub in (eng.subscription(first),))
        (conn,) = emu.connections(open_only=True)
        assert emulator_set(emu, conn.conn_id) == {
            ("ticker", "KRW-BTC"),
            ("trade", "KRW-ETH"),
            ("trade", "KRW-XRP"),
        }
        # Everything released: settled means the parking request went out and was confirmed.
        await eng.unsubscribe_realtime(first)
        await eng.unsubscribe_realtime(second)
        await eng.wait_settled(timeout=WAIT)
        assert eng.get_ticket_usage().realtime.parked == 1


async def test_wait_settled_says_what_is_pending_when_it_runs_out(
    autojump_clock: MockClock,
) -> None:
    async with _engine_without_a_server() as eng:
        sid = await eng.subscribe_realtime("ticker", "KRW-BTC")
        with pytest.raises(NotSettledError) as info:
            await eng.wait_settled(timeout=5)
        assert f"{sid} is pending" in info.value.pending
        assert "realtime-0 is not connected" in info.value.pending
