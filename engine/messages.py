"""Typed models of what Upbit's WebSocket sends (UPBIT-PROTOCOL.md sections 3.3, 4.3 and 5).

Every model is a frozen, slotted attrs class whose attribute names are Upbit's DEFAULT field
names, so ``ticker.trade_price`` means what Upbit's documentation says it means, whichever wire
format (DEFAULT, SIMPLE or a ``*_LIST`` variant) the frame arrived in.

Value types:

- market prices and sizes are ``float`` (Upbit sends IEEE doubles; exponent forms such as
  ``1.16539E8`` are ordinary numbers once parsed);
- timestamps (ms since the epoch), ``sequential_id`` and ``trades_count`` are ``int``;
- money on the private streams (:class:`MyOrder`, :class:`AssetBalance`) is
  :class:`decimal.Decimal`, because balances carry more significant digits than a double holds;
- enumerated strings stay ``str``, since Upbit adds values over time; the ``Literal`` aliases
  below name the documented values for callers who want to narrow them.

An integral number Upbit wrote without a fraction (SIMPLE orderbook prices) stays an ``int`` in a
``float`` field, as PEP 484 allows; it compares and hashes like the float.

Field order follows Upbit's field tables, except that fields with a default (the ones Upbit may
omit) come last so the classes can be constructed positionally. Users normally receive these
objects from the engine; tests and the emulator construct them with keyword arguments. The
classes have no ``__weakref__`` slot, which lets the decoder build them faster (see
``engine._decode._maker``).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal, TypeAlias

import attrs

__all__ = (
    "AskBid",
    "AssetBalance",
    "Candle",
    "Change",
    "ErrorReply",
    "MarketState",
    "Message",
    "MyAsset",
    "MyOrder",
    "Orderbook",
    "OrderbookUnit",
    "OrderState",
    "OrderType",
    "Reply",
    "StatusUp",
    "StreamType",
    "SubscriptionEntry",
    "SubscriptionList",
    "Ticker",
    "Trade",
)

StreamType: TypeAlias = Literal["SNAPSHOT", "REALTIME"]
"""``stream_type``: the state at request time, or a later push."""
Change: TypeAlias = Literal["RISE", "EVEN", "FALL"]
"""``change``: direction against the previous close."""
AskBid: TypeAlias = Literal["ASK", "BID"]
"""``ask_bid``: ``ASK`` is a sell, ``BID`` a buy."""
MarketState: TypeAlias = Literal["PREVIEW", "ACTIVE", "DELISTED"]
"""``Ticker.market_state``."""
OrderType: TypeAlias = Literal["limit", "price", "market", "best"]
"""``MyOrder.order_type``: ``price`` is a market buy, ``market`` a market sell."""
OrderState: TypeAlias = Literal["wait", "watch", "trade", "done", "cancel", "prevented"]
"""``MyOrder.state``."""


@attrs.frozen(weakref_slot=False)
class Ticker:
    """Current price and 24-hour statistics of one pair (``type == "ticker"``).

    ``trade_date`` is ``yyyyMMdd`` and ``trade_time`` ``HHmmss`` (UTC); the 52-week dates are
    ``yyyy-MM-dd``. ``change_price``/``change_rate`` are absolute; the ``signed_*`` twins carry
    the sign. ``acc_*`` fields without ``_24h`` accumulate since 00:00 UTC.
    ``is_trading_suspended`` and ``market_warning`` are deprecated by Upbit and ``None`` once
    Upbit stops sending them.
    """

    type: str
    code: str
    opening_price: float
    high_price: float
    low_price: float
    trade_price: float
    prev_closing_price: float
    change: str
    change_price: float
    signed_change_price: float
    change_rate: float
    signed_change_rate: float
    trade_volume: float
    acc_trade_volume: float
    acc_trade_volume_24h: float
    acc_trade_price: float
    acc_trade_price_24h: float
    trade_date: str
    trade_time: str
    trade_timestamp: int
    ask_bid: str
    acc_ask_volume: float
    acc_bid_volume: float
    highest_52_week_price: float
    highest_52_week_date: str
    lowest_52_week_price: float
    lowest_52_week_date: str
    market_state: str
    timestamp: int
    stream_type: str
    is_trading_suspended: bool | None = None
    delisting_date: str | None = None
    market_warning: str | None = None


@attrs.frozen(weakref_slot=False)
class Trade:
    """One executed trade (``type == "trade"``).

    Unlike the ticker, ``trade_date`` is ``yyyy-MM-dd`` and ``trade_time`` ``HH:mm:ss`` (UTC).
    ``sequential_id`` is unique per trade but does not order trades.
    """

    type: str
    code: str
    trade_price: float
    trade_volume: float
    ask_bid: str
    prev_closing_price: float
    change: str
    change_price: float
    trade_date: str
    trade_time: str
    trade_timestamp: int
    timestamp: int
    sequential_id: int
    best_ask_price: float
    best_ask_size: float
    best_bid_price: float
    best_bid_size: float
    stream_type: str


@attrs.frozen(weakref_slot=False)
class OrderbookUnit:
    """One price level of both sides; a thin side is padded with zero price and size."""

    ask_price: float
    bid_price: float
    ask_size: float
    bid_size: float


@attrs.frozen(weakref_slot=False)
class Orderbook:
    """A full order book (``type == "orderbook"``): every frame replaces the previous one.

    ``orderbook_units`` is best-first (asks ascending, bids descending); its length is the
    requested unit count (1, 5, 15 or 30). ``level`` is the price grouping, 0 when ungrouped;
    ``code`` never carries the ``.N`` suffix of the request.
    """

    type: str
    code: str
    total_ask_size: float
    total_bid_size: float
    orderbook_units: tuple[OrderbookUnit, ...]
    timestamp: int
    stream_type: str
    level: float = 0.0


@attrs.frozen(weakref_slot=False)
class Candle:
    """The current candle of one period (``type`` is ``"candle.1s"`` ... ``"candle.240m"``).

    Upbit may send the same ``candle_date_time_utc`` several times; the last one wins.
    ``trade_price`` is the close so far.
    """

    type: str
    code: str
    candle_date_time_utc: str
    candle_date_time_kst: str
    opening_price: float
    high_price: float
    low_price: float
    trade_price: float
    candle_acc_trade_volume: float
    candle_acc_trade_price: float
    timestamp: int
    stream_type: str


@attrs.frozen(weakref_slot=False)
class MyOrder:
    """A change to one of the account's orders (``type == "myOrder"``, private endpoint).

    When ``state == "trade"`` the event is a fill: ``price``/``volume`` are the fill's, and
    ``trade_uuid``, ``trade_fee``, ``is_maker`` and ``trade_timestamp`` are set; otherwise those
    are usually ``None``. Money is :class:`~decimal.Decimal`.
    """

    type: str
    code: str
    uuid: str
    ask_bid: str
    order_type: str
    state: str
    executed_volume: Decimal
    trades_count: int
    reserved_fee: Decimal
    remaining_fee: Decimal
    paid_fee: Decimal
    locked: Decimal
    executed_funds: Decimal
    order_timestamp: int
    timestamp: int
    stream_type: str
    trade_uuid: str | None = None
    price: Decimal | None = None
    avg_price: Decimal | None = None
    volume: Decimal | None = None
    remaining_volume: Decimal | None = None
    time_in_force: str | None = None
    trade_fee: Decimal | None = None
    is_maker: bool | None = None
    identifier: str | None = None
    smp_type: str | None = None
    prevented_volume: Decimal | None = None
    prevented_locked: Decimal | None = None
    trade_timestamp: int | None = None


@attrs.frozen(weakref_slot=False)
class AssetBalance:
    """One currency of a :class:`MyAsset` event: ``balance`` is available, ``locked`` is held."""

    currency: str
    balance: Decimal
    locked: Decimal


@attrs.frozen(weakref_slot=False)
class MyAsset:
    """A balance change of the account (``type == "myAsset"``, private endpoint)."""

    type: str
    asset_uuid: str
    assets: tuple[AssetBalance, ...]
    asset_timestamp: int
    timestamp: int
    stream_type: str


@attrs.frozen(weakref_slot=False)
class StatusUp:
    """``{"status":"UP"}``: the periodic keepalive Upbit sends after a text ``PING``."""


@attrs.frozen(weakref_slot=False)
class ErrorReply:
    """``{"error":{"name":...,"message":...}}``. Upbit closes the connection soon after one.

    ``name`` is machine-readable (``WRONG_FORMAT``, ``NO_TICKET``, ``INVALID_PARAM``, ...);
    ``message`` is human text, usually Korean, and empty if Upbit left it out.
    """

    name: str
    message: str = ""


@attrs.frozen(weakref_slot=False)
class SubscriptionEntry:
    """One active subscription in a :class:`SubscriptionList`.

    ``codes`` is ``None`` when Upbit omits it (``myAsset``); ``level`` is ``None`` except for
    orderbook entries.
    """

    type: str
    codes: tuple[str, ...] | None = None
    level: float | None = None


@attrs.frozen(weakref_slot=False)
class SubscriptionList:
    """The reply to a ``LIST_SUBSCRIPTIONS`` request: the connection's current subscription set."""

    method: str
    result: tuple[SubscriptionEntry, ...]
    ticket: str


Message: TypeAlias = Ticker | Trade | Orderbook | Candle | MyOrder | MyAsset
"""A market-data or private-stream model: anything that carries a ``type``."""

Reply: TypeAlias = StatusUp | ErrorReply | SubscriptionList
"""A frame that is not stream data: keepalive status, error, or LIST_SUBSCRIPTIONS answer."""
