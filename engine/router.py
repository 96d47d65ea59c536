"""The router: fan-out of decoded messages from the tickets to the subscribers' buffers.

Theory of operation
-------------------
The hot path is ``ticket pump -> decode once -> Router.route -> SubscriberBuffer.put_nowait``.
There is no task or actor hop per message: a ticket calls :meth:`Router.route` itself, and
``route`` never blocks, so one slow subscriber never delays another or the pump.

*What to deliver* comes from the registry: an immutable :class:`RoutingTable` swapped in whole
by :meth:`Router.publish`, or a change to the table in force (routes removed and added) through
:meth:`Router.update`, which costs in proportion to the change and means exactly what publishing
the resulting table would. The router compiles the routes into one entry per
``(ticket, type, code)`` (one dict lookup per frame; :mod:`engine._route_index`) and keeps the
little mutable state the table cannot know:

- **generations**: :meth:`ticket_connected` opens a connection generation, :meth:`ticket_lost`
  closes it. Frames of any other generation are stale and dropped.
- **SNAPSHOT waits**. Upbit sends one SNAPSHOT per (type, code) whenever a stream is requested
  without ``is_only_realtime``, then REALTIME frames. A SNAPSHOT frame goes only to the
  subscribers *waiting* for one, and satisfies their wait (``on_snapshot`` is told); subscribers
  already streaming never get a duplicate. A REALTIME frame goes to every subscriber of the
  stream **except those still waiting**: it is held back (dropped for them and counted), so each
  subscriber's stream of a (type, code) begins with its SNAPSHOT. Nothing is lost by this: on a
  fresh request Upbit sends the SNAPSHOT first, and a REALTIME frame that arrives before it
  predates the request (or is a stale frame of the connection's previous set).

  A wait is *armed* by a table whose route carries ``snapshot=True`` when the previous table did
  not (an edge, not a level): the registry may keep listing a wait until it has processed the
  router's report, without re-arming a wait already satisfied. Publish the table *before*
  sending the request that asks Upbit for that SNAPSHOT. A new connection re-arms every public
  route on its ticket (its first request, the replay, asks a SNAPSHOT of every stream). Private
  streams (myOrder, myAsset) have no SNAPSHOT: every frame goes to every subscriber.
- **outages**: :meth:`ticket_lost` puts an :class:`~engine.events.Interrupted` into every
  affected subscriber's buffer; the next :meth:`ticket_connected` puts one
  :class:`~engine.events.Gap` (start and end) there, before anything of the new connection, so
  the order each subscriber sees is Interrupted, Gap, SNAPSHOT, REALTIME.
- **trade de-duplication** by ``sequential_id``, per subscriber, across tickets and reconnects,
  in a bounded window per code (:mod:`engine._route_dedupe`).

Frames with no subscriber (a parked ticket's parking reply, the stale frames Upbit sends after a
replacement, anything after an unsubscribe) are dropped and counted per ticket. An unsubscribe is
immediate: once the table without the route is published, no further frame reaches it, including
frames already decoded but not yet routed.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, KeysView, Mapping
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Final, TypeAlias

import attrs

from engine._book_rows import trim_rows
from engine._plan_keys import StreamKey
from engine._route_buffer import BufferStatistics, StreamItem, SubscriberBuffer
from engine._route_dedupe import TradeWindow
from engine._route_index import (
    BOOK,
    FAST_ALL,
    FAST_REALTIME,
    FAST_TRADE,
    PRIVATE,
    RouteIndex,
    Stream,
    Target,
)
from engine._route_table import Route, RouteId, RoutingTable, StreamIndex
from engine.events import Gap, Interrupted, SnapshotMissing
from engine.messages import Message, MyAsset, Trade

__all__ = (
    "BufferStatistics",
    "Route",
    "RouteId",
    "Router",
    "RouterStatistics",
    "RoutingTable",
    "SnapshotCallback",
    "StreamIndex",
    "StreamItem",
    "SubscriberBuffer",
    "SubscriberRouteStatistics",
    "TicketRouteStatistics",
)

SnapshotCallback: TypeAlias = Callable[[str, StreamKey, str], None]
"""``on_snapshot(ticket, key, subscription_id)``: a subscriber's SNAPSHOT wait was satisfied."""

