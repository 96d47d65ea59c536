"""The debug channel's server: a local, read-only socket answering the line protocol of
:mod:`engine.observability.debug_replies`.

It listens on a Unix socket created with mode 0600 (only its user may connect) or a loopback
TCP port, never a public interface. Up to ``max_clients`` clients at once; each one is served by
its own task and can only cost the engine what it reads: replies are built from frozen views,
a follower's events wait in a bounded queue (the oldest dropped and counted when it is full), a
send that blocks longer than ``SEND_TIMEOUT`` drops the client, and an idle client is closed
after ``IDLE_TIMEOUT``.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import socket as stdlib_socket
import stat
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Final

import attrs
import trio

from engine.debug_address import DebugAddress
from engine.observability.debug_replies import (
    COMMANDS,
    MAX_REQUEST_BYTES,
    DebugRequest,
    encode_line,
    event_json,
    parse_request,
)
from engine.observability.journal import Journal

__all__ = ("FOLLOW_BUFFER", "DebugChannel", "DebugChannelStats", "open_debug_channel")

_log = logging.getLogger("engine.debug")
#: Seconds a stopping engine gives its followers to send the last events and ``end``.
END_GRACE: Final = 1.0

#: Seconds a reply may take to be accepted by the client before it is dropped as dead.
SEND_TIMEOUT: Final = 5.0
#: Seconds a client may stay silent (not following events) before it is closed.
IDLE_TIMEOUT: Final = 600.0
#: Events a following client may have waiting before the oldest are dropped.
FOLLOW_BUFFER: Final = 1000
#: Recent events sent with an ``events`` reply unless the request says how many.
RECENT_DEFAULT: Final = 50
MAX_CLIENTS: Final = 16

_GONE = (trio.BrokenResourceError, trio.ClosedResourceError, OSError)


@attrs.define
class DebugChannelStats:
    """The channel's own counters (``EngineMetrics.debug_*``)."""

    clients: int = 0
    clients_total: int = 0
    #: Clients turned away because ``max_clients`` were connected.
    refused: int = 0
    #: Clients dropped because a reply could not be sent within ``SEND_TIMEOUT``.
    dropped_slow: int = 0
    #: Events dropped from followers that fell behind.
    events_dropped: int = 0


class _Slow(Exception):
    pass


class DebugChannel:
    """Serves one engine's debug channel on already bound listeners."""

    def __init__(
        self,
        journal: Journal,
        answer: Callable[[DebugRequest], dict[str, object]],
        *,
        max_clients: int = MAX_CLIENTS,
    ) -> None:
        self._journal = journal
        self._answer = answer
        self._max_clients = max_clients
        self.stats = DebugChannelStats()
        self._followers = 0
        self._followers_lot = trio.lowlevel.ParkingLot()

    async def wait_followers_done(self) -> None:
        """Return once no client follows events (they end when the journal closes)."""
        while self._followers:
            await self._followers_lot.park()

    async def serve(self, listeners: list[trio.SocketListener]) -> None:
        await trio.serve_listeners(self._client, listeners)

    async def _client(self, stream: trio.SocketStream) -> None:
        stats = self.stats
        async with stream:
            if stats.clients >= self._max_clients:
                stats.refused += 1
                with contextlib.suppress(*_GONE, _Slow):
                    await _send(stream, {"ok": False, "error": "too many debug clients"})
                return
            stats.clients += 1
            stats.clients_total += 1
            try:
                await self._converse(stream)
            # Grouped when raised inside a follower's nursery.
            except* _Slow:
                stats.dropped_slow += 1
            except* _GONE:
                pass  # the client went away: nothing to answer
            finally:
                stats.clients -= 1

    async def _converse(self, stream: trio.SocketStream) -> None:
        pending = bytearray()
        while True:
            line = None
            with trio.move_on_after(IDLE_TIMEOUT):
                line = await _read_line(stream, pending)
            if line is None:
                return
            try:
                request = parse_request(line)
            except ValueError as exc:
                await _send(stream, {"ok": False, "error": str(exc)})
                continue
            if request.command == "events":
                await self._events(stream, request)
                if request.follow:
                    return
            elif request.command == "help":
                await _send(stream, {"ok": True, "cmd": "help", "commands": COMMANDS})
            else:
                await _send(stream, self._reply(request))

    def _reply(self, request: DebugRequest) -> dict[str, object]:
        """The answer, or an error reply: a diagnostic request never takes the engine down."""
        try:
            reply = self._answer(request)
            encode_line(reply)  # fails here, not halfway through a send
        except Exception as exc:
            _log.exception("debug channel: %r failed", request.command)
            return {"ok": False, "error": f"{request.command} failed: {exc!r}"}
        return reply

    async def _events(self, stream: trio.SocketStream, request: DebugRequest) -> None:
        journal = self._journal
        limit = RECENT_DEFAULT if request.limit is None else request.limit
        recent = journal.recent(limit) if limit else ()
        lot = trio.lowlevel.ParkingLot()
        # Taken in the same step as the recent ones: no event falls between the two.
        reader = journal.reader(FOLLOW_BUFFER, wake=lot.unpark_all) if request.follow else None
        if reader is not None:
            self._followers += 1  # from now on a stopping engine waits for its "end"
        try:
            await _send(
                stream,
                {
                    "ok": True,
                    "cmd": "events",
                    "following": request.follow,
                    "events": [event_json(event) for event in recent],
                },
            )
            if reader is None:
                return
            async with trio.open_nursery() as nursery:
                # The client says nothing more; EOF (it went away) ends the follow at once.
                nursery.start_soon(_cancel_on_eof, stream, nursery.cancel_scope)
                while True:
                    event = reader.take()
                    if event is not None:
                        await _send(stream, {"event": event_json(event)})
                        continue
                    if reader.closed:
                        await _send(stream, {"end": "the engine stopped"})
                        nursery.cancel_scope.cancel()
                        return
                    await lot.park()
        finally:
            if reader is not None:
                self.stats.events_dropped += reader.dropped
                reader.close()
                self._followers = max(0, self._followers - 1)
                self._followers_lot.unpark_all()


