"""One emulated WebSocket connection: requests in, frames out, Upbit's rules in between.

Theory of operation: trio-websocket does the handshake and the protocol (pongs, close handshake)
over a :class:`ServerStream`. The read loop takes one message at a time and handles it
synchronously (parse, limit, replace the subscription set, queue snapshots), so a request is atomic
with respect to the market feed, which runs in another task and appends realtime frames through
:meth:`Session.deliver`. Everything the connection sends is queued on the stream in order.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any, Literal, Protocol

import trio
import trio_websocket
import wsproto.utilities

from engine.testing.config import EmulatorConfig
from engine.testing.drift import UNKNOWN_TYPES
from engine.testing.emulator.auth import AuthResult
from engine.testing.emulator.feed import Feed
from engine.testing.emulator.frames import encode_frame, frame_payload
from engine.testing.emulator.limits import MessageGuard
from engine.testing.emulator.render import error_frame, list_subscriptions_frame, status_frame
from engine.testing.emulator.requests import (
    ERROR_MESSAGES,
    Endpoint,
    Ignored,
    KeepAlive,
    ListSubscriptions,
    RequestError,
    Subscribe,
    parse_request,
)
from engine.testing.emulator.subscriptions import EMPTY, SubscriptionSet, build_subscription
from engine.testing.emulator.transport import ServerStream
from engine.testing.introspection import ConnectionInfo, EventKind, RequestRecord

__all__ = ("MALFORMED_KINDS", "Session", "SessionHost")

MalformedKind = Literal["truncated_json", "invalid_utf8", "unexpected_json", "protocol"]
MALFORMED_KINDS: tuple[MalformedKind, ...] = (
    "truncated_json",
    "invalid_utf8",
    "unexpected_json",
    "protocol",
)
_MALFORMED: dict[str, bytes] = {
    "truncated_json": encode_frame(b'{"type":"ticker","code":"KRW-BTC","trade_price":'),
    "invalid_utf8": encode_frame(b'{"type":"ticker","code":"KRW-\xff\xfe"}'),
    "unexpected_json": encode_frame(b'{"unexpected":[1,2,3]}'),
    # Opcode 0x3 is reserved: a conforming client fails the connection (close 1002).
    "protocol": bytes((0x83, 0)),
}


class SessionHost(Protocol):
    """What a session needs from the emulator that owns it."""

    @property
    def config(self) -> EmulatorConfig: ...
    @property
    def feed(self) -> Feed[Any]: ...
    @property
    def latency(self) -> float: ...
    @property
    def limits_enforced(self) -> bool: ...
    def record(self, kind: EventKind, conn_id: int | None, detail: str) -> None: ...


class Session:
    def __init__(
        self,
        host: SessionHost,
        conn_id: int,
        path: str,
        peer: tuple[str, int],
        stream: ServerStream,
        auth: AuthResult | None,
    ) -> None:
        self.host = host
        self.config = host.config
        self.conn_id = conn_id
        self.path = path
        self.peer = peer
        self.stream = stream
        self.endpoint: Endpoint = "private" if path.endswith("/private") else "public"
        self.auth = auth
        self._format = "DEFAULT"
        self.subscription: SubscriptionSet = EMPTY
        self.requests: list[RequestRecord] = []
        self.frames_dropped = 0
        #: (data type, code) -> Trio time its first data frame since the latest subscription
        #: request was queued (a liveness witness: what the server did send, and when).
        self.first_sent: dict[tuple[str, str], float] = {}
        self._data_frames = 0  # counted only while a drift has a cadence
        self._garbage_sent = 0
        self._unknown_sent = 0
        stream.on_overflow = self._too_slow
        #: The feed's hot path appends straight to the stream.
        self.enqueue: Callable[[bytes], None] = stream.enqueue
        #: False once closing or while stalled: the feed skips this connection.
        self.accepting = True
        self.opened_at = trio.current_time()
        self.closed_at: float | None = None
        self.close_reason: str | None = None
        self.status_stream = False
        self.latency: float | None = None  # per-connection override of the emulator's latency
        self._guard = MessageGuard(self.config.limits)
        self._rng = random.Random(f"{self.config.seed}/{conn_id}")
        self._ws: trio_websocket.WebSocketConnection | None = None
        self._nursery: trio.Nursery | None = None
        self._closing = False
        self._close_done: trio.Event | None = None
        self._slow_abort = False
        self.established = False
        self.finished = trio.Event()

    # -- what the feed sees ---------------------------------------------------------------------

    @property
    def format(self) -> str:
        return self._format

    @property
    def backlog(self) -> int:
        return self.stream.queued_bytes

    @property
    def frames_sent(self) -> int:
        return self.stream.frames_queued

    def deliver(self, frame: bytes) -> None:
        self.stream.enqueue(frame)

    def deliver_data(self, frame: bytes, data_type: str, code: str) -> None:
        """A data frame sent outside the feed's fan-out (snapshots, stale frames, private)."""
        self.stream.enqueue(frame)
        self.first_sent.setdefault((data_type, code), trio.current_time())
        drift = self.host.feed.drift
        if drift is not None and drift.counts_data:
            self.count_data()

    def note_first(self, data_type: str, code: str, at: float) -> None:
        self.first_sent.setdefault((data_type, code), at)

    def count_data(self) -> None:
        """One more data frame: send the drift's garbage / unknown-type frame when one is due."""
        drift = self.host.feed.drift
        if drift is None:
            return
        self._data_frames += 1
        count = self._data_frames
        stats = self.host.feed.statistics
        if drift.garbage_every is not None and count % drift.garbage_every == 0:
            self.stream.enqueue(drift.garbage_frame(self._garbage_sent, self._format))
            self._garbage_sent += 1
            stats.garbage += 1
        if drift.unknown_type_every is not None and count % drift.unknown_type_every == 0:
            subscribed = {entry.type for entry in self.subscription.listing}
            for _ in UNKNOWN_TYPES:
                # A type this connection asked for would not be unknown to it: skip to the next.
                index = self._unknown_sent
                self._unknown_sent += 1
                if UNKNOWN_TYPES[index % len(UNKNOWN_TYPES)] not in subscribed:
                    self.stream.enqueue(drift.unknown_frame(index, self._format))
                    stats.unknown_types += 1
                    break

    def _set_closing(self) -> None:
        self._closing = True
        self.accepting = False

    def _register(self) -> None:
        """(Re)register the realtime streams with the feed, in the current format."""
        if self.accepting:
            self.host.feed.replace(self, self.subscription.realtime, self._format)

    def stall(self) -> None:
        self.stream.stall()
        self.accepting = False
        self.host.feed.remove(self)  # a stalled server produces nothing for this client

    def unstall(self) -> None:
        self.stream.unstall()
        self.accepting = not self._closing
        self._register()

    def _too_slow(self) -> None:
        if self.config.slow_client == "drop_frames":
            self.frames_dropped += 1
            return
        if not self._slow_abort and self._nursery is not None and self.closed_at is None:
            self._slow_abort = True
            self._nursery.start_soon(self.abort, "too slow: send buffer full")

    def refresh_latency(self) -> None:
        self.stream.latency = self.host.latency if self.latency is None else self.latency

    # -- lifetime -------------------------------------------------------------------------------

    async def run(self, accept_headers: list[tuple[bytes, bytes]]) -> None:
        """Serve the connection until it closes. The upgrade bytes are already in the stream."""
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                self.refresh_latency()
                nursery.start_soon(self.stream.flush_loop)
                with trio.move_on_after(self.config.close_timeout):
                    request = await trio_websocket.wrap_server_stream(
                        nursery, self.stream, max_message_size=self.config.max_message_size
                    )
                    self._ws = await request.accept(extra_headers=accept_headers)
                    self.stream.handshake_done()
                if self._ws is None:
                    self.close_reason = "bad WebSocket handshake"
                    await self.stream.abort()
                    nursery.cancel_scope.cancel()
                    return
                self.established = True
                self.host.record("connect", self.conn_id, f"{self.path} from {self.peer[0]}")
                nursery.start_soon(self._idle_watchdog)
                await self._read_loop(self._ws)
                if self._close_done is not None:
                    with trio.move_on_after(
                        self.config.close_timeout + self.config.error_close_delay
                    ):
                        await self._close_done.wait()
                if not self.stream.closed:
                    await self.stream.aclose()
                nursery.cancel_scope.cancel()
        except BaseExceptionGroup as group:
            # trio-websocket answers a client ping that arrives after our close frame with a
            # pong wsproto refuses (trio-websocket #184). That ends this connection, never the
            # emulator.
            refused, rest = group.split(wsproto.utilities.LocalProtocolError)
            if refused is not None:
                self.close_reason = self.close_reason or "client pinged after the close frame"
                await trio.aclose_forcefully(self.stream)
            if rest is not None:
                raise rest from None
        finally:
            self._finish()

    def _finish(self) -> None:
        self._set_closing()
        self.host.feed.remove(self)
        if self.close_reason is None:
            closed = self._ws.closed if self._ws is not None else None
            if closed is None or closed.code == 1006:
                self.close_reason = "connection lost"
            else:
                self.close_reason = f"client closed {closed.code}"
        self.closed_at = trio.current_time()
        self.host.record("close", self.conn_id, self.close_reason)
        self.finished.set()

    async def _read_loop(self, ws: trio_websocket.WebSocketConnection) -> None:
        while True:
            try:
                message = await ws.get_message()
            except trio_websocket.ConnectionClosed:
                return
            text = message if isinstance(message, str) else message.decode("utf-8", "replace")
            self._handle(text)

    async def _idle_watchdog(self) -> None:
        idle = self.config.idle_timeout
        if idle is None:
            return
        stream = self.stream
        while True:
            now = trio.current_time()
            if stream.stalled:
                await trio.sleep_until(now + idle)
                continue
            deadline = max(stream.last_received, stream.last_sent, stream.unstalled_at) + idle
            if now >= deadline:
                await self.abort("idle timeout")
                return
            await trio.sleep_until(deadline)

    async def _status_loop(self) -> None:
        interval = self.config.status_interval
        first = self.config.status_first_delay
        if first is None:
            first = self._rng.uniform(0, interval)
        due = trio.current_time() + first
        frame = status_frame(text=self.config.quirks.status_frame == "text")
        while True:
            await trio.sleep_until(due)
            if self.accepting:
                self.deliver(frame)
            due += interval

    # -- closing --------------------------------------------------------------------------------

    async def abort(self, reason: str, *, reset: bool = False) -> None:
        """Drop TCP without a close frame (the client sees 1006)."""
        if self.close_reason is None:
            self.close_reason = reason
        self._set_closing()
        self.host.feed.remove(self)
        await self.stream.abort(reset=reset)

    async def close(self, code: int, reason: str | None = None) -> None:
        """The close handshake with ``code``; TCP is dropped if the client does not answer."""
        if self.close_reason is None:
            self.close_reason = f"server closed {code}"
        self._set_closing()
        self.host.feed.remove(self)
        if self._close_done is None:
            self._close_done = trio.Event()
        done = self._close_done
        try:
            if self._ws is not None:
                with trio.move_on_after(self.config.close_timeout):
                    await self._ws.aclose(code, reason)
            await self.stream.abort()
        finally:
            done.set()

    async def _close_after(self, delay: float, code: int) -> None:
        await trio.sleep(delay)
        await self.close(code)

    def _schedule_close(self, code: int = 1000) -> None:
        if self._close_done is not None or self._nursery is None or self.closed_at is not None:
            return
        self._set_closing()
        self.host.feed.remove(self)
        self._close_done = trio.Event()
        self._nursery.start_soon(self._close_after, self.config.error_close_delay, code)

    def send_error(self, name: str, message: str | None = None, *, close: bool = True) -> None:
        """An error frame, then (like Upbit) a close 1000 after ``error_close_delay``."""
        text = message or ERROR_MESSAGES.get(name, name)
        self.deliver(error_frame(name, text))
        self.host.record("error", self.conn_id, f"{name}: {text}")
        if close:
            self._schedule_close(1000)

    def send_malformed(self, kind: MalformedKind) -> None:
        self.deliver(_MALFORMED[kind])
        self.host.record("fault", self.conn_id, f"malformed frame ({kind})")

    # -- requests -------------------------------------------------------------------------------

    def _record(self, text: str, kind: str, error: str | None = None) -> None:
        record = RequestRecord(trio.current_time(), self.conn_id, text, kind, error)
        self.requests.append(record)
        self.host.record("request", self.conn_id, f"{kind}: {text[:200]}")

    def _handle(self, text: str) -> None:
        config = self.config
        if self._closing:
            self._record(text, "ignored")
            return
        parsed = parse_request(text, endpoint=self.endpoint, quirks=config.quirks)
        keepalive = isinstance(parsed, KeepAlive)
        if self.host.limits_enforced and not (keepalive and not config.limits.count_text_ping):
            verdict = self._guard.admit(trio.current_time())
            if not verdict.allowed:
                name = "I'm a teapot" if verdict.status == 418 else "Too Many Requests"
                self._record(text, "rate_limited", name)
                reaction = config.limits.message_reaction
                if reaction == "ignore":
                    self._guard.record_only(trio.current_time())
                elif reaction == "close":
                    self._schedule_close(1000)
                    return
                else:
                    self.send_error(name, close=reaction == "error_close")
                    return
        if isinstance(parsed, KeepAlive):
            self._record(text, "ping")
            if not self.status_stream and self._nursery is not None:
                self.status_stream = True
                self._nursery.start_soon(self._status_loop)
            return
        if self.auth is not None and not self.auth.ok:
            self._record(text, "error", "INVALID_AUTH")
            self.send_error("INVALID_AUTH")
            return
        if isinstance(parsed, RequestError):
            self._record(text, "error", parsed.name)
            self.send_error(parsed.name, parsed.message)
        elif isinstance(parsed, ListSubscriptions):
            self._record(text, "list")
            if parsed.format is not None and parsed.format != self._format:
                self._format = parsed.format
                self._register()  # every active stream switches format
            ticket = parsed.ticket
            if config.quirks.list_ticket == "subscription" and self.subscription.ticket:
                ticket = self.subscription.ticket
            self.deliver(list_subscriptions_frame(self.subscription.listing, ticket, self._format))
        elif isinstance(parsed, Ignored):
            self._record(text, "ignored")
        else:
            self._record(text, "subscribe")
            self._subscribe(parsed)

    def _subscribe(self, request: Subscribe) -> None:
        feed = self.host.feed
        quirks = self.config.quirks
        old = self.subscription
        if quirks.stale_frames and old.realtime:
            count = self._rng.randint(0, quirks.stale_frames)
            for index in range(count):
                key = old.realtime[index % len(old.realtime)]
                frame = feed.state_frame(key, "REALTIME", self._format)
                if frame is not None:
                    self.deliver_data(frame, key.data_type, key.code)
        new, snapshots = build_subscription(request, quirks)
        if request.format is not None:
            self._format = request.format
        elif not request.format_given and quirks.format_resets:
            self._format = "DEFAULT"
        self.subscription = new
        # Stale frames above belong to the old set: the liveness record starts here.
        self.first_sent.clear()
        drift = feed.drift
        for key in snapshots:
            if drift is not None and key.code in drift.no_snapshot_codes:
                feed.statistics.snapshots_withheld += 1
                continue
            frame = feed.state_frame(key, "SNAPSHOT", self._format)
            if frame is not None:
                self.deliver_data(frame, key.data_type, key.code)
        self._register()

    # -- private data -----------------------------------------------------------------------------

    def wants(self, message: dict[str, object]) -> bool:
        if self._closing or self.auth is None or not self.auth.ok:
            return False
        kind = message.get("type")
        if kind == "myAsset":
            return self.subscription.my_asset
        if kind == "myOrder":
            return self.subscription.wants_my_order(str(message.get("code", "")))
        return False

    # -- introspection ----------------------------------------------------------------------------

    def info(self) -> ConnectionInfo:
        return ConnectionInfo(
            conn_id=self.conn_id,
            path=self.path,
            peer=self.peer,
            access_key=self.auth.access_key if self.auth is not None else None,
            format=self._format,
            subscriptions=self.subscription.listing,
            requests=tuple(self.requests),
            frames_sent=self.frames_sent,
            frames_dropped=self.frames_dropped,
            recent_frames=tuple(frame_payload(frame) for frame in self.stream.recent),
            pings_received=self.stream.pings_received,
            opened_at=self.opened_at,
            closed_at=self.closed_at,
            close_reason=self.close_reason,
            stalled=self.stream.stalled,
            status_stream=self.status_stream,
        )
