"""The snapshot service against the Upbit emulator, over real loopback sockets, on a mock clock."""

from __future__ import annotations

import contextlib
import random
from collections.abc import AsyncIterator, Sequence
from typing import Any

import attrs
import orjson
import pytest
import trio
import trio_websocket
from trio.testing import MockClock

from actors import Supervisor, open_supervisor
from engine.config import EngineConfig
from engine.core.keys import StreamKey
from engine.core.ratelimit import connect_limiter
from engine.errors import (
    EngineClosedError,
    InvalidSubscriptionError,
    ServerError,
    SnapshotTimeoutError,
)
from engine.runtime.snapshots import SUPERVISOR_NAME, SnapshotService, ticket_name
from engine.testing import Emulator, EmulatorConfig, RequestRecord, default_catalog, open_emulator
from engine.transport import Connection, TrioWebsocketTransport
from engine.wire.messages import Orderbook, Ticker, Trade

#: Enough pairs for the big batches, small enough to start fast.
MARKETS = tuple(listing.market for listing in default_catalog(0)[:220])
#: Generous bound for any single wait on the mock clock.
WAIT = 120.0


@contextlib.asynccontextmanager
async def emulator(**changes: Any) -> AsyncIterator[Emulator]:
    async with open_emulator(attrs.evolve(EmulatorConfig(markets=MARKETS), **changes)) as emu:
        yield emu


@contextlib.asynccontextmanager
async def service(
    emu: Emulator, *, transport: Any = None, **changes: Any
) -> AsyncIterator[tuple[SnapshotService, Supervisor]]:
    config = EngineConfig(ws_url=emu.ws_url, seed=0, **changes)
    snapshots = SnapshotService(
        config,
        transport=transport or TrioWebsocketTransport(),
        connect_limiter=connect_limiter(),
        rng=random.Random(7),
    )
    async with open_supervisor(snapshots.child_specs(), name="engine", rng=random.Random(0)) as sup:
        yield snapshots, sup


def subscribes(emu: Emulator, conn_id: int | None = None) -> list[RequestRecord]:
    return [record for record in emu.requests(conn_id) if record.kind == "subscribe"]


def type_objects(record: RequestRecord) -> list[dict[str, Any]]:
    items = record.json()
    assert isinstance(items, list)
    return [item for item in items if "type" in item]


def sent_pairs(record: RequestRecord) -> set[tuple[str, str]]:
    return {
        (item["type"], code.partition(".")[0] if item["type"] == "orderbook" else code)
        for item in type_objects(record)
        for code in item["codes"]
    }


def assert_snapshot_only(record: RequestRecord) -> None:
    for item in type_objects(record):
        assert item.get("is_only_snapshot") is True, record.text
        assert "is_only_realtime" not in item, record.text


@pytest.mark.parametrize("fmt", ["DEFAULT", "SIMPLE"])
async def test_single_snapshot_resolves_with_a_typed_snapshot(
    autojump_clock: MockClock, fmt: str
) -> None:
    async with emulator() as emu, service(emu, format=fmt) as (snapshots, _):
        result = await snapshots.request([("ticker", "KRW-BTC")])
        assert list(result) == [("ticker", "KRW-BTC")]
        ticker = result[("ticker", "KRW-BTC")]
        assert isinstance(ticker, Ticker)
        assert (ticker.code, ticker.stream_type) == ("KRW-BTC", "SNAPSHOT")
        (record,) = subscribes(emu)
        assert_snapshot_only(record)
        assert sent_pairs(record) == {("ticker", "KRW-BTC")}
        assert emu.connection(record.conn_id).format == fmt
        usage = snapshots.usage()
        assert (usage.requests, usage.completed, usage.requests_sent) == (1, 1, 1)
        assert (usage.tickets_open, usage.requests_in_flight) == (1, 0)


async def test_fifty_concurrent_requests_share_few_wire_requests(autojump_clock: MockClock) -> None:
    types = ("ticker", "trade", "candle.1m")
    wanted = [(types[i % 3], MARKETS[i]) for i in range(50)]
    results: dict[tuple[str, str], object] = {}

    async def one(pair: tuple[str, str]) -> None:
        results.update(await snapshots.request([pair]))

    async with emulator() as emu, service(emu) as (snapshots, _):
        async with trio.open_nursery() as nursery:
            for pair in wanted:
                nursery.start_soon(one, pair)
        assert set(results) == set(wanted)
        assert all(
            (message.type, message.code) == pair  # type: ignore[attr-defined]
            for pair, message in results.items()
        )
        records = subscribes(emu)
        assert 1 <= len(records) <= 2, [r.text for r in records]
        for record in records:
            assert_snapshot_only(record)
            kinds = [item["type"] for item in type_objects(record)]
            assert len(kinds) == len(set(kinds)), "one object per type in a merged request"
        assert set().union(*(sent_pairs(r) for r in records)) == set(wanted)
        assert len(emu.connections()) == 1


