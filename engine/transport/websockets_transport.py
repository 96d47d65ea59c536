"""A transport on plain Trio streams driving the ``websockets`` package's sans-I/O client.

It satisfies :class:`~engine.transport.Transport` exactly as
:class:`~engine.transport.TrioWebsocketTransport` does (same exceptions, same close reporting) but
runs no background task: :meth:`receive` itself reads the socket, feeds the protocol and hands out
the messages one read produced, so a message costs a few attribute look-ups instead of a task
switch. See ``engine/transport/frame_core.py`` for the protocol side.

Reading discipline: at most one task reads the socket at a time. Whoever needs progress
(``receive``, a ``ping`` waiting for its pong, ``aclose`` waiting for the peer's close frame)
reads one chunk if nobody else is reading, or else waits for the current reader's chunk to be
processed and looks again. So a ping sent while another task sits in ``receive`` is answered by
that task's read, and a ping sent while nobody receives reads the socket itself (the messages it
reads wait in the queue for the next ``receive``). Writes (requests, pings, pongs, close frames)
go out under one lock, in the order the protocol produced them.

Close codes: a peer's close frame is reported with its code; when websockets fails the
connection itself it sends a close frame and that code is reported (1002 for a protocol error,
1007 for invalid UTF-8 in a text message, 1009 for a message over ``max_message_size``); a socket
that ends without any close frame reports ``code=None``. (The trio-websocket transport reports
``None`` for the first two, because it aborts after its own close frame.)
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import attrs
import trio
from websockets.exceptions import InvalidStatus

from engine.errors import ConnectionFailedError, RateLimitedError
from engine.transport.base import (
    DEFAULT_MAX_MESSAGE_SIZE,
    CloseInfo,
    Connection,
    ConnectionClosedError,
    HandshakeRejectedError,
    WsEndpoint,
    close_handshake,
    parse_ws_url,
    retry_after_seconds,
)
from engine.transport.frame_core import WsClientCore

__all__ = ("WebsocketsTransport",)

#: Bytes asked of the socket per read: enough for a few hundred Upbit frames.
_RECEIVE_SIZE = 65536

_STREAM_GONE = (trio.BrokenResourceError, trio.ClosedResourceError)


class _WebsocketsConnection:
    """One open connection; see the module docstring for who reads and who writes."""

    __slots__ = (
        "_closed_locally",
        "_core",
        "_disconnect_timeout",
        "_messages",
        "_read_done",
        "_reading",
        "_send_lock",
        "_stream",
    )

    def __init__(
        self, stream: trio.abc.Stream, core: WsClientCore, disconnect_timeout: float
    ) -> None:
        self._stream = stream
        self._core = core
        self._messages = core.messages
        self._disconnect_timeout = disconnect_timeout
        self._send_lock = trio.StrictFIFOLock()
        self._reading = False
        self._read_done = trio.lowlevel.ParkingLot()
        self._closed_locally = False

    async def receive(self) -> bytes | str:
        messages = self._messages
        while not messages:
            if self._core.close_state is not None:
                raise ConnectionClosedError(self._close_info_now())
            await self._pump()
        # Messages already read are handed out like ``receive_nowait`` would: no trip through
        # the scheduler and no cancellation check, which would cost about as much as the rest of
        # this loop. The read that refills the queue is a full checkpoint, so a cancelled caller
        # stops within one read (at most 64 KiB of frames).
        return messages.popleft()

    async def send_text(self, text: str) -> None:
        if not self._core.send_text(text):
            raise ConnectionClosedError(self._close_info_now())
        await self._flush(raise_if_gone=True)

    async def ping(self) -> None:
        core = self._core
        ping_id = core.send_ping()
        if ping_id is None:
            raise ConnectionClosedError(self._close_info_now())
        try:
            await self._flush(raise_if_gone=True)
            while not core.pong_received(ping_id):
                if core.close_state is not None:
                    raise ConnectionClosedError(self._close_info_now())
                await self._pump()
        finally:
            core.forget_ping(ping_id)

    async def aclose(self, code: int = 1000, reason: str = "") -> None:
        if self._closed_locally:
            return
        # ValueError for a bad code, before anything changes.
        started = self._core.send_close(code, reason)
        self._closed_locally = True
        try:
            # Wait for the peer's answer only to a close frame sent just now: after the peer's
            # close frame or a failed connection there is nothing left to wait for.
            if started:
                await self._flush(raise_if_gone=False)
                with trio.move_on_after(self._disconnect_timeout):
                    while not self._core.close_handshake_done:
                        await self._pump()
        finally:
            await self.abort()

    async def abort(self) -> None:
        """Close the socket without any handshake; safe under cancellation."""
        self._closed_locally = True
        await trio.aclose_forcefully(self._stream)
        self._core.receive_eof()

    @property
    def close_info(self) -> CloseInfo | None:
        state = self._core.close_state
        return None if state is None else CloseInfo(code=state[0], reason=state[1])

    def _close_info_now(self) -> CloseInfo:
        info = self.close_info
        assert info is not None, "only called once the protocol has left the OPEN state"
        return info

    async def _pump(self) -> None:
        """Make progress: read and process one chunk, or wait for the task that is reading."""
        if self._reading:
            await self._read_done.park()
            return
        self._reading = True
        try:
            try:
                data = await self._stream.receive_some(_RECEIVE_SIZE)
            except _STREAM_GONE:
                data = b""
            if data:
                self._core.receive_data(data)
            else:
                self._core.receive_eof()
        finally:
            self._reading = False
            if self._read_done:
                self._read_done.unpark_all()
        if self._core.output_pending:
            await self._flush(raise_if_gone=False)

    async def _flush(self, *, raise_if_gone: bool) -> None:
        async with self._send_lock:
            data = self._core.data_to_send()
            if not data:
                return
            try:
                await self._stream.send_all(data)
            except _STREAM_GONE:
                self._core.receive_eof()
                if raise_if_gone:
                    raise ConnectionClosedError(self._close_info_now()) from None


@attrs.frozen
class WebsocketsTransport:
    """The transport on Trio streams and websockets' sans-I/O protocol (no reader task).

    ``ssl_context`` defaults to the system's verified context for ``wss://`` URLs.
    ``disconnect_timeout`` bounds the close handshake so a dead peer cannot hang shutdown.
    ``fast_path`` slices plain data frames without websockets' frame parser (same results, a
    few times faster); turn it off to measure or to rule it out.
    """

    ssl_context: ssl.SSLContext | None = None
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE
    disconnect_timeout: float = 2.0
    fast_path: bool = True

    @asynccontextmanager
    async def connect(
        self,
        url: str,
        *,
        headers: Sequence[tuple[str, str]] = (),
        connect_timeout: float = 10.0,
    ) -> AsyncIterator[Connection]:
        endpoint = parse_ws_url(url)
        core = WsClientCore(
            url, headers=headers, max_message_size=self.max_message_size, fast_path=self.fast_path
        )
        try:
            with trio.fail_after(connect_timeout):
                stream = await self._open_stream(endpoint)
                try:
                    await _handshake(stream, core)
                    if core.handshake_error is not None:
                        raise _handshake_error(url, core.handshake_error) from None
                except BaseException:
                    await trio.aclose_forcefully(stream)
                    raise
        except trio.TooSlowError:
            raise ConnectionFailedError(
                f"connecting to {url} timed out after {connect_timeout:g} s"
            ) from None
        except (OSError, trio.BrokenResourceError) as exc:
            # A TLS failure (e.g. an untrusted certificate) arrives as BrokenResourceError.
            detail = exc.__cause__ if exc.__cause__ is not None else exc
            raise ConnectionFailedError(f"could not connect to {url}: {detail!r}") from exc
        conn = _WebsocketsConnection(stream, core, self.disconnect_timeout)
        try:
            async with close_handshake(conn.aclose, self.disconnect_timeout):
                yield conn
        finally:
            await conn.abort()

    async def _open_stream(self, endpoint: WsEndpoint) -> trio.abc.Stream:
        if not endpoint.secure:
            return await trio.open_tcp_stream(endpoint.host, endpoint.port)
        context = self.ssl_context or ssl.create_default_context()
        return await trio.open_ssl_over_tcp_stream(
            endpoint.host, endpoint.port, ssl_context=context, https_compatible=True
        )


async def _handshake(stream: trio.abc.Stream, core: WsClientCore) -> None:
    """Send the upgrade request and read until websockets accepts or refuses the answer."""
    await stream.send_all(core.data_to_send())
    while not core.handshake_done:
        data = await stream.receive_some(_RECEIVE_SIZE)
        if data:
            core.receive_handshake_data(data)
        else:
            core.receive_handshake_eof()
    if core.handshake_error is None and core.output_pending:
        # Frames that came with the response may already want an answer (a ping, a close).
        await stream.send_all(core.data_to_send())


def _handshake_error(url: str, error: Exception) -> ConnectionFailedError | RateLimitedError:
    if isinstance(error, InvalidStatus):
        response = error.response
        body = bytes(response.body)
        status = response.status_code
        if status in (418, 429):
            raw = [
                (k.encode("latin-1"), v.encode("latin-1")) for k, v in response.headers.raw_items()
            ]
            return RateLimitedError(
                status,
                retry_after=retry_after_seconds(raw),
                detail=body[:200].decode("utf-8", "replace"),
            )
        return HandshakeRejectedError(status, body)
    return ConnectionFailedError(
        f"could not connect to {url}: the answer is not a valid WebSocket handshake ({error})"
    )
