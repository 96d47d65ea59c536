"""The engine's REST history calls (``Engine.fetch_trades``, ``Engine.fetch_candles``): the code
checked against the market catalog before anything is sent, then paged through the engine's one
:class:`~engine.rest.QuotationClient`, so user calls and the engine's own REST traffic share
Upbit's per-second budget and its 429/418 state."""

from __future__ import annotations

from datetime import UTC, datetime

from engine.errors import UnknownMarketError
from engine.markets.catalog import split_code
from engine.rest.history import HistoryResult
from engine.rest.history_candles import fetch_candles
from engine.rest.history_trades import fetch_trades
from engine.runtime.state import EngineCore
from engine.wire.messages import Candle, Trade

__all__ = ("candles", "trades")


async def _check_code(core: EngineCore, code: str) -> None:
    """Refuse a code Upbit does not list (its REST would answer 404) before any request."""
    if not isinstance(code, str) or not core.config.validate_codes:
        return  # the pager's own checks name a malformed code
    if split_code(code) is None:
        return
    catalog = await core.catalog.get()
    if code not in catalog:
        raise UnknownMarketError([code], hint="check the code, or catalog.codes() for the list")


async def trades(
    core: EngineCore,
    code: str,
    *,
    start: datetime,
    end: datetime | None,
    max_pages: int | None,
    now: datetime | None,
) -> HistoryResult[Trade]:
    await _check_code(core, code)
    now = now or datetime.now(UTC)
    return await fetch_trades(
        core.quotation, code, start=start, end=end or now, max_pages=max_pages, now=now
    )


async def candles(
    core: EngineCore,
    code: str,
    unit: str,
    *,
    start: datetime,
    end: datetime | None,
    max_pages: int | None,
    now: datetime | None,
) -> HistoryResult[Candle]:
    await _check_code(core, code)
    now = now or datetime.now(UTC)
    return await fetch_candles(
        core.quotation, code, unit, start=start, end=end or now, max_pages=max_pages, now=now
    )
