"""Candles made of remembered trades, as Upbit's ``GET /v1/candles/...`` answers them (sans-IO).

A candle covers one period, ``[start, next start)`` of the trades' ``trade_timestamp`` in UTC,
and exists only when the period has trades (docs/UPBIT.md, Quotation REST for history). Its
numbers are computed exactly like the simulator's own candles: open, high, low and close are trade
prices; the volume and the traded amount are exact decimal sums converted to the nearest double
once, so they equal the ``candle.*`` stream's last frame of the period to the last bit; the
``timestamp`` is the reporting time of the period's last trade, as on the stream.
"""

from __future__ import annotations

import bisect
import datetime
import decimal
from collections.abc import Sequence
from decimal import Decimal
from operator import attrgetter
from typing import Literal

import attrs

from engine.testing.emulator.history import TradeRecord
from engine.testing.marketdata.clock import DAY_MS, KST_OFFSET_MS, date_dashed, date_time

__all__ = ("MINUTE_UNITS", "Period", "make_candles", "period_of")

#: The minute units Upbit serves (``/v1/candles/minutes/{unit}``).
MINUTE_UNITS = (1, 3, 5, 10, 15, 30, 60, 240)

PeriodKind = Literal["seconds", "minutes", "days", "weeks", "months", "years"]

_EPOCH = datetime.date(1970, 1, 1)
_TIME = attrgetter("trade_timestamp")
# Exact: no sum of prices and volumes of a period comes near 100 digits, and Inexact would raise.
_EXACT = decimal.Context(prec=100, traps=[decimal.Inexact, decimal.InvalidOperation])


def _day_ms(day: datetime.date) -> int:
    return (day - _EPOCH).days * DAY_MS


@attrs.frozen
class Period:
    """A candle period: ``kind``, and for minutes the ``unit``."""

    kind: PeriodKind
    unit: int = 1

    def start(self, ms: int) -> int:
        """Epoch ms of the start of the period containing ``ms`` (UTC)."""
        kind = self.kind
        if kind == "seconds":
            return ms - ms % 1000
        if kind == "minutes":
            length = self.unit * 60_000
            return ms - ms % length
        day = ms // DAY_MS
        if kind == "days":
            return day * DAY_MS
        if kind == "weeks":
            # Weeks start on Monday 00:00 UTC (09:00 KST); 1970-01-01 was a Thursday.
            return (day - (day + 3) % 7) * DAY_MS
        date = _EPOCH + datetime.timedelta(days=day)
        if kind == "months":
            return _day_ms(date.replace(day=1))
        return _day_ms(datetime.date(date.year, 1, 1))

    def next_start(self, start: int) -> int:
        """Epoch ms of the start of the period after the one starting at ``start``."""
        kind = self.kind
        if kind == "seconds":
            return start + 1000
        if kind == "minutes":
            return start + self.unit * 60_000
        if kind == "days":
            return start + DAY_MS
        if kind == "weeks":
            return start + 7 * DAY_MS
        date = _EPOCH + datetime.timedelta(days=start // DAY_MS)
        if kind == "months":
            year, month = divmod(date.year * 12 + date.month, 12)  # the month after, 0-based
            return _day_ms(datetime.date(year, month + 1, 1))
        return _day_ms(datetime.date(date.year + 1, 1, 1))


def period_of(tail: str) -> Period | str | None:
    """The period of a path below ``/v1/candles/`` (``minutes/5``, ``days``, ...); a message
    when the minute unit is not one Upbit serves; None when the path names no candles."""
    kind, _, unit = tail.partition("/")
    if kind == "minutes":
        if unit.isdigit() and int(unit) in MINUTE_UNITS:
            return Period("minutes", int(unit))
        return f"minute unit must be one of {', '.join(map(str, MINUTE_UNITS))}, got {unit!r}"
    if unit or kind not in ("seconds", "days", "weeks", "months", "years"):
        return None
    return Period(kind)  # type: ignore[arg-type]  # checked just above


def _dec(value: float) -> Decimal:
    # repr is the shortest decimal that reads back as the same double, i.e. the exact price or
    # volume on Upbit's decimal grid the simulator divided into this double.
    return Decimal(repr(value))


def _candle(trades: Sequence[TradeRecord], period: Period, start: int) -> dict[str, object]:
    first, last = trades[0], trades[-1]
    prices = [trade.trade_price for trade in trades]
    volume = Decimal(0)
    amount = Decimal(0)
    for trade in trades:
        size = _dec(trade.trade_volume)
        volume = _EXACT.add(volume, size)
        amount = _EXACT.add(amount, _EXACT.multiply(_dec(trade.trade_price), size))
    row: dict[str, object] = {
        "market": first.market,
        "candle_date_time_utc": date_time(start),
        "candle_date_time_kst": date_time(start + KST_OFFSET_MS),
        "opening_price": first.trade_price,
        "high_price": max(prices),
        "low_price": min(prices),
        "trade_price": last.trade_price,
        "timestamp": last.timestamp,
        "candle_acc_trade_price": float(amount),
        "candle_acc_trade_volume": float(volume),
    }
    kind = period.kind
    if kind == "minutes":
        row["unit"] = period.unit
    elif kind == "days":
        previous = last.prev_closing_price
        row["prev_closing_price"] = previous
        row["change_price"] = last.change_price
        row["change_rate"] = round(last.change_price / previous, 10) if previous else 0.0
    elif kind != "seconds":
        row["first_day_of_period"] = date_dashed(start)
    return row


def make_candles(
    trades: Sequence[TradeRecord], period: Period, *, count: int, forgotten_ms: int | None
) -> list[dict[str, object]]:
    """Up to ``count`` candles of ``trades`` (oldest first, cut where the answer ends), newest
    first. A period some of whose trades were forgotten (at or before ``forgotten_ms``) gets no
    candle, nor does anything older: a candle is whole or absent."""
    rows: list[dict[str, object]] = []
    end = len(trades)
    while end > 0 and len(rows) < count:
        start = period.start(trades[end - 1].trade_timestamp)
        if forgotten_ms is not None and start <= forgotten_ms:
            break
        begin = bisect.bisect_left(trades, start, 0, end, key=_TIME)
        rows.append(_candle(trades[begin:end], period, start))
        end = begin
    return rows
