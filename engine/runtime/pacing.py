"""Waiting for a rate limiter's slot on Trio's clock.

The slot is recorded at the moment the caller may act, not reserved ahead: a reservation made
before a sleep is honoured late whenever the task is scheduled late, and late sends bunch up
inside one window (the emulator caught six requests within 0.95 s that way).
"""

from __future__ import annotations

import trio

from engine.core.ratelimit import SlidingWindowLimiter

__all__ = ("acquire_slot",)


async def acquire_slot(limiter: SlidingWindowLimiter) -> None:
    """Return once one more event is allowed, with that event recorded at the current time.

    The caller must act (send, connect) without awaiting anything else first.
    """
    while True:
        now = trio.current_time()
        if limiter.try_acquire(now):
            return
        await trio.sleep(limiter.delay(now))
