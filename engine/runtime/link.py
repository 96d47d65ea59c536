"""What every ticket does with its connection, whatever it asks for: wait for a connect slot,
keep the connection alive, and read frames. The realtime/private tickets and the snapshot tickets
differ in what they send and in what they do with a decoded message, not in these.

- :func:`wait_connect_slot`: honour a 429/418 block engine-wide, then take a slot of the shared
  connect limiter (Upbit counts connects per IP), and check the block again after the wait;
- :func:`keepalive`: a protocol ping every ``ping_interval``, a dead connection when no pong comes
  within ``ping_timeout``;
- :func:`watch_stall`: a stalled connection found in seconds (:mod:`engine.core.stall`);
- :func:`read_frames`: receive, decode once, hand each data message to the ticket's ``deliver``;
  a frame that cannot be decoded, or of a type the engine does not model, is counted and skipped
  (one bad frame never costs the streams on the connection a reconnect); an error frame raises
  :class:`~engine.errors.ServerError` for the ticket to judge.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import NoReturn, Protocol

import trio

from engine.core.ratelimit import RateLimitBackoff, SlidingWindowLimiter
from engine.core.stall import StallDetector, Verdict
from engine.errors import ConnectionDeadError, ConnectionFailedError, ProtocolError, ServerError
from engine.observability.frame_report import FrameReport
from engine.runtime.pacing import acquire_slot
from engine.transport.base import Connection
from engine.wire.decode import decode_reporting
from engine.wire.messages import (
    Candle,
    ErrorReply,
    Message,
    MyAsset,
    MyOrder,
    Orderbook,
    StatusUp,
    Ticker,
    Trade,
    UnknownMessage,
)

__all__ = (
    "FrameCounts",
    "keepalive",
    "probe",
    "read_frames",
    "wait_connect_slot",
    "watch_stall",
)

_MESSAGE_TYPES = frozenset({Ticker, Trade, Orderbook, Candle, MyOrder, MyAsset})


class FrameCounts(Protocol):
    """Where :func:`read_frames` counts what it read."""

    #: Trio time of the last frame received.
    last_frame: float | None
    frames: int
    #: Frames skipped: undecodable, or of a type the engine does not model.
    frames_skipped: int
    #: When an abnormal loss began, until the restored connection's first message (then
    #: ``on_restored`` is told and it is cleared); stays None where outages are not measured.
    lost_at: float | None


async def wait_connect_slot(
    rate_backoff: RateLimitBackoff,
    limiter: SlidingWindowLimiter,
    *,
    before_round: Callable[[], Awaitable[None]] | None = None,
    on_blocked: Callable[[float], None] | None = None,
) -> None:
    """Return when a connect may be made now: no 429/418 block in force, and a slot of the
    connect limiter taken at this moment.

    ``before_round`` runs at the start of every round (a realtime ticket waits for its turn in
    ticket order there); ``on_blocked`` is told how many seconds a block still holds.
    """
    while True:
        if before_round is not None:
            await before_round()
        now = trio.current_time()
        blocked = rate_backoff.blocked_until(now)
        if blocked > now:
            if on_blocked is not None:
                on_blocked(blocked - now)
            await trio.sleep_until(blocked)
            continue
        await acquire_slot(limiter)
        # A block may have begun while this ticket waited for the slot.
        if rate_backoff.blocked_until(trio.current_time()) <= trio.current_time():
            return


async def probe(conn: Connection, pong_within: float, what: str = "the connection") -> None:
    """One protocol ping; ``ConnectionFailedError`` when no pong comes within ``pong_within``."""
    with trio.move_on_after(pong_within):
        await conn.ping()
        return
    raise ConnectionDeadError(f"no pong within {pong_within:g} s: {what} is dead")


async def keepalive(
    conn: Connection,
    *,
    interval: float,
    pong_within: float,
    what: str = "the connection",
    on_round: Callable[[float], None] | None = None,
) -> NoReturn:
    """Ping every ``interval`` seconds until the connection fails (no pong within
    ``pong_within``). ``on_round`` is called with the time at the start of each round."""
    while True:
        await trio.sleep(interval)
        if on_round is not None:
            on_round(trio.current_time())
        await probe(conn, pong_within, what)


async def watch_stall(
    conn: Connection,
    detector: StallDetector,
    counts: FrameCounts,
    *,
    check_interval: float,
    pong_within: float,
    on_probe: Callable[[], None] | None = None,
) -> NoReturn:
    """Judge the connection's silence every ``check_interval`` (see
    :mod:`engine.core.stall`): probe a busy connection that went silent, and end a stalled one
    with ``ConnectionFailedError`` naming the silence."""
    detector.start(trio.current_time(), counts.frames)
    while True:
        await trio.sleep(check_interval)
        judged = detector.observe(trio.current_time(), counts.frames, counts.last_frame)
        if judged.verdict is Verdict.STALLED:
            raise ConnectionDeadError(judged.reason)
        if judged.verdict is Verdict.PROBE:
            if on_probe is not None:
                on_probe()
            try:
                await probe(conn, pong_within)
            except ConnectionFailedError:
                silent = trio.current_time() - (counts.last_frame or 0.0)
                raise ConnectionDeadError(
                    detector.stalled_after_probe(silent, pong_within)
                ) from None


async def read_frames(
    conn: Connection,
    deliver: Callable[[str, int, Message], object],
    *,
    name: str,
    generation: int,
    counts: FrameCounts,
    report: FrameReport,
    received: dict[str, int],
    burst: int,
    on_restored: Callable[[float], object] | None = None,
) -> NoReturn:
    """Receive, decode once and ``deliver(name, generation, message)`` every data message
    until the connection ends (the signature of ``Router.route``, called with no wrapper).

    ``received`` counts messages by type (and Upbit's status frames as ``status``). One socket
    read can hand out hundreds of frames without a schedule point, so the loop yields every
    ``burst`` frames to let readers drain their buffers between bursts. The first message after
    ``counts.lost_at`` was set calls ``on_restored`` with the outage's length.
    """
    now = trio.current_time
    message_types = _MESSAGE_TYPES
    decode = decode_reporting
    until_yield = burst
    while True:
        frame = await conn.receive()
        counts.last_frame = at = now()
        counts.frames += 1
        until_yield -= 1
        if not until_yield:
            until_yield = burst
            await trio.lowlevel.checkpoint()
        try:
            decoded = decode(frame, report)
        except ProtocolError as exc:
            report.undecodable_frame(exc, frame, name)
            counts.frames_skipped += 1
            continue
        kind = type(decoded)
        if kind in message_types:
            deliver(name, generation, decoded)  # type: ignore[arg-type]
            data_type: str = decoded.type  # type: ignore[union-attr]
            received[data_type] = received.get(data_type, 0) + 1
        elif kind is list:
            for item in decoded:  # type: ignore[union-attr]
                if type(item) in message_types:
                    deliver(name, generation, item)  # type: ignore[arg-type]
                    item_type: str = item.type  # type: ignore[union-attr]
                    received[item_type] = received.get(item_type, 0) + 1
                elif type(item) is UnknownMessage:
                    report.unknown_type(item.type, name)
                elif type(item) is ErrorReply:
                    report.error_frame(name, item.name, item.message)
                    raise ServerError(item.name, item.message)
        elif kind is ErrorReply:
            report.error_frame(name, decoded.name, decoded.message)  # type: ignore[union-attr]
            raise ServerError(decoded.name, decoded.message)  # type: ignore[union-attr]
        elif kind is StatusUp:
            received["status"] = received.get("status", 0) + 1
            continue
        elif isinstance(decoded, UnknownMessage):
            report.unknown_type(decoded.type, name)
            counts.frames_skipped += 1
            continue
        else:
            continue
        if counts.lost_at is not None:
            lost_at, counts.lost_at = counts.lost_at, None
            if on_restored is not None:
                on_restored(at - lost_at)
