"""What ``bench/recovery.py`` observes inside one engine: per-subscriber outage timelines.

A :class:`Probe` reads one subscription's stream and stamps, on the ``perf_counter`` clock the
emulator process shares, the first :class:`~engine.events.Interrupted` and
:class:`~engine.events.Gap` after the benchmark armed it, then the first SNAPSHOT and the first
REALTIME message after that Gap.

"Every stream back" cannot be read off the stream alone: after a reconnect the router swallows a
trade SNAPSHOT that repeats a trade the subscriber already has (no trade twice across a
reconnect, by ``sequential_id``), so a quiet pair's trade stream is restored without the
subscriber seeing anything. :class:`SnapshotTap` therefore listens where the engine itself learns
it: the router's SNAPSHOT callback (the same event the registry receives as ``SnapshotSeen``),
called once per route when its awaited SNAPSHOT arrives, duplicate or not.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import attrs
import trio

from engine import Engine, Gap, Interrupted

__all__ = ("Outage", "Probe", "Pulse", "SnapshotTap", "clock_offset", "wait_recovered")


class Pulse:
    """Wakes every waiter on each :meth:`fire` (a condition is re-checked after each wake)."""

    def __init__(self) -> None:
        self._event = trio.Event()

    def fire(self) -> None:
        self._event.set()
        self._event = trio.Event()

    async def until(self, done: Callable[[], bool]) -> None:
        # No checkpoint between the check and taking the event: no wake-up is lost.
        while not done():
            await self._event.wait()


def clock_offset() -> float:
    """``perf_counter() - trio.current_time()`` in this process: converts the engine's event
    times (Trio clock) to the clock shared with the emulator process."""
    return time.perf_counter() - trio.current_time()


class SnapshotTap:
    """Stamps each route's SNAPSHOT as the router confirms it, per subscription.

    Wraps the router's ``on_snapshot`` callback (a private seam of
    ``engine.routing.router.Router``; the benchmark fails loudly if it moves). :meth:`arm` starts a
    new round: from then on each subscription waits for every one of its routes to be confirmed
    again.
    """

    def __init__(self, engine: Engine, pulse: Pulse) -> None:
        router = getattr(getattr(engine, "_core", None), "router", None)
        original = getattr(router, "_on_snapshot", None)
        if router is None or original is None:
            raise RuntimeError(
                "bench/recovery.py taps engine._core.router._on_snapshot to see every route's "
                "SNAPSHOT; the engine no longer has it: update bench/_recovery_probe.py"
            )
        self._original: Callable[[str, Any, str], None] = original
        #: Subscription -> routes (ticket, key) confirmed since the last arm.
        self.seen: dict[str, set[tuple[str, Any]]] = {}
        #: Subscription -> perf_counter of its last route confirmed since the last arm.
        self.last: dict[str, float] = {}
        self._pulse = pulse
        router._on_snapshot = self._on_snapshot

    def _on_snapshot(self, ticket: str, key: Any, subscription_id: str) -> None:
        self.seen.setdefault(subscription_id, set()).add((key.data_type, key.code))
        self.last[subscription_id] = time.perf_counter()
        self._pulse.fire()
        self._original(ticket, key, subscription_id)

    def arm(self) -> None:
        self.seen.clear()
        self.last.clear()

    def count(self, subscription_id: str) -> int:
        return len(self.seen.get(subscription_id, ()))

    async def wait_all(self, wanted: dict[str, int], *, within: float, what: str) -> None:
        """Wait until each subscription has ``wanted[sub]`` distinct streams confirmed."""
        with trio.move_on_after(within) as scope:
            await self._pulse.until(lambda: all(self.count(s) >= n for s, n in wanted.items()))
        if scope.cancelled_caught:
            missing = {sub: n - self.count(sub) for sub, n in wanted.items() if self.count(sub) < n}
            raise RuntimeError(
                f"{what}: streams still without their SNAPSHOT after {within:g} s, per "
                f"subscription: {missing}"
            )


@attrs.frozen
class Outage:
    """One subscriber's view of one outage; every time is seconds after the loss instant."""

    subscription_id: str
    #: The engine noticed the loss (``Interrupted.start``).
    detected: float
    #: The ticket was connected again (``Gap.end`` of the first Gap), and every Gap's end (one
    #: per ticket the subscription spans), sorted.
    reconnected: float
    gap_ends: tuple[float, ...]
    #: First SNAPSHOT and first REALTIME message delivered after the first Gap.
    first_snapshot: float | None
    first_realtime: float
    #: Every stream of the subscription confirmed by a fresh SNAPSHOT.
    all_back: float


