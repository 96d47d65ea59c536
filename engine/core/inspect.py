"""Read-only views of the registry: conflicts, the ``registry()`` shape, pool usage.

Everything here works on the frozen records the registry hands out, so it cannot disturb the
single writer's state.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence

from engine.core.efficiency import measure_efficiency
from engine.core.keys import StreamKey, distinct_codes, ordered_unique
from engine.core.records import (
    Conflict,
    ConflictKind,
    PoolUsage,
    Subscription,
    SubscriptionKind,
    TicketStatus,
)

__all__ = ("find_conflicts", "pool_usage", "signature", "ticket_view")


def signature(
    kind: SubscriptionKind,
    data_types: Sequence[str],
    codes: Sequence[str],
    units: int | None,
    level: float | None,
) -> Hashable:
    """What makes two subscriptions duplicates: same pool, types, codes (as sets) and options."""
    return (kind, frozenset(data_types), frozenset(codes), units, level)


def _sub_signature(sub: Subscription) -> Hashable:
    return signature(sub.kind, sub.data_types, sub.codes, sub.units, sub.level)


def find_conflicts(
    live: Sequence[Subscription],
    statuses: Sequence[TicketStatus],
    *,
    now: float | None,
    snapshot_timeout: float,
) -> list[Conflict]:
    """Every finding, in a stable order: mode mixes, duplicates, overlaps, split streams and
    codes, then missing snapshots (only when ``now`` is given)."""
    duplicates = _duplicate_groups(live)
    found = _mode_mixes(live, statuses)
    found += [_duplicate(ids) for ids in duplicates]
    found += _overlaps(live, duplicates)
    found += _splits(statuses)
    if now is not None:
        found += _missing_snapshots(statuses, now=now, snapshot_timeout=snapshot_timeout)
    return found


def _mode_mixes(live: Sequence[Subscription], statuses: Sequence[TicketStatus]) -> list[Conflict]:
    """Tickets that would carry snapshot-only streams with streams of another pool."""
    # Pools keep snapshot-only and realtime streams on different connections; a subscription
    # placed on a ticket of another pool would break that.
    by_ticket_kind: dict[str, set[SubscriptionKind]] = {}
    for sub in live:
        for ticket in sub.tickets:
            by_ticket_kind.setdefault(ticket, set()).add(sub.kind)
    found: list[Conflict] = []
    for status in statuses:
        kinds = by_ticket_kind.get(status.ticket, set()) | {status.mode}
        if SubscriptionKind.SNAPSHOT in kinds and len(kinds) > 1:
            found.append(
                Conflict(
                    kind=ConflictKind.MODE_MIX,
                    message=(
                        f"{status.ticket} would carry snapshot-only and realtime streams together; "
                        "one request would cancel the other (engine bug: please report)"
                    ),
                    tickets=(status.ticket,),
                )
            )
    return found


def _duplicate_groups(live: Sequence[Subscription]) -> list[tuple[str, ...]]:
    """Ids of subscriptions with the same signature (each group in ``live`` order), groups
    ordered by their ids' serial numbers."""
    groups: dict[Hashable, list[str]] = {}
    for sub in live:
        groups.setdefault(_sub_signature(sub), []).append(sub.id)
    duplicates = {tuple(ids) for ids in groups.values() if len(ids) > 1}
    return sorted(duplicates, key=lambda ids: [int(i.rpartition("-")[2]) for i in ids])


def _duplicate(ids: tuple[str, ...]) -> Conflict:
    return Conflict(
        kind=ConflictKind.DUPLICATE,
        message=(
            f"subscriptions {', '.join(ids)} ask for the same streams (Upbit sends "
            "them once, yet each buffers every message); keep one and unsubscribe the "
            "others. A subscription has one reader: if several tasks need its "
            "messages, read it in one task and pass them on (a trio memory channel "
            "per consumer)"
        ),
        subscriptions=ids,
    )


def _overlaps(
    live: Sequence[Subscription], duplicates: Sequence[tuple[str, ...]]
) -> list[Conflict]:
    """Pairs of subscriptions (duplicates aside) sharing streams of one pool."""
    duplicate_pairs = {frozenset(pair) for ids in duplicates for pair in _pairs(ids)}
    holders: dict[tuple[SubscriptionKind, StreamKey], list[Subscription]] = {}
    for sub in live:
        for key in sub.keys:
            holders.setdefault((sub.kind, key), []).append(sub)
    shared: dict[tuple[str, str], list[StreamKey]] = {}
    for (_, key), subs in holders.items():
        for first, second in _pairs([sub.id for sub in subs]):
            if frozenset((first, second)) not in duplicate_pairs:
                shared.setdefault((first, second), []).append(key)
    return [
        Conflict(
            kind=ConflictKind.OVERLAP,
            message=(
                f"{first} and {second} share {len(keys)} stream(s); each is carried once and "
                "delivered to both"
            ),
            subscriptions=(first, second),
            keys=tuple(keys),
        )
        for (first, second), keys in shared.items()
    ]


def _pairs(ids: Sequence[str]) -> list[tuple[str, str]]:
    return [(ids[i], ids[j]) for i in range(len(ids)) for j in range(i + 1, len(ids))]


def _splits(statuses: Sequence[TicketStatus]) -> list[Conflict]:
    """Pool by pool, streams and then codes placed on more than one ticket."""
    found: list[Conflict] = []
    for mode in SubscriptionKind:
        pool = [status for status in statuses if status.mode is mode]
        found += _split_streams(pool)
        found += _split_codes(pool)
    return found


