"""The seam between tickets and the socket.

A ticket never touches a WebSocket library directly: it asks a :class:`Transport` to ``connect`` and
gets a :class:`Connection` with exactly the operations the engine needs (send a text request,
receive a frame, ping, close). That keeps the tickets independent of the library underneath, so a
faster client can be dropped in (and measured) without touching them, and tests can substitute
their own.

Two implementations: :class:`~engine.transport.WebsocketsTransport` (Trio streams driving the
``websockets`` package's sans-I/O protocol, with no task per connection; the default) and
:class:`~engine.transport.TrioWebsocketTransport`; :func:`engine.transport.transport_for` picks
one by the name ``EngineConfig.transport`` holds.

Every failure surfaces as one of the library's exceptions:

- :class:`ConnectionClosedError` (a :class:`~engine.errors.ConnectionFailedError`) when the peer
  closed or the socket broke; ``code`` is the close code, ``None`` for an abort without close frame;
- :class:`~engine.errors.RateLimitedError` when the handshake was refused with HTTP 429 or 418;
- :class:`HandshakeRejectedError` for any other refused handshake;
- :class:`~engine.errors.ConnectionFailedError` for timeouts and network errors.
"""

from __future__ import annotations

import math
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Protocol

import attrs
import trio

from engine._groups import leaf_exceptions
from engine.config import KNOWN_TRANSPORTS
from engine.errors import ConnectionDeadError, ConnectionFailedError

__all__ = (
    "CloseInfo",
    "Connection",
    "ConnectionClosedError",
    "HandshakeRejectedError",
    "DEFAULT_MAX_MESSAGE_SIZE",
    "TRANSPORT_NAMES",
    "Transport",
    "WsEndpoint",
    "close_handshake",
    "judged_dead",
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


@asynccontextmanager
async def close_handshake(
    handshake: Callable[[], Awaitable[object]], within: float
) -> AsyncIterator[None]:
    """Run the block, then the connection's close handshake, bounded by ``within`` seconds and
    shielded: skipped when the block ended in cancellation (the handshake could only time out)
    or judged the connection dead (its peer would never answer). The caller closes the socket
    itself afterwards."""
    dead = False
    try:
        yield
    except BaseException as exc:
        dead = judged_dead(exc)
        raise
    finally:
        if not dead and trio.current_effective_deadline() != -math.inf:
            with trio.move_on_after(within) as scope:
                scope.shield = True
                await handshake()


def judged_dead(exc: BaseException) -> bool:
    """Whether ``exc`` (or a leaf of it) says the connection is dead: then no close handshake
    is attempted, since the peer would never answer it."""
    leaves = leaf_exceptions(exc) if isinstance(exc, BaseExceptionGroup) else [exc]
    return any(isinstance(leaf, ConnectionDeadError) for leaf in leaves)


def retry_after_seconds(headers: Sequence[tuple[bytes, bytes]]) -> float | None:
    """The ``Retry-After`` delay in seconds from raw response headers, if present and numeric."""
    for name, value in headers:
        if name.lower() == b"retry-after":
            try:
                return max(0.0, float(value.decode("ascii").strip()))
            except (UnicodeDecodeError, ValueError):
                return None
    return None


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