class Probe:
    """Reads one subscription's stream; records the timeline of the outage it is armed for."""

    def __init__(self, engine: Engine, subscription_id: str, offset: float, pulse: Pulse) -> None:
        self.engine = engine
        self.subscription_id = subscription_id
        self._offset = offset
        self.armed = False
        self.interrupted: Interrupted | None = None
        self.gaps: list[Gap] = []
        self.first_snapshot: float | None = None
        self.first_realtime: float | None = None
        self._pulse = pulse

    def arm(self) -> None:
        self.armed = True
        self.interrupted = None
        self.gaps = []
        self.first_snapshot = None
        self.first_realtime = None

    async def run(self) -> None:
        async with self.engine.stream(self.subscription_id) as stream:
            async for item in stream:
                if not self.armed:
                    continue
                now = time.perf_counter()
                if isinstance(item, Interrupted):
                    if self.interrupted is None:
                        self.interrupted = item
                elif isinstance(item, Gap):
                    self.gaps.append(item)
                elif self.gaps:
                    if item.stream_type == "SNAPSHOT":
                        if self.first_snapshot is None:
                            self.first_snapshot = now
                    elif self.first_realtime is None:
                        self.first_realtime = now
                        self._pulse.fire()

    def outage(self, loss: float, all_back: float) -> Outage:
        if self.interrupted is None or not self.gaps or self.first_realtime is None:
            raise RuntimeError(f"{self.subscription_id}: the outage is not over yet")
        ends = sorted(g.end + self._offset - loss for g in self.gaps if g.end is not None)
        if not ends:
            raise RuntimeError(f"{self.subscription_id}: only open-ended Gaps arrived")
        return Outage(
            self.subscription_id,
            detected=self.interrupted.start + self._offset - loss,
            reconnected=ends[0],
            gap_ends=tuple(ends),
            first_snapshot=None if self.first_snapshot is None else self.first_snapshot - loss,
            first_realtime=self.first_realtime - loss,
            all_back=all_back - loss,
        )

    def describe(self) -> str:
        return (
            f"{self.subscription_id}: interrupted={self.interrupted is not None} "
            f"gaps={len(self.gaps)} first_snapshot={self.first_snapshot is not None} "
            f"first_realtime={self.first_realtime is not None}"
        )


async def wait_recovered(
    probes: Sequence[Probe],
    tap: SnapshotTap,
    wanted: dict[str, int],
    pulse: Pulse,
    *,
    within: float,
    what: str,
) -> None:
    """Wait until every probe saw its first REALTIME after a Gap and every stream is confirmed
    again; on timeout raise naming what is missing (a subscription that never came back)."""

    def done() -> bool:
        return all(p.first_realtime is not None for p in probes) and all(
            tap.count(sub) >= n for sub, n in wanted.items()
        )

    with trio.move_on_after(within) as scope:
        await pulse.until(done)
    if scope.cancelled_caught:
        missing = {sub: n - tap.count(sub) for sub, n in wanted.items() if tap.count(sub) < n}
        states = "; ".join(p.describe() for p in probes)
        raise RuntimeError(
            f"{what}: not recovered within {within:g} s. Streams without a fresh SNAPSHOT per "
            f"subscription: {missing}. Subscribers: {states}"
        )
