"""Recovery after connection loss: the engine against the emulator on loopback, real clock.

Measures, for each scenario, over repeated trials (each a fresh engine, see
``bench/_recovery_trials.py``):

* **drops**: the emulator drops every connection (abort without a close frame, or a close
  frame); per subscriber, the time from the loss to the first REALTIME message after the Gap,
  and to every stream of the subscription confirmed by a fresh SNAPSHOT. For one code on
  ``ticker`` and for every KRW pair of the emulator's catalog on ``ticker``, ``trade`` and
  ``orderbook`` (one subscriber per type), with the default backoff and with the smallest;
* **server restarts**: the emulator stops listening, drops everything, stays down for a short
  downtime and listens again, with several realtime tickets (a smaller ``ticket_capacity``);
  times are given from the moment the server listens again, with the downtime reported beside;
* all of it again with 30 ms added to every frame the emulator sends.

Then, on Trio's ``MockClock`` (virtual time: protocol timing, deterministic for a seed), the
continuity scenarios of ``bench/_recovery_continuity.py``: stall detection on a busy and on a
quiet connection, the share of time offline under periodic drops, and a long fault-free run of
quiet and busy pairs (no false restart); and the backfill scenarios of
``bench/_recovery_backfill.py``: trade completeness under random faults, and the time from a
reconnect to the end of backfill for 1, 30 and every KRW code. Each part gets its own section of
docs/BENCHMARKS.md.

Run: ``uv run python bench/recovery.py`` (a few minutes; ``--quick`` for a short smoke run that
does not touch docs/BENCHMARKS.md; ``--rounds N`` trials per drop scenario; ``--only recovery``,
``--only continuity`` or ``--only backfill`` for one part).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs
import trio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._engine_emulator import krw_codes
from bench._recovery_backfill import (
    BACKFILL_DEFAULT,
    BACKFILL_QUICK,
    backfill_report,
    run_backfill,
)
from bench._recovery_continuity import (
    CONTINUITY_DEFAULT,
    CONTINUITY_QUICK,
    continuity_report,
    run_continuity,
)
from bench._recovery_emulator import FaultEmulator
from bench._recovery_report import (
    Scenario,
    ScenarioResult,
    drop_table,
    everything_back,
    failures,
    ms,
    percentile,
    restart_table,
)
from bench._recovery_trials import Fault, TrialResult, Workload, run_trial
from bench._report import write_section
from engine.config import EngineConfig
from engine.markets import MarketCatalog
from engine.rest import fetch_catalog
from engine.testing import default_catalog
from engine.testing.faults import DropHow

__all__ = ("Runs", "Settings", "long_outage", "main", "report", "run_all", "scenarios")

TYPES = ("ticker", "trade", "orderbook")
#: The smallest backoff worth measuring: ``backoff_initial`` must be > 0 (EngineConfig rejects
#: 0), and at 1 ms the delay is far below everything else in a reconnect.
MIN_BACKOFF: dict[str, Any] = {"backoff_initial": 0.001}
#: The performance targets, seconds: snapshot, realtime connect, resubscribe, and the aim for
#: every pair on loopback.
FLOOR_SNAPSHOT, FLOOR_CONNECT, FLOOR_RESUBSCRIBE, AIM_ALL_PAIRS = 3.0, 5.0, 10.0, 1.0


@attrs.frozen
class Settings:
    #: Trials per drop scenario and per restart scenario.
    rounds: int
    restart_rounds: int
    kinds: tuple[DropHow, ...]
    latencies: tuple[float, ...]
    #: Seconds the server stays down in a restart.
    downtime: float
    #: Seconds a trial may take to recover before it counts as failed.
    within: float
    seed: int
    #: A longer server outage (default engine, no added latency): seconds down, and trials.
    long_downtime: float
    long_rounds: int


DEFAULT = Settings(
    rounds=8,
    restart_rounds=3,
    kinds=("abort", "close1000"),
    latencies=(0.0, 0.03),
    downtime=0.5,
    within=15.0,
    seed=20261127,
    long_downtime=15.0,
    long_rounds=1,
)
QUICK = attrs.evolve(DEFAULT, rounds=2, restart_rounds=1, long_rounds=0)


def scenarios(settings: Settings, latency: float) -> tuple[list[Scenario], list[Scenario]]:
    """The drop scenarios and the restart scenarios run at ``latency``."""
    codes = krw_codes()
    one = Workload("1 code (KRW-BTC), `ticker`", (("ticker", ("KRW-BTC",)),))
    every = tuple((data_type, codes) for data_type in TYPES)
    all_pairs = Workload(
        f"{len(codes)} KRW pairs x `ticker`, `trade`, `orderbook` (3 subscribers)", every
    )
    default = "default (`backoff_initial` 0.5 s)"
    minimum = "minimum (`backoff_initial` 1 ms)"
    drops: list[Scenario] = []
    for workload in (one, all_pairs):
        for how in settings.kinds:
            drops.append(Scenario(workload, Fault("drop", how), default, {}, latency))
        drops.append(
            Scenario(workload, Fault("drop", settings.kinds[0]), minimum, MIN_BACKOFF, latency)
        )
    restart = Fault("restart", "abort", settings.downtime)
    four = Workload(
        "4 (capacity 75 codes)", every, {"realtime_pool_size": 4, "ticket_capacity": 75}
    )
    six = Workload("6 (capacity 50 codes)", every, {"realtime_pool_size": 6, "ticket_capacity": 50})
    restarts = [
        Scenario(four, restart, default, {}, latency),
        Scenario(four, restart, minimum, MIN_BACKOFF, latency),
        Scenario(six, restart, default, {}, latency),
    ]
    return drops, restarts


def long_outage(settings: Settings) -> Scenario:
    """The default engine (one ticket carries every KRW pair) through a longer outage: how long
    the backoff, grown during the outage, keeps it away once the server is back."""
    codes = krw_codes()
    workload = Workload(
        f"1 (default pool and capacity), {len(codes)} KRW pairs x 3 types",
        tuple((data_type, codes) for data_type in TYPES),
    )
    fault = Fault("restart", "abort", settings.long_downtime)
    return Scenario(workload, fault, "default", {}, 0.0)


@attrs.frozen
class Runs:
    #: Per added latency: the drop scenarios' results and the restart scenarios'.
    by_latency: tuple[tuple[float, list[ScenarioResult], list[ScenarioResult]], ...]
    long_outage: ScenarioResult | None


def _progress(scenario: Scenario, index: int, trial: TrialResult) -> None:
    if trial.ok:
        worst = everything_back(trial)
        text = f"everything back {ms(worst)} ms, {len(trial.outages)} subscriber(s)"
    else:
        text = f"FAILED: {trial.error}"
    print(f"  [{scenario.latency * 1e3:g} ms] {scenario.label} #{index + 1}: {text}", flush=True)


async def _trial(
    emulator: FaultEmulator, catalog: MarketCatalog, scenario: Scenario, seed: int, within: float
) -> TrialResult:
    return await run_trial(
        emulator,
        catalog,
        scenario.workload,
        scenario.fault,
        scenario.options,
        seed=seed,
        within=within,
    )


async def run_all(emulator: FaultEmulator, settings: Settings) -> Runs:
    catalog = await fetch_catalog(emulator.rest_url)
    out: list[tuple[float, list[ScenarioResult], list[ScenarioResult]]] = []
    seed = settings.seed
    for latency in settings.latencies:
        await emulator.set_latency(latency)
        drops, restarts = scenarios(settings, latency)
        collected: dict[int, list[TrialResult]] = {}
        # Round-robin over the scenarios, so slow drifts in machine load spread over all of them.
        plan = [(drops, settings.rounds), (restarts, settings.restart_rounds)]
        for group, rounds in plan:
            for index in range(rounds):
                for scenario in group:
                    seed += 1
                    trial = await _trial(emulator, catalog, scenario, seed, settings.within)
                    collected.setdefault(id(scenario), []).append(trial)
                    _progress(scenario, index, trial)
        out.append(
            (
                latency,
                [ScenarioResult(s, tuple(collected[id(s)])) for s in drops],
                [ScenarioResult(s, tuple(collected[id(s)])) for s in restarts],
            )
        )
    long: ScenarioResult | None = None
    if settings.long_rounds:
        await emulator.set_latency(0.0)
        scenario = long_outage(settings)
        # The grown backoff (up to backoff_max, 30 s) comes on top of the downtime.
        within = settings.long_downtime + 2 * EngineConfig().backoff_max + settings.within
        trials = []
        for index in range(settings.long_rounds):
            seed += 1
            trials.append(await _trial(emulator, catalog, scenario, seed, within))
            _progress(scenario, index, trials[-1])
        long = ScenarioResult(scenario, tuple(trials))
    return Runs(tuple(out), long)


def _worst(results: Sequence[ScenarioResult], field: str) -> float:
    """The largest value of ``Outage.<field>`` over every subscriber of every trial."""
    values = [
        value
        for result in results
        for trial in result.ok
        for outage in trial.outages
        if (value := getattr(outage, field)) is not None
    ]
    return max(values, default=float("nan"))


def _all_pairs(drops: Sequence[ScenarioResult], config: str) -> str:
    values = [
        everything_back(trial)
        for result in drops
        if result.scenario.workload.streams() > 1 and result.scenario.config.startswith(config)
        for trial in result.ok
    ]
    if not values:
        return "no successful trial"
    return f"p50 {statistics.median(values):.2f} s, p99 {percentile(values, 0.99):.2f} s"


def _floors(runs: Runs) -> str:
    lines = []
    for latency, drops, restarts in runs.by_latency:
        after_up = [
            everything_back(trial) - (trial.fault.end - trial.fault.start)
            for result in restarts
            for trial in result.ok
            if trial.fault is not None
        ]
        lines.append(
            f"- {latency * 1e3:g} ms added latency, drops: slowest reconnect "
            f"{_worst(drops, 'reconnected'):.2f} s (floor {FLOOR_CONNECT:g} s), slowest first "
            f"SNAPSHOT {_worst(drops, 'first_snapshot'):.2f} s (floor {FLOOR_SNAPSHOT:g} s), "
            f"slowest subscription fully back {_worst(drops, 'all_back'):.2f} s (floor "
            f"{FLOOR_RESUBSCRIBE:g} s). Every KRW pair back after a drop: default backoff "
            f"{_all_pairs(drops, 'default')}, minimum backoff {_all_pairs(drops, 'minimum')} "
            f"(aim: under {AIM_ALL_PAIRS:g} s). Server restarts: slowest everything back "
            f"{max(after_up, default=float('nan')):.2f} s after the server was up "
            f"({_worst(restarts, 'all_back'):.2f} s after the loss, downtime included)."
        )
    long = runs.long_outage
    if long is not None and long.ok:
        after = [
            everything_back(trial) - (trial.fault.end - trial.fault.start)
            for trial in long.ok
            if trial.fault is not None
        ]
        lines.append(
            f"- After the {long.scenario.fault.downtime:g} s outage: everything back "
            f"{max(after):.2f} s after the server was up (the grown backoff; it can reach "
            f"`backoff_max`, {EngineConfig().backoff_max:g} s, after longer outages)."
        )
    return "\n".join(lines)


def report(
    runs: Runs,
    settings: Settings,
    loads: tuple[float, float],
) -> str:
    config = EngineConfig()
    sections = [
        f"""
