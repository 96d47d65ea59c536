"""The byte stream under each emulated WebSocket: where network faults are made.

trio-websocket runs the WebSocket protocol on top of :class:`ServerStream`, which

- replays the HTTP request bytes the dispatcher already read (so one port serves REST and WS);
- queues outgoing bytes and writes them from one flusher task, so the market feed never waits on
  a slow client (it appends pre-encoded frames synchronously) and latency can be added per frame;
- can *stall* (stop delivering received bytes, so pings go unanswered, and stop writing) while
  still noticing that the client hung up;
- can *abort*: close TCP without a close frame (optionally with RST).
"""

from __future__ import annotations

import socket
import struct
from collections import deque
from collections.abc import Callable

import trio

from engine.testing.emulator.frames import (
    OPCODE_BINARY,
    OPCODE_PING,
    OPCODE_TEXT,
    ClientFrameScanner,
)

__all__ = ("ServerStream",)

_MAX_WRITE = 1 << 20  # bytes per send_all: the flusher yields between writes


class ServerStream(trio.abc.Stream):
    """A server-side stream wrapper giving the emulator byte-level control."""

    def __init__(
        self,
        inner: trio.abc.Stream,
        prefix: bytes,
        *,
        buffer_limit: int,
        ping_is_activity: bool = True,
        recent: int = 0,
    ) -> None:
        self._inner = inner
        self.buffer_limit = buffer_limit
        self.latency = 0.0
        self._ping_is_activity = ping_is_activity
        self._now: list[bytes] = []
        self._timed: deque[tuple[float, bytes]] = deque()
        self._queued_bytes = 0
        self._wake: trio.Event | None = None
        self._drain_waiter: trio.Event | None = None
        #: Called (instead of queueing) when a frame arrives while the client is too far behind.
        self.on_overflow: Callable[[], None] | None = None
        self.frames_queued = 0
        self._data_queued = False
        #: The newest frames queued, for introspection.
        self.recent: deque[bytes] = deque(maxlen=recent)
        self._stalled = False
        self._stall_scope: trio.CancelScope | None = None
        self._held_eof = False
        self._closed = False
        self.broken = False
        self.pings_received = 0
        now = trio.current_time()
        self.last_received = now
        self.last_sent = now
        self.unstalled_at = now
        self._scanner = ClientFrameScanner()
        # Only the request head is replayed before the handshake completes: wsproto's server side
        # drops bytes that arrive with the head, so frames a client pipelined behind its upgrade
        # request are held until :meth:`handshake_done`.
        head_end = prefix.find(b"\r\n\r\n")
        split = head_end + 4 if head_end >= 0 else len(prefix)
        self._prefix, self._held = prefix[:split], bytearray(prefix[split:])
        self._handshaken = trio.Event()

    # -- state ----------------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._closed

    def _is_stalled(self) -> bool:
        return self._stalled

    def _is_closed(self) -> bool:
        # A method, not the attribute: the flag changes across awaits.
        return self._closed

    @property
    def stalled(self) -> bool:
        return self._stalled

    @property
    def queued_bytes(self) -> int:
        return self._queued_bytes

    def handshake_done(self) -> None:
        """The 101 is queued: bytes after the request head may now reach the protocol."""
        self._handshaken.set()

    def stall(self) -> None:
        """Stop reading (pings go unanswered) and writing, keeping TCP open."""
        self._stalled = True

    def unstall(self) -> None:
        """Deliver what arrived meanwhile and flush what was queued."""
        if not self._stalled:
            return
        self._stalled = False
        self.unstalled_at = trio.current_time()
        if self._stall_scope is not None:
            self._stall_scope.cancel()
        self._wake_flusher()

    # -- receiving ------------------------------------------------------------------------------

    def _observe(self, data: bytes) -> None:
        for opcode in self._scanner.feed(data):
            if opcode in (OPCODE_TEXT, OPCODE_BINARY):
                self.last_received = trio.current_time()
            elif opcode == OPCODE_PING:
                self.pings_received += 1
                if self._ping_is_activity:
                    self.last_received = trio.current_time()

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        if self._prefix:
            size = len(self._prefix) if max_bytes is None else max_bytes
            data, self._prefix = self._prefix[:size], self._prefix[size:]
            await trio.lowlevel.checkpoint()
            return data
        if not self._handshaken.is_set():
            await self._handshaken.wait()
        while True:
            if self._is_closed() or self._held_eof:
                # Closed by us, or the client hung up (noticed even while stalled).
                await trio.lowlevel.checkpoint()
                return b""
            if self._stalled:
                await self._hold_while_stalled(max_bytes)
                continue
            if self._held:
                data = bytes(self._held)
                self._held.clear()
                self._observe(data)
                return data
            data = bytes(await self._inner.receive_some(max_bytes))
            if self._is_stalled():
                # Stalled while this read was pending: hold the bytes like any others.
                self._held += data
                self._held_eof = not data
                continue
            self._observe(data)
            return data

    async def _hold_while_stalled(self, max_bytes: int | None) -> None:
        # Keep reading so a client that gives up is noticed, but hand nothing to the protocol.
        with trio.CancelScope() as scope:
            self._stall_scope = scope
            while self._stalled and not self._held_eof:
                data = await self._inner.receive_some(max_bytes)
                if not data:
                    self._held_eof = True
                self._held += data
        self._stall_scope = None

    # -- sending --------------------------------------------------------------------------------

    def enqueue(self, frame: bytes) -> None:
        """Queue a complete frame without waiting (the market feed's hot path, so inlined).

        When the client is ``buffer_limit`` bytes behind, the frame is not queued and
        ``on_overflow`` is called instead.
        """
        if self._closed:
            return
        if self._queued_bytes > self.buffer_limit:
            if self.on_overflow is not None:
                self.on_overflow()
            return
        if self.latency or self._timed:
            self._timed.append((trio.current_time() + self.latency, frame))
        else:
            self._now.append(frame)
        self._queued_bytes += len(frame)
        self.frames_queued += 1
        self.recent.append(frame)
        self._data_queued = True
        wake = self._wake
        if wake is not None:
            self._wake = None
            wake.set()

    def _wake_flusher(self) -> None:
        wake = self._wake
        if wake is not None:
            self._wake = None
            wake.set()

    def _drained(self) -> None:
        waiter = self._drain_waiter
        if waiter is not None:
            self._drain_waiter = None
            waiter.set()

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        # trio-websocket's own writes (handshake, pong, close): complete frames, always queued so
        # they stay in order with the data frames.
        if self._closed:
            raise trio.ClosedResourceError("the emulator closed this connection")
        if self.broken:
            raise trio.BrokenResourceError("the client went away")
        chunk = bytes(data)
        if self.latency or self._timed:
            self._timed.append((trio.current_time() + self.latency, chunk))
        else:
            self._now.append(chunk)
        self._queued_bytes += len(chunk)
        self._wake_flusher()
        await trio.lowlevel.checkpoint()

    async def wait_send_all_might_not_block(self) -> None:
        await trio.lowlevel.checkpoint()

    async def flush_loop(self) -> None:
        """Write queued frames as they fall due. Runs for the life of the connection.

        Two queues keep the common case cheap: ``_now`` (a plain list, used while there is no
        latency) and ``_timed`` (due times, used while there is). Once anything is timed, new
        frames are timed too until that queue drains, so order is kept when latency changes.
        """
        while not self._closed:
            if self._stalled or not (self._now or self._timed):
                if not (self._now or self._timed):
                    self._drained()
                self._wake = trio.Event()
                await self._wake.wait()
                continue
            chunks: list[bytes]
            if self._now:
                chunks, self._now = self._now, []
            else:
                due = self._timed[0][0]
                if due > trio.current_time():
                    await trio.sleep_until(due)
                    continue
                now = trio.current_time()
                chunks = []
                timed = self._timed
                while timed and timed[0][0] <= now:
                    chunks.append(timed.popleft()[1])
            data = memoryview(b"".join(chunks))
            self._queued_bytes -= len(data)
            try:
                for start in range(0, len(data), _MAX_WRITE):
                    await self._inner.send_all(data[start : start + _MAX_WRITE])
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                self.broken = True
                self._now.clear()
                self._timed.clear()
                self._queued_bytes = 0
                self._drained()
                return
            if self._data_queued:
                # Only data frames count as activity: a pong is not "data sent" for the idle timer.
                self._data_queued = False
                self.last_sent = trio.current_time()

    # -- closing --------------------------------------------------------------------------------

    async def aclose(self) -> None:
        """Graceful: flush what is queued (bounded), then close TCP."""
        if self._closed:
            await trio.lowlevel.checkpoint()
            return
        with trio.move_on_after(5.0):
            while (
                (self._now or self._timed)
                and not self._stalled
                and not self.broken
                and not self._closed
            ):
                if self._drain_waiter is None:
                    self._drain_waiter = trio.Event()
                await self._drain_waiter.wait()
        await self._close_inner(reset=False)

    async def abort(self, *, reset: bool = False) -> None:
        """Drop TCP now, discarding queued frames: the client sees 1006 (no close frame)."""
        if self._closed:
            await trio.lowlevel.checkpoint()
            return
        await self._close_inner(reset=reset)

    async def _close_inner(self, *, reset: bool) -> None:
        self._closed = True
        self._handshaken.set()
        self._now.clear()
        self._timed.clear()
        self._queued_bytes = 0
        self._drained()
        self._wake_flusher()
        if self._stall_scope is not None:
            self._stall_scope.cancel()
        if reset and isinstance(self._inner, trio.SocketStream):
            # SO_LINGER with a zero timeout turns close() into a TCP RST.
            self._inner.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        await trio.aclose_forcefully(self._inner)
