"""The engine end to end against the emulator on loopback, next to a bare client in the same run.

Measures:

* **throughput**: messages per second from the emulator to subscribers (``open_engine``,
  ``subscribe_realtime``, a consumer draining ``stream(sub_id)``), against a bare
  trio-websocket + ``orjson.loads`` loop on the same stream, in interleaved rounds; two extra
  bare variants price the engine's typed decoding and its pump-to-subscriber task hop;
* **snapshot latency** for 1 code and for 200 codes (p50/p99);
* **subscribe-to-first-message** latency of fresh subscriptions (p50/p99);
* **ticket efficiency** after 1,000 seeded random subscribe/modify/unsubscribe operations, then
  after ``optimize_subscriptions`` and ``cleanup_inactive``.

Run: ``uv run python bench/engine.py`` (about 3 minutes; ``--quick`` for a ~30 s smoke run that
does not touch docs/BENCHMARKS.md; ``--profile`` adds a cProfile of one engine round).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import math
import os
import pstats
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import attrs
import trio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._engine_emulator import EmulatorProcess, Refused, krw_codes, subscription_pairs
from bench._engine_latency import (
    RELAXED,
    ChangeCost,
    EfficiencyResult,
    Latencies,
    SendLog,
    change_costs,
    run_efficiency,
    snapshot_latencies,
    subscribe_latencies,
)
from bench._engine_throughput import RoundResult, bare_request, bare_round, engine_round
from bench._report import write_section
from engine import open_engine

__all__ = ("Settings", "main")

TYPES = ("ticker", "trade")
PACING_HEAD = (
    "| phase | requests sent | tightest 6-request span at the client (s) "
    "| over the limit at the emulator | tightest 6-message span at the emulator (s) |\n"
    "|---|---:|---:|---:|---:|"
)
EFFICIENCY_HEAD = (
    "| stage | tickets open | parked | idle | subscriptions | streams | codes "
    "| ticket efficiency | stream | connection | wire |\n"
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
)
#: Bare sides in round order: (label suffix, typed decode, task hop).
BARE_SIDES = (("", False, False), ("decode", True, False), ("decode+hop", True, True))


@attrs.frozen
class Settings:
    rounds: int
    warmup: float
    seconds: float
    rate_scale: float
    snapshots_one: int
    snapshots_batch: int
    subscribes: int
    limited_snapshots: int
    limited_subscribes: int
    operations: int
    #: Big subscriptions held while timing small changes, per step, and changes timed per step.
    change_big: tuple[int, ...]
    changes: int
    seed: int


DEFAULT = Settings(
    rounds=5,
    warmup=0.75,
    seconds=2.5,
    rate_scale=100.0,
    snapshots_one=200,
    snapshots_batch=60,
    subscribes=100,
    limited_snapshots=12,
    limited_subscribes=8,
    operations=1000,
    change_big=(1, 5),
    changes=10,
    seed=20261127,
)
QUICK = attrs.evolve(
    DEFAULT,
    rounds=2,
    warmup=0.5,
    seconds=1.5,
    snapshots_one=40,
    snapshots_batch=10,
    subscribes=15,
    limited_snapshots=7,
    limited_subscribes=3,
    operations=200,
    change_big=(1,),
    changes=4,
)


# -- throughput ----------------------------------------------------------------------------------


async def _wait_no_connections(emulator: EmulatorProcess) -> None:
    # The previous round's connection must be gone, so the counters read one client only.
    for _ in range(100):
        if not (await emulator.counters()).connections:
            return
        await trio.sleep(0.05)


async def throughput(
    emulator: EmulatorProcess, settings: Settings, profile: cProfile.Profile | None
) -> dict[str, list[RoundResult]]:
    codes = krw_codes()
    request = bare_request(TYPES, codes)
    sides: dict[str, list[RoundResult]] = {}
    window: dict[str, Any] = {"warmup": settings.warmup, "seconds": settings.seconds}
    for round_index in range(settings.rounds):
        for _, decode, hop in BARE_SIDES:
            await _wait_no_connections(emulator)
            result = await bare_round(emulator, request, decode=decode, hop=hop, **window)
            sides.setdefault(result.side, []).append(result)
            _print_round(round_index, result)
        await _wait_no_connections(emulator)
        result = await engine_round(emulator, TYPES, codes, **window)
        sides.setdefault(result.side, []).append(result)
        _print_round(round_index, result)
    if profile is not None:
        await _wait_no_connections(emulator)

        async def profiled(measure: Callable[[], Awaitable[None]]) -> None:
            profile.enable()
            try:
                await measure()
            finally:
                profile.disable()

        await engine_round(emulator, TYPES, codes, around_window=profiled, **window)
    return sides


def _print_round(index: int, r: RoundResult) -> None:
    print(
        f"round {index + 1} {r.side:28s} {r.rate:>8,.0f} msg/s  cpu {r.cpu / r.wall:4.0%}  "
        f"{r.cpu_per_message * 1e6:6.1f} us/msg  source {r.source_rate:>7,.0f}/s  "
        f"dropped {r.dropped_rate:>6,.0f}/s  backlog {r.backlog_rate:>+7,.0f}/s",
        flush=True,
    )


def _span(values: Sequence[float], fmt: str) -> str:
    return (
        f"{format(statistics.median(values), fmt)} "
        f"({format(min(values), fmt)}-{format(max(values), fmt)})"
    )


def throughput_report(sides: dict[str, list[RoundResult]], settings: Settings, load: float) -> str:
    bare, engine = sides["bare"], sides["engine"]
    expected = subscription_pairs(TYPES, krw_codes())
    same = all(r.subscriptions == expected for results in sides.values() for r in results)
    lines = [
        "| client | msg/s, median (min-max) | client CPU share | CPU µs per msg "
        "| msg per CPU-second | emulator frames/s to it | dropped by emulator/s "
        "| rounds client-limited |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    labels = {
        "bare": "bare: trio-websocket + `orjson.loads`",
        "bare + decode_frame": "bare + `decode_frame` (typed decode)",
        "bare + decode_frame + task hop": "bare + `decode_frame` + one task hop",
        "engine": "**engine**: `subscribe_realtime` + `stream()` consumer",
    }
    for side, results in sides.items():
        lines.append(
            f"| {labels.get(side, side)} | {_span([r.rate for r in results], ',.0f')} "
            f"| {statistics.median(r.cpu / r.wall for r in results):.0%} "
            f"| {statistics.median(r.cpu_per_message * 1e6 for r in results):.1f} "
            f"| {statistics.median(1 / r.cpu_per_message for r in results):,.0f} "
            f"| {statistics.median(r.source_rate for r in results):,.0f} "
            f"| {statistics.median(r.dropped_rate for r in results):,.0f} "
            f"| {sum(r.client_limited for r in results)}/{len(results)} |"
        )
    wall = [e.rate / b.rate for b, e in zip(bare, engine, strict=True)]
    cpu = [b.cpu_per_message / e.cpu_per_message for b, e in zip(bare, engine, strict=True)]

    def us(side: str) -> list[float]:
        return [r.cpu_per_message * 1e6 for r in sides[side]]

    def step(upper: str, lower: str) -> str:
        # Paired by round (the two ran seconds apart), so slow drifts in machine load cancel.
        deltas = [a - b for a, b in zip(us(upper), us(lower), strict=True)]
        return f"{statistics.median(deltas):+.1f} µs ({min(deltas):+.0f} to {max(deltas):+.0f})"

    pairs = ", ".join(f"{w:.2f}" for w in wall)
    cpu_pairs = ", ".join(f"{c:.2f}" for c in cpu)
    return f"""
