"""Tests for engine.core.ratelimit: exact sliding windows and the 429/418 backoff."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.core.ratelimit import (
    DEFAULT_SAFETY_MARGIN,
    RateLimitBackoff,
    SlidingWindowLimiter,
    connect_limiter,
    message_limiter,
)

# ---------------------------------------------------------------------------------------------
# SlidingWindowLimiter: examples


def test_burst_then_wait_for_the_oldest_event_to_leave() -> None:
    limiter = SlidingWindowLimiter(((5, 1.0),), safety_margin=0.0)
    assert [limiter.try_acquire(10.0) for _ in range(6)] == [True] * 5 + [False]
    assert limiter.delay(10.0) == pytest.approx(1.0)
    assert limiter.delay(10.4) == pytest.approx(0.6)
    assert not limiter.try_acquire(10.999)
    assert limiter.try_acquire(11.0)


def test_safety_margin_widens_every_window() -> None:
    limiter = SlidingWindowLimiter(((1, 1.0),), safety_margin=0.25)
    assert limiter.try_acquire(0.0)
    assert limiter.delay(0.0) == pytest.approx(1.25)
    assert not limiter.try_acquire(1.1)
    assert limiter.try_acquire(1.25)


def test_default_margin_is_documented_value() -> None:
    assert SlidingWindowLimiter(((1, 1.0),)).safety_margin == DEFAULT_SAFETY_MARGIN == 0.1


def test_minute_window_binds_after_the_second_window() -> None:
    limiter = message_limiter(safety_margin=0.0)
    times = [limiter.acquire_at(0.0) for _ in range(101)]
    # 5 per second for 20 seconds exhausts the 100/min budget ...
    assert times[:5] == [0.0] * 5
    assert times[99] == pytest.approx(19.0)
    # ... so the 101st waits until the first event leaves the minute window.
    assert times[100] == pytest.approx(60.0)


def test_acquire_at_queues_reservations_in_call_order() -> None:
    limiter = connect_limiter(per_second=2, safety_margin=0.0)
    granted = [limiter.acquire_at(0.0) for _ in range(5)]
    assert granted == [0.0, 0.0, 1.0, 1.0, 2.0]
    # A caller arriving later, while reservations are still in the future, queues behind them.
    assert limiter.delay(0.5) == pytest.approx(1.5)
    assert not limiter.try_acquire(0.5)
    assert limiter.acquire_at(0.5) == pytest.approx(2.0)
    assert limiter.acquire_at(0.5) == pytest.approx(3.0)


def test_statistics_report_windows_reservations_and_waiting() -> None:
    limiter = message_limiter(safety_margin=0.0)
    for _ in range(7):
        limiter.acquire_at(0.0)
    stats = limiter.statistics(0.0)
    assert [w.in_window for w in stats.windows] == [5, 5]
    assert [(w.limit, w.period) for w in stats.windows] == [(5, 1.0), (100, 60.0)]
    assert stats.total == 7
    assert stats.reserved == 2
    assert stats.total_waited == pytest.approx(2.0)
    later = limiter.statistics(1.5)
    assert [w.in_window for w in later.windows] == [2, 7]
    assert later.reserved == 0


def test_memory_is_trimmed_to_the_longest_window() -> None:
    limiter = SlidingWindowLimiter(((3, 1.0),), safety_margin=0.0)
    for i in range(1000):
        limiter.acquire_at(float(i))
    assert len(limiter._history) <= 3


@pytest.mark.parametrize(
    ("windows", "margin", "message"),
    [
        ((), 0.0, "at least one"),
        (((0, 1.0),), 0.0, "positive int"),
        (((True, 1.0),), 0.0, "positive int"),
        (((1, 0.0),), 0.0, "positive number"),
        (((1, math.inf),), 0.0, "positive number"),
        (((1, 1.0),), -0.1, "safety_margin"),
    ],
)
def test_invalid_configuration_says_what_to_fix(
    windows: tuple[tuple[int, float], ...], margin: float, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        SlidingWindowLimiter(windows, safety_margin=margin)


def test_convenience_constructors_match_upbit_limits() -> None:
    assert connect_limiter().windows == ((5, 1.0),)
    assert message_limiter().windows == ((5, 1.0), (100, 60.0))
    assert "5/1s" in repr(connect_limiter())


# ---------------------------------------------------------------------------------------------
# SlidingWindowLimiter: properties

windows_strategy = st.lists(
    st.tuples(st.integers(1, 6), st.sampled_from([0.5, 1.0, 2.5, 7.0])), min_size=1, max_size=3
)
steps_strategy = st.lists(st.floats(0.0, 3.0, allow_nan=False), min_size=1, max_size=60)


def _timeline(limiter: SlidingWindowLimiter, steps: list[float]) -> tuple[list[float], list[float]]:
    nows: list[float] = []
    granted: list[float] = []
    now = 0.0
    for step in steps:
        now += step
        nows.append(now)
        granted.append(limiter.acquire_at(now))
    return nows, granted


@given(windows=windows_strategy, margin=st.sampled_from([0.0, 0.1]), steps=steps_strategy)
def test_granted_times_never_overfill_any_window(
    windows: list[tuple[int, float]], margin: float, steps: list[float]
) -> None:
    limiter = SlidingWindowLimiter(windows, safety_margin=margin)
    nows, granted = _timeline(limiter, steps)
    assert all(g >= n for g, n in zip(granted, nows, strict=True))
    assert granted == sorted(granted)
    # Every window that can hold the most events starts at an event: check them all.
    for limit, period in windows:
        length = period + margin
        for start in granted:
            inside = sum(1 for t in granted if start <= t < start + length)
            assert inside <= limit, (limit, length, start, granted)


@given(windows=windows_strategy, margin=st.sampled_from([0.0, 0.1]), steps=steps_strategy)
def test_granted_slots_are_as_early_as_possible(
    windows: list[tuple[int, float]], margin: float, steps: list[float]
) -> None:
    limiter = SlidingWindowLimiter(windows, safety_margin=margin)
    nows, granted = _timeline(limiter, steps)
    for k, (now, at) in enumerate(zip(nows, granted, strict=True)):
        floor = max(now, granted[k - 1]) if k else now
        if at == floor:
            continue
        # Waited past the floor: some window must have been exactly full until `at`.
        assert any(
            k >= limit and granted[k - limit] + (period + margin) == at for limit, period in windows
        ), (k, now, at, granted)


@given(
    windows=windows_strategy,
    margin=st.sampled_from([0.0, 0.1]),
    steps=st.lists(st.tuples(st.floats(0.0, 1.5), st.booleans()), min_size=1, max_size=60),
)
def test_delay_is_zero_exactly_when_try_acquire_succeeds(
    windows: list[tuple[int, float]], margin: float, steps: list[tuple[float, bool]]
) -> None:
    limiter = SlidingWindowLimiter(windows, safety_margin=margin)
    now = 0.0
    for step, reserve in steps:
        now += step
        if reserve:
            limiter.acquire_at(now)
            continue
        delay = limiter.delay(now)
        assert delay >= 0.0
        assert (delay == 0.0) == limiter.try_acquire(now)


# ---------------------------------------------------------------------------------------------
# RateLimitBackoff


def test_repeated_429s_grow_the_wait_up_to_the_cap() -> None:
    backoff = RateLimitBackoff(base=1.0, factor=2.0, cap=5.0)
    waits = []
    now = 0.0
    for _ in range(5):
        until = backoff.on_rejected(429, now)
        waits.append(until - now)
        now = until
    assert waits == [1.0, 2.0, 4.0, 5.0, 5.0]
    assert backoff.statistics().strikes == 5


def test_retry_after_is_honoured_when_longer() -> None:
    backoff = RateLimitBackoff(base=1.0)
    assert backoff.on_rejected(429, 10.0, retry_after=7.5) == pytest.approx(17.5)
    assert backoff.is_blocked(17.0)
    assert not backoff.is_blocked(17.5)
    assert backoff.delay(12.5) == pytest.approx(5.0)
    assert backoff.blocked_until(12.5) == pytest.approx(17.5)
    assert backoff.blocked_until(20.0) == 20.0


def test_418_block_waits_at_least_the_floor_and_the_given_block() -> None:
    backoff = RateLimitBackoff(base=1.0, block_floor=60.0)
    assert backoff.on_rejected(418, 0.0) == pytest.approx(60.0)
    assert backoff.on_rejected(418, 60.0, retry_after=300.0) == pytest.approx(360.0)
    stats = backoff.statistics()
    assert (stats.rejections, stats.blocked, stats.rate_limited) == (2, 2, 0)


def test_a_rejection_never_shortens_a_block_in_force() -> None:
    backoff = RateLimitBackoff(base=1.0)
    backoff.on_rejected(418, 0.0, retry_after=100.0)
    assert backoff.on_rejected(429, 1.0) == pytest.approx(100.0)


def test_strikes_are_forgiven_after_a_quiet_period() -> None:
    backoff = RateLimitBackoff(base=1.0, factor=3.0, forgive_after=60.0)
    backoff.on_rejected(429, 0.0)
    assert backoff.on_rejected(429, 1.0) == pytest.approx(4.0)
    assert backoff.on_rejected(429, 100.0) == pytest.approx(101.0)
    assert backoff.statistics().strikes == 1


def test_never_blocked_before_any_rejection() -> None:
    backoff = RateLimitBackoff()
    assert not backoff.is_blocked(0.0)
    assert backoff.delay(0.0) == 0.0
    assert backoff.statistics().blocked_until == -math.inf


@pytest.mark.parametrize(
    ("status", "retry_after", "message"),
    [(500, None, "429 and 418"), (429, -1.0, "retry_after"), (429, math.nan, "retry_after")],
)
def test_backoff_rejects_bad_input(status: int, retry_after: float | None, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RateLimitBackoff().on_rejected(status, 0.0, retry_after=retry_after)


@pytest.mark.parametrize(
    "kwargs",
    [{"base": 0.0}, {"factor": 0.5}, {"cap": 0.5}, {"block_floor": -1.0}, {"forgive_after": 0.0}],
)
def test_backoff_configuration_is_checked(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must be"):
        RateLimitBackoff(**kwargs)
