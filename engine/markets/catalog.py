"""The market catalog as immutable values, parsed from Upbit's REST JSON (sans-IO).

Two REST answers feed it (docs/UPBIT.md, Market codes):

- ``GET /v1/market/all?is_details=true``: a JSON array of
  ``{"market", "korean_name", "english_name", "market_event": {"warning", "caution": {...}}}``.
  Parsing is strict about the shape (an array of objects, each with a well-formed ``market``)
  because a catalog we misread would make every later validation wrong; it is lenient about
  optional parts (names and ``market_event`` may be missing; unknown caution keys are ignored).
- ``GET /v1/orderbook/instruments?markets=...``: assumed to be a JSON array of
  ``{"market", "quote_currency", "tick_size", "supported_levels": [...]}`` where ``tick_size``
  and each level may be a JSON number or a numeric string (a third-party probe saw
  ``"tick_size": "1000"``).
  This endpoint only refines ``level`` checks, so parsing it is lenient: rows that do not fit are
  skipped and reported, never fatal.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator, Mapping
from types import MappingProxyType

import attrs

from engine.errors import CatalogUnavailableError

__all__ = (
    "CAUTION_KEYS",
    "CODE_PATTERN",
    "KNOWN_QUOTES",
    "CautionFlags",
    "Market",
    "MarketCatalog",
    "OrderbookInstrument",
    "parse_orderbook_instruments",
    "split_code",
)

#: A pair code: quote first, upper case, ``[A-Z0-9]+`` on both sides of one hyphen.
CODE_PATTERN = re.compile(r"([A-Z0-9]+)-([A-Z0-9]+)")

#: The quote markets of Upbit Korea, in the order the library prefers them.
KNOWN_QUOTES: tuple[str, ...] = ("KRW", "BTC", "USDT")

#: The documented keys of ``market_event.caution`` (since 2026-01-29 true at any alert level).
CAUTION_KEYS: tuple[str, ...] = (
    "PRICE_FLUCTUATIONS",
    "TRADING_VOLUME_SOARING",
    "DEPOSIT_AMOUNT_SOARING",
    "GLOBAL_PRICE_DIFFERENCES",
    "CONCENTRATION_OF_SMALL_ACCOUNTS",
)

# Stop listing parse problems after this many; the first few are enough to see what is wrong.
_MAX_REPORTED = 5


def split_code(code: str) -> tuple[str, str] | None:
    """``(quote, base)`` for a well-formed code such as ``"KRW-BTC"``, else ``None``."""
    match = CODE_PATTERN.fullmatch(code)
    if match is None:
        return None
    return match[1], match[2]


def _check_code(_instance: object, attribute: attrs.Attribute[str], value: str) -> None:
    if not isinstance(value, str) or CODE_PATTERN.fullmatch(value) is None:
        raise ValueError(
            f"{attribute.name} must be an upper-case 'QUOTE-BASE' code such as 'KRW-BTC', "
            f"got {value!r}"
        )


@attrs.frozen
class CautionFlags:
    """The five ``market_event.caution`` flags of a pair (a missing flag counts as ``False``)."""

    #: 가격 급등락: sharp price moves.
    price_fluctuations: bool = False
    #: 거래량 급등: trading volume surge.
    trading_volume_soaring: bool = False
    #: 입금량 급등: deposit volume surge.
    deposit_amount_soaring: bool = False
    #: 가격 차이: the Upbit price differs from overseas prices.
    global_price_differences: bool = False
    #: 소수계정 거래 집중: trading concentrated in a few accounts.
    concentration_of_small_accounts: bool = False

    @property
    def any_raised(self) -> bool:
        """Whether any caution flag is set."""
        return any(self.as_mapping().values())

    def as_mapping(self) -> Mapping[str, bool]:
        """The flags keyed by Upbit's own names (``"PRICE_FLUCTUATIONS"``, ...)."""
        return MappingProxyType(
            {key: getattr(self, key.lower()) for key in CAUTION_KEYS},
        )

    @classmethod
    def from_json(cls, obj: object) -> CautionFlags:
        """Parse a ``caution`` object (``None``: no flags). Raises ``ValueError`` on a bad shape."""
        if obj is None:
            return cls()
        if not isinstance(obj, dict):
            raise ValueError(f"'caution' must be an object, got {type(obj).__name__}")
        flags: dict[str, bool] = {}
        for key in CAUTION_KEYS:
            value = obj.get(key)
            if value is None:
                continue
            if not isinstance(value, bool):
                raise ValueError(f"caution {key} must be true or false, got {value!r}")
            flags[key.lower()] = value
        # Unknown keys are ignored on purpose: Upbit may add flags without warning.
        return cls(**flags)


@attrs.frozen
class Market:
    """One listed pair from ``GET /v1/market/all``."""

    #: The pair code, quote first: ``"KRW-BTC"``. Also the WebSocket ``code``.
    market: str = attrs.field(validator=_check_code)
    korean_name: str = ""
    english_name: str = ""
    #: ``market_event.warning``: an investment-warning (유의) pair.
    warning: bool = False
    caution: CautionFlags = CautionFlags()

    @property
    def quote(self) -> str:
        """The quote currency (``"KRW"`` in ``"KRW-BTC"``)."""
        return self.market.partition("-")[0]

    @property
    def base(self) -> str:
        """The base asset (``"BTC"`` in ``"KRW-BTC"``)."""
        return self.market.partition("-")[2]


