"""Restart intensity and backoff: the supervisor's arithmetic, with no I/O.

Theory of operation
-------------------
**Intensity** is OTP's "at most R restarts in T seconds". A :class:`RestartWindow` keeps the
timestamps of recent restarts; recording one first forgets entries older than ``now - period``
(an entry exactly ``period`` seconds old still counts, as in OTP's ``add_restart``), then appends
``now``. If more than ``max_restarts`` entries remain, the intensity is exceeded and the supervisor
gives up. The window is *per supervisor*, summed over all its children, and every restart attempt
is recorded, including attempts whose start failed.

**Backoff** spaces restarts out: attempt ``n`` (counting from 0) has the nominal delay
``min(maximum, initial * multiplier ** n)``, from which the actual delay is drawn according to
:class:`Jitter`. A child that stayed up for ``reset_after`` seconds starts again from attempt 0.
Backoff and intensity are independent: a long backoff spreads restarts out, so fewer of them fall
into one window.

Nothing here reads a clock or draws random numbers on its own: callers pass ``now`` and a
``random.Random``, so this module is deterministic and testable without Trio.
"""

from __future__ import annotations

import enum
import math
import random
from collections import deque
from typing import Generic, TypeVar

import attrs

__all__ = ("Backoff", "BackoffPolicy", "Jitter", "RestartIntensity", "RestartWindow")

T = TypeVar("T")


