"""Frozen records the registry hands out. Re-exported by :mod:`engine.core.registry`."""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence

import attrs

from engine.core.efficiency import Efficiency
from engine.core.keys import StreamKey
from engine.core.lifecycle import SubscriptionState

__all__ = (
    "Conflict",
    "ConflictKind",
    "OptimizeReport",
    "PoolUsage",
    "Subscription",
    "SubscriptionKind",
    "TicketChange",
    "TicketStatus",
    "coalesce_changes",
)


class SubscriptionKind(enum.StrEnum):
    """Which ticket pool serves a subscription."""

    #: Continuous public streams (ticker, trade, orderbook, candles) on the realtime pool.
    REALTIME = "realtime"
    #: One SNAPSHOT per (type, code), on the snapshot pool, then done.
    SNAPSHOT = "snapshot"
    #: myOrder / myAsset on the authenticated private pool.
    PRIVATE = "private"


@attrs.frozen
class Subscription:
    """One subscription as the registry last recorded it. The registry replaces, never mutates."""

    #: ``"sub-<serial>"``.
    id: str
    #: Monotone creation number; creation order is replay order.
    serial: int
    #: Data types, in the order given (one subscription may ask for several).
    data_types: tuple[str, ...]
    #: Codes in the order given (empty for ``myAsset`` and for ``myOrder`` on every market).
    codes: tuple[str, ...]
    #: Orderbook rows (``"CODE.N"``), or None for Upbit's default.
    units: int | None
    #: Orderbook price grouping, or None for Upbit's default.
    level: float | None
    kind: SubscriptionKind
    state: SubscriptionState
    #: The streams it wants, type-major (each type over all codes), in order.
    keys: tuple[StreamKey, ...]
    created_at: float
    #: Time of the last state or codes change.
    updated_at: float
    #: Whether it wants a SNAPSHOT when it joins a stream that is already flowing.
    snapshot: bool = True
    #: Time of the last message delivered to it (see ``Registry.mark_active``).
    last_message_at: float | None = None
    #: Tickets carrying its streams, in pool order.
    tickets: tuple[str, ...] = ()
    #: Why it failed (state FAILED), or why it was closed by the engine.
    failure: str | None = None
    #: False once its consumer stream was closed (it is then inactive).
    consumer_open: bool = True

    @property
    def is_live(self) -> bool:
        """Whether it still wants its streams."""
        return self.state.is_live


@attrs.frozen
class TicketChange:
    """ "Send this complete set": the desired set of one ticket, never a delta.

    - ``keys``: every stream the ticket must carry, in replay (subscription-creation) order.
    - ``snapshot_wanted``: keys that must come with a SNAPSHOT even if the connection already
      streams them (a new subscriber joined), plus keys new to the ticket. Keys the connection
      does not stream yet get a SNAPSHOT anyway; see ``planner.build_ticket_request``.
    - ``park``: the set became empty; send the parking request (soft unsubscribe).
    - ``hard_reset``: close the connection and reopen it with what remains (``keys``); with no
      keys, close it and stay closed.
    - ``replay``: the first set for a new connection (from ``Registry.ticket_connected``).
    - ``probe``: this set adds exactly these subscriptions to what the connection already
      carries, to find out whether Upbit accepts them (one step of isolating the subscription
      whose request Upbit answered with an error frame; see ``Registry.reject``).
    - ``serial``: the registry's number for this hand-over (0: a probe step, which confirms
      nothing queued). Report it with the send (``Registry.ticket_sent(through=...)``) so the
      registry retires exactly the sets this send replaced.

    Changes carry the connection generation they were computed for; a ticket drops changes of an
    older generation (its replay already holds the latest set).
    """

    ticket: str
    generation: int
    keys: tuple[StreamKey, ...]
    snapshot_wanted: frozenset[StreamKey] = frozenset()
    park: bool = False
    hard_reset: bool = False
    replay: bool = False
    probe: tuple[str, ...] = ()
    serial: int = 0


def coalesce_changes(changes: Sequence[TicketChange]) -> TicketChange:
    """Merge changes queued for one connection into the one send that replaces them all.

    The latest set wins; SNAPSHOT wishes accumulate (limited to keys still wanted); a pending
    hard reset is kept. All changes must be for the same ticket and generation.
    """
    if not changes:
        raise ValueError("nothing to coalesce: give at least one TicketChange")
    first, last = changes[0], changes[-1]
    for change in changes:
        if (change.ticket, change.generation) != (first.ticket, first.generation):
            raise ValueError(
                "coalesce_changes needs changes of one ticket and generation; drop changes of "
                f"older generations first (got {change.ticket}#{change.generation} "
                f"with {first.ticket}#{first.generation})"
            )
    keep = set(last.keys)
    wanted: set[StreamKey] = set()
    for change in changes:
        wanted.update(key for key in change.snapshot_wanted if key in keep)
    hard = any(change.hard_reset for change in changes)
    return TicketChange(
        ticket=last.ticket,
        generation=last.generation,
        keys=last.keys,
        snapshot_wanted=frozenset(wanted),
        park=last.park and not hard,
        hard_reset=hard,
        replay=any(change.replay for change in changes),
        serial=max(change.serial for change in changes),
    )


