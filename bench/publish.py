"""What one subscription change costs the routing table: the registry actor's publish step,
incremental (``engine.routing.publish``) against the from-scratch publish it replaced, same run.

Every change goes through the registry (sans-IO), then the routes are published to the router
*before* anything is sent, on the Trio thread: while it runs, no frame is routed. Two worlds read
the same registry after each change: one publishes from scratch, the work every change used to
cost (``full_routes``: every route rebuilt and validated into a new ``RoutingTable``, then
``Router.publish`` recompiling every stream), the other with
:func:`engine.routing.publish.publish_routes`. Each world has its own router and buffers; after
every change both routers are checked to hold the same routes and waits.

Shapes:

- **few large subscriptions** (like the engine benchmark): subscriptions to ticker + trade +
  orderbook over all KRW pairs (870 streams each) plus one one-code ticker subscription, which
  is modified to another code, back and forth;
- **many small subscriptions**: one-stream subscriptions spread over the same streams, one of
  which is modified; plus subscribing and unsubscribing one more.

Run: ``uv run python bench/publish.py [--changes N] [--no-write]``.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import attrs

from bench._report import write_section
from engine.core.registry import Registry
from engine.routing.publish import full_routes, publish_routes
from engine.routing.router import RouteId, Router, SubscriberBuffer
from engine.testing.marketdata import default_catalog

TYPES = ("ticker", "trade", "orderbook")


def krw_codes() -> tuple[str, ...]:
    return tuple(
        listing.market for listing in default_catalog(0) if listing.market.startswith("KRW-")
    )


@attrs.define(eq=False)
class World:
    """The parts of the engine core a publish touches."""

    registry: Registry
    router: Router = attrs.Factory(Router)
    buffers: dict[str, SubscriberBuffer] = attrs.Factory(dict)
    awaiting: set[RouteId] = attrs.Factory(set)


def previous_publish(core: World) -> None:
    """What every change cost before publishing became incremental: the engine's from-scratch
    path (:func:`~engine.routing.publish.full_routes`, then ``Router.publish``)."""
    table, flagged = full_routes(core)
    core.router.publish(table)
    core.awaiting.clear()
    core.awaiting.update(flagged)


class Bench:
    """One registry, two worlds publishing from it."""

    def __init__(self) -> None:
        self.registry = Registry(realtime=2, snapshot=0, private=0)
        self.old = World(self.registry)
        self.new = World(self.registry)
        self.now = 0.0
        for world in (self.old, self.new):
            world.router.ticket_connected("realtime-0", 1, at=0.0)
            world.router.ticket_connected("realtime-1", 1, at=0.0)
        # Cold start of the incremental publisher happens here, untimed.
        previous_publish(self.old)
        publish_routes(self.new)

    def _tick(self) -> float:
        self.now += 1.0
        return self.now

    def subscribe(self, types: tuple[str, ...], codes: tuple[str, ...]) -> str:
        sub, _ = self.registry.subscribe(types, codes, now=self._tick())
        for world in (self.old, self.new):
            world.buffers[sub.id] = SubscriberBuffer(sub.id)
        return sub.id

    def publish_both(self) -> tuple[float, float]:
        """Seconds taken by the old and the new publish of the registry's current state."""
        gc.collect()
        start = time.perf_counter()
        previous_publish(self.old)
        middle = time.perf_counter()
        publish_routes(self.new)
        end = time.perf_counter()
        self.check()
        return middle - start, end - middle

    def check(self) -> None:
        old, new = self.old.router, self.new.router
        assert set(old.route_ids) == set(new.route_ids), "the two publishes disagree"
        assert old.waiting == new.waiting
        assert self.old.awaiting == self.new.awaiting

    def routes(self) -> int:
        return len(self.new.router.route_ids)

    def timed(self, change: Callable[[], None], count: int) -> tuple[list[float], list[float]]:
        olds: list[float] = []
        news: list[float] = []
        for _ in range(count):
            change()
            old, new = self.publish_both()
            olds.append(old)
            news.append(new)
        return olds, news

    def close(self, sub_id: str) -> None:
        for world in (self.old, self.new):
            world.buffers.pop(sub_id).close("unsubscribed")