#: Trades remembered per code for de-duplication.
DEFAULT_DEDUPE_WINDOW: Final = 256


@attrs.define
class _Outage:
    start: float
    cause: str
    #: subscription id -> (its buffer, the codes it had on the ticket)
    affected: dict[str, tuple[SubscriberBuffer, tuple[str, ...]]]
    #: subscription id -> the streams it had on the ticket (a stream that leaves the ticket
    #: while it is down ends the outage for its code: see ``Router._settle_moved``)
    keys: dict[str, frozenset[StreamKey]] = attrs.Factory(dict)
    #: subscription id -> when its outage began, for subscribers that joined the ticket while
    #: it was down (the others share ``start``)
    starts: dict[str, float] = attrs.Factory(dict)

    def start_of(self, sub: str) -> float:
        return self.starts.get(sub, self.start)


@attrs.define
class _TicketState:
    name: str
    generation: int | None = None
    last_generation: int | None = None
    connected_at: float = 0.0
    outage: _Outage | None = None
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


@attrs.define
class _SubscriberTotals:
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


@attrs.frozen
class RouterStatistics:
    """A frozen view of the router: per ticket and per current subscriber."""

    tickets: Mapping[str, TicketRouteStatistics]
    subscribers: Mapping[str, SubscriberRouteStatistics]
    #: Routes in the published table.
    routes: int
    #: Routes waiting for a SNAPSHOT.
    waiting: int


def _utc() -> datetime:
    # Wall-clock time for events (Trio's clock has no relation to it); reading it is no I/O.
    return datetime.now(UTC)


def _codes_of(keys: list[StreamKey]) -> tuple[str, ...]:
    return tuple(sorted({key.code for key in keys if key.code}))