**Throughput.** One emulator, in a child process with its own Trio loop, serves all
{len(krw_codes())} KRW pairs' `ticker` + `trade` (DEFAULT format) with market activity scaled
x{settings.rate_scale:g}, more than it can render, so it produces what its core allows and
discards frames for a client that falls 8 MB behind (`slow_client="drop_frames"`, counted). Each
client in turn, in the benchmark's process, opens one connection and sends the same request (the
emulator's view of every connection's subscription set was checked equal for all clients:
{"yes" if same else "**NO**"}); {settings.rounds} rounds of bare, its two variants and the engine,
interleaved, each {settings.warmup:g} s of warm-up then {settings.seconds:g} s measured. The
machine has 2 cores shared by the emulator, the client and whatever else runs (load average at
start: {load:.1f}), so wall-clock rates swing with the CPU share each client got; CPU time per
message (this process's CPU time over the window, all its tasks, the emulator excluded) swings
much less.

{chr(10).join(lines)}

Engine / bare, messages per second, per round pair: {pairs}
(median **{statistics.median(wall):.2f}**; the aim is 0.7).
CPU-normalised (bare CPU per message / engine CPU per message, per round pair): {cpu_pairs}
(median **{statistics.median(cpu):.2f}**): what the engine reaches relative to the bare loop
when both are given the same CPU.
A round is client-limited when the emulator's output outran the client by more than 5 % (its
queue for the client grew, or it dropped frames); in the other rounds the emulator set the pace
and the wall-clock rate understates what the client could take.

