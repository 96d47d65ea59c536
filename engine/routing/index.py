"""The router's compiled table: one entry per ``(ticket, type, code)``, rebuilt or edited in place.

Theory of operation
-------------------
A :class:`RoutingTable` is a value; the router needs something a frame can be looked up in with
one dict access and that holds the mutable state a table cannot know (who still waits for a
SNAPSHOT, delivery counters). :class:`RouteIndex` is that form:

- ``streams``: ``(ticket, type, code) -> Stream``, each :class:`Stream` holding its
  :class:`Target` (one per route) plus the tuples the hot path iterates (``puts``,
  ``subscribers``) and its dispatch ``mode``;
- ``routes`` (id -> :class:`Route`), ``waiting`` (ids waiting for a SNAPSHOT), and the counts
  that answer "does subscriber S still read from ticket T" without scanning (``ticket_subs``,
  ``buffers``);
- ``windows``: one trade de-duplication window per code, shared by that code's trade streams on
  every ticket, and kept as long as one such stream exists.

Two ways to change it, with one meaning (:meth:`Router.publish` semantics): :meth:`rebuild`
compiles a whole table from scratch, :meth:`apply` removes and adds routes, touching only the
streams they belong to, so its cost follows the size of the change, not of the table. The dicts
are edited in place, never replaced, so the router may keep direct references to them.

Counters live in the streams and targets; before a stream's set of targets changes, the
router's ``fold`` callback moves them into its totals (and they restart from zero), since
``Stream.broadcasts`` counts for every target the stream has at that time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, Final

from engine.core.keys import PRIVATE_TYPES
from engine.routing.buffer import SubscriberBuffer
from engine.routing.dedupe import TradeWindow
from engine.routing.table import Route, RouteId, RoutingTable, StreamIndex

__all__ = (
    "BOOK",
    "FAST_ALL",
    "FAST_CANDLE",
    "FAST_REALTIME",
    "FAST_TRADE",
    "HOLD_LIMIT",
    "PRIVATE",
    "SLOW",
    "STATE",
    "TRADE",
    "RouteIndex",
    "Stream",
    "Target",
    "kind_of",
)

#: Trades a waiting route holds back at most (see ``Target.held``); a quarter of its
#: subscriber's buffer when that is less.
HOLD_LIMIT: Final = 256

# Stream kinds.
STATE: Final = 0  # ticker, candle.*: every route filter-free
BOOK: Final = 1  # orderbook: per-route level filter, rows trimmed per route
TRADE: Final = 2  # trade: de-duplicated
PRIVATE: Final = 3  # myOrder, myAsset: no SNAPSHOT gating

# Dispatch modes of a stream (what Router.route may do without the general path).
SLOW: Final = 0
FAST_REALTIME: Final = 1  # REALTIME frames go to every route
FAST_ALL: Final = 2  # every frame goes to every route
FAST_TRADE: Final = 3  # REALTIME trades with an unseen id go to every route
FAST_CANDLE: Final = 4  # FAST_REALTIME, remembering the last candle (for backfill)


def kind_of(data_type: str) -> int:
    """The stream kind of ``data_type``."""
    if data_type in PRIVATE_TYPES:
        return PRIVATE
    if data_type == "trade":
        return TRADE
    if data_type == "orderbook":
        return BOOK
    return STATE


class Target:
    """One route as the router uses it: its wait flag and counters."""

    __slots__ = (
        "buffer",
        "delivered",
        "fill",
        "fill_seen",
        "fill_since",
        "held",
        "held_back",
        "held_dropped",
        "key",
        "level",
        "put",
        "route_id",
        "rows",
        "sent_at",
        "snapshots",
        "subscriber",
        "waiting",
    )

    def __init__(self, route: Route, waiting: bool) -> None:
        self.route_id = route.id
        self.key = route.key
        self.subscriber = route.subscriber
        self.buffer = route.buffer
        self.put = route.buffer.put_nowait
        self.rows = route.rows
        self.level = route.level
        self.waiting = waiting
        #: When the request asking for the awaited SNAPSHOT went out (None: not yet sent).
        self.sent_at: float | None = None
        #: REALTIME frames held back during the wait: delivered if it runs out (the SNAPSHOT
        #: never came), dropped if the SNAPSHOT comes (they predate it). The latest one for
        #: conflating streams, the trades in order for trade streams (bounded).
        self.held: list[Any] | None = None
        #: Held-back trades given up for room (told in ``SnapshotMissing.dropped``).
        self.held_dropped = 0
        #: Trade backfill (engine.routing.fill): the time to fetch from once the restored stream's
        #: SNAPSHOT comes (armed), and the fill in progress (a ``Fill``), holding live trades.
        self.fill_since: int | None = None
        #: The trade ids its subscriber had when it was armed (the window may forget them).
        self.fill_seen: frozenset[int] = frozenset()
        self.fill: Any = None
        # Deliveries on the general path; fast-path ones are the stream's ``broadcasts``.
        self.delivered = 0
        self.held_back = 0
        self.snapshots = 0

    def hold(self, msg: Any, every: bool) -> None:
        """Keep ``msg``, held back while waiting (``every``: the latest trades, up to a quarter
        of the subscriber's buffer, so their release at once can never overflow it)."""
        held = self.held
        if held is None or not every:
            self.held = [msg]
            return
        held.append(msg)
        if len(held) > min(HOLD_LIMIT, max(1, self.buffer.max_size // 4)):
            del held[0]
            self.held_dropped += 1

    @property
    def carries_state(self) -> bool:
        """Whether a new version of this route must take something over (:meth:`wait_state`)."""
        return self.waiting or self.fill is not None or self.fill_since is not None

    def wait_state(self) -> WaitState:
        """What a new version of this route takes over: its wait and its backfill."""
        return self.sent_at, self.held, self.fill_since, self.fill, self.fill_seen

    def resume_wait(self, state: WaitState | None) -> None:
        """Take over ``state`` from :meth:`wait_state` of this route's previous version."""
        if state is not None:
            self.sent_at, self.held, self.fill_since, self.fill, self.fill_seen = state


WaitState = tuple[float | None, list[Any] | None, int | None, Any, frozenset[int]]
"""A route's wait and backfill as a new version of it takes them over."""


class Stream:
    """Every route reading one ``(ticket, type, code)``."""

    __slots__ = (
        "broadcasts",
        "data_type",
        "fillable",
        "filling",
        "frames",
        "kind",
        "last",
        "mode",
        "puts",
        "subscribers",
        "targets",
        "ticket",
        "waiting",
        "window",
    )

    def __init__(
        self, index: StreamIndex, targets: tuple[Target, ...], window: TradeWindow | None
    ) -> None:
        self.ticket, self.data_type, _ = index
        self.kind = kind_of(self.data_type)
        #: Trade and candle streams can be backfilled after a gap (engine.routing.fill).
        self.fillable = self.kind == TRADE or self.data_type.startswith("candle.")
        self.window = window
        self.broadcasts = 0  # frames delivered to every route on a fast path
        self.frames = 0  # frames through the general path
        #: The newest trade (candle) delivered: where a backfill would start.
        self.last: Any = None
        #: Routes with a backfill in progress (their trades are held: the general path).
        self.filling = 0
        self.mode = SLOW
        self.targets: tuple[Target, ...] = ()
        self.puts: tuple[Callable[..., None], ...] = ()
        self.subscribers: tuple[str, ...] = ()
        self.waiting = 0
        self.retarget(targets)

    def retarget(self, targets: tuple[Target, ...]) -> None:
        """Make ``targets`` the stream's routes (counters must have been folded)."""
        self.targets = targets
        self.puts = tuple(target.put for target in targets)
        # Shared with the trade window on the fast path, so a new tuple, never mutated.
        self.subscribers = tuple(target.subscriber for target in targets)
        self.waiting = sum(1 for target in targets if target.waiting)
        self.count_fills()

    def count_fills(self) -> None:
        """Recount the routes with a backfill armed or in progress, and refresh the mode."""
        self.filling = sum(
            1 for target in self.targets if target.fill is not None or target.fill_since is not None
        )
        self.refresh()

    def refresh(self) -> None:
        """Recompute the dispatch mode after a change of waits."""
        kind = self.kind
        if kind == PRIVATE:
            self.mode = FAST_ALL
        elif self.waiting or self.filling:
            self.mode = SLOW
        elif kind == STATE:
            self.mode = FAST_CANDLE if self.fillable else FAST_REALTIME
        elif kind == TRADE:
            self.mode = FAST_TRADE
        else:
            self.mode = SLOW

    def reset_counters(self) -> None:
        """Start counting afresh (after the router folded the counters into its totals)."""
        self.broadcasts = 0
        self.frames = 0
        for target in self.targets:
            target.delivered = 0
            target.held_back = 0
            target.snapshots = 0


Fold = Callable[[Stream], None]


class RouteIndex:
    """The compiled routes of a :class:`~engine.routing.router.Router` (see the module doc)."""

    __slots__ = (
        "_dedupe_window",
        "_sub_routes",
        "_window_streams",
        "abandoned",
        "buffers",
        "by_ticket",
        "routes",
        "streams",
        "ticket_subs",
        "waiting",
        "windows",
    )

    def __init__(self, dedupe_window: int) -> None:
        self._dedupe_window = dedupe_window
        #: Route id -> route, in the order the routes arrived.
        self.routes: dict[RouteId, Route] = {}
        self.streams: dict[StreamIndex, Stream] = {}
        self.by_ticket: dict[str, dict[StreamIndex, Stream]] = {}
        #: Routes waiting for a SNAPSHOT.
        self.waiting: set[RouteId] = set()
        #: Trade code -> its de-duplication window.
        self.windows: dict[str, TradeWindow] = {}
        self._window_streams: dict[str, int] = {}
        #: Subscription id -> its buffer, for every subscriber with a route.
        self.buffers: dict[str, SubscriberBuffer] = {}
        self._sub_routes: dict[str, int] = {}
        #: Ticket -> subscription id -> how many of its routes read from that ticket.
        self.ticket_subs: dict[str, dict[str, int]] = {}
        #: Routes removed by the last change while being backfilled, with their old stream:
        #: the router reports them (engine.routing.fill.abandon).
        self.abandoned: list[tuple[Stream, Target]] = []

    # ------------------------------------------------------------------------------------------
    # From scratch

    def rebuild(self, table: RoutingTable) -> None:
        """Compile ``table``, replacing everything: waits carry over for routes that stay, and
        a route flagged ``snapshot=True`` that was not flagged before arms a new wait. The
        caller folds the counters first."""
        previous = self.routes
        waiting: set[RouteId] = set()
        for route in table.routes:
            route_id = route.id
            if route_id in self.waiting:
                waiting.add(route_id)
            elif route.snapshot:
                old = previous.get(route_id)
                if old is None or not old.snapshot:
                    waiting.add(route_id)
        old_windows = dict(self.windows)
        # A wait that carries over keeps its deadline (when its request went out) and what it
        # held back.
        carried = {
            target.route_id: target.wait_state()
            for stream in self.streams.values()
            for target in stream.targets
            if target.carries_state
        }
        lasts = {index: stream.last for index, stream in self.streams.items()}
        self.abandoned = [
            (stream, target)
            for stream in self.streams.values()
            for target in stream.targets
            if (target.fill is not None or target.fill_since is not None)
            and not any(route.id == target.route_id for route in table.routes)
        ]
        self.clear_routes()
        self.waiting.update(waiting)
        windows = self.windows
        for index, routes in table.streams.items():
            window = None
            if index[1] == "trade":
                code = index[2]
                window = windows.get(code)
                if window is None:
                    window = old_windows.get(code)
                    if window is None:
                        window = TradeWindow(self._dedupe_window)
                    windows[code] = window
                self._window_streams[code] = self._window_streams.get(code, 0) + 1
            targets = tuple(Target(route, route.id in waiting) for route in routes)
            for target in targets:
                target.resume_wait(carried.get(target.route_id))
            stream = self.streams[index] = Stream(index, targets, window)
            stream.last = lasts.get(index)
            self.by_ticket.setdefault(index[0], {})[index] = stream
        for route in table.routes:
            self.routes[route.id] = route
            self._count_in(route)

    def clear_routes(self) -> None:
        """Forget every route, stream and window (in place)."""
        for mapping in (
            self.routes,
            self.streams,
            self.by_ticket,
            self.windows,
            self._window_streams,
            self.buffers,
            self._sub_routes,
            self.ticket_subs,
        ):
            mapping.clear()
        self.waiting.clear()

    # ------------------------------------------------------------------------------------------
    # In proportion to the change

    def problems(self, remove: Sequence[RouteId], add: Sequence[Route]) -> list[str]:
        """Why removing ``remove`` and adding ``add`` would not give a valid table."""
        problems: list[str] = []
        removing: set[RouteId] = set()
        removed_per_sub: dict[str, int] = {}
        for route_id in remove:
            if route_id in removing:
                problems.append(f"route {_name(route_id)} is listed twice for removal")
                continue
            if route_id not in self.routes:
                problems.append(f"route {_name(route_id)} is not in the table: nothing to remove")
                continue
            removing.add(route_id)
            removed_per_sub[route_id[2]] = removed_per_sub.get(route_id[2], 0) + 1
        adding: set[RouteId] = set()
        new_buffers: dict[str, SubscriberBuffer] = {}
        for item in add:
            route: object = item
            if not isinstance(route, Route):
                problems.append(f"{route!r} is not a Route")
                continue
            route_id = route.id
            if route_id in adding:
                problems.append(f"route {_name(route_id)} is listed twice")
                continue
            adding.add(route_id)
            if route_id in self.routes and route_id not in removing:
                problems.append(
                    f"route {_name(route_id)} is already in the table: remove it in the same "
                    "update to replace it"
                )
            sub = route.subscriber
            known = new_buffers.setdefault(sub, route.buffer)
            if known is not route.buffer:
                problems.append(f"subscription {sub} has two different buffers: give it one")
        for sub, buffer in new_buffers.items():
            current = self.buffers.get(sub)
            keeps_routes = self._sub_routes.get(sub, 0) > removed_per_sub.get(sub, 0)
            if current is not None and current is not buffer and keeps_routes:
                problems.append(f"subscription {sub} has two different buffers: give it one")
        return problems

    def apply(
        self, remove: Iterable[RouteId], add: Iterable[Route], fold: Fold
    ) -> tuple[list[tuple[str, str]], list[str]]:
        """Remove the routes ``remove`` (ids), then add ``add``; validate with :meth:`problems`
        first. A route both removed and added is replaced: its wait carries over, and a flag
        the old route lacked arms one. ``fold(stream)`` is called once for every stream whose
        routes change, before they do.

        Returns the ``(ticket, subscription)`` pairs whose last route on that ticket went (the
        router owes them a Gap if the ticket is down), and the subscriptions left without any
        route.
        """
        prior: dict[RouteId, tuple[bool, bool]] = {}  # removed id -> (was waiting, was flagged)
        # removed id -> its wait's send time and held frames, and its backfill
        carried: dict[RouteId, WaitState] = {}
        # removed id -> (its stream, its target) if it was being backfilled
        filling: dict[RouteId, tuple[Stream, Target]] = {}
        gone: dict[StreamIndex, set[RouteId]] = {}
        left: list[tuple[str, str]] = []
        waiting = self.waiting
        for route_id in remove:
            route = self.routes.pop(route_id)
            prior[route_id] = (route_id in waiting, route.snapshot)
            stream = self.streams.get(route.index)
            for target in () if stream is None else stream.targets:
                assert stream is not None
                if target.route_id == route_id and target.carries_state:
                    carried[route_id] = target.wait_state()
                    if target.fill is not None or target.fill_since is not None:
                        filling[route_id] = (stream, target)
            waiting.discard(route_id)
            gone.setdefault(route.index, set()).add(route_id)
            if self._count_out(route):
                left.append((route.ticket, route.subscriber))
        joined: dict[StreamIndex, list[Target]] = {}
        for route in add:
            route_id = route.id
            before = prior.get(route_id)
            if before is None:
                wait = route.snapshot
            else:
                was_waiting, was_flagged = before
                wait = was_waiting or (route.snapshot and not was_flagged)
            if wait:
                waiting.add(route_id)
            self.routes[route_id] = route
            target = Target(route, wait)
            filling.pop(route_id, None)
            state = carried.get(route_id)
            if state is not None and not (wait and before is not None and before[0]):
                state = (None, None, *state[2:])  # only a wait that carries over
            target.resume_wait(state)
            joined.setdefault(route.index, []).append(target)
            self._count_in(route)
        emptied: list[str] = []
        for index in [*gone, *(index for index in joined if index not in gone)]:
            stream = self.streams.get(index)
            if stream is not None:
                fold(stream)
                stream.reset_counters()
            dropped = gone.get(index, ())
            kept = () if stream is None else stream.targets
            if dropped:
                kept = tuple(target for target in kept if target.route_id not in dropped)
            targets = kept + tuple(joined.get(index, ()))
            if stream is None:
                self._open_stream(index, targets)
            elif targets:
                stream.retarget(targets)
            else:
                self._close_stream(index, emptied)
        for code in emptied:
            if not self._window_streams.get(code):
                self._window_streams.pop(code, None)
                self.windows.pop(code, None)
        subs_gone = [sub for _, sub in left if sub not in self._sub_routes]
        self.abandoned = list(filling.values())
        return left, list(dict.fromkeys(subs_gone))

    def _open_stream(self, index: StreamIndex, targets: tuple[Target, ...]) -> None:
        window = None
        if index[1] == "trade":
            code = index[2]
            window = self.windows.get(code)
            if window is None:
                window = self.windows[code] = TradeWindow(self._dedupe_window)
            self._window_streams[code] = self._window_streams.get(code, 0) + 1
        stream = self.streams[index] = Stream(index, targets, window)
        self.by_ticket.setdefault(index[0], {})[index] = stream

    def _close_stream(self, index: StreamIndex, emptied: list[str]) -> None:
        del self.streams[index]
        ticket = index[0]
        on_ticket = self.by_ticket[ticket]
        del on_ticket[index]
        if not on_ticket:
            del self.by_ticket[ticket]
        if index[1] == "trade":
            # The window outlives this call if another stream of the code remains or is added.
            code = index[2]
            self._window_streams[code] -= 1
            emptied.append(code)

    def _count_in(self, route: Route) -> None:
        sub = route.subscriber
        self.buffers[sub] = route.buffer
        self._sub_routes[sub] = self._sub_routes.get(sub, 0) + 1
        on_ticket = self.ticket_subs.get(route.ticket)
        if on_ticket is None:
            on_ticket = self.ticket_subs[route.ticket] = {}
        on_ticket[sub] = on_ticket.get(sub, 0) + 1

    def _count_out(self, route: Route) -> bool:
        """Uncount ``route``; True if it was its subscriber's last route on its ticket."""
        sub, ticket = route.subscriber, route.ticket
        remaining = self._sub_routes[sub] - 1
        if remaining:
            self._sub_routes[sub] = remaining
        else:
            del self._sub_routes[sub]
            del self.buffers[sub]
        on_ticket = self.ticket_subs[ticket]
        remaining = on_ticket[sub] - 1
        if remaining:
            on_ticket[sub] = remaining
            return False
        del on_ticket[sub]
        if not on_ticket:
            del self.ticket_subs[ticket]
        return True


def _name(route_id: RouteId) -> str:
    ticket, key, sub = route_id
    return f"{ticket}/{key}/{sub}"