def _level_key(level: float) -> float:
    # Levels such as 0.0001 arrive as strings or numbers; compare them after rounding away
    # binary noise so "0.1" and 0.1 + 1e-17 are the same level.
    return round(level, 12)


@attrs.frozen
class OrderbookInstrument:
    """Orderbook policy of one pair, from ``GET /v1/orderbook/instruments``."""

    market: str = attrs.field(validator=_check_code)
    quote_currency: str
    #: The price step, or ``None`` if Upbit did not say.
    tick_size: float | None
    #: Accepted ``level`` values (price-grouping units), ascending; ``0`` is the plain book.
    supported_levels: tuple[float, ...]

    def supports_level(self, level: float) -> bool:
        """Whether ``level`` is one of :attr:`supported_levels`."""
        wanted = _level_key(level)
        return any(_level_key(known) == wanted for known in self.supported_levels)

    @classmethod
    def from_json(cls, row: object) -> OrderbookInstrument:
        """Parse one row of the instruments answer. Raises ``ValueError`` saying what is wrong."""
        if not isinstance(row, dict):
            raise ValueError(f"expected an object, got {type(row).__name__}")
        market = row.get("market")
        if not isinstance(market, str) or split_code(market) is None:
            raise ValueError(f"'market' must be a code such as 'KRW-BTC', got {market!r}")
        quote = row.get("quote_currency")
        if quote is None:
            quote = market.partition("-")[0]
        elif not isinstance(quote, str):
            raise ValueError(f"{market}: 'quote_currency' must be a string, got {quote!r}")
        raw_tick = row.get("tick_size")
        tick = None if raw_tick is None else _number(raw_tick, f"{market}: tick_size")
        raw_levels = row.get("supported_levels")
        if not isinstance(raw_levels, list) or not raw_levels:
            raise ValueError(f"{market}: 'supported_levels' must be a non-empty array")
        levels = sorted({_number(value, f"{market}: level") for value in raw_levels})
        return cls(market=market, quote_currency=quote, tick_size=tick, supported_levels=(*levels,))