@attrs.frozen
class Row:
    shape: str
    routes: int
    change: str
    changes: int
    old_p50: float
    old_max: float
    new_p50: float
    new_max: float
    registry_p50: float

    def line(self) -> str:
        return (
            f"| {self.shape} | {self.routes:,} | {self.change} | {self.changes} "
            f"| {self.old_p50 * 1e3:,.2f} | {self.old_max * 1e3:,.2f} "
            f"| {self.new_p50 * 1e3:,.3f} | {self.new_max * 1e3:,.3f} "
            f"| {self.old_p50 / self.new_p50:,.0f}x | {self.registry_p50 * 1e3:,.2f} |"
        )


def _row(
    bench: Bench,
    shape: str,
    change: str,
    step: Callable[[], None],
    count: int,
) -> Row:
    registry_times: list[float] = []

    def timed_step() -> None:
        start = time.perf_counter()
        step()
        registry_times.append(time.perf_counter() - start)

    olds, news = bench.timed(timed_step, count)
    row = Row(
        shape=shape,
        routes=bench.routes(),
        change=change,
        changes=count,
        old_p50=statistics.median(olds),
        old_max=max(olds),
        new_p50=statistics.median(news),
        new_max=max(news),
        registry_p50=statistics.median(registry_times),
    )
    print(row.line(), flush=True)
    return row


def few_large(big: int, count: int) -> list[Row]:
    codes = krw_codes()
    bench = Bench()
    for _ in range(big):
        bench.subscribe(TYPES, codes)
    small = bench.subscribe(("ticker",), (codes[0],))
    bench.publish_both()
    flip = [codes[1], codes[0]]

    def modify() -> None:
        flip.reverse()
        bench.registry.modify(small, [flip[0]], now=bench._tick())

    shape = f"{big} x {len(codes) * len(TYPES)} streams + 1 x 1"
    return [_row(bench, shape, "modify the 1-code subscription", modify, count)]


def many_small(total: int, count: int) -> list[Row]:
    codes = krw_codes()
    bench = Bench()
    subs = [
        bench.subscribe((TYPES[n % len(TYPES)],), (codes[(n // len(TYPES)) % len(codes)],))
        for n in range(total)
    ]
    bench.publish_both()
    shape = f"{total:,} x 1 stream"
    rows: list[Row] = []
    target = subs[len(subs) // 2]
    flip = [codes[1], codes[2]]

    def modify() -> None:
        flip.reverse()
        bench.registry.modify(target, [flip[0]], now=bench._tick())

    rows.append(_row(bench, shape, "modify one subscription", modify, count))
    extra: list[str] = []

    def subscribe() -> None:
        extra.append(bench.subscribe(("ticker",), (codes[3],)))

    rows.append(_row(bench, shape, "subscribe one more", subscribe, count))

    def unsubscribe() -> None:
        sub_id = extra.pop()
        bench.registry.unsubscribe(sub_id, now=bench._tick())
        bench.close(sub_id)

    rows.append(_row(bench, shape, "unsubscribe one", unsubscribe, count))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--changes", type=int, default=20, help="timed changes per row")
    parser.add_argument("--no-write", action="store_true", help="print only, leave BENCHMARKS.md")
    args = parser.parse_args(argv)
    rows = [
        *few_large(1, args.changes),
        *few_large(5, args.changes),
        *many_small(900, args.changes),
        *many_small(4_400, args.changes),
    ]
    header = [
        "| shape | routes | change | changes | from scratch p50 (ms) | from scratch max (ms) "
        "| incremental p50 (ms) | incremental max (ms) | speed-up (p50) "
        "| registry op p50 (ms) |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    body = (
        "Cost of publishing the routing table after one registry change, on the Trio thread "
        "(no frame is routed meanwhile). *From scratch* is what every change cost before "
        "(`engine.routing.publish.full_routes`: every `Route` rebuilt and validated into a new "
        "`RoutingTable`, then `Router.publish` recompiling every stream); *incremental* is "
        "`engine.routing.publish.publish_routes` "
        "(only the routes of what changed, through `Router.update`). Both read the same "
        "registry after each change, in one process, and their routers are checked to agree "
        "after every change. The last column is the registry's own work for the change "
        "(`Registry.modify`/`subscribe`/`unsubscribe`), for scale. Routes = stream x "
        "subscriber pairs; 2 realtime tickets of up to 1,000 codes.\n\n"
        + "\n".join(header + [row.line() for row in rows])
    )
    if not args.no_write:
        write_section("publish", "Publishing the routing table", body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
