"""Continuity on Trio's ``MockClock``: stall detection, periodic drops, no false restarts.

Virtual time, so the numbers are protocol timing (the engine's probes and timeouts, the
emulator's status heartbeat, the backoff), not this machine's speed: a scenario's times are
deterministic for its seed, and 10 virtual minutes take 15-25 s of CPU. Each run is its own
``trio.run`` with ``MockClock(autojump_threshold=0)`` and a fresh emulator (the major pairs only)
and engine, both seeded with the run's seed, as ``tests/engine/_engine_support.py``'s
``engine_on_emulator`` opens them.

* **stall detection**: a busy connection (KRW-BTC at 20 trades/s, read for 30 s) and a quiet one
  (KRW-DOGE silent, read for 60 s) are stalled (``Emulator.stall``: TCP open, nothing sent, no
  pong); the time until the subscriber's stream yields ``Interrupted`` (cause "stalled", or
  the keepalive's "no pong"), and until its ``Gap`` (the stream restored);
* **periodic drops**: ``Emulator.drop()`` every N seconds under a busy ``trade`` subscriber; the
  share of the run spent in reported outages (the ``Gap`` events' ``end - start``);
* **no false restart**: 10 minutes of quiet and busy pairs whose busy ones fall silent for 30 s
  at a time; the connection must stay up (``connects == 1``), its silences probed.
"""

from __future__ import annotations

import contextlib
import logging
import statistics
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from typing import Literal, TypeVar

import attrs
import trio
import trio.testing

from engine import Engine, Gap, Interrupted, SubscriptionStream, open_engine
from engine.config import KNOWN_TRANSPORTS, EngineConfig
from engine.testing import MAJOR_MARKETS, Emulator, EmulatorConfig, open_emulator

__all__ = (
    "CONTINUITY_DEFAULT",
    "CONTINUITY_QUICK",
    "ContinuityRuns",
    "ContinuitySettings",
    "DropRun",
    "PairsRun",
    "StallTrial",
    "continuity_report",
    "drop_run",
    "pairs_run",
    "run_continuity",
    "stall_trial",
)

StallKind = Literal["busy", "quiet"]
T = TypeVar("T")

#: The engine's transport when none is named.
DEFAULT_TRANSPORT = EngineConfig().transport

#: Per kind: the pair, its trades per second, how long the subscriber reads before the stall,
#: and the target (seconds from the stall to ``Interrupted``).
STALL_SETUPS: dict[StallKind, tuple[str, float, float, float]] = {
    "busy": ("KRW-BTC", 20.0, 30.0, 5.0),
    "quiet": ("KRW-DOGE", 0.0, 60.0, 15.0),
}
#: Longest wait, virtual seconds, for the ``Interrupted`` after a stall and then for the ``Gap``.
DETECT_WITHIN = 60.0
#: The busy pair of the periodic-drop runs, and its trades per second.
DROP_PAIR, DROP_RATE = "KRW-BTC", 20.0
#: The drop period whose offline share has a target, and the target.
DROP_TARGET_EVERY, DROP_TARGET_SHARE = 10.0, 0.05
#: The no-false-restart run: per pair its trades per second while busy; the busy ones
#: (rate >= 1) go silent for ``PAIRS_SILENT`` seconds after every ``PAIRS_BUSY``.
PAIRS_RATES = {"KRW-BTC": 10.0, "KRW-ETH": 3.0, "KRW-XRP": 0.2, "KRW-DOGE": 0.0}
PAIRS_BUSY, PAIRS_SILENT = 60.0, 30.0


@attrs.frozen
class ContinuitySettings:
    #: Stall trials per kind (busy, quiet), each with its own seed.
    stall_trials: int
    #: Drop periods, seconds, and the virtual length of each periodic-drop run.
    drop_every: tuple[float, ...]
    drop_duration: float
    #: Runs of the no-false-restart scenario, and the virtual length of each.
    pairs_runs: int
    pairs_duration: float
    #: Seed of the first trial; trial ``i`` of a scenario uses ``seed + i`` (engine and emulator).
    seed: int
    #: Every scenario runs on each of these transports (``EngineConfig.transport``).
    transports: tuple[str, ...]


