"""One subscription's bounded buffer: the router puts without ever blocking, the subscriber reads.

Theory of operation
-------------------
Items live in one deque, oldest first. Every item has an absolute position (how many items were
appended before it), which it keeps while it waits however many items are read before it.

*Fast mode* (the normal case): a put appends, a read pops; nothing else is tracked.

A put that finds the buffer full applies the policy of the message's data type
(:class:`~engine.config.OverflowPolicies`):

- **lossless** (``FAIL``: trade, myOrder, myAsset by default): the buffer fails. It accepts
  nothing more, and the consumer receives everything already buffered, then
  :class:`~engine.errors.SubscriptionFailedError`. ``on_failed`` is told at once.
- **conflate** (``CONFLATE``: ticker, orderbook, candles): the buffer switches to *congested
  mode*. One pass over the pending items indexes, per conflation key (type, code and for
  orderbooks rows and level), the positions of its pending REALTIME values: its *run*. From then
  on a value that meets a full buffer goes to the position of the **oldest** pending value of its
  key and the other pending values of that key become tombstones, so the consumer's next value of
  that key is the newest one, delivered as early as possible; per key, order is kept. A key
  with nothing pending is appended even when full: the buffer then holds at most ``max_size``
  items plus one per conflation key. Congested mode ends when the consumer empties the buffer,
  so its one-off indexing pass is paid once per ``max_size`` puts at most.

Two kinds of item are barriers that conflation never crosses, so nothing moves in front of them:
engine events (:mod:`engine.events`; a new event starts every run afresh) and SNAPSHOT frames
(one starts its key's run afresh and is never replaced, keeping "SNAPSHOT first" intact). Events
are never dropped or conflated; should more than ``max(max_size, MIN_EVENT_ROOM)`` of them pile
up unread, the buffer fails, since its consumer has evidently stopped reading.

Wake-ups go through a :class:`trio.lowlevel.ParkingLot`: ``put_nowait`` unparks a waiting reader,
so a put is O(1) and never blocks, whatever the consumer does.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Hashable
from datetime import UTC, datetime
from itertools import islice
from typing import Final, TypeAlias

import attrs
import trio

from engine.config import OverflowPolicies, OverflowPolicy
from engine.errors import SubscriptionFailedError
from engine.events import EVENT_TYPES, Ended, EngineEvent
from engine.wire.messages import Message, Orderbook
from engine.wire.protocol import DATA_TYPES

__all__ = ("MIN_EVENT_ROOM", "BufferStatistics", "StreamItem", "SubscriberBuffer")

StreamItem: TypeAlias = Message | EngineEvent
"""What a subscriber receives: Upbit's messages and the engine's events."""

#: Unread events a buffer holds at least, however small ``max_size`` is (one outage makes two).
MIN_EVENT_ROOM: Final = 256
#: Stands where a conflated value was removed; reads skip it.
_TOMB: Final = object()
_EVENT_TYPES: Final = EVENT_TYPES
_DEFAULT_POLICIES: Final = OverflowPolicies()


@attrs.frozen
class BufferStatistics:
    """A snapshot of one :class:`SubscriberBuffer`'s counters."""

    #: The subscription the buffer belongs to.
    subscription_id: str
    #: Items (messages and events) waiting to be read.
    buffered: int
    #: Capacity before the overflow policies apply.
    max_size: int
    #: Items handed to the consumer so far.
    delivered: int
    #: Values replaced by a newer value of the same (type, code) under the CONFLATE policy.
    conflated: int
    #: Items discarded: put after the buffer closed or failed, or pending when it was closed.
    dropped: int
    #: Trades the router did not deliver because this subscriber already had their
    #: ``sequential_id``.
    duplicates_skipped: int
    #: Whether the buffer accepts no more items (closed or failed).
    closed: bool
    #: Why the buffer failed (the cause of its ``SubscriptionFailedError``), or ``None``.
    failure: str | None
    #: The reason given to :meth:`SubscriberBuffer.close`, or ``None``.
    close_reason: str | None


def _now() -> float:
    # A buffer closed outside a Trio run (a test building one by hand) still says when.
    try:
        return trio.current_time()
    except RuntimeError:
        return 0.0


def _conflation_key(msg: Message) -> Hashable:
    # The identity of "the same value": one stream of one code. Orderbooks of one code with
    # different depths or price groupings are different streams.
    if type(msg) is Orderbook:
        return (msg.type, msg.code, len(msg.orderbook_units), msg.level)
    return (msg.type, getattr(msg, "code", ""))


