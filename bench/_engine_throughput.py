"""Throughput rounds of ``bench/engine.py``: the bare receive loop and the engine, same stream.

Both sides are timed the same way: a receiving task counts messages while the main task sleeps
through the warm-up and then the measured window, reading the counter, the process CPU time and
the emulator's counters at both ends of the window. The emulator runs in another process, so the
CPU time measured here is the client's alone.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence

import attrs
import orjson
import trio
import trio_websocket

from bench._engine_emulator import EmulatorCounters, EmulatorProcess
from engine import EVENT_TYPES, open_engine
from engine.transport import DEFAULT_MAX_MESSAGE_SIZE, TrioWebsocketTransport
from engine.wire.protocol import decode_frame

__all__ = ("RoundResult", "bare_request", "bare_round", "engine_round")

#: The engine's transport queues this many received messages; the bare loop uses the same, so
#: both sides sit on identically configured trio-websocket connections.
QUEUE_SIZE = TrioWebsocketTransport().message_queue_size


@attrs.frozen
class RoundResult:
    side: str
    #: Messages counted by the client inside the window.
    received: int
    #: Wall-clock seconds and process CPU seconds of the window.
    wall: float
    cpu: float
    #: The emulator's counters at both ends of the window.
    before: EmulatorCounters
    after: EmulatorCounters
    #: The subscription set the emulator held for the client's connection(s) during the window.
    subscriptions: tuple[tuple[str, str], ...]
    #: Engine events (Interrupted/Gap) seen; 0 for the bare loop.
    events: int = 0

    @property
    def rate(self) -> float:
        """Messages per second received by the client."""
        return self.received / self.wall

    @property
    def cpu_per_message(self) -> float:
        """Client CPU seconds per message (all of this process's work, all tasks)."""
        return self.cpu / self.received if self.received else float("inf")

    @property
    def emulator_elapsed(self) -> float:
        return self.after.at - self.before.at

    @property
    def source_rate(self) -> float:
        """Frames per second the emulator queued for the client's connection(s)."""
        return (self.after.totals()[0] - self.before.totals()[0]) / self.emulator_elapsed

    @property
    def dropped_rate(self) -> float:
        """Frames per second the emulator discarded because the client was too far behind."""
        return (self.after.totals()[1] - self.before.totals()[1]) / self.emulator_elapsed

    @property
    def backlog_rate(self) -> float:
        """Frames per second by which the emulator's output outran the client: queued for it
        but not read (still in its send queue or the sockets), plus dropped."""
        return self.source_rate + self.dropped_rate - self.rate

    @property
    def client_limited(self) -> bool:
        """The emulator offered more than the client read: the backlog grew by more than 5 %
        of what the client read (or frames had to be dropped)."""
        return self.dropped_rate > 0 or self.backlog_rate > 0.05 * self.rate


class _Handoff:
    """The least a pump-to-consumer handoff can do under Trio, shaped like the engine's
    subscriber buffer: a non-blocking put that wakes a parked reader, and a read that passes
    one scheduling point per item (no bound, no policies, no counters)."""

    def __init__(self) -> None:
        self._items: deque[object] = deque()
        self._lot = trio.lowlevel.ParkingLot()

    def put(self, item: object) -> None:
        self._items.append(item)
        if self._lot:
            self._lot.unpark()

    async def get(self) -> object:
        await trio.lowlevel.checkpoint_if_cancelled()
        if self._items:
            item = self._items.popleft()
            await trio.lowlevel.cancel_shielded_checkpoint()
            return item
        while not self._items:
            await self._lot.park()
        return self._items.popleft()


def bare_request(types: Sequence[str], codes: Sequence[str], fmt: str = "DEFAULT") -> str:
    """The one request the engine sends for ``types`` x ``codes`` on a fresh connection."""
    items: list[dict[str, object]] = [{"ticket": "bench-bare"}]
    items += [{"type": data_type, "codes": list(codes)} for data_type in types]
    items.append({"format": fmt})
    return orjson.dumps(items).decode()


async def _window(
    emulator: EmulatorProcess,
    count: Callable[[], int],
    warmup: float,
    seconds: float,
) -> tuple[int, float, float, EmulatorCounters, EmulatorCounters]:
    await trio.sleep(warmup)
    before = await emulator.counters()
    start_count, start_wall, start_cpu = count(), time.perf_counter(), time.process_time()
    await trio.sleep(seconds)
    received = count() - start_count
    wall, cpu = time.perf_counter() - start_wall, time.process_time() - start_cpu
    after = await emulator.counters()
    return received, wall, cpu, before, after


def _held(counters: EmulatorCounters) -> tuple[tuple[str, str], ...]:
    return tuple(sorted({pair for c in counters.connections for pair in c.subscriptions}))


async def bare_round(
    emulator: EmulatorProcess,
    request: str,
    *,
    warmup: float,
    seconds: float,
    decode: bool = False,
    hop: bool = False,
) -> RoundResult:
    """trio-websocket + ``orjson.loads``, nothing else: the floor any client pays.

    The variants price two parts of the engine's path separately: ``decode`` parses with the
    engine's typed ``decode_frame`` instead of ``orjson.loads``; ``hop`` hands each parsed message
    to a second task through a minimal :class:`_Handoff` (the shape of the engine's
    pump-to-subscriber handoff, without routing, buffer policies or counters).
    """
    received = 0
    parse: Callable[[bytes | str], object] = decode_frame if decode else orjson.loads
    side = "bare" + (" + decode_frame" if decode else "") + (" + task hop" if hop else "")

    async def receive(ws: trio_websocket.WebSocketConnection) -> None:
        nonlocal received
        get = ws.get_message
        while True:
            parse(await get())
            received += 1

    async def pump(ws: trio_websocket.WebSocketConnection, handoff: _Handoff) -> None:
        get = ws.get_message
        put = handoff.put
        while True:
            put(parse(await get()))

    async def consume(handoff: _Handoff) -> None:
        nonlocal received
        get = handoff.get
        while True:
            await get()
            received += 1

    async with trio_websocket.open_websocket_url(
        emulator.ws_url,
        message_queue_size=QUEUE_SIZE,
        max_message_size=DEFAULT_MAX_MESSAGE_SIZE,
    ) as ws:
        await ws.send_message(request)
        async with trio.open_nursery() as nursery:
            if hop:
                handoff = _Handoff()
                nursery.start_soon(pump, ws, handoff)
                nursery.start_soon(consume, handoff)
            else:
                nursery.start_soon(receive, ws)
            count, wall, cpu, before, after = await _window(
                emulator, lambda: received, warmup, seconds
            )
            nursery.cancel_scope.cancel()
    return RoundResult(side, count, wall, cpu, before, after, _held(after))


async def engine_round(
    emulator: EmulatorProcess,
    types: Sequence[str],
    codes: Sequence[str],
    *,
    warmup: float,
    seconds: float,
    subscribers: int = 1,
    around_window: Callable[[Callable[[], Awaitable[None]]], Awaitable[None]] | None = None,
) -> RoundResult:
    """``open_engine`` with ``subscribers`` subscriptions splitting ``codes`` between them, one
    consumer task each draining ``stream(sub_id)``; counts messages delivered to consumers."""
    received = 0
    events = 0

    async def consume(sub_id: str) -> None:
        nonlocal received, events
        async with engine.stream(sub_id) as stream:
            async for item in stream:
                if isinstance(item, EVENT_TYPES):
                    events += 1
                else:
                    received += 1

    result: list[RoundResult] = []
    async with (
        open_engine(ws_url=emulator.ws_url, rest_url=emulator.rest_url, seed=1) as engine,
        trio.open_nursery() as nursery,
    ):
        for part in range(subscribers):
            sub_id = await engine.subscribe_realtime(list(types), list(codes[part::subscribers]))
            nursery.start_soon(consume, sub_id)

        async def measure() -> None:
            count, wall, cpu, before, after = await _window(
                emulator, lambda: received, warmup, seconds
            )
            result.append(
                RoundResult("engine", count, wall, cpu, before, after, _held(after), events)
            )

        if around_window is None:
            await measure()
        else:
            await around_window(measure)
        nursery.cancel_scope.cancel()
    return result[0]
