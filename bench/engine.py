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
import os
import pstats
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

import attrs
import trio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._engine_emulator import EmulatorProcess, krw_codes, subscription_pairs
from bench._engine_latency import (
    RELAXED,
    ChangeCost,
    EfficiencyResult,
    Latencies,
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
    warmup=1.0,
    seconds=3.0,
    rate_scale=100.0,
    snapshots_one=300,
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
    window = {"warmup": settings.warmup, "seconds": settings.seconds}
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


def throughput_report(sides: dict[str, list[RoundResult]], settings: Settings) -> str:
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

    def us(side: str) -> float:
        # The least disturbed round: load from elsewhere only ever adds CPU per message.
        return min(r.cpu_per_message * 1e6 for r in sides[side])

    base, decoded, hopped, full = (
        us("bare"),
        us("bare + decode_frame"),
        us("bare + decode_frame + task hop"),
        us("engine"),
    )
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
start: {os.getloadavg()[0]:.1f}), so wall-clock rates swing with the CPU share each client got;
CPU time per message (this process's CPU time over the window, the emulator excluded) does not.

{chr(10).join(lines)}

Engine / bare, messages per second, per round pair: {pairs}
(median **{statistics.median(wall):.2f}**).
CPU-normalised (bare CPU per message / engine CPU per message, per round pair): {cpu_pairs}
(median **{statistics.median(cpu):.2f}**): what the engine reaches relative to the bare loop
when both are given the same CPU.
A round is client-limited when the emulator's output outran the client by more than 5 % (its
queue for the client grew, or it dropped frames); in the other rounds the emulator set the pace
and the wall-clock rate understates what the client could take.

Where the engine's extra {full - base:.0f} µs per message go (CPU per message, the lowest of
the rounds for each client, since load from elsewhere only adds to it):
typed decoding {decoded - base:+.1f} µs (`decode_frame` instead of `orjson.loads`), handing each
message to another task {hopped - decoded:+.1f} µs (the pump → subscriber hop every buffered
design pays under Trio, one extra scheduler pass per message), and the engine's own routing,
buffers, counters and stream wrapper {full - hopped:+.1f} µs.
"""


# -- latencies and efficiency ----------------------------------------------------------------------


@attrs.frozen
class QuietResults:
    relaxed: tuple[Latencies, ...]
    limited: tuple[Latencies, ...]
    changes: tuple[ChangeCost, ...]
    efficiency: tuple[EfficiencyResult, ...]
    rate_limited: int
    connects_refused: int


async def quiet_phases(emulator: EmulatorProcess, settings: Settings) -> QuietResults:
    codes = krw_codes()
    batch = list(codes[:200])
    urls = {"ws_url": emulator.ws_url, "rest_url": emulator.rest_url, "seed": 1}
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
    limited: list[Latencies] = []
    async with open_engine(**urls) as engine:
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
    efficiency: list[EfficiencyResult] = []
    configs: tuple[tuple[str, dict[str, int]], ...] = (
        ("defaults (2 realtime tickets of up to 1,000 codes)", {}),
        (
            "4 realtime tickets of up to 100 codes",
            {"realtime_pool_size": 4, "ticket_capacity": 100},
        ),
    )
    for label, options in configs:
        print(f"ticket efficiency, {label}...", flush=True)
        async with open_engine(**urls, **options) as engine:
            efficiency.append(
                await run_efficiency(
                    engine, label, list(codes), settings.operations, seed=settings.seed
                )
            )
    counters = await emulator.counters()
    return QuietResults(
        tuple(relaxed),
        tuple(limited),
        tuple(changes),
        tuple(efficiency),
        counters.rate_limited,
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
Rate-limit refusals by the emulator over the whole latency and efficiency phases:
{results.rate_limited} messages, {results.connects_refused} connects.

{head}
{limited}
""",
    ]
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
operations took {eff.seconds:.1f} s and put {eff.requests_sent} requests on the wire (changes
coalesce per ticket); {eff.refused} were refused by validation, {eff.failed_subscriptions}
subscriptions failed, and the emulator refused nothing (above). One operation, call to return,
p50 by live subscriptions at the time (operations): {buckets}; p99 overall
{ops.percentile(0.99) * 1e3:.1f} ms. Efficiency as the planner defines it (ticket = stream x
connection; "wire" is what the open tickets last sent). `optimize_subscriptions` moved
{eff.moved} streams and closed {eff.closed_by_optimize} tickets; `cleanup_inactive` released
{eff.released_by_cleanup} subscriptions and closed {eff.closed_by_cleanup} tickets.

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
    parser.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md")
    args = parser.parse_args(argv)
    settings = QUICK if args.quick else DEFAULT
    overrides = {"rounds": args.rounds, "seconds": args.seconds, "rate_scale": args.rate_scale}
    settings = attrs.evolve(settings, **{k: v for k, v in overrides.items() if v is not None})
    profile = cProfile.Profile() if args.profile else None
    started = time.perf_counter()

    with EmulatorProcess(rate_scale=settings.rate_scale, enforce_limits=False) as emulator:
        sides = trio.run(throughput, emulator, settings, profile)
    with EmulatorProcess(rate_scale=1.0, enforce_limits=False) as emulator:
        quiet = trio.run(quiet_phases, emulator, settings)

    body = throughput_report(sides, settings) + "\n" + quiet_report(quiet, settings)
    print(body)
    if profile is not None:
        print(profile_report(profile))
    print(f"total {time.perf_counter() - started:.0f} s")
    if not (args.quick or args.no_write):
        write_section("engine", "Engine end to end (emulator on loopback)", body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
