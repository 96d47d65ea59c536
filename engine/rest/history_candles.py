"""The candles of a time range from ``GET /v1/candles/...``, paged backwards with ``to``.

Theory of operation (docs/UPBIT.md, Candles). ``to`` is exclusive: a page holds the ``count``
newest candles whose period starts before it, newest first. :func:`fetch_candles` asks first with
``to`` = ``end`` (rounded up to the second; later candles are filtered out), then with ``to`` =
the oldest period start of the previous page, until a page reaches ``start`` or comes back empty.
A period without trades has no candle: its absence is not a hole, and the result is complete
without it. Second candles reach back about three months only (older requests answer ``[]``), so
a range older than that is reported uncovered (reason ``rest_window``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Final

import attrs

from engine.errors import ProtocolError
from engine.rest.history import (
    Coverage,
    HistoryResult,
    TimeRange,
    _check_now,
    _epoch_us,
    _from_us,
    _raise_if_invalid,
    _uncovered,
    history_problems,
)
from engine.rest.quotation import QuotationClient
from engine.rest.rest_rows import candle_from_rest
from engine.wire.messages import Candle

__all__ = (
    "CANDLES_PAGE_SIZE",
    "CANDLE_UNITS",
    "SECOND_CANDLES_RETENTION",
    "CandleUnit",
    "fetch_candles",
)

#: Candles per page: Upbit's maximum ``count``.
CANDLES_PAGE_SIZE: Final = 200
#: How far back second candles reach ("three months"; the shortest three months, to be safe).
SECOND_CANDLES_RETENTION: Final = timedelta(days=89)

_US_PER_S: Final = 1_000_000


@attrs.frozen
class CandleUnit:
    """One candle unit: the REST path that serves it and the ``type`` its models get."""

    name: str
    path: str
    candle_type: str


def _units() -> Mapping[str, CandleUnit]:
    # Types follow the WebSocket's names (candle.1s ... candle.240m); days and weeks have no
    # stream type, so they get the same pattern: candle.1d, candle.1w.
    units = [CandleUnit("1s", "/v1/candles/seconds", "candle.1s")]
    for minutes in (1, 3, 5, 10, 15, 30, 60, 240):
        units.append(
            CandleUnit(f"{minutes}m", f"/v1/candles/minutes/{minutes}", f"candle.{minutes}m")
        )
    units.append(CandleUnit("1d", "/v1/candles/days", "candle.1d"))
    units.append(CandleUnit("1w", "/v1/candles/weeks", "candle.1w"))
    return MappingProxyType({unit.name: unit for unit in units})


#: The units :func:`fetch_candles` accepts, by name.
CANDLE_UNITS: Final = _units()

# Spellings callers reach for, mapped to the name used here.
_ALIASES: Final = {
    "seconds": "1s",
    "second": "1s",
    "1": "1m",
    "1h": "60m",
    "4h": "240m",
    "days": "1d",
    "day": "1d",
    "1D": "1d",
    "weeks": "1w",
    "week": "1w",
}


def _unit_problem(unit: object) -> str | None:
    if isinstance(unit, str) and unit in CANDLE_UNITS:
        return None
    known = ", ".join(CANDLE_UNITS)
    text = f"unknown candle unit {unit!r}: the units are {known}"
    if isinstance(unit, str):
        bare = unit.removeprefix("candle.")
        suggestion = bare if bare in CANDLE_UNITS else _ALIASES.get(bare)
        if suggestion is not None:
            text += f" (use {suggestion!r})"
    return text


def _iso_to(us: int) -> str:
    """``to`` for Upbit: whole seconds, rounded up, with an explicit ``Z``."""
    seconds = -(-us // _US_PER_S)
    return _from_us(seconds * _US_PER_S).strftime("%Y-%m-%dT%H:%M:%SZ")


def _period_us(candle: Candle) -> int | None:
    """The candle's period start (``candle_date_time_utc``, UTC without an offset), in µs."""
    start = candle.period_start_ms
    return None if start is None else start * 1000