CONTINUITY_DEFAULT = ContinuitySettings(
    stall_trials=10,
    drop_every=(10.0, 30.0, 55.0, 65.0),
    drop_duration=600.0,
    pairs_runs=2,
    pairs_duration=600.0,
    seed=20261208,
    transports=KNOWN_TRANSPORTS,
)
CONTINUITY_QUICK = attrs.evolve(
    CONTINUITY_DEFAULT,
    stall_trials=3,
    drop_duration=180.0,
    pairs_runs=1,
    pairs_duration=180.0,
    transports=(DEFAULT_TRANSPORT,),
)


@attrs.frozen
class StallTrial:
    kind: StallKind
    transport: str
    seed: int
    #: Messages the subscriber read before the stall.
    learned: int
    #: ``stall_probes`` and ``connects`` at the end of the no-fault stretch (just before the stall).
    probes_before: int
    connects_before: int
    #: Stall to ``Interrupted``, and stall to the ``Gap`` that restores the stream (None: not
    #: seen within DETECT_WITHIN).
    detected: float | None
    back: float | None
    cause: str
    probes_after: int
    stalls: int


@attrs.frozen
class DropRun:
    every: float
    transport: str
    seed: int
    #: Virtual seconds from the first drop's period to the end of the run.
    duration: float
    drops: int
    #: Per ``Gap``: ``end - start`` (an unfinished one counted to the end of the run).
    outages: tuple[float, ...]
    #: Per drop paired with the Gap of the same rank: the Gap's ``start`` minus the drop's
    #: instant (how late the engine dated the loss).
    noticed: tuple[float, ...]
    connects: int

    @property
    def share(self) -> float:
        return sum(self.outages) / self.duration


@attrs.frozen
class PairsRun:
    transport: str
    seed: int
    duration: float
    #: Silent spells of the busy pairs.
    spells: int
    messages: int
    connects: int
    stall_probes: int
    stalls: int
    failures: int
    losses: int


@attrs.frozen
class ContinuityRuns:
    settings: ContinuitySettings
    stalls: tuple[StallTrial, ...]
    drops: tuple[DropRun, ...]
    pairs: tuple[PairsRun, ...]
    #: Wall-clock seconds and CPU seconds the whole continuity part took.
    wall: float
    cpu: float


def _virtual(scenario: Callable[[], Awaitable[T]]) -> T:
    """Run ``scenario`` in its own Trio run on a mock clock that jumps whenever all tasks wait."""
    return trio.run(scenario, clock=trio.testing.MockClock(autojump_threshold=0))


@contextlib.asynccontextmanager
async def _engine_on_emulator(seed: int, transport: str) -> AsyncIterator[tuple[Engine, Emulator]]:
    """An emulator serving the major pairs and an engine on it, both seeded with ``seed``."""
    config = EmulatorConfig(markets=MAJOR_MARKETS, seed=seed)
    async with (
        open_emulator(config) as emu,
        open_engine(
            ws_url=emu.ws_url,
            rest_url=emu.rest_url,
            seed=seed,
            text_ping=True,
            transport=transport,
        ) as eng,
    ):
        yield eng, emu


async def _read_for(stream: SubscriptionStream, seconds: float) -> int:
    """Read (and drop) the stream for ``seconds``; how many items came."""
    count = 0
    with trio.move_on_after(seconds):
        async for _ in stream:
            count += 1
    return count


async def _wait_for(stream: SubscriptionStream, kind: type[T]) -> T | None:
    """Read until the first item of ``kind`` (None: not within DETECT_WITHIN)."""
    with trio.move_on_after(DETECT_WITHIN):
        async for item in stream:
            if isinstance(item, kind):
                return item
    return None


