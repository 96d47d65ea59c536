"""``upbit-engine demo``: the main job, end to end, on the embedded emulator.

It starts the Upbit emulator on 127.0.0.1, opens the engine against it and walks through the
main usage patterns: a one-shot snapshot, a bulk snapshot, realtime streams merged onto the
realtime tickets, a dropped connection (supervised restart, ordered replay, a ``Gap`` in every
affected stream), a modify, a soft and a hard unsubscribe. Every couple of seconds it prints the
subscriptions, the tickets and the message rates; at the end the supervisor tree and a summary.
It ends by itself (``--duration``, 20 s by default).
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from typing import TextIO

import attrs
import trio

from engine.cli.output import describe
from engine.events import EVENT_TYPES, Ended, Gap
from engine.facade.engine import Engine
from engine.facade.open import open_engine
from engine.testing import MAJOR_MARKETS, Emulator, EmulatorConfig, Listing, open_emulator
from engine.wire.messages import Ticker

__all__ = ("DemoSummary", "run_demo")

#: The demo's KRW orderbook snapshot covers the KRW majors.
_KRW_MAJORS = tuple(code for code in MAJOR_MARKETS if code.startswith("KRW-"))


@attrs.frozen
class DemoSummary:
    """What the demo observed; the CLI prints it, the tests assert on it."""

    duration: float
    messages: int
    messages_by_type: dict[str, int]
    gaps: int
    reconnects: int
    #: Trade/candle backfills after gaps, and how many left something unfilled.
    backfills: int
    snapshot_codes: int
    ticket_efficiency: float
    emulator_requests: int
    emulator_limit_violations: int


@attrs.define
class _Counts:
    by_sub: Counter[str] = attrs.field(factory=Counter)
    by_type: Counter[str] = attrs.field(factory=Counter)
    gaps: int = 0


async def _consume(eng: Engine, sub_id: str, counts: _Counts, say: Callable[[str], None]) -> None:
    async for item in eng.stream(sub_id):
        if isinstance(item, EVENT_TYPES):
            # Interrupted, Gap, SnapshotMissing, Backfilled: shown as they happen.
            counts.gaps += isinstance(item, Gap)
            if not isinstance(item, Ended):
                say(f"   [{sub_id}] {describe(item)}")
        else:
            counts.by_sub[sub_id] += 1
            counts.by_type[item.type] += 1


def _status(eng: Engine, counts: _Counts, previous: int, interval: float, now: float) -> str:
    total = sum(counts.by_sub.values())
    lines = [f"--- t={now:5.1f}s  messages={total}  rate={(total - previous) / interval:,.0f}/s"]
    for ticket, info in sorted(eng.registry().items()):
        names = ",".join(info.data_types)
        lines.append(
            f"  {ticket:<12} {info.mode:<9} {info.status:<9} "
            f"types={names or '-'} codes={len(info.symbols)}"
        )
    for sub_id, received in sorted(counts.by_sub.items()):
        lines.append(f"  {sub_id:<12} received {received}")
    return "\n".join(lines)


#: A step of the scripted part: (fraction of the duration, label, action).
_Step = tuple[float, str, Callable[[], Awaitable[object]]]


async def run_demo(
    *,
    duration: float = 20.0,
    seed: int = 7,
    out: TextIO | None = None,
    status_interval: float = 2.0,
) -> DemoSummary:
    """Run the demo scenario for ``duration`` seconds of Trio time and return what it saw."""
    stream = out if out is not None else sys.stdout

    def say(text: str) -> None:
        print(text, file=stream, flush=True)

    counts = _Counts()
    emulator_config = EmulatorConfig(seed=seed, rate_scale=2.0)
    async with open_emulator(emulator_config) as emu:
        say(f"emulator: {emu.ws_url}  (REST {emu.rest_url})")
        async with open_engine(ws_url=emu.ws_url, rest_url=emu.rest_url, seed=seed) as eng:
            start = trio.current_time()
            snapshot_codes = await _snapshots(eng, emu.catalog, say)
            subs = await _subscribe(eng, say)
            script = _script(eng, emu, subs)
            async with trio.open_nursery() as nursery:
                for sub_id in subs.values():
                    nursery.start_soon(_consume, eng, sub_id, counts, say)
                await _play(eng, counts, script, say, start, duration, status_interval)
                say("\nsupervisor tree:")
                say(eng.debug_tree().render())
                metrics = eng.metrics()
                nursery.cancel_scope.cancel()
            requests = emu.requests()
    summary = DemoSummary(
        duration=duration,
        messages=sum(counts.by_sub.values()),
        messages_by_type=dict(counts.by_type),
        gaps=counts.gaps,
        reconnects=metrics.reconnects,
        backfills=metrics.backfills,
        snapshot_codes=snapshot_codes,
        ticket_efficiency=metrics.ticket_efficiency,
        emulator_requests=len(requests),
        emulator_limit_violations=sum(1 for record in requests if record.kind == "rate_limited"),
    )
    say(_summary_text(summary))
    return summary


async def _snapshots(eng: Engine, catalog: Sequence[Listing], say: Callable[[str], None]) -> int:
    """Steps 1 and 2: a one-shot snapshot, then a bulk one; how many codes the bulk one got."""
    say("\n1. one-shot snapshot (snapshot ticket, is_only_snapshot)")
    snap = await eng.request_snapshot("ticker", ["KRW-BTC"])
    ticker = snap["KRW-BTC"]
    assert isinstance(ticker, Ticker)
    say(f"   KRW-BTC last price {ticker.trade_price:,.0f} KRW")

    say("2. bulk snapshot: every KRW ticker + majors' orderbooks, merged")
    catalog_codes = [listing.market for listing in catalog if listing.market.startswith("KRW-")]
    tickers, books = await eng.request_snapshots_batch(
        [("ticker", catalog_codes), ("orderbook", list(_KRW_MAJORS))]
    )
    say(f"   {len(tickers)} tickers and {len(books)} orderbooks")
    return len(tickers) + len(books)


async def _subscribe(eng: Engine, say: Callable[[str], None]) -> dict[str, str]:
    """Step 3: the realtime streams; demo name -> subscription id."""
    say("3. realtime streams, merged onto the realtime tickets")
    subs = {
        "tickers": await eng.subscribe_realtime("ticker", list(MAJOR_MARKETS)),
        "trades": await eng.subscribe_realtime("trade", ["KRW-BTC", "KRW-ETH"]),
        "book": await eng.subscribe_realtime("orderbook", ["KRW-BTC"], units=15),
        "candles": await eng.subscribe_realtime("candle.1s", ["KRW-BTC"]),
    }
    for name, sub_id in subs.items():
        say(f"   {name:<8} -> {sub_id}")
    return subs


def _script(eng: Engine, emu: Emulator, subs: dict[str, str]) -> list[_Step]:
    """Steps 4 to 7, each at its fraction of the run: a fault, a modify, two unsubscribes."""
    return [
        (0.35, "4. fault: the emulator drops every connection", emu.drop),
        (
            0.55,
            "5. modify: the trade stream adds KRW-XRP (same ticket)",
            lambda: eng.modify_subscription(subs["trades"], ["KRW-BTC", "KRW-ETH", "KRW-XRP"]),
        ),
        (
            0.70,
            "6. soft unsubscribe of the candles (set re-sent without them)",
            lambda: eng.unsubscribe_realtime(subs["candles"]),
        ),
        (
            0.85,
            "7. hard unsubscribe of the orderbook (close and reopen with the rest)",
            lambda: eng.hard_unsubscribe(subs["book"]),
        ),
    ]


async def _play(
    eng: Engine,
    counts: _Counts,
    script: list[_Step],
    say: Callable[[str], None],
    start: float,
    duration: float,
    interval: float,
) -> None:
    """Run ``script`` (steps are popped as they run) and print the status every ``interval``
    seconds, until ``duration`` seconds after ``start``."""
    previous = 0
    next_status = start + interval
    deadline = start + duration
    while trio.current_time() < deadline:
        wake = min([next_status, deadline] + [start + f * duration for f, *_ in script])
        await trio.sleep_until(wake)
        now = trio.current_time()
        while script and now >= start + script[0][0] * duration:
            _, label, action = script.pop(0)
            say(label)
            await action()
        if now >= next_status:
            say(_status(eng, counts, previous, interval, now - start))
            previous = sum(counts.by_sub.values())
            next_status += interval


def _summary_text(summary: DemoSummary) -> str:
    by_type = ", ".join(f"{k} {v}" for k, v in sorted(summary.messages_by_type.items()))
    return (
        f"\nsummary: {summary.messages} messages in {summary.duration:g} s ({by_type}); "
        f"gaps {summary.gaps}, reconnects {summary.reconnects}, backfills {summary.backfills}; "
        f"ticket efficiency {summary.ticket_efficiency:.0%}; "
        f"emulator saw {summary.emulator_requests} requests, "
        f"{summary.emulator_limit_violations} limit violations"
    )
