"""REST history through the engine (``Engine.fetch_trades``, ``Engine.fetch_candles``) against
the emulator's REST, end to end: the trades history returns are exactly those the stream
delivered, the warm-up recipe of docs/USAGE.md has no hole and no duplicate at the seam, a code
Upbit does not list is refused before any request, and the requests show in ``metrics()``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import trio
from trio.testing import MockClock

from engine import Engine, Trade, UnknownMarketError
from engine.testing import Emulator

from ._engine_support import engine_on_emulator, settle


def _utc(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def _market_now(emu: Emulator) -> datetime:
    return _utc(emu.market_now_ms)


async def _read_trades(eng: Engine, sub_id: str, seconds: float) -> list[Trade]:
    trades: list[Trade] = []
    with trio.move_on_after(seconds):
        async for item in eng.stream(sub_id):
            if isinstance(item, Trade):
                trades.append(item)
    return trades


async def test_history_returns_exactly_the_trades_the_stream_delivered(
    autojump_clock: MockClock,
) -> None:
    async with engine_on_emulator() as (eng, emu):
        emu.set_rate("KRW-BTC", 5.0)
        sub_id = await eng.subscribe_realtime("trade", ["KRW-BTC"])
        await settle(eng, emu)
        live = [t for t in await _read_trades(eng, sub_id, 60.0) if t.stream_type == "REALTIME"]
        assert len(live) > 100
        first, last = live[0], live[-1]
        assert first.trade_timestamp is not None
        assert last.trade_timestamp is not None
        result = await eng.fetch_trades(
            "KRW-BTC",
            start=_utc(first.trade_timestamp),
            end=_utc(last.trade_timestamp + 1),
            now=_market_now(emu),
        )
        assert result.complete, result.coverage
        assert [t.sequential_id for t in result.items] == [t.sequential_id for t in live]
        assert [t.trade_price for t in result.items] == [t.trade_price for t in live]
        assert {t.stream_type for t in result.items} == {"REST"}
        assert eng.metrics().rest_requests.get("trade", 0) >= 1


async def test_warm_up_then_live_has_no_hole_and_no_duplicate_at_the_seam(
    autojump_clock: MockClock,
) -> None:
    async with engine_on_emulator() as (eng, emu):
        emu.set_rate("KRW-ETH", 8.0)
        await trio.sleep(120.0)  # the market trades before anyone subscribes
        sub_id = await eng.subscribe_realtime("trade", ["KRW-ETH"])
        seen: list[int] = []
        async with eng.stream(sub_id) as stream:
            first = await stream.receive()
            assert isinstance(first, Trade)
            assert first.trade_timestamp is not None
            seam = _utc(first.trade_timestamp)
            history = await eng.fetch_trades(
                "KRW-ETH",
                start=seam - timedelta(seconds=90),
                end=seam + timedelta(milliseconds=1),
                now=_market_now(emu),
            )
            assert history.complete
            known = {t.sequential_id for t in history.items}
            seen.extend(t.sequential_id for t in history.items)
            if first.sequential_id not in known:
                seen.append(first.sequential_id)
            with trio.move_on_after(30.0):
                async for item in stream:
                    if isinstance(item, Trade) and item.sequential_id not in known:
                        seen.append(item.sequential_id)
        made = [t.sequential_id for t in emu.trades_made("KRW-ETH")]
    assert len(seen) == len(set(seen)), "a trade delivered twice"
    start = made.index(seen[0])
    assert seen == made[start : start + len(seen)], "a hole or a reordering at the seam"
    assert len(seen) > 800


async def test_candles_aggregate_the_trades(autojump_clock: MockClock) -> None:
    async with engine_on_emulator() as (eng, emu):
        emu.set_rate("KRW-XRP", 4.0)
        await trio.sleep(600.0)
        now = _market_now(emu)
        start = now.replace(second=0, microsecond=0) - timedelta(minutes=8)
        end = start + timedelta(minutes=5)
        candles = await eng.fetch_candles("KRW-XRP", "1m", start=start, end=end, now=now)
        trades = [t for t in emu.trades_made("KRW-XRP") if start <= _utc(t.trade_timestamp) < end]
    assert candles.complete
    assert len(candles.items) == 5
    assert {c.type for c in candles.items} == {"candle.1m"}
    volume = sum(c.candle_acc_trade_volume or 0.0 for c in candles.items)
    assert volume == pytest.approx(sum(t.trade_volume for t in trades))


async def test_an_unlisted_code_is_refused_before_any_request(autojump_clock: MockClock) -> None:
    async with engine_on_emulator() as (eng, _emu):
        await eng.wait_catalog()
        with pytest.raises(UnknownMarketError, match="KRW-NOPE"):
            await eng.fetch_trades("KRW-NOPE", start=datetime(2026, 12, 1, tzinfo=UTC))
        with pytest.raises(ValueError, match="naive"):
            await eng.fetch_candles("KRW-BTC", "1m", start=datetime(2026, 12, 1))
        assert sum(eng.metrics().rest_requests.values()) == 0
