"""Sans-IO rate limiting for Upbit's WebSocket limits (clock injected, no Trio).

Upbit allows 5 connects per second per IP and, per connection, 5 messages per second *and* 100
per minute (docs/UPBIT.md, Rate limits). Going over earns HTTP 429, and insisting earns a
temporary block (HTTP 418) that grows with repeat offences. So the engine never relies on the
server to push back: it counts for itself.

- :class:`SlidingWindowLimiter` enforces any number of "at most N events in any T seconds"
  windows exactly, over the recorded event times. Callers pass the current time in (``now``, in
  seconds of any monotonic clock); the Trio layer sleeps until the time it is given.
- :class:`RateLimitBackoff` is the state to keep after the server *did* push back: it says until
  when not to try again, and waits longer for every repeat.

Why sliding rather than fixed windows: a fixed window (Upbit's own example) allows 2N events
around a window boundary, and we do not know where the server's boundaries are. Any timeline that
satisfies a sliding window of length T also satisfies every fixed window of that length.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence

import attrs

__all__ = (
    "DEFAULT_SAFETY_MARGIN",
    "BackoffStatistics",
    "LimiterStatistics",
    "RateLimitBackoff",
    "SlidingWindowLimiter",
    "WindowStatistics",
    "connect_limiter",
    "message_limiter",
)

#: Seconds added to every window by default. The server timestamps a message when it arrives, not
#: when we sent it, so network jitter can squeeze two sends that left exactly 1.0 s apart into less
#: than 1.0 s on the server's clock. 0.1 s covers ordinary jitter; it costs at most 10 % of the
#: per-second budget during sustained bursts and is negligible on the per-minute window.
DEFAULT_SAFETY_MARGIN = 0.1


@attrs.frozen
class WindowStatistics:
    """One window of a :class:`SlidingWindowLimiter` at a moment."""

    #: Events allowed in any span of ``period`` seconds.
    limit: int
    #: The window length as configured (the safety margin is not included).
    period: float
    #: Events recorded in the last ``period + safety_margin`` seconds up to ``now`` (inclusive).
    in_window: int


@attrs.frozen
class LimiterStatistics:
    """What :meth:`SlidingWindowLimiter.statistics` reports."""

    #: One entry per window, in construction order.
    windows: tuple[WindowStatistics, ...]
    #: Events recorded since construction (granted reservations included).
    total: int
    #: Reserved events whose time is still in the future.
    reserved: int
    #: Sum over all :meth:`~SlidingWindowLimiter.acquire_at` calls of (granted time - now).
    total_waited: float
    #: The margin added to every window.
    safety_margin: float


class SlidingWindowLimiter:
    """At most ``N`` events in any ``T`` seconds, for every ``(N, T)`` in ``windows``.

    Exact: an event at time ``x`` is allowed when, for every window, fewer than ``N`` recorded
    events ``t`` have ``t + T + safety_margin > x``, and ``x`` is not earlier than the last
    recorded event (reservations are granted in call order, so concurrent callers queue fairly).

    One deque of event times is kept, trimmed on every use to the longest window: older events
    can no longer constrain anything. So memory is bounded by the longest window's limit plus the
    reservations still in the future.

    ``now`` values must not go backwards; the limiter uses whatever clock the caller uses.
    """

    __slots__ = (
        "_history",
        "_last",
        "_longest",
        "_margin",
        "_periods",
        "_total",
        "_waited",
        "_windows",
    )

    def __init__(
        self,
        windows: Sequence[tuple[int, float]],
        *,
        safety_margin: float = DEFAULT_SAFETY_MARGIN,
    ) -> None:
        if not windows:
            raise ValueError("a limiter needs at least one (limit, period) window")
        for limit, period in windows:
            if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
                raise ValueError(f"window limit must be a positive int, got {limit!r}")
            if not (period > 0 and math.isfinite(period)):
                raise ValueError(f"window period must be a positive number of seconds: {period!r}")
        if not (safety_margin >= 0 and math.isfinite(safety_margin)):
            raise ValueError(f"safety_margin must be >= 0 seconds, got {safety_margin!r}")
        self._windows: tuple[tuple[int, float], ...] = tuple(
            (limit, float(period)) for limit, period in windows
        )
        self._margin = float(safety_margin)
        # Effective lengths: each window widened by the margin.
        self._periods = tuple(period + self._margin for _, period in self._windows)
        self._longest = max(self._periods)
        self._history: deque[float] = deque()
        self._last = -math.inf
        self._total = 0
        self._waited = 0.0

    @property
    def windows(self) -> tuple[tuple[int, float], ...]:
        """The configured ``(limit, period)`` pairs."""
        return self._windows

    @property
    def safety_margin(self) -> float:
        """Seconds added to every window's period."""
        return self._margin

    def _trim(self, now: float) -> None:
        history = self._history
        while history and history[0] + self._longest <= now:
            history.popleft()

    def _earliest(self, now: float) -> float:
        earliest = max(now, self._last)
        history = self._history
        for (limit, _), period in zip(self._windows, self._periods, strict=True):
            if len(history) >= limit:
                # The limit-th most recent event must have left this window.
                earliest = max(earliest, history[-limit] + period)
        return earliest

    def _record(self, at: float) -> None:
        self._history.append(at)
        self._last = at
        self._total += 1

    def delay(self, now: float) -> float:
        """Seconds from ``now`` until one more event is allowed under every window (0.0 if now)."""
        self._trim(now)
        return self._earliest(now) - now

    def try_acquire(self, now: float) -> bool:
        """Record an event at ``now`` if allowed; return whether it was."""
        self._trim(now)
        if self._earliest(now) > now:
            return False
        self._record(now)
        return True

    def acquire_at(self, now: float) -> float:
        """Reserve the earliest allowed slot at or after ``now`` and return its time.

        The caller must not send before the returned time. Later calls queue behind this one.
        """
        self._trim(now)
        at = self._earliest(now)
        self._record(at)
        self._waited += at - now
        return at

    def statistics(self, now: float) -> LimiterStatistics:
        """A frozen summary of the limiter as seen at ``now``."""
        self._trim(now)
        windows = tuple(
            WindowStatistics(
                limit=limit,
                period=period,
                in_window=sum(1 for t in self._history if now - effective < t <= now),
            )
            for (limit, period), effective in zip(self._windows, self._periods, strict=True)
        )
        return LimiterStatistics(
            windows=windows,
            total=self._total,
            reserved=sum(1 for t in self._history if t > now),
            total_waited=self._waited,
            safety_margin=self._margin,
        )

    def __repr__(self) -> str:
        spans = ", ".join(f"{limit}/{period:g}s" for limit, period in self._windows)
        return f"<SlidingWindowLimiter {spans} margin={self._margin:g}s total={self._total}>"


