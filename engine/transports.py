"""Pick a WebSocket transport by name (``EngineConfig.transport``).

Its own module so that the transport seam (:mod:`engine.transport`) does not import the
implementations built on it (:mod:`engine.transport_websockets`): the import graph has no cycle.
"""

from __future__ import annotations

from engine.transport import TRANSPORT_NAMES, Transport, TrioWebsocketTransport
from engine.transport_websockets import WebsocketsTransport

__all__ = ("TRANSPORT_NAMES", "transport_for")


def transport_for(name: str) -> Transport:
    """A transport with default settings, by its name in :data:`TRANSPORT_NAMES`."""
    if name == "trio-websocket":
        return TrioWebsocketTransport()
    if name == "websockets":
        return WebsocketsTransport()
    raise ValueError(
        f"unknown transport {name!r}: choose one of {', '.join(map(repr, TRANSPORT_NAMES))}"
    )
