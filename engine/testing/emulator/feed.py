"""The market clock: one task advances the simulator and fans events out to subscribers.

Throughput comes from rendering once: for each event, each distinct (type, units, level) is
rendered once, and each distinct (type, units, level, format) is serialised and framed once; every
subscribed connection then gets the same ``bytes`` appended to its send queue. Per-connection cost
is a dictionary lookup and a deque append.

A :class:`~engine.testing.drift.Drift` in force switches :meth:`Feed.dispatch` to a second loop
(``_dispatch_drifted``) that reshapes each render and counts frames per connection; without one,
the plain loop runs as it always did.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Generic, Protocol, TypeVar

import trio

from engine.testing.drift import Drift
from engine.testing.emulator.drift_frames import ActiveDrift
from engine.testing.emulator.render import Simplifier, encode_data
from engine.testing.emulator.subscriptions import StreamKey

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

    def note_first(self, data_type: str, code: str, at: float) -> None:
        """A data frame of (``data_type``, ``code``) was queued at ``at`` (keeps the first)."""

    def count_data(self) -> None:
        """One data frame was queued (drift cadence: garbage and unknown-type frames)."""


class FeedStatistics:
    """Counters of the feed (mutable, read through ``Emulator.statistics()``)."""

    def __init__(self) -> None:
        self.events = 0
        self.frames = 0
        self.renders = 0
        #: Data frames (any kind) sent changed by a drift; extra frames a drift sent; SNAPSHOTs a
        #: drift withheld.
        self.drifted = 0
        self.garbage = 0
        self.unknown_types = 0
        self.snapshots_withheld = 0


_IDLE_INTERVAL = 0.25  # market clock period while no connection subscribes to anything
_STEP_EVENTS = 200  # events per (simulate, dispatch) step before the step shrinks
_MIN_STEP = 1e-4
_MAX_STEP = 1.0
_HIGH_WATER = 1 << 20  # queued bytes (all connections) above which the feed yields more


class _Group:
    """Every connection that wants the same rendering of one code: one frame serves them all."""

    __slots__ = ("code", "data_type", "family", "format", "level", "pending", "sinks", "units")

    def __init__(self, key: StreamKey, fmt: str) -> None:
        self.code = key.code
        self.data_type = key.data_type
        self.family = key.family
        self.units = key.units
        self.level = key.level
        self.format = fmt
        self.sinks: dict[Sink, Callable[[bytes], None]] = {}
        #: Sinks (re)registered since this group last sent: their first frame is noted.
        self.pending: set[Sink] = set()

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
        on_events: Callable[[Sequence[E], float], None] | None = None,
    ) -> None:
        self.source = source
        self._on_frames = on_frames
        #: Sees every batch of events, and the market time reached, before it is fanned out,
        #: whether or not anyone subscribes (the REST history remembers trades through it).
        self._on_events = on_events
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
        #: The drift in force, or None (the documented wire, and the plain dispatch loop).
        self.drift: ActiveDrift | None = None

    def set_drift(self, drift: Drift) -> None:
        """Render every frame from now on with ``drift`` (``Drift()``: the documented wire)."""
        self.drift = ActiveDrift(drift) if drift.active else None

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
            group.pending.add(sink)
            memberships.append((key.code, group))
        self._members[sink] = memberships
        self._wake()

    def _wake(self) -> None:
        if self._wakeup is not None:
            self._wakeup.set()

    def remove(self, sink: Sink) -> None:
        for code, group in self._members.pop(sink, ()):
            group.sinks.pop(sink, None)
            group.pending.discard(sink)
            if not group.sinks:
                bucket = self._index[code]
                bucket.remove(group)
                if not bucket:
                    del self._index[code]

    # -- one-off renders ------------------------------------------------------------------------

    def state_frame(self, key: StreamKey, stream_type: str, fmt: str) -> bytes | None:
        """The current state of a stream as one frame (a SNAPSHOT, or a stale REALTIME)."""
        drift = self.drift
        if drift is None:
            message = self.source.render(
                key.data_type, key.code, stream_type, units=key.units, level=key.level
            )
            if message is None:
                return None
            return encode_data(message, fmt, self._simplify)
        units = drift.units(key.data_type, key.units)
        message = self.source.render(
            key.data_type, key.code, stream_type, units=drift.render_units(units), level=key.level
        )
        if message is None:
            return None
        reshaped = drift.reshape(message)
        if reshaped is not message or drift.extra_fields or units != key.units:
            self.statistics.drifted += 1
        return drift.encode(reshaped, fmt, self._simplify)

    def encode(self, message: dict[str, object], fmt: str) -> bytes:
        """A message made elsewhere (private events) as one data frame, drifted if need be."""
        drift = self.drift
        if drift is None:
            return encode_data(message, fmt, self._simplify)
        reshaped = drift.reshape(message)
        if reshaped is not message or drift.extra_fields:
            self.statistics.drifted += 1
        return drift.encode(reshaped, fmt, self._simplify)

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
            if self._on_events is not None:
                self._on_events(events, step_end)
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

    def _note_first(self, group: _Group) -> None:
        at = trio.current_time()
        for sink in group.pending:
            sink.note_first(group.data_type, group.code, at)
        group.pending.clear()

    def dispatch(self, events: Sequence[E]) -> None:
        index = self._index
        stats = self.statistics
        stats.events += len(events)
        if not index:
            return
        if self.drift is not None:
            self._dispatch_drifted(events, self.drift)
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
                if group.pending:
                    self._note_first(group)
        stats.frames += frames
        if frames and self._on_frames is not None:
            self._on_frames()

    def _dispatch_drifted(self, events: Sequence[E], drift: ActiveDrift) -> None:
        # ``dispatch`` with the drift applied: each render is reshaped once and each (render,
        # format) encoded once, as on the plain path. Kept apart so the plain path pays nothing.
        index = self._index
        stats = self.statistics
        source = self.source
        simplify = self._simplify
        counts_data = drift.counts_data
        frames = 0
        renders: dict[tuple[str, int, float], tuple[dict[str, object], bool] | None] = {}
        encoded: dict[tuple[str, int, float, str], bytes] = {}
        for event in events:
            groups = index.get(event.code)
            if groups is None:
                continue
            kinds = event.kinds
            renders.clear()
            encoded.clear()
            for group in groups:
                if group.family not in kinds:
                    continue
                units = drift.units(group.data_type, group.units)
                render_key = (group.data_type, units, group.level)
                if render_key in renders:
                    rendered = renders[render_key]
                else:
                    message = source.render_event(
                        event, group.data_type, units=drift.render_units(units), level=group.level
                    )
                    rendered = None
                    if message is not None:
                        reshaped = drift.reshape(message)
                        rendered = (reshaped, reshaped is not message or drift.extra_fields)
                    renders[render_key] = rendered
                    stats.renders += 1
                if rendered is None:
                    continue
                message, changed = rendered
                frame_key = (group.data_type, units, group.level, group.format)
                frame = encoded.get(frame_key)
                if frame is None:
                    frame = encoded[frame_key] = drift.encode(message, group.format, simplify)
                sinks = tuple(group.sinks)
                for sink in sinks:
                    sink.enqueue(frame)
                    if counts_data:
                        sink.count_data()
                frames += len(sinks)
                if changed or units != group.units:
                    stats.drifted += len(sinks)
                if group.pending:
                    self._note_first(group)
        stats.frames += frames
        if frames and self._on_frames is not None:
            self._on_frames()
