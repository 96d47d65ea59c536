"""One log line per key per interval, and how many it stood for: the rate limit every
``engine.*`` log source shares (the frame report, the journal, the gateway's NATS callbacks).
Sans-IO: the clock is passed in."""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

__all__ = ("MAX_THROTTLE_KEYS", "LogThrottle")

#: Keys remembered before the throttle forgets them all (keys can carry ticket and subscription
#: ids, which come and go).
MAX_THROTTLE_KEYS: Final = 4096


class LogThrottle:
    """Lets one line per key through every ``interval`` seconds; counts the rest."""

    __slots__ = ("_clock", "_interval", "_last", "_suppressed")

    def __init__(self, clock: Callable[[], float], interval: float) -> None:
        self._clock = clock
        self._interval = interval
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    @property
    def interval(self) -> float:
        return self._interval

    def admit(self, key: str) -> int | None:
        """The number of lines suppressed since the last one, if a line may go out now."""
        now = self._clock()
        last = self._last.get(key)
        if last is not None and now - last < self._interval:
            self._suppressed[key] = self._suppressed.get(key, 0) + 1
            return None
        if len(self._last) >= MAX_THROTTLE_KEYS:
            self._last.clear()
            self._suppressed.clear()
        self._last[key] = now
        return self._suppressed.pop(key, 0)
