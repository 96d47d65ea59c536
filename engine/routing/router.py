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
``(ticket, type, code)`` (one dict lookup per frame; :mod:`engine.routing.index`) and keeps the
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
  in a bounded window per code (:mod:`engine.routing.dedupe`); **trade backfill** after a gap
  (:mod:`engine.routing.fill`).

Frames with no subscriber (a parked ticket's parking reply, the stale frames Upbit sends after a
replacement, anything after an unsubscribe) are dropped and counted per ticket. An unsubscribe is
immediate: once the table without the route is published, no further frame reaches it, including
frames already decoded but not yet routed.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Collection, Iterable, Iterator, KeysView
from typing import Final, TypeAlias

from engine.core.keys import StreamKey
from engine.routing.buffer import BufferStatistics, StreamItem, SubscriberBuffer
from engine.routing.dedupe import TradeWindow
from engine.routing.fill import (
    BackfillJob,
    BackfillResult,
    abandon,
    arm,
    arm_silence,
    armed_count,
    divert_held,
    drain_job,
    job_done,
    new_job,
    open_fill,
    since_on_loss,
    time_of,
)
from engine.routing.index import (
    BOOK,
    FAST_ALL,
    FAST_CANDLE,
    FAST_REALTIME,
    FAST_TRADE,
    RouteIndex,
    Stream,
    Target,
)
from engine.routing.outages import (
    Outage,
    end_outage,
    join_outage,
    open_outage,
    settle_left,
    settle_moved,
    settle_outages,
)
from engine.routing.stats import (
    RouterStatistics,
    SubscriberRouteStatistics,
    SubscriberTotals,
    TicketRouteStatistics,
    TicketState,
    collect,
    fold,
)
from engine.routing.table import Route, RouteId, RoutingTable, StreamIndex
from engine.routing.waits import expire, mark_sent, next_deadline, rearm, stop_waiting
from engine.wire.book_rows import trim_rows
from engine.wire.messages import Message, MyAsset