Where the engine's extra CPU per message goes, {step("engine", "bare")} over the bare loop
(medians of per-round differences, range in brackets; single rounds are noisy on this machine):
typed decoding {step("bare + decode_frame", "bare")} (`decode_frame` instead of
`orjson.loads`); handing each message to another task
{step("bare + decode_frame + task hop", "bare + decode_frame")} (the pump → subscriber hop
through a bare deque and parking lot: one more task step per message, which is what Trio
charges any design that buffers between a receiving task and a consuming one); the engine's
own routing, buffer policies, counters and stream wrapper
{step("engine", "bare + decode_frame + task hop")}.
"""


# -- latencies and efficiency ----------------------------------------------------------------------


@attrs.frozen
class QuietResults:
    relaxed: tuple[Latencies, ...]
    limited: tuple[Latencies, ...]
    changes: tuple[ChangeCost, ...]
    efficiency: tuple[EfficiencyResult, ...]
    pacing: tuple[Pacing, ...]
    connects_refused: int


@attrs.frozen
class Pacing:
    """How one phase's requests met Upbit's 5-per-second window, seen from both ends."""

    phase: str
    #: Requests the engine sent (keepalive PINGs excluded) and the shortest time any of its
    #: connections took to send 6 of them, on the engine's clock.
    sent: int
    client_span: float
    #: Messages the emulator counted over the limit in this phase, and the shortest 6-message
    #: span among them on the emulator's clock.
    excess: tuple[Refused, ...]

    @classmethod
    async def measure(
        cls, phase: str, log: SendLog, emulator: EmulatorProcess, earlier: Sequence[Pacing]
    ) -> Pacing:
        seen = sum(len(p.excess) for p in earlier)
        excess = (await emulator.refusals())[seen:]
        return cls(phase, log.requests(), log.tightest_span(), excess)

    def row(self) -> str:
        server = min((r.span for r in self.excess), default=math.inf)
        return (
            f"| {self.phase} | {self.sent} | {_seconds(self.client_span)} | {len(self.excess)} "
            f"| {_seconds(server)} |"
        )


def _seconds(value: float) -> str:
    return "-" if math.isinf(value) else f"{value:.3f}"


async def quiet_phases(
    emulator: EmulatorProcess, settings: Settings, packing: bool
) -> QuietResults:
    codes = krw_codes()
    batch = list(codes[:200])
    urls: dict[str, Any] = {"ws_url": emulator.ws_url, "rest_url": emulator.rest_url, "seed": 1}
    relaxed: list[Latencies] = []
    async with open_engine(**urls, **RELAXED) as engine:
        print("snapshot latency (limits lifted)...", flush=True)
        relaxed.append(
            await snapshot_latencies(
                engine, "`request_snapshot`, 1 code", ["KRW-BTC"], settings.snapshots_one
            )
        )
        relaxed.append(
            await snapshot_latencies(
                engine, "`request_snapshot`, 200 codes", batch, settings.snapshots_batch
            )
        )
        print("subscribe latency (limits lifted)...", flush=True)
        relaxed.extend(
            await subscribe_latencies(
                engine, "fresh subscription", codes, settings.subscribes, seed=settings.seed
            )
        )
    async with open_engine(**urls, **RELAXED) as engine:
        print("cost of one change vs routing table size...", flush=True)
        changes = await change_costs(engine, codes, settings.change_big, changes=settings.changes)
    await emulator.set_limits(True)
    pacing: list[Pacing] = []
    limited: list[Latencies] = []
    log = SendLog()
    async with open_engine(**urls, transport=log) as engine:
        print("latency under Upbit's limits...", flush=True)
        limited.append(
            await snapshot_latencies(
                engine,
                "`request_snapshot`, 1 code, back to back",
                ["KRW-BTC"],
                settings.limited_snapshots,
                warm=1,
            )
        )
        limited.extend(
            await subscribe_latencies(
                engine,
                "fresh subscription, back to back",
                codes,
                settings.limited_subscribes,
                seed=settings.seed,
                warm=0,
            )
        )
    pacing.append(await Pacing.measure("back-to-back latency calls", log, emulator, pacing))
    efficiency: list[EfficiencyResult] = []
    configs: list[tuple[str, dict[str, Any]]] = [
        ("defaults (2 realtime tickets of up to 1,000 codes)", {})
    ]
    if packing:
        configs.append(
            (
                "4 realtime tickets of up to 100 codes",
                {"realtime_pool_size": 4, "ticket_capacity": 100},
            )
        )
    for label, options in configs:
        print(f"ticket efficiency, {label}...", flush=True)
        log = SendLog()
        async with open_engine(**urls, transport=log, **options) as engine:
            efficiency.append(
                await run_efficiency(
                    engine, label, list(codes), settings.operations, seed=settings.seed
                )
            )
        pacing.append(await Pacing.measure(f"efficiency, {label}", log, emulator, pacing))
    counters = await emulator.counters()
    return QuietResults(
        tuple(relaxed),
        tuple(limited),
        tuple(changes),
        tuple(efficiency),
        tuple(pacing),
        counters.connects_refused,
    )


def quiet_report(results: QuietResults, settings: Settings) -> str:
    head = "| measurement | samples | p50 (ms) | p99 (ms) | max (ms) |\n|---|---:|---:|---:|---:|"
    relaxed = "\n".join(item.row() for item in results.relaxed)
    limited = "\n".join(item.row() for item in results.limited)
    sections = [
        f"""