async def _stall_scenario(kind: StallKind, seed: int, transport: str) -> StallTrial:
    code, rate, learn, _ = STALL_SETUPS[kind]
    async with _engine_on_emulator(seed, transport) as (eng, emu):
        emu.set_rate(code, rate)
        sub_id = await eng.subscribe_realtime("trade", [code])
        await eng.wait_settled(timeout=DETECT_WITHIN)
        async with eng.stream(sub_id) as stream:
            learned = await _read_for(stream, learn)
            before = eng.metrics()
            (conn,) = emu.connections(open_only=True)
            stalled_at = trio.current_time()
            emu.stall(conn.conn_id)
            interrupted = await _wait_for(stream, Interrupted)
            detected = None if interrupted is None else trio.current_time() - stalled_at
            after = eng.metrics()
            gap = await _wait_for(stream, Gap) if interrupted is not None else None
            back = None if gap is None else trio.current_time() - stalled_at
    return StallTrial(
        kind=kind,
        transport=transport,
        seed=seed,
        learned=learned,
        probes_before=before.stall_probes,
        connects_before=before.connects,
        detected=detected,
        back=back,
        cause="" if interrupted is None else interrupted.cause,
        probes_after=after.stall_probes,
        stalls=after.stalls,
    )


def stall_trial(kind: StallKind, seed: int, transport: str = DEFAULT_TRANSPORT) -> StallTrial:
    """One stall of a ``kind`` connection after its no-fault stretch, on the mock clock."""
    return _virtual(lambda: _stall_scenario(kind, seed, transport))


async def _drop_scenario(every: float, duration: float, seed: int, transport: str) -> DropRun:
    async with _engine_on_emulator(seed, transport) as (eng, emu):
        emu.set_rate(DROP_PAIR, DROP_RATE)
        sub_id = await eng.subscribe_realtime("trade", [DROP_PAIR])
        await eng.wait_settled(timeout=DETECT_WITHIN)
        gaps: list[Gap] = []

        async def read(stream: SubscriptionStream) -> None:
            async for item in stream:
                if isinstance(item, Gap):
                    gaps.append(item)

        dropped: list[float] = []
        start = trio.current_time()
        async with eng.stream(sub_id) as stream, trio.open_nursery() as nursery:
            nursery.start_soon(read, stream)
            while trio.current_time() - start + every <= duration:
                await trio.sleep(every)
                dropped.append(trio.current_time())
                await emu.drop()
            await trio.sleep(every)  # the last outage ends and is reported
            nursery.cancel_scope.cancel()
        end = trio.current_time()
        connects = eng.metrics().connects
    outages = tuple((end if gap.end is None else gap.end) - gap.start for gap in gaps)
    noticed = tuple(gap.start - at for gap, at in zip(gaps, dropped, strict=False))
    return DropRun(every, transport, seed, end - start, len(dropped), outages, noticed, connects)


def drop_run(
    every: float, duration: float, seed: int, transport: str = DEFAULT_TRANSPORT
) -> DropRun:
    """Drop every connection every ``every`` seconds for about ``duration``, on the mock clock."""
    return _virtual(lambda: _drop_scenario(every, duration, seed, transport))


async def _pairs_scenario(duration: float, seed: int, transport: str) -> PairsRun:
    busy = [code for code, rate in PAIRS_RATES.items() if rate >= 1.0]
    async with _engine_on_emulator(seed, transport) as (eng, emu):
        for code, rate in PAIRS_RATES.items():
            emu.set_rate(code, rate)
        sub_id = await eng.subscribe_realtime("trade", list(PAIRS_RATES))
        await eng.wait_settled(timeout=DETECT_WITHIN)
        spells = messages = 0
        async with eng.stream(sub_id) as stream:
            end = trio.current_time() + duration
            while trio.current_time() < end:
                for code in busy:
                    emu.set_rate(code, PAIRS_RATES[code])
                messages += await _read_for(stream, PAIRS_BUSY)
                for code in busy:
                    emu.set_rate(code, 0.0)
                spells += 1
                messages += await _read_for(stream, PAIRS_SILENT)
        metrics = eng.metrics()
    return PairsRun(
        transport=transport,
        seed=seed,
        duration=duration,
        spells=spells,
        messages=messages,
        connects=metrics.connects,
        stall_probes=metrics.stall_probes,
        stalls=metrics.stalls,
        failures=sum(ticket.failures for ticket in metrics.tickets.values()),
        losses=metrics.connection_losses,
    )


