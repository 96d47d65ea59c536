"""The stall judgement (engine.core.stall), sans-IO: a busy connection that goes silent is
probed within seconds, a quiet one is judged by Upbit's 10 s status heartbeat, and a long
simulated run of quiet and bursty markets, with the heartbeat arriving, is never called stalled.
"""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.core.stall import StallDetector, Verdict

CHECK = 0.5
HEARTBEAT = 12.5


def _detector(**options: object) -> StallDetector:
    return StallDetector(heartbeat_timeout=HEARTBEAT, **options)  # type: ignore[arg-type]


def _run(
    detector: StallDetector, arrivals: list[float], until: float
) -> list[tuple[float, Verdict]]:
    """Feed frame arrival times to the detector, checking every CHECK seconds; the verdicts
    other than OK, with their times."""
    detector.start(0.0, 0)
    verdicts = []
    frames = 0
    last: float | None = None
    index = 0
    now = 0.0
    while now < until:
        now = round(now + CHECK, 6)
        while index < len(arrivals) and arrivals[index] <= now:
            frames += 1
            last = arrivals[index]
            index += 1
        judged = detector.observe(now, frames, last)
        if judged.verdict is not Verdict.OK:
            verdicts.append((now, judged.verdict))
    return verdicts


def test_a_busy_connection_that_goes_silent_is_probed_within_three_seconds() -> None:
    # 20 frames/s for a minute, then nothing.
    arrivals = [i / 20 for i in range(1, 20 * 60)]
    verdicts = _run(_detector(), arrivals, until=75.0)
    probes = [t for t, v in verdicts if v is Verdict.PROBE]
    assert probes, verdicts
    assert probes[0] - arrivals[-1] <= 2.5  # the 2 s floor, plus one check interval
    assert len(probes) == 1  # one probe per silence: a pong means a quiet market
    stalls = [t for t, v in verdicts if v is Verdict.STALLED]
    assert stalls[0] - arrivals[-1] <= HEARTBEAT + CHECK


def test_a_quiet_connection_is_judged_by_the_heartbeat_only() -> None:
    # Only the status frame every 10 s: never probed, never stalled; then the heartbeat stops.
    arrivals = [3.0 + 10.0 * i for i in range(30)]
    detector = _detector()
    verdicts = _run(detector, arrivals, until=arrivals[-1] + 20.0)
    assert [v for _, v in verdicts if v is Verdict.PROBE] == []
    (first, verdict), *_ = verdicts
    assert verdict is Verdict.STALLED
    assert HEARTBEAT < first - arrivals[-1] <= HEARTBEAT + CHECK


def test_without_a_heartbeat_only_probes_judge() -> None:
    detector = StallDetector(heartbeat_timeout=None)
    arrivals = [i / 10 for i in range(1, 600)]
    verdicts = _run(detector, arrivals, until=300.0)
    assert [v for _, v in verdicts] == [Verdict.PROBE]


def test_probing_can_be_turned_off() -> None:
    arrivals = [i / 20 for i in range(1, 1200)]
    verdicts = _run(_detector(probing=False), arrivals, until=75.0)
    assert {v for _, v in verdicts} == {Verdict.STALLED}


def test_the_rate_outlives_a_reconnect() -> None:
    detector = _detector()
    _run(detector, [i / 20 for i in range(1, 1200)], until=60.0)
    learned = detector.rate
    assert learned > 10
    detector.start(100.0, 5000)
    assert detector.rate == learned
    assert detector.probe_after() == 2.0


def _market(seed: int, minutes: int) -> list[float]:
    """Frame arrivals of a realistic connection: the 10 s status heartbeat (its phase drawn),
    plus trades in bursts of Poisson arrivals separated by quiet spells of up to a minute."""
    rng = random.Random(seed)
    end = minutes * 60.0
    phase = rng.uniform(0, 10)
    arrivals = [phase + 10.0 * i for i in range(int(end / 10))]
    now = 0.0
    while now < end:
        now += rng.expovariate(1 / rng.choice([1.0, 5.0, 20.0, 60.0]))  # quiet spell
        burst_rate = rng.choice([0.5, 2.0, 10.0, 50.0])
        for _ in range(rng.randint(1, 300)):
            now += rng.expovariate(burst_rate)
            arrivals.append(now)
    return sorted(t for t in arrivals if t < end)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_no_false_stall_in_an_hour_of_quiet_and_bursty_markets(seed: int) -> None:
    # Probes may happen (a burst ended; the pong answers them), stalls must not: the heartbeat
    # keeps every silence under 10 s.
    verdicts = _run(_detector(), _market(seed, 60), until=3600.0)
    assert [t for t, v in verdicts if v is Verdict.STALLED] == []
