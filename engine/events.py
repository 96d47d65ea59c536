"""Engine events: what the engine itself says inside a subscriber's stream.

``async for msg in engine.stream(sub_id)`` yields Upbit's messages
(:mod:`engine.wire.messages`) and, between them, these events. Two mark the ends of a connection
outage:

- :class:`Interrupted` arrives as soon as the connection carrying some of the subscription's
  streams is lost: from now on the data on hand may be stale, and a quiet stream is quiet because
  nothing can arrive, not because nothing happened.
- :class:`Gap` arrives once the connection is restored, before the fresh SNAPSHOT of each stream:
  messages may have been missed between ``start`` and ``end``. It follows the matching
  :class:`Interrupted`; each interrupted code gets exactly one. Usually one Gap covers every
  code; a stream that moves to another connection while its own is down gets its Gap
  (``end=None``, its codes) before anything of the new connection, and the Gap at the reconnect
  covers the codes that stayed.

one marks the end of the stream:

- :class:`Ended` is the last item of a stream that ended without an error: the subscription
  was unsubscribed (by any task, or released by ``cleanup_inactive``) or the engine closed.
  ``async for`` stops after it. A stream never stops without it, or without raising
  :class:`~engine.errors.SubscriptionFailedError` when the subscription failed;

one reports a gap closed after the fact:

- :class:`Backfilled` follows the trades of a code the engine fetched from Upbit's REST API
  after a :class:`Gap` (``Gap.backfill`` lists the codes): it says whether the hole was filled
  completely, or which trade times were not (:class:`Unfilled`, with reasons);

and one marks a wait that ran out:

- :class:`SnapshotMissing` arrives when a stream's SNAPSHOT did not come within
  ``EngineConfig.snapshot_timeout`` of the request that asked for it (Upbit does not promise one
  for untraded, new or suspended markets). The stream's REALTIME messages flow from then on; a
  SNAPSHOT arriving later is not delivered. It takes the SNAPSHOT's place in the order
  Interrupted, Gap, SNAPSHOT, REALTIME.

Events are never dropped or conflated by a full buffer. Like messages they have a ``type``
(``"interrupted"``, ``"gap"``, ``"snapshot_missing"``, ``"backfilled"``, ``"ended"``), so
``if msg.type == "trade"`` style dispatch needs no special case.
Times are Trio clock seconds (``trio.current_time()``), the clock the engine's timeouts use;
``utc`` beside them is the wall-clock time (UTC) at which the engine emitted the event, for
relating it to anything outside the process. ``utc`` takes no part in equality or ``repr``
(two runs of the same events compare and print alike).
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, TypeAlias

import attrs

__all__ = (
    "EVENT_TYPES",
    "UNFILLED_REASONS",
    "Backfilled",
    "Ended",
    "EngineEvent",
    "Gap",
    "Interrupted",
    "SnapshotMissing",
    "Unfilled",
)


@attrs.frozen(weakref_slot=False)
class Interrupted:
    """The connection ``ticket`` carrying ``codes`` of this subscription was lost at ``start``.

    ``cause`` says why (the transport's error, a stall, a server close). A :class:`Gap` for the
    same ticket follows when the streams are restored.
    """

    type: ClassVar[str] = "interrupted"

    ticket: str
    start: float
    cause: str
    #: The pair codes of this subscription the connection carried (sorted; empty for a
    #: subscription to account-wide private streams such as ``myAsset``).
    codes: tuple[str, ...]
    #: Wall-clock time (UTC) the engine emitted the event; ``None`` when built by hand.
    utc: datetime | None = attrs.field(default=None, eq=False, repr=False)


@attrs.frozen(weakref_slot=False)
class Gap:
    """Messages of ``codes`` may have been missed between ``start`` and ``end``.

    ``start`` is when the connection ``ticket`` was lost, ``end`` when the stream was restored (a
    fresh SNAPSHOT of each public stream follows). ``end`` is ``None`` when the subscription's
    streams left the lost connection before it came back (they were moved to another ticket,
    whose own SNAPSHOT ends the gap).
    """

    type: ClassVar[str] = "gap"

    ticket: str
    start: float
    end: float | None
    cause: str
    #: The pair codes affected (sorted; empty for account-wide private streams).
    codes: tuple[str, ...]
    #: The codes whose missed trades (or candles) the engine is fetching from Upbit's REST API
    #: (sorted): a :class:`Backfilled` event follows for each such stream, after what it
    #: missed. Empty when backfill is off, or nothing was delivered before the loss.
    backfill: tuple[str, ...] = ()
    #: Wall-clock time (UTC) the engine emitted the event; ``None`` when built by hand.
    utc: datetime | None = attrs.field(default=None, eq=False, repr=False)

    @property
    def duration(self) -> float | None:
        """``end - start`` in seconds, or ``None`` for an open-ended gap."""
        return None if self.end is None else self.end - self.start


@attrs.frozen(weakref_slot=False)
class SnapshotMissing:
    """No SNAPSHOT of ``data_type`` for ``code`` came within ``waited`` seconds on ``ticket``.

    Upbit sends one per requested stream as a rule, but does not promise it for markets that
    have not traded, are new or are suspended, and a server that omits ``stream_type`` makes
    every frame look like REALTIME. The engine stops waiting at ``at``: REALTIME messages of the
    stream reach the subscriber from now on, without a SNAPSHOT first. ``detect_conflicts()``
    lists the stream (``MISSING_SNAPSHOT``) while it stays without one.
    """

    type: ClassVar[str] = "snapshot_missing"

    ticket: str
    data_type: str
    code: str
    at: float
    waited: float
    #: REALTIME frames held back during the wait and given up rather than delivered: trades
    #: beyond a quarter of the subscriber's buffer, or beyond half the room left in it when the
    #: wait ended (the newest are kept and follow this event). 0 for conflating streams, which
    #: only ever keep their latest value.
    dropped: int = 0
    #: Wall-clock time (UTC) the engine emitted the event; ``None`` when built by hand.
    utc: datetime | None = attrs.field(default=None, eq=False, repr=False)


@attrs.frozen(weakref_slot=False)
class Unfilled:
    """Trade times ``[start_ms, end_ms)`` (epoch ms, UTC) a backfill could not fill, and why.

    ``end_ms`` is ``None`` when the range runs up to the first trade delivered after the
    :class:`Backfilled` event. ``reason`` is one of :data:`UNFILLED_REASONS`.
    """

    start_ms: int
    end_ms: int | None
    reason: str

    def covers(self, trade_ms: int) -> bool:
        """Whether a trade at ``trade_ms`` lies in this range (open ends count as covering)."""
        return self.start_ms <= trade_ms and (self.end_ms is None or trade_ms < self.end_ms)


#: Why part of a gap stayed unfilled (:attr:`Unfilled.reason`).
UNFILLED_REASONS: tuple[str, ...] = (
    "rest_window",  # older than Upbit keeps on REST (7 UTC days of trades)
    "page_limit",  # more trades than EngineConfig.backfill_max_pages pages of them
    "no_progress",  # REST paging brought nothing new: stopped rather than loop
    "rest_error",  # the REST API failed (429s beyond the retries, 418, 5xx, network)
    "timeout",  # not fetched within EngineConfig.backfill_timeout
    "hold_limit",  # more live trades arrived during the backfill than could be held back
    "slow_consumer",  # fetched, but the subscriber did not read them before the deadline
    "moved",  # the stream moved to another connection while it was being filled
    "stopped",  # the engine stopped (or its backfill service restarted) during the fetch
)


@attrs.frozen(weakref_slot=False)
class Backfilled:
    """The trades (or candles) of ``code`` missed in a :class:`Gap` were fetched and delivered.

    The missed trades come right before this event, oldest first, each once, with
    ``stream_type == "BACKFILL"``; the stream's live trades follow it (de-duplicated against
    them). ``since_ms`` is the time of the last trade delivered before the gap, ``until_ms`` the
    time of the first one of the restored stream (epoch ms; ``None`` when none had come).
    ``unfilled`` lists what could not be filled, with reasons; it is empty when the hole was
    closed completely. For a candle stream (``data_type`` ``"candle.*"``) the times are period
    starts: the candles of the periods from the last one delivered (its final value) up to the
    restored stream's first, oldest first; a period without trades has no candle.
    """

    type: ClassVar[str] = "backfilled"

    ticket: str
    code: str
    since_ms: int
    until_ms: int | None
    #: Trades delivered by this backfill (``stream_type == "BACKFILL"``).
    delivered: int
    unfilled: tuple[Unfilled, ...]
    at: float
    #: REST pages the fetch took.
    pages: int = 0
    #: The stream filled: ``"trade"``, or a candle type (``"candle.1m"``...), whose times are
    #: period starts.
    data_type: str = "trade"
    #: Wall-clock time (UTC) the engine emitted the event; ``None`` when built by hand.
    utc: datetime | None = attrs.field(default=None, eq=False, repr=False)

    @property
    def complete(self) -> bool:
        """Whether every missed trade (or candle period) was delivered."""
        return not self.unfilled

    def covers(self, trade_ms: int) -> bool:
        """Whether a trade at ``trade_ms`` lies in a range reported as unfilled."""
        return any(span.covers(trade_ms) for span in self.unfilled)


@attrs.frozen(weakref_slot=False)
class Ended:
    """The stream of ``subscription_id`` ended at ``at``: nothing follows, and ``async for``
    stops after this event.

    ``reason`` says why: ``"unsubscribed"``, ``"released by cleanup_inactive"``, ``"the engine
    closed"``, ``"the subscription has ended"`` (a stream opened after it ended). Messages still
    buffered when the subscription was released are not delivered (an unsubscribe is
    immediate); ``discarded`` counts them.
    """

    type: ClassVar[str] = "ended"

    subscription_id: str
    reason: str
    at: float
    #: Buffered messages given up because the stream ended.
    discarded: int = 0
    #: Wall-clock time (UTC) the engine emitted the event; ``None`` when built by hand.
    utc: datetime | None = attrs.field(default=None, eq=False, repr=False)


EngineEvent: TypeAlias = Interrupted | Gap | SnapshotMissing | Backfilled | Ended
"""Any event the engine inserts into a subscriber's stream."""

EVENT_TYPES: tuple[type[EngineEvent], ...] = (
    Interrupted,
    Gap,
    SnapshotMissing,
    Backfilled,
    Ended,
)
"""Every event class, for ``isinstance(item, EVENT_TYPES)``: "is this the engine speaking?"."""
