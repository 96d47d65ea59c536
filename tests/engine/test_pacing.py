"""Slots are recorded when the caller may act, so late scheduling never bunches events."""

from __future__ import annotations

import random

import trio

from engine.core.ratelimit import message_limiter
from engine.runtime.pacing import acquire_slot


async def test_acted_times_never_exceed_any_window(autojump_clock: object) -> None:
    rng = random.Random(5)
    limiter = message_limiter(per_second=5, per_minute=100)
    acted: list[float] = []
    for _ in range(150):
        # Irregular work between sends, like a ticket that is sometimes scheduled late.
        await trio.sleep(rng.choice([0.0, 0.0, 0.05, 0.3, 1.2]))
        await acquire_slot(limiter)
        acted.append(trio.current_time())
    for i, start in enumerate(acted):
        in_second = [t for t in acted[i:] if t - start < 1.0]
        in_minute = [t for t in acted[i:] if t - start < 60.0]
        assert len(in_second) <= 5
        assert len(in_minute) <= 100
    # And it does not wait more than it must: 150 events need at least one minute, not much more.
    assert acted[-1] - acted[0] < 120
