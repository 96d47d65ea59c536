"""The router's outage bookkeeping: who hears :class:`~engine.events.Interrupted` and
:class:`~engine.events.Gap`, and when.

Theory of operation
-------------------
An :class:`Outage` is open on a ticket from the loss of its connection (or a failed connect)
until its next connection comes up. It remembers, per subscriber, the buffer, the codes it was
told about and the streams it had on the ticket. The promise to each subscriber is the order
Interrupted, Gap, SNAPSHOT, REALTIME per code:

- :func:`open_outage`: the connection is lost; every subscriber reading from the ticket gets an
  Interrupted for its codes there.
- :func:`join_outage`: subscribers placed on the ticket while it is down (or whose streams there
  grew) get an Interrupted for what they newly have on it; the outage began for them then.
- :func:`settle_outages`, :func:`settle_left`: a subscriber whose last route on a ticket that is
  down goes gets an open-ended Gap (``end=None``) at once, before anything of its streams' new
  home (a closed buffer, after an unsubscribe, drops it).
- :func:`settle_moved`: a stream that leaves a ticket while it is down goes on elsewhere (where
  it gets its own SNAPSHOT), so its outage is over for the subscribers that still read other
  streams there: an open-ended Gap for its code now.
- :func:`end_outage`: the ticket is connected again; every subscriber it affected that still
  reads from it gets the Gap (start and end), before anything of the new connection.

The functions take the outages as ``(ticket, outage)`` pairs in the router's ticket order, so a
subscriber affected on several tickets sees its events in the same order whichever way the
table changed (a full publish or an update).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime

import attrs

from engine.core.keys import StreamKey
from engine.events import Gap, Interrupted
from engine.routing.buffer import SubscriberBuffer
from engine.routing.index import RouteIndex

__all__ = (
    "Outage",
    "end_outage",
    "join_outage",
    "open_outage",
    "settle_left",
    "settle_moved",
    "settle_outages",
)


@attrs.define
class Outage:
    """One ticket's outage, while it lasts."""

    start: float
    cause: str
    #: subscription id -> (its buffer, the codes it had on the ticket)
    affected: dict[str, tuple[SubscriberBuffer, tuple[str, ...]]]
    #: subscription id -> the streams it had on the ticket (a stream that leaves the ticket
    #: while it is down ends the outage for its code: see :func:`settle_moved`)
    keys: dict[str, frozenset[StreamKey]] = attrs.Factory(dict)
    #: subscription id -> when its outage began, for subscribers that joined the ticket while
    #: it was down (the others share ``start``)
    starts: dict[str, float] = attrs.Factory(dict)
    #: (subscription id, type, code) -> the last trade time (or candle period) delivered
    #: before the loss, for trade and candle routes to backfill (engine.routing.fill)
    since: dict[tuple[str, str, str], int] = attrs.Factory(dict)

    def start_of(self, sub: str) -> float:
        return self.starts.get(sub, self.start)


Arm = Callable[[Outage, str, tuple[str, ...], "str | None"], tuple[str, ...]]
"""``arm(outage, subscription, codes, ticket)``: arm the backfill of ``codes`` for a subscriber
whose gap ends (on ``ticket``, or wherever its streams went when ``None``); the codes armed."""


def _no_arm(
    outage: Outage, sub: str, codes: tuple[str, ...], ticket: str | None
) -> tuple[str, ...]:
    del outage, sub, codes, ticket
    return ()


def _utc() -> datetime:
    # Wall-clock time for events (Trio's clock has no relation to it); reading it is no I/O.
    return datetime.now(UTC)


def _codes_of(keys: list[StreamKey]) -> tuple[str, ...]:
    return tuple(sorted({key.code for key in keys if key.code}))


def open_outage(index: RouteIndex, ticket: str, cause: str, at: float) -> Outage:
    """The outage that begins at ``at`` when ``ticket``'s connection is lost because of
    ``cause``: every subscriber reading from it receives an Interrupted for its codes there."""
    keys: dict[str, list[StreamKey]] = {}
    buffers: dict[str, SubscriberBuffer] = {}
    for stream in index.by_ticket.get(ticket, {}).values():
        for target in stream.targets:
            keys.setdefault(target.subscriber, []).append(target.key)
            buffers[target.subscriber] = target.buffer
    affected = {sub: (buffers[sub], _codes_of(found)) for sub, found in keys.items()}
    outage = Outage(
        start=at,
        cause=cause,
        affected=affected,
        keys={sub: frozenset(found) for sub, found in keys.items()},
    )
    for buffer, codes in affected.values():
        buffer.put_event(Interrupted(ticket, at, cause, codes, utc=_utc()))
    return outage


