"""Error frames traced to the request that caused them: only the culprit subscription fails."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import pytest
import trio
from trio.testing import MockClock

from engine.errors import SubscriptionFailedError
from engine.events import Gap
from engine.facade.engine import SubscriptionStream
from engine.markets import MarketCatalog
from engine.runtime.ticket import ATTRIBUTION_WINDOW
from engine.testing import Emulator
from engine.wire.messages import Ticker

from ._engine_support import (
    MAJORS,
    WAIT,
    collect,
    emulator_set,
    engine_on_emulator,
    settle,
    subscribe_requests,
    until,
    wire_set,
)

#: A code the engine's catalog lists and Upbit refuses: every request naming it draws an error.
POISON = "KRW-FAKE"
#: A code the engine's catalog lists and the emulator does not know: accepted, never a frame.
SILENT = "KRW-QUIET"
ERROR_NAME = "INVALID_PARAM"
ERROR_MESSAGE = "KRW-FAKE 은 지원하지 않는 코드입니다."


def catalog() -> MarketCatalog:
    return MarketCatalog.from_json([{"market": code} for code in (*MAJORS, POISON, SILENT)])


@contextlib.asynccontextmanager
async def rejecting(emu: Emulator, code: str, name: str = ERROR_NAME) -> AsyncIterator[None]:
    """Play Upbit refusing ``code``: every subscribe request naming it gets an error frame (and
    the close that follows every error), sent as soon as the emulator has read the request."""

    async def watch() -> None:
        seen = [0]
        while True:
            await emu.wait_for(lambda: len(emu.requests()) > seen[0])
            records = emu.requests()
            for record in records[seen[0] :]:
                if record.kind == "subscribe" and f'"{code}"' in record.text:
                    with contextlib.suppress(ValueError):  # already closed
                        emu.inject_error(record.conn_id, name, ERROR_MESSAGE)
            seen[0] = len(records)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(watch)
        yield
        nursery.cancel_scope.cancel()


async def failure_of(stream: SubscriptionStream) -> SubscriptionFailedError:
    with pytest.raises(SubscriptionFailedError) as caught:
        await until(stream, lambda item: False)
    return caught.value


def assert_within_limits(emu: Emulator) -> None:
    assert all(record.kind in ("subscribe", "ping") for record in emu.requests())
    assert emu.connects_refused == 0


async def test_the_one_subscription_a_rejected_request_added_fails_and_the_rest_resume(
    autojump_clock: MockClock,
) -> None:
    async with (
        engine_on_emulator(catalog=catalog()) as (eng, emu),
        rejecting(emu, POISON),
    ):
        good = await eng.subscribe_realtime("ticker", ["KRW-BTC"])
        good_stream = eng.stream(good)
        await collect(good_stream, 1)
        await settle(eng, emu)
        (first,) = emu.connections(open_only=True)
        bad = await eng.subscribe_realtime("trade", [POISON])
        error = await failure_of(eng.stream(bad))
        assert error.subscription_id == bad
        assert ERROR_NAME in error.cause
        assert ERROR_MESSAGE in error.cause
        assert "subscribe again" in error.cause
        assert eng.subscription(bad).state.value == "failed"
        # The other subscriber sees the outage, then a fresh SNAPSHOT on the new connection.
        await until(good_stream, lambda item: isinstance(item, Gap))
        (snapshot,) = await collect(good_stream, 1)
        assert isinstance(snapshot, Ticker)
        assert snapshot.stream_type == "SNAPSHOT"
        await settle(eng, emu)
        with trio.fail_after(WAIT):
            await emu.wait_closed(first.conn_id)
        (after,) = emu.connections(open_only=True)
        (replay,) = subscribe_requests(emu, after.conn_id)
        assert wire_set(replay) == {("ticker", "KRW-BTC"): False}
        view = eng.registry()["realtime-0"]
        assert view.status == "active"
        assert view.failed == {bad: error.cause}
        metrics = eng.metrics()
        assert metrics.requests_rejected == 1
        assert metrics.restarts == 0  # a rejection is not a crash
        assert metrics.tickets["realtime-0"].rejected_requests == 1
        assert ERROR_NAME in (metrics.tickets["realtime-0"].last_failure or "")
        assert eng.subscription(good).state.value == "active"
        assert_within_limits(emu)


async def test_suspects_of_one_coalesced_request_are_isolated_so_only_the_culprit_fails(
    autojump_clock: MockClock,
) -> None:
    async with (
        engine_on_emulator(catalog=catalog()) as (eng, emu),
        rejecting(emu, POISON),
    ):
        base = await eng.subscribe_realtime("ticker", ["KRW-BTC"])
        await collect(eng.stream(base), 1)
        await settle(eng, emu)
        (first,) = emu.connections(open_only=True)
        # No time passes between these: one request adds all three. KRW-XRP's SNAPSHOT comes
        # before the error frame, which clears it; the silent one and the culprit are suspects.
        shown = await eng.subscribe_realtime("ticker", ["KRW-XRP"])
        quiet = await eng.subscribe_realtime("ticker", [SILENT])
        bad = await eng.subscribe_realtime("ticker", [POISON])
        error = await failure_of(eng.stream(bad))
        assert ERROR_NAME in error.cause
        await settle(eng, emu)
        assert [eng.subscription(s).state.value for s in (base, shown, quiet, bad)] == [
            "active",
            "active",
            "active",
            "failed",
        ]
        rejected, probing, final = emu.connections()[-3:]
        assert rejected.conn_id == first.conn_id
        (merged,) = subscribe_requests(emu, first.conn_id)[1:]
        assert set(wire_set(merged)) == {
            ("ticker", "KRW-BTC"),
            ("ticker", "KRW-XRP"),
            ("ticker", SILENT),
            ("ticker", POISON),
        }
        # The next connection: the trusted set, then one suspect per request.
        steps = [wire_set(record) for record in subscribe_requests(emu, probing.conn_id)]
        assert steps == [
            {("ticker", "KRW-BTC"): False, ("ticker", "KRW-XRP"): False},
            {("ticker", "KRW-BTC"): True, ("ticker", "KRW-XRP"): True, ("ticker", SILENT): False},
            {
                ("ticker", "KRW-BTC"): True,
                ("ticker", "KRW-XRP"): True,
                ("ticker", SILENT): True,
                ("ticker", POISON): False,
            },
        ]
        # Then everything that was accepted, in one request.
        (replay,) = subscribe_requests(emu, final.conn_id)
        assert list(wire_set(replay)) == [
            ("ticker", "KRW-BTC"),
            ("ticker", "KRW-XRP"),
            ("ticker", SILENT),
        ]
        assert emulator_set(emu, final.conn_id) == {
            ("ticker", "KRW-BTC"),
            ("ticker", "KRW-XRP"),
            ("ticker", SILENT),
        }
        view = eng.registry()["realtime-0"]
        assert (view.status, view.suspects, list(view.failed)) == ("active", (), [bad])
        assert eng.metrics().requests_rejected == 2
        assert eng.metrics().restarts == 0
        assert_within_limits(emu)


@pytest.mark.parametrize("late", [False, True])
async def test_an_error_frame_is_blamed_only_within_the_attribution_window(
    autojump_clock: MockClock, late: bool
) -> None:
    async with engine_on_emulator(catalog=catalog()) as (eng, emu):
        # Nothing can prove a silent stream accepted except time without an error.
        quiet = await eng.subscribe_realtime("ticker", [SILENT])
        await settle(eng, emu)
        (conn,) = emu.connections(open_only=True)
        if late:
            await trio.sleep(ATTRIBUTION_WINDOW * 2)  # the window passes without an error
        emu.inject_error(conn.conn_id, ERROR_NAME, ERROR_MESSAGE)
        with trio.fail_after(WAIT):
            await emu.wait_closed(conn.conn_id)
        if not late:
            error = await failure_of(eng.stream(quiet))
            assert ERROR_NAME in error.cause
            assert eng.metrics().requests_rejected == 1
            # It was the ticket's only subscription: nothing is left to reconnect for.
            await trio.sleep(60)
            assert len(emu.connections()) == 1
            view = eng.registry()["realtime-0"]
            assert (view.status, view.state, view.error) == (
                "error",
                "closed",
                error.cause,
            )
            return
        # Too late to be an answer to the request: a connection failure, retried as usual.
        await until(eng.stream(quiet), lambda item: isinstance(item, Gap))
        await settle(eng, emu)
        assert eng.subscription(quiet).state.value == "active"
        metrics = eng.metrics()
        assert (metrics.requests_rejected, metrics.connection_losses, metrics.restarts) == (0, 1, 1)


async def test_an_error_after_a_replay_of_accepted_streams_is_a_connection_failure(
    autojump_clock: MockClock,
) -> None:
    async with engine_on_emulator() as (eng, emu):
        sub_id = await eng.subscribe_realtime("ticker", ["KRW-ETH"])
        stream = eng.stream(sub_id)
        await collect(stream, 1)  # its SNAPSHOT: Upbit accepted the stream
        await settle(eng, emu)
        (first,) = emu.connections(open_only=True)
        await emu.drop(first.conn_id)
        (second,) = await emu.wait_connections(1)
        with trio.fail_after(WAIT):
            await emu.wait_requests(1, conn_id=second.conn_id, kind="subscribe")
        # Right after the replay: in the window, but the replay added nothing unproven.
        emu.inject_error(second.conn_id, ERROR_NAME, ERROR_MESSAGE)
        with trio.fail_after(WAIT):
            await emu.wait_closed(second.conn_id)
        await settle(eng, emu)
        assert eng.subscription(sub_id).state.value == "active"
        metrics = eng.metrics()
        assert (metrics.requests_rejected, metrics.connection_losses) == (0, 2)


async def test_rate_limit_errors_are_never_blamed_on_a_subscription(
    autojump_clock: MockClock,
) -> None:
    async with engine_on_emulator(catalog=catalog()) as (eng, emu):
        quiet = await eng.subscribe_realtime("ticker", [SILENT])
        await settle(eng, emu)
        (conn,) = emu.connections(open_only=True)
        emu.inject_error(conn.conn_id, "Too Many Requests", "요청 수 제한을 초과했습니다.")
        await until(eng.stream(quiet), lambda item: isinstance(item, Gap))
        await settle(eng, emu)
        assert eng.subscription(quiet).state.value == "active"
        assert eng.metrics().requests_rejected == 0
