"""Every trade of a time range from ``GET /v1/trades/ticks``, paged backwards, each once.

Theory of operation (docs/UPBIT.md, Quotation REST for history). The endpoint answers one UTC
calendar day at a time: the current one, or ``days_ago`` = 1..7 days back. Within a day it pages
backwards: ``cursor`` (a ``sequential_id`` of the previous page's oldest row) gives the ``count``
trades before that one, newest first. Whether a cursor crosses into the previous day is not
documented, so :func:`fetch_trades` keeps ``days_ago`` fixed while it pages through one day and
steps it itself, newest day first:

- the newest day's first page may carry ``to`` (the second after ``end``), so rows after the
  range are not fetched;
- a day is done when a page comes back empty (or short, with nothing new to page on: a short
  page alone is not trusted, as Upbit might cap ``count`` lower one day); the whole fetch is
  done as soon as a page holds a trade older than ``start`` (every later row is older still);
- ``sequential_id`` is unique but not ordered: rows are de-duplicated on it (pages may overlap)
  and the result is sorted by (``trade_timestamp``, ``sequential_id``);
- the range older than the seventh day cannot be fetched: the result says so
  (:class:`~engine.rest.history.Coverage`, reason ``rest_window``) instead of pretending.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
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
from engine.rest.rest_rows import trade_from_rest
from engine.wire.messages import Trade

__all__ = ("TRADES_PAGE_SIZE", "TRADE_HISTORY_DAYS", "fetch_trades")

#: Trades per page: Upbit's maximum ``count``.
TRADES_PAGE_SIZE: Final = 500
#: ``days_ago`` reaches this many UTC days before the current one (since 2020-07-17).
TRADE_HISTORY_DAYS: Final = 7

_PATH: Final = "/v1/trades/ticks"
_US_PER_MS: Final = 1000
_US_PER_S: Final = 1_000_000


def _day_start_us(day: date) -> int:
    return _epoch_us(datetime(day.year, day.month, day.day, tzinfo=UTC))


@attrs.define
class _Paging:
    """The state of one fetch: what was found, and down to where the range is covered."""

    client: QuotationClient
    market: str
    start_us: int
    end_us: int
    max_pages: int | None
    #: Every trade in ``[start, end)`` found, by ``sequential_id``.
    found: dict[int, Trade] = attrs.Factory(dict)
    seen: set[int] = attrs.Factory(set)
    #: Every trade in ``[frontier, end)`` has been fetched.
    frontier_us: int = 0
    pages: int = 0
    skipped: int = 0
    duplicates: int = 0

    async def page_day(self, days_ago: int, to: str | None) -> str:
        """Page through one UTC day; ``exhausted``, ``reached_start`` or a coverage reason."""
        cursor: int | None = None
        while True:
            if self.max_pages is not None and self.pages >= self.max_pages:
                return "page_limit"
            params: dict[str, str | int] = {"market": self.market, "count": TRADES_PAGE_SIZE}
            if days_ago:
                params["days_ago"] = days_ago  # absent means the current UTC day
            if cursor is not None:
                params["cursor"] = cursor
            elif to is not None:
                params["to"] = to
            rows = await self.client.get_json(_PATH, params)
            self.pages += 1
            if not isinstance(rows, list):
                raise ProtocolError(
                    f"GET {_PATH} answered {type(rows).__name__}, not a list of trades",
                    reason="not_object",
                )
            if not rows:
                return "exhausted"
            new, oldest_us, last_id = self._take(rows)
            if oldest_us is not None:
                # More trades of the oldest millisecond may be on the next page.
                self.frontier_us = min(self.frontier_us, oldest_us + _US_PER_MS)
                if oldest_us < self.start_us:
                    return "reached_start"
            if not new or last_id is None:
                # Nothing to page on from here. A short page means the day has no more rows
                # (its tail was rows seen already or without an id); a full one means Upbit
                # did not move past the cursor.
                return "exhausted" if len(rows) < TRADES_PAGE_SIZE else "no_progress"
            cursor = last_id

    def _take(self, rows: list[object]) -> tuple[int, int | None, int | None]:
        """Keep a page's trades; (new trades, oldest trade time, last row's sequential_id)."""
        new = 0
        oldest_us: int | None = None
        last_id: int | None = None
        for row in rows:
            trade = trade_from_rest(row, market=self.market)
            if trade is None:
                self.skipped += 1
                continue
            last_id = trade.sequential_id
            if trade.trade_timestamp is not None:
                at = trade.trade_timestamp * _US_PER_MS
                oldest_us = at if oldest_us is None else min(oldest_us, at)
            if last_id in self.seen:
                self.duplicates += 1
                continue
            self.seen.add(last_id)
            new += 1
            if trade.trade_timestamp is None:
                self.skipped += 1  # cannot be placed in the range
            elif self.start_us <= trade.trade_timestamp * _US_PER_MS < self.end_us:
                self.found[last_id] = trade
        return new, oldest_us, last_id


def _to_parameter(end_us: int, newest_day: date) -> str | None:
    """``to`` for the newest day's first page: the second after ``end`` (Upbit's ``to``
    excludes its second in a third-party test; if it does not, the extra rows are filtered)."""
    seconds = -(-(end_us - _day_start_us(newest_day)) // _US_PER_S)
    if seconds >= 86_400:
        return None
    return f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


async def fetch_trades(
    client: QuotationClient,
    market: str,
    *,
    start: datetime,
    end: datetime,
    max_pages: int | None = None,
    now: datetime | None = None,
) -> HistoryResult[Trade]:
    """Every trade of ``market`` with ``start <= trade time < end``, oldest first, each once.

    ``start`` and ``end`` are aware datetimes. ``max_pages`` caps the requests (``None``: no
    cap). ``now`` is the current time, which decides what ``days_ago`` means (default: the
    system clock). The trades are :class:`~engine.wire.messages.Trade` models with
    ``stream_type == "REST"``. Raises ``ValueError`` listing every problem of the arguments
    before anything is sent, and what :meth:`QuotationClient.get_json` raises.
    """
    _raise_if_invalid(history_problems(market, start, end, max_pages=max_pages))
    current = _check_now(now)
    today = current.date()
    requested = TimeRange(start, end)
    paging = _Paging(client, market, _epoch_us(start), _epoch_us(end), max_pages)
    paging.frontier_us = paging.end_us
    # No trade is newer than now, so the newest day to ask for is today at the latest.
    newest_day = _from_us(min(paging.end_us, _epoch_us(current) + 1) - 1).date()
    first = (today - newest_day).days
    oldest_needed = max(first, (today - _from_us(paging.start_us).date()).days)
    last = min(TRADE_HISTORY_DAYS, oldest_needed)
    outcome = "exhausted"
    for days_ago in range(first, last + 1):
        # ``to`` skips the rows after ``end``; there are none after now.
        bounded = days_ago == first and paging.end_us <= _epoch_us(current)
        to = _to_parameter(paging.end_us, newest_day) if bounded else None
        outcome = await paging.page_day(days_ago, to)
        if outcome != "exhausted":
            break
        paging.frontier_us = min(paging.frontier_us, _day_start_us(today - timedelta(days_ago)))
    coverage = _coverage(requested, paging, outcome, today)
    trades = sorted(paging.found.values(), key=lambda t: (t.trade_timestamp or 0, t.sequential_id))
    return HistoryResult(tuple(trades), coverage, paging.pages, paging.skipped, paging.duplicates)


def _coverage(requested: TimeRange, paging: _Paging, outcome: str, today: date) -> Coverage:
    if outcome == "reached_start":
        return Coverage(requested)
    if outcome == "page_limit":
        detail = (
            f"stopped after max_pages={paging.max_pages}; fetch the uncovered range again "
            "(and merge on sequential_id) or raise max_pages"
        )
    elif outcome == "no_progress":
        detail = (
            "a page brought no trade not seen before (did Upbit ignore the cursor?); stopped "
            "rather than loop"
        )
    else:
        outcome = "rest_window"
        oldest = today - timedelta(days=TRADE_HISTORY_DAYS)
        detail = (
            f"Upbit's REST API keeps {TRADE_HISTORY_DAYS} UTC days of trades before the current "
            f"one; trades before {oldest.isoformat()}T00:00:00Z cannot be fetched"
        )
        paging.frontier_us = min(paging.frontier_us, _day_start_us(oldest))
    return _uncovered(requested, paging.frontier_us, outcome, detail)
