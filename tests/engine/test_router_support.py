"""Message factories shared by the router tests (plus checks that they build what they say).

The models are constructed directly, as the router receives them from ``decode_frame``.
"""

from __future__ import annotations

from decimal import Decimal

import trio

from engine.core.keys import StreamKey
from engine.errors import SubscriptionFailedError
from engine.events import Ended
from engine.routing.router import Route, StreamItem, SubscriberBuffer
from engine.wire.messages import (
    AssetBalance,
    Candle,
    MyAsset,
    MyOrder,
    Orderbook,
    OrderbookUnit,
    Ticker,
    Trade,
)

SNAP = "SNAPSHOT"
REAL = "REALTIME"


def ticker(code: str = "KRW-BTC", price: float = 100.0, *, stream: str = REAL) -> Ticker:
    return Ticker(
        type="ticker",
        code=code,
        opening_price=90.0,
        high_price=110.0,
        low_price=80.0,
        trade_price=price,
        prev_closing_price=95.0,
        change="RISE",
        change_price=5.0,
        signed_change_price=5.0,
        change_rate=0.05,
        signed_change_rate=0.05,
        trade_volume=1.0,
        acc_trade_volume=10.0,
        acc_trade_volume_24h=20.0,
        acc_trade_price=1000.0,
        acc_trade_price_24h=2000.0,
        trade_date="20260101",
        trade_time="000000",
        trade_timestamp=1,
        ask_bid="BID",
        acc_ask_volume=5.0,
        acc_bid_volume=5.0,
        highest_52_week_price=200.0,
        highest_52_week_date="2025-06-01",
        lowest_52_week_price=50.0,
        lowest_52_week_date="2025-01-01",
        market_state="ACTIVE",
        timestamp=1,
        stream_type=stream,
    )


def trade(code: str = "KRW-BTC", sid: int = 1, *, stream: str = REAL) -> Trade:
    return Trade(
        type="trade",
        code=code,
        trade_price=100.0,
        trade_volume=0.5,
        ask_bid="ASK",
        prev_closing_price=95.0,
        change="RISE",
        change_price=5.0,
        trade_date="2026-01-01",
        trade_time="00:00:00",
        trade_timestamp=sid,
        timestamp=sid,
        sequential_id=sid,
        best_ask_price=101.0,
        best_ask_size=1.0,
        best_bid_price=99.0,
        best_bid_size=1.0,
        stream_type=stream,
    )


def book(
    code: str = "KRW-BTC",
    rows: int = 30,
    level: float = 0.0,
    *,
    stream: str = REAL,
    stamp: int = 1,
) -> Orderbook:
    units = tuple(OrderbookUnit(100.0 + i, 99.0 - i, 1.0, 1.0) for i in range(rows))
    return Orderbook(
        type="orderbook",
        code=code,
        total_ask_size=float(rows),
        total_bid_size=float(rows),
        orderbook_units=units,
        timestamp=stamp,
        stream_type=stream,
        level=level,
    )


def candle(
    code: str = "KRW-BTC", unit: str = "candle.1m", price: float = 100.0, *, stream: str = REAL
) -> Candle:
    return Candle(
        type=unit,
        code=code,
        candle_date_time_utc="2026-01-01T00:00:00",
        candle_date_time_kst="2026-01-01T09:00:00",
        opening_price=100.0,
        high_price=100.0,
        low_price=100.0,
        trade_price=price,
        candle_acc_trade_volume=1.0,
        candle_acc_trade_price=100.0,
        timestamp=1,
        stream_type=stream,
    )


def my_order(code: str = "KRW-BTC", uuid: str = "o-1") -> MyOrder:
    zero = Decimal(0)
    return MyOrder(
        type="myOrder",
        code=code,
        uuid=uuid,
        ask_bid="BID",
        order_type="limit",
        state="wait",
        executed_volume=zero,
        trades_count=0,
        reserved_fee=zero,
        remaining_fee=zero,
        paid_fee=zero,
        locked=zero,
        executed_funds=zero,
        order_timestamp=1,
        timestamp=1,
        stream_type=REAL,
    )


def my_asset(uuid: str = "a-1") -> MyAsset:
    return MyAsset(
        type="myAsset",
        asset_uuid=uuid,
        assets=(AssetBalance("KRW", Decimal("1000.5"), Decimal(0)),),
        asset_timestamp=1,
        timestamp=1,
        stream_type=REAL,
    )


def key(
    data_type: str, code: str = "KRW-BTC", units: int | None = None, level: float | None = None
) -> StreamKey:
    return StreamKey(data_type, code, units, level)


def route(
    ticket: str,
    data_type: str,
    code: str,
    buffer: SubscriberBuffer,
    *,
    snapshot: bool = True,
    units: int | None = None,
    level: float | None = None,
) -> Route:
    return Route(ticket, key(data_type, code, units, level), buffer, snapshot=snapshot)


def drain(buffer: SubscriberBuffer) -> list[StreamItem]:
    """Everything waiting in ``buffer`` right now, up to its end (closed or failed)."""
    out: list[StreamItem] = []
    while True:
        try:
            out.append(buffer.receive_nowait())
        except (trio.WouldBlock, trio.EndOfChannel, SubscriptionFailedError):
            return out


# ---------------------------------------------------------------------------------------------


def test_factories_build_what_they_say() -> None:
    assert book(rows=5, level=10.0, stream=SNAP).orderbook_units[4].ask_price == 104.0
    assert len(book(rows=15).orderbook_units) == 15
    assert trade(sid=7, stream=SNAP).sequential_id == 7
    assert candle(unit="candle.5m").type == "candle.5m"
    assert my_asset().type == "myAsset"
    assert not hasattr(my_asset(), "code")
    assert my_order("KRW-ETH").code == "KRW-ETH"
    assert ticker(price=3.0).trade_price == 3.0


def test_drain_takes_all_and_stops_at_end() -> None:
    buffer = SubscriberBuffer("s")
    buffer.put_nowait(ticker())
    buffer.put_nowait(ticker(price=2.0))
    assert [m.trade_price for m in drain(buffer)] == [100.0, 2.0]  # type: ignore[union-attr]
    buffer.close()
    (ended,) = drain(buffer)  # only the event that says the stream ended
    assert isinstance(ended, Ended)
