"""Publishing the registry's routes to the router, at a cost that follows the change.

Theory of operation
-------------------
The routes are a function of the registry: for every live realtime or private subscription
with a buffer, every key it wants, and every ticket whose desired set holds that key, one route
``(ticket, key, subscription)``. A route new to the table asks for a SNAPSHOT (public streams);
one that stays keeps asking only while ``core.awaiting`` still lists it, i.e. until the router
reported its SNAPSHOT. :func:`full_routes` computes that from scratch, which is what every
change used to cost: a pass over every route, then a from-scratch :meth:`Router.publish`.

:class:`RoutePublisher` keeps an index of what it published last: each ticket's desired set,
each subscription's record and keys, and per key the tickets carrying it and the subscribers
wanting it. A publish compares the registry with it (desired sets by equality, which is a C
loop over identical keys when nothing changed; subscription records by identity, since the
registry replaces a record on every change and never mutates one) and turns the differences
into route removals and additions for :meth:`Router.update`:

1. a key leaving (joining) a ticket removes (adds) the routes of every subscriber wanting it;
2. then a subscriber dropping (taking) a key removes (adds) its routes on every ticket now
   carrying the key.

A route added in step 1 and removed in step 2 cancels out. The result is the same table, flags
and ``core.awaiting`` as the from-scratch publish: a staying route's flag can only fall (the
registry drops it from ``core.awaiting`` when the SNAPSHOT came), never rise, so only added
routes arm a wait, and the router is told nothing about the routes that stay.

The index is trusted only while the router's :attr:`~engine.routing.router.Router.revision` is the
one this publisher left and the registry and router are the ones it indexed; otherwise (first use,
someone else published, a publish interrupted by an exception) the next publish is a full one,
which rebuilds the index. A subscription's buffer is expected to stay the same object while it
is live (the registry actor creates it before the first publish that needs it); one seen
replaced also triggers a full publish.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from itertools import compress, count
from operator import is_not
from typing import Final, Protocol

from engine.core.keys import StreamKey
from engine.core.registry import Registry, Subscription, SubscriptionKind
from engine.routing.buffer import SubscriberBuffer
from engine.routing.router import Router
from engine.routing.table import Route, RouteId, RoutingTable

__all__ = ("RoutePublisher", "RouteSource", "full_routes", "publish_routes")

#: The pools whose subscriptions are routed (snapshot requests are served elsewhere).
_ROUTED: Final = (SubscriptionKind.REALTIME, SubscriptionKind.PRIVATE)


class RouteSource(Protocol):
    """What publishing reads and writes (the engine's shared state satisfies it)."""

    @property
    def registry(self) -> Registry:
        """The subscription registry (read only)."""

    @property
    def router(self) -> Router:
        """The router the routes are published to."""

    @property
    def buffers(self) -> Mapping[str, SubscriberBuffer]:
        """Subscription id -> its buffer; subscriptions without one get no route."""

    @property
    def awaiting(self) -> set[RouteId]:
        """Routes flagged as waiting for a SNAPSHOT: updated in place by each publish; the
        registry discards a route from it when the router reports its SNAPSHOT."""


def full_routes(source: RouteSource) -> tuple[RoutingTable, set[RouteId]]:
    """Every route the registry wants and the ones flagged as waiting, from scratch.

    A route waits (is flagged ``snapshot=True``) if it is public and either new to the router's
    current table or still listed in ``source.awaiting``. Routes come in ticket order (pool by
    pool), then desired-set order, then subscription-creation order.
    """
    wanted, _ = _wanted_by_key(source, source.registry.subscriptions())
    return _table_of(source, wanted)


def _table_of(
    source: RouteSource, wanted: Mapping[StreamKey, Mapping[str, SubscriberBuffer]]
) -> tuple[RoutingTable, set[RouteId]]:
    registry = source.registry
    previous = source.router.route_ids
    awaiting = source.awaiting
    routes: list[Route] = []
    flagged: set[RouteId] = set()
    for kind in _ROUTED:
        for ticket in registry.tickets(kind):
            for key in registry.ticket_status(ticket).desired:
                for sub_id, buffer in wanted.get(key, {}).items():
                    route_id: RouteId = (ticket, key, sub_id)
                    wait = not key.is_private and (route_id not in previous or route_id in awaiting)
                    if wait:
                        flagged.add(route_id)
                    routes.append(Route(ticket, key, buffer, snapshot=wait))
    return RoutingTable(routes), flagged


def _wanted_by_key(
    source: RouteSource, live: tuple[Subscription, ...]
) -> tuple[dict[StreamKey, dict[str, SubscriberBuffer]], dict[str, _Subscriber]]:
    """Key -> subscribers wanting it (creation order) with their buffers; and the entries."""
    wanted: dict[StreamKey, dict[str, SubscriberBuffer]] = {}
    entries: dict[str, _Subscriber] = {}
    buffers = source.buffers
    for sub in live:
        if sub.kind not in _ROUTED:
            continue
        buffer = buffers.get(sub.id)
        entries[sub.id] = _Subscriber(sub, () if buffer is None else sub.keys, buffer)
        if buffer is not None:
            # Pools never share keys (private types are only on the private pool), so one map
            # serves both.
            for key in sub.keys:
                wanted.setdefault(key, {})[sub.id] = buffer
    return wanted, entries


def _in_order(
    changed: set[StreamKey], order: tuple[StreamKey, ...]
) -> list[StreamKey] | tuple[StreamKey, ...]:
    """``changed`` in a deterministic order (set order follows string hashing, which varies
    from run to run): sorted when few, else in ``order``, whichever pass is cheaper."""
    if not changed:
        return ()
    if len(changed) * 16 < len(order):
        return sorted(changed)
    return [key for key in order if key in changed]


class _Subscriber:
    """What the index knows of one subscription: its record, routed keys and buffer."""

    __slots__ = ("buffer", "keys", "record")

    def __init__(
        self,
        record: Subscription,
        keys: tuple[StreamKey, ...],
        buffer: SubscriberBuffer | None,
    ) -> None:
        self.record = record
        self.keys = keys
        self.buffer = buffer


class _Delta:
    """Route removals and additions, where a later opposite change cancels an earlier one."""

    __slots__ = ("added", "removed")

    def __init__(self) -> None:
        self.removed: dict[RouteId, None] = {}
        self.added: dict[RouteId, SubscriberBuffer] = {}

    def add(self, route_id: RouteId, buffer: SubscriberBuffer) -> None:
        if route_id in self.removed:
            del self.removed[route_id]
        else:
            self.added[route_id] = buffer

    def remove(self, route_id: RouteId) -> None:
        if route_id in self.added:
            del self.added[route_id]
        else:
            self.removed[route_id] = None


class RoutePublisher:
    """Publishes the routes of one registry to one router, in proportion to each change.

    Call :meth:`publish` after every registry change, before anything is sent (a new route's
    SNAPSHOT wait must be armed before the request asking for that SNAPSHOT leaves). Results
    are those of :func:`full_routes` followed by :meth:`Router.publish`; see the module's theory
    of operation.
    """

    def __init__(self) -> None:
        self._registry: Registry | None = None
        self._router: Router | None = None
        #: The router revision this publisher left; None when the index cannot be trusted.
        self._revision: int | None = None
        self._desired: dict[str, tuple[StreamKey, ...]] = {}
        self._subs: dict[str, _Subscriber] = {}
        #: Key -> tickets whose desired set holds it.
        self._carried: dict[StreamKey, list[str]] = {}
        #: Key -> subscription id -> buffer, for the subscriptions wanting it.
        self._wanted: dict[StreamKey, dict[str, SubscriberBuffer]] = {}
        #: The registry's live subscriptions as last published (creation order).
        self._records: tuple[Subscription, ...] = ()

    def publish(self, source: RouteSource) -> None:
        """Bring the router's table in line with the registry (a full publish when the index
        is cold or may be stale)."""
        router = source.router
        if (
            self._revision is None
            or self._revision != router.revision
            or self._router is not router
            or self._registry is not source.registry
        ):
            self.publish_full(source)
            return
        # Until this publish completes the index is ahead of the router.
        self._revision = None
        delta = _Delta()
        self._diff_tickets(source.registry, delta)
        if not self._diff_subscriptions(source, delta):
            self.publish_full(source)
            return
        if delta.removed or delta.added:
            added = [
                Route(ticket, key, buffer, snapshot=not key.is_private)
                for (ticket, key, _), buffer in delta.added.items()
            ]
            router.update(remove=delta.removed, add=added)
            awaiting = source.awaiting
            awaiting.difference_update(delta.removed)
            awaiting.update(route.id for route in added if route.snapshot)
        self._revision = router.revision

    def publish_full(self, source: RouteSource) -> None:
        """Publish from scratch (:func:`full_routes`, then :meth:`Router.publish`) and rebuild
        the index."""
        self._revision = None
        self._records = source.registry.subscriptions()
        self._wanted, self._subs = _wanted_by_key(source, self._records)
        table, flagged = _table_of(source, self._wanted)
        router = source.router
        router.publish(table)
        awaiting = source.awaiting
        awaiting.clear()
        awaiting.update(flagged)
        registry = source.registry
        self._desired = {}
        self._carried = {}
        for kind in _ROUTED:
            for ticket in registry.tickets(kind):
                desired = registry.ticket_status(ticket).desired
                self._desired[ticket] = desired
                for key in desired:
                    self._carried.setdefault(key, []).append(ticket)
        self._registry = registry
        self._router = router
        self._revision = router.revision

    # ------------------------------------------------------------------------------------------

    def _diff_tickets(self, registry: Registry, delta: _Delta) -> None:
        for kind in _ROUTED:
            for ticket in registry.tickets(kind):
                desired = registry.ticket_status(ticket).desired
                old = self._desired.get(ticket, ())
                if desired is old:
                    continue
                self._desired[ticket] = desired
                if desired == old:
                    continue
                old_set, new_set = set(old), set(desired)
                # Set differences in C: a reordered set (the planner re-packs on every change)
                # costs no Python-level pass over the ticket's keys.
                for key in _in_order(old_set - new_set, old):
                    self._uncarry(key, ticket, delta)
                for key in _in_order(new_set - old_set, desired):
                    self._carry(key, ticket, delta)

    def _diff_subscriptions(self, source: RouteSource, delta: _Delta) -> bool:
        """Apply subscription changes; False if a live subscription's buffer was replaced.

        The registry lists live subscriptions in creation order and replaces a record on every
        change, so the records that stayed the same object at the start and at the end of the
        list (found by pointer comparisons in C) are unchanged; only the window between needs
        looking at: changed and new records in ``current``, and in ``previous`` the records of
        subscriptions that may have left.
        """
        current = source.registry.subscriptions()
        previous = self._records
        shortest = min(len(current), len(previous))
        head = next(compress(count(), map(is_not, current, previous)), shortest)
        tail = next(compress(count(), map(is_not, reversed(current), reversed(previous))), shortest)
        tail = min(tail, shortest - head)
        changed = current[head : len(current) - tail]
        dropped = previous[head : len(previous) - tail]
        subs = self._subs
        buffers = source.buffers
        for sub in changed:
            entry = subs.get(sub.id)
            if entry is None:
                if sub.kind not in _ROUTED:
                    continue
                old_keys: tuple[StreamKey, ...] = ()
            elif entry.record is sub:
                continue
            else:
                old_keys = entry.keys
            buffer = buffers.get(sub.id)
            known = None if entry is None else entry.buffer
            if known is not None and buffer is not None and known is not buffer:
                return False
            keys = () if buffer is None else sub.keys
            subs[sub.id] = _Subscriber(sub, keys, buffer)
            if keys != old_keys:
                self._rewant(sub.id, old_keys, keys, buffer, delta)
        if dropped:
            staying = {sub.id for sub in changed}
            for record in dropped:
                if record.id not in staying:
                    gone = subs.pop(record.id, None)
                    if gone is not None:
                        self._rewant(record.id, gone.keys, (), gone.buffer, delta)
        self._records = current
        return True

    def _rewant(
        self,
        sub_id: str,
        old: tuple[StreamKey, ...],
        new: tuple[StreamKey, ...],
        buffer: SubscriberBuffer | None,
        delta: _Delta,
    ) -> None:
        old_set, new_set = set(old), set(new)
        for key in _in_order(old_set - new_set, old):
            self._unwant(key, sub_id, delta)
        if buffer is None:
            return
        for key in _in_order(new_set - old_set, new):
            self._want(key, sub_id, buffer, delta)

    def _carry(self, key: StreamKey, ticket: str, delta: _Delta) -> None:
        self._carried.setdefault(key, []).append(ticket)
        for sub_id, buffer in self._wanted.get(key, {}).items():
            delta.add((ticket, key, sub_id), buffer)

    def _uncarry(self, key: StreamKey, ticket: str, delta: _Delta) -> None:
        tickets = self._carried[key]
        tickets.remove(ticket)
        if not tickets:
            del self._carried[key]
        for sub_id in self._wanted.get(key, {}):
            delta.remove((ticket, key, sub_id))

    def _want(self, key: StreamKey, sub_id: str, buffer: SubscriberBuffer, delta: _Delta) -> None:
        wanting = self._wanted.get(key)
        if wanting is None:
            wanting = self._wanted[key] = {}
        wanting[sub_id] = buffer
        for ticket in self._carried.get(key, ()):
            delta.add((ticket, key, sub_id), buffer)

    def _unwant(self, key: StreamKey, sub_id: str, delta: _Delta) -> None:
        wanting = self._wanted[key]
        del wanting[sub_id]
        if not wanting:
            del self._wanted[key]
        for ticket in self._carried.get(key, ()):
            delta.remove((ticket, key, sub_id))


_PUBLISHERS: Final[weakref.WeakKeyDictionary[RouteSource, RoutePublisher]] = (
    weakref.WeakKeyDictionary()
)


def publish_routes(source: RouteSource) -> None:
    """Publish the registry's routes to the router through the :class:`RoutePublisher` kept
    for ``source`` (one per engine core, living as long as it does, so a restarted registry
    actor carries on incrementally)."""
    publisher = _PUBLISHERS.get(source)
    if publisher is None:
        publisher = _PUBLISHERS[source] = RoutePublisher()
    publisher.publish(source)
