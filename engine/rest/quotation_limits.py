"""What Upbit's quotation REST API says about its own limits, read without I/O.

- :func:`group_for_path`: the rate-limit group a path counts against (docs/UPBIT.md, Rate
  limits: ``market``, ``candle``, ``trade``, ``ticker``, ``orderbook``, 10 requests/s each, per IP).
- :func:`parse_remaining_req`: the ``Remaining-Req: group=<g>; min=<n>; sec=<n>`` header that
  every REST answer carries (docs/UPBIT.md, Rate-limit header and errors).
- :func:`parse_retry_after` and :func:`block_seconds`: how long a 429 or a 418 asks us to wait.
  Upbit documents that a 418 carries "a block time" without saying where or how, so
  :func:`block_seconds` reads what it can and returns ``None`` otherwise.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Final

import attrs

__all__ = (
    "QUOTATION_GROUPS",
    "RemainingReq",
    "block_seconds",
    "group_for_path",
    "parse_http_date",
    "parse_remaining_req",
    "parse_retry_after",
)

#: Upbit's quotation REST groups, 10 requests/s each per IP.
QUOTATION_GROUPS: Final[tuple[str, ...]] = ("market", "candle", "trade", "ticker", "orderbook")

# Longest prefix first, so "/v1/trades/ticks" is not taken for anything shorter.
_PREFIXES: Final[tuple[tuple[str, str], ...]] = (
    ("/v1/market/", "market"),
    ("/v1/candles/", "candle"),
    ("/v1/trades/", "trade"),
    ("/v1/ticker", "ticker"),
    ("/v1/orderbook", "orderbook"),
)


def group_for_path(path: str) -> str:
    """The quotation group of a REST path, e.g. ``"/v1/trades/ticks"`` -> ``"trade"``.

    Raises ``ValueError`` for a path outside the quotation API: pacing it against a guessed group
    could let it break a limit we do not track.
    """
    for prefix, group in _PREFIXES:
        if path.startswith(prefix):
            return group
    raise ValueError(
        f"{path!r} is not a quotation REST path this client paces (it knows "
        "/v1/market/..., /v1/candles/..., /v1/trades/..., /v1/ticker..., /v1/orderbook...)"
    )


@attrs.frozen
class RemainingReq:
    """One ``Remaining-Req`` header: ``second`` requests are left in the group's current second.

    ``minute`` is documented as deprecated and fixed; it is kept only because it is there.
    Either number is ``None`` when the header lacked it or spelled it unreadably.
    """

    group: str
    second: int | None
    minute: int | None


_PAIR: Final = re.compile(r"\s*([A-Za-z_-]+)\s*=\s*([^;,]*)")


def parse_remaining_req(value: str | None) -> RemainingReq | None:
    """Read ``group=trade; min=600; sec=9`` (keys and spacing in any case), or ``None``."""
    if not value:
        return None
    fields: dict[str, str] = {}
    for part in re.split(r"[;,]", value):
        match = _PAIR.match(part)
        if match is not None:
            fields[match[1].lower()] = match[2].strip()
    group = fields.get("group")
    if not group:
        return None
    return RemainingReq(
        group=group, second=_count(fields.get("sec")), minute=_count(fields.get("min"))
    )


def _count(text: str | None) -> int | None:
    if text is None or not text.isdigit():
        return None
    return int(text)


def parse_retry_after(value: str | None, *, reference: datetime | None = None) -> float | None:
    """Seconds a ``Retry-After`` header asks for: a number, or an HTTP date.

    A date is measured from ``reference`` (the answer's ``Date`` header, so the two clocks
    agree), else from the system clock. ``None`` when absent or unreadable; never negative.
    """
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (reference or datetime.now(UTC))).total_seconds()
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


def parse_http_date(value: str | None) -> datetime | None:
    """The ``Date`` header as an aware datetime, or ``None``."""
    if not value:
        return None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


# "60초", "10 minutes", "1시간 30분", "300s": a number followed by a unit, English or Korean.
_DURATION: Final = re.compile(
    r"(\d+(?:\.\d+)?)\s*(시간|hours?|hrs?|h\b|분|minutes?|mins?|m\b|초|seconds?|secs?|s\b)",
    re.IGNORECASE,
)
_UNIT_SECONDS: Final[Mapping[str, float]] = {"시": 3600.0, "h": 3600.0, "분": 60.0, "m": 60.0}
# Keys a body might carry the block time under; none is documented, so any of these will do.
_SECONDS_KEYS: Final = ("retry_after", "retryAfter", "block_time", "blocked_seconds", "seconds")


def block_seconds(body: object) -> float | None:
    """The block time a 418 body states, in seconds, if it states one readably.

    Accepts ``{"error": {"message": "... 60초 ..."}}`` style text (durations in the message are
    added up, so "1시간 30분" is 5400 s) or a numeric field such as ``retry_after``.
    """
    error = body.get("error") if isinstance(body, dict) else None
    for holder in (error, body):
        if not isinstance(holder, dict):
            continue
        for key in _SECONDS_KEYS:
            number = holder.get(key)
            if isinstance(number, bool) or not isinstance(number, int | float):
                continue
            if math.isfinite(number) and number >= 0:
                return float(number)
    message = error.get("message") if isinstance(error, dict) else None
    if not isinstance(message, str):
        return None
    total = 0.0
    found = False
    for amount, unit in _DURATION.findall(message):
        total += float(amount) * _UNIT_SECONDS.get(unit[0].lower(), 1.0)
        found = True
    return total if found else None