def pairs_run(duration: float, seed: int, transport: str = DEFAULT_TRANSPORT) -> PairsRun:
    """Quiet and busy pairs for ``duration`` without a fault, on the mock clock."""
    return _virtual(lambda: _pairs_scenario(duration, seed, transport))


def _say(line: str) -> None:
    print(f"  [continuity] {line}", flush=True)


@contextlib.contextmanager
def _quiet_connection_log() -> Iterator[None]:
    """Hide the engine's per-restart warnings (hundreds in a periodic-drop run)."""
    log = logging.getLogger("engine.connection")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(level)


def _stall_trials(settings: ContinuitySettings, transport: str) -> list[StallTrial]:
    trials: list[StallTrial] = []
    for index in range(settings.stall_trials):
        for kind in STALL_SETUPS:
            trial = stall_trial(kind, settings.seed + index, transport)
            trials.append(trial)
            if trial.detected is None:
                text = f"NOT detected within {DETECT_WITHIN:g} s"
            else:
                text = f"Interrupted after {trial.detected:g} s ({trial.cause})"
            _say(f"{transport} stall {kind}, seed {trial.seed}: {text}")
    return trials


def run_continuity(settings: ContinuitySettings) -> ContinuityRuns:
    """Every continuity scenario of ``settings``, one mock-clock run each, in this thread (not
    inside a Trio run)."""
    wall, cpu = time.perf_counter(), time.process_time()
    stalls: list[StallTrial] = []
    drops: list[DropRun] = []
    pairs: list[PairsRun] = []
    with _quiet_connection_log():
        for transport in settings.transports:
            stalls += _stall_trials(settings, transport)
            for every in settings.drop_every:
                drops.append(drop_run(every, settings.drop_duration, settings.seed, transport))
                share = drops[-1].share
                _say(f"{transport} drop every {every:g} s: {share:.2%} offline")
            for index in range(settings.pairs_runs):
                run = pairs_run(settings.pairs_duration, settings.seed + index, transport)
                pairs.append(run)
                _say(f"{transport} quiet/busy pairs, seed {run.seed}: {run.connects} connect(s)")
    return ContinuityRuns(
        settings,
        tuple(stalls),
        tuple(drops),
        tuple(pairs),
        time.perf_counter() - wall,
        time.process_time() - cpu,
    )


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} s"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value * 1e3:,.1f} ms"


def _median_max(values: Sequence[float]) -> str:
    if not values:
        return "-"
    return f"{statistics.median(values):.2f} / {max(values):.2f} s"


def _ended_by(cause: str) -> str:
    if "stalled" in cause:
        return "stall judgement"
    if "no pong" in cause:
        return "keepalive ping"
    return cause or "not detected"


def _causes(trials: Sequence[StallTrial]) -> str:
    counts: dict[str, int] = {}
    for trial in trials:
        label = _ended_by(trial.cause)
        counts[label] = counts.get(label, 0) + 1
    return ", ".join(f"{label} {count}" for label, count in sorted(counts.items()))


def _stall_row(kind: StallKind, transport: str, trials: Sequence[StallTrial]) -> str:
    code, rate, learn, target = STALL_SETUPS[kind]
    detected = [t.detected for t in trials if t.detected is not None]
    back = [t.back for t in trials if t.back is not None]
    missed = len(trials) - len(detected) + sum(value > target for value in detected)
    verdict = "**met**" if not missed else f"**missed in {missed}**"
    median = statistics.median(detected) if detected else None
    return (
        f"| {kind}: {code} `trade` at {rate:g}/s, read {learn:g} s | {transport} | {len(trials)} "
        f"| {_seconds(median)} | {_seconds(max(detected, default=None))} "
        f"| {target:g} s: {verdict} | {_causes(trials)} | {_median_max(back)} "
        f"| {max(t.probes_before for t in trials)} / {max(t.probes_after for t in trials)} "
        f"| {min(t.connects_before for t in trials)}-{max(t.connects_before for t in trials)} |"
    )