def _finite_non_negative(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not (value >= 0 and math.isfinite(value)):
        raise ValueError(f"{attribute.name} must be a finite number >= 0, got {value!r}")


@attrs.frozen
class RestartIntensity:
    """At most ``max_restarts`` restarts within any ``period`` seconds (OTP's MaxR and MaxT).

    The defaults are OTP's: 1 restart in 5 seconds. Nested supervisors multiply: a leaf can be
    restarted up to the product of the intensities on its path before the root gives up.
    """

    max_restarts: int = attrs.field(default=1, validator=attrs.validators.ge(0))
    """Restarts allowed inside one window; one more makes the supervisor give up."""

    period: float = attrs.field(default=5.0)
    """Length of the sliding window, in seconds of the Trio clock."""

    @period.validator
    def _check_period(self, attribute: attrs.Attribute[float], value: float) -> None:
        if not value > 0:
            raise ValueError(f"period must be > 0 seconds, got {value!r}")


@attrs.define
class RestartWindow(Generic[T]):
    """The sliding window of recent restarts, each stored with a caller-chosen record ``T``."""

    intensity: RestartIntensity
    _entries: deque[tuple[float, T]] = attrs.field(init=False, factory=deque)

    def record(self, now: float, item: T) -> bool:
        """Record a restart at ``now``; return ``False`` if that exceeds the intensity."""
        if self._entries and now < self._entries[-1][0]:
            raise ValueError(
                f"restart times must not go backwards ({now} < {self._entries[-1][0]})"
            )
        self._expire(now)
        self._entries.append((now, item))
        return len(self._entries) <= self.intensity.max_restarts

    def count(self, now: float) -> int:
        """How many recorded restarts are still inside the window at ``now``."""
        return sum(1 for t, _ in self._entries if self._inside(t, now))

    def entries(self, now: float) -> tuple[tuple[float, T], ...]:
        """The ``(time, record)`` pairs inside the window at ``now``, oldest first."""
        return tuple(entry for entry in self._entries if self._inside(entry[0], now))

    def _inside(self, t: float, now: float) -> bool:
        return now - t <= self.intensity.period

    def _expire(self, now: float) -> None:
        while self._entries and not self._inside(self._entries[0][0], now):
            self._entries.popleft()


class Jitter(enum.Enum):
    """How the actual delay is drawn from the nominal delay ``d`` of an attempt."""

    NONE = "none"
    """Exactly ``d``: predictable, but children that fail together restart together."""

    FULL = "full"
    """Uniform in ``[0, d]``: spreads a herd the most, but may restart almost at once."""

    EQUAL = "equal"
    """Uniform in ``[d/2, d]``: never sooner than half the nominal delay, still spread out."""

    FRACTION = "fraction"
    """Uniform in ``[d * (1 - f), d]`` for the policy's ``fraction`` ``f``: EQUAL is ``f = 0.5``,
    FULL ``f = 1``, NONE ``f = 0``."""


@attrs.frozen
class BackoffPolicy:
    """Jittered exponential backoff between restarts of one child.

    The default jitter is :attr:`Jitter.EQUAL`: a crash loop always waits at least half the
    nominal delay, while children that fail together (an exchange restart) still spread over the
    other half. :meth:`none` gives OTP's behaviour: restart at once.
    """

    initial: float = attrs.field(default=0.5, validator=_finite_non_negative)
    """Nominal delay before the first restart, in seconds."""

    maximum: float = attrs.field(default=30.0, validator=_finite_non_negative)
    """Upper bound of the nominal delay."""

    multiplier: float = attrs.field(default=2.0)
    """Growth factor of the nominal delay per consecutive restart (``>= 1``)."""

    jitter: Jitter = Jitter.EQUAL
    """How the actual delay is drawn from the nominal one."""

    reset_after: float = attrs.field(default=60.0)
    """A child that stayed up at least this long restarts from ``initial`` again."""

    fraction: float = attrs.field(default=0.5)
    """With :attr:`Jitter.FRACTION`: how much of the nominal delay the jitter may take off."""

    @fraction.validator
    def _check_fraction(self, attribute: attrs.Attribute[float], value: float) -> None:
        if not 0 <= value <= 1:
            raise ValueError(f"fraction must be between 0 and 1, got {value!r}")

    @multiplier.validator
    def _check_multiplier(self, attribute: attrs.Attribute[float], value: float) -> None:
        if not (value >= 1 and math.isfinite(value)):
            raise ValueError(f"multiplier must be a finite number >= 1, got {value!r}")

    @reset_after.validator
    def _check_reset_after(self, attribute: attrs.Attribute[float], value: float) -> None:
        if not value > 0:
            raise ValueError(f"reset_after must be > 0 seconds, got {value!r}")

    def __attrs_post_init__(self) -> None:
        if self.maximum < self.initial:
            raise ValueError(
                f"maximum ({self.maximum}) must be >= initial ({self.initial}); "
                "raise maximum or lower initial"
            )

    @classmethod
    def none(cls) -> BackoffPolicy:
        """No delay at all: restart as soon as the supervisor has handled the exit (OTP)."""
        return cls(initial=0.0, maximum=0.0, jitter=Jitter.NONE)

    def nominal(self, attempt: int) -> float:
        """The un-jittered delay of attempt ``attempt`` (0 for the first restart)."""
        if attempt < 0:
            raise ValueError(f"attempt must be >= 0, got {attempt}")
        if self.initial == 0:
            return 0.0
        try:
            grown = self.initial * self.multiplier**attempt
        except OverflowError:
            return self.maximum
        return min(self.maximum, grown)

    def bounds(self, attempt: int) -> tuple[float, float]:
        """The closed interval the delay of attempt ``attempt`` is drawn from."""
        nominal = self.nominal(attempt)
        if self.jitter is Jitter.FULL:
            return (0.0, nominal)
        if self.jitter is Jitter.EQUAL:
            return (nominal / 2, nominal)
        if self.jitter is Jitter.FRACTION:
            return (nominal * (1 - self.fraction), nominal)
        return (nominal, nominal)

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Draw the delay of attempt ``attempt`` from ``rng`` (no draw when there is no jitter)."""
        low, high = self.bounds(attempt)
        if low == high:
            return low
        # uniform() may round onto (or, in theory, past) an end point; keep the bound exact.
        return min(high, max(low, rng.uniform(low, high)))


@attrs.define
class Backoff:
    """The backoff state of one child: which attempt comes next."""

    policy: BackoffPolicy
    attempt: int = 0
    """Consecutive restarts so far; the next delay is drawn for this attempt."""

    #: The last incarnation was healthy: the next restart comes at once.
    immediate: bool = False

    def next_delay(self, rng: random.Random) -> float:
        """The delay before the next restart; advances to the following attempt."""
        if self.immediate:
            self.immediate = False
            return 0.0
        delay = self.policy.delay(self.attempt, rng)
        self.attempt += 1
        return delay

    def after_healthy(self) -> None:
        """The last incarnation was healthy: restart at once, then from attempt 0."""
        self.attempt = 0
        self.immediate = True

    def observe_uptime(self, seconds: float) -> None:
        """Tell the policy how long the last incarnation ran; a long run resets the backoff."""
        if seconds >= self.policy.reset_after:
            self.attempt = 0