def _split_streams(pool: Sequence[TicketStatus]) -> list[Conflict]:
    places: dict[StreamKey, list[str]] = {}
    for status in pool:
        for key in status.desired:
            places.setdefault(key, []).append(status.ticket)
    return [
        Conflict(
            kind=ConflictKind.SPLIT_STREAM,
            message=(
                f"{key} is wanted on {', '.join(tickets)}, so its messages would "
                "arrive twice (engine bug: please report)"
            ),
            tickets=tuple(tickets),
            keys=(key,),
        )
        for key, tickets in places.items()
        if len(tickets) > 1
    ]


def _split_codes(pool: Sequence[TicketStatus]) -> list[Conflict]:
    code_places: dict[str, list[str]] = {}
    for status in pool:
        for code in distinct_codes(status.desired):
            code_places.setdefault(code, []).append(status.ticket)
    return [
        Conflict(
            kind=ConflictKind.SPLIT_CODE,
            message=(
                f"{code or 'the private stream'} is split over {', '.join(tickets)}; "
                "optimize_subscriptions() merges it back"
            ),
            tickets=tuple(tickets),
        )
        for code, tickets in code_places.items()
        if len(tickets) > 1
    ]


def _missing_snapshots(
    statuses: Sequence[TicketStatus], *, now: float, snapshot_timeout: float
) -> list[Conflict]:
    """Per ticket, the streams sent with a SNAPSHOT wanted that got none in time."""
    found: list[Conflict] = []
    for status in statuses:
        late = tuple(
            key for key, sent_at in status.awaiting_snapshot if now - sent_at >= snapshot_timeout
        )
        if late:
            names = ", ".join(str(key) for key in late)
            found.append(
                Conflict(
                    kind=ConflictKind.MISSING_SNAPSHOT,
                    message=(
                        f"no SNAPSHOT within {snapshot_timeout:g} s on {status.ticket} for "
                        f"{names}; check the codes are listed, upper case and trading, and "
                        "the orderbook level is supported"
                    ),
                    tickets=(status.ticket,),
                    keys=late,
                )
            )
    return found


def ticket_view(
    status: TicketStatus,
    live: Sequence[Subscription],
    *,
    now: float,
    stall_after: float | None,
) -> dict[str, object]:
    """One ticket in the ``registry()`` shape, plus a few fields operators need."""
    keys = status.desired if status.desired else (status.sent or ())
    error: str | None = None
    if status.connected and status.desired:
        # Silence counts from the later of the last frame and this connection's start: a frame
        # of an earlier connection says nothing about this one.
        heard = max(status.last_message or -math.inf, status.connected_at or -math.inf)
        stalled = (
            stall_after is not None
            and status.last_message is not None
            and (now - heard >= stall_after)
        )
        state = "inactive" if stalled else "active"
    elif status.failure is not None:
        # Checked before "connected": a ticket that gave up says so at once, even while the
        # report of its last connection's loss is still on its way to the registry.
        state, error = "error", status.failure
    elif status.connected:
        state = "inactive"
    elif status.desired and status.lost_cause is not None:
        state, error = "error", status.lost_cause
    elif (
        not status.desired
        and status.failed
        and status.failed[-1][2] >= (status.connected_at or -math.inf)
    ):
        # Its last subscriptions failed (a request Upbit rejected): nothing is left to carry.
        state, error = "error", status.failed[-1][1]
    else:
        state = "inactive"
    return {
        "mode": status.mode.value,
        "data_types": list(dict.fromkeys(key.data_type for key in keys)),
        "symbols": [code for code in distinct_codes(keys) if code],
        "created_at": status.created_at,
        "last_message": status.last_message,
        "status": state,
        "generation": status.generation,
        "parked": status.parked,
        "subscriptions": [sub.id for sub in live if status.ticket in sub.tickets],
        "error": error,
        "failed": {sub_id: cause for sub_id, cause, _ in status.failed},
        "suspects": list(status.suspects),
    }


def pool_usage(
    mode: SubscriptionKind,
    statuses: Sequence[TicketStatus],
    live: Sequence[Subscription],
    wanted: Sequence[StreamKey],
    *,
    capacity: int,
) -> PoolUsage:
    """Usage and efficiency of one pool (``statuses`` and ``live`` of that pool only)."""
    planned = {
        status.ticket: status.desired for status in statuses if status.connected or status.desired
    }
    wire = {status.ticket: status.sent or () for status in statuses if status.connected}
    parked = [status.ticket for status in statuses if status.parked]
    wire_parked = [status.ticket for status in statuses if status.connected and status.sent == ()]
    return PoolUsage(
        mode=mode,
        tickets=len(statuses),
        open=sum(1 for status in statuses if status.connected),
        parked=len(parked),
        idle=sum(1 for status in statuses if status.idle),
        waiting=sum(1 for status in statuses if status.desired and not status.connected),
        streams=len(ordered_unique(wanted)),
        codes=len(distinct_codes(wanted)),
        subscriptions=len(live),
        efficiency=measure_efficiency(
            wanted, planned, capacity=capacity, parked=parked, max_tickets=len(statuses)
        ),
        wire_efficiency=measure_efficiency(
            wanted, wire, capacity=capacity, parked=wire_parked, max_tickets=len(statuses)
        ),
    )