def _stall_table(runs: ContinuityRuns) -> str:
    rows = [
        "| connection, no-fault stretch | transport | trials | stall → `Interrupted`, median "
        "| max | target | ended by | stall → `Gap` (stream back), median / max "
        "| stall probes, most in a trial: before the stall / by `Interrupted` "
        "| connects before the stall |",
        "|---|---|---:|---:|---:|---|---|---:|---:|---:|",
    ]
    for kind in STALL_SETUPS:
        for transport in runs.settings.transports:
            trials = [t for t in runs.stalls if t.kind == kind and t.transport == transport]
            if trials:
                rows.append(_stall_row(kind, transport, trials))
    return "\n".join(rows)


def _drop_row(run: DropRun) -> str:
    if run.every == DROP_TARGET_EVERY:
        met = run.share <= DROP_TARGET_SHARE
        target = f"≤ {DROP_TARGET_SHARE:.0%}: **{'met' if met else 'missed'}**"
    else:
        target = "-"
    median = statistics.median(run.outages) if run.outages else None
    longest = max(run.outages, default=None)
    return (
        f"| {run.every:g} s | {run.transport} | {run.duration:g} s | {run.drops} "
        f"| {len(run.outages)} | {run.share:.2%} | {_ms(longest)} | {_ms(median)} "
        f"| {_ms(max(run.noticed, default=None))} | {run.connects} | {target} |"
    )