async def _cancel_on_eof(stream: trio.SocketStream, scope: trio.CancelScope) -> None:
    with contextlib.suppress(*_GONE):
        while await stream.receive_some(MAX_REQUEST_BYTES):
            pass  # a follower's further requests are ignored
    scope.cancel()


async def _send(stream: trio.SocketStream, obj: object) -> None:
    with trio.move_on_after(SEND_TIMEOUT) as scope:
        await stream.send_all(encode_line(obj))
    if scope.cancelled_caught:
        raise _Slow


async def _read_line(stream: trio.SocketStream, pending: bytearray) -> str | None:
    """The next request line, or ``None`` at EOF; a line too long is an error to the client."""
    while True:
        end = pending.find(b"\n")
        if end >= 0:
            line = bytes(pending[:end])
            del pending[: end + 1]
            return line.decode("utf-8", "replace")
        if len(pending) > MAX_REQUEST_BYTES:
            await _send(stream, {"ok": False, "error": f"request over {MAX_REQUEST_BYTES} bytes"})
            return None
        data = await stream.receive_some(MAX_REQUEST_BYTES)
        if not data:
            return None
        pending.extend(data)


@asynccontextmanager
async def open_debug_channel(
    address: DebugAddress,
    journal: Journal,
    answer: Callable[[DebugRequest], dict[str, object]],
) -> AsyncIterator[tuple[DebugChannel, str]]:
    """Bind ``address`` and serve the channel until the block ends; yields the channel and the
    address clients use (a TCP port 0 resolved to the one bound)."""
    channel = DebugChannel(journal, answer)
    if address.kind == "unix":
        listeners = [await _unix_listener(address.path)]
        where = str(address)
    else:
        # One address, so port 0 means one port ("localhost" may resolve to two).
        host = "127.0.0.1" if address.host == "localhost" else address.host
        listeners = await trio.open_tcp_listeners(address.port, host=host)
        port = listeners[0].socket.getsockname()[1]
        where = str(DebugAddress("tcp", host=host, port=port))
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(channel.serve, listeners)
            try:
                yield channel, where
            finally:
                # The journal closed first: followers send the last events and "end".
                with trio.CancelScope(shield=True), trio.move_on_after(END_GRACE):
                    await channel.wait_followers_done()
                nursery.cancel_scope.cancel()
    finally:
        # First, and without a checkpoint: a stop by cancellation must not leave the file.
        if address.kind == "unix":
            with contextlib.suppress(FileNotFoundError):
                os.unlink(address.path)
        with trio.CancelScope(shield=True):
            for listener in listeners:
                await listener.aclose()


async def _unix_listener(path: str) -> trio.SocketListener:
    await _clear_stale_socket(path)
    raw = stdlib_socket.socket(stdlib_socket.AF_UNIX, stdlib_socket.SOCK_STREAM)
    # Created 0600 from the start (no window in which another user could connect). The bind is
    # synchronous, so the process-wide umask is changed for no other task or thread's await.
    previous = os.umask(0o177)
    try:
        raw.bind(path)
    except OSError as exc:
        raw.close()
        raise OSError(exc.errno, f"debug channel cannot bind {path}: {exc.strerror}") from None
    finally:
        os.umask(previous)
    os.chmod(path, 0o600)
    raw.listen(16)
    await trio.lowlevel.checkpoint()
    return trio.SocketListener(trio.socket.from_stdlib_socket(raw))


async def _clear_stale_socket(path: str) -> None:
    """Remove a socket file a dead engine left behind; refuse a live one or any other file."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise OSError(errno.EEXIST, f"debug channel path {path} exists and is not a socket")
    probe = trio.socket.socket(stdlib_socket.AF_UNIX, stdlib_socket.SOCK_STREAM)
    try:
        await probe.connect(path)
    except OSError:
        os.unlink(path)  # nobody listens: stale
        return
    finally:
        probe.close()
    raise OSError(errno.EADDRINUSE, f"debug channel path {path} is in use by another process")