**Latency.** A second emulator process at normal activity (x1), real clock, loopback. First with
the per-connection message limits lifted on both sides (engine `messages_per_second=10000`,
`messages_per_minute=600000`; emulator limits relaxed), so the numbers are the engine's own:
sequential calls, after 3 unmeasured warm-up calls (the first connects the snapshot ticket);
200 codes are the first 200 KRW pairs in one call. Fresh subscriptions join a realtime ticket
that already streams an anchor subscription; each is `ticker` on a random other KRW pair,
released before the next. Every figure includes the default `coalesce_window` (10 ms), the
deliberate wait that lets a burst of changes or snapshot asks leave as one message.

{head}
{relaxed}

Then with Upbit's limits as shipped (engine defaults, emulator enforcing 5 messages/s and
100/min per connection, sliding windows): back-to-back calls queue behind the limiter, so after
a burst of 5 messages on a connection the next waits for the one-second window to slide (about
a second), and past 100 in a minute for the minute window. Each fresh subscription costs two
messages on its ticket (subscribe and release); the snapshot ticket's text `PING` counts too.

{head}
{limited}
""",
    ]
    pacing = "\n".join(row.row() for row in results.pacing)
    excess = sum(len(row.excess) for row in results.pacing)
    sections.append(
        f"""
**Pacing against Upbit's message limit** (the phases run with limits enforced). The engine
reserves a send slot with its limiter (5 per 1 s and 100 per 60 s, plus a 0.1 s safety margin
on each window), so any 6 consecutive requests of one connection should span at least 1.1 s.
The client column is what actually left the engine (a transport wrapper timing each request,
keepalive PINGs excluded); the emulator counts a message over the limit when it is the sixth
within 1.0 s on its own clock (here it counts and then processes it, with no block escalation,
so one near miss does not cascade; on Upbit each is an error frame and a close, and three in a
minute a block). {excess} message(s) over the limit in total; upgrades refused:
{results.connects_refused}.

{PACING_HEAD}
{pacing}
"""
    )
    change_rows = "\n".join(
        f"| {cost.routes:,} | {len(cost.samples.samples)} "
        f"| {cost.samples.percentile(0.5) * 1e3:.1f} | {max(cost.samples.samples) * 1e3:.1f} |"
        for cost in results.changes
    )
    sections.append(
        f"""
