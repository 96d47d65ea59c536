"""A wire that departs from the documented model never silences a stream (the tolerant reader).

Each test drives the engine through its public API against the emulator with one kind of drift
(``engine.testing.Drift``) and checks what a subscriber receives and what the engine reports:
undecodable frames are skipped without a reconnect, a SNAPSHOT that never comes ends in an
explicit ``SnapshotMissing`` and REALTIME from then on, orderbooks of any depth reach the
subscribers of their (code, level), and all of it at once still streams.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Iterable

import pytest
import trio
from trio.testing import MockClock

from engine import (
    Candle,
    CatalogNotReadyError,
    Gap,
    Interrupted,
    InvalidSubscriptionError,
    Orderbook,
    SnapshotMissing,
    SnapshotTimeoutError,
    Ticker,
    Trade,
    open_engine,
)
from engine.core.registry import ConflictKind
from engine.facade.engine import Engine, SubscriptionStream
from engine.routing.router import StreamItem
from engine.testing import Drift, open_emulator

from ._engine_support import WAIT, emulator_config, engine_on_emulator, transport_name, until

#: The engine's default; the tests rely on it to bound when a missing SNAPSHOT is reported.
SNAPSHOT_TIMEOUT = 5.0


async def messages_of(
    stream: SubscriptionStream, count: int, *, within: float = WAIT
) -> list[StreamItem]:
    """Items until ``count`` market messages (events included in the result) arrived."""
    items: list[StreamItem] = []
    seen = 0
    with trio.fail_after(within):
        while seen < count:
            item = await stream.receive()
            items.append(item)
            if not isinstance(item, Gap | Interrupted | SnapshotMissing):
                seen += 1
    return items


def depths(items: list[StreamItem] | Iterable[object]) -> set[int]:
    """The row counts of ``items``, which must all be orderbooks."""
    books = list(items)
    assert all(isinstance(book, Orderbook) for book in books)
    return {len(book.orderbook_units) for book in books if isinstance(book, Orderbook)}


async def test_undecodable_and_unknown_frames_are_skipped_without_a_reconnect(
    autojump_clock: MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="engine.wire")
    drift = Drift(garbage_every=3, unknown_type_every=4)
    async with engine_on_emulator({"drift": drift}) as (eng, _emu):
        sub = await eng.subscribe_realtime("trade", ["KRW-BTC", "KRW-ETH"])
        async with eng.stream(sub) as stream:
            items = await messages_of(stream, 200)
        metrics = eng.metrics()
    # Nothing in the stream but trades: no Interrupted, no Gap, nothing withheld.
    assert all(isinstance(item, Trade) for item in items)
    assert metrics.connects == 1
    assert metrics.connection_losses == 0
    # Every kind of garbage the emulator rotates through was counted under a reason.
    assert {"not_json", "not_object", "unknown_status", "unknown_shape", "bad_type"} <= set(
        metrics.undecodable_frames
    )
    assert set(metrics.unknown_types) >= {"announcement"}
    skipped = sum(metrics.undecodable_frames.values()) + sum(metrics.unknown_types.values())
    assert skipped >= 50
    assert sum(t.frames_skipped for t in metrics.tickets.values()) == skipped
    text = metrics.to_prometheus()
    assert 'upbit_engine_frames_undecodable_total{reason="not_json"}' in text
    # Sparse logging: one line per reason and per unknown type within the minute, samples cut.
    lines = [r.getMessage() for r in caplog.records if r.name == "engine.wire"]
    assert 0 < len(lines) <= len(metrics.undecodable_frames) + len(metrics.unknown_types)
    for record in caplog.records:
        if "sample" in record.getMessage():
            sample = record.getMessage().rpartition("sample ")[2]
            assert len(sample) <= 200 + 10  # repr quotes and the "..." marker
        assert record.levelno == logging.WARNING


async def test_a_stream_without_its_snapshot_gets_snapshot_missing_then_realtime(
    autojump_clock: MockClock,
) -> None:
    drift = Drift(no_snapshot_codes=frozenset({"KRW-ETH"}))
    async with engine_on_emulator({"drift": drift}) as (eng, emu):
        emu.set_rate("KRW-ETH", 20.0)
        started = trio.current_time()
        sub = await eng.subscribe_realtime("ticker", ["KRW-BTC", "KRW-ETH"])
        async with eng.stream(sub) as stream:
            items = await until(
                stream, lambda item: isinstance(item, Ticker) and item.code == "KRW-ETH"
            )
            missing = [item for item in items if isinstance(item, SnapshotMissing)]
            assert [(m.data_type, m.code) for m in missing] == [("ticker", "KRW-ETH")]
            # The deadline counts from the request, and nothing waits past it.
            assert missing[0].at - started <= SNAPSHOT_TIMEOUT + 1.0
            assert missing[0].waited >= SNAPSHOT_TIMEOUT
            assert items.index(missing[0]) < len(items) - 1  # the event precedes ETH's first
            eth = items[-1]
            assert isinstance(eth, Ticker)
            assert eth.stream_type == "REALTIME"
            assert eng.metrics().snapshots_missing == 1
            conflicts = eng.detect_conflicts()
            assert any(
                c.kind is ConflictKind.MISSING_SNAPSHOT and "KRW-ETH" in c.message
                for c in conflicts
            )
            assert eng.metrics().subscriptions == {"active": 1}

            # The same after a reconnect: Interrupted, Gap, then again no wait past the deadline.
            await emu.drop()
            after = await until(
                stream,
                lambda item: isinstance(item, SnapshotMissing),
            )
            assert isinstance(after[0], Interrupted)
            assert any(isinstance(item, Gap) for item in after)
            again = await until(
                stream, lambda item: isinstance(item, Ticker) and item.code == "KRW-ETH"
            )
            assert isinstance(again[-1], Ticker)
            assert again[-1].stream_type == "REALTIME"
        assert eng.metrics().snapshots_missing == 2


async def test_orderbooks_route_by_code_and_level_whatever_their_row_count(
    autojump_clock: MockClock,
) -> None:
    async with engine_on_emulator({"drift": Drift(orderbook_rows=30)}) as (eng, emu):
        shallow = await eng.subscribe_realtime("orderbook", ["KRW-BTC"], units=5)
        deeper = await eng.subscribe_realtime("orderbook", ["KRW-BTC"], units=15)
        async with eng.stream(shallow) as s5, eng.stream(deeper) as s15:
            five = await messages_of(s5, 5)
            fifteen = await messages_of(s15, 5)
        assert depths(five) == {5}
        assert depths(fifteen) == {15}
        # One stream per (code, level) on the wire, at the deepest depth wanted.
        last = [r for r in emu.requests() if r.kind == "subscribe"][-1].json()
        books = [
            item for item in last if isinstance(item, dict) and item.get("type") == "orderbook"
        ]
        assert [code for item in books for code in item["codes"]] == ["KRW-BTC.15"]
        assert eng.metrics().orderbook_rows_mismatch["trimmed"] > 0


async def test_a_shallower_book_than_asked_is_delivered_and_counted(
    autojump_clock: MockClock,
) -> None:
    async with engine_on_emulator({"drift": Drift(orderbook_rows=3)}) as (eng, _):
        sub = await eng.subscribe_realtime("orderbook", ["KRW-ETH"], units=15)
        async with eng.stream(sub) as stream:
            books = await messages_of(stream, 3)
        assert depths(books) == {3}
        assert eng.metrics().orderbook_rows_mismatch["short"] >= 3


async def test_snapshots_of_orderbooks_match_by_code_and_level_and_are_trimmed(
    autojump_clock: MockClock,
) -> None:
    async with engine_on_emulator({"drift": Drift(orderbook_rows=30)}) as (eng, emu):
        result = await eng.request_snapshot("orderbook", ["KRW-BTC", "KRW-ETH"], units=5)
        assert depths(result.values()) == {5}
        # Asked at full depth: one SNAPSHOT serves asks of any depth.
        record = [r for r in emu.requests() if r.kind == "subscribe"][-1]
        assert '"KRW-BTC.5"' not in record.text
        assert '"KRW-BTC"' in record.text


async def test_every_drift_at_once_still_streams_every_type(autojump_clock: MockClock) -> None:
    drift = Drift.everything()
    codes = ["KRW-BTC", "KRW-ETH", "KRW-XRP"]
    async with engine_on_emulator({"drift": drift}) as (eng, emu):
        for code in codes:
            emu.set_rate(code, 20.0)
        subs = {
            "ticker": await eng.subscribe_realtime("ticker", codes),
            "trade": await eng.subscribe_realtime("trade", codes),
            "orderbook": await eng.subscribe_realtime("orderbook", codes, units=15),
            "candle.1s": await eng.subscribe_realtime("candle.1s", codes),
        }
        for data_type, sub in subs.items():
            got: dict[str, int] = {}
            async with eng.stream(sub) as stream:
                with trio.fail_after(SNAPSHOT_TIMEOUT + 30):
                    while min((got.get(code, 0) for code in codes), default=0) < 3:
                        item = await stream.receive()
                        assert not isinstance(item, Interrupted), item
                        if isinstance(item, SnapshotMissing | Gap):
                            continue
                        assert isinstance(item, Ticker | Trade | Orderbook | Candle)
                        assert item.type == data_type
                        got[item.code] = got.get(item.code, 0) + 1
                        if isinstance(item, Orderbook):
                            assert len(item.orderbook_units) == 15  # trimmed from 40
                        if isinstance(item, Trade):
                            assert item.best_ask_price is None  # the pre-2024 shape
                            assert item.extra  # unknown keys kept
                        if isinstance(item, Ticker):
                            assert item.delisting_date == "2026-12-31"
                            assert item.acc_trade_price_24h is None
        metrics = eng.metrics()
    # No connection was restarted because of a frame's content.
    assert metrics.connects == 1
    assert metrics.connection_losses == 0
    assert metrics.field_drift[("ticker", "acc_trade_price_24h")] > 0
    assert metrics.field_drift[("trade", "best_ask_price")] > 0
    assert metrics.undecodable_frames
    assert metrics.unknown_types


async def test_an_unreachable_websocket_is_logged_once_and_shown_on_the_subscription(
    autojump_clock: MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="engine.connection")
    async with open_emulator(emulator_config()) as emu:
        # The REST catalog works; the WebSocket port refuses every connection.
        dead = trio.socket.socket()
        await dead.bind(("127.0.0.1", 0))
        port = dead.getsockname()[1]
        dead.close()
        async with open_engine(
            ws_url=f"ws://127.0.0.1:{port}/websocket/v1",
            rest_url=emu.rest_url,
            transport=transport_name(),
            snapshot_timeout=3.0,
        ) as eng:
            sub = await eng.subscribe_realtime("ticker", ["KRW-BTC"])
            # Not synchronisation: a minute of (mock) time is the scenario, an outage long enough
            # for several backoff steps; nothing announces the attempts to wait on.
            await trio.sleep(60)
            entry = eng.registry()["realtime-0"]
            assert sub in entry.subscriptions
            assert entry.state in ("backing_off", "connecting")
            assert "could not connect" in str(entry.last_failure)
            assert "last_failure=" in eng.debug_tree().render()
            warnings = [
                r
                for r in caplog.records
                if r.name == "engine.connection" and "realtime-0" in r.getMessage()
            ]
            assert eng.metrics().tickets["realtime-0"].failures >= 3
            assert len(warnings) == 1  # not one line per retry
            assert warnings[0].levelno == logging.WARNING
            assert getattr(warnings[0], "ticket", None) == "realtime-0"  # from extra=
            with pytest.raises(SnapshotTimeoutError) as caught:
                await eng.request_snapshot("ticker", ["KRW-BTC"])
            assert "snapshot connection failed" in str(caught.value)
            assert caught.value.connection_error is not None


@contextlib.asynccontextmanager
async def engine_without_catalog() -> AsyncIterator[Engine]:
    """An engine whose REST endpoint accepts and never answers: the catalog cannot load."""
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(
            functools.partial(trio.serve_tcp, _never_answer, 0, host="127.0.0.1")
        )
        port = listeners[0].socket.getsockname()[1]
        async with (
            open_emulator(emulator_config()) as emu,
            open_engine(
                ws_url=emu.ws_url,
                rest_url=f"http://127.0.0.1:{port}",
                transport=transport_name(),
            ) as eng,
        ):
            yield eng
        nursery.cancel_scope.cancel()


async def test_validate_subscription_never_guesses_before_the_catalog_loaded(
    autojump_clock: MockClock,
) -> None:
    async with engine_without_catalog() as eng:
        with pytest.raises(CatalogNotReadyError, match="wait_catalog"):
            eng.validate_subscription("ticker", ["KRW-NOPE"])
        with pytest.raises(CatalogNotReadyError):
            eng.check_subscription("ticker", ["KRW-BTC"])
    async with engine_on_emulator() as (eng, _):
        await eng.wait_catalog()
        assert eng.validate_subscription("ticker", ["KRW-NOPE"]) is False
        assert eng.validate_subscription("ticker", ["KRW-BTC"]) is True


async def _never_answer(stream: trio.SocketStream) -> None:
    await trio.sleep_forever()


async def test_snapshots_arrive_from_a_server_that_omits_stream_type(
    autojump_clock: MockClock,
) -> None:
    async with engine_on_emulator({"drift": Drift(omit_stream_type=True)}) as (eng, _):
        result = await eng.request_snapshot("ticker", ["KRW-BTC", "KRW-ETH"])
        assert set(result) == {"KRW-BTC", "KRW-ETH"}
        assert all(msg.stream_type == "REALTIME" for msg in result.values())  # as decoded


async def test_check_subscription_names_other_problems_before_the_catalog_is_needed(
    autojump_clock: MockClock,
) -> None:
    async with engine_without_catalog() as eng:
        with pytest.raises(InvalidSubscriptionError, match="orderbook only"):
            eng.check_subscription("ticker", ["KRW-BTC"], units=5)
