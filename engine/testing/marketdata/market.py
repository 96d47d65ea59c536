"""Deterministic, seeded market data for the Upbit emulator (sans-IO: no Trio, no sockets).

``default_catalog`` lists about 860 realistic pairs; ``MarketSimulator`` drives every pair with
Poisson arrivals from one ``random.Random(seed)`` and renders ticker, trade, orderbook and candle
messages as DEFAULT-keyed dicts (``to_simple`` re-keys them). The same seed, catalog and call
sequence always give the same events and frames; rendering never draws random numbers, so which
frames are rendered cannot change what happens next.

Rates: a pair's rate is trades per second (``Listing.activity`` by default); the same number of
order-book-only changes arrives on top, so a pair emits about twice its rate in events.
Candles are marked for a push at most once per ``candle_interval_ms`` per pair, like the real
exchange (docs/UPBIT.md, Field tables, candle); ticker and trade change with every trade, the
orderbook with every event. The design is in docs/DESIGN.md, "Emulator market data".
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from types import MappingProxyType

import attrs

from engine.testing.marketdata import render as _md_render
from engine.testing.marketdata.catalog import CAUTION_FLAGS, catalog_rows
from engine.testing.marketdata.ladder import grid_of
from engine.testing.marketdata.pair import CANDLE_UNITS, MAX_DEPTH, Book, Candle, Pair, Tick
from engine.testing.marketdata.private import Money, my_asset, my_order

__all__ = (
    "MAJOR_MARKETS",
    "Listing",
    "MarketEvent",
    "MarketSimulator",
    "default_catalog",
    "make_my_asset",
    "make_my_order",
    "to_simple",
)

#: Busy pairs of every quote market, always in ``default_catalog``: a catalog of just these
#: (``EmulatorConfig(markets=MAJOR_MARKETS)``) starts in milliseconds yet covers KRW pairs with
#: orderbook levels, BTC and USDT quotes.
MAJOR_MARKETS: tuple[str, ...] = (
    "KRW-BTC",
    "KRW-ETH",
    "KRW-XRP",
    "KRW-SOL",
    "KRW-DOGE",
    "BTC-ETH",
    "BTC-XRP",
    "USDT-BTC",
    "USDT-ETH",
)

_TRADE_KINDS = frozenset({"trade", "ticker", "orderbook"})
_TRADE_CANDLE_KINDS = frozenset({"trade", "ticker", "orderbook", "candle"})
_BOOK_KINDS = frozenset({"orderbook"})
_CANDLE_INDEX = {data_type: i for i, (data_type, _) in enumerate(CANDLE_UNITS)}
_MAX_LISTINGS = 10_000  # initial sequential ids stay unique below this many pairs
_DEFAULT_START_MS = 1_790_000_000_000


def _freeze_caution(value: Mapping[str, bool]) -> Mapping[str, bool]:
    missing = [flag for flag in CAUTION_FLAGS if flag not in value]
    if missing:
        raise ValueError(f"caution must carry all five documented flags; missing {missing}")
    return MappingProxyType({flag: bool(value[flag]) for flag in CAUTION_FLAGS})


def _levels_tuple(value: Iterable[float]) -> tuple[float, ...]:
    return tuple(float(level) for level in value)


def _check_levels(instance: Listing, attribute: attrs.Attribute[object], value: object) -> None:
    del attribute
    assert isinstance(value, tuple)
    if not value or value[0] != 0:
        raise ValueError(f"{instance.market}: supported_levels must start with 0, got {value!r}")


@attrs.frozen
class Listing:
    """One listed pair, with what ``/v1/market/all`` and ``/v1/orderbook/instruments`` report.

    ``reference_price`` (an extension of the contract) is the simulator's anchor price; 0 means
    "derive one from the tick size" (1,000 ticks).
    """

    market: str
    korean_name: str
    english_name: str
    warning: bool
    caution: Mapping[str, bool] = attrs.field(converter=_freeze_caution, hash=False)
    tick_size: float
    supported_levels: tuple[float, ...] = attrs.field(
        converter=_levels_tuple, validator=_check_levels
    )
    activity: float
    reference_price: float = 0.0


@attrs.frozen
class MarketEvent:
    """One change of one pair. ``kinds``: which of trade/ticker/orderbook/candle changed."""

    code: str
    at: float
    timestamp_ms: int
    kinds: frozenset[str]
    # What the event produced, kept for render_event; not part of equality.
    _state: tuple[Pair, Book, Tick, tuple[Candle, ...]] | None = attrs.field(
        default=None, eq=False, repr=False
    )


def default_catalog(seed: int = 0) -> tuple[Listing, ...]:
    """About 290 KRW, 330 BTC and 240 USDT pairs (like the real exchange), stable for a seed.

    Always includes KRW-BTC, KRW-ETH, KRW-XRP, KRW-SOL, KRW-DOGE, BTC-ETH, BTC-XRP, USDT-BTC and
    USDT-ETH. KRW ticks follow the exchange's KRW price-unit ladder; a few percent of the pairs
    carry warning or caution flags; a handful of majors trade several times a second while the
    long tail trades about once a minute or less.
    """
    return tuple(
        Listing(
            market=row.market,
            korean_name=row.korean_name,
            english_name=row.english_name,
            warning=row.warning,
            caution=row.caution,
            tick_size=row.tick_size,
            supported_levels=row.supported_levels,
            activity=row.activity,
            reference_price=row.reference_price,
        )
        for row in catalog_rows(seed)
    )


class MarketSimulator:
    """Seeded simulation of every pair of ``catalog``; see the module docstring.

    ``rate_scale`` multiplies every pair's ``activity``; ``rates`` sets absolute trades per second
    for some codes (0 silences a pair). ``start_ms`` is the epoch ms of simulator time 0.
    ``candle_interval_ms`` is the shortest gap between two candle pushes of one pair (0: every
    trade).
    """

    def __init__(
        self,
        catalog: Sequence[Listing],
        *,
        seed: int = 0,
        rate_scale: float = 1.0,
        rates: Mapping[str, float] | None = None,
        start_ms: int = _DEFAULT_START_MS,
        candle_interval_ms: int = 1_000,
    ) -> None:
        if len(catalog) > _MAX_LISTINGS:
            raise ValueError(f"at most {_MAX_LISTINGS} listings are supported, got {len(catalog)}")
        if rate_scale < 0:
            raise ValueError(f"rate_scale must be >= 0, got {rate_scale}")
        if candle_interval_ms < 0:
            raise ValueError(f"candle_interval_ms must be >= 0, got {candle_interval_ms}")
        self._rng = random.Random(seed)
        self._start_ms = start_ms
        self._candle_gap = candle_interval_ms
        self._now = 0.0
        self._catalog = tuple(catalog)
        self._pairs: list[Pair] = []
        self._by_code: dict[str, Pair] = {}
        self._levels: list[dict[float, tuple[int, int | float]]] = []
        self._rates: list[float] = []
        self._generation: list[int] = []
        self._heap: list[tuple[float, int, int]] = []
        for index, listing in enumerate(self._catalog):
            if listing.market in self._by_code:
                raise ValueError(f"{listing.market} is listed twice in the catalog")
            decimals, tick_units = grid_of(listing.tick_size)
            scale = 10**decimals
            reference = listing.reference_price or listing.tick_size * 1_000
            pair = Pair(
                index=index,
                code=listing.market,
                decimals=decimals,
                tick_units=tick_units,
                reference_units=round(Decimal(repr(float(reference))) * scale),
                activity=max(listing.activity, 0.0),
                warning=listing.warning,
                rng=self._rng,
                start_ms=start_ms,
            )
            self._pairs.append(pair)
            self._by_code[listing.market] = pair
            self._levels.append(self._level_table(listing, decimals, tick_units))
            self._rates.append(0.0)
            self._generation.append(0)
        # Live trades get ids above every seeded last trade's.
        self._next_sid = 1 + max((p.tick.sequential_id for p in self._pairs), default=0)
        overrides = dict(rates or {})
        unknown = sorted(set(overrides) - set(self._by_code))
        if unknown:
            raise ValueError(f"rates names codes that are not in the catalog: {unknown}")
        for index, listing in enumerate(self._catalog):
            rate = overrides.get(listing.market, listing.activity * rate_scale)
            self._schedule(index, rate)

    @staticmethod
    def _level_table(
        listing: Listing, decimals: int, tick_units: int
    ) -> dict[float, tuple[int, int | float]]:
        table: dict[float, tuple[int, int | float]] = {}
        for level in listing.supported_levels:
            if level == 0:
                continue
            units = round(Decimal(repr(float(level))).scaleb(decimals))
            if units <= 0 or units % tick_units:
                raise ValueError(
                    f"{listing.market}: level {level} is not a positive multiple of the tick "
                    f"size {listing.tick_size}"
                )
            value: int | float = int(level) if float(level).is_integer() else float(level)
            table[float(level)] = (units, value)
        return table

    def _schedule(self, index: int, rate: float) -> None:
        if rate < 0:
            raise ValueError(f"a rate must be >= 0 trades per second, got {rate}")
        self._rates[index] = rate
        self._generation[index] += 1
        if rate > 0:
            self._pairs[index].set_pace(rate)
            # Trades and book-only changes are two Poisson streams of the same rate, merged.
            at = self._now + self._rng.expovariate(2.0 * rate)
            heapq.heappush(self._heap, (at, index, self._generation[index]))

    # -- public API ----------------------------------------------------------------------------

    @property
    def catalog(self) -> tuple[Listing, ...]:
        """The listings this simulator runs, in catalog order."""
        return self._catalog

    @property
    def now(self) -> float:
        """Simulator seconds reached by the last ``events_until``."""
        return self._now

    @property
    def start_ms(self) -> int:
        """Epoch ms (UTC) of simulator time 0: an event at ``t`` seconds has
        ``timestamp_ms == start_ms + int(t * 1000)``."""
        return self._start_ms

    def rate(self, code: str) -> float:
        """Current trades per second of ``code``."""
        return self._rates[self._pair(code).index]

    def set_rate(self, code: str, per_second: float) -> None:
        """Set ``code``'s trades per second from now on (0 silences the pair)."""
        self._schedule(self._pair(code).index, per_second)

    def _pair(self, code: str) -> Pair:
        pair = self._by_code.get(code)
        if pair is None:
            raise ValueError(f"{code!r} is not in the simulator's catalog")
        return pair

    def events_until(self, t: float) -> list[MarketEvent]:
        """Advance the simulation to simulator time ``t`` (seconds); the events, in order."""
        if t < self._now:
            raise ValueError(f"time cannot go backwards: at {self._now}, asked for {t}")
        heap, rng, pairs, generation = self._heap, self._rng, self._pairs, self._generation
        start_ms, candle_gap = self._start_ms, self._candle_gap
        events: list[MarketEvent] = []
        append = events.append
        while heap and heap[0][0] <= t:
            at, index, gen = heapq.heappop(heap)
            if gen != generation[index]:
                continue  # superseded by set_rate
            self._now = at
            pair = pairs[index]
            ms = start_ms + int(at * 1000.0)
            if rng.random() < 0.5:
                due = pair.trade(rng, ms, self._next_sid, candle_gap)
                self._next_sid = pair.tick.sequential_id + 1
                kinds = _TRADE_CANDLE_KINDS if due else _TRADE_KINDS
            else:
                pair.quote_change(rng, ms)
                kinds = _BOOK_KINDS
            heapq.heappush(heap, (at + rng.expovariate(2.0 * self._rates[index]), index, gen))
            append(
                MarketEvent(pair.code, at, ms, kinds, (pair, pair.book, pair.tick, pair.candles))
            )
        self._now = t
        return events

    def render(
        self,
        data_type: str,
        code: str,
        stream_type: str,
        *,
        units: int = 30,
        level: float = 0,
    ) -> dict[str, object] | None:
        """The current state of ``code`` as one DEFAULT-keyed ``data_type`` message.

        ticker; trade (the last trade); orderbook (``units`` rows, grouped by ``level`` when it
        is nonzero: None when the pair does not support that level); candle.<unit> (the latest
        candle). None if the code is unknown.
        """
        pair = self._by_code.get(code)
        if pair is None:
            return None
        return self._render(
            pair, pair.book, pair.tick, pair.candles, data_type, stream_type, units, level
        )

    def render_event(
        self, event: MarketEvent, data_type: str, *, units: int = 30, level: float = 0
    ) -> dict[str, object] | None:
        """The REALTIME message ``event`` produces for ``data_type``, or None if that family did
        not change in this event (candles: only when the event was due for a candle push)."""
        state = event._state
        if state is None:
            raise ValueError("render_event needs an event returned by events_until")
        family = "candle" if data_type.startswith("candle.") else data_type
        if family not in event.kinds:
            if data_type in _FAMILIES:
                return None
            raise ValueError(_unknown_type(data_type))
        pair, book, tick, candles = state
        return self._render(pair, book, tick, candles, data_type, "REALTIME", units, level)

    def _render(
        self,
        pair: Pair,
        book: Book,
        tick: Tick,
        candles: tuple[Candle, ...],
        data_type: str,
        stream_type: str,
        units: int,
        level: float,
    ) -> dict[str, object] | None:
        if data_type == "orderbook":
            if not 1 <= units <= MAX_DEPTH:
                raise ValueError(f"units must be between 1 and {MAX_DEPTH}, got {units}")
            if level:
                spec = self._levels[pair.index].get(float(level))
                if spec is None:
                    return None  # an unsupported level: Upbit sends no data
                return _md_render.orderbook(pair, book, stream_type, units, spec)
            return _md_render.orderbook(pair, book, stream_type, units, (0, 0))
        if data_type == "ticker":
            return _md_render.ticker(pair, tick, stream_type)
        if data_type == "trade":
            return _md_render.trade(pair, tick, stream_type)
        candle_index = _CANDLE_INDEX.get(data_type)
        if candle_index is None:
            raise ValueError(_unknown_type(data_type))
        return _md_render.candle(pair, candles[candle_index], data_type, stream_type)