__all__ = (
    "BackfillCallback",
    "BackfillJob",
    "BackfillResult",
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
BackfillCallback: TypeAlias = Callable[[BackfillJob], None]
"""``on_backfill(job)``: fetch ``job``'s trades and hand them to :meth:`Router.backfill_done`."""

#: Trades remembered per code for de-duplication.
DEFAULT_DEDUPE_WINDOW: Final = 256


class Router:
    """Routes decoded messages to subscriber buffers (see the module's theory of operation).

    ``on_snapshot(ticket, key, subscription_id)`` is called synchronously, from inside
    :meth:`route`, each time a subscriber's SNAPSHOT wait is satisfied; it must be cheap and must
    not raise (casting to the registry's mailbox is the intended use). ``on_backfill(job)`` is
    called the same way when a trade stream restored after a gap needs its missed trades
    fetched (:mod:`engine.routing.fill`); without it nothing is backfilled. ``clock`` gives the
    time of the events a table change causes (default: the latest time the router was told).
    ``dedupe_window`` is
    how many trade ids per code are remembered for de-duplication.
    """

    def __init__(
        self,
        *,
        on_snapshot: SnapshotCallback | None = None,
        on_backfill: BackfillCallback | None = None,
        clock: Callable[[], float] | None = None,
        dedupe_window: int = DEFAULT_DEDUPE_WINDOW,
    ) -> None:
        TradeWindow(dedupe_window)  # validates
        self._on_snapshot = on_snapshot
        self._on_backfill = on_backfill
        self._job_ids = itertools.count(1)
        # For the time of events a table change causes (a backfill abandoned when its stream
        # moves); without a clock, the latest time the router was told.
        self._clock = clock
        self._told_at = 0.0
        self._index = RouteIndex(dedupe_window)
        self._arm = functools.partial(arm, self._index)
        # Direct references to the index's dicts (edited in place, never replaced): the hot
        # path saves an attribute lookup per frame.
        self._streams = self._index.streams
        self._waiting = self._index.waiting
        self._table: RoutingTable | None = RoutingTable()
        self._revision = 0
        self._tickets: dict[str, TicketState] = {}
        self._totals: dict[str, SubscriberTotals] = {}

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
        self._abandon_fills()
        settle_outages(self._index, self._outages(), self._arm)
        settle_moved(self._index, self._outages(), self._arm)

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
        self._abandon_fills()
        if left:
            settle_left(self._index, self._outages(), left, self._arm)
        touched = {route_id[0] for route_id in removing}
        # Ticket order, as a full publish goes, so both ways give the same events in order.
        settle_moved(self._index, self._outages(touched), self._arm)

    def _outages(self, only: Collection[str] | None = None) -> Iterator[tuple[str, Outage]]:
        """The open outages, in ticket order (of the tickets ``only``, if given)."""
        for name, state in self._tickets.items():
            outage = state.outage
            if outage is not None and (only is None or name in only):
                yield name, outage

    def end_wait(self, route_id: RouteId) -> bool:
        """Stop waiting for the SNAPSHOT of ``route_id`` (``(ticket, key, subscription id)``):
        its REALTIME frames flow from now on, and a late SNAPSHOT is not delivered to it.

        For a wait no SNAPSHOT will end, such as one that did not come within the snapshot
        timeout; otherwise the route would hold back its REALTIME frames for good. Returns
        whether the route was waiting.
        """
        return stop_waiting(self._index, route_id)

    # ------------------------------------------------------------------------------------------
    # Connections

    def _state(self, ticket: str) -> TicketState:
        state = self._tickets.get(ticket)
        if state is None:
            state = self._tickets[ticket] = TicketState(ticket)
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
        self._told_at = max(self._told_at, at)
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
        if outage is not None:
            end_outage(self._index, ticket, outage, at, self._arm)
        rearm(self._index.by_ticket.get(ticket, {}).values(), self._waiting)
        return True

    def ticket_lost(self, ticket: str, generation: int, cause: str, *, at: float) -> bool:
        """Connection ``generation`` of ``ticket`` ended at ``at`` because of ``cause``.

        Its frames are stale from now on, and every subscriber reading from ``ticket`` receives an
        :class:`~engine.events.Interrupted`. Returns False, changing nothing, if ``generation``
        is not the open one (a late report from an older connection).
        """
        self._told_at = max(self._told_at, at)
        state = self._tickets.get(ticket)
        if state is None or state.generation is None or state.generation != generation:
            return False
        state.generation = None
        since = since_on_loss(self._index, ticket) if self._on_backfill is not None else {}
        state.outage = open_outage(self._index, ticket, cause, at)
        state.outage.since.update(since)
        return True

    def connect_failed(self, ticket: str, cause: str, *, at: float) -> None:
        """``ticket`` could not connect (or is held back from connecting) because of ``cause``.

        While it has no connection, its subscribers are in an outage like after a loss: each
        one not yet told receives an :class:`~engine.events.Interrupted` now (a subscription
        whose first connection fails hears of it, instead of waiting in silence), and the next
        :meth:`ticket_connected` brings their Gap. Nothing happens while a connection is open.
        """
        self._told_at = max(self._told_at, at)
        state = self._state(ticket)
        if state.generation is not None:
            return
        if state.outage is None:
            state.outage = Outage(start=at, cause=cause, affected={})
        join_outage(self._index, ticket, state.outage, at, cause)

    def join_outages(self, *, at: float) -> None:
        """Tell subscribers that were placed on a ticket while it is down (or whose streams
        there grew): an :class:`~engine.events.Interrupted` for what they newly have on it.
        Call it after changing the table; costs nothing while every ticket is connected."""
        for state in self._tickets.values():
            if state.outage is not None:
                join_outage(self._index, state.name, state.outage, at, None)

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
                    stream.last = msg
                    window.add_new(sequential_id, stream.subscribers)
                    return len(stream.puts)
        elif mode == FAST_CANDLE:
            if msg.stream_type == "REALTIME":
                for put in stream.puts:
                    put(msg)
                stream.broadcasts += 1
                stream.last = msg
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

    def _route_general(self, state: TicketState, stream: Stream, msg: Message) -> int:
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
        filling: list[tuple[Target, int]] = []
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
            if stream.fillable and (target.fill or target.fill_since is not None):
                # Held while a backfill runs; opened by a restored stream's SNAPSHOT or the
                # first item after a silence (check_silence). De-duplicated on release.
                since = open_fill(stream, target, [msg])  # type: ignore[list-item]
                state.backfill_held += 1
                if since is not None:
                    filling.append((target, since))
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
        if got:
            if window is not None:
                window.add(sequential_id, tuple(got))
            stream.last = msg
        if filling:
            self._ask_backfill(stream, filling, time_of(msg))  # type: ignore[arg-type]
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
        state: TicketState | None,
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
        mark_sent(self._index, ticket, at, keys)

    def next_wait_deadline(self, ticket: str, timeout: float) -> float | None:
        """When the earliest sent SNAPSHOT wait on ``ticket`` runs out, if any is open."""
        return next_deadline(self._index, ticket, timeout)

    def expire_waits(self, ticket: str, *, now: float, timeout: float) -> list[RouteId]:
        """End every SNAPSHOT wait on ``ticket`` whose request went out ``timeout`` or more
        seconds before ``now``: each subscriber gets a :class:`~engine.events.SnapshotMissing`
        and the stream's REALTIME frames from now on. Returns the routes whose wait ended."""
        self._told_at = max(self._told_at, now)
        state = self._state(ticket)
        ended, dropped = expire(self._index, ticket, now, timeout, self._divert)
        state.held_dropped += dropped
        state.snapshots_missing += len(ended)
        return ended

    # ------------------------------------------------------------------------------------------
    # Trade backfill (engine.routing.fill)

    def _ask_backfill(
        self, stream: Stream, filling: list[tuple[Target, int]], until: int | None
    ) -> None:
        if self._on_backfill is not None:
            self._on_backfill(new_job(next(self._job_ids), stream, filling, until))

    def _divert(self, stream: Stream, target: Target, held: list[Message]) -> bool:
        """A wait ran out without a SNAPSHOT: see ``fill.divert_held``."""
        diverted, since, until = divert_held(stream, target, held)
        if since is not None:
            self._ask_backfill(stream, [(target, since)], until)
        return diverted

    def backfill_done(self, job: BackfillJob, result: BackfillResult, *, at: float) -> bool:
        """``job`` fetched ``result``: its routes with no other job running release their trades
        as far as their buffers have room. True if some wait for room (:meth:`drain_backfill`)."""
        return job_done(self._index, job, result, at=at)

    def drain_backfill(self, job: BackfillJob, *, at: float, give_up: bool = False) -> bool:
        """Release more of ``job``'s fetched trades; ``give_up`` (its deadline passed): deliver
        what fits and report the rest unfilled. True if some still wait for room."""
        return drain_job(self._index, job, at=at, give_up=give_up)

    def check_silence(self, ticket: str) -> None:
        """``ticket`` went silent and may have lost frames while staying up: its trade and candle
        routes fetch what came between their last item and the next (``fill.arm_silence``)."""
        arm_silence(self._index, ticket)

    def backfills_armed(self) -> int:
        """Trade routes armed for a backfill whose fetch has not been asked for yet."""
        return armed_count(self._index)

    def _abandon_fills(self) -> None:
        abandoned, self._index.abandoned = self._index.abandoned, []
        at = self._told_at if self._clock is None else self._clock()
        # Only a stream that moved is released; one its subscriber dropped gets nothing more.
        kept = {(key, sub) for _, key, sub in self._index.routes} if abandoned else set()
        for stream, target in abandoned:
            gone = (target.key, target.subscriber) not in kept
            abandon(stream, target, at=at, gone=gone)

    # ------------------------------------------------------------------------------------------
    # Statistics

    def _fold(self, stream: Stream) -> None:
        """Move a stream's counters into the totals before its routes change or it goes."""
        fold(stream, self._state, self._totals)

    def statistics(self) -> RouterStatistics:
        """Counters per ticket and per current subscriber, frozen."""
        return collect(self._tickets, self._totals, self._index)
