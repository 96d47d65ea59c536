"""One measured outage of ``bench/recovery.py``: a fresh engine, its subscriptions, one fault.

Each trial opens its own engine, so every outage is the first one after a stable period: the
supervisor's backoff starts again from ``backoff_initial`` (a ticket's backoff only resets after
60 s of uptime) and its restart-intensity window is empty. Repeating faults on one engine would
measure the backoff's growth instead, and soon the intensity limit.

Steps: subscribe, wait until every stream delivered its first SNAPSHOT, wait until the connect
window (5 per second per IP, at the emulator and in the engine) has room for every ticket to
reconnect at once, arm the probes, inject the fault, wait (bounded) until every subscriber saw a
Gap and a REALTIME message after it and every stream was confirmed by a fresh SNAPSHOT, then check
that the emulator's subscription sets are exactly what was subscribed.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, Literal

import attrs
import trio

from bench._recovery_emulator import FaultEmulator, FaultTimes, expected_pairs
from bench._recovery_probe import (
    Outage,
    Probe,
    Pulse,
    SnapshotTap,
    clock_offset,
    wait_recovered,
)
from engine import Engine, open_engine
from engine.markets import MarketCatalog
from engine.testing.faults import DropHow

__all__ = ("Fault", "GaveUpError", "TrialResult", "Workload", "run_trial")

#: Seconds a connect stays in the 5-per-second window: the emulator's 1.0 s, the engine's 1.0 s
#: plus its 0.1 s safety margin, and a little more.
CONNECT_WINDOW = 1.15
CONNECTS_PER_SECOND = 5
#: Seconds between looks at the supervision tree for a supervisor that gave up.
_WATCH_INTERVAL = 0.5


@attrs.frozen
class Workload:
    """Subscriptions (one subscriber each) and the engine options they run with."""

    label: str
    subscriptions: tuple[tuple[str, tuple[str, ...]], ...]
    options: dict[str, Any] = attrs.field(factory=dict)

    def streams(self) -> int:
        return sum(len(codes) for _, codes in self.subscriptions)


@attrs.frozen
class Fault:
    kind: Literal["drop", "restart"]
    how: DropHow
    downtime: float = 0.0

    @property
    def label(self) -> str:
        names = {
            "abort": "abort (no close frame)",
            "reset": "TCP reset",
            "close1000": "close frame 1000",
            "close1001": "close frame 1001",
        }
        if self.kind == "restart":
            return f"server restart, {self.downtime:g} s down"
        return f"drop: {names[self.how]}"


@attrs.frozen
class TrialResult:
    fault: FaultTimes | None
    outages: tuple[Outage, ...]
    #: Connections the emulator had open just before the fault.
    tickets: int
    #: Engine counters over the outage.
    restarts: int
    reconnects: int
    #: Upgrades the emulator refused and messages it counted over a limit, over the outage.
    connects_refused: int
    rate_limited: int
    #: The most connection failures of one ticket over the outage (None if the engine does not
    #: report per-ticket failures in ``metrics().tickets``).
    ticket_failures: int | None = None
    #: This process's CPU seconds and the wall seconds from the fault to full recovery.
    cpu: float = 0.0
    wall: float = 0.0
    #: The emulator process's CPU seconds over the same span (from just before the fault to
    #: just after recovery, so slightly longer).
    emulator_cpu: float = 0.0
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


async def _connect_room(emulator: FaultEmulator, needed: int) -> None:
    """Wait until ``needed`` connects fit in the 5-per-second window (all of it, if more)."""
    allowed = max(0, CONNECTS_PER_SECOND - needed)
    while True:
        state = await emulator.state()
        now = time.perf_counter()
        recent = sorted(at for at in state.connect_times if at > now - CONNECT_WINDOW)
        if len(recent) <= allowed:
            return
        await trio.sleep(recent[len(recent) - allowed - 1] + CONNECT_WINDOW - now)


async def run_trial(
    emulator: FaultEmulator,
    catalog: MarketCatalog,
    workload: Workload,
    fault: Fault,
    options: dict[str, Any],
    *,
    seed: int,
    within: float,
) -> TrialResult:
    """One outage; any failure (not recovered in ``within`` seconds, wrong subscription set,
    engine error) comes back as ``TrialResult.error`` instead of ending the benchmark."""
    try:
        with trio.fail_after(3 * within + fault.downtime + 10):
            return await _trial(emulator, catalog, workload, fault, options, seed, within)
    except trio.TooSlowError:
        return _failed(f"the trial did not finish within {3 * within + fault.downtime + 10:g} s")
    except Exception as exc:  # reported in the table; the next trial starts afresh
        return _failed(_describe(exc))


def _describe(exc: BaseException) -> str:
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(_describe(inner) for inner in exc.exceptions)
    return f"{type(exc).__name__}: {exc}"


def _failed(error: str) -> TrialResult:
    return TrialResult(None, (), 0, 0, 0, 0, 0, error=error)


def _max_ticket_failures(before: Any, after: Any) -> int | None:
    # Per-ticket connection metrics are newer than this benchmark's first version: read them
    # when the engine has them.
    first, last = getattr(before, "tickets", None), getattr(after, "tickets", None)
    if not last:
        return None
    old = first or {}
    return int(
        max(
            info.failures - (old[name].failures if name in old else 0)
            for name, info in last.items()
        )
    )


class GaveUpError(RuntimeError):
    """A supervisor of the engine exceeded its restart intensity during the outage."""


def _tickets_generation(engine: Engine) -> int | None:
    return engine.debug_tree().actors.find("tickets").generation


async def _watch_give_up(engine: Engine, first: int | None) -> None:
    """Raise as soon as the tickets supervisor is no longer incarnation ``first``: it gave up
    (and the root restarted it, with no tickets), so waiting for recovery is pointless."""
    while True:
        await trio.sleep(_WATCH_INTERVAL)
        node = engine.debug_tree().actors.find("tickets")
        if node.generation != first:
            cause = node.last_exit.error if node.last_exit is not None else None
            raise GaveUpError(
                f"{cause}" if cause is not None else "the tickets supervisor restarted"
            )


def _wire_problem(
    wanted: frozenset[tuple[str, str]], connections: Sequence[tuple[tuple[str, str], ...]]
) -> str | None:
    got = frozenset(pair for conn in connections for pair in conn)
    if got == wanted:
        return None
    missing, extra = sorted(wanted - got), sorted(got - wanted)
    return (
        f"the emulator's subscription sets differ from what was subscribed: "
        f"{len(missing)} missing (first {missing[:3]}), {len(extra)} extra (first {extra[:3]})"
    )


async def _trial(
    emulator: FaultEmulator,
    catalog: MarketCatalog,
    workload: Workload,
    fault: Fault,
    options: dict[str, Any],
    seed: int,
    within: float,
) -> TrialResult:
    pulse = Pulse()
    offset = clock_offset()
    wanted_pairs = frozenset().union(
        *(expected_pairs((t,), codes) for t, codes in workload.subscriptions)
    )
    async with open_engine(
        ws_url=emulator.ws_url,
        rest_url=emulator.rest_url,
        catalog=catalog,
        seed=seed,
        **workload.options,
        **options,
    ) as engine:
        tap = SnapshotTap(engine, pulse)
        wanted: dict[str, int] = {}
        probes: list[Probe] = []
        for data_type, codes in workload.subscriptions:
            sub = await engine.subscribe_realtime(data_type, codes)
            wanted[sub] = len(codes)
            probes.append(Probe(engine, sub, offset, pulse))
        async with trio.open_nursery() as nursery:
            for probe in probes:
                nursery.start_soon(probe.run)
            await tap.wait_all(wanted, within=within, what="first subscribe")
            before = await emulator.state()
            problem = _wire_problem(wanted_pairs, before.connections)
            if problem is not None:
                raise RuntimeError(f"before the fault, {problem}")
            tickets = len(before.connections)
            await _connect_room(emulator, tickets)
            before = await emulator.state()
            start_metrics = engine.metrics()
            generation = _tickets_generation(engine)
            tap.arm()
            for probe in probes:
                probe.arm()
            cpu, wall = time.process_time(), time.perf_counter()
            if fault.kind == "drop":
                times = await emulator.drop(fault.how)
            else:
                times = await emulator.restart(fault.downtime, fault.how)
            async with trio.open_nursery() as watch:
                watch.start_soon(_watch_give_up, engine, generation)
                await wait_recovered(
                    probes,
                    tap,
                    wanted,
                    pulse,
                    within=within,
                    what=f"{workload.label}, {fault.label}",
                )
                watch.cancel_scope.cancel()
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            outages = tuple(
                probe.outage(times.start, tap.last[probe.subscription_id]) for probe in probes
            )
            after = await emulator.state()
            metrics = engine.metrics()
            failures = _max_ticket_failures(start_metrics, metrics)
            nursery.cancel_scope.cancel()
    problem = _wire_problem(wanted_pairs, after.connections)
    return TrialResult(
        times,
        outages,
        tickets,
        metrics.restarts - start_metrics.restarts,
        metrics.reconnects - start_metrics.reconnects,
        after.connects_refused - before.connects_refused,
        after.rate_limited - before.rate_limited,
        failures,
        cpu,
        wall,
        after.cpu - before.cpu,
        None if problem is None else f"after recovery, {problem}",
    )