def end_outage(
    index: RouteIndex, ticket: str, outage: Outage, at: float, arm: Arm = _no_arm
) -> None:
    """``ticket`` is connected again at ``at``: a Gap for every subscriber ``outage`` affected
    that still reads from it (listing the codes ``arm`` armed for backfill)."""
    if not outage.affected:
        return
    here = index.ticket_subs.get(ticket, {})
    for sub, (buffer, codes) in outage.affected.items():
        if sub in here:
            filled = arm(outage, sub, codes, ticket)
            start = outage.start_of(sub)
            buffer.put_event(Gap(ticket, start, at, outage.cause, codes, filled, utc=_utc()))


def join_outage(
    index: RouteIndex, ticket: str, outage: Outage, at: float, cause: str | None
) -> None:
    """An Interrupted (of ``cause``, else the outage's) for what each subscriber newly has on
    ``ticket``, which is down."""
    here: dict[str, tuple[SubscriberBuffer, set[StreamKey]]] = {}
    for stream in index.by_ticket.get(ticket, {}).values():
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
        buffer.put_event(Interrupted(ticket, at, cause or outage.cause, codes, utc=_utc()))


def settle_outages(
    index: RouteIndex, outages: Iterable[tuple[str, Outage]], arm: Arm = _no_arm
) -> None:
    """Gaps for the subscribers affected by ``outages`` that no longer read from their ticket
    (after a whole new table)."""
    ticket_subs = index.ticket_subs
    for ticket, outage in outages:
        here = ticket_subs.get(ticket, {})
        for sub in [sub for sub in outage.affected if sub not in here]:
            _gap_left(ticket, outage, sub, arm)


def settle_left(
    index: RouteIndex,
    outages: Iterable[tuple[str, Outage]],
    left: list[tuple[str, str]],
    arm: Arm = _no_arm,
) -> None:
    """Gaps for subscribers whose last route on a ticket that is down just went (``left``:
    ``(ticket, subscription id)`` pairs)."""
    candidates: dict[str, list[str]] = {}
    for ticket, sub in left:
        candidates.setdefault(ticket, []).append(sub)
    ticket_subs = index.ticket_subs
    # Ticket order, as a full settle would go, so a subscriber leaving several tickets that
    # are down sees their gaps in the same order either way.
    for ticket, outage in outages:
        if ticket not in candidates:
            continue
        here = ticket_subs.get(ticket, {})
        for sub in candidates[ticket]:
            if sub not in here and sub in outage.affected:
                _gap_left(ticket, outage, sub, arm)


def settle_moved(
    index: RouteIndex, outages: Iterable[tuple[str, Outage]], arm: Arm = _no_arm
) -> None:
    """Gaps for streams that left a ticket while it is down, for subscribers that still
    read other streams there.

    Such a stream goes on elsewhere (another ticket, where it gets its own SNAPSHOT), so
    its outage is over for the subscriber: a Gap with ``end=None`` for its code comes now,
    before anything of the stream's new home, and the Gap at the ticket's reconnect covers
    the codes that stayed. Interrupted, Gap, SNAPSHOT, REALTIME holds per code.
    """
    for name, outage in outages:
        if not outage.affected:
            continue
        here: dict[str, set[StreamKey]] = {}
        for stream in index.by_ticket.get(name, {}).values():
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
            filled = arm(outage, sub, gone, None)
            buffer.put_event(Gap(name, start, None, outage.cause, gone, filled, utc=_utc()))
            remaining = tuple(code for code in codes if code not in moved)
            outage.keys[sub] = frozenset(key for key in had if key.code not in moved)
            if remaining:
                outage.affected[sub] = (buffer, remaining)
            else:
                del outage.affected[sub]


def _gap_left(ticket: str, outage: Outage, sub: str, arm: Arm) -> None:
    # Closed buffers (unsubscribed) drop the event; live ones learn the gap ended for them
    # here, before any SNAPSHOT their streams' new ticket sends.
    buffer, codes = outage.affected.pop(sub)
    start = outage.start_of(sub)
    filled = () if buffer.closed else arm(outage, sub, codes, None)
    buffer.put_event(Gap(ticket, start, None, outage.cause, codes, filled, utc=_utc()))
