"""The seam between tickets and the socket.

A ticket never touches a WebSocket library directly: it asks a :class:`Transport` to ``connect`` and
gets a :class:`Connection` with exactly the operations the engine needs (send a text request,
receive a frame, ping, close). That keeps the tickets independent of the library underneath, so a
faster client can be dropped in (and measured) without touching them, and tests can substitute
their own.

Two implementations: :class:`TrioWebsocketTransport` (here) and
:class:`~engine.transport_websockets.WebsocketsTransport` (Trio streams driving the ``websockets``
package's sans-I/O protocol, with no task per connection);
:func:`engine.transports.transport_for` picks one by the name ``EngineConfig.transport`` holds.

Every failure surfaces as one of the library's exceptions:

- :class:`ConnectionClosedError` (a :class:`~engine.errors.ConnectionFailedError`) when the peer
  closed or the socket broke; ``code`` is the close code, ``None`` for an abort without close frame;
- :class:`~engine.errors.RateLimitedError` when the handshake was refused with HTTP 429 or 418;
- :class:`HandshakeRejectedError` for any other refused handshake;
- :class:`~engine.errors.ConnectionFailedError` for timeouts and network errors.
"""

from __future__ import annotations

import itertools
import math
import ssl
import urllib.parse
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Protocol

import attrs
import h11
import trio
import trio_websocket
import wsproto.utilities

from engine._groups import leaf_exceptions, raise_single_leaf
from engine.config import KNOWN_TRANSPORTS
from engine.errors import ConnectionFailedError, RateLimitedError

__all__ = (
    "CloseInfo",
    "Connection",
    "ConnectionClosedError",
    "HandshakeRejectedError",
    "Transport",
    "TrioWebsocketTransport",
    "WsEndpoint",
    "TRANSPORT_NAMES",
    "parse_ws_url",
    "retry_after_seconds",
)

#: The names :func:`transport_for` knows (``EngineConfig.transport`` chooses among them).
TRANSPORT_NAMES = KNOWN_TRANSPORTS

#: Frames larger than this are refused (close 1009). Upbit frames are a few KiB; a 30-unit
#: orderbook in DEFAULT format is about 3 KiB, so 4 MiB leaves room for *_LIST batches.
DEFAULT_MAX_MESSAGE_SIZE = 4 * 1024 * 1024


@attrs.frozen
class CloseInfo:
    """Why a connection ended: the close code and reason, or ``code=None`` for an abort."""

    code: int | None
    reason: str = ""


class ConnectionClosedError(ConnectionFailedError):
    """The connection is closed: by the peer (with a close frame or an abort) or by us."""

    def __init__(self, info: CloseInfo) -> None:
        self.info = info
        if info.code is None:
            text = "connection aborted without a close frame"
        else:
            text = f"connection closed with code {info.code}"
            if info.reason:
                text += f" ({info.reason})"
        super().__init__(text)

    @property
    def code(self) -> int | None:
        return self.info.code


class HandshakeRejectedError(ConnectionFailedError):
    """The server answered the WebSocket upgrade with an HTTP error other than 429/418."""

    def __init__(self, status: int, body: bytes = b"") -> None:
        self.status = status
        self.body = body
        detail = body[:200].decode("utf-8", "replace")
        super().__init__(f"WebSocket handshake refused with HTTP {status}: {detail}".rstrip(": "))


class Connection(Protocol):
    """One open WebSocket connection, as a ticket sees it."""

    async def send_text(self, text: str) -> None:
        """Send one text frame (Upbit requests are text JSON)."""

    async def receive(self) -> bytes | str:
        """The next frame; raises :class:`ConnectionClosedError` once the connection is gone."""

    async def ping(self) -> None:
        """Send a protocol ping and wait for its pong. Callers bound the wait with a timeout."""

    async def aclose(self, code: int = 1000, reason: str = "") -> None:
        """Close with a close frame; idempotent. Never raises for an already-dead socket."""

    @property
    def close_info(self) -> CloseInfo | None:
        """How the connection ended, or ``None`` while it is open."""


class Transport(Protocol):
    """Opens connections. ``connect`` is an async context manager that closes on exit."""

    def connect(
        self,
        url: str,
        *,
        headers: Sequence[tuple[str, str]] = (),
        connect_timeout: float = 10.0,
    ) -> AbstractAsyncContextManager[Connection]: ...


def retry_after_seconds(headers: Sequence[tuple[bytes, bytes]]) -> float | None:
    """The ``Retry-After`` delay in seconds from raw response headers, if present and numeric."""
    for name, value in headers:
        if name.lower() == b"retry-after":
            try:
                return max(0.0, float(value.decode("ascii").strip()))
            except (UnicodeDecodeError, ValueError):
                return None
    return None


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
                    yield _TrioWebsocketConnection(ws)
                finally:
                    # Under cancellation the reader task is cancelled too, so a close handshake
                    # could only time out: skip straight to closing the socket then.
                    if trio.current_effective_deadline() != -math.inf:
                        with trio.move_on_after(self.disconnect_timeout) as scope:
                            scope.shield = True
                            await ws.aclose()
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


@attrs.frozen
class WsEndpoint:
    """Where a ``ws://`` or ``wss://`` URL points."""

    secure: bool
    host: str
    port: int
    resource: str

    @property
    def host_header(self) -> str:
        default = 443 if self.secure else 80
        return self.host if self.port == default else f"{self.host}:{self.port}"


def parse_ws_url(url: str) -> WsEndpoint:
    """Split a WebSocket URL; a ``ValueError`` names what is wrong with it."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("ws", "wss"):
        raise ValueError(f"not a WebSocket URL (need ws:// or wss://): {url!r}")
    if not parts.hostname:
        raise ValueError(f"WebSocket URL has no host: {url!r}")
    secure = parts.scheme == "wss"
    port = parts.port or (443 if secure else 80)
    resource = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return WsEndpoint(secure=secure, host=parts.hostname, port=port, resource=resource)


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
