"""The quotation REST endpoints the emulator serves (sans-IO): routing and response bodies.

- ``GET /v1/market/all[?is_details=true|false]`` (docs/UPBIT.md, Market codes)
- ``GET /v1/orderbook/instruments?markets=A,B`` (tick size and supported levels, as strings)
- ``GET /v1/trades/ticks`` and ``GET /v1/candles/...``: the market's remembered history
  (``history_rest``; docs/UPBIT.md, Quotation REST for history)

Errors use Upbit's REST shape ``{"error": {"name": <status>, "message": ...}}``. Each path belongs
to a rate-limit group (:func:`rest_group`), named in the answer's ``Remaining-Req``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Protocol

import attrs

from engine.testing.config import Quirks
from engine.testing.emulator.history import TradeHistory
from engine.testing.emulator.history_rest import (
    CANDLE_PREFIX,
    TRADES_PATH,
    answer_candles,
    answer_trades,
)

__all__ = (
    "REST_GROUPS",
    "ListingLike",
    "RestAnswer",
    "answer_rest",
    "decimal_text",
    "rest_group",
)

#: The rate-limit groups of the paths the emulator serves (what :func:`rest_group` returns for
#: them; anything else is ``default``).
REST_GROUPS = ("market", "orderbook", "trade", "candle")


class ListingLike(Protocol):
    """What the REST answers need of a catalog entry (``marketdata.Listing`` has it)."""

    @property
    def market(self) -> str: ...
    @property
    def korean_name(self) -> str: ...
    @property
    def english_name(self) -> str: ...
    @property
    def warning(self) -> bool: ...
    @property
    def caution(self) -> Mapping[str, bool]: ...
    @property
    def tick_size(self) -> float: ...
    @property
    def supported_levels(self) -> tuple[float, ...]: ...


@attrs.frozen
class RestAnswer:
    status: int
    body: object
    #: The rate-limit group for ``Remaining-Req``.
    group: str = "market"


def decimal_text(value: float) -> str:
    """A number as Upbit writes it in strings: plain notation, no trailing zeros."""
    text = format(Decimal(repr(float(value))), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


def _error(status: int, message: str, group: str = "market") -> RestAnswer:
    return RestAnswer(status, {"error": {"name": status, "message": message}}, group)


def _market_all(query: Mapping[str, Sequence[str]], catalog: Sequence[ListingLike]) -> RestAnswer:
    values = query.get("is_details", ["false"])
    raw = values[-1].lower() if values else "false"
    if raw not in ("true", "false"):
        return _error(400, "Type mismatch error. Check the parameters type!")
    details = raw == "true"
    rows: list[dict[str, object]] = []
    for listing in catalog:
        row: dict[str, object] = {
            "market": listing.market,
            "korean_name": listing.korean_name,
            "english_name": listing.english_name,
        }
        if details:
            row["market_event"] = {"warning": listing.warning, "caution": dict(listing.caution)}
        rows.append(row)
    return RestAnswer(200, rows)


def _instruments(
    query: Mapping[str, Sequence[str]], by_market: Mapping[str, ListingLike]
) -> RestAnswer:
    values = query.get("markets")
    if not values or not values[-1].strip():
        return _error(
            400, "markets is required (comma separated, e.g. KRW-BTC,KRW-ETH)", "orderbook"
        )
    rows: list[dict[str, object]] = []
    for raw in values[-1].split(","):
        listing = by_market.get(raw.strip().upper())  # REST accepts lower case (docs/UPBIT.md)
        if listing is None:
            continue
        rows.append(
            {
                "market": listing.market,
                "quote_currency": listing.market.partition("-")[0],
                "tick_size": decimal_text(listing.tick_size),
                "supported_levels": [decimal_text(level) for level in listing.supported_levels],
            }
        )
    if not rows:
        return _error(404, "Code not found", "orderbook")
    return RestAnswer(200, rows, "orderbook")


def rest_group(path: str) -> str:
    """The rate-limit group of a path (docs/UPBIT.md, Rate limits); paths the emulator does not
    serve count in a ``default`` group of their own."""
    if path == "/v1/market/all":
        return "market"
    if path == "/v1/orderbook/instruments":
        return "orderbook"
    if path == TRADES_PATH:
        return "trade"
    if path.startswith(CANDLE_PREFIX):
        return "candle"
    return "default"


def answer_rest(
    method: str,
    path: str,
    query: Mapping[str, Sequence[str]],
    catalog: Sequence[ListingLike],
    by_market: Mapping[str, ListingLike],
    history: TradeHistory | None = None,
    quirks: Quirks | None = None,
) -> RestAnswer:
    """The answer to one REST request (history paths need ``history``)."""
    group = rest_group(path)
    served = group != "default" and (history is not None or group in ("market", "orderbook"))
    if not served:
        return _error(404, f"{path} is not served by the emulator", group)
    if method != "GET":
        return _error(405, f"{method} is not allowed; use GET", group)
    if path == "/v1/market/all":
        return _market_all(query, catalog)
    if path == "/v1/orderbook/instruments":
        return _instruments(query, by_market)
    assert history is not None
    quirks = quirks or Quirks()
    if group == "trade":
        status, body = answer_trades(query, history, by_market, quirks)
    else:
        status, body = answer_candles(path, query, history, by_market, quirks)
    return RestAnswer(status, body, group)