async def test_one_snapshot_satisfies_every_caller_of_the_same_stream(
    autojump_clock: MockClock,
) -> None:
    async with emulator() as emu, service(emu) as (snapshots, _):
        got: list[dict[tuple[str, str], Any]] = []

        async def one(pairs: Sequence[tuple[str, str]]) -> None:
            got.append(await snapshots.request(pairs))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(one, [("ticker", "KRW-BTC")])
            nursery.start_soon(one, [("ticker", "KRW-BTC"), ("trade", "KRW-ETH")])
        first, second = got
        assert first[("ticker", "KRW-BTC")] is second[("ticker", "KRW-BTC")]
        assert isinstance(second[("trade", "KRW-ETH")], Trade)
        (record,) = subscribes(emu)
        codes = [code for item in type_objects(record) for code in item["codes"]]
        assert codes.count("KRW-BTC") == 1


async def test_orderbook_snapshots_of_any_depth_share_one_full_depth_stream(
    autojump_clock: MockClock,
) -> None:
    async with emulator() as emu, service(emu) as (snapshots, _):
        got: dict[int | None, Orderbook] = {}

        async def one(units: int | None) -> None:
            result = await snapshots.request([StreamKey("orderbook", "KRW-BTC", units)])
            book = result[("orderbook", "KRW-BTC")]
            assert isinstance(book, Orderbook)
            got[units] = book

        async with trio.open_nursery() as nursery:
            for units in (5, 15, None):
                nursery.start_soon(one, units)
        assert {units: len(book.orderbook_units) for units, book in got.items()} == {
            5: 5,
            15: 15,
            None: 30,
        }
        # One stream at full depth on the wire; each ask got the rows it asked for.
        (record,) = subscribes(emu)
        assert sorted(code for item in type_objects(record) for code in item["codes"]) == [
            "KRW-BTC"
        ]


async def test_a_batch_of_two_hundred_codes_is_one_request(autojump_clock: MockClock) -> None:
    codes = MARKETS[:200]
    async with emulator() as emu, service(emu) as (snapshots, _):
        result = await snapshots.request([("ticker", code) for code in codes])
        assert set(result) == {("ticker", code) for code in codes}
        assert all(message.stream_type == "SNAPSHOT" for message in result.values())
        (record,) = subscribes(emu)
        assert_snapshot_only(record)
        assert sent_pairs(record) == set(result)


async def test_timeout_names_the_unlisted_code_while_the_rest_resolve(
    autojump_clock: MockClock,
) -> None:
    async with emulator() as emu, service(emu) as (snapshots, _):
        failed: list[SnapshotTimeoutError] = []

        async def doomed() -> None:
            with pytest.raises(SnapshotTimeoutError) as caught:
                await snapshots.request([("ticker", "KRW-BTC"), ("ticker", "KRW-NOPE")], timeout=3)
            failed.append(caught.value)

        async with trio.open_nursery() as nursery:
            start = trio.current_time()
            nursery.start_soon(doomed)
            await emu.wait_requests(1, kind="subscribe")
            # Asked while the first batch waits for KRW-NOPE: settles within a second, not at
            # the first request's timeout.
            later = await snapshots.request([("ticker", "KRW-ETH")])
            assert trio.current_time() - start < 1.5
            assert isinstance(later[("ticker", "KRW-ETH")], Ticker)
        (error,) = failed
        assert error.missing == (("ticker", "KRW-NOPE"),)
        assert error.timeout == 3
        assert trio.current_time() - start == pytest.approx(3, abs=0.01)
        assert error.__cause__ is None, "no connection trouble to blame"
        assert all(sent_pairs(r) >= {("ticker", "KRW-NOPE")} for r in subscribes(emu))
        usage = snapshots.usage()
        assert (usage.timeouts, usage.completed, usage.requests_in_flight) == (1, 1, 0)


