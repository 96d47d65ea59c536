"""Issue 6's acceptance: Hypothesis-drawn FaultPlans raced against a random subscription
workload, on the emulator, and every resilience property checked once the engine settles.

Each example runs a fresh emulator (small seeded catalog) and engine under
``MockClock(autojump_threshold=0)``: ``trio.run`` per example, since Hypothesis drives the test
from a synchronous function. The workload, the checks and the replay format live in
``_fault_workload.py``; the properties are (a) to (f) there.

Running more, and replaying:

- ``HYPOTHESIS_PROFILE=long`` runs ``UPBIT_FAULT_EXAMPLES`` examples (default 1000).
- A failing example prints its plan, its workload and a line
  ``UPBIT_FAULT_EXAMPLE='{...}'``; set that variable to run exactly that example again
  (``test_replay``). ``UPBIT_FAULT_SEED=<n>[,<n>...]`` runs the examples built from those seeds.
- ``ERROR_FRAMES`` below is the switch for the error-frame fault kind.
"""

from __future__ import annotations

import os
from pathlib import Path

import trio
from hypothesis import HealthCheck, Phase, given, note, settings
from hypothesis import strategies as st
from trio.testing import MockClock

from engine.testing.faults import InjectError

from ._fault_workload import (
    FAULT_ACTIONS,
    Example,
    Report,
    example_from_seed,
    examples,
    run_example,
)

#: Whether plans inject error frames (``InjectError``). On: the engine either traces one to the
#: request that caused it (that subscription fails with the server's error, an outcome the
#: checks accept) or restarts the ticket. Set False to leave the kind out of the drawn plans.
ERROR_FRAMES = True
ACTIONS = FAULT_ACTIONS if ERROR_FRAMES else tuple(a for a in FAULT_ACTIONS if a is not InjectError)

LONG = os.environ.get("HYPOTHESIS_PROFILE", "") in {"long", "faults-long", "thorough"}
#: CI: every fault kind several times over (about 0.7 s of CPU per example).
CI_EXAMPLES = 25
CI_DRIFT_EXAMPLES = 25
LONG_EXAMPLES = int(os.environ.get("UPBIT_FAULT_EXAMPLES", "1000"))
#: Faults per plan: the long run also tries denser plans.
MAX_FAULTS = 10 if LONG else 6
#: Seeds ``test_replay`` runs when no UPBIT_FAULT_SEED is given: outages from error frames,
#: malformed frames and drops, a failed slow reader, modifies and a hard unsubscribe.
DEFAULT_SEEDS = (5, 8)


def _settings(examples: int) -> settings:
    return settings(
        max_examples=examples,
        deadline=None,
        print_blob=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


def _seed_scheduler() -> None:
    # Trio's scheduler breaks ties with one module-level Random. Hypothesis seeds it with 0
    # before every example (pytest-trio registers it); a replay outside Hypothesis does the
    # same, so it interleaves tasks exactly as the Hypothesis run did.
    trio._core._run._r.seed(0)


def _run(example: Example) -> Report:
    note(example.describe())
    note(f"replay: UPBIT_FAULT_EXAMPLE='{example.to_json()}'")
    report = trio.run(run_example, example, clock=MockClock(autojump_threshold=0))
    note(
        f"{report.subscriptions} subscriptions, {report.outages} outages, {report.items} items "
        f"read, failed: {report.failed}, settled {report.settled_after} s after the plan"
    )
    return report


@_settings(LONG_EXAMPLES if LONG else CI_EXAMPLES)
@given(st.data())
def test_every_property_holds_under_random_faults(data: st.DataObject) -> None:
    example = data.draw(examples(ACTIONS, max_faults=MAX_FAULTS), label="example")
    report = _run(example)
    assert not report.violations, "\n" + report.summary()


@_settings(LONG_EXAMPLES if LONG else CI_DRIFT_EXAMPLES)
@given(st.data())
def test_streams_stay_live_when_the_wire_drifts(data: st.DataObject) -> None:
    """The same properties, with the server drifting from the documented wire (SetDrift steps:
    other orderbook depths, missing SNAPSHOTs, nulls, old shapes, garbage and unknown frames),
    plus liveness (g)."""
    example = data.draw(examples(ACTIONS, max_faults=MAX_FAULTS, drift=True), label="example")
    report = _run(example)
    assert not report.violations, "\n" + report.summary()


def _replays() -> list[Example]:
    raw = os.environ.get("UPBIT_FAULT_EXAMPLE")
    if raw:
        text = raw[1:] if raw.startswith("@") else raw
        if raw.startswith("@"):
            with open(text, encoding="utf-8") as file:
                text = file.read()
        return [Example.from_json(text)]
    seeds = os.environ.get("UPBIT_FAULT_SEED")
    chosen = [int(s) for s in seeds.split(",")] if seeds else list(DEFAULT_SEEDS)
    return [example_from_seed(seed) for seed in chosen]


def test_replay() -> None:
    """The examples named by UPBIT_FAULT_EXAMPLE / UPBIT_FAULT_SEED (default: a few seeds)."""
    for example in _replays():
        _seed_scheduler()
        report = trio.run(run_example, example, clock=MockClock(autojump_threshold=0))
        assert not report.violations, f"\n{example.describe()}\n{report.summary()}"
        assert report.settled_after is not None


def test_one_seed_replays_the_same_run() -> None:
    """Same seed, same run: the emulator's whole history and every item each subscriber read
    (with its time) agree between two runs."""
    example = example_from_seed(DEFAULT_SEEDS[1])
    runs = []
    for _ in range(2):
        _seed_scheduler()
        runs.append(trio.run(run_example, example, clock=MockClock(autojump_threshold=0)))
    first, second = runs
    assert first.outages > 0, "the example must exercise reconnects"
    assert len(first.history) > 10
    assert first.history == second.history
    assert first.deliveries == second.deliveries
    assert first.violations == second.violations


def test_examples_round_trip_through_json() -> None:
    for seed in range(20):
        example = example_from_seed(seed)
        assert Example.from_json(example.to_json()) == example


@settings(max_examples=25, deadline=None, phases=[Phase.generate])
@given(st.data())
def test_drawn_examples_round_trip_through_json(data: st.DataObject) -> None:
    example = data.draw(examples(ACTIONS))
    assert Example.from_json(example.to_json()) == example


#: Fault examples that once failed: three broke the documented order (Interrupted, Gap, SNAPSHOT,
#: REALTIME) or liveness, one overflowed a fast reader's buffer with a burst of one socket read.
#: Each file is one ``Example.to_json()``; see docs/DESIGN.md on each.
REGRESSIONS = sorted(
    (Path(__file__).resolve().parents[1] / "data" / "fault-examples").glob("*.json")
)


def test_regression_examples_keep_the_documented_order() -> None:
    assert REGRESSIONS, "the regression examples are missing"
    for path in REGRESSIONS:
        example = Example.from_json(path.read_text(encoding="utf-8"))
        _seed_scheduler()
        report = trio.run(run_example, example, clock=MockClock(autojump_threshold=0))
        assert not report.violations, f"{path.name}\n{example.describe()}\n{report.summary()}"
        assert report.outages > 0
