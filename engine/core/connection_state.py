"""Where a ticket's connection is: one state per ticket, entered by the ticket actor and read by
``metrics()``, ``registry()`` and ``debug_tree()``. Sans-IO."""

from __future__ import annotations

import enum

__all__ = ("ConnectionState",)


class ConnectionState(enum.StrEnum):
    """Where a realtime or private ticket's connection is (``TicketMetrics.state``)."""

    #: Waiting for its turn, the connect limiter, or the WebSocket handshake.
    CONNECTING = "connecting"
    #: Connected; sending its replay (and testing suspect subscriptions one by one).
    REPLAYING = "replaying"
    #: Replay sent: streaming its subscriptions.
    READY = "ready"
    #: Connected and carrying nothing, holding a parking request (soft unsubscribe).
    PARKED = "parked"
    #: Waiting before the next attempt: a restart backoff, or an HTTP 429/418 block.
    BACKING_OFF = "backing_off"
    #: No connection and none wanted (never started, or closed on purpose).
    CLOSED = "closed"
    #: Gave up: restart intensity exceeded, or Upbit refused the API keys. Its subscriptions
    #: failed; a new subscription placed on it starts it again.
    FAILED = "failed"
