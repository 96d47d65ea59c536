"""Trade backfill on Trio's ``MockClock``: completeness under random faults, and time to fill.

Virtual time, as in ``bench/_recovery_continuity.py``: the numbers are protocol timing (the
engine's reconnects, the quotation budget of 10 REST requests a second, the emulator's paging),
deterministic for a seed, not this machine's speed. Each run is its own ``trio.run`` with a fresh
emulator and engine.

* **completeness**: a trade subscriber on the major KRW pairs (busy and quiet), the emulator
  dropping, restarting or stalling its connections at random (seeded) for 10 virtual minutes.
  Per code, over the span the subscriber had it (its first trade to its last), the trades the
  emulator's market made (``Emulator.trades_made``, which the engine never sees) against those
  delivered: complete share, trades missing and reported in a ``Backfilled``'s ``unfilled``, and
  trades missing silently (must be 0). With backfill on, and off for comparison.
* **time to fill**: a trade subscriber on 1, 30 and every KRW code; the server restarts (down
  10 s); the time from the reconnect (the ``Gap``'s end) to the last code's ``Backfilled``, the
  REST pages it took, and how many codes were filled completely.
"""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, TypeVar

import attrs
import trio
import trio.testing

from engine import Backfilled, Engine, Gap, Trade, open_engine
from engine.routing.buffer import StreamItem
from engine.testing import MAJOR_MARKETS, Emulator, EmulatorConfig, TradeRetention, open_emulator

__all__ = (
    "BACKFILL_DEFAULT",
    "BACKFILL_QUICK",
    "BackfillRuns",
    "BackfillSettings",
    "backfill_report",
    "run_backfill",
)

T = TypeVar("T")

#: Trades per second per major KRW pair in the completeness runs: busy to quiet.
COMPLETENESS_RATES = {"KRW-BTC": 12.0, "KRW-ETH": 6.0, "KRW-XRP": 2.0, "KRW-DOGE": 0.3}
#: Trades per second of every pair in the time-to-fill runs (one REST page per code).
FILL_RATE = 1.0
FILL_DOWNTIME = 10.0


@attrs.frozen
class BackfillSettings:
    seed: int = 1
    #: Virtual seconds of random faults in a completeness run.
    duration: float = 600.0
    #: Codes per time-to-fill run (None: every KRW code of the emulator's catalog).
    sizes: tuple[int | None, ...] = (1, 30, None)


BACKFILL_DEFAULT = BackfillSettings()
BACKFILL_QUICK = BackfillSettings(duration=120.0, sizes=(1, 30))


@attrs.frozen
class Completeness:
    backfill: bool
    made: int
    delivered: int
    reported: int
    silent: int
    duplicates: int
    outages: int
    backfills: int


@attrs.frozen
class FillTime:
    codes: int
    seconds: float | None
    pages: int
    complete: int
    reports: int
    trades: int


@attrs.frozen
class BackfillRuns:
    settings: BackfillSettings
    completeness: tuple[Completeness, ...]
    fills: tuple[FillTime, ...]
    wall: float
    cpu: float


@contextlib.asynccontextmanager
async def _on_emulator(
    seed: int, markets: Sequence[str] | None, **options: Any
) -> AsyncIterator[tuple[Engine, Emulator]]:
    config = EmulatorConfig(
        markets=None if markets is None else tuple(markets),
        seed=seed,
        recent_frames=0,
        feed_interval=0.1,
        trade_retention=TradeRetention(seconds=3600.0),
    )
    async with (
        open_emulator(config) as emu,
        open_engine(ws_url=emu.ws_url, rest_url=emu.rest_url, seed=seed, **options) as eng,
    ):
        yield eng, emu


async def _collect(eng: Engine, sub_id: str, into: list[StreamItem]) -> None:
    async for item in eng.stream(sub_id):
        into.append(item)