def connect_limiter(
    per_second: int = 5, *, safety_margin: float = DEFAULT_SAFETY_MARGIN
) -> SlidingWindowLimiter:
    """Upbit's ``websocket-connect`` group: ``per_second`` connects per second (per IP)."""
    return SlidingWindowLimiter(((per_second, 1.0),), safety_margin=safety_margin)


def message_limiter(
    per_second: int = 5,
    per_minute: int = 100,
    *,
    safety_margin: float = DEFAULT_SAFETY_MARGIN,
) -> SlidingWindowLimiter:
    """Upbit's ``websocket-message`` group, one per connection: 5 per second and 100 per minute."""
    return SlidingWindowLimiter(
        ((per_second, 1.0), (per_minute, 60.0)), safety_margin=safety_margin
    )


@attrs.frozen
class BackoffStatistics:
    """What :meth:`RateLimitBackoff.statistics` reports."""

    #: Rejections recorded since construction.
    rejections: int
    #: How many of those were HTTP 429 (rate limited).
    rate_limited: int
    #: How many were HTTP 418 (blocked).
    blocked: int
    #: Current repeat count (drives the growth of the wait; forgiven after a quiet period).
    strikes: int
    #: No attempt should be made before this time (``-inf`` if never rejected).
    blocked_until: float