def _drop_table(runs: ContinuityRuns) -> str:
    rows = [
        "| drop every | transport | virtual run | drops | outages (`Gap`s) | offline share "
        "| longest outage | median outage | drop → `Gap.start`, max | connects | target |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    rows += [_drop_row(run) for run in runs.drops]
    return "\n".join(rows)


def _pairs_table(runs: ContinuityRuns) -> str:
    rows = [
        "| transport | seed | virtual run | busy spells silenced | messages read | connects "
        "| stall probes | stalls | connection losses | ticket failures | false restart |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for run in runs.pairs:
        false = "no" if run.connects == 1 and not run.losses else "**yes**"
        rows.append(
            f"| {run.transport} | {run.seed} | {run.duration:g} s | {run.spells} "
            f"| {run.messages:,} | {run.connects} | {run.stall_probes} | {run.stalls} "
            f"| {run.losses} | {run.failures} | {false} |"
        )
    return "\n".join(rows)


def _intro(runs: ContinuityRuns) -> str:
    settings, config = runs.settings, EngineConfig()
    last = settings.seed + max(settings.stall_trials, settings.pairs_runs) - 1
    return f"""
Protocol timing on Trio's `MockClock` (virtual time, `autojump_threshold=0`): each run is its
own `trio.run` with a fresh emulator (the {len(MAJOR_MARKETS)} major pairs) and a fresh engine
(`text_ping=True`), both seeded with the run's seed ({settings.seed}-{last}; trial *i* of a
scenario uses seed {settings.seed} + *i*, the drop runs seed {settings.seed}). Waiting costs
nothing, so the times below are the engine's timeouts, probes and backoff against the emulator's
heartbeat, not this machine's speed; loopback connects and replays take no virtual time (their
real cost is in the section above). The same seed gives the same times on every run; where two
events fall on the same virtual instant, Trio's (deliberately shuffled) scheduling order decides
which comes first, so a count can change by one between runs (which of two tied detections names
a quiet stall's cause, the stall probes of a 10-minute run). The whole part took
{runs.cpu:.0f} s of CPU ({runs.wall:.0f} s wall-clock).

Engine settings (defaults): `stall_timeout` {config.stall_timeout:g} s of total silence on a
quiet connection (Upbit's status frame comes every 10 s), busy connections probed after
`stall_probe_intervals` {config.stall_probe_intervals:g} usual inter-frame intervals of silence
and at least `stall_probe_floor` {config.stall_probe_floor:g} s, a stall when no pong comes
within `stall_probe_timeout` {config.stall_probe_timeout:g} s; keepalive ping every
`ping_interval` {config.ping_interval:g} s, dead without a pong within `ping_timeout`
{config.ping_timeout:g} s.
"""


def _tied_seeds(trials: Sequence[StallTrial]) -> list[int]:
    """Seeds whose trials (on different transports) were ended by different mechanisms."""
    causes: dict[tuple[StallKind, int], set[str]] = {}
    for trial in trials:
        causes.setdefault((trial.kind, trial.seed), set()).add(_ended_by(trial.cause))
    return sorted({seed for (_, seed), labels in causes.items() if len(labels) > 1})


def _stall_notes(runs: ContinuityRuns) -> str:
    probes = max((t.probes_before for t in runs.stalls), default=0)
    connects = max((t.connects_before for t in runs.stalls), default=0)
    notes = [
        "Before each stall, in the no-fault stretch: "
        f"{'no stall probe' if not probes else f'at most {probes} stall probe(s)'} and "
        f"{'one connect' if connects == 1 else f'up to {connects} connects'} in every trial"
        f"{' (no false restart)' if connects == 1 else ' (FALSE RESTARTS)'}."
    ]
    keepalive = [t for t in runs.stalls if _ended_by(t.cause) == "keepalive ping"]
    if keepalive:
        seeds = ", ".join(map(str, sorted({t.seed for t in keepalive})))
        notes.append(
            f"{len(keepalive)} trial(s) (seeds {seeds}) were ended by the keepalive ping "
            f'(`Interrupted.cause` "{keepalive[0].cause}"), not by the stall judgement. A quiet '
            "stall is found by whichever comes first: the stall judgement, `stall_timeout` "
            "after the last frame (the last status frame), or the pong timeout of the first "
            "keepalive ping sent after the stall. The 60 s stretch is a multiple of "
            "`ping_interval`, so a keepalive ping goes out at the stall's instant, and it wins "
            "(10 s) when the last status frame came less than about 2.5 s before the stall."
        )
    extra = {round(t.back - t.detected, 3) for t in runs.stalls if t.back and t.detected}
    if len(extra) == 1:
        notes.append(
            f"Stall → `Gap` is the detection plus {extra.pop():g} s in every trial: a dead "
            "connection is closed without a close handshake (`ConnectionDeadError`), and a "
            "reconnect on loopback takes no virtual time."
        )
    if ties := _tied_seeds(runs.stalls):
        notes.append(
            f"With seed(s) {', '.join(map(str, ties))} both fire at the same virtual instant, "
            "and which one names the cause follows Trio's (deliberately shuffled) scheduling "
            "order: the cause differs between transports or runs, the time does not."
        )
    return " ".join(notes)


def continuity_report(runs: ContinuityRuns) -> str:
    """The Markdown body of the continuity section."""
    settings = runs.settings
    return f"""
{_intro(runs).strip()}

**Stall detection.** The emulator stalls the subscriber's only connection (`Emulator.stall`: TCP
open, nothing sent, no ping answered) after the no-fault stretch; times from the stall.

{_stall_table(runs)}

{_stall_notes(runs)}

**Periodic drops.** `Emulator.drop()` (abort, no close frame) every N seconds while one
subscriber reads {DROP_PAIR} `trade` at {DROP_RATE:g} trades/s; each run about
{settings.drop_duration:g} virtual seconds plus one period for the last outage to end. Offline
share = the sum of the subscriber's `Gap` events' `end - start` over the run. 55 s and 65 s
straddle the 60 s of uptime after which a ticket's backoff resets. In virtual time an outage
lasts only as long as the engine's deliberate waits (backoff, connect pacing): a connection that
came back healthy reconnects at once after its next loss, whatever its uptime. On a real network
each drop adds one reconnect's real time (the section above): an outage of *r* s every 10 s
costs *r*/10 of the time.

{_drop_table(runs)}

**No false restart.** {", ".join(f"{c} {r:g}/s" for c, r in PAIRS_RATES.items())} on one `trade`
subscription; the busy pairs (1/s and more) go silent for {PAIRS_SILENT:g} s after every
{PAIRS_BUSY:g} s, as in `tests/engine/test_engine_stall_detection.py`. No fault is injected, so
the connection should never be restarted (`connects == 1`) and every silence of the busy pairs
should be settled by an answered probe.

{_pairs_table(runs)}
"""
