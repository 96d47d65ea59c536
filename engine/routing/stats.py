"""The router's bookkeeping per ticket and per subscriber, and the frozen statistics made of it.

Theory of operation
-------------------
Counting on the hot path happens where it is cheapest: per stream and per target of the
compiled index (:mod:`engine.routing.index`), and per ticket in its :class:`TicketState` (which
also holds the ticket's connection generation and open outage). Before a stream's set of
targets changes, :func:`fold` moves its counters into the ticket's ``routed`` and the
subscribers' :class:`SubscriberTotals`; :func:`collect` adds up the totals and the live streams
into a :class:`RouterStatistics`, a frozen view that shares nothing with the router.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType

import attrs

from engine.routing.buffer import BufferStatistics
from engine.routing.index import RouteIndex, Stream
from engine.routing.outages import Outage

__all__ = (
    "RouterStatistics",
    "SubscriberRouteStatistics",
    "SubscriberTotals",
    "TicketRouteStatistics",
    "TicketState",
    "collect",
    "fold",
)


@attrs.define
class TicketState:
    """What the router keeps of one ticket: its connection, its outage and its counters."""

    name: str
    generation: int | None = None
    last_generation: int | None = None
    connected_at: float = 0.0
    outage: Outage | None = None
    routed: dict[str, int] = attrs.Factory(dict)
    unrouted: int = 0
    stale: int = 0
    unwanted_snapshots: int = 0
    held_back: int = 0
    duplicates: int = 0
    books_trimmed: int = 0
    books_short: int = 0
    snapshots_missing: int = 0
    held_dropped: int = 0
    backfill_held: int = 0


@attrs.define
class SubscriberTotals:
    """A subscriber's counters folded out of the streams it read (see :func:`fold`)."""

    routed: dict[str, int] = attrs.Factory(dict)
    held_back: int = 0
    snapshots: int = 0


@attrs.frozen
class TicketRouteStatistics:
    """What the router did with one ticket's frames."""

    ticket: str
    #: The open connection generation, or ``None`` while the ticket is down.
    generation: int | None
    #: Frames of the open generation that found subscribers for their (type, code), per data
    #: type, whether delivered, held back, skipped as duplicates or an unwanted SNAPSHOT.
    routed: Mapping[str, int]
    #: Frames with no subscriber: parking replies, stale frames after a replacement or an
    #: unsubscribe, orderbooks of no wanted level.
    unrouted: int
    #: Frames of a generation other than the open one (or while the ticket was down).
    stale: int
    #: SNAPSHOT frames nobody was waiting for (existing subscribers get no duplicate).
    unwanted_snapshots: int
    #: REALTIME deliveries withheld from subscribers still waiting for their SNAPSHOT.
    held_back: int
    #: Trade deliveries skipped because the subscriber already had that ``sequential_id``.
    duplicates: int
    #: When the current outage began, or ``None`` while connected.
    down_since: float | None
    #: Orderbook deliveries with more rows than the subscriber asked for (trimmed for it), and
    #: with fewer (delivered as they came).
    books_trimmed: int = 0
    books_short: int = 0
    #: SNAPSHOT waits that ran out (:class:`~engine.events.SnapshotMissing` delivered).
    snapshots_missing: int = 0
    #: Frames held back during such waits that were given up for want of room (each
    #: ``SnapshotMissing`` says how many of its stream's).
    held_dropped: int = 0
    #: Live trades held for routes being backfilled (released after the fetched trades).
    backfill_held: int = 0


@attrs.frozen
class SubscriberRouteStatistics:
    """What the router delivered to one subscription (current subscribers only)."""

    subscription_id: str
    #: Messages put into its buffer, per data type.
    routed: Mapping[str, int]
    #: REALTIME frames withheld because its SNAPSHOT had not arrived yet.
    held_back: int
    #: SNAPSHOT waits satisfied.
    snapshots: int
    #: Streams still waiting for their SNAPSHOT.
    waiting: int
    #: The buffer's own counters (conflated, dropped, duplicates skipped, ...).
    buffer: BufferStatistics
    #: Trade streams being backfilled right now (their live trades are held meanwhile).
    filling: int = 0