async def _faults(emu: Emulator, rng: random.Random, until: float) -> None:
    while True:
        await trio.sleep(rng.uniform(15.0, 45.0))
        if trio.current_time() >= until:
            return
        kind = rng.choice(("drop", "restart", "stall"))
        if kind == "drop":
            await emu.drop(how=rng.choice(("abort", "close1001")))
        elif kind == "restart":
            await emu.restart(downtime=rng.uniform(0.5, 8.0))
        else:
            for info in emu.connections(open_only=True):
                emu.stall(info.conn_id, duration=rng.uniform(3.0, 20.0))


async def _completeness(seed: int, duration: float, backfill: bool) -> Completeness:
    codes = tuple(COMPLETENESS_RATES)
    async with _on_emulator(seed, MAJOR_MARKETS, backfill=backfill) as (eng, emu):
        for code, rate in COMPLETENESS_RATES.items():
            emu.set_rate(code, rate)
        items: list[StreamItem] = []
        async with trio.open_nursery() as nursery:
            sub_id = await eng.subscribe_realtime("trade", codes)
            nursery.start_soon(_collect, eng, sub_id, items)
            await _faults(emu, random.Random(seed), trio.current_time() + duration)
            await eng.wait_settled(timeout=300.0)
            await trio.sleep(5.0)
            nursery.cancel_scope.cancel()
        made = {code: emu.trades_made(code) for code in codes}
        metrics = eng.metrics()
    reports = [item for item in items if isinstance(item, Backfilled)]
    totals = [0, 0, 0, 0, 0]
    for code in codes:
        trades = [i for i in items if isinstance(i, Trade) and i.code == code]
        ids = [t.sequential_id for t in trades]
        position = {t.sequential_id: n for n, t in enumerate(made[code])}
        span = [position[sid] for sid in ids if sid in position]
        if not span:
            continue
        window = made[code][min(span) : max(span) + 1]
        got = set(ids)
        missing = [t for t in window if t.sequential_id not in got]
        told = [t for t in missing if any(r.covers(t.trade_timestamp) for r in reports)]
        totals[0] += len(window)
        totals[1] += len(got & {t.sequential_id for t in window})
        totals[2] += len(told)
        totals[3] += len(missing) - len(told)
        totals[4] += len(ids) - len(got)
    made_total, delivered, reported, silent, duplicates = totals
    return Completeness(
        backfill,
        made_total,
        delivered,
        reported,
        silent,
        duplicates,
        outages=metrics.connection_losses,
        backfills=metrics.backfills,
    )


async def _fill_time(seed: int, count: int | None) -> FillTime:
    async with _on_emulator(seed, None) as (eng, emu):
        krw = [listing.market for listing in emu.catalog if listing.market.startswith("KRW-")]
        codes = krw if count is None else krw[:count]
        for listing in emu.catalog:
            emu.set_rate(listing.market, FILL_RATE if listing.market in codes else 0.0)
        items: list[StreamItem] = []
        async with trio.open_nursery() as nursery:
            sub_id = await eng.subscribe_realtime("trade", codes)
            nursery.start_soon(_collect, eng, sub_id, items)
            await eng.wait_settled(timeout=120.0)
            await trio.sleep(30.0)
            await emu.restart(downtime=FILL_DOWNTIME)
            await trio.sleep(1.0)
            await eng.wait_settled(timeout=600.0)
            await trio.sleep(2.0)  # the reader takes the last items
            nursery.cancel_scope.cancel()
        pages = eng.metrics().backfill_pages
    gaps = [item for item in items if isinstance(item, Gap) and item.end is not None]
    reports = [item for item in items if isinstance(item, Backfilled)]
    seconds = None
    if gaps and reports:
        seconds = max(r.at for r in reports) - min(g.end for g in gaps if g.end is not None)
    trades = sum(r.delivered for r in reports)
    complete = sum(1 for r in reports if r.complete)
    return FillTime(len(codes), seconds, pages, complete, len(reports), trades)


