"""The market clock: one task advances the simulator and fans events out to subscribers.

Throughput comes from rendering once: for each event, each distinct (type, units, level) is
rendered once, and each distinct (type, units, level, format) is serialised and framed once; every
subscribed connection then gets the same ``bytes`` appended to its send queue. Per-connection cost
is a dictionary lookup and a deque append.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Generic, Protocol, TypeVar

import trio

from engine.testing._render import Simplifier, encode_data
from engine.testing._subscriptions import StreamKey

__all__ = ("EventLike", "Feed", "FeedStatistics", "MarketSource", "Sink")


class EventLike(Protocol):
    @property
    def code(self) -> str: ...
    @property
    def kinds(self) -> frozenset[str]: ...


E = TypeVar("E", bound=EventLike)


class MarketSource(Protocol[E]):
    """What the emulator needs of a market simulator (``marketdata.MarketSimulator`` has it)."""

    def events_until(self, t: float) -> Sequence[E]: ...
    def render(
        self, data_type: str, code: str, stream_type: str, *, units: int = 30, level: float = 0
    ) -> dict[str, object] | None: ...
    def render_event(
        self, event: E, data_type: str, *, units: int = 30, level: float = 0
    ) -> dict[str, object] | None: ...
    def set_rate(self, code: str, per_second: float) -> None: ...


class Sink(Protocol):
    """A connection as the feed sees it: something frames can be queued on."""

    @property
    def enqueue(self) -> Callable[[bytes], None]:
        """Queues one frame for sending, without waiting."""

    @property
    def backlog(self) -> int:
        """Bytes queued and not yet written."""


class FeedStatistics:
    """Counters of the feed (mutable, read through ``Emulator.statistics()``)."""

    def __init__(self) -> None:
        self.events = 0
        self.frames = 0
        self.renders = 0


_IDLE_INTERVAL = 0.25  # market clock period while no connection subscribes to anything
_STEP_EVENTS = 200  # events per (simulate, dispatch) step before the step shrinks
_MIN_STEP = 1e-4
_MAX_STEP = 1.0
_HIGH_WATER = 1 << 20  # queued bytes (all connections) above which the feed yields more


class _Group:
    """Every connection that wants the same rendering of one code: one frame serves them all."""

    __slots__ = ("data_type", "family", "format", "level", "sinks", "units")

    def __init__(self, key: StreamKey, fmt: str) -> None:
        self.data_type = key.data_type
        self.family = key.family
        self.units = key.units
        self.level = key.level
        self.format = fmt
        self.sinks: dict[Sink, Callable[[bytes], None]] = {}

    def matches(self, key: StreamKey, fmt: str) -> bool:
        return (self.data_type, self.units, self.level, self.format) == (
            key.data_type,
            key.units,
            key.level,
            fmt,
        )


class Feed(Generic[E]):
    def __init__(
        self,
        source: MarketSource[E],
        simplify: Simplifier,
        *,
        interval: float,
        on_frames: Callable[[], None] | None = None,
    ) -> None:
        self.source = source
        self._on_frames = on_frames
        self._simplify = simplify
        self._interval = interval
        self._index: dict[str, list[_Group]] = {}
        self._members: dict[Sink, list[tuple[str, _Group]]] = {}
        self.statistics = FeedStatistics()
        self.started_at = 0.0
        #: Simulator seconds reached, and how far they lag the clock (see ``run``).
        self.market_time = 0.0
        self.slip = 0.0
        self._wakeup: trio.Event | None = None
        self._step = _MAX_STEP

    # -- subscriptions --------------------------------------------------------------------------

    def replace(self, sink: Sink, keys: Sequence[StreamKey], fmt: str) -> None:
        """Make ``keys`` (rendered in ``fmt``) the realtime streams of ``sink``, dropping its
        previous ones. Called again whenever the connection's format changes."""
        self.remove(sink)
        if not keys:
            return
        memberships: list[tuple[str, _Group]] = []
        for key in keys:
            bucket = self._index.setdefault(key.code, [])
            group = next((g for g in bucket if g.matches(key, fmt)), None)
            if group is None:
                group = _Group(key, fmt)
                bucket.append(group)
            group.sinks[sink] = sink.enqueue
            memberships.append((key.code, group))
        self._members[sink] = memberships
        self._wake()

    def _wake(self) -> None:
        if self._wakeup is not None:
            self._wakeup.set()

    def remove(self, sink: Sink) -> None:
        for code, group in self._members.pop(sink, ()):
            group.sinks.pop(sink, None)
            if not group.sinks:
                bucket = self._index[code]
                bucket.remove(group)
                if not bucket:
                    del self._index[code]

    # -- one-off renders ------------------------------------------------------------------------

    def state_frame(self, key: StreamKey, stream_type: str, fmt: str) -> bytes | None:
        """The current state of a stream as one frame (a SNAPSHOT, or a stale REALTIME)."""
        message = self.source.render(
            key.data_type, key.code, stream_type, units=key.units, level=key.level
        )
        if message is None:
            return None
        return encode_data(message, fmt, self._simplify)

    def encode(self, message: dict[str, object], fmt: str) -> bytes:
        return encode_data(message, fmt, self._simplify)

    # -- the clock ------------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        interval = self._interval
        # When the process cannot keep up (the simulator or the fan-out needs more CPU than there
        # is), market time slows down instead of the feed monopolising the event loop with ever
        # larger catch-up batches, so handshakes and flushes keep running.
        self.started_at = trio.current_time()
        next_tick = self.started_at
        task_status.started()
        while True:
            if self._index:
                next_tick += interval
                await trio.sleep_until(next_tick)
            else:
                # Nobody listens: tick rarely (the simulation is the same however it is chunked),
                # and wake up at once when a subscription arrives.
                next_tick += _IDLE_INTERVAL
                self._wakeup = trio.Event()
                with trio.move_on_at(next_tick):
                    await self._wakeup.wait()
                self._wakeup = None
                next_tick = min(next_tick, trio.current_time())
            now = trio.current_time()
            late = now - next_tick
            if late > interval:
                # Overloaded: let market time fall behind rather than burst to catch up.
                self.slip += late - interval
                next_tick = now
            await self._advance_to(now - self.started_at - self.slip)

    async def _advance_to(self, target: float) -> None:
        # Advance in steps small enough that one (simulate, dispatch) pair stays short, yielding
        # between steps so flushers and sessions run. Each pair is atomic, so a snapshot taken
        # between steps is consistent with the realtime frames that follow it. The step adapts
        # to the event density; at ordinary rates a tick is one step, so the interleaving of
        # the feed with requests is the same on every run under a mock clock.
        while self.market_time < target:
            step_end = min(target, self.market_time + self._step)
            events = self.source.events_until(step_end)
            self.market_time = step_end
            self.dispatch(events)
            if len(events) > _STEP_EVENTS:
                self._step = max(self._step / 2, _MIN_STEP)
            elif len(events) < _STEP_EVENTS // 4:
                self._step = min(self._step * 2, _MAX_STEP)
            if self.market_time < target:
                await trio.lowlevel.checkpoint()
            await self._let_flushers_drain()

    def _backlog(self) -> int:
        return sum(sink.backlog for sink in self._members)

    async def _let_flushers_drain(self) -> None:
        # Overloaded, the feed could queue frames faster than the flusher tasks get turns to
        # write them. Extra turns while the backlog shrinks fix that; a backlog that does not
        # shrink belongs to slow clients (their flushers wait on the socket) and is theirs.
        backlog = self._backlog()
        for _ in range(8):
            if backlog < _HIGH_WATER:
                return
            await trio.lowlevel.checkpoint()
            now = self._backlog()
            if now >= backlog:
                return
            backlog = now

    def dispatch(self, events: Sequence[E]) -> None:
        index = self._index
        stats = self.statistics
        stats.events += len(events)
        if not index:
            return
        source = self.source
        simplify = self._simplify
        frames = 0
        renders: dict[tuple[str, int, float], dict[str, object] | None] = {}
        for event in events:
            groups = index.get(event.code)
            if groups is None:
                continue
            kinds = event.kinds
            renders.clear()
            for group in groups:
                if group.family not in kinds:
                    continue
                render_key = (group.data_type, group.units, group.level)
                if render_key in renders:
                    message = renders[render_key]
                else:
                    message = source.render_event(
                        event, group.data_type, units=group.units, level=group.level
                    )
                    renders[render_key] = message
                    stats.renders += 1
                if message is None:
                    continue
                frame = encode_data(message, group.format, simplify)
                # A tuple: a slow client's overflow handling must not resize the dict mid-loop.
                sinks = tuple(group.sinks.values())
                for enqueue in sinks:
                    enqueue(frame)
                frames += len(sinks)
        stats.frames += frames
        if frames and self._on_frames is not None:
            self._on_frames()