@attrs.define
class _Paging:
    market: str
    unit: CandleUnit
    start_us: int
    end_us: int
    found: dict[int, Candle] = attrs.Factory(dict)
    pages: int = 0
    skipped: int = 0
    duplicates: int = 0

    def take(self, rows: list[object]) -> int | None:
        """Keep a page's candles in range; return the page's oldest period start."""
        oldest: int | None = None
        for row in rows:
            candle = candle_from_rest(row, self.unit.candle_type, market=self.market)
            period = None if candle is None else _period_us(candle)
            if candle is None or period is None:
                self.skipped += 1
                continue
            oldest = period if oldest is None else min(oldest, period)
            if period in self.found:
                self.duplicates += 1  # pages overlapped; the first copy is as good
            elif self.start_us <= period < self.end_us:
                self.found[period] = candle
        return oldest


async def fetch_candles(
    client: QuotationClient,
    market: str,
    unit: str,
    *,
    start: datetime,
    end: datetime,
    max_pages: int | None = None,
    now: datetime | None = None,
) -> HistoryResult[Candle]:
    """The candles of ``market`` whose period starts in ``[start, end)``, oldest first.

    ``unit`` is a key of :data:`CANDLE_UNITS` (``"1s"``, ``"1m"`` ... ``"240m"``, ``"1d"``,
    ``"1w"``). ``start`` and ``end`` are aware datetimes; ``max_pages`` caps the requests;
    ``now`` (default: the system clock) places the second candles' retention edge. The candles
    are :class:`~engine.wire.messages.Candle` models with ``type`` ``"candle.<unit>"`` and
    ``stream_type == "REST"``. Raises ``ValueError`` listing every problem of the arguments before
    anything is sent, and what :meth:`QuotationClient.get_json` raises.
    """
    problems = history_problems(market, start, end, max_pages=max_pages)
    unit_problem = _unit_problem(unit)
    _raise_if_invalid(problems + ([unit_problem] if unit_problem else []))
    current = _check_now(now)
    paging = _Paging(market, CANDLE_UNITS[unit], _epoch_us(start), _epoch_us(end))
    outcome, frontier = await _page(client, paging, max_pages)
    requested = TimeRange(start, end)
    if outcome == "exhausted" and unit == "1s":
        edge = current - SECOND_CANDLES_RETENTION
        detail = (
            f"Upbit keeps second candles for about three months; none came before "
            f"{_from_us(frontier).isoformat()}, and older ones (before about "
            f"{edge.isoformat()}) are not served"
        )
        # Only the part older than the retention edge is out of reach; newer, empty is empty.
        frontier = min(frontier, _epoch_us(edge))
        coverage = _uncovered(requested, frontier, "rest_window", detail)
    elif outcome in ("exhausted", "reached_start"):
        coverage = Coverage(requested)
    elif outcome == "page_limit":
        detail = f"stopped after max_pages={max_pages}; fetch the uncovered range again"
        coverage = _uncovered(requested, frontier, outcome, detail)
    else:
        detail = "a page brought no candle not seen before; stopped rather than loop"
        coverage = _uncovered(requested, frontier, outcome, detail)
    candles = tuple(paging.found[period] for period in sorted(paging.found))
    return HistoryResult(candles, coverage, paging.pages, paging.skipped, paging.duplicates)


async def _page(client: QuotationClient, paging: _Paging, max_pages: int | None) -> tuple[str, int]:
    """Page backwards from ``end``: (how it stopped, the oldest period start covered)."""
    to_us = frontier = paging.end_us
    while True:
        if max_pages is not None and paging.pages >= max_pages:
            return "page_limit", frontier
        params: dict[str, str | int] = {
            "market": paging.market,
            "count": CANDLES_PAGE_SIZE,
            "to": _iso_to(to_us),
        }
        rows = await client.get_json(paging.unit.path, params)
        paging.pages += 1
        if not isinstance(rows, list):
            raise ProtocolError(
                f"GET {paging.unit.path} answered {type(rows).__name__}, not a list of candles",
                reason="not_object",
            )
        if not rows:
            return "exhausted", frontier
        oldest = paging.take(rows)
        # Each page must reach further back than the last, or Upbit ignored ``to``: stopping
        # then is what guarantees the loop ends.
        if oldest is None or oldest >= frontier:
            return "no_progress", frontier
        frontier = min(frontier, oldest)
        if oldest <= paging.start_us:
            return "reached_start", frontier
        to_us = oldest