def _virtual(scenario: Callable[..., Awaitable[T]], *args: object) -> T:
    return trio.run(scenario, *args, clock=trio.testing.MockClock(autojump_threshold=0))


def run_backfill(settings: BackfillSettings, say: Callable[[str], object] = print) -> BackfillRuns:
    """Every backfill scenario of ``settings`` (not inside a Trio run)."""
    wall, cpu = time.perf_counter(), time.process_time()
    completeness: list[Completeness] = []
    for backfill in (True, False):
        run = _virtual(_completeness, settings.seed, settings.duration, backfill)
        completeness.append(run)
        say(f"  [backfill] completeness, backfill {'on' if backfill else 'off'}: {run}")
    fills: list[FillTime] = []
    for count in settings.sizes:
        fill = _virtual(_fill_time, settings.seed, count)
        fills.append(fill)
        say(f"  [backfill] time to fill: {fill}")
    return BackfillRuns(
        settings,
        tuple(completeness),
        tuple(fills),
        time.perf_counter() - wall,
        time.process_time() - cpu,
    )


_HEADER = (
    "| backfill | outages | trades made | delivered | complete | missing, reported "
    "| missing, silent | duplicates | backfills |\n|---|---|---|---|---|---|---|---|---|"
)


def _share(part: int, whole: int) -> str:
    return "-" if not whole else f"{part / whole:.2%}"


def backfill_report(runs: BackfillRuns) -> str:
    """The BENCHMARKS.md section body."""
    settings = runs.settings
    rows = [
        f"| {'on' if c.backfill else 'off'} | {c.outages} | {c.made} | {c.delivered} | "
        f"{_share(c.delivered, c.made)} | {c.reported} | {c.silent} | {c.duplicates} | "
        f"{c.backfills} |"
        for c in runs.completeness
    ]
    fill_rows = [
        f"| {f.codes} | {'-' if f.seconds is None else f'{f.seconds:.1f} s'} | {f.pages} | "
        f"{f.complete} / {f.reports} | {f.trades} |"
        for f in runs.fills
    ]
    rates = ", ".join(f"{code} {rate:g}/s" for code, rate in COMPLETENESS_RATES.items())
    return f"""Virtual time on Trio's `MockClock`: protocol timing, deterministic for the seed
{settings.seed} ({runs.wall:.0f} s wall, {runs.cpu:.0f} s CPU). REST round trips take no
virtual time here: against Upbit add one round trip per page.

**Trade completeness under random faults.** One trade subscriber on {rates}; for
{settings.duration:g} virtual seconds the emulator drops every connection (abort or close 1001),
restarts (down 0.5-8 s) or stalls the connection (3-20 s), one fault every 15-45 s (seeded).
Per code, over the span the subscriber had it, the trades the emulator's market made against
those delivered. "Reported" are missing trades inside a `Backfilled` event's `unfilled` ranges;
"silent" are missing trades nothing reported (the promise is 0 with backfill on). "Backfills"
counts fetches: after each reconnect one per code, and after each probed silence (a stall the
connection survived) one per code too.

{_HEADER}
{chr(10).join(rows)}

With backfill off every outage is a hole the `Gap` reports only in time (its missing trades are
"silent" here because no `Backfilled` lists them).

**Time to fill after a reconnect.** A trade subscriber on the first N KRW codes of the
emulator's catalog, each trading {FILL_RATE:g}/s; after 30 s the server restarts, down
{FILL_DOWNTIME:g} s. Time from the reconnect (the `Gap`'s end) to the last code's `Backfilled`;
REST pages spent (one per code at least: Upbit's trade group allows 10 requests a second, so
the time grows with the number of codes, about N/10 s).

| codes | reconnect to last `Backfilled` | REST pages | complete / reports | trades backfilled |
|---|---|---|---|---|
{chr(10).join(fill_rows)}
"""
