"""Typed models of what Upbit's WebSocket sends (docs/UPBIT.md, "Responses").

Every model is a frozen, slotted attrs class whose attribute names are Upbit's DEFAULT field
names, so ``ticker.trade_price`` means what Upbit's documentation says it means, whichever wire
format (DEFAULT, SIMPLE or a ``*_LIST`` variant) the frame arrived in.

The models are tolerant readers (docs/UPBIT.md, "Drift history"): only what routing and identity
need is required (``type`` and ``code``; a trade's ``sequential_id``). Every other field is
``None`` when Upbit left it out, sent ``null``, or sent a value of a type the model cannot hold;
the decoder counts each such field as *drift* (see :class:`engine.wire.protocol.DriftCounter`)
instead of rejecting the frame. A frame without ``stream_type`` is ``REALTIME``. Keys the models do
not know stay readable in ``extra`` (under the key the frame used), so a field Upbit adds can be
used before this library models it; ``extra`` takes no part in equality or hashing.

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

Required fields come first, then the optional ones in the order of Upbit's field tables, then
``extra``. Users normally receive these objects from the engine; tests and the emulator construct
them with keyword arguments. The classes have no ``__weakref__`` slot, which lets the decoder
build them faster (see ``engine.wire._decode_models._maker``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final, Literal, TypeAlias

import attrs

__all__ = (
    "AskBid",
    "AssetBalance",
    "Candle",
    "Change",
    "ErrorReply",
    "FrozenFields",
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
    "UnknownMessage",
)


class FrozenFields(Mapping[str, Any]):
    """A read-only mapping of a frame's keys to their JSON values (``extra``, ``fields``).

    Unlike ``types.MappingProxyType`` it pickles and deep-copies, so models holding one do.
    """

    __slots__ = ("_data",)

    def __init__(self, data: Mapping[str, Any] | None = None) -> None:
        self._data: dict[str, Any] = {} if data is None else dict(data)

    @classmethod
    def wrap(cls, data: dict[str, Any]) -> FrozenFields:
        """Wrap ``data`` without copying it (the caller gives it up)."""
        made = cls.__new__(cls)
        made._data = data
        return made

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return repr(self._data)

    def __reduce__(self) -> tuple[type[FrozenFields], tuple[dict[str, Any]]]:
        return (FrozenFields, (self._data,))


#: The ``extra`` of a frame that carried no unknown key (shared, read-only).
NO_EXTRA: Final[Mapping[str, Any]] = FrozenFields()


def _extra_repr(extra: Mapping[str, Any]) -> str:
    return repr(dict(extra))  # the plain dict's repr, whatever the mapping type


def _extra_field() -> Any:
    # Unknown keys are data, not identity: two frames that differ only there compare equal, and
    # their values (lists, objects) need not be hashable.
    return attrs.field(default=NO_EXTRA, eq=False, repr=_extra_repr)


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
    opening_price: float | None = None
    high_price: float | None = None
    low_price: float | None = None
    trade_price: float | None = None
    prev_closing_price: float | None = None
    change: str | None = None
    change_price: float | None = None
    signed_change_price: float | None = None
    change_rate: float | None = None
    signed_change_rate: float | None = None
    trade_volume: float | None = None
    acc_trade_volume: float | None = None
    acc_trade_volume_24h: float | None = None
    acc_trade_price: float | None = None
    acc_trade_price_24h: float | None = None
    trade_date: str | None = None
    trade_time: str | None = None
    trade_timestamp: int | None = None
    ask_bid: str | None = None
    acc_ask_volume: float | None = None
    acc_bid_volume: float | None = None
    highest_52_week_price: float | None = None
    highest_52_week_date: str | None = None
    lowest_52_week_price: float | None = None
    lowest_52_week_date: str | None = None
    market_state: str | None = None
    timestamp: int | None = None
    stream_type: str = "REALTIME"
    is_trading_suspended: bool | None = None
    delisting_date: str | None = None
    market_warning: str | None = None
    extra: Mapping[str, Any] = _extra_field()


@attrs.frozen(weakref_slot=False)
class Trade:
    """One executed trade (``type == "trade"``).

    Unlike the ticker, ``trade_date`` is ``yyyy-MM-dd`` and ``trade_time`` ``HH:mm:ss`` (UTC).
    ``sequential_id`` is unique per trade but does not order trades.
    """

    type: str
    code: str
    sequential_id: int
    trade_price: float | None = None
    trade_volume: float | None = None
    ask_bid: str | None = None
    prev_closing_price: float | None = None
    change: str | None = None
    change_price: float | None = None
    trade_date: str | None = None
    trade_time: str | None = None
    trade_timestamp: int | None = None
    timestamp: int | None = None
    best_ask_price: float | None = None
    best_ask_size: float | None = None
    best_bid_price: float | None = None
    best_bid_size: float | None = None
    stream_type: str = "REALTIME"
    extra: Mapping[str, Any] = _extra_field()


@attrs.frozen(weakref_slot=False)
class OrderbookUnit:
    """One price level of both sides; a thin side is padded with zero price and size."""

    ask_price: float | None
    bid_price: float | None
    ask_size: float | None
    bid_size: float | None


@attrs.frozen(weakref_slot=False)
class Orderbook:
    """A full order book (``type == "orderbook"``): every frame replaces the previous one.

    ``orderbook_units`` is best-first (asks ascending, bids descending); its length is what
    the server sent, which the engine trims to the rows a subscriber asked for (1, 5, 15 or
    30; a shallower frame is delivered as it came). ``level`` is the price grouping, 0 when
    ungrouped; ``code`` never carries the ``.N`` suffix of the request.
    """

    type: str
    code: str
    total_ask_size: float | None = None
    total_bid_size: float | None = None
    orderbook_units: tuple[OrderbookUnit, ...] = ()
    timestamp: int | None = None
    stream_type: str = "REALTIME"
    level: float = 0.0
    extra: Mapping[str, Any] = _extra_field()


@attrs.frozen(weakref_slot=False)
class Candle:
    """The current candle of one period (``type`` is ``"candle.1s"`` ... ``"candle.240m"``).

    Upbit may send the same ``candle_date_time_utc`` several times; the last one wins.
    ``trade_price`` is the close so far.
    """

    type: str
    code: str
    candle_date_time_utc: str | None = None
    candle_date_time_kst: str | None = None
    opening_price: float | None = None
    high_price: float | None = None
    low_price: float | None = None
    trade_price: float | None = None
    candle_acc_trade_volume: float | None = None
    candle_acc_trade_price: float | None = None
    timestamp: int | None = None
    stream_type: str = "REALTIME"
    extra: Mapping[str, Any] = _extra_field()

    @property
    def period_start_ms(self) -> int | None:
        """The period start, ``candle_date_time_utc`` as epoch ms (a time without an offset is
        UTC, as Upbit sends it); ``None`` if absent or unreadable."""
        text = self.candle_date_time_utc
        if text is None:
            return None
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return int(moment.timestamp() * 1000)


@attrs.frozen(weakref_slot=False)
class MyOrder:
    """A change to one of the account's orders (``type == "myOrder"``, private endpoint).

    When ``state == "trade"`` the event is a fill: ``price``/``volume`` are the fill's, and
    ``trade_uuid``, ``trade_fee``, ``is_maker`` and ``trade_timestamp`` are set; otherwise those
    are usually ``None``. Money is :class:`~decimal.Decimal`.
    """

    type: str
    code: str
    uuid: str | None = None
    ask_bid: str | None = None
    order_type: str | None = None
    state: str | None = None
    executed_volume: Decimal | None = None
    trades_count: int | None = None
    reserved_fee: Decimal | None = None
    remaining_fee: Decimal | None = None
    paid_fee: Decimal | None = None
    locked: Decimal | None = None
    executed_funds: Decimal | None = None
    order_timestamp: int | None = None
    timestamp: int | None = None
    stream_type: str = "REALTIME"
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
    extra: Mapping[str, Any] = _extra_field()


@attrs.frozen(weakref_slot=False)
class AssetBalance:
    """One currency of a :class:`MyAsset` event: ``balance`` is available, ``locked`` is held."""

    currency: str | None = None
    balance: Decimal | None = None
    locked: Decimal | None = None


@attrs.frozen(weakref_slot=False)
class MyAsset:
    """A balance change of the account (``type == "myAsset"``, private endpoint)."""

    type: str
    asset_uuid: str | None = None
    assets: tuple[AssetBalance, ...] = ()
    asset_timestamp: int | None = None
    timestamp: int | None = None
    stream_type: str = "REALTIME"
    extra: Mapping[str, Any] = _extra_field()


@attrs.frozen(weakref_slot=False)
class UnknownMessage:
    """A data frame of a type this library does not model (``announcement``, ``indicator``...).

    ``fields`` holds the whole object as received (DEFAULT or SIMPLE keys); ``code`` is its
    ``code``/``cd`` when that is a string. The engine never routes these to subscribers (no
    subscription can ask for an unmodelled type) but counts them; :func:`engine.decode_frame`
    returns them so that recorded frames of any type can be read.
    """

    type: str
    code: str | None
    stream_type: str
    fields: Mapping[str, Any] = attrs.field(eq=False, repr=_extra_repr)


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