What a subscriber waits for when the connection under it is lost, measured on the real clock
(not a mock clock): the emulator runs in a child process on loopback with Upbit's limits
enforced (an excess message is counted, then processed), the engine in this process. The
emulator serves the {len(krw_codes())} KRW pairs of its default catalog (which lists
{len(default_catalog(0))} pairs over all quote currencies). Each trial
opens a fresh engine (so every outage is the first after a stable period, with the backoff at
its first step and the restart-intensity window empty), subscribes, waits until every stream
delivered its SNAPSHOT and until the 5-connects-per-second window has room for every ticket,
then injects the fault. The loss instant is taken in the emulator process just before it drops
the connections (`perf_counter`, i.e. `CLOCK_MONOTONIC`, shared by both processes).
A stream is **back** when the engine confirmed its fresh SNAPSHOT (the router's SNAPSHOT
callback; a subscriber does not always see it, since a trade SNAPSHOT repeating a trade it
already has is not delivered twice). **First REALTIME** is the first REALTIME message the
subscriber reads after its Gap, so it includes waiting for the market's next event (KRW-BTC
trades about 8 times a second in the emulator; all KRW pairs together about 77). *Noticed* is
`Interrupted.start`, *reconnected* `Gap.end` (the new connection is open; the replay follows).
{settings.rounds} trials per drop scenario, {settings.restart_rounds} per restart scenario,
round-robin; times in ms as p50 / p99 (min-max), per subscriber or per trial as the column says;
with so few samples p99 is the maximum. The machine has 2 cores shared with the emulator and
other work (load average {loads[0]:.1f} at start, {loads[1]:.1f} at the end), so a process
often waits for a core: *CPU ms* is the CPU time the engine's process, then the emulator's, used
from the fault to full recovery, the cost that does not depend on the load.