async def test_ticket_lingers_with_pings_then_closes(autojump_clock: MockClock) -> None:
    async with (
        emulator() as emu,
        service(emu, snapshot_linger=40.0, ping_interval=14.0, ping_timeout=5.0) as (snapshots, _),
    ):
        await snapshots.request([("ticker", "KRW-BTC")])
        await trio.sleep(20)  # the scenario's pause, within the linger
        await snapshots.request([("trade", "KRW-BTC")])
        reused_at = trio.current_time()
        assert len(emu.connections()) == 1, "the lingering connection was reused"
        assert snapshots.usage().tickets_open == 1
        with trio.fail_after(WAIT):
            info = await emu.wait_closed(1)
        assert info.closed_at is not None
        assert info.closed_at - reused_at == pytest.approx(40, abs=0.1)
        assert info.close_reason == "client closed 1000"
        assert info.pings_received == 4, "a ping every 14 s while open (60 s)"
        assert len(subscribes(emu)) == 2


async def test_dropped_connection_mid_batch_resends_what_is_missing(
    autojump_clock: MockClock,
) -> None:
    async with emulator() as emu, service(emu) as (snapshots, _):
        emu.set_latency(1.0)  # the SNAPSHOTs are still on their way when the drop comes
        pairs = [("ticker", "KRW-BTC"), ("orderbook", "KRW-ETH")]
        async with trio.open_nursery() as nursery:
            done: list[dict[tuple[str, str], Any]] = []

            async def ask() -> None:
                done.append(await snapshots.request(pairs))

            nursery.start_soon(ask)
            await emu.wait_requests(1, kind="subscribe")
            await emu.drop(1)
        assert set(done[0]) == set(pairs)
        first, second = subscribes(emu)
        assert (first.conn_id, second.conn_id) == (1, 2)
        assert sent_pairs(second) == set(pairs)
        assert_snapshot_only(second)
        usage = snapshots.usage()
        assert (usage.connections_lost, usage.connects, usage.completed) == (1, 2, 1)


async def test_error_frame_fails_the_batch_with_server_error(autojump_clock: MockClock) -> None:
    async with emulator() as emu, service(emu) as (snapshots, _):
        async with trio.open_nursery() as nursery:

            async def rejected() -> None:
                with pytest.raises(ServerError) as caught:
                    await snapshots.request([("ticker", "KRW-BTC"), ("ticker", "KRW-NOPE")])
                assert (caught.value.name, caught.value.server_message) == ("INVALID_PARAM", "bad")

            nursery.start_soon(rejected)
            await emu.wait_requests(1, kind="subscribe")
            emu.inject_error(1, "INVALID_PARAM", "bad")
        # The connection is gone; the next request opens another one.
        result = await snapshots.request([("ticker", "KRW-ETH")])
        assert isinstance(result[("ticker", "KRW-ETH")], Ticker)
        assert [r.conn_id for r in subscribes(emu)] == [1, 2]
        assert snapshots.usage().server_errors == 1


async def test_undecodable_frames_are_counted_and_skipped(autojump_clock: MockClock) -> None:
    async with emulator() as emu, service(emu) as (snapshots, _):
        await snapshots.request([("ticker", "KRW-BTC")])
        emu.inject_malformed(1, "truncated_json")
        # Frames arrive in order: once this resolves, the bad frame was read before it.
        result = await snapshots.request([("ticker", "KRW-ETH")])
        assert isinstance(result[("ticker", "KRW-ETH")], Ticker)
        usage = snapshots.usage()
        assert (usage.malformed_frames, usage.connects, usage.connections_lost) == (1, 1, 0)


async def test_never_more_than_the_message_limit_per_connection(autojump_clock: MockClock) -> None:
    async with emulator() as emu, service(emu) as (snapshots, _):
        for index in range(120):
            # The 100/min budget holds some of these back for most of a minute.
            await snapshots.request([("ticker", MARKETS[index % 20])], timeout=WAIT)
        records = emu.requests()
        assert {r.conn_id for r in records} == {1}
        assert all(r.kind in ("subscribe", "ping") for r in records), "no rate_limited"
        times = [r.at for r in records]
        assert len(subscribes(emu)) == 120
        assert all(times[i + 5] - times[i] > 1.0 for i in range(len(times) - 5))
        assert all(times[i + 100] - times[i] > 60.0 for i in range(len(times) - 100))


