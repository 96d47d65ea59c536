"""Tables of ``bench/recovery.py``: scenarios, their trials, and the Markdown they become."""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from typing import Any

import attrs

from bench._recovery_trials import Fault, TrialResult, Workload

__all__ = (
    "Scenario",
    "ScenarioResult",
    "cpu_ms",
    "detected",
    "downtime",
    "drop_table",
    "everything_back",
    "failures",
    "first_reconnect",
    "last_reconnect",
    "median_ms",
    "ms",
    "percentile",
    "restart_table",
    "span",
    "trials_cell",
)


@attrs.frozen
class Scenario:
    workload: Workload
    fault: Fault
    #: How the engine was configured beyond the workload, in words, and as options.
    config: str
    options: dict[str, Any]
    latency: float

    @property
    def label(self) -> str:
        return f"{self.workload.label} | {self.fault.label} | {self.config}"


@attrs.frozen
class ScenarioResult:
    scenario: Scenario
    trials: tuple[TrialResult, ...]

    @property
    def ok(self) -> tuple[TrialResult, ...]:
        return tuple(trial for trial in self.trials if trial.ok)

    @property
    def failed(self) -> tuple[TrialResult, ...]:
        return tuple(trial for trial in self.trials if not trial.ok)

    def per_subscriber(self, field: Callable[[Any], float | None]) -> list[float]:
        """One value per subscriber and trial (successful trials only)."""
        values = (field(outage) for trial in self.ok for outage in trial.outages)
        return [value for value in values if value is not None]

    def per_trial(self, field: Callable[[TrialResult], float]) -> list[float]:
        return [field(trial) for trial in self.ok]


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile (with fewer than 100 values, p99 is the maximum)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(fraction * len(ordered)) - 1))]


def ms(value: float) -> str:
    return f"{value * 1e3:,.0f}"


def span(values: Sequence[float]) -> str:
    """``p50 / p99 (min-max)`` in milliseconds, or ``-`` without values."""
    if not values:
        return "-"
    return (
        f"{ms(statistics.median(values))} / {ms(percentile(values, 0.99))} "
        f"({ms(min(values))}-{ms(max(values))})"
    )


def median_ms(values: Sequence[float]) -> str:
    return "-" if not values else ms(statistics.median(values))


def trials_cell(result: ScenarioResult) -> str:
    cell = f"{len(result.ok)}/{len(result.trials)}"
    if result.failed:
        cell += " **(see failures)**"
    return cell


def everything_back(trial: TrialResult) -> float:
    return max(outage.all_back for outage in trial.outages)


def first_reconnect(trial: TrialResult) -> float:
    return min(outage.reconnected for outage in trial.outages)


def last_reconnect(trial: TrialResult) -> float:
    return max(end for outage in trial.outages for end in outage.gap_ends)


def detected(trial: TrialResult) -> float:
    return min(outage.detected for outage in trial.outages)


def downtime(trial: TrialResult) -> float:
    assert trial.fault is not None
    return trial.fault.end - trial.fault.start


def cpu_ms(result: ScenarioResult) -> str:
    """Median CPU milliseconds from the fault to full recovery: engine process / emulator's."""
    if not result.ok:
        return "-"
    engine = statistics.median(trial.cpu for trial in result.ok)
    emulator = statistics.median(trial.emulator_cpu for trial in result.ok)
    return f"{ms(engine)} / {ms(emulator)}"


def drop_table(results: Sequence[ScenarioResult]) -> str:
    lines = [
        "| subscriptions | fault | backoff | trials ok | noticed (p50) | reconnected (p50) "
        "| first REALTIME after the Gap, per subscriber | every stream back, per subscriber "
        "| everything back, per trial | CPU ms, engine / emulator (p50) |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for result in results:
        s = result.scenario
        lines.append(
            f"| {s.workload.label} | {s.fault.label} | {s.config} | {trials_cell(result)} "
            f"| {median_ms(result.per_trial(detected))} "
            f"| {median_ms(result.per_trial(first_reconnect))} "
            f"| {span(result.per_subscriber(lambda o: o.first_realtime))} "
            f"| {span(result.per_subscriber(lambda o: o.all_back))} "
            f"| {span(result.per_trial(everything_back))} | {cpu_ms(result)} |"
        )
    return "\n".join(lines)


def _after_up(trials: Sequence[TrialResult], value: Callable[[TrialResult], float]) -> list[float]:
    """``value`` of each trial counted from the instant the server listened again."""
    return [value(trial) - downtime(trial) for trial in trials]


def restart_table(results: Sequence[ScenarioResult]) -> str:
    lines = [
        "| tickets | engine configuration | trials ok | measured downtime (p50) "
        "| up → first ticket reconnected | up → last ticket reconnected "
        "| up → first REALTIME, per subscriber | **up → everything back** "
        "| loss → everything back (downtime included) | ticket restarts (most failures of one) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for result in results:
        s = result.scenario
        ok = result.ok
        first_rt = [
            outage.first_realtime - downtime(trial) for trial in ok for outage in trial.outages
        ]
        restarts = [trial.restarts for trial in ok]
        worst = [trial.ticket_failures for trial in ok if trial.ticket_failures is not None]
        restarts_cell = f"{min(restarts)}-{max(restarts)}" if restarts else "-"
        if worst:
            restarts_cell += f" ({max(worst)})"
        lines.append(
            f"| {s.workload.label} | {s.config} | {trials_cell(result)} "
            f"| {median_ms(result.per_trial(downtime))} "
            f"| {span(_after_up(ok, first_reconnect))} | {span(_after_up(ok, last_reconnect))} "
            f"| {span(first_rt)} | **{span(_after_up(ok, everything_back))}** "
            f"| {span(result.per_trial(everything_back))} | {restarts_cell} |"
        )
    return "\n".join(lines)


def failures(results: Sequence[ScenarioResult]) -> str:
    """One line per distinct failure: scenario, how many trials, the error."""
    lines: list[str] = []
    for result in results:
        seen: dict[str, int] = {}
        for trial in result.failed:
            assert trial.error is not None
            seen[trial.error] = seen.get(trial.error, 0) + 1
        for error, count in seen.items():
            lines.append(
                f"- {result.scenario.label}, {result.scenario.latency * 1e3:g} ms latency: "
                f"{count}/{len(result.trials)} trials: {error}"
            )
    return "\n".join(lines)
