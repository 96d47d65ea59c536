"""The sans-IO restart window and backoff policy (no Trio involved)."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors.intensity import Backoff, BackoffPolicy, Jitter, RestartIntensity, RestartWindow
from tests.actors._puppets import examples

# -- RestartIntensity ------------------------------------------------------------------------------


def test_intensity_defaults_are_otps() -> None:
    assert RestartIntensity() == RestartIntensity(max_restarts=1, period=5.0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"max_restarts": -1}, "max_restarts"), ({"period": 0}, "period"), ({"period": -2}, "period")],
)
def test_intensity_rejects_nonsense(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RestartIntensity(**kwargs)  # type: ignore[arg-type]


# -- RestartWindow ---------------------------------------------------------------------------------


def test_window_allows_max_restarts_then_reports_exceeded() -> None:
    window: RestartWindow[str] = RestartWindow(RestartIntensity(max_restarts=2, period=10))
    assert window.record(0.0, "a")
    assert window.record(1.0, "b")
    assert not window.record(2.0, "c")
    assert window.count(2.0) == 3
    assert window.entries(2.0) == ((0.0, "a"), (1.0, "b"), (2.0, "c"))


def test_window_slides() -> None:
    window: RestartWindow[str] = RestartWindow(RestartIntensity(max_restarts=1, period=5))
    assert window.record(0.0, "a")
    assert window.record(5.5, "b")  # "a" left the window
    assert window.entries(5.5) == ((5.5, "b"),)
    assert not window.record(6.0, "c")


def test_window_edge_counts_like_otp() -> None:
    # OTP keeps restarts with R >= Now - Period: one exactly `period` old still counts.
    window: RestartWindow[str] = RestartWindow(RestartIntensity(max_restarts=1, period=5))
    assert window.record(0.0, "a")
    assert not window.record(5.0, "b")
    assert window.count(5.0) == 2
    assert window.count(5.000001) == 1


def test_window_with_zero_intensity_gives_up_on_the_first_restart() -> None:
    window: RestartWindow[str] = RestartWindow(RestartIntensity(max_restarts=0, period=1))
    assert not window.record(0.0, "a")


def test_window_refuses_time_travel() -> None:
    window: RestartWindow[str] = RestartWindow(RestartIntensity())
    window.record(3.0, "a")
    with pytest.raises(ValueError, match="backwards"):
        window.record(2.0, "b")


@examples(ci=200, long=5_000)
@given(
    max_restarts=st.integers(0, 5),
    period=st.sampled_from([0.5, 1.0, 5.0, 60.0]),
    gaps=st.lists(st.sampled_from([0.0, 0.1, 0.5, 1.0, 2.5, 5.0, 30.0]), max_size=40),
)
def test_window_matches_a_naive_count(max_restarts: int, period: float, gaps: list[float]) -> None:
    window: RestartWindow[int] = RestartWindow(RestartIntensity(max_restarts, period))
    times: list[float] = []
    now = 0.0
    for index, gap in enumerate(gaps):
        now += gap
        times.append(now)
        inside = [t for t in times if now - t <= period]
        assert window.record(now, index) == (len(inside) <= max_restarts)
        assert window.count(now) == len(inside)
        assert [t for t, _ in window.entries(now)] == inside


# -- BackoffPolicy ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"initial": -1.0}, "initial"),
        ({"initial": math.inf, "maximum": math.inf}, "initial"),
        ({"initial": 2.0, "maximum": 1.0}, "maximum"),
        ({"multiplier": 0.5}, "multiplier"),
        ({"multiplier": math.nan}, "multiplier"),
        ({"reset_after": 0.0}, "reset_after"),
    ],
)
def test_backoff_policy_rejects_nonsense(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        BackoffPolicy(**kwargs)  # type: ignore[arg-type]


def test_nominal_delay_grows_exponentially_up_to_the_maximum() -> None:
    policy = BackoffPolicy(initial=0.5, maximum=5.0, multiplier=2.0)
    assert [policy.nominal(n) for n in range(6)] == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]
    assert policy.nominal(10_000) == 5.0  # no overflow however long the crash loop
    with pytest.raises(ValueError, match="attempt"):
        policy.nominal(-1)


def test_no_backoff_is_zero_and_draws_nothing() -> None:
    policy = BackoffPolicy.none()
    rng = random.Random(7)
    state = rng.getstate()
    assert [policy.delay(n, rng) for n in range(5)] == [0.0] * 5
    assert rng.getstate() == state


@pytest.mark.parametrize(
    ("jitter", "bounds"),
    [(Jitter.NONE, (4.0, 4.0)), (Jitter.FULL, (0.0, 4.0)), (Jitter.EQUAL, (2.0, 4.0))],
)
def test_bounds_per_jitter(jitter: Jitter, bounds: tuple[float, float]) -> None:
    policy = BackoffPolicy(initial=1.0, maximum=8.0, multiplier=2.0, jitter=jitter)
    assert policy.bounds(2) == bounds


def test_default_jitter_is_equal() -> None:
    assert BackoffPolicy().jitter is Jitter.EQUAL


@examples(ci=200, long=5_000)
@given(
    initial=st.floats(0.0, 10.0),
    extra=st.floats(0.0, 100.0),
    multiplier=st.floats(1.0, 4.0),
    jitter=st.sampled_from(list(Jitter)),
    attempt=st.integers(0, 2_000),
    seed=st.integers(0, 2**32 - 1),
)
def test_delay_stays_within_bounds(
    initial: float, extra: float, multiplier: float, jitter: Jitter, attempt: int, seed: int
) -> None:
    policy = BackoffPolicy(
        initial=initial, maximum=initial + extra, multiplier=multiplier, jitter=jitter
    )
    low, high = policy.bounds(attempt)
    assert 0.0 <= low <= high <= policy.maximum
    assert low <= policy.delay(attempt, random.Random(seed)) <= high


def test_delays_are_reproducible_with_a_seed() -> None:
    policy = BackoffPolicy(initial=1.0, maximum=60.0, jitter=Jitter.FULL)
    first = [policy.delay(n, random.Random(42)) for n in range(8)]
    second = [policy.delay(n, random.Random(42)) for n in range(8)]
    assert first == second
    assert len(set(first)) > 1


# -- Backoff ---------------------------------------------------------------------------------------


def test_backoff_advances_per_restart_and_resets_after_a_long_run() -> None:
    backoff = Backoff(BackoffPolicy(initial=1.0, maximum=10.0, jitter=Jitter.NONE, reset_after=30))
    rng = random.Random(0)
    assert [backoff.next_delay(rng) for _ in range(3)] == [1.0, 2.0, 4.0]
    backoff.observe_uptime(29.9)
    assert backoff.next_delay(rng) == 8.0
    backoff.observe_uptime(30.0)
    assert backoff.attempt == 0
    assert backoff.next_delay(rng) == 1.0


def test_fraction_jitter_takes_at_most_its_fraction_off_the_nominal_delay() -> None:
    policy = BackoffPolicy(initial=1.0, maximum=8.0, jitter=Jitter.FRACTION, fraction=0.2)
    assert policy.bounds(0) == (0.8, 1.0)
    assert policy.bounds(5) == (8.0 * 0.8, 8.0)
    rng = random.Random(3)
    draws = [policy.delay(2, rng) for _ in range(200)]
    assert min(draws) >= 3.2
    assert max(draws) <= 4.0
    assert len(set(draws)) > 100, "drawn, not fixed"
    assert BackoffPolicy(jitter=Jitter.FRACTION, fraction=0.0).bounds(1) == (1.0, 1.0)
    with pytest.raises(ValueError, match="fraction"):
        BackoffPolicy(jitter=Jitter.FRACTION, fraction=1.5)