async def test_a_spent_message_budget_is_named_in_the_timeout(autojump_clock: MockClock) -> None:
    async with emulator() as emu, service(emu) as (snapshots, _):
        # The text PING and 99 requests spend the connection's 100 messages of this minute.
        for index in range(99):
            await snapshots.request([("ticker", MARKETS[index % 20])], timeout=WAIT)
        first = emu.requests()[0].at
        asked = trio.current_time()
        with pytest.raises(SnapshotTimeoutError) as caught:
            await snapshots.request([("ticker", "KRW-BTC")], timeout=5.0)
        error = caught.value
        assert error.missing == (("ticker", "KRW-BTC"),)
        assert error.reason is not None
        assert "message budget is spent" in str(error)
        assert "100/min" in str(error)
        assert "check the codes are listed" not in str(error)
        # It says when the budget frees: a minute after the first message of the window.
        wait = float(str(error).split("frees in ")[1].split(" s")[0])
        assert abs(asked + 5.0 + wait - (first + 60.0)) < 0.5
        # A silent code on a connection with budget left still gets the usual advice.
        with pytest.raises(SnapshotTimeoutError) as later:
            await snapshots.request([("ticker", "KRW-NOPE")], timeout=WAIT)
        assert later.value.reason is None
        assert "check the codes are listed" in str(later.value)


async def test_only_its_own_connections_are_touched(autojump_clock: MockClock) -> None:
    realtime = [{"ticket": "realtime"}, {"type": "ticker", "codes": ["KRW-BTC"]}]
    async with (
        emulator() as emu,
        service(emu) as (snapshots, _),
        trio_websocket.open_websocket_url(emu.ws_url) as ws,
    ):
        await ws.send_message(orjson.dumps(realtime).decode())
        await emu.wait_requests(1, conn_id=1)
        before = emu.connection(1).subscriptions
        await snapshots.request([("ticker", "KRW-BTC"), ("trade", "KRW-XRP")])
        await snapshots.request([("ticker", "KRW-ETH")])
        assert [r.text for r in emu.requests(1)] == [orjson.dumps(realtime).decode()]
        assert emu.connection(1).subscriptions == before
        assert emu.connection(1).open
        others = [r for r in emu.requests() if r.conn_id != 1]
        assert {r.conn_id for r in others} == {2}
        for record in others:
            if record.kind == "subscribe":
                assert_snapshot_only(record)
        assert len(emu.connections()) == 1 + snapshots.usage().connects


async def test_connects_back_off_after_429(autojump_clock: MockClock) -> None:
    async with emulator() as emu, service(emu) as (snapshots, _):
        emu.reject_connects(429, count=2)
        start = trio.current_time()
        result = await snapshots.request([("ticker", "KRW-BTC")], timeout=10)
        assert isinstance(result[("ticker", "KRW-BTC")], Ticker)
        first, second = (refusal.at for refusal in emu.refusals())
        assert second - first >= 1.0, "waited out the Retry-After"
        assert trio.current_time() - start < 10
        usage = snapshots.usage()
        assert (usage.connect_failures, usage.connects) == (2, 1)


async def test_silent_connection_is_detected_by_ping_and_replaced(
    autojump_clock: MockClock,
) -> None:
    async with emulator() as emu, service(emu, ping_timeout=5.0) as (snapshots, _):
        await snapshots.request([("ticker", "KRW-BTC")])
        emu.stall(1)
        start = trio.current_time()
        result = await snapshots.request([("ticker", "KRW-ETH")], timeout=10)
        assert isinstance(result[("ticker", "KRW-ETH")], Ticker)
        # Quiet for the settle period (1 s), no pong within ping_timeout (5 s), the close
        # handshake the dead peer never answers (the transport's 2 s), a reconnect backoff.
        assert 6.0 <= trio.current_time() - start < 9.0
        assert [r.conn_id for r in subscribes(emu)] == [1, 2]
        assert snapshots.usage().connections_lost == 1


async def test_a_second_ticket_serves_while_the_first_waits(autojump_clock: MockClock) -> None:
    async with emulator() as emu, service(emu, snapshot_pool_size=2) as (snapshots, sup):
        assert {c.name for c in sup.tree().children[0].children} == {
            "coordinator",
            ticket_name(0),
            ticket_name(1),
        }
        async with trio.open_nursery() as nursery:
            nursery.start_soon(lambda: snapshots.request([("ticker", "KRW-NOPE")], timeout=0.5))
            await emu.wait_requests(1, kind="subscribe")
            start = trio.current_time()
            await snapshots.request([("ticker", "KRW-ETH")])
            assert trio.current_time() - start < 0.2
            nursery.cancel_scope.cancel()
        assert [r.conn_id for r in subscribes(emu)][:2] == [1, 2]