_FAMILIES = frozenset({"ticker", "trade", "orderbook", *_CANDLE_INDEX})


def _unknown_type(data_type: str) -> str:
    return (
        f"unknown market data type {data_type!r}: use ticker, trade, orderbook or one of "
        f"{', '.join(_CANDLE_INDEX)}"
    )


def to_simple(message: dict[str, object]) -> dict[str, object]:
    """DEFAULT-keyed message -> SIMPLE keys (engine.wire.keys tables, nested units/assets too)."""
    return _md_render.to_simple(message)


def make_my_order(
    *,
    code: str,
    state: str = "trade",
    ask_bid: str = "BID",
    order_type: str = "limit",
    price: Money = "10000",
    volume: Money = "1",
    executed_volume: Money | None = None,
    remaining_volume: Money | None = None,
    trades_count: int | None = None,
    fee_rate: Money = "0.0005",
    is_maker: bool | None = None,
    time_in_force: str | None = None,
    smp_type: str | None = None,
    identifier: str | None = None,
    prevented_volume: Money | None = None,
    uuid: str | None = None,
    trade_uuid: str | None = None,
    timestamp_ms: int = _DEFAULT_START_MS,
    order_timestamp_ms: int | None = None,
    trade_timestamp_ms: int | None = None,
    seed: int = 0,
    stream_type: str = "REALTIME",
) -> dict[str, object]:
    """A complete DEFAULT-keyed ``myOrder`` message with every documented field.

    ``price``/``volume`` are the order's, or the fill's when ``state`` is ``trade`` (as the doc
    says). Unset amounts follow from the state: trade/done fill the whole volume, wait/watch fill
    nothing, cancel leaves the rest unfilled, prevented moves it to ``prevented_volume``. Fees use
    ``fee_rate`` and are reserved on BID orders. ``trade_uuid``, ``trade_fee``, ``is_maker`` and
    ``trade_timestamp`` are null unless ``state`` is ``trade``; ``time_in_force``, ``smp_type`` and
    ``identifier`` are null unless given. UUIDs come from ``seed``. Amounts given as ``str`` or
    ``Decimal`` stay exact on the wire (see ``engine.testing.marketdata.private``).
    """
    return my_order(
        code=code,
        state=state,
        ask_bid=ask_bid,
        order_type=order_type,
        price=price,
        volume=volume,
        executed_volume=executed_volume,
        remaining_volume=remaining_volume,
        trades_count=trades_count,
        fee_rate=fee_rate,
        is_maker=is_maker,
        time_in_force=time_in_force,
        smp_type=smp_type,
        identifier=identifier,
        prevented_volume=prevented_volume,
        uuid=uuid,
        trade_uuid=trade_uuid,
        timestamp_ms=timestamp_ms,
        order_timestamp_ms=order_timestamp_ms,
        trade_timestamp_ms=trade_timestamp_ms,
        seed=seed,
        stream_type=stream_type,
    )


def make_my_asset(
    *,
    assets: Sequence[tuple[str, Money, Money]],
    asset_uuid: str | None = None,
    asset_timestamp_ms: int | None = None,
    timestamp_ms: int = _DEFAULT_START_MS,
    seed: int = 0,
    stream_type: str = "REALTIME",
) -> dict[str, object]:
    """A complete DEFAULT-keyed ``myAsset`` message: ``assets`` are (currency, balance, locked).

    Balances given as ``str``/``Decimal`` stay exact on the wire even past float precision.
    """
    return my_asset(
        assets=assets,
        asset_uuid=asset_uuid,
        asset_timestamp_ms=asset_timestamp_ms,
        timestamp_ms=timestamp_ms,
        seed=seed,
        stream_type=stream_type,
    )
