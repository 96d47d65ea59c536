"""The subscription registry: the engine's single source of truth, as a sans-IO state machine.

Theory of operation
-------------------
The registry is owned by one actor (the single writer) and knows nothing about sockets or time
except the ``now`` values it is given. It holds

- **subscriptions**: frozen :class:`Subscription` records, replaced on every change, moving
  through the lifecycle table of :mod:`engine.core.lifecycle` (PENDING, ACTIVE, MODIFYING,
  CLOSING, CLOSED, FAILED);
- **tickets**: one per connection slot, in three pools (``realtime``, ``snapshot``,
  ``private``). Each ticket has a *desired set*: the union of the streams of the live
  subscriptions placed on it, in subscription-creation order. The planner places streams
  (sticky, merged by code, fill-first; see :mod:`engine.core`) and folds tickets back
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

from collections.abc import Iterable, Sequence
from typing import Literal

import attrs

from engine.core.keys import StreamKey
from engine.core.lifecycle import TRANSITIONS, Event, IllegalTransition, SubscriptionState
from engine.core.packing import repack
from engine.core.records import (
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
from engine.core.registry_base import DEFAULT_CAPACITY, RegistryBase, keys_for
from engine.core.ticket_state import TicketState
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

_S = SubscriptionState
_K = SubscriptionKind


class Registry(RegistryBase):
    """Single-writer subscription state for one engine (see the module's theory of operation).

    ``realtime``, ``snapshot`` and ``private`` are the pool sizes; tickets are named
    ``"<pool>-<i>"``. ``capacity`` is the most distinct codes the planner puts on one ticket
    before opening the next. ``retain_closed`` bounds how many CLOSED/FAILED records are kept
    for inspection.
    """

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
            keys=keys_for(types, code_list, units, level),
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
        keys = keys_for(sub.data_types, code_list, sub.units, sub.level)
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

    def _probe_steps(self, state: TicketState, generation: int) -> list[TicketChange]:
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
