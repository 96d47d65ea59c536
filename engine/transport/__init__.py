"""The seam between tickets and the socket, its two implementations, and the pick by name.

- :mod:`engine.transport.base`: what a ticket needs of a connection (:class:`Connection`,
  :class:`Transport`) and the exceptions every implementation raises;
- :class:`WebsocketsTransport` (the default): Trio streams driving the ``websockets`` package's
  sans-I/O protocol through :mod:`engine.transport.frame_core`;
- :class:`TrioWebsocketTransport`: built on ``trio-websocket``;
- :func:`transport_for`: a transport by its name in ``EngineConfig.transport``.

A custom transport implements :class:`Transport` and is passed to ``open_engine(transport=...)``.
"""

from __future__ import annotations

from engine.transport.base import (
    DEFAULT_MAX_MESSAGE_SIZE,
    TRANSPORT_NAMES,
    CloseInfo,
    Connection,
    ConnectionClosedError,
    HandshakeRejectedError,
    Transport,
    WsEndpoint,
    judged_dead,
    parse_ws_url,
    retry_after_seconds,
)
from engine.transport.trio_websocket_transport import TrioWebsocketTransport
from engine.transport.websockets_transport import WebsocketsTransport

__all__ = (
    "DEFAULT_MAX_MESSAGE_SIZE",
    "TRANSPORT_NAMES",
    "CloseInfo",
    "Connection",
    "ConnectionClosedError",
    "HandshakeRejectedError",
    "Transport",
    "TrioWebsocketTransport",
    "WebsocketsTransport",
    "WsEndpoint",
    "judged_dead",
    "parse_ws_url",
    "retry_after_seconds",
    "transport_for",
)


def transport_for(name: str) -> Transport:
    """A transport with default settings, by its name in :data:`TRANSPORT_NAMES`."""
    if name == "trio-websocket":
        return TrioWebsocketTransport()
    if name == "websockets":
        return WebsocketsTransport()
    raise ValueError(
        f"unknown transport {name!r}: choose one of {', '.join(map(repr, TRANSPORT_NAMES))}"
    )
