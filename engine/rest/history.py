"""What a paged history fetch returns, and the checks made before it sends anything.

Times are timezone-aware :class:`~datetime.datetime` values, ranges half-open ``[start, end)``,
compared at microsecond precision (Upbit's times are milliseconds). A naive datetime is refused:
guessing its zone would shift the range by hours (KST is UTC+9).

A fetch says whether it covered its range (:class:`Coverage`): REST history has edges (trades
reach seven UTC days back, second candles about three months) and a caller may cap the pages it
spends, so "no more rows" and "stopped looking" must not look alike. What is missing is always
the oldest part of the range, because pages go backwards from ``end``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Final, Generic, TypeVar

import attrs

from engine.markets.catalog import CODE_PATTERN

__all__ = (
    "COVERAGE_REASONS",
    "Coverage",
    "HistoryResult",
    "TimeRange",
    "history_problems",
)

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND: Final = timedelta(microseconds=1)

#: Why a fetch did not cover its whole range (:attr:`Coverage.reason`).
COVERAGE_REASONS: Final = (
    "rest_window",  # older than Upbit keeps on REST: trades 7 UTC days, second candles ~3 months
    "page_limit",  # the caller's max_pages ran out
    "no_progress",  # a page brought nothing new (Upbit ignored the cursor?): stopped, not looping
)

_T = TypeVar("_T")


@attrs.frozen
class TimeRange:
    """The half-open range ``[start, end)``."""

    start: datetime
    end: datetime


@attrs.frozen
class Coverage:
    """How much of the requested range a fetch covered.

    ``uncovered`` is ``None`` when every row of the range was fetched; otherwise it is the oldest
    part, ``[requested.start, x)``, that was not, ``reason`` is one of :data:`COVERAGE_REASONS`
    and ``detail`` says it in words. For trades, ``uncovered.end`` may reach one millisecond into
    what was returned (more trades of that millisecond may exist): fetch ``uncovered`` again and
    merge on ``sequential_id``.
    """

    requested: TimeRange
    uncovered: TimeRange | None = None
    reason: str | None = None
    detail: str = ""

    @property
    def complete(self) -> bool:
        """Whether the whole requested range was covered."""
        return self.uncovered is None


@attrs.frozen
class HistoryResult(Generic[_T]):
    """Rows of a range, oldest first, each once; and whether the range was covered."""

    items: tuple[_T, ...]
    coverage: Coverage
    #: REST requests (pages) spent, retries not counted.
    pages: int
    #: Rows that could not be used (a trade without ``sequential_id``, a row without a time).
    skipped_rows: int = 0
    #: Rows seen again on a later page and dropped.
    duplicates: int = 0

    @property
    def complete(self) -> bool:
        """Shorthand for ``coverage.complete``."""
        return self.coverage.complete


def _aware_problem(name: str, value: object) -> str | None:
    if not isinstance(value, datetime):
        return f"{name} must be a datetime, got {type(value).__name__} {value!r}"
    if value.tzinfo is None or value.utcoffset() is None:
        return (
            f"{name}={value.isoformat()} has no time zone: give an aware datetime such as "
            f"datetime(..., tzinfo=datetime.UTC) (naive times are ambiguous; KST is UTC+9)"
        )
    return None


def history_problems(
    market: object, start: object, end: object, *, max_pages: object = None
) -> list[str]:
    """Every reason a history request for ``market`` over ``[start, end)`` is invalid, with its
    fix; empty when it is valid. Nothing is sent to Upbit."""
    problems: list[str] = []
    if not isinstance(market, str) or CODE_PATTERN.fullmatch(market) is None:
        upper = market.strip().upper() if isinstance(market, str) else ""
        hint = f"; use {upper!r}" if CODE_PATTERN.fullmatch(upper) else ""
        problems.append(
            f"market must be an upper-case code such as 'KRW-BTC', got {market!r}{hint}"
        )
    times = [_aware_problem("start", start), _aware_problem("end", end)]
    problems.extend(problem for problem in times if problem is not None)
    if isinstance(start, datetime) and isinstance(end, datetime) and not any(times):
        _order_problem(start, end, problems)
    if max_pages is not None and (
        isinstance(max_pages, bool) or not isinstance(max_pages, int) or max_pages < 1
    ):
        problems.append(f"max_pages must be an integer >= 1 or None, got {max_pages!r}")
    return problems


def _order_problem(start: datetime, end: datetime, problems: list[str]) -> None:
    if start >= end:
        problems.append(
            f"start ({start.isoformat()}) must be before end ({end.isoformat()}): the range "
            "is [start, end)"
        )


def _raise_if_invalid(problems: list[str]) -> None:
    if len(problems) == 1:
        raise ValueError(f"invalid history request: {problems[0]}")
    if problems:
        raise ValueError("invalid history request:\n" + "\n".join(f"  - {p}" for p in problems))


def _check_now(now: datetime | None) -> datetime:
    """The current time as an aware UTC datetime (the system clock when ``now`` is None)."""
    if now is None:
        return datetime.now(UTC)
    problem = _aware_problem("now", now)
    if problem is not None:
        raise ValueError(f"invalid history request: {problem}")
    return now.astimezone(UTC)


def _epoch_us(moment: datetime) -> int:
    """Microseconds since the epoch, exactly (no float on the way)."""
    return (moment - _EPOCH) // _MICROSECOND


def _from_us(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


def _uncovered(requested: TimeRange, frontier_us: int, reason: str, detail: str) -> Coverage:
    """Coverage missing ``[requested.start, frontier)``, or complete if that is empty."""
    start_us = _epoch_us(requested.start)
    end_us = min(frontier_us, _epoch_us(requested.end))
    if end_us <= start_us:
        return Coverage(requested)
    missing = TimeRange(requested.start, _from_us(end_us).astimezone(requested.start.tzinfo))
    return Coverage(requested, missing, reason, detail)
