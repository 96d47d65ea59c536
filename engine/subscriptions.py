"""The subscription registry: the engine's single source of truth, as a sans-IO state machine.

Theory of operation
-------------------
The registry is owned by one actor (the single writer) and knows nothing about sockets or time
except the ``now`` values it is given. It holds

- **subscriptions**: frozen :class:`Subscription` records, replaced on every change, moving
  through the lifecycle table of :mod:`engine._plan_lifecycle` (PENDING, ACTIVE, MODIFYING,
  CLOSING, CLOSED, FAILED);
- **tickets**: one per connection slot, in three pools (``realtime``, ``snapshot``,
  ``private``). Each ticket has a *desired set*: the union of the streams of the live
  subscriptions placed on it, in subscription-creation order. The planner places streams
  (sticky, merged by code, fill-first; see :mod:`engine.planner`) and folds tickets back
  together after removals.

Every user operation recomputes the desired sets of the affected pool and returns one
:class:`TicketChange` per *connected* ticket whose set changed: the complete set, never a delta,
because Upbit replaces a connection's whole subscription set on every request.

A ticket's connection has a *generation*. ``ticket_connected(ticket, g)`` starts generation ``g``
and returns the replay (the desired set, in creation order); ``ticket_sent`` confirms what the
connection sent; ``ticket_lost`` ends it. Reports about any other generation are stale and change
nothing. While a ticket is disconnected its changes are *held*: nothing is emitted, the desired
set keeps the latest wish, and the replay carries it.

Subscriptions follow the wire: PENDING until every stream they want is confirmed sent (then
ACTIVE); back to PENDING when a ticket carrying them is lost; CLOSING after an unsubscribe until
no live connection carries (or has queued) a stream only they wanted.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any, Literal

import attrs

from engine._plan_inspect import find_conflicts, pool_usage, signature, ticket_view
from engine._plan_keys import PRIVATE_TYPES, StreamKey, TicketPlan, ordered_unique
from engine._plan_lifecycle import (
    TRANSITIONS,
    Event,
    IllegalTransition,
    SubscriptionState,
    next_state,
)
from engine._plan_packing import consolidate, repack
from engine._plan_records import (
    Conflict,
    ConflictKind,
    OptimizeReport,
    PoolUsage,
    Subscription,
    SubscriptionKind,
    TicketChange,
    TicketStatus,
    coalesce_changes,
)
from engine.errors import InvalidSubscriptionError

__all__ = (
    "DEFAULT_CAPACITY",
    "TRANSITIONS",
    "Conflict",
    "ConflictKind",
    "Event",
    "IllegalTransition",
    "OptimizeReport",
    "PoolUsage",
    "Registry",
    "Subscription",
    "SubscriptionKind",
    "SubscriptionState",
    "TicketChange",
    "TicketStatus",
    "coalesce_changes",
)

#: Default distinct codes per ticket. One socket carried all 855 listed pairs in a probe
#: (docs/UPBIT.md, Market codes), so by default one realtime ticket carries everything and the
#: second stays closed until a lower capacity is configured.
DEFAULT_CAPACITY = 1000

#: Failed subscriptions each ticket remembers for ``registry()`` (the newest ones).
_FAILED_KEPT = 10

_S = SubscriptionState
_K = SubscriptionKind


@attrs.define
class _Ticket:
    """Mutable per-ticket state; only the registry touches it."""

    name: str
    mode: SubscriptionKind
    desired: tuple[StreamKey, ...] = ()
    generation: int | None = None
    last_generation: int = 0
    sent: tuple[StreamKey, ...] | None = None
    sent_set: frozenset[StreamKey] = frozenset()
    queued: list[tuple[StreamKey, ...]] = attrs.Factory(list)
    #: The registry's serial of each queued set (see ``TicketChange.serial``).
    serials: list[int] = attrs.Factory(list)
    created_at: float | None = None
    connected_at: float | None = None
    last_message: float | None = None
    lost_cause: str | None = None
    awaiting: dict[StreamKey, float] = attrs.Factory(dict)
    failure: str | None = None
    failed_at: float | None = None
    suspects: list[str] = attrs.Factory(list)
    failed: list[tuple[str, str, float]] = attrs.Factory(list)

    def note_failed(self, sub_id: str, reason: str, now: float) -> None:
        self.failed.append((sub_id, reason, now))
        del self.failed[:-_FAILED_KEPT]
        if sub_id in self.suspects:
            self.suspects.remove(sub_id)

    def status(self) -> TicketStatus:
        return TicketStatus(
            ticket=self.name,
            mode=self.mode,
            desired=self.desired,
            generation=self.generation,
            last_generation=self.last_generation,
            sent=self.sent,
            queued=tuple(self.queued),
            created_at=self.created_at,
            connected_at=self.connected_at,
            last_message=self.last_message,
            lost_cause=self.lost_cause,
            awaiting_snapshot=tuple(self.awaiting.items()),
            failure=self.failure,
            failed_at=self.failed_at,
            suspects=tuple(self.suspects),
            failed=tuple(self.failed),
        )


class Registry:
    """Single-writer subscription state for one engine (see the module's theory of operation).

    ``realtime``, ``snapshot`` and ``private`` are the pool sizes; tickets are named
    ``"<pool>-<i>"``. ``capacity`` is the most distinct codes the planner puts on one ticket
    before opening the next. ``retain_closed`` bounds how many CLOSED/FAILED records are kept
    for inspection.
    """

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
        self._tickets: dict[str, _Ticket] = {
            name: _Ticket(name=name, mode=kind)
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

    # ------------------------------------------------------------------------------------------
    # Subscriptions

    def subscribe(
        self,
        data_type: str | Sequence[str],
        codes: Sequence[str],
        *,
        units: int | None = None,
        level: float | None = None,
        kind: SubscriptionKind | str | None = None,
        snapshot: bool = True,
        now: float,
    ) -> tuple[Subscription, list[TicketChange]]:
        """Register a subscription and return it with the changes to send.

        ``data_type`` may be one type or several (every type over every code). ``kind`` defaults
        to ``private`` for myOrder/myAsset and ``realtime`` otherwise; ``"snapshot"`` makes a
        one-shot request served by the snapshot pool. ``snapshot=False`` says a realtime
        subscriber joining a stream that already flows needs no fresh SNAPSHOT. Codes must
        already be validated against the market catalog (``engine.markets``); repeats are
        dropped.
        """
        types = (data_type,) if isinstance(data_type, str) else tuple(data_type)
        resolved = self._resolve_kind(types, kind)
        code_list = tuple(dict.fromkeys(codes))
        self._check_request(types, code_list, units, level, resolved)
        self._serial += 1
        sub = Subscription(
            id=f"sub-{self._serial}",
            serial=self._serial,
            data_types=types,
            codes=code_list,
            units=units,
            level=level,
            kind=resolved,
            state=_S.PENDING,
            keys=_keys_for(types, code_list, units, level),
            created_at=now,
            updated_at=now,
            snapshot=snapshot or resolved is _K.SNAPSHOT,
        )
        joiners = self._joiners(sub, sub.keys)
        self._store(sub)
        changes = self._replan(resolved, now=now, joiners=joiners)
        self._settle(now)
        return self._subs[sub.id], changes

    def modify(
        self, sub_id: str, codes: Sequence[str], *, now: float
    ) -> tuple[Subscription, list[TicketChange]]:
        """Replace a live subscription's codes, keeping its types, options and ticket(s).

        Codes it keeps stream on untouched; new codes join its code's ticket when another
        subscription already streams them, else the planner places them.
        """
        sub = self._get(sub_id)
        if Event.MODIFY not in TRANSITIONS[sub.state]:
            raise InvalidSubscriptionError(
                [f"{sub_id} is {sub.state.value} and cannot be modified; subscribe again instead"]
            )
        code_list = tuple(dict.fromkeys(codes))
        self._check_request(sub.data_types, code_list, sub.units, sub.level, sub.kind)
        keys = _keys_for(sub.data_types, code_list, sub.units, sub.level)
        if keys == sub.keys:
            return sub, []
        old = set(sub.keys)
        joiners = self._joiners(sub, [key for key in keys if key not in old])
        sub = self._transition(sub, Event.MODIFY, now, codes=code_list, keys=keys)
        changes = self._replan(sub.kind, now=now, joiners=joiners)
        self._settle(now)
        return self._subs[sub.id], changes

    def unsubscribe(
        self, sub_id: str, *, mode: Literal["soft", "hard"] = "soft", now: float
    ) -> tuple[Subscription, list[TicketChange]]:
        """End a subscription. Repeating it, or ending a failed one, changes nothing.

        ``"soft"`` re-sends each affected ticket's reduced set (parking it when empty).
        ``"hard"`` asks each affected, connected ticket to close and reopen with what remains.
        """
        if mode not in ("soft", "hard"):
            raise ValueError(f"mode must be 'soft' or 'hard', got {mode!r}")
        sub = self._get(sub_id)
        if not sub.is_live:
            self._transition(sub, Event.UNSUBSCRIBE, now)
            return self._subs[sub_id], []
        hard = frozenset(sub.tickets) if mode == "hard" else frozenset()
        sub = self._transition(sub, Event.UNSUBSCRIBE, now)
        changes = self._replan(sub.kind, now=now, hard=hard)
        self._settle(now)
        return self._subs[sub_id], changes

    def fail(
        self, sub_id: str, reason: str, *, now: float
    ) -> tuple[Subscription, list[TicketChange]]:
        """Mark a subscription FAILED with ``reason``; its streams are released (soft)."""
        sub = self._get(sub_id)
        if sub.state.is_terminal:
            self._transition(sub, Event.FAIL, now)
            return self._subs[sub_id], []
        was_live = sub.is_live
        sub = self._transition(sub, Event.FAIL, now, failure=reason)
        for name in sub.tickets:
            self._tickets[name].note_failed(sub_id, reason, now)
        changes = self._replan(sub.kind, now=now) if was_live else []
        self._settle(now)
        return self._subs[sub_id], changes

    def reject(
        self,
        ticket: str,
        keys: Iterable[StreamKey],
        reason: str,
        *,
        subscriptions: Sequence[str] | None = None,
        now: float,
    ) -> tuple[tuple[str, ...], list[TicketChange]]:
        """Upbit answered a request of ``ticket`` with an error frame; ``keys`` are what that
        request added (``subscriptions``: the ones it added, when the ticket knows them).

        The suspects are the live subscriptions on ``ticket`` wanting any of ``keys`` (or the
        live ones of ``subscriptions``). One suspect fails with ``reason``; several are kept as
        the ticket's suspects, and its next connection tests them one request at a time (see
        :meth:`ticket_connected`). Returns the ids that failed and the changes to send.
        """
        state = self._ticket(ticket)
        if subscriptions is not None:
            named = set(subscriptions)
            found = [sub for sub in self.subscriptions() if sub.id in named]
        else:
            wanted = set(keys)
            found = [
                sub
                for sub in self.subscriptions()
                if ticket in sub.tickets and not wanted.isdisjoint(sub.keys)
            ]
        if not found:
            return (), []
        if len(found) == 1:
            sub, changes = self.fail(found[0].id, reason, now=now)
            return (sub.id,), changes
        known = set(state.suspects)
        state.suspects.extend(sub.id for sub in found if sub.id not in known)
        state.suspects.sort(key=lambda sub_id: self._subs[sub_id].serial)
        return (), []

    def probe_passed(self, ticket: str, subscriptions: Iterable[str]) -> None:
        """Upbit accepted the request that added ``subscriptions``: they are suspects no more."""
        passed = set(subscriptions)
        state = self._ticket(ticket)
        state.suspects = [sub_id for sub_id in state.suspects if sub_id not in passed]

    def ticket_failed(
        self, ticket: str, reason: str, *, now: float
    ) -> tuple[tuple[str, ...], list[TicketChange]]:
        """``ticket`` stopped reconnecting (restart intensity exceeded, or Upbit refused its
        keys): every live subscription on it fails with ``reason``, and ``registry_view`` shows
        the ticket as ``error`` until it connects again. Returns the failed ids and changes."""
        state = self._ticket(ticket)
        state.failure = reason
        state.failed_at = now
        failed: list[str] = []
        changes: list[TicketChange] = []
        for sub in self.subscriptions():
            if ticket in sub.tickets:
                _, more = self.fail(sub.id, reason, now=now)
                failed.append(sub.id)
                changes.extend(more)
        return tuple(failed), changes

    def mark_active(self, sub_id: str, *, now: float) -> Subscription:
        """A message was delivered to ``sub_id`` at ``now`` (call at most every second or so).

        A PENDING subscription becomes ACTIVE; late frames for closed ones are accepted and
        change nothing. Ids never issued, or evicted (``retain_closed``), raise
        ``InvalidSubscriptionError``.
        """
        sub = self._get(sub_id)
        return self._transition(sub, Event.ACTIVATE, now, last_message_at=now)

    def consumer_opened(self, sub_id: str, *, now: float) -> Subscription:
        """A stream of ``sub_id`` was opened: it counts as consumed again (undoes
        :meth:`consumer_closed`)."""
        sub = self._get(sub_id)
        if sub.consumer_open:
            return sub
        updated = attrs.evolve(sub, consumer_open=True, updated_at=now)
        self._store(updated)
        return updated

    def consumer_closed(self, sub_id: str, *, now: float) -> Subscription:
        """The subscriber stopped reading; the subscription counts as inactive from now on."""
        sub = self._get(sub_id)
        if not sub.consumer_open:
            return sub
        updated = attrs.evolve(sub, consumer_open=False, updated_at=now)
        self._store(updated)
        return updated

    # ------------------------------------------------------------------------------------------
    # Tickets

    def ticket_connected(self, ticket: str, generation: int, *, now: float) -> list[TicketChange]:
        """Generation ``generation`` of ``ticket`` is connected: return its replay.

        The replay is the whole desired set in subscription-creation order (nothing if the
        ticket should carry nothing). Generations not above every one seen before are stale.
        """
        state = self._ticket(ticket)
        if generation <= state.last_generation:
            return []
        if state.generation is not None:
            # A newer connection implies the older one is gone, even if nobody said so.
            self.ticket_lost(ticket, state.generation, "superseded by a new connection", now=now)
        state.generation = generation
        state.last_generation = generation
        state.sent = None
        state.sent_set = frozenset()
        state.queued = []
        state.serials = []
        state.connected_at = now
        state.lost_cause = None
        state.awaiting = {}
        state.failure = None
        state.failed_at = None
        if state.created_at is None:
            state.created_at = now
        if not state.desired:
            return []
        steps = self._probe_steps(state, generation)
        # Only the step carrying the whole set confirms the queued replay.
        steps[-1] = attrs.evolve(steps[-1], serial=self._queue(state, state.desired))
        return steps

    def _probe_steps(self, state: _Ticket, generation: int) -> list[TicketChange]:
        """The replay of a new connection: one complete set, or, while some subscriptions are
        suspects, the set without them followed by one step per suspect adding its streams."""
        private = state.mode is _K.PRIVATE
        suspects = [
            self._subs[sub_id]
            for sub_id in state.suspects
            if sub_id in self._live and state.name in self._subs[sub_id].tickets
        ]
        state.suspects = [sub.id for sub in suspects]
        if not suspects:
            wanted = frozenset() if private else frozenset(state.desired)
            return [
                TicketChange(
                    ticket=state.name,
                    generation=generation,
                    keys=state.desired,
                    snapshot_wanted=wanted,
                    replay=True,
                )
            ]
        suspect_ids = {sub.id for sub in suspects}
        trusted: set[StreamKey] = set()
        for sub_id in self._live:
            if sub_id not in suspect_ids and state.name in self._subs[sub_id].tickets:
                trusted.update(self._subs[sub_id].keys)
        carried = {key for key in state.desired if key in trusted}
        steps: list[TicketChange] = []
        if carried:
            base = tuple(key for key in state.desired if key in carried)
            steps.append(
                TicketChange(
                    ticket=state.name,
                    generation=generation,
                    keys=base,
                    snapshot_wanted=frozenset() if private else frozenset(base),
                    replay=True,
                )
            )
        for sub in suspects:
            mine = {key for key in sub.keys if key in state.desired}
            carried |= mine
            steps.append(
                TicketChange(
                    ticket=state.name,
                    generation=generation,
                    keys=tuple(key for key in state.desired if key in carried),
                    # A joiner of streams already carried still wants its own SNAPSHOT.
                    snapshot_wanted=frozenset() if private else frozenset(mine),
                    replay=True,
                    probe=(sub.id,),
                )
            )
        return steps

    def replay_request(self, ticket: str, generation: int) -> tuple[StreamKey, ...]:
        """The keys a connection of ``generation`` must send, in creation order (stale: ``()``)."""
        state = self._ticket(ticket)
        if state.generation != generation:
            return ()
        return state.desired

    def ticket_sent(
        self,
        ticket: str,
        generation: int,
        keys: Iterable[StreamKey],
        *,
        snapshot_keys: Iterable[StreamKey] = (),
        through: int | None = None,
        now: float,
    ) -> bool:
        """The connection sent a request carrying exactly ``keys`` (``()``: the parking request).

        ``snapshot_keys`` are the keys sent without ``is_only_realtime`` (a SNAPSHOT is due);
        :meth:`note_snapshot` clears them. ``through`` is the highest ``TicketChange.serial``
        the send merged: every set queued up to it is retired (0 retires nothing). Without it,
        the send retires the queued sets up to the first one equal to ``keys``. Returns False,
        changing nothing, if stale.
        """
        state = self._ticket(ticket)
        if state.generation != generation:
            return False
        sent = tuple(keys)
        state.sent = sent
        state.sent_set = frozenset(sent)
        sent_as_set = state.sent_set
        if through is not None:
            # The ticket merged every hand-over up to ``through`` into this send: even when a
            # burst went back and forth (A, B, A), nothing queued before it is still to come.
            kept = [(s, q) for s, q in zip(state.serials, state.queued, strict=True) if s > through]
            state.serials = [s for s, _ in kept]
            state.queued = [q for _, q in kept]
        else:
            # Sets are sent in the order they were handed over (possibly skipping some), so this
            # send retires every queued set up to the one it matches.
            for index, queued in enumerate(state.queued):
                if frozenset(queued) == sent_as_set:
                    del state.queued[: index + 1]
                    del state.serials[: index + 1]
                    # Equal sets queued right after it (a re-send for a joiner) are this send.
                    while state.queued and frozenset(state.queued[0]) == sent_as_set:
                        del state.queued[0]
                        del state.serials[0]
                    break
        state.awaiting = {key: at for key, at in state.awaiting.items() if key in sent_as_set}
        if state.mode is not _K.PRIVATE:
            for key in snapshot_keys:
                if key in sent_as_set:
                    state.awaiting[key] = now
        self._settle(now)
        return True

    def connect_failed(self, ticket: str, cause: str) -> None:
        """``ticket`` could not connect because of ``cause``: while it stays down with streams
        to carry, ``registry_view`` shows it as ``error`` with that cause (a connection
        clears it)."""
        state = self._ticket(ticket)
        if state.generation is None:
            state.lost_cause = cause

    def ticket_lost(self, ticket: str, generation: int, cause: str | None, *, now: float) -> bool:
        """The connection of ``generation`` ended (``cause`` None: closed on purpose).

        Its subscriptions go back to PENDING until the replay of the next generation is sent.
        Returns False, changing nothing, if stale.
        """
        state = self._ticket(ticket)
        if state.generation is None or state.generation != generation:
            return False
        state.generation = None
        state.sent = None
        state.sent_set = frozenset()
        state.queued = []
        state.serials = []
        state.lost_cause = cause
        state.awaiting = {}
        for sub_id in list(self._live):
            sub = self._subs[sub_id]
            if ticket in sub.tickets:
                self._transition(sub, Event.LOST, now)
        self._settle(now)
        return True

    def note_message(self, ticket: str, *, now: float) -> None:
        """A frame arrived on ``ticket`` at ``now`` (drives ``last_message`` and stall status)."""
        self._ticket(ticket).last_message = now

    def note_snapshot(self, ticket: str, key: StreamKey, *, now: float) -> None:
        """A SNAPSHOT for ``key`` arrived on ``ticket``."""
        state = self._ticket(ticket)
        state.awaiting.pop(key, None)
        state.last_message = now

    def optimize(
        self, *, now: float, modes: Iterable[SubscriptionKind | str] = ("realtime", "private")
    ) -> tuple[tuple[OptimizeReport, ...], list[TicketChange]]:
        """Repack the given pools onto the fewest tickets (``optimize_subscriptions``).

        Keeps every code's streams on one ticket and prefers leaving streams where they are.
        Changes for tickets gaining streams come first, so a moved stream starts on its new
        ticket before it stops on the old one (a moved stream gets a fresh SNAPSHOT).
        """
        reports: list[OptimizeReport] = []
        changes: list[TicketChange] = []
        for mode in modes:
            kind = SubscriptionKind(mode)
            names = self._pools[kind]
            if not names:
                continue
            current = {name: self._tickets[name].desired for name in names}
            before = sum(1 for keys in current.values() if keys)
            packed = repack(self.wanted(kind), names, self._capacity, current=current)
            changes.extend(self._apply(kind, packed, now=now))
            reports.append(
                OptimizeReport(
                    mode=kind,
                    moved=packed.moved,
                    open_before=before,
                    open_after=len(packed.open_tickets),
                )
            )
        self._settle(now)
        return tuple(reports), changes

    # ------------------------------------------------------------------------------------------
    # Queries

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

    # ------------------------------------------------------------------------------------------
    # Internals

    def _get(self, sub_id: str) -> Subscription:
        try:
            return self._subs[sub_id]
        except KeyError:
            raise InvalidSubscriptionError(
                [f"no subscription {sub_id!r}; use an id returned by subscribe"]
            ) from None

    def _ticket(self, ticket: str) -> _Ticket:
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
        state: _Ticket,
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

    def _queue(self, state: _Ticket, keys: tuple[StreamKey, ...]) -> int:
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


def _keys_for(
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
