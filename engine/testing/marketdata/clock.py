"""Date and time strings of Upbit frames, from epoch milliseconds (UTC), memoised per day.

``datetime.strftime`` costs microseconds; these helpers cost a dict lookup and one f-string,
which matters because every simulated trade formats four of them.
"""

from __future__ import annotations

import datetime

__all__ = ("DAY_MS", "KST_OFFSET_MS", "date_dashed", "date_time", "trade_strings")

DAY_MS = 86_400_000
KST_OFFSET_MS = 9 * 3_600_000
_EPOCH = datetime.date(1970, 1, 1)
# Day number -> ("yyyyMMdd", "yyyy-MM-dd"); a run spans few days, so this stays tiny.
_DAYS: dict[int, tuple[str, str]] = {}
# Epoch second -> trade_strings result. Events arrive in time order, so recent seconds repeat
# across pairs; the cache is dropped whenever it grows past a bound.
_SECONDS: dict[int, tuple[str, str, str, str]] = {}
_MAX_SECONDS = 4_096


def _day(day: int) -> tuple[str, str]:
    cached = _DAYS.get(day)
    if cached is None:
        d = _EPOCH + datetime.timedelta(days=day)
        cached = (
            f"{d.year:04d}{d.month:02d}{d.day:02d}",
            f"{d.year:04d}-{d.month:02d}-{d.day:02d}",
        )
        _DAYS[day] = cached
    return cached


def date_dashed(ms: int) -> str:
    """``yyyy-MM-dd`` (UTC)."""
    return _day(ms // DAY_MS)[1]


def trade_strings(ms: int) -> tuple[str, str, str, str]:
    """``(yyyyMMdd, yyyy-MM-dd, HHmmss, HH:mm:ss)`` of ``ms`` in UTC."""
    second = ms // 1000
    cached = _SECONDS.get(second)
    if cached is None:
        day, rest = divmod(second, 86_400)
        compact, dashed = _day(day)
        hours, rest = divmod(rest, 3600)
        minutes, seconds = divmod(rest, 60)
        cached = (
            compact,
            dashed,
            f"{hours:02d}{minutes:02d}{seconds:02d}",
            f"{hours:02d}:{minutes:02d}:{seconds:02d}",
        )
        if len(_SECONDS) >= _MAX_SECONDS:
            _SECONDS.clear()
        _SECONDS[second] = cached
    return cached


def date_time(ms: int) -> str:
    """``yyyy-MM-ddTHH:mm:ss`` of ``ms`` (add ``KST_OFFSET_MS`` first for Korean time)."""
    _, dashed, _, clock = trade_strings(ms)
    return f"{dashed}T{clock}"
