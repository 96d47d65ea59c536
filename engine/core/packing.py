"""Packing wanted streams onto the tickets of one pool. Re-exported by :mod:`engine.core`.

The unit of capacity is a *code*: a ticket's load is the number of distinct codes it carries,
whatever the number of data types per code, because all keys of one code travel together
(they merge into the same type objects of one request).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

from engine.core.keys import StreamKey, TicketDiff, TicketPlan, ordered_unique

__all__ = ("consolidate", "diff", "plan", "repack", "tickets_needed")


def tickets_needed(codes: int, capacity: int, *, max_tickets: int | None = None) -> int:
    """The fewest tickets that carry ``codes`` distinct codes at ``capacity`` codes each.

    0 for no codes, otherwise at least 1; never more than ``max_tickets`` when given.
    """
    if codes <= 0:
        return 0
    needed = max(1, math.ceil(codes / capacity))
    return needed if max_tickets is None else min(needed, max_tickets)


def _check(tickets: Iterable[str], capacity: int) -> tuple[str, ...]:
    names = tuple(tickets)
    if len(set(names)) != len(names):
        raise ValueError(f"ticket ids must be unique, got {names!r}")
    if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1:
        raise ValueError(
            f"capacity must be a positive int (distinct codes per ticket), got {capacity!r}"
        )
    return names


class _Packing:
    """Mutable working state: which ticket each key is on, and each ticket's codes."""

    def __init__(self, tickets: tuple[str, ...], order: tuple[StreamKey, ...]) -> None:
        self.tickets = tickets
        self.order = order
        self.index = {name: i for i, name in enumerate(tickets)}
        self.where: dict[StreamKey, str] = {}
        # Per ticket: code -> the keys of that code on it (dicts keep insertion order).
        self.codes: dict[str, dict[str, list[StreamKey]]] = {name: {} for name in tickets}

    def place(self, key: StreamKey, ticket: str) -> None:
        self.where[key] = ticket
        self.codes[ticket].setdefault(key.code, []).append(key)

    def load(self, ticket: str) -> int:
        return len(self.codes[ticket])

    def move_code(self, code: str, source: str, target: str) -> None:
        for key in self.codes[source].pop(code):
            self.where[key] = target
            self.codes[target].setdefault(code, []).append(key)

    def fill_first(self, capacity: int) -> str:
        for name in self.tickets:
            if self.load(name) < capacity:
                return name
        return min(self.tickets, key=lambda name: (self.load(name), self.index[name]))

    def result(self, capacity: int, before: Mapping[StreamKey, str]) -> TicketPlan:
        per_ticket: dict[str, list[StreamKey]] = {name: [] for name in self.tickets}
        for key in self.order:
            per_ticket[self.where[key]].append(key)
        moved = sum(1 for key, name in self.where.items() if key in before and before[key] != name)
        return TicketPlan(
            assignments=tuple((name, tuple(per_ticket[name])) for name in self.tickets),
            capacity=capacity,
            moved=moved,
        )


def _locations(
    current: Mapping[str, Iterable[StreamKey]], tickets: Sequence[str]
) -> dict[StreamKey, str]:
    """Key -> ticket in ``current``; a key found twice stays with the first ticket in pool order."""
    where: dict[StreamKey, str] = {}
    rank = {name: i for i, name in enumerate(tickets)}
    for name in sorted(current, key=lambda n: (n not in rank, rank.get(n, 0), n)):
        for key in current[name]:
            where.setdefault(key, name)
    return where


def plan(
    current: Mapping[str, Iterable[StreamKey]],
    wanted: Sequence[StreamKey],
    *,
    tickets: Sequence[str],
    capacity: int,
) -> TicketPlan:
    """Update a pool's packing for a new ``wanted`` list, moving as little as possible.

    ``current`` is what each ticket carries now; ``wanted`` lists the streams in subscription-
    creation order; ``tickets`` is the pool in order; ``capacity`` is in distinct codes. Rules, in
    order of priority:

    1. **Sticky**: a wanted key already on a pool ticket stays there (a key found on two tickets
       stays on the first in pool order). Keys are only re-placed if their ticket left the pool.
    2. **Merging**: a new key goes to the ticket already carrying its code, so every data type of
       a code shares one ticket and one request can merge types over the same codes.
    3. **Fill-first**: otherwise the first ticket in pool order with fewer than ``capacity``
       codes; if every ticket is full, the least-loaded one (reported by
       :attr:`TicketPlan.overloaded`).

    Keys no longer wanted are dropped. The result is deterministic.
    """
    names = _check(tickets, capacity)
    order = ordered_unique(wanted)
    before = _locations(current, names)
    return _incremental(names, order, before, capacity).result(capacity, before)


def _incremental(
    names: tuple[str, ...],
    order: tuple[StreamKey, ...],
    before: Mapping[StreamKey, str],
    capacity: int,
) -> _Packing:
    """The rules of :func:`plan` on a fresh working state."""
    if order and not names:
        raise ValueError("cannot place streams on a pool with no tickets")
    packing = _Packing(names, order)
    # Sticky keys first, so merging below sees every code's home.
    for key in order:
        if before.get(key) in packing.codes:
            packing.place(key, before[key])
    # Each code's home, found once: new keys of a code follow it.
    homes: dict[str, str] = {}
    for name in reversed(names):
        for code in packing.codes[name]:
            homes[code] = name
    for key in order:
        if key in packing.where:
            continue
        home = homes.get(key.code)
        if home is None:
            home = homes[key.code] = packing.fill_first(capacity)
        packing.place(key, home)
    return packing


