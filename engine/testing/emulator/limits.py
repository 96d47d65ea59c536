"""The emulator's own rate limiting (sans-IO; the caller passes the time).

Written independently of the engine's limiter on purpose: the emulator must catch a client whose
limiter is wrong, so the two must not share a bug. Sliding windows (exact, not fixed buckets), the
strictest reading of "5 per second and 100 per minute".
"""

from __future__ import annotations

from collections import deque

import attrs

from engine.testing.config import Limits

__all__ = ("ConnectGuard", "Escalation", "MessageGuard", "RestGuard", "SlidingWindow", "Verdict")


class SlidingWindow:
    """At most ``limit`` recorded events within any ``window`` seconds."""

    def __init__(self, limit: int, window: float) -> None:
        self.limit = limit
        self.window = window
        self._times: deque[float] = deque()

    def _expire(self, now: float) -> None:
        horizon = now - self.window
        times = self._times
        while times and times[0] <= horizon:
            times.popleft()

    def allows(self, now: float) -> bool:
        self._expire(now)
        return len(self._times) < self.limit

    def record(self, now: float) -> None:
        self._times.append(now)

    def remaining(self, now: float) -> int:
        self._expire(now)
        return max(0, self.limit - len(self._times))

    def retry_after(self, now: float) -> float:
        """Seconds until one more event would be allowed (0 if it is now)."""
        self._expire(now)
        if len(self._times) < self.limit:
            return 0.0
        return self._times[0] + self.window - now


class Escalation:
    """Turns repeated violations into blocks whose length doubles per offence.

    ``after`` violations within ``window`` seconds start a block of ``duration`` seconds, doubled
    for every block before it, at most ``maximum``.
    """

    def __init__(self, after: int, window: float, duration: float, maximum: float) -> None:
        self._after = after
        self._window = window
        self._duration = duration
        self._maximum = maximum
        self._violations = SlidingWindow(after, window)
        self._offences = 0
        self.blocked_until = float("-inf")

    @classmethod
    def websocket(cls, limits: Limits) -> Escalation:
        """The escalation of WebSocket connects and messages (``Limits.block_*``)."""
        return cls(
            limits.block_after, limits.violation_window, limits.block_duration, limits.block_max
        )

    @classmethod
    def rest(cls, limits: Limits) -> Escalation:
        """The escalation of quotation REST requests (``Limits.rest_block_*``)."""
        return cls(
            limits.rest_block_after,
            limits.rest_violation_window,
            limits.rest_block_duration,
            limits.rest_block_max,
        )

    def blocked_for(self, now: float) -> float:
        """Remaining block in seconds (0 when not blocked)."""
        return max(0.0, self.blocked_until - now)

    def violation(self, now: float) -> float:
        """Record one violation; return the block it starts (0 when it starts none)."""
        self._violations.record(now)
        if self._violations.remaining(now) > 0:
            return 0.0
        self._offences += 1
        block = min(self._duration * 2.0 ** (self._offences - 1), self._maximum)
        self.blocked_until = now + block
        self._violations = SlidingWindow(self._after, self._window)
        return block


@attrs.frozen
class Verdict:
    """The answer to one connect or message."""

    #: 0 when allowed, else 429 (over the limit) or 418 (blocked).
    status: int
    #: Seconds the client should wait (0 when allowed).
    retry_after: float
    #: Budget left in the per-second and per-minute windows, for ``Remaining-Req``.
    remaining_second: int
    remaining_minute: int

    @property
    def allowed(self) -> bool:
        return self.status == 0


class ConnectGuard:
    """``websocket-connect``: connects per second per key (an IP, or an access key)."""

    def __init__(self, limits: Limits) -> None:
        self._limits = limits
        self._windows: dict[str, SlidingWindow] = {}
        self._origin_windows: dict[str, SlidingWindow] = {}
        self._escalations: dict[str, Escalation] = {}

    def admit(self, key: str, now: float, *, origin: bool = False) -> Verdict:
        limits = self._limits
        window = self._windows.setdefault(key, SlidingWindow(limits.connects_per_second, 1.0))
        escalation = self._escalations.get(key)
        if escalation is None:
            escalation = self._escalations[key] = Escalation.websocket(limits)
        blocked = escalation.blocked_for(now)
        if blocked > 0:
            return Verdict(418, blocked, 0, 0)
        windows = [window]
        if origin:
            windows.append(
                self._origin_windows.setdefault(
                    key, SlidingWindow(limits.origin_connects, limits.origin_window)
                )
            )
        if all(w.allows(now) for w in windows):
            for w in windows:
                w.record(now)
            return Verdict(0, 0.0, window.remaining(now), window.remaining(now))
        block = escalation.violation(now)
        if block > 0:
            return Verdict(418, block, 0, 0)
        wait = max(w.retry_after(now) for w in windows)
        return Verdict(429, wait, 0, 0)


class MessageGuard:
    """``websocket-message``: messages per connection, per second and per minute."""

    def __init__(self, limits: Limits) -> None:
        self._second = SlidingWindow(limits.messages_per_second, 1.0)
        self._minute = SlidingWindow(limits.messages_per_minute, 60.0)
        self._escalation = Escalation.websocket(limits)

    def admit(self, now: float) -> Verdict:
        blocked = self._escalation.blocked_for(now)
        if blocked > 0:
            return Verdict(418, blocked, 0, 0)
        if self._second.allows(now) and self._minute.allows(now):
            self._second.record(now)
            self._minute.record(now)
            return Verdict(0, 0.0, self._second.remaining(now), self._minute.remaining(now))
        block = self._escalation.violation(now)
        if block > 0:
            return Verdict(418, block, 0, 0)
        wait = max(self._second.retry_after(now), self._minute.retry_after(now))
        return Verdict(429, wait, 0, 0)

    def record_only(self, now: float) -> None:
        """Count a message that is let through regardless (reaction ``ignore``)."""
        self._second.record(now)
        self._minute.record(now)


class RestGuard:
    """Quotation REST: requests per second per client IP and group, and the IP's block.

    Each group (``market``, ``candle``, ``trade``, ``ticker``, ``orderbook``) has its own budget
    per IP, as documented; continued excess blocks the IP for every group (HTTP 418).
    """

    def __init__(self, limits: Limits) -> None:
        self._limits = limits
        self._windows: dict[tuple[str, str], SlidingWindow] = {}
        self._escalations: dict[str, Escalation] = {}

    def _window(self, ip: str, group: str) -> SlidingWindow:
        window = self._windows.get((ip, group))
        if window is None:
            window = SlidingWindow(self._limits.rest_per_second, 1.0)
            self._windows[(ip, group)] = window
        return window

    def remaining(self, ip: str, group: str, now: float) -> int:
        """Requests ``ip`` may still make in ``group`` within the current second."""
        return self._window(ip, group).remaining(now)

    def admit(self, ip: str, group: str, now: float) -> Verdict:
        escalation = self._escalations.get(ip)
        if escalation is None:
            escalation = self._escalations[ip] = Escalation.rest(self._limits)
        blocked = escalation.blocked_for(now)
        if blocked > 0:
            return Verdict(418, blocked, 0, 0)
        window = self._window(ip, group)
        if window.allows(now):
            window.record(now)
            left = window.remaining(now)
            return Verdict(0, 0.0, left, left)
        block = escalation.violation(now)
        if block > 0:
            return Verdict(418, block, 0, 0)
        return Verdict(429, window.retry_after(now), 0, 0)
