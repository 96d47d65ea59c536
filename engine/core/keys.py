"""The planner's values: one wanted stream (:class:`StreamKey`) and a packing of streams onto
tickets (:class:`TicketPlan`, :class:`TicketDiff`). Re-exported by :mod:`engine.core`."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

import attrs

__all__ = (
    "PRIVATE_TYPES",
    "StreamKey",
    "TicketDiff",
    "TicketPlan",
    "distinct_codes",
    "ordered_unique",
)

#: Types served only on the private endpoint. They take no ``is_only_*`` flags and never send a
#: SNAPSHOT; ``myAsset`` takes no codes at all.
PRIVATE_TYPES: frozenset[str] = frozenset({"myOrder", "myAsset"})


def _none_first(value: float | None) -> tuple[bool, float]:
    # Sort key that makes None ("Upbit's default") order before any number.
    return (value is not None, 0 if value is None else value)


# Keys live in sets and dicts everywhere and are hashed millions of times in big plans.
@attrs.frozen(order=True, cache_hash=True)
class StreamKey:
    """One wanted stream: a data type for one code, with its orderbook options.

    ``units`` (orderbook rows, rendered ``"CODE.N"``) and ``level`` (orderbook price grouping) are
    part of the key: the same code with two different units is two streams, which Upbit serves as
    two orderbook objects in one request. ``code == ""`` means "no code": ``myAsset``, or
    ``myOrder`` for every market. Keys are plain values: hashable and totally ordered.
    """

    data_type: str
    code: str
    units: int | None = attrs.field(default=None, order=_none_first)
    level: float | None = attrs.field(default=None, order=_none_first)

    @property
    def is_private(self) -> bool:
        """Whether this stream needs the private endpoint."""
        return self.data_type in PRIVATE_TYPES

    @property
    def group(self) -> tuple[str, int | None, float | None]:
        """Keys with the same group can share one type object in a request."""
        return (self.data_type, self.units, self.level)

    def __str__(self) -> str:
        text = f"{self.data_type}:{self.code or '*'}"
        if self.units is not None:
            text += f".{self.units}"
        if self.level is not None:
            text += f"@{self.level:g}"
        return text


def ordered_unique(keys: Iterable[StreamKey]) -> tuple[StreamKey, ...]:
    """``keys`` without repeats, first appearance first."""
    return tuple(dict.fromkeys(keys))


def distinct_codes(keys: Iterable[StreamKey]) -> tuple[str, ...]:
    """The codes of ``keys`` without repeats, first appearance first."""
    return tuple(dict.fromkeys(key.code for key in keys))


@attrs.frozen
class TicketPlan(Mapping[str, tuple[StreamKey, ...]]):
    """Which streams each ticket of one pool carries, in replay order.

    A read-only mapping ``ticket id -> keys``. Every ticket of the pool is present (possibly with
    no keys), in pool order; each ticket's keys are in the order of the ``wanted`` sequence the
    plan was made from, which is subscription-creation order.
    """

    #: ``(ticket id, keys)`` pairs in pool order.
    assignments: tuple[tuple[str, tuple[StreamKey, ...]], ...]
    #: The most distinct codes a ticket should carry.
    capacity: int
    #: How many keys that were on some ticket before ended up on a different one.
    moved: int = 0

    def __getitem__(self, ticket: str) -> tuple[StreamKey, ...]:
        for name, keys in self.assignments:
            if name == ticket:
                return keys
        raise KeyError(ticket)

    def __iter__(self) -> Iterator[str]:
        return (name for name, _ in self.assignments)

    def __len__(self) -> int:
        return len(self.assignments)

    @property
    def open_tickets(self) -> tuple[str, ...]:
        """Tickets that carry at least one stream, in pool order."""
        return tuple(name for name, keys in self.assignments if keys)

    @property
    def overloaded(self) -> tuple[str, ...]:
        """Tickets carrying more than ``capacity`` distinct codes (only when no ticket had room)."""
        return tuple(
            name for name, keys in self.assignments if len(distinct_codes(keys)) > self.capacity
        )

    def ticket_of(self, key: StreamKey) -> str | None:
        """The ticket carrying ``key``, or None."""
        for name, keys in self.assignments:
            if key in keys:
                return name
        return None

    def as_dict(self) -> dict[str, tuple[StreamKey, ...]]:
        """A plain ``dict`` copy."""
        return dict(self.assignments)


@attrs.frozen
class TicketDiff:
    """How one ticket's set changes between two plans (see :func:`engine.core.packing.diff`)."""

    #: Keys only in the new set, in new order.
    added: tuple[StreamKey, ...]
    #: Keys only in the old set, in old order.
    removed: tuple[StreamKey, ...]
    #: Keys in both, in new order.
    kept: tuple[StreamKey, ...]

    @property
    def changed(self) -> bool:
        """Whether anything was added or removed."""
        return bool(self.added or self.removed)
