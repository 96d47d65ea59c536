"""Connection failures for operators: one WARNING per new cause, one INFO on recovery.

A server that is down for minutes makes a ticket fail every backoff step, and a flapping link
connects and drops again every few seconds; logging each attempt would bury everything else. A
cause is "new" when its text differs with the numbers blanked (durations, ports and counts change
from attempt to attempt, the cause does not). A streak ends only once a connection stayed up for
``HEALTHY_AFTER`` seconds: the next failure after that is news again. Sans-IO: the caller passes
the time.
"""

from __future__ import annotations

import logging
from typing import Final

from engine.observability.operator_events import shape_of

__all__ = ("HEALTHY_AFTER", "FailureLog")

#: Seconds a connection must stay up for its next failure to start a new streak.
HEALTHY_AFTER: Final = 60.0

_log = logging.getLogger("engine.connection")
#: The longest cause a log line quotes.
_CAUSE_CHARS: Final = 300


class FailureLog:
    """The failure streak of one connection (a ticket), and what of it was logged."""

    __slots__ = ("_announced", "_logged", "_name", "_up_since", "attempts", "since")

    def __init__(self, name: str) -> None:
        self._name = name
        self._logged: str | None = None
        self._announced = False
        self._up_since: float | None = None
        #: Failures in the current streak, and when the first of them happened.
        self.attempts = 0
        self.since: float | None = None

    def failed(self, cause: str, now: float) -> None:
        """A connection or connect attempt failed because of ``cause``."""
        up_since, self._up_since = self._up_since, None
        if up_since is not None and now - up_since >= HEALTHY_AFTER:
            self.attempts, self.since, self._logged = 0, None, None  # a new streak
        self.attempts += 1
        if self.since is None:
            self.since = now
        shape = shape_of(cause)
        if shape == self._logged:
            return
        self._logged = shape
        self._announced = False
        _log.warning(
            "%s: %s (attempt %d; retrying with backoff)",
            self._name,
            cause[:_CAUSE_CHARS],
            self.attempts,
            extra={"ticket": self._name, "cause": cause, "attempt": self.attempts},
        )

    def connected(self, now: float) -> None:
        """A connection was opened: one INFO line after the streak's last WARNING."""
        self._up_since = now
        if self.since is not None and not self._announced:
            self._announced = True
            _log.info(
                "%s connected again after %d failed attempt(s) over %.1f s",
                self._name,
                self.attempts,
                now - self.since,
                extra={"ticket": self._name, "attempts": self.attempts},
            )