#: Most buffered items :meth:`SubscriberBuffer.receive` hands out in a row before it lets other
#: tasks run: a default-sized buffer drains in one turn, well above the 100-250 frames one 64 KiB
#: socket read brings, so a reader keeps pace with its pump.
_YIELD_EVERY = 1024


class SubscriberBuffer:
    """The bounded buffer between the router and one subscription's consumer.

    The router calls :meth:`put_nowait` (and :meth:`put_event`), which never block; the consumer
    iterates (``async for item in buffer``) or calls :meth:`receive`. ``max_size`` items fit
    before the overflow ``policies`` apply (see the module's theory of operation):
    lossless types fail the subscription loudly, conflating types keep the newest value per
    (type, code). ``on_failed`` is called once, synchronously, when an overflow fails the
    buffer (it must not block or raise; casting a message to the registry is the intended use).
    """

    __slots__ = (
        "_close_reason",
        "_closed",
        "_conflate",
        "_conflated",
        "_delivered",
        "_dropped",
        "_duplicates",
        "_event_room",
        "_events",
        "_failure",
        "_items",
        "_limit",
        "_lot",
        "_max",
        "_on_failed",
        "_on_note",
        "_runs",
        "_size",
        "_skipped",
        "_streak",
        "_tracking",
        "_waiters",
        "backfill",
        "subscription_id",
    )

    def __init__(
        self,
        subscription_id: str,
        *,
        max_size: int = 1024,
        policies: OverflowPolicies = _DEFAULT_POLICIES,
        on_failed: Callable[[SubscriptionFailedError], None] | None = None,
        backfill: bool = False,
        on_note: Callable[[object, int, int], None] | None = None,
    ) -> None:
        if isinstance(max_size, bool) or not isinstance(max_size, int) or max_size < 1:
            raise ValueError(
                "max_size must be a positive int (EngineConfig.subscriber_buffer), "
                f"got {max_size!r}"
            )
        if not isinstance(policies, OverflowPolicies):
            raise TypeError(f"policies must be an OverflowPolicies, got {type(policies).__name__}")
        #: The subscription this buffer feeds.
        self.subscription_id = subscription_id
        #: Whether its trade streams are backfilled after a gap (read by the router).
        self.backfill = backfill
        self._max = max_size
        self._event_room = max(max_size, MIN_EVENT_ROOM)
        # The fast path of put_nowait is "size < _limit": _limit is max_size in fast mode and -1
        # when congested or ended, so one comparison covers room, mode and being open.
        self._limit = max_size
        self._conflate: dict[str, bool] = {
            data_type: policies.for_type(data_type) is OverflowPolicy.CONFLATE
            for data_type in DATA_TYPES
        }
        self._on_failed = on_failed
        # Told of each event put (and the Ended), and of the buffer filling up: the engine's
        # journal (``on_note(event or None, buffered, max_size)``). Never on the fast path.
        self._on_note = on_note
        self._items: deque[object] = deque()
        # Live items (tombstones excluded).
        self._size = 0
        # Items taken so far are _delivered + _skipped (tombstones), which makes the absolute
        # position of _items[0]; keeping it as a sum spares the fast read path an update.
        self._skipped = 0
        # Absolute positions of pending events (for the event bound), oldest first.
        self._events: deque[int] = deque()
        # Congested mode only: conflation key -> positions of its pending REALTIME values.
        self._runs: dict[Hashable, deque[int]] | None = None
        # Whether reads must track positions (congested, or events pending).
        self._tracking = False
        self._lot = trio.lowlevel.ParkingLot()
        # Parked readers; an int is cheaper to test than the ParkingLot itself.
        self._waiters = 0
        # Items handed out in a row without a schedule point (see receive()).
        self._streak = 0
        self._closed = False
        self._failure: str | None = None
        self._close_reason: str | None = None
        self._delivered = 0
        self._conflated = 0
        self._dropped = 0
        self._duplicates = 0

    # ------------------------------------------------------------------------------------------
    # Producer side (the router); never blocks

    def put_nowait(self, msg: Message) -> None:
        """Buffer ``msg``, applying its type's overflow policy if the buffer is full."""
        if self._size < self._limit:
            self._items.append(msg)
            self._size += 1
            if self._waiters:
                self._wake()
            return
        self._put_slow(msg)

    def put_event(self, event: EngineEvent) -> None:
        """Buffer an engine event. Events are never conflated or dropped while the buffer is
        open; more than ``max(max_size, MIN_EVENT_ROOM)`` unread events fail the buffer."""
        if self._closed:
            self._dropped += 1
            return
        if len(self._events) >= self._event_room:
            self._overflow(
                f"{len(self._events)} engine events are waiting unread: the consumer has "
                "stopped reading; read the stream or unsubscribe"
            )
            return
        self._events.append(self._tail())
        self._tracking = True
        if self._runs is not None:
            self._runs.clear()
        self._append(event)
        if self._on_note is not None:
            self._on_note(event, self._size, self._max)

    def count_duplicate(self) -> None:
        """Count one trade the router skipped as a duplicate for this subscriber."""
        self._duplicates += 1

    def _tail(self) -> int:
        """The absolute position the next appended item gets."""
        return self._delivered + self._skipped + len(self._items)

    def _append(self, value: object) -> None:
        self._items.append(value)
        self._size += 1
        if self._waiters:
            self._wake()

    def _wake(self) -> None:
        # The count drops to 0 here, not when each reader resumes: the puts that follow in the
        # same turn (a whole socket read) then skip the parking lot instead of calling unpark on
        # an empty one per item. A reader cancelled while parked leaves the count stale, which
        # costs one idle unpark_all.
        self._waiters = 0
        self._lot.unpark_all()

    def _put_slow(self, msg: Message) -> None:
        if self._closed:
            self._dropped += 1
            return
        full = self._size >= self._max
        if not self._conflate.get(msg.type, False):
            if full:
                self._overflow(
                    f"the buffer is full ({self._max} messages) and {msg.type} is lossless, so "
                    f"a {msg.type} message could not be delivered; consume faster (keep the "
                    "loop body short and hand slow work to another task) or raise "
                    "EngineConfig.subscriber_buffer"
                )
            else:
                self._append(msg)
            return
        key = _conflation_key(msg)
        runs = self._runs
        if msg.stream_type != "REALTIME":
            # A SNAPSHOT is never replaced, and nothing after it may move in front of it.
            if runs is not None:
                runs.pop(key, None)
            self._append(msg)
            return
        if full:
            if runs is None:
                runs = self._index_runs()
            run = runs.get(key)
            if run:
                self._replace(run, msg)
                return
        if runs is not None:
            run = runs.get(key)
            if run is None:
                runs[key] = run = deque()
            run.append(self._tail())
        self._append(msg)

    def _index_runs(self) -> dict[Hashable, deque[int]]:
        """Enter congested mode: index the pending REALTIME values of conflating types."""
        runs: dict[Hashable, deque[int]] = {}
        conflate = self._conflate
        head = self._delivered + self._skipped
        for offset, value in enumerate(self._items):
            if value is _TOMB:
                continue
            if isinstance(value, _EVENT_TYPES):
                runs.clear()
                continue
            msg: Message = value  # type: ignore[assignment]
            if not conflate.get(msg.type, False):
                continue
            key = _conflation_key(msg)
            if msg.stream_type != "REALTIME":
                runs.pop(key, None)
                continue
            run = runs.get(key)
            if run is None:
                runs[key] = run = deque()
            run.append(head + offset)
        self._runs = runs
        self._tracking = True
        self._limit = -1
        if self._on_note is not None:
            self._on_note(None, self._size, self._max)
        return runs

    def _replace(self, run: deque[int], msg: Message) -> None:
        """Put ``msg`` where its key's oldest pending value is; tombstone the newer ones."""
        items, head = self._items, self._delivered + self._skipped
        oldest = run[0]
        items[oldest - head] = msg
        replaced = len(run)
        if replaced > 1:
            for position in islice(run, 1, None):
                items[position - head] = _TOMB
            run.clear()
            run.append(oldest)
            self._size -= replaced - 1
        self._conflated += replaced

    def _overflow(self, cause: str) -> None:
        self._dropped += 1
        self.fail(cause)
        if self._on_failed is not None:
            self._on_failed(SubscriptionFailedError(self.subscription_id, cause))

    # ------------------------------------------------------------------------------------------
    # Ending

    def close(self, reason: str | None = None) -> None:
        """End the stream now: pending items are discarded, the consumer receives one
        :class:`~engine.events.Ended` event with ``reason``, and then its iteration stops
        cleanly (``receive`` raises :class:`trio.EndOfChannel`). Idempotent; does nothing after
        :meth:`fail`."""
        if self._closed:
            return
        self._closed = True
        self._limit = -1
        reason = reason or "closed"
        self._close_reason = reason
        discarded = self._size
        self._dropped += discarded
        self._items.clear()
        self._events.clear()
        self._runs = None
        self._tracking = False
        # The stream never stops silently: its last item says why it ended.
        ended = Ended(self.subscription_id, reason, _now(), discarded, utc=datetime.now(UTC))
        self._items.append(ended)
        self._size = 1
        if self._on_note is not None:
            self._on_note(ended, 1, self._max)
        self._lot.unpark_all()

    def fail(self, cause: str) -> None:
        """End the stream with an error: the consumer receives the items already buffered,
        then :class:`~engine.errors.SubscriptionFailedError` with ``cause``. Idempotent; does
        nothing after :meth:`close`."""
        if self._closed:
            return
        self._closed = True
        self._limit = -1
        self._failure = cause
        self._lot.unpark_all()

    def __len__(self) -> int:
        """Items waiting to be read."""
        return self._size

    @property
    def max_size(self) -> int:
        """How many messages fit (``EngineConfig.subscriber_buffer``)."""
        return self._max

    @property
    def closed(self) -> bool:
        """Whether the buffer accepts no more items (closed or failed)."""
        return self._closed

    # ------------------------------------------------------------------------------------------
    # Consumer side

    def receive_nowait(self) -> StreamItem:
        """The next item, or raise :class:`trio.WouldBlock` if none is waiting.

        After the end of the stream raises :class:`trio.EndOfChannel` (closed) or
        :class:`~engine.errors.SubscriptionFailedError` (failed), once the buffered items
        are read.
        """
        if self._size:
            value = self._items.popleft()
            self._size -= 1
            if self._tracking:
                return self._took_tracked(value)
            self._delivered += 1
            return value  # type: ignore[return-value]
        if self._failure is not None:
            raise SubscriptionFailedError(self.subscription_id, self._failure)
        if self._closed:
            raise trio.EndOfChannel
        raise trio.WouldBlock

    def _took_tracked(self, value: object) -> StreamItem:
        """The rest of a read while positions matter: skip tombstones, retire the item's event
        or run entry, and leave congested mode once the buffer is empty."""
        items = self._items
        while value is _TOMB:
            self._skipped += 1
            value = items.popleft()
        position = self._delivered + self._skipped
        self._delivered += 1
        events = self._events
        if events and events[0] == position:
            events.popleft()
        elif self._runs is not None:
            self._consumed_congested(value, position)
        if self._runs is not None and not self._size:
            # Drained: only tombstones can remain, and fast mode resumes.
            self._skipped += len(items)
            items.clear()
            self._runs = None
            if not self._closed:
                self._limit = self._max
        self._tracking = self._runs is not None or bool(events)
        return value  # type: ignore[return-value]

    def _consumed_congested(self, value: object, position: int) -> None:
        msg: Message = value  # type: ignore[assignment]
        if not self._conflate.get(msg.type, False) or msg.stream_type != "REALTIME":
            return
        assert self._runs is not None
        key = _conflation_key(msg)
        run = self._runs.get(key)
        if run and run[0] == position:
            run.popleft()
            if not run:
                del self._runs[key]

    async def receive(self) -> StreamItem:
        """Wait for the next item (see :meth:`receive_nowait` for the end of the stream)."""
        await trio.lowlevel.checkpoint_if_cancelled()
        if self._readable():
            value = self.receive_nowait()
            # Buffered items go out without a schedule point, up to _YIELD_EVERY in a row: a
            # pump routes a whole socket read (100+ frames) per turn, so a consumer that took one
            # item per turn would fall behind a stream it can easily keep up with, and a lossless
            # buffer would overflow. The streak bound keeps other tasks running all the same.
            self._streak += 1
            if self._streak >= _YIELD_EVERY:
                self._streak = 0
                await trio.lowlevel.cancel_shielded_checkpoint()
            return value
        self._streak = 0
        while True:
            self._waiters += 1
            await self._lot.park()
            if self._readable():
                return self.receive_nowait()

    def _readable(self) -> bool:
        # An item is waiting, or the end of the stream is.
        return bool(self._size) or self._closed

    def __aiter__(self) -> SubscriberBuffer:
        return self

    async def __anext__(self) -> StreamItem:
        try:
            return await self.receive()
        except trio.EndOfChannel:
            raise StopAsyncIteration from None

    # ------------------------------------------------------------------------------------------

    def statistics(self) -> BufferStatistics:
        """The buffer's counters, frozen."""
        return BufferStatistics(
            subscription_id=self.subscription_id,
            buffered=self._size,
            max_size=self._max,
            delivered=self._delivered,
            conflated=self._conflated,
            dropped=self._dropped,
            duplicates_skipped=self._duplicates,
            closed=self._closed,
            failure=self._failure,
            close_reason=self._close_reason,
        )

    def __repr__(self) -> str:
        state = "failed" if self._failure else "closed" if self._closed else "open"
        return (
            f"<SubscriberBuffer {self.subscription_id} {state} {self._size}/{self._max} buffered>"
        )