class RateLimitBackoff:
    """Where to stand after Upbit answered 429 (too many requests) or 418 (blocked).

    Each rejection sets :meth:`blocked_until`: the larger of what the server asked for
    (``Retry-After`` or the block duration) and our own wait, which starts at ``base`` seconds
    and multiplies by ``factor`` for every further rejection ("strike"), up to ``cap``. A 418
    means we already insisted, so its own wait starts at ``block_floor`` seconds. Strikes are
    forgiven after ``forgive_after`` seconds without a rejection.
    """

    __slots__ = (
        "_base",
        "_block_floor",
        "_blocked",
        "_cap",
        "_factor",
        "_forgive_after",
        "_last_rejection",
        "_rate_limited",
        "_strikes",
        "_until",
    )

    def __init__(
        self,
        *,
        base: float = 1.0,
        factor: float = 2.0,
        cap: float = 300.0,
        block_floor: float = 60.0,
        forgive_after: float = 600.0,
    ) -> None:
        if not base > 0:
            raise ValueError(f"base must be > 0 seconds, got {base!r}")
        if not factor >= 1:
            raise ValueError(f"factor must be >= 1, got {factor!r}")
        if not cap >= base:
            raise ValueError(f"cap ({cap!r}) must be >= base ({base!r})")
        if not block_floor >= 0:
            raise ValueError(f"block_floor must be >= 0 seconds, got {block_floor!r}")
        if not forgive_after > 0:
            raise ValueError(f"forgive_after must be > 0 seconds, got {forgive_after!r}")
        self._base = float(base)
        self._factor = float(factor)
        self._cap = float(cap)
        self._block_floor = float(block_floor)
        self._forgive_after = float(forgive_after)
        self._strikes = 0
        self._until = -math.inf
        self._last_rejection = -math.inf
        self._rate_limited = 0
        self._blocked = 0

    def on_rejected(self, status: int, now: float, *, retry_after: float | None = None) -> float:
        """Record a 429 or 418 at ``now`` and return the time before which not to try again.

        ``retry_after`` is what the server asked for in seconds (the ``Retry-After`` header, or
        the block duration a 418 carries), if anything.
        """
        if status not in (429, 418):
            raise ValueError(f"only HTTP 429 and 418 are rate-limit rejections, got {status}")
        if retry_after is not None and not (retry_after >= 0 and math.isfinite(retry_after)):
            raise ValueError(f"retry_after must be a finite number >= 0, got {retry_after!r}")
        if now - self._last_rejection >= self._forgive_after:
            self._strikes = 0
        self._strikes += 1
        self._last_rejection = now
        wait = min(self._cap, self._base * self._factor ** (self._strikes - 1))
        if status == 418:
            self._blocked += 1
            wait = max(wait, self._block_floor)
        else:
            self._rate_limited += 1
        if retry_after is not None:
            wait = max(wait, retry_after)
        # A rejection never shortens a block already in force.
        self._until = max(self._until, now + wait)
        return self._until

    def blocked_until(self, now: float) -> float:
        """The earliest time, ``now`` or later, at which the next attempt may be made."""
        return max(now, self._until)

    def delay(self, now: float) -> float:
        """Seconds to wait from ``now`` before the next attempt (0.0 if not blocked)."""
        return max(0.0, self._until - now)

    def is_blocked(self, now: float) -> bool:
        """Whether an attempt at ``now`` would ignore the server's push-back."""
        return self._until > now

    def statistics(self) -> BackoffStatistics:
        """A frozen summary of the rejections seen so far."""
        return BackoffStatistics(
            rejections=self._rate_limited + self._blocked,
            rate_limited=self._rate_limited,
            blocked=self._blocked,
            strikes=self._strikes,
            blocked_until=self._until,
        )
