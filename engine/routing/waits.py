"""The router's SNAPSHOT waits off the hot path: arming them on a new connection, their
deadlines, and ending them without a SNAPSHOT.

Theory of operation
-------------------
A route waiting for its SNAPSHOT holds its stream's REALTIME frames back (the hot path,
``Router.route``, keeps them in the route's :class:`~engine.routing.index.Target`; a SNAPSHOT
ends the wait there). Here is the rest of a wait's life:

- :func:`rearm`: a new connection's first request asks a SNAPSHOT of every stream, so every
  public route on the ticket waits again, its deadline not yet running.
- :func:`mark_sent`: a request went out; the waits it covers count their deadline from then.
  :func:`next_deadline` is the earliest one to run out.
- :func:`expire`: the waits whose deadline passed end: each subscriber gets a
  :class:`~engine.events.SnapshotMissing` and what was held back for it (as much as its buffer
  has room for), then the stream's REALTIME frames.
- :func:`stop_waiting`: a wait ends without a SNAPSHOT (a late SNAPSHOT is not delivered).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from datetime import UTC, datetime

from engine.core.keys import StreamKey
from engine.events import SnapshotMissing
from engine.routing.index import PRIVATE, RouteIndex, Stream, Target
from engine.routing.table import RouteId
from engine.wire.messages import Message, Trade

__all__ = ("expire", "mark_sent", "next_deadline", "rearm", "stop_waiting")


def rearm(streams: Iterable[Stream], waiting: set[RouteId]) -> None:
    """Every public route of ``streams`` (a ticket's, on a new connection) waits for a SNAPSHOT
    again, with no request sent yet and nothing held back; ``waiting`` gains their ids."""
    for stream in streams:
        if stream.kind == PRIVATE:
            continue
        for target in stream.targets:
            # The deadline runs from the new connection's replay; frames held back belong
            # to the old connection.
            target.sent_at = None
            target.held = None
            if not target.waiting:
                target.waiting = True
                stream.waiting += 1
                waiting.add(target.route_id)
        stream.refresh()


def stop_waiting(index: RouteIndex, route_id: RouteId) -> bool:
    """Stop ``route_id`` waiting for its SNAPSHOT; returns whether it was waiting."""
    waiting = index.waiting
    if route_id not in waiting:
        return False
    ticket, stream_key, _ = route_id
    stream = index.streams[(ticket, stream_key.data_type, stream_key.code)]
    for target in stream.targets:
        if target.route_id == route_id:
            target.waiting = False
            stream.waiting -= 1
    waiting.discard(route_id)
    stream.refresh()
    return True


def mark_sent(
    index: RouteIndex, ticket: str, at: float, keys: Collection[StreamKey] | None
) -> None:
    """Every wait on ``ticket`` for one of ``keys`` (None: every key) not yet covered by a
    request counts its deadline from ``at``."""
    for stream in index.by_ticket.get(ticket, {}).values():
        if not stream.waiting:
            continue
        for target in stream.targets:
            unsent = target.waiting and target.sent_at is None
            if unsent and (keys is None or target.key in keys):
                target.sent_at = at


def next_deadline(index: RouteIndex, ticket: str, timeout: float) -> float | None:
    """When the earliest sent wait on ``ticket`` runs out, if any is open."""
    earliest: float | None = None
    for stream in index.by_ticket.get(ticket, {}).values():
        if not stream.waiting:
            continue
        for target in stream.targets:
            if target.waiting and target.sent_at is not None:
                due = target.sent_at + timeout
                if earliest is None or due < earliest:
                    earliest = due
    return earliest


Divert = Callable[[Stream, Target, list[Message]], bool]
"""``divert(stream, target, held)``: take over what an ended wait held back instead of its
delivery (a trade route to backfill holds it); False: deliver as usual."""


def expire(
    index: RouteIndex, ticket: str, now: float, timeout: float, divert: Divert | None = None
) -> tuple[list[RouteId], int]:
    """End every wait on ``ticket`` whose request went out ``timeout`` or more seconds before
    ``now`` (see the module docstring). Returns the routes whose wait ended and how many
    held-back frames were given up for want of room."""
    ended: list[RouteId] = []
    given_up = 0
    for stream in list(index.by_ticket.get(ticket, {}).values()):
        if not stream.waiting:
            continue
        for target in stream.targets:
            sent_at = target.sent_at
            # The same sum next_deadline gives, so a wake-up at it always ends the wait
            # (``now - sent_at`` can fall one ulp short of ``timeout``).
            if not target.waiting or sent_at is None or now < sent_at + timeout:
                continue
            ended.append(target.route_id)
            key = target.key
            release, dropped = _releasable(target)
            given_up += dropped
            target.buffer.put_event(
                SnapshotMissing(
                    ticket, key.data_type, key.code, now, now - sent_at, dropped, utc=_utc()
                )
            )
            if divert is None or not divert(stream, target, release):
                _release_held(stream, target, release)
    for route_id in ended:
        stop_waiting(index, route_id)
    return ended, given_up


def _utc() -> datetime:
    # Wall-clock time for events (Trio's clock has no relation to it); reading it is no I/O.
    return datetime.now(UTC)


def _releasable(target: Target) -> tuple[list[Message], int]:
    """What ``target`` held back that its buffer has room for (at most half the room left,
    the latest first kept: all of a subscriber's waits may end at once), and how many it
    gave up."""
    held, target.held = target.held or [], None
    buffer = target.buffer
    room = max(0, buffer.max_size - len(buffer)) // 2
    keep = held[len(held) - room :] if room < len(held) else held
    dropped = target.held_dropped + len(held) - len(keep)
    target.held_dropped = 0
    return keep, dropped


def _release_held(stream: Stream, target: Target, held: list[Message]) -> None:
    """Deliver what ``target`` held back while it waited: without a SNAPSHOT, those frames
    are the stream's data, and nothing is withheld past the deadline."""
    window = stream.window
    for msg in held:
        if window is not None and isinstance(msg, Trade):
            sequential_id = msg.sequential_id
            seen = window.ids.get(sequential_id)
            if seen is not None and target.subscriber in seen:
                continue
            window.add(sequential_id, (*(seen or ()), target.subscriber))
        target.put(msg)
        target.delivered += 1