class _CrashOnce:
    """A transport whose first connect hits a bug (not a connection error)."""

    def __init__(self) -> None:
        self.inner = TrioWebsocketTransport()
        self.crashed = False

    @contextlib.asynccontextmanager
    async def connect(
        self, url: str, *, headers: Sequence[tuple[str, str]] = (), connect_timeout: float = 10.0
    ) -> AsyncIterator[Connection]:
        if not self.crashed:
            self.crashed = True
            raise RuntimeError("injected bug")
        async with self.inner.connect(url, headers=headers, connect_timeout=connect_timeout) as c:
            yield c


async def test_crashed_ticket_is_restarted_and_the_request_completes(
    autojump_clock: MockClock,
) -> None:
    async with emulator() as emu, service(emu, transport=_CrashOnce()) as (snapshots, sup):
        result = await snapshots.request([("ticker", "KRW-BTC")])
        assert isinstance(result[("ticker", "KRW-BTC")], Ticker)
        node = sup.tree().children[0].children[1]
        assert (node.name, node.generation, node.restarts_in_window) == (ticket_name(0), 1, 1)


async def test_callers_of_a_crashed_coordinator_fail_promptly(autojump_clock: MockClock) -> None:
    async with emulator() as emu, service(emu) as (snapshots, sup):
        async with trio.open_nursery() as nursery:

            async def pending() -> None:
                with pytest.raises(EngineClosedError):
                    await snapshots.request([("ticker", "KRW-NOPE")], timeout=60)

            nursery.start_soon(pending)
            await emu.wait_requests(1, kind="subscribe")
            start = trio.current_time()
            coordinator = sup.ref((SUPERVISOR_NAME, "coordinator"))
            coordinator.cast_nowait(object())  # an unknown message: the coordinator crashes
        assert trio.current_time() - start < 1.0
        result = await snapshots.request([("ticker", "KRW-ETH")])
        assert isinstance(result[("ticker", "KRW-ETH")], Ticker)
        assert sup.tree().children[0].children[0].generation == 1


async def test_an_unmounted_service_refuses_at_once() -> None:
    snapshots = SnapshotService(
        EngineConfig(),
        transport=TrioWebsocketTransport(),
        connect_limiter=connect_limiter(),
        rng=random.Random(0),
    )
    with pytest.raises(EngineClosedError, match="child_specs"):
        await snapshots.request([("ticker", "KRW-BTC")])
    assert await snapshots.request([]) == {}


@pytest.mark.parametrize(
    ("pairs", "error", "match"),
    [
        (("ticker", "KRW-BTC"), TypeError, "rather than"),
        ([("ticker", "KRW-BTC", 5)], TypeError, "rather than"),
        (
            [StreamKey("orderbook", "KRW-BTC", 5), StreamKey("orderbook", "KRW-BTC", 15)],
            InvalidSubscriptionError,
            "split it into two requests",
        ),
        ([("myAsset", "")], InvalidSubscriptionError, "no snapshots"),
        ([("nope", "KRW-BTC")], InvalidSubscriptionError, "unknown type"),
    ],
)
async def test_requests_are_checked_before_anything_queues(
    pairs: Any, error: type[Exception], match: str
) -> None:
    snapshots = SnapshotService(
        EngineConfig(),
        transport=TrioWebsocketTransport(),
        connect_limiter=connect_limiter(),
        rng=random.Random(0),
    )
    with pytest.raises(error, match=match):
        await snapshots.request(pairs)
    with pytest.raises(ValueError, match="positive"):
        await snapshots.request([("ticker", "KRW-BTC")], timeout=0)


async def test_shutdown_fails_pending_callers_and_closes_cleanly(autojump_clock: MockClock) -> None:
    async with emulator() as emu:
        async with trio.open_nursery() as nursery, service(emu) as (snapshots, _):

            async def pending() -> None:
                with pytest.raises(EngineClosedError):
                    await snapshots.request([("ticker", "KRW-NOPE")], timeout=60)

            nursery.start_soon(pending)
            await emu.wait_requests(1, kind="subscribe")
            start = trio.current_time()
        assert trio.current_time() - start < 1.0
        with trio.fail_after(WAIT):
            info = await emu.wait_closed(1)
        assert info.close_reason == "client closed 1000"
        with pytest.raises(EngineClosedError, match="stopped"):
            await snapshots.request([("ticker", "KRW-BTC")])