def consolidate(
    current: Mapping[str, Iterable[StreamKey]],
    wanted: Sequence[StreamKey],
    *,
    tickets: Sequence[str],
    capacity: int,
) -> TicketPlan:
    """Restore the fewest open tickets after removals, moving whole codes only when needed.

    Starts from :func:`plan` (sticky, merged), then:

    1. *Relief*: while a ticket carries more than ``capacity`` codes and another has room, its
       newest code moves to the first ticket with room (an open one before an empty one).
    2. *Folding*: while more tickets are open than :func:`tickets_needed`, the least-loaded open
       ticket (the last in pool order on ties) hands its codes to the other open tickets with
       room. This always fits: with every ticket within capacity, more open tickets than needed
       means the others have room for the smallest one's codes.

    Nothing moves in steady state; with the default capacity (more than Upbit lists) it never
    moves anything. ``moved`` counts the keys that changed ticket.
    """
    names = _check(tickets, capacity)
    order = ordered_unique(wanted)
    before = _locations(current, names)
    packing = _incremental(names, order, before, capacity)

    while True:
        over = [name for name in names if packing.load(name) > capacity]
        room = [name for name in names if packing.load(name) < capacity]
        if not over or not room:
            break
        source = max(over, key=lambda name: (packing.load(name), -packing.index[name]))
        target = next((name for name in room if packing.load(name)), room[0])
        newest = next(reversed(packing.codes[source]))
        packing.move_code(newest, source, target)

    units = sum(packing.load(name) for name in names)
    needed = tickets_needed(units, capacity, max_tickets=len(names))
    while True:
        open_names = [name for name in names if packing.load(name)]
        if len(open_names) <= needed:
            break
        source = min(open_names, key=lambda name: (packing.load(name), -packing.index[name]))
        for code in list(packing.codes[source]):
            target = next(
                name for name in open_names if name != source and packing.load(name) < capacity
            )
            packing.move_code(code, source, target)
    return packing.result(capacity, before)


def repack(
    wanted: Sequence[StreamKey],
    tickets: Sequence[str],
    capacity: int,
    *,
    current: Mapping[str, Iterable[StreamKey]] | None = None,
) -> TicketPlan:
    """A fresh packing with the fewest open tickets, keeping each code's keys on one ticket.

    The optimiser behind ``optimize_subscriptions``. It opens exactly
    ``tickets_needed(codes, capacity, max_tickets=len(tickets))`` tickets, choosing those that
    already carry the most wanted keys, and prefers to leave every code where ``current`` has it
    (a greedy preference, in wanted order); ``moved`` on the result says how many keys changed
    ticket. When there are more codes than the pool can hold within capacity, codes are spread as
    evenly as possible.
    """
    names = _check(tickets, capacity)
    order = ordered_unique(wanted)
    if order and not names:
        raise ValueError("cannot place streams on a pool with no tickets")
    before = _locations(current or {}, names)
    code_keys: dict[str, list[StreamKey]] = {}
    for key in order:
        code_keys.setdefault(key.code, []).append(key)
    codes = list(code_keys)
    needed = tickets_needed(len(codes), capacity, max_tickets=len(names))

    # Where each code mostly is now, and how many wanted keys each ticket already carries.
    carried = {name: 0 for name in names}
    preferred: dict[str, str] = {}
    for code, keys in code_keys.items():
        counts = {name: 0 for name in names}
        for key in keys:
            if before.get(key) in counts:
                counts[before[key]] += 1
                carried[before[key]] += 1
        best = max(names, key=lambda name: (counts[name], -names.index(name)), default=None)
        if best is not None and counts[best]:
            preferred[code] = best
    chosen = sorted(names, key=lambda name: (-carried[name], names.index(name)))[:needed]
    chosen_in_order = [name for name in names if name in chosen]

    # Quotas: capacity each, or an even spread when even that is not enough.
    quota = {name: capacity for name in chosen_in_order}
    if len(codes) > capacity * len(chosen_in_order):
        base, extra = divmod(len(codes), len(chosen_in_order))
        quota = {name: base + (1 if i < extra else 0) for i, name in enumerate(chosen_in_order)}

    packing = _Packing(names, order)
    home: dict[str, str] = {}
    used = dict.fromkeys(chosen_in_order, 0)
    for code in codes:
        want = preferred.get(code)
        if want is not None and want in used and used[want] < quota[want]:
            home[code] = want
            used[want] += 1
    for code in codes:
        if code not in home:
            target = next(name for name in chosen_in_order if used[name] < quota[name])
            home[code] = target
            used[target] += 1
    for key in order:
        packing.place(key, home[key.code])
    return packing.result(capacity, before)


def diff(
    old: Mapping[str, Iterable[StreamKey]], new: Mapping[str, Iterable[StreamKey]]
) -> dict[str, TicketDiff]:
    """Per ticket (every ticket in either mapping, ``old``'s order first): added, removed, kept."""
    result: dict[str, TicketDiff] = {}
    for name in dict.fromkeys([*old, *new]):
        before = tuple(old.get(name, ()))
        after = tuple(new.get(name, ()))
        before_set, after_set = set(before), set(after)
        result[name] = TicketDiff(
            added=tuple(key for key in after if key not in before_set),
            removed=tuple(key for key in before if key not in after_set),
            kept=tuple(key for key in after if key in before_set),
        )
    return result