@attrs.frozen
class TicketStatus:
    """One ticket as the registry sees it."""

    ticket: str
    #: Pool of the ticket: ``"realtime"``, ``"snapshot"`` or ``"private"``.
    mode: SubscriptionKind
    #: What it should carry, in replay order.
    desired: tuple[StreamKey, ...]
    #: Generation of the live connection, or None while disconnected.
    generation: int | None
    #: Highest generation seen; anything older is stale.
    last_generation: int
    #: Last set confirmed sent on the live connection (``()`` = the parking request), or None.
    sent: tuple[StreamKey, ...] | None
    #: Sets handed to the live connection and not yet confirmed sent, oldest first.
    queued: tuple[tuple[StreamKey, ...], ...]
    #: When it first carried something or connected.
    created_at: float | None
    connected_at: float | None
    #: Last frame received on it (``Registry.note_message``).
    last_message: float | None
    #: Why its last connection ended (None: clean, or never connected).
    lost_cause: str | None
    #: Keys sent with a SNAPSHOT wanted and none seen yet: key -> when sent.
    awaiting_snapshot: tuple[tuple[StreamKey, float], ...]
    #: Why the ticket stopped reconnecting (restart intensity exceeded, keys refused), until it
    #: connects again; its subscriptions failed with this cause.
    failure: str | None = None
    #: When ``failure`` happened.
    failed_at: float | None = None
    #: Subscriptions under suspicion after an error frame, tested one request at a time by the
    #: next connection (creation order).
    suspects: tuple[str, ...] = ()
    #: The latest subscriptions that failed while placed on this ticket: (id, cause, when).
    failed: tuple[tuple[str, str, float], ...] = ()

    @property
    def connected(self) -> bool:
        """Whether a live connection exists."""
        return self.generation is not None

    @property
    def parked(self) -> bool:
        """Connected, carrying nothing, and holding the parking request."""
        return self.connected and not self.desired and self.sent == ()

    @property
    def idle(self) -> bool:
        """Connected and carrying nothing, without a parking request (yet)."""
        return self.connected and not self.desired and self.sent != ()

    def may_carry(self) -> frozenset[StreamKey]:
        """Streams the live connection carries or is queued to send (empty when disconnected)."""
        if not self.connected:
            return frozenset()
        keys: set[StreamKey] = set(self.sent or ())
        for queued in self.queued:
            keys.update(queued)
        return frozenset(keys)


class ConflictKind(enum.StrEnum):
    """What :meth:`Registry.detect_conflicts` can find."""

    #: A ticket would carry one stream both snapshot-only and realtime (must never happen).
    MODE_MIX = "mode_mix"
    #: Two live subscriptions with the same types, codes and options.
    DUPLICATE = "duplicate"
    #: Two live subscriptions sharing some streams (harmless: the stream is carried once).
    OVERLAP = "overlap"
    #: One stream wanted on, or carried by, two tickets.
    SPLIT_STREAM = "split_stream"
    #: One code's streams on two tickets of a pool (the requests cannot merge).
    SPLIT_CODE = "split_code"
    #: A stream sent with a SNAPSHOT wanted got none within the timeout (unlisted or lower-case
    #: code, unsupported level, or a quiet server).
    MISSING_SNAPSHOT = "missing_snapshot"


@attrs.frozen
class Conflict:
    """One finding of :meth:`Registry.detect_conflicts`."""

    kind: ConflictKind
    #: A sentence saying what is wrong and what to do.
    message: str
    subscriptions: tuple[str, ...] = ()
    tickets: tuple[str, ...] = ()
    keys: tuple[StreamKey, ...] = ()


@attrs.frozen
class PoolUsage:
    """Usage of one ticket pool (``Registry.usage``)."""

    mode: SubscriptionKind
    #: Tickets configured in the pool.
    tickets: int
    #: Tickets with a live connection.
    open: int
    #: Open tickets carrying nothing and holding the parking request.
    parked: int
    #: Open tickets carrying nothing without a parking request.
    idle: int
    #: Tickets that should carry streams but are disconnected.
    waiting: int
    #: Distinct streams wanted.
    streams: int
    #: Distinct codes wanted.
    codes: int
    #: Live subscriptions.
    subscriptions: int
    #: Efficiency of the plan: desired sets of the tickets that are open or should be.
    efficiency: Efficiency
    #: Efficiency on the wire: what open tickets last confirmed sending.
    wire_efficiency: Efficiency
    #: Tickets per connection state (``ready``, ``backing_off``...; see
    #: ``engine.core.connection_state.ConnectionState``), filled in by ``Engine.get_ticket_usage``.
    connection_states: Mapping[str, int] = attrs.field(factory=dict)


@attrs.frozen
class OptimizeReport:
    """What ``Registry.optimize`` did to one pool."""

    mode: SubscriptionKind
    #: Keys that changed ticket.
    moved: int
    #: Tickets carrying streams before and after.
    open_before: int
    open_after: int
