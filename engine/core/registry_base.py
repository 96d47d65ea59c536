"""The registry's state and invariants: the subscriptions and tickets it holds, how a change is
applied to the tickets' desired sets (``_replan`` / ``_apply``), how the wire settles
subscriptions (``_settle``), and every read-only view. :class:`~engine.core.registry.Registry`
adds the operations on top; see that module for the theory of operation.

Sans-IO: no Trio, no sockets, no clock but the ``now`` values it is given.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

import attrs

from engine.core.inspect import find_conflicts, pool_usage, signature, ticket_view
from engine.core.keys import PRIVATE_TYPES, StreamKey, TicketPlan, ordered_unique
from engine.core.lifecycle import Event, SubscriptionState, next_state
from engine.core.packing import consolidate
from engine.core.records import (
    Conflict,
    PoolUsage,
    Subscription,
    SubscriptionKind,
    TicketChange,
    TicketStatus,
)
from engine.core.ticket_state import TicketState
from engine.errors import InvalidSubscriptionError

__all__ = ("DEFAULT_CAPACITY", "RegistryBase", "keys_for")

#: Default distinct codes per ticket. One socket carried all 855 listed pairs in a probe
#: (docs/UPBIT.md, Market codes), so by default one realtime ticket carries everything and the
#: second stays closed until a lower capacity is configured.
DEFAULT_CAPACITY = 1000

_S = SubscriptionState
_K = SubscriptionKind


class RegistryBase:
    """The registry's state, its internal transitions and its queries (subclassed by
    :class:`~engine.core.registry.Registry`, which adds the operations)."""

    def _get(self, sub_id: str) -> Subscription:
        try:
            return self._subs[sub_id]
        except KeyError:
            raise InvalidSubscriptionError(
                [f"no subscription {sub_id!r}; use an id returned by subscribe"]
            ) from None

    def _ticket(self, ticket: str) -> TicketState:
        try:
            return self._tickets[ticket]
        except KeyError:
            known = ", ".join(self._tickets) or "none"
            raise ValueError(f"unknown ticket {ticket!r} (tickets: {known})") from None

    def _resolve_kind(
        self, types: Sequence[str], kind: SubscriptionKind | str | None
    ) -> SubscriptionKind:
        private = [t for t in types if t in PRIVATE_TYPES]
        if not types:
            raise InvalidSubscriptionError(["give at least one data type"])
        if private and len(private) != len(types):
            raise InvalidSubscriptionError(
                ["myOrder/myAsset use the private endpoint: subscribe to them separately"]
            )
        if kind is None:
            return _K.PRIVATE if private else _K.REALTIME
        try:
            resolved = SubscriptionKind(kind)
        except ValueError:
            choices = ", ".join(repr(k.value) for k in _K)
            raise InvalidSubscriptionError(
                [f"kind must be one of {choices}, got {kind!r}"]
            ) from None
        if (resolved is _K.PRIVATE) != bool(private):
            raise InvalidSubscriptionError(
                ["kind 'private' is for myOrder/myAsset only, and they need no other kind"]
            )
        return resolved

    def _check_request(
        self,
        types: Sequence[str],
        codes: Sequence[str],
        units: int | None,
        level: float | None,
        kind: SubscriptionKind,
    ) -> None:
        reasons: list[str] = []
        if len(set(types)) != len(types):
            reasons.append(f"data types repeat: {list(types)}; give each once")
        if any(not isinstance(code, str) or not code for code in codes):
            reasons.append("codes must be non-empty strings such as 'KRW-BTC'")
        if kind is not _K.PRIVATE and not codes:
            reasons.append(f"{', '.join(types)} needs at least one code")
        if "myAsset" in types and codes:
            reasons.append("myAsset takes no codes (Upbit answers WRONG_FORMAT); pass []")
        if (units is not None or level is not None) and "orderbook" not in types:
            reasons.append("units and level apply to orderbook only")
        if not self._pools[kind]:
            reasons.append(f"the {kind.value} pool has no tickets; configure at least one")
        if reasons:
            raise InvalidSubscriptionError(reasons)

    def _joiners(self, sub: Subscription, keys: Iterable[StreamKey]) -> dict[str, set[StreamKey]]:
        """Keys ``sub`` newly wants that already have a ticket and must be re-snapshotted."""
        if sub.kind is _K.PRIVATE or not sub.snapshot:
            return {}
        where = self._where[sub.kind]
        joiners: dict[str, set[StreamKey]] = {}
        for key in keys:
            if key in where:
                joiners.setdefault(where[key], set()).add(key)
        return joiners

    def _store(self, sub: Subscription) -> None:
        self._subs[sub.id] = sub
        if sub.is_live:
            self._live.setdefault(sub.id, None)
        else:
            self._live.pop(sub.id, None)
        if sub.state is _S.CLOSING:
            self._closing[sub.id] = None
        else:
            self._closing.pop(sub.id, None)
        if sub.state.is_terminal and sub.id not in self._terminal:
            self._terminal[sub.id] = None
            while len(self._terminal) > self._retain:
                oldest, _ = self._terminal.popitem(last=False)
                del self._subs[oldest]

    def _transition(
        self, sub: Subscription, event: Event, now: float, **fields: Any
    ) -> Subscription:
        state = next_state(sub.id, sub.state, event)
        if state is not sub.state:
            fields.update(state=state, updated_at=now)
        elif "codes" in fields:
            fields["updated_at"] = now
        if not fields:
            return sub
        updated = attrs.evolve(sub, **fields)
        self._store(updated)
        return updated

    def _replan(
        self,
        kind: SubscriptionKind,
        *,
        now: float,
        joiners: Mapping[str, set[StreamKey]] | None = None,
        hard: frozenset[str] = frozenset(),
    ) -> list[TicketChange]:
        names = self._pools[kind]
        current = {name: self._tickets[name].desired for name in names}
        packed = consolidate(current, self.wanted(kind), tickets=names, capacity=self._capacity)
        return self._apply(kind, packed, now=now, joiners=joiners or {}, hard=hard)

    def _apply(
        self,
        kind: SubscriptionKind,
        packed: TicketPlan,
        *,
        now: float,
        joiners: Mapping[str, set[StreamKey]] | None = None,
        hard: frozenset[str] = frozenset(),
    ) -> list[TicketChange]:
        gaining: list[TicketChange] = []
        others: list[TicketChange] = []
        for name in self._pools[kind]:
            state = self._tickets[name]
            old, new = state.desired, packed[name]
            state.desired = new
            if new and state.created_at is None:
                state.created_at = now
            change = self._change_for(
                state, old, new, (joiners or {}).get(name, set()), name in hard
            )
            if change is None:
                continue
            change = attrs.evolve(change, serial=self._queue(state, change.keys))
            (gaining if set(new) - set(old) else others).append(change)
        self._where[kind] = {key: name for name, keys in packed.items() for key in keys}
        for sub_id in list(self._live):
            sub = self._subs[sub_id]
            if sub.kind is kind:
                placed = {self._where[kind][key] for key in sub.keys}
                tickets = tuple(name for name in self._pools[kind] if name in placed)
                if tickets != sub.tickets:
                    self._store(attrs.evolve(sub, tickets=tickets))
        # Starting streams before stopping them keeps a moved stream's gap as short as possible.
        return gaining + others

    @staticmethod
    def _change_for(
        state: TicketState,
        old: tuple[StreamKey, ...],
        new: tuple[StreamKey, ...],
        joiners: set[StreamKey],
        hard: bool,
    ) -> TicketChange | None:
        generation = state.generation
        if generation is None:
            return None  # held: the replay of the next connection carries the latest set
        old_set, new_set = set(old), set(new)
        if state.mode is _K.PRIVATE:
            wanted: frozenset[StreamKey] = frozenset()
        else:
            wanted = frozenset(new_set - old_set) | frozenset(joiners & new_set)

        def change(*, hard_reset: bool = False, park: bool = False) -> TicketChange:
            return TicketChange(
                ticket=state.name,
                generation=generation,
                keys=new,
                snapshot_wanted=wanted,
                hard_reset=hard_reset,
                park=park,
            )

        if hard:
            return change(hard_reset=True)
        if state.mode is _K.SNAPSHOT:
            # Snapshot-only requests stop by themselves: only additions need a send, and that
            # send repeats every pending ask, since a new request replaces the unanswered ones.
            return change() if wanted else None
        if new_set == old_set and not wanted:
            return None
        if not new:
            # The private endpoint serves no public snapshot to park on: close instead.
            return change(hard_reset=True) if state.mode is _K.PRIVATE else change(park=True)
        return change()

    def _queue(self, state: TicketState, keys: tuple[StreamKey, ...]) -> int:
        """Record ``keys`` as handed to ``state``'s connection; returns the hand-over's serial."""
        self._changes += 1
        state.queued.append(keys)
        state.serials.append(self._changes)
        return self._changes

    def _settle(self, now: float) -> None:
        """Apply what the wire now says: APPLIED to subscriptions fully sent, STOPPED to
        closing ones nothing carries any more."""
        for sub_id in list(self._live):
            sub = self._subs[sub_id]
            if sub.state in (_S.PENDING, _S.MODIFYING) and self._fully_sent(sub):
                self._transition(sub, Event.APPLIED, now)
        for sub_id in list(self._closing):
            sub = self._subs[sub_id]
            if self._stopped(sub):
                self._transition(sub, Event.STOPPED, now)

    def _fully_sent(self, sub: Subscription) -> bool:
        where = self._where[sub.kind]
        for key in sub.keys:
            name = where.get(key)
            if name is None:
                return False
            state = self._tickets[name]
            if state.generation is None or key not in state.sent_set:
                return False
        return True

    def _stopped(self, sub: Subscription) -> bool:
        if sub.kind is _K.SNAPSHOT:
            return True  # a snapshot-only request stops by itself
        mine = set(sub.keys)
        for name in self._pools[sub.kind]:
            state = self._tickets[name]
            if state.generation is None:
                continue
            only_mine = mine.difference(state.desired)
            if not only_mine:
                continue
            if only_mine & state.sent_set or any(only_mine.intersection(q) for q in state.queued):
                return False
        return True

    @property
    def capacity(self) -> int:
        """Distinct codes per ticket before the planner opens another."""
        return self._capacity

    def tickets(self, mode: SubscriptionKind | str | None = None) -> tuple[str, ...]:
        """Ticket ids of one pool (or all pools: realtime, snapshot, private), in order."""
        if mode is None:
            return tuple(self._tickets)
        return self._pools[SubscriptionKind(mode)]

    def subscription(self, sub_id: str) -> Subscription:
        """The current record of ``sub_id``."""
        return self._get(sub_id)

    def subscriptions(self, *, live_only: bool = True) -> tuple[Subscription, ...]:
        """Subscriptions in creation order: live ones, or every retained one."""
        if live_only:
            return tuple(self._subs[sub_id] for sub_id in self._live)
        return tuple(sorted(self._subs.values(), key=lambda sub: sub.serial))

    def ticket_status(self, ticket: str) -> TicketStatus:
        """A frozen view of one ticket."""
        return self._ticket(ticket).status()

    def wanted(self, mode: SubscriptionKind | str) -> tuple[StreamKey, ...]:
        """Distinct streams the live subscriptions of a pool want, in creation order."""
        kind = SubscriptionKind(mode)
        return ordered_unique(
            key
            for sub_id in self._live
            if (sub := self._subs[sub_id]).kind is kind
            for key in sub.keys
        )

    def routes(self, mode: SubscriptionKind | str) -> dict[StreamKey, tuple[str, ...]]:
        """Stream -> ids of the live subscriptions wanting it (creation order), for one pool."""
        kind = SubscriptionKind(mode)
        table: dict[StreamKey, list[str]] = {}
        for sub_id in self._live:
            sub = self._subs[sub_id]
            if sub.kind is kind:
                for key in sub.keys:
                    table.setdefault(key, []).append(sub_id)
        return {key: tuple(ids) for key, ids in table.items()}

    def tickets_needing_connection(self) -> tuple[str, ...]:
        """Disconnected tickets that should carry streams: start (or restart) them."""
        return tuple(
            name
            for name, state in self._tickets.items()
            if state.desired and state.generation is None
        )

    def closable_tickets(self) -> tuple[str, ...]:
        """Connected tickets carrying nothing (parked or idle): cleanup may close them."""
        return tuple(
            name
            for name, state in self._tickets.items()
            if not state.desired and state.generation is not None
        )

    def unsettled(self) -> list[str]:
        """What keeps the registry from agreeing with the wire, one line each; empty when every
        live subscription is ACTIVE and every ticket that should carry streams is connected
        with its last request sent and confirmed (nothing queued)."""
        found = [
            f"{sub.id} is {sub.state.value}"
            for sub in self.subscriptions()
            if sub.state is not _S.ACTIVE
        ]
        for name, state in self._tickets.items():
            if state.desired and state.generation is None:
                found.append(f"{name} is not connected")
            elif state.generation is not None and (state.queued or state.sent is None):
                found.append(f"{name} has requests not yet confirmed sent")
        return found

    def check_duplicate(
        self,
        data_type: str | Sequence[str],
        codes: Sequence[str],
        *,
        units: int | None = None,
        level: float | None = None,
        kind: SubscriptionKind | str | None = None,
    ) -> bool:
        """Whether a live subscription already asks for exactly these types, codes and options.

        Backs ``Engine.validate_subscription``, which refuses duplicate subscriptions.
        """
        types = (data_type,) if isinstance(data_type, str) else tuple(data_type)
        wanted = signature(self._resolve_kind(types, kind), types, codes, units, level)
        return any(
            signature(sub.kind, sub.data_types, sub.codes, sub.units, sub.level) == wanted
            for sub in self.subscriptions()
        )

    def detect_conflicts(
        self, now: float | None = None, *, snapshot_timeout: float = 5.0
    ) -> list[Conflict]:
        """Findings about the current state (see :class:`ConflictKind`).

        With ``now``, streams still waiting for their SNAPSHOT after ``snapshot_timeout`` seconds
        are reported too.
        """
        return find_conflicts(
            self.subscriptions(),
            [state.status() for state in self._tickets.values()],
            now=now,
            snapshot_timeout=snapshot_timeout,
        )

    def inactive(
        self, now: float, inactive_after: float, *, reading: Collection[str] = ()
    ) -> list[str]:
        """Live subscriptions that ``cleanup_inactive`` may release, in creation order.

        Subscriptions in ``reading`` (a task reads their stream) are never inactive: releasing
        them would end a stream someone is reading. Any other subscription is inactive when its
        consumer stream was closed, or when it is ACTIVE,
        public, every ticket carrying it is connected (its streams should be flowing), and
        nothing was delivered to it for ``inactive_after`` seconds (counted from its last
        message, or from its last change if it never got one). Private streams (myOrder,
        myAsset) only speak when the account trades, so silence never makes them inactive; a
        one-shot (snapshot) request counts once it waited ``inactive_after`` in any live state.
        """
        found: list[str] = []
        for sub in self.subscriptions():
            if sub.id in reading:
                continue
            if not sub.consumer_open:
                found.append(sub.id)
                continue
            since = max(sub.updated_at, sub.last_message_at or -math.inf)
            if now - since < inactive_after:
                continue
            if sub.kind is _K.SNAPSHOT or (
                sub.kind is _K.REALTIME
                and sub.state is _S.ACTIVE
                and all(self._tickets[name].generation is not None for name in sub.tickets)
            ):
                found.append(sub.id)
        return found

    def registry_view(
        self, now: float, *, stall_after: float | None = None
    ) -> dict[str, dict[str, object]]:
        """The ``registry()`` shape: ticket id -> mode, data types, symbols, times, status.

        Lists tickets that are connected, should carry something, or failed. ``status`` is
        ``"active"`` (connected with streams; ``"inactive"`` instead if ``stall_after`` is given
        and no frame came for that long), ``"error"`` (streams wanted but the connection was
        lost abnormally; or the ticket gave up, see :meth:`ticket_failed`; or it carries nothing
        because its last subscriptions failed) or ``"inactive"``. ``failed`` maps the latest
        subscriptions that failed on the ticket to their cause.
        """
        live = self.subscriptions()
        view: dict[str, dict[str, object]] = {}
        for name, state in self._tickets.items():
            entry = ticket_view(state.status(), live, now=now, stall_after=stall_after)
            if state.generation is None and not state.desired and entry["status"] != "error":
                continue
            view[name] = entry
        return view

    def usage(self, now: float) -> dict[str, PoolUsage]:
        """Per pool: tickets open/parked/idle, streams, codes, subscriptions and efficiency."""
        del now  # usage is a function of state alone; the parameter keeps the API uniform
        live = self.subscriptions()
        result: dict[str, PoolUsage] = {}
        for kind, names in self._pools.items():
            result[kind.value] = pool_usage(
                kind,
                [self._tickets[name].status() for name in names],
                [sub for sub in live if sub.kind is kind],
                self.wanted(kind),
                capacity=self._capacity,
            )
        return result

    def __init__(
        self,
        *,
        realtime: int = 2,
        snapshot: int = 1,
        private: int = 1,
        capacity: int = DEFAULT_CAPACITY,
        retain_closed: int = 1000,
    ) -> None:
        sizes = {_K.REALTIME: realtime, _K.SNAPSHOT: snapshot, _K.PRIVATE: private}
        for kind, size in sizes.items():
            if isinstance(size, bool) or not isinstance(size, int) or size < 0:
                raise ValueError(f"{kind.value} pool size must be an int >= 0, got {size!r}")
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1:
            raise ValueError(f"capacity must be a positive int (codes per ticket): {capacity!r}")
        if retain_closed < 0:
            raise ValueError(f"retain_closed must be >= 0, got {retain_closed!r}")
        self._capacity = capacity
        self._retain = retain_closed
        self._pools: dict[SubscriptionKind, tuple[str, ...]] = {
            kind: tuple(f"{kind.value}-{i}" for i in range(size)) for kind, size in sizes.items()
        }
        self._tickets: dict[str, TicketState] = {
            name: TicketState(name=name, mode=kind)
            for kind, names in self._pools.items()
            for name in names
        }
        self._where: dict[SubscriptionKind, dict[StreamKey, str]] = {kind: {} for kind in _K}
        self._subs: dict[str, Subscription] = {}
        # Live (PENDING/ACTIVE/MODIFYING) ids in creation order, CLOSING ids, and retained
        # terminal ids oldest first.
        self._live: dict[str, None] = {}
        self._closing: dict[str, None] = {}
        self._terminal: OrderedDict[str, None] = OrderedDict()
        self._serial = 0
        self._changes = 0


def keys_for(
    types: Sequence[str], codes: Sequence[str], units: int | None, level: float | None
) -> tuple[StreamKey, ...]:
    keys: list[StreamKey] = []
    for data_type in types:
        if data_type == "myAsset" or (data_type in PRIVATE_TYPES and not codes):
            keys.append(StreamKey(data_type, ""))
            continue
        book = data_type == "orderbook"
        keys.extend(
            StreamKey(data_type, code, units if book else None, level if book else None)
            for code in codes
        )
    return tuple(keys)
