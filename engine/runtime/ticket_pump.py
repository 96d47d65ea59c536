"""A ticket's receive loop (the pump): receive, ``decode_frame`` once, ``Router.route``, with
no actor hop per message. A frame that cannot be decoded, or of a type the engine does not
model, is counted and skipped (:mod:`engine.observability.frame_report`); an error frame raises
:class:`~engine.errors.ServerError`, which the ticket judges.
"""

from __future__ import annotations

import trio

from engine.errors import ProtocolError, ServerError
from engine.runtime.state import EngineCore
from engine.transport.base import Connection
from engine.wire.decode import decode_reporting
from engine.wire.messages import (
    Candle,
    ErrorReply,
    MyAsset,
    MyOrder,
    Orderbook,
    StatusUp,
    Ticker,
    Trade,
    UnknownMessage,
)

__all__ = ("pump",)

_MESSAGE_TYPES = frozenset({Ticker, Trade, Orderbook, Candle, MyOrder, MyAsset})


async def pump(core: EngineCore, name: str, conn: Connection, generation: int) -> None:
    """Receive, decode once and route every frame of connection ``generation`` of ticket
    ``name`` until the connection ends; an error frame raises ``ServerError``."""
    route = core.router.route
    runtime = core.tickets[name]
    metrics = core.metrics
    received = metrics.received
    now = trio.current_time
    message_types = _MESSAGE_TYPES
    report = metrics.frames
    decode = decode_reporting
    # One socket read can hand out hundreds of frames without a schedule point: yield every
    # ``burst`` frames so a fast reader drains its buffer between them. A quarter of the
    # buffer, so even a reader scheduled after two bursts (Trio may order a batch either
    # way) and a release of held-back trades find room.
    # At most 256 (the default buffer's quarter): a 64 KiB read rarely holds more frames, so
    # the common path pays nothing; small buffers get proportionally shorter bursts.
    burst = max(1, min(256, core.config.subscriber_buffer // 4))
    until_yield = burst
    while True:
        frame = await conn.receive()
        at = now()
        runtime.last_frame = at
        runtime.frames += 1
        until_yield -= 1
        if not until_yield:
            until_yield = burst
            await trio.lowlevel.checkpoint()
        try:
            decoded = decode(frame, report)
        except ProtocolError as exc:
            # One unreadable frame never costs the connection (and every healthy stream
            # on it) a reconnect: it is counted, logged sparingly and skipped.
            report.undecodable_frame(exc, frame, name)
            runtime.frames_skipped += 1
            continue
        kind = type(decoded)
        if kind in message_types:
            route(name, generation, decoded)  # type: ignore[arg-type]
            data_type: str = decoded.type  # type: ignore[union-attr]
            received[data_type] = received.get(data_type, 0) + 1
        elif kind is list:
            for item in decoded:  # type: ignore[union-attr]
                if type(item) in message_types:
                    route(name, generation, item)  # type: ignore[arg-type]
                    item_type: str = item.type  # type: ignore[union-attr]
                    received[item_type] = received.get(item_type, 0) + 1
                elif type(item) is UnknownMessage:
                    report.unknown_type(item.type, name)
                elif type(item) is ErrorReply:
                    raise ServerError(item.name, item.message)
        elif kind is ErrorReply:
            raise ServerError(decoded.name, decoded.message)  # type: ignore[union-attr]
        elif kind is StatusUp:
            received["status"] = received.get("status", 0) + 1
            continue
        elif isinstance(decoded, UnknownMessage):
            report.unknown_type(decoded.type, name)
            runtime.frames_skipped += 1
            continue
        else:
            continue
        if runtime.lost_at is not None:
            metrics.resubscribe_latency.observe(at - runtime.lost_at)
            runtime.lost_at = None
