"""The quotation REST history endpoints (sans-IO): parameters, validation and answers.

- ``GET /v1/trades/ticks?market=&count=&cursor=&to=&days_ago=`` (group ``trade``)
- ``GET /v1/candles/{seconds | minutes/N | days | weeks | months | years}?market=&count=&to=``
  (group ``candle``)

Both read the :class:`~engine.testing.emulator.history.TradeHistory` the market fills, so they
answer for any time the emulator remembers, whether or not a client was connected then. "Now" is
the market clock (``TradeHistory.now_ms``), and every day is a UTC day (docs/UPBIT.md, Quotation
REST for history). Answers are ``(status, body)``; errors have Upbit's REST shape.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Mapping, Sequence

from engine.testing.config import Quirks
from engine.testing.emulator.candles import make_candles, period_of
from engine.testing.emulator.history import TradeHistory
from engine.testing.marketdata.clock import DAY_MS

__all__ = (
    "CANDLE_PREFIX",
    "MAX_CANDLES",
    "MAX_DAYS_AGO",
    "MAX_TRADES",
    "TRADES_PATH",
    "answer_candles",
    "answer_trades",
)

TRADES_PATH = "/v1/trades/ticks"
CANDLE_PREFIX = "/v1/candles/"
MAX_TRADES = 500
MAX_CANDLES = 200
MAX_DAYS_AGO = 7

Answer = tuple[int, object]
Query = Mapping[str, Sequence[str]]

# The message of Upbit's documented 400 (docs/UPBIT.md, Market codes).
_TYPE_MISMATCH = "Type mismatch error. Check the parameters type!"
_TIME_OF_DAY = re.compile(r"(\d\d)(:?)(\d\d)\2(\d\d)")


class _BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _error(status: int, message: str) -> Answer:
    return status, {"error": {"name": status, "message": message}}


def _value(query: Query, name: str) -> str | None:
    """The parameter's last value; None when absent or empty (Upbit treats both as unset)."""
    values = query.get(name)
    if not values or not values[-1].strip():
        return None
    return values[-1].strip()


def _integer(query: Query, name: str) -> int | None:
    text = _value(query, name)
    if text is None:
        return None
    if not re.fullmatch(r"[+-]?\d+", text):
        raise _BadRequest(400, _TYPE_MISMATCH)
    return int(text)


def _market(query: Query, markets: Mapping[str, object]) -> str:
    text = _value(query, "market")
    if text is None:
        raise _BadRequest(400, "market is required (e.g. market=KRW-BTC)")
    code = text.upper()  # REST accepts lower case (docs/UPBIT.md, Request format)
    if code not in markets:
        raise _BadRequest(404, "Code not found")
    return code


def _count(query: Query, maximum: int, quirks: Quirks) -> int:
    count = _integer(query, "count")
    if count is None:
        return 1
    if count < 1:
        raise _BadRequest(400, f"count must be between 1 and {maximum}, got {count}")
    if count > maximum:
        if quirks.rest_count_over_max == "clamp":
            return maximum
        raise _BadRequest(400, f"count must be between 1 and {maximum}, got {count}")
    return count


def _time_of_day_ms(text: str) -> int:
    """``HHmmss`` or ``HH:mm:ss`` as ms after midnight."""
    match = _TIME_OF_DAY.fullmatch(text)
    if match is None:
        raise _BadRequest(400, f"to must be HHmmss or HH:mm:ss, got {text!r}")
    hours, minutes, seconds = int(match[1]), int(match[3]), int(match[4])
    if hours > 23 or minutes > 59 or seconds > 59:
        raise _BadRequest(400, f"to is not a time of day: {text!r}")
    return ((hours * 60 + minutes) * 60 + seconds) * 1000


def _trades(
    query: Query, history: TradeHistory, markets: Mapping[str, object], quirks: Quirks
) -> Answer:
    code = _market(query, markets)
    count = _count(query, MAX_TRADES, quirks)
    cursor = _integer(query, "cursor")
    days_ago = _integer(query, "days_ago")
    if days_ago is not None and not 1 <= days_ago <= MAX_DAYS_AGO:
        raise _BadRequest(400, f"days_ago must be between 1 and {MAX_DAYS_AGO}, got {days_ago}")
    # The UTC day asked for: today by the market clock, or days_ago before it.
    day_start = (history.now_ms // DAY_MS - (days_ago or 0)) * DAY_MS
    day_end = day_start + DAY_MS
    to = _value(query, "to")
    end_ms = day_end if to is None else day_start + _time_of_day_ms(to)
    start_ms: int | None = day_start
    if cursor is not None and quirks.trade_cursor_crosses_days:
        start_ms = None
    trades = history.newest_first(
        code, count=count, start_ms=start_ms, end_ms=end_ms, cursor=cursor
    )
    return 200, [trade.as_rest() for trade in trades]


def _candle_to_ms(text: str) -> int:
    """ISO 8601 (``2025-06-24T04:56:53Z``, ``...+09:00``, ``2025-06-24 04:56:53``) as epoch ms;
    no offset means UTC."""
    try:
        moment = datetime.datetime.fromisoformat(text)
    except ValueError:
        raise _BadRequest(400, f"to must be an ISO 8601 date and time, got {text!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return int(moment.timestamp() * 1000)


def _candles(
    path: str, query: Query, history: TradeHistory, markets: Mapping[str, object], quirks: Quirks
) -> Answer:
    period = period_of(path[len(CANDLE_PREFIX) :])
    if period is None:
        return _error(404, f"{path} is not served by the emulator")
    if isinstance(period, str):
        raise _BadRequest(400, period)
    code = _market(query, markets)
    count = _count(query, MAX_CANDLES, quirks)
    to = _value(query, "to")
    end_ms: int | None = None
    if to is not None:
        # Candles whose period starts before ``to``: every trade of the period ``to`` falls in
        # counts when ``to`` is not a period start.
        end_ms = period.next_start(period.start(_candle_to_ms(to) - 1))
    trades = history.until(code, end_ms)
    forgotten = history.forgotten_ms(code)
    return 200, make_candles(trades, period, count=count, forgotten_ms=forgotten)


def answer_trades(
    query: Query, history: TradeHistory, markets: Mapping[str, object], quirks: Quirks
) -> Answer:
    """``GET /v1/trades/ticks``: up to ``count`` trades of one UTC day, newest first."""
    try:
        return _trades(query, history, markets, quirks)
    except _BadRequest as bad:
        return _error(bad.status, bad.message)


def answer_candles(
    path: str,
    query: Query,
    history: TradeHistory,
    markets: Mapping[str, object],
    quirks: Quirks,
) -> Answer:
    """``GET /v1/candles/...``: up to ``count`` candles, newest first, periods with trades only."""
    try:
        return _candles(path, query, history, markets, quirks)
    except _BadRequest as bad:
        return _error(bad.status, bad.message)
