"""The transport built on ``trio-websocket`` (``EngineConfig.transport = "trio-websocket"``).

trio-websocket runs a reader task per connection; the default transport
(:mod:`engine.transport.websockets_transport`) does not, which is why it is the default.
Failures map to the seam's exceptions (:mod:`engine.transport.base`).
"""

from __future__ import annotations

import itertools
import ssl
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import attrs
import h11
import trio
import trio_websocket
import wsproto.utilities

from engine._groups import leaf_exceptions, raise_single_leaf
from engine.errors import ConnectionFailedError, RateLimitedError
from engine.transport.base import (
    DEFAULT_MAX_MESSAGE_SIZE,
    CloseInfo,
    Connection,
    ConnectionClosedError,
    HandshakeRejectedError,
    close_handshake,
    parse_ws_url,
    retry_after_seconds,
)

__all__ = ("TrioWebsocketTransport",)


def _close_info(reason: trio_websocket.CloseReason | None) -> CloseInfo:
    if reason is None:
        return CloseInfo(code=None, reason="")
    # 1006 is never sent on the wire: it is the local marker for "no close frame received".
    code = None if reason.code == 1006 else reason.code
    return CloseInfo(code=code, reason=reason.reason or "")


@attrs.define(eq=False)
class _TrioWebsocketConnection:
    _ws: trio_websocket.WebSocketConnection
    _ping_ids: itertools.count[int] = attrs.field(factory=itertools.count)

    async def send_text(self, text: str) -> None:
        try:
            await self._ws.send_message(text)
        except trio_websocket.ConnectionClosed as exc:
            raise ConnectionClosedError(_close_info(exc.reason)) from None

    async def receive(self) -> bytes | str:
        try:
            return await self._ws.get_message()
        except trio_websocket.ConnectionClosed as exc:
            raise ConnectionClosedError(_close_info(exc.reason)) from None

    async def ping(self) -> None:
        # A counter, not trio-websocket's random payload, so runs are reproducible.
        payload = next(self._ping_ids).to_bytes(8, "big")
        try:
            await self._ws.ping(payload)
        except trio_websocket.ConnectionClosed as exc:
            raise ConnectionClosedError(_close_info(exc.reason)) from None

    async def aclose(self, code: int = 1000, reason: str = "") -> None:
        await self._ws.aclose(code, reason or None)

    @property
    def close_info(self) -> CloseInfo | None:
        reason = self._ws.closed
        return None if reason is None else _close_info(reason)


@attrs.frozen
class TrioWebsocketTransport:
    """The transport built on ``trio-websocket``.

    ``ssl_context`` defaults to the system's verified context for ``wss://`` URLs.
    ``disconnect_timeout`` bounds the close handshake so a dead peer cannot hang shutdown.
    """

    ssl_context: ssl.SSLContext | None = None
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE
    message_queue_size: int = 64
    disconnect_timeout: float = 2.0

    @asynccontextmanager
    async def connect(
        self,
        url: str,
        *,
        headers: Sequence[tuple[str, str]] = (),
        connect_timeout: float = 10.0,
    ) -> AsyncIterator[Connection]:
        extra = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in headers]
        # The reader task lives in this nursery; trio wraps whatever crosses it in an
        # ExceptionGroup, which callers should never have to unpick: unwrap a single leaf.
        # A rejected handshake surfaces from that reader task, hence the mapping out here.
        opened = False
        try:
            async with trio.open_nursery() as nursery:
                with trio.fail_after(connect_timeout):
                    ws, stream = await self._open(nursery, url, extra)
                opened = True
                try:
                    async with close_handshake(ws.aclose, self.disconnect_timeout):
                        yield _TrioWebsocketConnection(ws)
                finally:
                    # trio-websocket skips closing the socket when the peer closed first.
                    await trio.aclose_forcefully(stream)
                    nursery.cancel_scope.cancel()
        except BaseExceptionGroup as group:
            leaves = leaf_exceptions(group)
            if not opened and len(leaves) == 1:
                raise _connect_error(url, leaves[0], connect_timeout) from None
            raise_single_leaf(group)

    async def _open(
        self, nursery: trio.Nursery, url: str, extra_headers: list[tuple[bytes, bytes]]
    ) -> tuple[trio_websocket.WebSocketConnection, trio.abc.Stream]:
        # The stream is opened here rather than by trio-websocket so that a handshake that fails
        # or times out still closes its socket.
        endpoint = parse_ws_url(url)
        stream: trio.abc.Stream
        if endpoint.secure:
            context = self.ssl_context or ssl.create_default_context()
            ssl_stream = await trio.open_ssl_over_tcp_stream(
                endpoint.host, endpoint.port, ssl_context=context, https_compatible=True
            )
            try:
                # Here, not inside trio-websocket: there a refused certificate would only end its
                # reader task, and the connect would wait out its whole timeout.
                await ssl_stream.do_handshake()
            except BaseException:
                await trio.aclose_forcefully(ssl_stream)
                raise
            stream = ssl_stream
        else:
            stream = await trio.open_tcp_stream(endpoint.host, endpoint.port)
        try:
            ws = await trio_websocket.wrap_client_stream(
                nursery,
                stream,
                endpoint.host_header,
                endpoint.resource,
                extra_headers=extra_headers,
                message_queue_size=self.message_queue_size,
                max_message_size=self.max_message_size,
            )
        except BaseException:
            await trio.aclose_forcefully(stream)
            raise
        return ws, stream


def _connect_error(url: str, exc: BaseException, connect_timeout: float) -> BaseException:
    """The library's exception for a failure while opening a connection."""
    if isinstance(exc, trio.TooSlowError):
        return ConnectionFailedError(f"connecting to {url} timed out after {connect_timeout:g} s")
    if isinstance(exc, trio_websocket.ConnectionRejected):
        if exc.status_code in (418, 429):
            return RateLimitedError(
                exc.status_code,
                retry_after=retry_after_seconds(exc.headers),
                detail=(exc.body or b"")[:200].decode("utf-8", "replace"),
            )
        return HandshakeRejectedError(exc.status_code, exc.body or b"")
    if isinstance(exc, trio.BrokenResourceError):
        # A TLS failure (e.g. an untrusted certificate); the cause says which.
        return ConnectionFailedError(f"could not connect to {url}: {exc.__cause__ or exc!r}")
    if isinstance(exc, _GARBLED_HANDSHAKE):
        return ConnectionFailedError(
            f"could not connect to {url}: the answer is not a valid WebSocket handshake ({exc})"
        )
    if isinstance(exc, trio_websocket.HandshakeError | OSError):
        return ConnectionFailedError(f"could not connect to {url}: {exc!r}")
    return exc


# What h11 / wsproto raise, inside trio-websocket, for an answer that is not HTTP or not an upgrade.
_GARBLED_HANDSHAKE = (h11.ProtocolError, wsproto.utilities.ProtocolError)