def _number(value: object, what: str) -> float:
    """A finite, non-negative number from a JSON number or numeric string."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"{what} must be a number, got {value!r}")
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"{what} must be a number, got {value!r}") from None
    if not math.isfinite(number) or number < 0:
        raise ValueError(f"{what} must be a finite number >= 0, got {value!r}")
    return number


def parse_orderbook_instruments(
    obj: object,
) -> tuple[tuple[OrderbookInstrument, ...], tuple[str, ...]]:
    """Parse an instruments answer into ``(instruments, problems)``.

    Rows that do not fit the assumed shape are skipped and described in ``problems``. Only an
    answer that is not an array at all raises :class:`CatalogUnavailableError`.
    """
    if not isinstance(obj, list):
        raise CatalogUnavailableError(
            f"orderbook instruments answer must be a JSON array, got {_describe(obj)}"
        )
    instruments: list[OrderbookInstrument] = []
    problems: list[str] = []
    for index, row in enumerate(obj):
        try:
            instruments.append(OrderbookInstrument.from_json(row))
        except ValueError as exc:
            problems.append(f"row {index}: {exc}")
    return tuple(instruments), tuple(problems)


def _describe(obj: object) -> str:
    if isinstance(obj, dict) and isinstance(obj.get("error"), dict):
        error = obj["error"]
        return (
            f"an Upbit error object (name={error.get('name')!r}, message={error.get('message')!r})"
        )
    return f"a JSON {type(obj).__name__}"


def _market_from_json(row: object) -> Market:
    if not isinstance(row, dict):
        raise ValueError(f"expected an object, got {type(row).__name__}")
    code = row.get("market")
    if not isinstance(code, str):
        raise ValueError(f"'market' must be a string, got {code!r}")
    if split_code(code) is None:
        raise ValueError(f"'market' {code!r} is not an upper-case 'QUOTE-BASE' code")
    names: dict[str, str] = {}
    for key in ("korean_name", "english_name"):
        value = row.get(key, "")
        if value is None:
            value = ""
        if not isinstance(value, str):
            raise ValueError(f"{code}: {key!r} must be a string, got {value!r}")
        names[key] = value
    event = row.get("market_event")
    warning = False
    caution = CautionFlags()
    if event is not None:
        if not isinstance(event, dict):
            raise ValueError(f"{code}: 'market_event' must be an object, got {event!r}")
        raw_warning = event.get("warning", False)
        if raw_warning is None:
            raw_warning = False
        if not isinstance(raw_warning, bool):
            raise ValueError(f"{code}: market_event.warning must be true or false")
        warning = raw_warning
        try:
            caution = CautionFlags.from_json(event.get("caution"))
        except ValueError as exc:
            raise ValueError(f"{code}: {exc}") from None
    return Market(market=code, warning=warning, caution=caution, **names)


def _index_markets(markets: Iterable[Market] | Mapping[str, Market]) -> Mapping[str, Market]:
    values = markets.values() if isinstance(markets, Mapping) else markets
    table: dict[str, Market] = {}
    for market in values:
        # Upbit has never listed a pair twice; if it does, the first row wins.
        table.setdefault(market.market, market)
    return MappingProxyType(table)


def _index_instruments(
    instruments: Iterable[OrderbookInstrument] | Mapping[str, OrderbookInstrument],
) -> Mapping[str, OrderbookInstrument]:
    values = instruments.values() if isinstance(instruments, Mapping) else instruments
    return MappingProxyType({instrument.market: instrument for instrument in values})


@attrs.frozen
class MarketCatalog:
    """The listed pairs at one moment, optionally with each pair's orderbook policy.

    Immutable: a refresh builds a new catalog. ``code in catalog`` tests listing;
    iteration yields codes in Upbit's order.
    """

    #: Listed pairs by code.
    markets: Mapping[str, Market] = attrs.field(converter=_index_markets)
    #: Orderbook policies by code; usually only KRW pairs (the only ones with levels).
    instruments: Mapping[str, OrderbookInstrument] = attrs.field(
        default=(), converter=_index_instruments
    )
    #: Why instruments are missing or partial (``None`` when complete or not requested).
    #: Without instruments, ``level`` is only checked for being on a KRW pair.
    instruments_error: str | None = None

    @classmethod
    def from_json(
        cls,
        obj: object,
        *,
        instruments: object = None,
        instruments_error: str | None = None,
    ) -> MarketCatalog:
        """Build a catalog from the parsed JSON of ``GET /v1/market/all?is_details=true``.

        ``instruments`` is the parsed JSON of ``GET /v1/orderbook/instruments`` (optional; rows
        that do not fit are skipped and noted in :attr:`instruments_error`). Raises
        :class:`CatalogUnavailableError` saying what is wrong when the catalog is malformed.
        """
        if not isinstance(obj, list):
            raise CatalogUnavailableError(
                f"malformed market catalog: expected a JSON array of markets, got {_describe(obj)}"
            )
        if not obj:
            raise CatalogUnavailableError(
                "malformed market catalog: the array is empty (Upbit always lists pairs)"
            )
        markets: list[Market] = []
        problems: list[str] = []
        for index, row in enumerate(obj):
            try:
                markets.append(_market_from_json(row))
            except ValueError as exc:
                problems.append(f"item {index}: {exc}")
        if problems:
            shown = "; ".join(problems[:_MAX_REPORTED])
            more = len(problems) - _MAX_REPORTED
            if more > 0:
                shown += f"; and {more} more"
            raise CatalogUnavailableError(
                f"malformed market catalog ({len(problems)} of {len(obj)} items): {shown}"
            )
        catalog = cls(markets=markets, instruments_error=instruments_error)
        if instruments is None:
            return catalog
        try:
            parsed, skipped = parse_orderbook_instruments(instruments)
        except CatalogUnavailableError as exc:
            return attrs.evolve(catalog, instruments_error=str(exc))
        note = instruments_error
        if skipped:
            note = _join_notes(note, f"skipped {len(skipped)} instrument rows: {skipped[0]}")
        return catalog.with_instruments(parsed, error=note)

    def with_instruments(
        self, instruments: Iterable[OrderbookInstrument], *, error: str | None = None
    ) -> MarketCatalog:
        """A copy with these orderbook policies (replacing any held) and ``instruments_error``."""
        return attrs.evolve(self, instruments=instruments, instruments_error=error)

    # Lookups --------------------------------------------------------------------------------

    def __contains__(self, code: object) -> bool:
        return isinstance(code, str) and code in self.markets

    def __iter__(self) -> Iterator[str]:
        return iter(self.markets)

    def __len__(self) -> int:
        return len(self.markets)

    def get(self, code: str) -> Market | None:
        """The listed :class:`Market` for ``code``, or ``None``."""
        return self.markets.get(code)

    def codes(self, quote: str | None = None) -> tuple[str, ...]:
        """Every listed code, or those of one quote market (``codes(quote="KRW")``)."""
        if quote is None:
            return tuple(self.markets)
        return tuple(m.market for m in self.markets.values() if m.quote == quote)

    @property
    def quotes(self) -> tuple[str, ...]:
        """The quote markets present: known ones first (KRW, BTC, USDT), then any others sorted."""
        present = {market.quote for market in self.markets.values()}
        known = [quote for quote in KNOWN_QUOTES if quote in present]
        return (*known, *sorted(present.difference(KNOWN_QUOTES)))

    def instrument(self, code: str) -> OrderbookInstrument | None:
        """The orderbook policy of ``code`` if it was fetched."""
        return self.instruments.get(code)

    @property
    def has_instruments(self) -> bool:
        """Whether any orderbook policy is known (``level`` then checked per pair)."""
        return bool(self.instruments)


def _join_notes(first: str | None, second: str) -> str:
    return second if first is None else f"{first}; {second}"
