"""The routing table: an immutable value saying which subscriber wants which stream on which ticket.

A table is a set of :class:`Route` entries ("subscriber S wants stream K from ticket T"),
indexed by what a frame carries: (ticket, type, code). :meth:`Router.publish` swaps a whole
table in; :meth:`Router.update` changes the table in force by removing and adding routes, which
is how the registry publishes (:mod:`engine.routing.publish`), since most changes touch a few
routes of a large table. An orderbook frame carries its ``level`` but not the depth it was
asked at (its row count may differ: docs/UPBIT.md#drift-history), so the router matches it by
``level`` and trims it to each route's rows.

A route flagged ``snapshot=True`` says its subscriber waits for a SNAPSHOT of that stream. The
router *arms* that wait when the flag first appears (see :meth:`Router.publish`), so a table
may keep listing a wait the router has already satisfied without re-arming it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Final, TypeAlias

import attrs

from engine.core.keys import PRIVATE_TYPES, StreamKey
from engine.routing.buffer import SubscriberBuffer
from engine.wire.protocol import DATA_TYPES, ORDERBOOK_UNITS

__all__ = ("Route", "RouteId", "RoutingTable", "StreamIndex")

RouteId: TypeAlias = tuple[str, StreamKey, str]
"""``(ticket, key, subscription id)``: one route's identity."""
StreamIndex: TypeAlias = tuple[str, str, str]
"""``(ticket, type, code)``: what a received frame is looked up by (``code`` is ``""`` for
``myAsset`` and for a ``myOrder`` stream of every market)."""

#: Rows Upbit sends when no ``.N`` suffix was requested (docs/UPBIT.md, Request format).
DEFAULT_ORDERBOOK_ROWS: Final = 30
_TYPES: Final = frozenset(DATA_TYPES)


def _problems(ticket: object, key: StreamKey, snapshot: object) -> list[str]:
    problems: list[str] = []
    if not isinstance(ticket, str) or not ticket:
        problems.append(f"ticket must be a non-empty string, not {ticket!r}")
    if key.data_type not in _TYPES:
        problems.append(f"unknown data type {key.data_type!r}: use one of {', '.join(DATA_TYPES)}")
    private = key.data_type in PRIVATE_TYPES
    if key.data_type == "myAsset" and key.code:
        problems.append("myAsset has no code: use StreamKey('myAsset', '')")
    if not private and not key.code:
        problems.append(f"{key.data_type} needs a code")
    if key.data_type != "orderbook" and (key.units is not None or key.level is not None):
        problems.append(f"units and level apply to orderbook only, not {key.data_type}")
    if key.units is not None and key.units not in ORDERBOOK_UNITS:
        problems.append(f"orderbook units {key.units!r} is not served: use 1, 5, 15 or 30")
    if private and snapshot:
        problems.append(
            f"{key.data_type} streams never send a SNAPSHOT, so a route cannot wait for one: "
            "use snapshot=False"
        )
    return problems


@attrs.frozen
class Route:
    """Subscriber ``buffer.subscription_id`` wants stream ``key`` from ticket ``ticket``.

    ``snapshot=True``: the subscriber waits for this stream's SNAPSHOT (it just subscribed, or
    its stream moved to this ticket), and REALTIME frames reach it only after that SNAPSHOT.
    Construction raises ``ValueError`` naming every problem.
    """

    ticket: str
    key: StreamKey
    buffer: SubscriberBuffer
    snapshot: bool = False

    def __attrs_post_init__(self) -> None:
        problems = _problems(self.ticket, self.key, self.snapshot)
        buffer: object = self.buffer
        if not isinstance(buffer, SubscriberBuffer):
            problems.append(f"buffer must be a SubscriberBuffer, not {type(buffer).__name__}")
        if problems:
            raise ValueError("invalid Route: " + "; ".join(problems))

    @property
    def subscriber(self) -> str:
        """The subscription id (the buffer's)."""
        return self.buffer.subscription_id

    @property
    def id(self) -> RouteId:
        """``(ticket, key, subscriber)``."""
        return (self.ticket, self.key, self.buffer.subscription_id)

    @property
    def index(self) -> StreamIndex:
        """``(ticket, type, code)``: the frames this route reads."""
        return (self.ticket, self.key.data_type, self.key.code)

    @property
    def rows(self) -> int | None:
        """For orderbook routes, the most rows its subscriber receives (frames are trimmed)."""
        if self.key.data_type != "orderbook":
            return None
        return DEFAULT_ORDERBOOK_ROWS if self.key.units is None else self.key.units

    @property
    def level(self) -> float | None:
        """For orderbook routes, the ``level`` its frames carry (Upbit's default is 0)."""
        if self.key.data_type != "orderbook":
            return None
        return 0.0 if self.key.level is None else self.key.level


@attrs.frozen(init=False)
class RoutingTable:
    """An immutable set of :class:`Route` entries, indexed by ``(ticket, type, code)``.

    Every subscription id must use one buffer throughout, and a route may appear once.
    ``RoutingTable()`` is the empty table.
    """

    #: The routes, in the order given.
    routes: tuple[Route, ...]
    _index: Mapping[StreamIndex, tuple[Route, ...]] = attrs.field(repr=False)
    _buffers: Mapping[str, SubscriberBuffer] = attrs.field(repr=False)
    _awaiting: frozenset[RouteId] = attrs.field(repr=False)

    def __init__(self, routes: Iterable[Route] = ()) -> None:
        ordered = tuple(routes)
        index: dict[StreamIndex, list[Route]] = {}
        buffers: dict[str, SubscriberBuffer] = {}
        seen: set[RouteId] = set()
        problems: list[str] = []
        for item in ordered:
            route: object = item
            if not isinstance(route, Route):
                problems.append(f"{route!r} is not a Route")
                continue
            sub = route.subscriber
            known = buffers.setdefault(sub, route.buffer)
            if known is not route.buffer:
                problems.append(f"subscription {sub} has two different buffers: give it one")
            if route.id in seen:
                problems.append(f"route {route.ticket}/{route.key}/{sub} is listed twice")
                continue
            seen.add(route.id)
            index.setdefault(route.index, []).append(route)
        if problems:
            raise ValueError("invalid RoutingTable: " + "; ".join(problems))
        self.__attrs_init__(
            ordered,
            MappingProxyType({name: tuple(found) for name, found in index.items()}),
            MappingProxyType(buffers),
            frozenset(route.id for route in ordered if route.snapshot),
        )

    def lookup(self, ticket: str, data_type: str, code: str) -> tuple[Route, ...]:
        """The routes reading ``(ticket, type, code)`` frames (``()`` if none)."""
        return self._index.get((ticket, data_type, code), ())

    @property
    def streams(self) -> Mapping[StreamIndex, tuple[Route, ...]]:
        """``(ticket, type, code) -> routes``, read-only."""
        return self._index

    @property
    def buffers(self) -> Mapping[str, SubscriberBuffer]:
        """Subscription id -> its buffer, for every subscriber with a route, read-only."""
        return self._buffers

    @property
    def awaiting(self) -> frozenset[RouteId]:
        """The routes flagged ``snapshot=True``."""
        return self._awaiting

    @property
    def tickets(self) -> frozenset[str]:
        """Tickets with at least one route."""
        return frozenset(ticket for ticket, _, _ in self._index)

    def routes_on(self, ticket: str) -> tuple[Route, ...]:
        """The routes reading from ``ticket``, in table order."""
        return tuple(route for route in self.routes if route.ticket == ticket)

    def __len__(self) -> int:
        return len(self.routes)