Backoff as configured: `backoff_initial` {config.backoff_initial:g} s, `backoff_max`
{config.backoff_max:g} s, `backoff_multiplier` {config.backoff_multiplier:g},
`backoff_jitter` {config.backoff_jitter:g}, which the tickets supervisor turns into equal
jitter: the first restart after a loss waits uniformly
{config.backoff_initial / 2:g}-{config.backoff_initial:g} s, each further consecutive one
doubles (a ticket's backoff resets after 60 s up). Restart intensity: `max_restarts`
{config.max_restarts} within `restart_window` {config.restart_window:g} s. *Minimum* is
`backoff_initial=0.001` (0 is rejected by `EngineConfig`).
"""
    ]
    for latency, drops, restarts in runs.by_latency:
        what = "no added latency" if latency == 0 else f"{latency * 1e3:g} ms added to every frame"
        sections.append(
            f"""
**Drops, {what}.** One ticket carries everything (default pool and capacity).

{drop_table(drops)}

**Server restart ({settings.downtime:g} s down), {what}.** `realtime_pool_size` and
`ticket_capacity` set so the {TYPES[0]}/{TYPES[1]}/{TYPES[2]} subscriptions of every KRW pair
spread over several tickets; "up" is the instant the server listens again, so those columns
exclude the downtime; connects are paced by the engine at 5 per second.

{restart_table(restarts)}
"""
        )
    sections.append(
        f"""
**Against the performance targets** (3 s snapshot, 5 s realtime connect, 10 s resubscribe; aim under
1 s for every pair on loopback):

{_floors(runs)}
"""
    )
    if runs.long_outage is not None:
        sections.append(_long_section(runs.long_outage, settings))
    every = [result for _, d, r in runs.by_latency for result in (*d, *r)]
    if runs.long_outage is not None:
        every.append(runs.long_outage)
    failed = failures(every)
    if failed:
        sections.append(f"\n**Failures** (trials that did not recover):\n\n{failed}\n")
    return "\n".join(sections)


def _longest_wait(config: EngineConfig, downtime: float) -> float:
    """The longest a ticket can wait, after the server is back, for its next attempt.

    Attempt ``k`` (from 0) comes ``d_k`` after the previous one, ``d_k`` drawn from
    ``[n_k / 2, n_k]`` with ``n_k`` the nominal delay. The most attempts fall inside the outage
    when every draw is the shortest; the attempt straddling the server's return then waits at
    most its own nominal delay.
    """

    def nominal(attempt: int) -> float:
        grown = config.backoff_initial * config.backoff_multiplier**attempt
        return float(min(config.backoff_max, grown))

    attempt, at = 0, nominal(0) / 2
    while at < downtime:
        attempt += 1
        at += nominal(attempt) / 2
    return nominal(attempt)


def _long_section(result: ScenarioResult, settings: Settings) -> str:
    config = EngineConfig()
    return f"""
**A longer outage** ({settings.long_downtime:g} s down, default engine, no added latency,
{len(result.trials)} trial(s)). Each failed attempt during the outage doubles the next delay, so
by the backoff schedule alone the first attempt after the server is back may come up to
{_longest_wait(config, settings.long_downtime):g} s after it (the connect and the replay come
on top); the longer the outage, the longer this wait, up to `backoff_max`.

{restart_table([result])}
"""


def _recovery(args: argparse.Namespace, settings: Settings) -> None:
    """The real-clock part: drops and server restarts against the emulator in a child process."""
    started = time.perf_counter()
    load = os.getloadavg()[0]
    with FaultEmulator() as emulator:
        runs = trio.run(run_all, emulator, settings)
    body = report(runs, settings, (load, os.getloadavg()[0]))
    print(body)
    print(f"total {time.perf_counter() - started:.0f} s")
    if not (args.quick or args.no_write):
        write_section("recovery", "Recovery after connection loss (emulator on loopback)", body)


def _continuity(args: argparse.Namespace) -> None:
    """The mock-clock part: stall detection, periodic drops, no false restart."""
    runs = run_continuity(CONTINUITY_QUICK if args.quick else CONTINUITY_DEFAULT)
    body = continuity_report(runs)
    print(body)
    if not (args.quick or args.no_write):
        title = "Continuity on a virtual clock (stall detection, periodic drops)"
        write_section("continuity", title, body)


def _backfill(args: argparse.Namespace) -> None:
    """The mock-clock backfill part: completeness under faults, time to fill."""
    runs = run_backfill(BACKFILL_QUICK if args.quick else BACKFILL_DEFAULT)
    body = backfill_report(runs)
    print(body)
    if not (args.quick or args.no_write):
        write_section("backfill", "Trade backfill on a virtual clock", body)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="short smoke run; report untouched")
    parser.add_argument("--rounds", type=int, help="trials per drop scenario (default 8)")
    parser.add_argument("--restart-rounds", type=int, help="trials per restart scenario")
    parser.add_argument(
        "--long-rounds", type=int, help="trials of the 15 s outage (default 1; 0 skips it)"
    )
    parser.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md")
    parser.add_argument(
        "--only",
        choices=("recovery", "continuity", "backfill"),
        help="run one part: the real-clock recovery trials, or the mock-clock continuity or "
        "backfill ones",
    )
    args = parser.parse_args(argv)
    settings = QUICK if args.quick else DEFAULT
    overrides = {
        "rounds": args.rounds,
        "restart_rounds": args.restart_rounds,
        "long_rounds": args.long_rounds,
    }
    for name, value in overrides.items():
        if value is not None and value < (0 if name == "long_rounds" else 1):
            parser.error(f"--{name.replace('_', '-')} is too small: {value}")
    settings = attrs.evolve(settings, **{k: v for k, v in overrides.items() if v is not None})
    if args.only in (None, "recovery"):
        _recovery(args, settings)
    if args.only in (None, "continuity"):
        _continuity(args)
    if args.only in (None, "backfill"):
        _backfill(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
