"""Latency and ticket-efficiency phases of ``bench/engine.py`` (real clock, loopback).

* snapshot latency: sequential ``request_snapshot`` calls, wall clock per call;
* subscribe-to-first-message: ``subscribe_realtime`` call to the first message on its stream,
  for fresh subscriptions joining a ticket that already streams (an anchor subscription keeps it
  busy, as in a running application), each released again before the next;
* ticket efficiency: seeded random subscribe / modify / unsubscribe operations with a consumer
  per subscription, then ``get_ticket_usage()`` before and after ``optimize_subscriptions`` and
  ``cleanup_inactive``.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import attrs
import trio

from engine import EVENT_TYPES, Engine, InvalidSubscriptionError, SubscriptionStream
from engine.core.registry import PoolUsage
from engine.transport import CloseInfo, Connection, TrioWebsocketTransport
from engine.wire.protocol import PING_TEXT

__all__ = (
    "ChangeCost",
    "EfficiencyResult",
    "Latencies",
    "SendLog",
    "UsageRow",
    "change_costs",
    "run_efficiency",
    "snapshot_latencies",
    "subscribe_latencies",
)

#: Engine options that lift the per-connection message limits (the emulator is relaxed too), so
#: latency measures the engine and not Upbit's 5/s and 100/min pacing.
RELAXED: dict[str, Any] = {"messages_per_second": 10_000, "messages_per_minute": 600_000}


@attrs.frozen
class Latencies:
    label: str
    #: Seconds, in call order (warm-up calls excluded).
    samples: tuple[float, ...]

    def percentile(self, fraction: float) -> float:
        ordered = sorted(self.samples)
        return ordered[min(len(ordered) - 1, max(0, math.ceil(fraction * len(ordered)) - 1))]

    def by_size(self, sizes: Sequence[int], edges: Sequence[int]) -> list[tuple[str, float, int]]:
        """p50 per bucket of ``sizes`` (one per sample): ``(label, seconds, samples)``."""
        out: list[tuple[str, float, int]] = []
        low = 0
        for high in [*edges, max(sizes) + 1]:
            picked = [t for t, n in zip(self.samples, sizes, strict=True) if low <= n < high]
            if picked:
                label = f"{low}-{high - 1}"
                out.append((label, Latencies(label, tuple(picked)).percentile(0.5), len(picked)))
            low = high
        return out

    def row(self) -> str:
        ms = [self.percentile(0.5), self.percentile(0.99), max(self.samples)]
        return (
            f"| {self.label} | {len(self.samples)} | {ms[0] * 1e3:.1f} | {ms[1] * 1e3:.1f} "
            f"| {ms[2] * 1e3:.1f} |"
        )


async def snapshot_latencies(
    engine: Engine, label: str, codes: Sequence[str], count: int, *, warm: int = 3
) -> Latencies:
    """``count`` sequential ``request_snapshot("ticker", codes)`` calls after ``warm`` unmeasured
    ones (the first connects the snapshot ticket)."""
    samples: list[float] = []
    for index in range(warm + count):
        start = time.perf_counter()
        result = await engine.request_snapshot("ticker", list(codes))
        elapsed = time.perf_counter() - start
        if len(result) != len(codes):
            raise RuntimeError(f"snapshot answered {len(result)} codes of {len(codes)}")
        if index >= warm:
            samples.append(elapsed)
    return Latencies(label, tuple(samples))


async def _first_message(stream: SubscriptionStream) -> None:
    while True:
        item = await stream.receive()
        if not isinstance(item, EVENT_TYPES):
            return


async def subscribe_latencies(
    engine: Engine, label: str, codes: Sequence[str], count: int, *, seed: int, warm: int = 2
) -> tuple[Latencies, Latencies]:
    """``count`` fresh ticker subscriptions, each on a random code other than the anchor's: from
    the ``subscribe_realtime`` call to its return, and to the first message on its stream."""
    rng = random.Random(seed)
    anchor_code, others = codes[0], list(codes[1:])
    calls: list[float] = []
    firsts: list[float] = []
    anchor = await engine.subscribe_realtime("ticker", anchor_code)
    streaming = trio.Event()
    async with trio.open_nursery() as nursery:

        async def drain() -> None:
            async with engine.stream(anchor) as stream:
                async for _ in stream:
                    streaming.set()

        nursery.start_soon(drain)
        with trio.fail_after(10):
            await streaming.wait()  # the ticket is connected and streaming before timing starts
        for index in range(warm + count):
            code = rng.choice(others)
            start = time.perf_counter()
            sub_id = await engine.subscribe_realtime("ticker", code)
            returned = time.perf_counter()
            async with engine.stream(sub_id) as stream:
                with trio.fail_after(10):
                    await _first_message(stream)
                first = time.perf_counter()
            await engine.unsubscribe_realtime(sub_id)
            if index >= warm:
                calls.append(returned - start)
                firsts.append(first - start)
        await engine.unsubscribe_realtime(anchor)
    return (
        Latencies(f"{label}: `subscribe_realtime` returns", tuple(calls)),
        Latencies(f"{label}: first message on the stream", tuple(firsts)),
    )


@attrs.frozen
class ChangeCost:
    #: Routes (stream x subscriber pairs) in the routing table while measuring.
    routes: int
    #: Seconds per ``modify_subscription`` of a one-code subscription.
    samples: Latencies


async def change_costs(
    engine: Engine, codes: Sequence[str], big: Sequence[int], *, changes: int
) -> list[ChangeCost]:
    """How long one small change takes as the routing table grows: ``big[i]`` subscriptions to
    ticker+trade+orderbook over every code in ``codes`` (drained), then ``changes`` modifies of a
    one-code subscription, timed. The engine's single thread does nothing else meanwhile, so this
    is also how long realtime delivery pauses for each change."""
    types = ["ticker", "trade", "orderbook"]
    results: list[ChangeCost] = []
    async with trio.open_nursery() as nursery:

        async def drain(sub_id: str) -> None:
            async with engine.stream(sub_id) as stream:
                async for _ in stream:
                    pass

        small = await engine.subscribe_realtime("ticker", codes[0])
        nursery.start_soon(drain, small)
        held = 0
        for count in big:
            while held < count:
                sub_id = await engine.subscribe_realtime(types, list(codes))
                nursery.start_soon(drain, sub_id)
                held += 1
            samples: list[float] = []
            for index in range(changes + 1):
                start = time.perf_counter()
                await engine.modify_subscription(small, codes[1 + index % 5])
                if index:
                    samples.append(time.perf_counter() - start)
            routes = 1 + held * len(types) * len(codes)
            results.append(ChangeCost(routes, Latencies(f"{routes:,} routes", tuple(samples))))
        nursery.cancel_scope.cancel()
    return results


# -- what left the client, when -------------------------------------------------------------------


class _LoggedConnection:
    """A connection that notes the time of every text frame it sends."""

    def __init__(self, inner: Connection, sends: list[float]) -> None:
        self._inner = inner
        self._sends = sends

    async def send_text(self, text: str) -> None:
        if text != PING_TEXT:  # Upbit does not count the keepalive PING (nor does the emulator)
            self._sends.append(trio.current_time())
        await self._inner.send_text(text)

    async def receive(self) -> bytes | str:
        return await self._inner.receive()

    async def ping(self) -> None:
        await self._inner.ping()

    async def aclose(self, code: int = 1000, reason: str = "") -> None:
        await self._inner.aclose(code, reason)

    @property
    def close_info(self) -> CloseInfo | None:
        return self._inner.close_info


class SendLog:
    """A transport (``open_engine(transport=...)``) that records when each connection sent its
    requests, to compare the engine's pacing with Upbit's 5-per-second window."""

    def __init__(self) -> None:
        self._inner = TrioWebsocketTransport()
        self.connections: list[list[float]] = []

    @asynccontextmanager
    async def connect(
        self, url: str, *, headers: Sequence[tuple[str, str]] = (), connect_timeout: float = 10.0
    ) -> AsyncIterator[Connection]:
        sends: list[float] = []
        self.connections.append(sends)
        async with self._inner.connect(
            url, headers=headers, connect_timeout=connect_timeout
        ) as conn:
            yield _LoggedConnection(conn, sends)

    def tightest_span(self) -> float:
        """The shortest time any connection took to send 6 requests (Upbit allows 5 per 1 s)."""
        spans = [
            sends[i] - sends[i - 5] for sends in self.connections for i in range(5, len(sends))
        ]
        return min(spans, default=float("inf"))

    def requests(self) -> int:
        return sum(len(sends) for sends in self.connections)


# -- ticket efficiency ---------------------------------------------------------------------------


@attrs.frozen
class UsageRow:
    stage: str
    tickets_open: int
    parked: int
    idle: int
    subscriptions: int
    streams: int
    codes: int
    #: Planned efficiency: ticket, stream and connection parts; then the on-the-wire ticket one.
    ticket: float
    stream: float
    connection: float
    wire: float

    @classmethod
    def of(cls, stage: str, usage: PoolUsage) -> UsageRow:
        eff = usage.efficiency
        return cls(
            stage,
            usage.open,
            usage.parked,
            usage.idle,
            usage.subscriptions,
            usage.streams,
            usage.codes,
            eff.ticket,
            eff.stream,
            eff.connection,
            usage.wire_efficiency.ticket,
        )

    def row(self) -> str:
        return (
            f"| {self.stage} | {self.tickets_open} | {self.parked} | {self.idle} "
            f"| {self.subscriptions} | {self.streams} | {self.codes} | {self.ticket:.1%} "
            f"| {self.stream:.1%} | {self.connection:.1%} | {self.wire:.1%} |"
        )


@attrs.frozen
class EfficiencyResult:
    label: str
    operations: dict[str, int]
    refused: int
    seconds: float
    op_latency: Latencies
    #: Live subscriptions after each operation (same order as ``op_latency.samples``).
    live_after: tuple[int, ...]
    rows: tuple[UsageRow, ...]
    moved: int
    closed_by_optimize: int
    released_by_cleanup: int
    closed_by_cleanup: int
    requests_sent: int
    failed_subscriptions: int


def _usage(engine: Engine) -> PoolUsage:
    usage = engine.get_ticket_usage().realtime
    assert isinstance(usage, PoolUsage)
    return usage


async def _settled(engine: Engine, limit: float = 75.0) -> float:
    """Seconds until what the open tickets last sent matches the plan (``limit`` at most).

    Changes reach the wire after the coalesce window and the ticket's message limiter; under
    sustained churn a ticket exhausts Upbit's 100 messages per minute and then waits for the
    minute window, so the wire can lag the plan by up to a minute."""
    start = time.perf_counter()
    with trio.move_on_after(limit):
        while True:
            usage = _usage(engine)
            if usage.wire_efficiency == usage.efficiency and usage.waiting == 0:
                break
            await trio.sleep(0.05)
    return time.perf_counter() - start


async def run_efficiency(
    engine: Engine,
    label: str,
    codes: Sequence[str],
    operations: int,
    *,
    seed: int,
    abandon_share: float = 0.1,
) -> EfficiencyResult:
    """``operations`` seeded random operations: subscribe (40 %: 1 to 3 of ticker/trade/orderbook
    over 1 to 6 random codes; ``abandon_share`` of them get a reader that stops after its first
    message without unsubscribing), modify (30 %: new random codes), unsubscribe (30 %, soft).
    Every other subscription has a reader draining its stream until it ends."""
    rng = random.Random(seed)
    types = ("ticker", "trade", "orderbook")
    live: list[str] = []
    counts = {"subscribe": 0, "modify": 0, "unsubscribe": 0}
    refused = 0
    failed = 0
    samples: list[float] = []
    sizes: list[int] = []

    async def read(sub_id: str, abandon: bool) -> None:
        nonlocal failed
        try:
            async with engine.stream(sub_id) as stream:
                async for _ in stream:
                    if abandon:
                        return
        except Exception:
            failed += 1

    started = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for _ in range(operations):
            roll = rng.random()
            kind = "subscribe" if not live or roll < 0.4 else "modify" if roll < 0.7 else "unsub"
            picked = rng.sample(codes, rng.randint(1, 6))
            op_start = time.perf_counter()
            try:
                if kind == "subscribe":
                    chosen = rng.sample(types, rng.randint(1, 3))
                    sub_id = await engine.subscribe_realtime(chosen, picked)
                    live.append(sub_id)
                    nursery.start_soon(read, sub_id, rng.random() < abandon_share)
                elif kind == "modify":
                    await engine.modify_subscription(rng.choice(live), picked)
                else:
                    kind = "unsubscribe"
                    sub_id = live.pop(rng.randrange(len(live)))
                    await engine.unsubscribe_realtime(sub_id)
            except InvalidSubscriptionError:
                refused += 1
            samples.append(time.perf_counter() - op_start)
            sizes.append(len(live))
            counts[kind] += 1
        seconds = time.perf_counter() - started
        rows = [UsageRow.of(f"right after {operations:,} operations", _usage(engine))]
        lag = await _settled(engine)
        rows.append(
            UsageRow.of(f"{lag:.1f} s later, once the wire matches the plan", _usage(engine))
        )
        optimized = await engine.optimize_subscriptions()
        await _settled(engine)
        rows.append(UsageRow.of("after `optimize_subscriptions()`", _usage(engine)))
        # The abandoned readers closed their streams: that is what makes them inactive.
        cleaned = await engine.cleanup_inactive()
        await _settled(engine)
        rows.append(UsageRow.of("after `cleanup_inactive()`", _usage(engine)))
        requests_sent = engine.metrics().requests_sent
        nursery.cancel_scope.cancel()
    return EfficiencyResult(
        label=label,
        operations=counts,
        refused=refused,
        seconds=seconds,
        op_latency=Latencies(f"{label}: one operation (call to return)", tuple(samples)),
        live_after=tuple(sizes),
        rows=tuple(rows),
        moved=optimized.moved,
        closed_by_optimize=len(optimized.closed),
        released_by_cleanup=len(cleaned.subscriptions),
        closed_by_cleanup=len(cleaned.tickets),
        requests_sent=requests_sent,
        failed_subscriptions=failed,
    )