**Cost of one change as the routing table grows** (limits lifted, as above). Each step adds
subscriptions to ticker + trade + orderbook over all {len(krw_codes())} KRW pairs (each drained
by a reader), then times `modify_subscription` of a one-code ticker subscription to another
code. The engine runs on one Trio thread, so realtime delivery pauses for as long as a change
takes.

| routes (stream x subscriber) | changes | p50 (ms) | max (ms) |
|---|---:|---:|---:|
{change_rows}
"""
    )
    for eff in results.efficiency:
        ops = eff.op_latency
        buckets = ", ".join(
            f"{label} live: {seconds * 1e3:.1f} ms ({n})"
            for label, seconds, n in ops.by_size(eff.live_after, (25, 50, 75))
        )
        table = "\n".join(row.row() for row in eff.rows)
        counts = ", ".join(f"{n} {kind}" for kind, n in eff.operations.items())
        sections.append(
            f"""
**Ticket efficiency, {eff.label}.** {sum(eff.operations.values()):,} seeded operations
({counts}) against the emulator with Upbit's limits enforced, each awaited in turn:
subscribe is 1-3 of ticker/trade/orderbook over 1-6 random KRW pairs, modify picks new random
pairs, unsubscribe is soft. Every subscription has a reader; 10 % of the readers stop after
their first message without unsubscribing (abandoned streams, for `cleanup_inactive`). The
operations took {eff.seconds:.1f} s; over the whole phase the engine sent
{eff.requests_sent} messages (keepalive PINGs included: changes coalesce per ticket);
{eff.refused} operations were refused by validation, {eff.failed_subscriptions} subscriptions
failed. One operation, call to return, p50 by live subscriptions at the time (operations):
{buckets}; p99 overall {ops.percentile(0.99) * 1e3:.1f} ms. Efficiency as the planner defines
it (ticket = stream x connection); "wire" is what the open tickets last sent, which lags the
plan while a ticket waits for its message limiter: under sustained churn a ticket can reach
Upbit's 100 messages per minute, and then waits for the minute window.
`optimize_subscriptions` moved {eff.moved} streams and closed {eff.closed_by_optimize} tickets;
`cleanup_inactive` released {eff.released_by_cleanup} subscriptions and closed
{eff.closed_by_cleanup} tickets.

{EFFICIENCY_HEAD}
{table}
"""
        )
    return "\n".join(sections)


def profile_report(profile: cProfile.Profile) -> str:
    text = io.StringIO()
    stats = pstats.Stats(profile, stream=text)
    stats.sort_stats("cumulative").print_stats(12)
    stats.sort_stats("tottime").print_stats(12)
    return text.getvalue()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="~30 s smoke run; report untouched")
    parser.add_argument("--rounds", type=int, help="throughput rounds (default 5)")
    parser.add_argument("--seconds", type=float, help="measured seconds per throughput round")
    parser.add_argument("--rate-scale", type=float, help="emulator market activity (default 100)")
    parser.add_argument("--profile", action="store_true", help="cProfile one extra engine round")
    parser.add_argument(
        "--packing",
        action="store_true",
        help="also run the efficiency phase with 4 realtime tickets of up to 100 codes",
    )
    parser.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md")
    args = parser.parse_args(argv)
    settings = QUICK if args.quick else DEFAULT
    overrides = {"rounds": args.rounds, "seconds": args.seconds, "rate_scale": args.rate_scale}
    settings = attrs.evolve(settings, **{k: v for k, v in overrides.items() if v is not None})
    profile = cProfile.Profile() if args.profile else None
    started = time.perf_counter()
    load = os.getloadavg()[0]

    with EmulatorProcess(rate_scale=settings.rate_scale, enforce_limits=False) as emulator:
        sides = trio.run(throughput, emulator, settings, profile)
    with EmulatorProcess(rate_scale=1.0, enforce_limits=False) as emulator:
        quiet = trio.run(quiet_phases, emulator, settings, args.packing)

    body = throughput_report(sides, settings, load) + "\n" + quiet_report(quiet, settings)
    print(body)
    if profile is not None:
        print(profile_report(profile))
    print(f"total {time.perf_counter() - started:.0f} s")
    if not (args.quick or args.no_write):
        write_section("engine", "Engine end to end (emulator on loopback)", body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