@attrs.frozen
class RouterStatistics:
    """A frozen view of the router: per ticket and per current subscriber."""

    tickets: Mapping[str, TicketRouteStatistics]
    subscribers: Mapping[str, SubscriberRouteStatistics]
    #: Routes in the published table.
    routes: int
    #: Routes waiting for a SNAPSHOT.
    waiting: int


def fold(
    stream: Stream,
    ticket_state: Callable[[str], TicketState],
    totals: dict[str, SubscriberTotals],
) -> None:
    """Move ``stream``'s counters into its ticket's (got from ``ticket_state``, only if it
    counted anything) and its subscribers' ``totals`` before its routes change or it goes."""
    count = stream.broadcasts + stream.frames
    if count:
        routed = ticket_state(stream.ticket).routed
        routed[stream.data_type] = routed.get(stream.data_type, 0) + count
    for target in stream.targets:
        mine = totals.get(target.subscriber)
        if mine is None:
            mine = totals[target.subscriber] = SubscriberTotals()
        delivered = target.delivered + stream.broadcasts
        if delivered:
            data_type = stream.data_type
            mine.routed[data_type] = mine.routed.get(data_type, 0) + delivered
        mine.held_back += target.held_back
        mine.snapshots += target.snapshots


def collect(
    tickets: Mapping[str, TicketState],
    totals: Mapping[str, SubscriberTotals],
    index: RouteIndex,
) -> RouterStatistics:
    """The counters per ticket and per current subscriber: the folded ``totals`` plus what the
    live streams of ``index`` counted since, frozen."""
    ticket_routed = {name: dict(state.routed) for name, state in tickets.items()}
    sub_routed: dict[str, dict[str, int]] = {}
    sub_held: dict[str, int] = {}
    sub_snapshots: dict[str, int] = {}
    sub_waiting: dict[str, int] = {}
    sub_filling: dict[str, int] = {}
    for sub, mine in totals.items():
        sub_routed[sub] = dict(mine.routed)
        sub_held[sub] = mine.held_back
        sub_snapshots[sub] = mine.snapshots
    for stream in index.streams.values():
        count = stream.broadcasts + stream.frames
        if count:
            routed = ticket_routed.setdefault(stream.ticket, {})
            routed[stream.data_type] = routed.get(stream.data_type, 0) + count
        for target in stream.targets:
            sub = target.subscriber
            delivered = target.delivered + stream.broadcasts
            if delivered:
                routed = sub_routed.setdefault(sub, {})
                routed[stream.data_type] = routed.get(stream.data_type, 0) + delivered
            sub_held[sub] = sub_held.get(sub, 0) + target.held_back
            sub_snapshots[sub] = sub_snapshots.get(sub, 0) + target.snapshots
            sub_waiting[sub] = sub_waiting.get(sub, 0) + target.waiting
            if target.fill is not None:
                sub_filling[sub] = sub_filling.get(sub, 0) + 1
    return RouterStatistics(
        tickets=MappingProxyType(
            {
                name: _ticket_statistics(state, ticket_routed.get(name, {}))
                for name, state in tickets.items()
            }
        ),
        subscribers=MappingProxyType(
            {
                sub: SubscriberRouteStatistics(
                    subscription_id=sub,
                    routed=MappingProxyType(sub_routed.get(sub, {})),
                    held_back=sub_held.get(sub, 0),
                    snapshots=sub_snapshots.get(sub, 0),
                    waiting=sub_waiting.get(sub, 0),
                    filling=sub_filling.get(sub, 0),
                    buffer=buffer.statistics(),
                )
                for sub, buffer in index.buffers.items()
            }
        ),
        routes=len(index.routes),
        waiting=len(index.waiting),
    )


def _ticket_statistics(state: TicketState, routed: dict[str, int]) -> TicketRouteStatistics:
    return TicketRouteStatistics(
        ticket=state.name,
        generation=state.generation,
        routed=MappingProxyType(routed),
        unrouted=state.unrouted,
        stale=state.stale,
        unwanted_snapshots=state.unwanted_snapshots,
        held_back=state.held_back,
        duplicates=state.duplicates,
        down_since=None if state.outage is None else state.outage.start,
        books_trimmed=state.books_trimmed,
        books_short=state.books_short,
        snapshots_missing=state.snapshots_missing,
        held_dropped=state.held_dropped,
        backfill_held=state.backfill_held,
    )
