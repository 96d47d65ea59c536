"""Snapshots through the engine, against the emulator: one-shot, bulk, and snapshot-then-stream."""

from __future__ import annotations

import pytest
import trio
from trio.testing import MockClock

from engine.errors import InvalidSubscriptionError, UnknownMarketError
from engine.testing import Drift
from engine.wire.messages import Orderbook, Ticker

from ._engine_support import MAJORS, collect, engine_on_emulator, messages, settle


async def test_pattern_1_one_shot_lookup(autojump_clock: MockClock) -> None:
    async with engine_on_emulator() as (eng, emu):
        price = await eng.request_snapshot("ticker", ["KRW-BTC"])
        assert list(price) == ["KRW-BTC"]
        ticker = price["KRW-BTC"]
        assert isinstance(ticker, Ticker)
        assert ticker.stream_type == "SNAPSHOT"
        # Only snapshot-only requests went out, and no realtime ticket was opened.
        for record in emu.requests():
            if record.kind == "subscribe":
                items = record.json()
                assert isinstance(items, list)
                assert all(item.get("is_only_snapshot") for item in items[1:-1])
        assert eng.get_ticket_usage().realtime.open == 0
        metrics = eng.metrics()
        assert metrics.snapshot_latency.count == 1
        assert metrics.snapshot_requests == 1


async def test_pattern_3_bulk_initialisation(autojump_clock: MockClock) -> None:
    krw = [code for code in MAJORS if code.startswith("KRW-")]
    majors = ["KRW-BTC", "KRW-ETH"]
    async with engine_on_emulator() as (eng, _emu):
        tickers, books = await eng.request_snapshots_batch([("ticker", krw), ("orderbook", majors)])
        assert sorted(tickers) == sorted(krw)
        assert all(isinstance(msg, Ticker) for msg in tickers.values())
        assert sorted(books) == sorted(majors)
        assert all(isinstance(msg, Orderbook) for msg in books.values())


async def test_pattern_4_hybrid_snapshot_then_realtime(autojump_clock: MockClock) -> None:
    async with engine_on_emulator() as (eng, emu):
        initial = await eng.request_snapshot("orderbook", ["KRW-ETH"], units=5)
        book = initial["KRW-ETH"]
        assert isinstance(book, Orderbook)
        assert len(book.orderbook_units) == 5
        sub_id = await eng.subscribe_realtime("orderbook", ["KRW-ETH"], units=5)
        got = messages(await collect(eng.stream(sub_id), 3))
        assert got[0].stream_type == "SNAPSHOT"
        assert all(isinstance(m, Orderbook) and len(m.orderbook_units) == 5 for m in got)
        await settle(eng, emu)
        # The realtime ticket and the snapshot ticket are different connections.
        realtime = [c for c in emu.connections() if any(r.kind == "subscribe" for r in c.requests)]
        assert len(realtime) == 2
        assert eng.detect_conflicts() == []


async def test_snapshot_requests_are_validated_before_sending(autojump_clock: MockClock) -> None:
    async with engine_on_emulator() as (eng, emu):
        with pytest.raises(UnknownMarketError):
            await eng.request_snapshot("ticker", ["KRW-NOPE"])
        with pytest.raises(InvalidSubscriptionError) as caught:
            await eng.request_snapshot("orderbook", ["krw-btc"], units=7)
        assert len(caught.value.reasons) >= 2
        await trio.sleep(1)
        assert emu.requests() == ()
        assert eng.metrics().snapshot_failures == 2


async def test_a_cancelled_snapshot_request_leaves_no_request_in_flight(
    autojump_clock: MockClock,
) -> None:
    # The emulator never answers KRW-BTC's SNAPSHOT: the request would wait its full timeout.
    async with engine_on_emulator(
        {"drift": Drift(no_snapshot_codes=frozenset({"KRW-BTC"}))}, snapshot_timeout=60.0
    ) as (eng, _):
        with trio.move_on_after(1.0):
            await eng.request_snapshot("ticker", ["KRW-BTC"])
        assert eng.metrics().snapshot_usage.requests_in_flight == 0  # at once, not at 60 s
        # The service goes on serving: an answerable request right after still completes.
        result = await eng.request_snapshot("ticker", ["KRW-ETH"])
        assert isinstance(result["KRW-ETH"], Ticker)
        assert trio.current_time() < 30.0