class Router:
    """Routes decoded messages to subscriber buffers (see the module's theory of operation).

    ``on_snapshot(ticket, key, subscription_id)`` is called synchronously, from inside
    :meth:`route`, each time a subscriber's SNAPSHOT wait is satisfied; it must be cheap and must
    not raise (casting to the registry's mailbox is the intended use). ``dedupe_window`` is how
    many trade ids per code are remembered for de-duplication.
    """

    def __init__(
        self,
        *,
        on_snapshot: SnapshotCallback | None = None,
        dedupe_window: int = DEFAULT_DEDUPE_WINDOW,
    ) -> None:
        TradeWindow(dedupe_window)  # validates
        self._on_snapshot = on_snapshot
        self._index = RouteIndex(dedupe_window)
        # Direct references to the index's dicts (edited in place, never replaced): the hot
        # path saves an attribute lookup per frame.
        self._streams = self._index.streams
        self._waiting = self._index.waiting
        self._table: RoutingTable | None = RoutingTable()
        self._revision = 0
        self._tickets: dict[str, _TicketState] = {}
        self._totals: dict[str, _SubscriberTotals] = {}

    # ------------------------------------------------------------------------------------------
    # Table

    @property
    def table(self) -> RoutingTable:
        """The table in force (built on demand after :meth:`update`, which costs a pass over
        every route)."""
        table = self._table
        if table is None:
            table = self._table = RoutingTable(self._index.routes.values())
        return table

    @property
    def route_ids(self) -> KeysView[RouteId]:
        """The ids of the routes in force: a live, read-only view."""
        return self._index.routes.keys()

    @property
    def revision(self) -> int:
        """How many times the table in force was replaced or changed (publish or update)."""
        return self._revision

    @property
    def waiting(self) -> frozenset[RouteId]:
        """Routes waiting for a SNAPSHOT right now."""
        return frozenset(self._waiting)

    def publish(self, table: RoutingTable) -> None:
        """Swap in ``table``; from the next :meth:`route` call on, only it counts.

        Waits carry over for routes that stay; a route flagged ``snapshot=True`` that was not
        flagged in the previous table arms a new wait. A subscriber whose streams leave a ticket
        that is down receives an open-ended :class:`~engine.events.Gap` (``end=None``) at once
        (none reaches it if its buffer is already closed). Costs a pass over the whole table:
        for a small change to a large table, :meth:`update` is the cheap way.
        """
        if not isinstance(table, RoutingTable):
            raise TypeError(f"publish takes a RoutingTable, not {type(table).__name__}")
        for stream in self._streams.values():
            self._fold(stream)
        self._index.rebuild(table)
        subscribers = self._index.buffers
        self._totals = {sub: totals for sub, totals in self._totals.items() if sub in subscribers}
        self._table = table
        self._revision += 1
        self._settle_outages()
        self._settle_moved(name for name, state in self._tickets.items() if state.outage)

    def update(self, *, remove: Iterable[RouteId] = (), add: Iterable[Route] = ()) -> None:
        """Change the table in force: remove the routes ``remove`` (by id), add ``add``.

        The same as publishing the table that results, where the routes left in place keep
        their flags, but at a cost in proportion to the change rather than to the table: only
        the streams of the routes named are touched. A route added afresh with
        ``snapshot=True`` arms a wait. A route both removed and added is replaced as if it had
        stayed across a publish: its wait carries over, and a ``snapshot=True`` its old version
        lacked arms one. Raises ``ValueError``, changing nothing, if a removed route is not in
        the table, an added one already is (and is not removed), or a subscription would have
        two buffers.
        """
        removing = list(remove)
        adding = list(add)
        problems = self._index.problems(removing, adding)
        if problems:
            raise ValueError("invalid routing update: " + "; ".join(problems))
        if not removing and not adding:
            return
        left, subs_gone = self._index.apply(removing, adding, self._fold)
        for sub in subs_gone:
            self._totals.pop(sub, None)
        self._table = None
        self._revision += 1
        if left:
            self._settle_left(left)
        touched = {route_id[0] for route_id in removing}
        # Ticket order, as a full publish goes, so both ways give the same events in order.
        self._settle_moved(name for name in self._tickets if name in touched)

    def _settle_outages(self) -> None:
        outages = [state for state in self._tickets.values() if state.outage is not None]
        if not outages:
            return
        ticket_subs = self._index.ticket_subs
        for state in outages:
            outage = state.outage
            assert outage is not None
            here = ticket_subs.get(state.name, {})
            for sub in [sub for sub in outage.affected if sub not in here]:
                self._gap_left(state.name, outage, sub)

    def _settle_left(self, left: list[tuple[str, str]]) -> None:
        """Gaps for subscribers whose last route on a ticket that is down just went."""
        candidates: dict[str, list[str]] = {}
        for ticket, sub in left:
            candidates.setdefault(ticket, []).append(sub)
        ticket_subs = self._index.ticket_subs
        # Ticket order, as a full settle would go, so a subscriber leaving several tickets that
        # are down sees their gaps in the same order either way.
        for state in self._tickets.values():
            outage = state.outage
            if outage is None or state.name not in candidates:
                continue
            here = ticket_subs.get(state.name, {})
            for sub in candidates[state.name]:
                if sub not in here and sub in outage.affected:
                    self._gap_left(state.name, outage, sub)

    def _settle_moved(self, tickets: Iterable[str]) -> None:
        """Gaps for streams that left a ticket while it is down, for subscribers that still
        read other streams there.

        Such a stream goes on elsewhere (another ticket, where it gets its own SNAPSHOT), so
        its outage is over for the subscriber: a Gap with ``end=None`` for its code comes now,
        before anything of the stream's new home, and the Gap at the ticket's reconnect covers
        the codes that stayed. Interrupted, Gap, SNAPSHOT, REALTIME holds per code.
        """
        for name in tickets:
            state = self._tickets.get(name)
            outage = None if state is None else state.outage
            if outage is None or not outage.affected:
                continue
            here: dict[str, set[StreamKey]] = {}
            for stream in self._index.by_ticket.get(name, {}).values():
                for target in stream.targets:
                    here.setdefault(target.subscriber, set()).add(target.key)
            for sub, (buffer, codes) in list(outage.affected.items()):
                had = outage.keys.get(sub, frozenset())
                moved = {key.code for key in had - here.get(sub, set()) if key.code}
                if not moved or not codes:
                    continue
                gone = tuple(code for code in codes if code in moved)
                if not gone:
                    continue
                start = outage.start_of(sub)
                buffer.put_event(Gap(name, start, None, outage.cause, gone, utc=_utc()))
                remaining = tuple(code for code in codes if code not in moved)
                outage.keys[sub] = frozenset(key for key in had if key.code not in moved)
                if remaining:
                    outage.affected[sub] = (buffer, remaining)
                else:
                    del outage.affected[sub]

    @staticmethod
    def _gap_left(ticket: str, outage: _Outage, sub: str) -> None:
        # Closed buffers (unsubscribed) drop the event; live ones learn the gap ended for them
        # here, before any SNAPSHOT their streams' new ticket sends.
        buffer, codes = outage.affected.pop(sub)
        start = outage.start_of(sub)
        buffer.put_event(Gap(ticket, start, None, outage.cause, codes, utc=_utc()))

    def end_wait(self, route_id: RouteId) -> bool:
        """Stop waiting for the SNAPSHOT of ``route_id`` (``(ticket, key, subscription id)``):
        its REALTIME frames flow from now on, and a late SNAPSHOT is not delivered to it.

        For a wait no SNAPSHOT will end, such as one that did not come within the snapshot
        timeout; otherwise the route would hold back its REALTIME frames for good. Returns
        whether the route was waiting.
        """
        if route_id not in self._waiting:
            return False
        ticket, stream_key, _ = route_id
        stream = self._streams[(ticket, stream_key.data_type, stream_key.code)]
        for target in stream.targets:
            if target.route_id == route_id:
                target.waiting = False
                stream.waiting -= 1
        self._waiting.discard(route_id)
        stream.refresh()
        return True

    # ------------------------------------------------------------------------------------------
    # Connections

    def _state(self, ticket: str) -> _TicketState:
        state = self._tickets.get(ticket)
        if state is None:
            state = self._tickets[ticket] = _TicketState(ticket)
        return state

    def ticket_connected(self, ticket: str, generation: int, *, at: float) -> bool:
        """Connection ``generation`` of ``ticket`` is up; call it before sending its first
        request. From now on only frames of this generation are routed from ``ticket``.

        If an outage was open (:meth:`ticket_lost`), it ends at ``at``: every subscriber it
        affected that still reads from ``ticket`` receives a :class:`~engine.events.Gap`. Every
        public route on ``ticket`` waits for a SNAPSHOT again, since a new connection's first
        request asks one for every stream. A generation not above every one seen before is stale:
        nothing changes and False is returned. A still-open older generation counts as lost,
        with its connect time as the (conservative) start of the outage.
        """
        state = self._state(ticket)
        if state.last_generation is not None and generation <= state.last_generation:
            return False
        if state.generation is not None:
            self.ticket_lost(
                ticket,
                state.generation,
                f"connection generation {state.generation} was replaced by generation "
                f"{generation} before its loss was reported",
                at=state.connected_at,
            )
        state.generation = generation
        state.last_generation = generation
        state.connected_at = at
        outage, state.outage = state.outage, None
        if outage is not None and outage.affected:
            here = self._index.ticket_subs.get(ticket, {})
            for sub, (buffer, codes) in outage.affected.items():
                if sub in here:
                    buffer.put_event(
                        Gap(ticket, outage.start_of(sub), at, outage.cause, codes, utc=_utc())
                    )
        for stream in self._index.by_ticket.get(ticket, {}).values():
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
                    self._waiting.add(target.route_id)
            stream.refresh()
        return True

    def ticket_lost(self, ticket: str, generation: int, cause: str, *, at: float) -> bool:
        """Connection ``generation`` of ``ticket`` ended at ``at`` because of ``cause``.

        Its frames are stale from now on, and every subscriber reading from ``ticket`` receives an
        :class:`~engine.events.Interrupted`. Returns False, changing nothing, if ``generation``
        is not the open one (a late report from an older connection).
        """
        state = self._tickets.get(ticket)
        if state is None or state.generation is None or state.generation != generation:
            return False
        state.generation = None
        keys: dict[str, list[StreamKey]] = {}
        buffers: dict[str, SubscriberBuffer] = {}
        for stream in self._index.by_ticket.get(ticket, {}).values():
            for target in stream.targets:
                keys.setdefault(target.subscriber, []).append(target.key)
                buffers[target.subscriber] = target.buffer
        affected = {sub: (buffers[sub], _codes_of(found)) for sub, found in keys.items()}
        state.outage = _Outage(
            start=at,
            cause=cause,
            affected=affected,
            keys={sub: frozenset(found) for sub, found in keys.items()},
        )
        for buffer, codes in affected.values():
            buffer.put_event(Interrupted(ticket, at, cause, codes, utc=_utc()))
        return True

    def connect_failed(self, ticket: str, cause: str, *, at: float) -> None:
        """``ticket`` could not connect (or is held back from connecting) because of ``cause``.

        While it has no connection, its subscribers are in an outage like after a loss: each
        one not yet told receives an :class:`~engine.events.Interrupted` now (a subscription
        whose first connection fails hears of it, instead of waiting in silence), and the next
        :meth:`ticket_connected` brings their Gap. Nothing happens while a connection is open.
        """
        state = self._state(ticket)
        if state.generation is not None:
            return
        if state.outage is None:
            state.outage = _Outage(start=at, cause=cause, affected={})
        self._join_outage(state, state.outage, at, cause)

    def join_outages(self, *, at: float) -> None:
        """Tell subscribers that were placed on a ticket while it is down (or whose streams
        there grew): an :class:`~engine.events.Interrupted` for what they newly have on it.
        Call it after changing the table; costs nothing while every ticket is connected."""
        for state in self._tickets.values():
            if state.outage is not None:
                self._join_outage(state, state.outage, at, None)

    def _join_outage(
        self, state: _TicketState, outage: _Outage, at: float, cause: str | None
    ) -> None:
        here: dict[str, tuple[SubscriberBuffer, set[StreamKey]]] = {}
        for stream in self._index.by_ticket.get(state.name, {}).values():
            for target in stream.targets:
                here.setdefault(target.subscriber, (target.buffer, set()))[1].add(target.key)
        for sub, (buffer, keys) in here.items():
            had = outage.keys.get(sub, frozenset())
            if keys <= had:
                continue
            known = outage.affected.get(sub)
            if known is None:
                codes = _codes_of(list(keys - had))
                outage.starts[sub] = at
            else:
                codes = tuple(code for code in _codes_of(list(keys - had)) if code not in known[1])
                if not codes:
                    outage.keys[sub] = had | keys
                    continue
            outage.keys[sub] = had | keys
            merged = tuple(sorted({*codes, *(known[1] if known else ())}))
            outage.affected[sub] = (buffer, merged)
            buffer.put_event(Interrupted(state.name, at, cause or outage.cause, codes, utc=_utc()))

    # ------------------------------------------------------------------------------------------
    # Hot path

    def route(self, ticket: str, generation: int, msg: Message) -> int:
        """Deliver ``msg``, received on connection ``generation`` of ``ticket``, to the
        subscribers that want it; returns how many buffers it was put into. Never blocks."""
        state = self._tickets.get(ticket)
        if state is None or state.generation != generation:
            self._state(ticket).stale += 1
            return 0
        data_type = msg.type
        code = "" if type(msg) is MyAsset else msg.code  # type: ignore[union-attr]
        stream = self._streams.get((ticket, data_type, code))
        if stream is None:
            if data_type == "myOrder" and code:
                # myOrder subscribers of every market (code "") read each market's frames.
                every = self._streams.get((ticket, "myOrder", ""))
                if every is not None:
                    return self._broadcast(every, msg)
            state.unrouted += 1
            return 0
        mode = stream.mode
        if mode == FAST_REALTIME:
            if msg.stream_type == "REALTIME":
                for put in stream.puts:
                    put(msg)
                stream.broadcasts += 1
                return len(stream.puts)
        elif mode == FAST_TRADE:
            if msg.stream_type == "REALTIME":
                sequential_id = msg.sequential_id  # type: ignore[union-attr]
                window = stream.window
                assert window is not None
                if sequential_id not in window.ids:
                    for put in stream.puts:
                        put(msg)
                    stream.broadcasts += 1
                    window.add(sequential_id, stream.subscribers)
                    return len(stream.puts)
        elif mode == FAST_ALL:
            delivered = self._broadcast(stream, msg)
            if data_type == "myOrder" and code:
                every = self._streams.get((ticket, "myOrder", ""))
                if every is not None:
                    delivered += self._broadcast(every, msg)
            return delivered
        return self._route_general(state, stream, msg)

    @staticmethod
    def _broadcast(stream: Stream, msg: Message) -> int:
        for put in stream.puts:
            put(msg)
        stream.broadcasts += 1
        return len(stream.puts)

    def _route_general(self, state: _TicketState, stream: Stream, msg: Message) -> int:
        """Every case the fast paths leave: SNAPSHOTs, waits, orderbook filters, duplicates."""
        stream.frames += 1
        snapshot = msg.stream_type != "REALTIME"
        kind = stream.kind
        rows: int | None = None
        level: float | None = None
        trimmed: dict[int, Message] = {}
        if kind == BOOK:
            rows = len(msg.orderbook_units)  # type: ignore[union-attr]
            level = msg.level  # type: ignore[union-attr]
        window = stream.window
        sequential_id = 0
        seen: tuple[str, ...] | None = None
        if window is not None:
            sequential_id = msg.sequential_id  # type: ignore[union-attr]
            seen = window.ids.get(sequential_id)
        matched = False
        satisfied: list[Target] = []
        got: list[str] = []
        for target in stream.targets:
            # Orderbooks match by (code, level), never by row count: Upbit has sent other
            # depths than asked (docs/UPBIT.md#drift-history).
            if rows is not None and target.level != level:
                continue
            matched = True
            if snapshot:
                if not target.waiting:
                    continue
                target.waiting = False
                target.held = None  # what was held back predates the SNAPSHOT
                target.snapshots += 1
                stream.waiting -= 1
                self._waiting.discard(target.route_id)
                satisfied.append(target)
            elif target.waiting:
                target.held_back += 1
                state.held_back += 1
                if seen is None or target.subscriber not in seen:
                    # Kept for the case the SNAPSHOT never comes (see expire_waits).
                    # Not counted as trimmed or short: it is not delivered (yet).
                    target.hold(self._view(msg, rows, target, trimmed, None), window is not None)
                continue
            if seen is not None and target.subscriber in seen:
                target.buffer.count_duplicate()
                state.duplicates += 1
                continue
            target.put(self._view(msg, rows, target, trimmed, state))
            target.delivered += 1
            got.append(target.subscriber)
        if not matched:
            state.unrouted += 1
        elif snapshot and not satisfied:
            state.unwanted_snapshots += 1
        if window is not None and got:
            window.add(sequential_id, tuple(got))
        if satisfied:
            stream.refresh()
            callback = self._on_snapshot
            if callback is not None:
                for target in satisfied:
                    callback(stream.ticket, target.key, target.subscriber)
        return len(got)

    @staticmethod
    def _view(
        msg: Message,
        rows: int | None,
        target: Target,
        trimmed: dict[int, Message],
        state: _TicketState | None,
    ) -> Message:
        """``msg`` (an orderbook ``rows`` deep, or ``rows`` None) as ``target`` receives it:
        trimmed to the rows it asked for (one copy per depth and frame, kept in ``trimmed``), and
        counted in ``state`` as trimmed or short unless ``state`` is None."""
        wanted = target.rows
        if rows is None or wanted is None or rows == wanted:
            return msg
        if rows < wanted:
            if state is not None:
                state.books_short += 1
            return msg
        if state is not None:
            state.books_trimmed += 1
        view = trimmed.get(wanted)
        if view is None:
            view = trimmed[wanted] = trim_rows(msg, wanted)
        return view

    # ------------------------------------------------------------------------------------------
    # SNAPSHOT deadlines

    def note_sent(
        self, ticket: str, *, at: float, keys: Collection[StreamKey] | None = None
    ) -> None:
        """A request carrying ``keys`` (None: everything) went out on ``ticket`` at ``at``:
        every wait on it for one of those keys not yet covered by a request now counts its
        deadline from ``at`` (see :meth:`expire_waits`). A wait armed for a later request
        keeps waiting for that one."""
        for stream in self._index.by_ticket.get(ticket, {}).values():
            if not stream.waiting:
                continue
            for target in stream.targets:
                unsent = target.waiting and target.sent_at is None
                if unsent and (keys is None or target.key in keys):
                    target.sent_at = at

    def next_wait_deadline(self, ticket: str, timeout: float) -> float | None:
        """When the earliest sent SNAPSHOT wait on ``ticket`` runs out, if any is open."""
        earliest: float | None = None
        for stream in self._index.by_ticket.get(ticket, {}).values():
            if not stream.waiting:
                continue
            for target in stream.targets:
                if target.waiting and target.sent_at is not None:
                    due = target.sent_at + timeout
                    if earliest is None or due < earliest:
                        earliest = due
        return earliest

    def expire_waits(self, ticket: str, *, now: float, timeout: float) -> list[RouteId]:
        """End every SNAPSHOT wait on ``ticket`` whose request went out ``timeout`` or more
        seconds before ``now``: each subscriber gets a :class:`~engine.events.SnapshotMissing`
        and the stream's REALTIME frames from now on. Returns the routes whose wait ended."""
        state = self._state(ticket)
        ended: list[RouteId] = []
        for stream in list(self._index.by_ticket.get(ticket, {}).values()):
            if not stream.waiting:
                continue
            for target in stream.targets:
                sent_at = target.sent_at
                # The same sum next_wait_deadline gives, so a wake-up at it always ends the
                # wait (``now - sent_at`` can fall one ulp short of ``timeout``).
                if not target.waiting or sent_at is None or now < sent_at + timeout:
                    continue
                ended.append(target.route_id)
                key = target.key
                release, dropped = self._releasable(target)
                state.held_dropped += dropped
                target.buffer.put_event(
                    SnapshotMissing(
                        ticket, key.data_type, key.code, now, now - sent_at, dropped, utc=_utc()
                    )
                )
                self._release_held(stream, target, release)
        for route_id in ended:
            self.end_wait(route_id)
        state.snapshots_missing += len(ended)
        return ended

    @staticmethod
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

    @staticmethod
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

    # ------------------------------------------------------------------------------------------
    # Statistics

    def _fold(self, stream: Stream) -> None:
        """Move a stream's counters into the totals before its routes change or it goes."""
        count = stream.broadcasts + stream.frames
        if count:
            routed = self._state(stream.ticket).routed
            routed[stream.data_type] = routed.get(stream.data_type, 0) + count
        for target in stream.targets:
            totals = self._totals.get(target.subscriber)
            if totals is None:
                totals = self._totals[target.subscriber] = _SubscriberTotals()
            delivered = target.delivered + stream.broadcasts
            if delivered:
                data_type = stream.data_type
                totals.routed[data_type] = totals.routed.get(data_type, 0) + delivered
            totals.held_back += target.held_back
            totals.snapshots += target.snapshots

    def statistics(self) -> RouterStatistics:
        """Counters per ticket and per current subscriber, frozen."""
        ticket_routed = {name: dict(state.routed) for name, state in self._tickets.items()}
        sub_routed: dict[str, dict[str, int]] = {}
        sub_held: dict[str, int] = {}
        sub_snapshots: dict[str, int] = {}
        sub_waiting: dict[str, int] = {}
        for sub, totals in self._totals.items():
            sub_routed[sub] = dict(totals.routed)
            sub_held[sub] = totals.held_back
            sub_snapshots[sub] = totals.snapshots
        for stream in self._streams.values():
            count = stream.broadcasts + stream.frames
            if count:
                routed = ticket_routed.setdefault(stream.ticket, {})
                routed[stream.data_type] = routed.get(stream.data_type, 0) + count
            for target in stream.targets:
                sub = target.subscriber
                delivered = target.delivered + stream.broadcasts
                if delivered:
                    mine = sub_routed.setdefault(sub, {})
                    mine[stream.data_type] = mine.get(stream.data_type, 0) + delivered
                sub_held[sub] = sub_held.get(sub, 0) + target.held_back
                sub_snapshots[sub] = sub_snapshots.get(sub, 0) + target.snapshots
                sub_waiting[sub] = sub_waiting.get(sub, 0) + target.waiting
        tickets = {
            name: TicketRouteStatistics(
                ticket=name,
                generation=state.generation,
                routed=MappingProxyType(ticket_routed.get(name, {})),
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
            )
            for name, state in self._tickets.items()
        }
        subscribers = {
            sub: SubscriberRouteStatistics(
                subscription_id=sub,
                routed=MappingProxyType(sub_routed.get(sub, {})),
                held_back=sub_held.get(sub, 0),
                snapshots=sub_snapshots.get(sub, 0),
                waiting=sub_waiting.get(sub, 0),
                buffer=buffer.statistics(),
            )
            for sub, buffer in self._index.buffers.items()
        }
        return RouterStatistics(
            tickets=MappingProxyType(tickets),
            subscribers=MappingProxyType(subscribers),
            routes=len(self._index.routes),
            waiting=len(self._waiting),
        )
