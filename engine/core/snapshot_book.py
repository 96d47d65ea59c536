"""The snapshot service's bookkeeping, sans-IO: asks, the merge queue, batches and ticket slots.

Theory of operation
-------------------
An *ask* is one ``SnapshotService.request`` call: a set of streams and a deadline. A stream is
identified by its *route key* (:func:`route_key`): type and code, and for an orderbook its
``level`` (Upbit's default 0 filled in), so the key computed from a request equals the key
computed from the SNAPSHOT that answers it (:func:`message_key`). An orderbook's row count is
never part of it: Upbit has answered requests with other depths than asked
(docs/UPBIT.md#drift-history). Orderbooks are requested at full depth (no ``.N``), and each ask
receives the book trimmed to the rows it asked for (:func:`engine.wire.book_rows.trim_rows`).

Each wanted route key is in exactly one of three places:

- the *queue*: wanted, not on the wire; its presence is what makes a ticket worth waking;
- *in flight*: part of the batch a ticket sent and is still waiting on;
- *parked*: it was in flight, the batch settled without it and the connection was alive, so the
  code is most likely unlisted (Upbit answers those with silence). Parked keys ride along with the
  next batch that goes out for other reasons, but never cause one on their own.

A ticket pulls a *batch* (:meth:`SnapshotBook.take`): everything queued and parked, sent as one
snapshot-only request. Upbit replaces a connection's subscription with every request, so a ticket
sends its next batch only once the previous one *settled* (every SNAPSHOT arrived, or the ticket
judged the rest will not come). If its connection was lost, the keys still missing go back to the
queue and are sent again. Asks for a key already in flight just wait for it: one SNAPSHOT
satisfies every ask that wants it.

Ticket slots follow a small state machine: ``DOWN`` (no running incarnation) -> ``IDLE`` ->
``WOKEN`` (told there is work; it will pull) -> ``BUSY`` (holds a batch) -> ``WOKEN`` after the
batch settled (it pulls again at once) or ``IDLE`` after a loss or a failure. Only one ticket is
``WOKEN`` at a time: it takes the whole queue, so waking a second would only open a connection
for nothing; a second ticket is woken when the first is ``BUSY`` and more work arrives.
"""

from __future__ import annotations

import enum
import heapq
from collections.abc import Iterable, Mapping, Sequence

import attrs

from engine.core.keys import StreamKey
from engine.wire.book_rows import trim_rows
from engine.wire.messages import Candle, Message, Orderbook, Ticker, Trade

__all__ = (
    "DEFAULT_ORDERBOOK_UNITS",
    "Batch",
    "Expired",
    "Resolved",
    "SlotState",
    "SnapshotBook",
    "full_key",
    "message_key",
    "result_key",
    "route_key",
)

#: Rows Upbit sends for an orderbook requested without a ``.N`` suffix.
DEFAULT_ORDERBOOK_UNITS = 30


def full_key(key: StreamKey) -> StreamKey:
    """``key`` with Upbit's defaults filled in (30 rows, level 0): what the caller asked for."""
    if key.data_type == "orderbook":
        units = DEFAULT_ORDERBOOK_UNITS if key.units is None else key.units
        level = 0.0 if key.level is None else float(key.level)
        return StreamKey("orderbook", key.code, units, level)
    return StreamKey(key.data_type, key.code)


def route_key(key: StreamKey) -> StreamKey:
    """The key a SNAPSHOT answering ``key`` will have (no orderbook row count): also the wire
    form it is requested in."""
    if key.data_type == "orderbook":
        level = 0.0 if key.level is None else float(key.level)
        return StreamKey("orderbook", key.code, None, level)
    return StreamKey(key.data_type, key.code)


def message_key(message: object) -> StreamKey | None:
    """The route key a market-data message answers, or ``None`` for anything else."""
    if isinstance(message, Orderbook):
        return StreamKey("orderbook", message.code, None, float(message.level))
    if isinstance(message, Ticker | Trade | Candle):
        return StreamKey(message.type, message.code)
    return None


def result_key(key: StreamKey) -> tuple[str, str]:
    """Where a key's SNAPSHOT lands in a request's result: ``(data_type, code)``."""
    return (key.data_type, key.code)


class SlotState(enum.Enum):
    """Where one snapshot ticket stands (see the module's theory of operation)."""

    DOWN = "down"
    IDLE = "idle"
    WOKEN = "woken"
    BUSY = "busy"


@attrs.frozen
class Batch:
    """One snapshot-only request's worth of streams, held by one ticket until it settles."""

    batch_id: int
    ticket: int
    #: The keys as callers gave them (their wire form), in queue order.
    wire: tuple[StreamKey, ...]
    #: The same keys as route keys (same order), to match the SNAPSHOTs that answer them.
    keys: tuple[StreamKey, ...]


@attrs.frozen
class Resolved:
    """An ask that received one SNAPSHOT for every stream it asked for."""

    ask_id: int
    results: Mapping[tuple[str, str], Message]


@attrs.frozen
class Expired:
    """An ask whose deadline passed; ``missing`` got no SNAPSHOT, ``received`` did."""

    ask_id: int
    missing: tuple[tuple[str, str], ...]
    received: Mapping[tuple[str, str], Message]
    timeout: float


@attrs.define(eq=False)
class _Ask:
    ask_id: int
    remaining: set[StreamKey]
    results: dict[tuple[str, str], Message]
    deadline: float
    timeout: float
    #: Rows asked per orderbook code: the book it receives is trimmed to that.
    rows: dict[tuple[str, str], int]


@attrs.define(eq=False)
class _Slot:
    state: SlotState = SlotState.DOWN
    batch: int | None = None
    connected: bool = False


class SnapshotBook:
    """Asks, queue, batches and ticket slots of one snapshot coordinator (see the module doc)."""

    def __init__(self, tickets: int) -> None:
        if tickets < 1:
            raise ValueError(f"a snapshot pool needs at least one ticket, got {tickets}")
        self._asks: dict[int, _Ask] = {}
        self._waiters: dict[StreamKey, set[int]] = {}
        self._wire: dict[StreamKey, StreamKey] = {}
        self._queue: dict[StreamKey, None] = {}
        self._parked: dict[StreamKey, None] = {}
        self._in_flight: dict[StreamKey, int] = {}
        self._batches: dict[int, Batch] = {}
        self._deadlines: list[tuple[float, int]] = []
        self._slots = [_Slot() for _ in range(tickets)]
        self._next_batch = 1

    # -- asks ------------------------------------------------------------------------------------

    def add(
        self, ask_id: int, keys: Sequence[StreamKey], *, deadline: float, timeout: float
    ) -> None:
        """Register an ask for ``keys`` (wire form, as the caller gave them; at least one)."""
        if ask_id in self._asks:
            raise ValueError(f"ask {ask_id} is already registered")
        if not keys:
            raise ValueError("an ask needs at least one stream")
        routes = [route_key(key) for key in keys]
        rows = {
            result_key(key): full.units for key in keys if (full := full_key(key)).units is not None
        }
        self._asks[ask_id] = _Ask(ask_id, set(routes), {}, deadline, timeout, rows)
        heapq.heappush(self._deadlines, (deadline, ask_id))
        for key, route in zip(keys, routes, strict=True):
            self._waiters.setdefault(route, set()).add(ask_id)
            # Full depth on the wire (no ``.N``): one SNAPSHOT serves asks of any depth.
            self._wire.setdefault(route, attrs.evolve(key, units=None))
            if route not in self._in_flight:
                self._parked.pop(route, None)
                self._queue[route] = None

    def cancel(self, ask_id: int) -> None:
        """Forget an ask whose caller stopped waiting (no-op if it is already gone)."""
        ask = self._asks.pop(ask_id, None)
        if ask is not None:
            self._unwait(ask)

    def deliver(self, message: Message) -> list[Resolved]:
        """Route one SNAPSHOT to every ask waiting for it; return the asks now complete.

        A SNAPSHOT nobody waits for (an expired ask's, a duplicate) is dropped.
        """
        key = message_key(message)
        if key is None:
            return []
        # Answered, whichever batch asked: the ticket tracks its own batch's progress itself.
        self._in_flight.pop(key, None)
        self._queue.pop(key, None)
        self._parked.pop(key, None)
        waiting = self._waiters.pop(key, None)
        self._wire.pop(key, None)
        if not waiting:
            return []
        done: list[Resolved] = []
        pair = result_key(key)
        for ask_id in sorted(waiting):
            ask = self._asks[ask_id]
            rows = ask.rows.get(pair)
            ask.results[pair] = message if rows is None else trim_rows(message, rows)
            ask.remaining.discard(key)
            if not ask.remaining:
                del self._asks[ask_id]
                done.append(Resolved(ask_id, ask.results))
        return done

    def expire(self, now: float) -> list[Expired]:
        """Remove and return every ask whose deadline is ``now`` or earlier."""
        expired: list[Expired] = []
        heap = self._deadlines
        while heap and heap[0][0] <= now:
            _, ask_id = heapq.heappop(heap)
            ask = self._asks.pop(ask_id, None)
            if ask is None:
                continue  # resolved or cancelled earlier
            self._unwait(ask)
            missing = tuple(sorted(result_key(key) for key in ask.remaining))
            expired.append(Expired(ask_id, missing, ask.results, ask.timeout))
        return expired

    def next_deadline(self) -> float | None:
        """The earliest deadline of a pending ask."""
        heap = self._deadlines
        while heap and heap[0][1] not in self._asks:
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def _unwait(self, ask: _Ask) -> None:
        for key in ask.remaining:
            waiting = self._waiters.get(key)
            if waiting is None:
                continue
            waiting.discard(ask.ask_id)
            if not waiting:
                del self._waiters[key]
                self._queue.pop(key, None)
                self._parked.pop(key, None)
                if key not in self._in_flight:
                    self._wire.pop(key, None)

    # -- tickets ---------------------------------------------------------------------------------

    def ticket_up(self, ticket: int) -> None:
        """A new incarnation of ``ticket`` is running (without a connection yet)."""
        slot = self._slots[ticket]
        self._drop_batch(slot, lost=True)
        slot.state = SlotState.IDLE
        slot.connected = False

    def ticket_down(self, ticket: int) -> None:
        """``ticket``'s incarnation ended; whatever it still waited for is queued again."""
        slot = self._slots[ticket]
        self._drop_batch(slot, lost=True)
        slot.state = SlotState.DOWN
        slot.connected = False

    def set_connected(self, ticket: int, connected: bool) -> None:
        """Record whether ``ticket`` holds an open connection (those are woken first)."""
        self._slots[ticket].connected = connected

    def wake(self) -> int | None:
        """The ticket to tell about queued work (now ``WOKEN``), or ``None`` if none should be.

        Nothing is woken while the queue is empty or another ticket is already ``WOKEN``.
        """
        if not self._queue or any(s.state is SlotState.WOKEN for s in self._slots):
            return None
        idle = [i for i, s in enumerate(self._slots) if s.state is SlotState.IDLE]
        if not idle:
            return None
        # A ticket with a live connection answers without a connect.
        chosen = min(idle, key=lambda i: (not self._slots[i].connected, i))
        self._slots[chosen].state = SlotState.WOKEN
        return chosen

    def take(self, ticket: int) -> Batch | None:
        """Everything queued (plus parked keys) as one batch for ``ticket``; ``None`` if the
        queue is empty, and the ticket is then ``IDLE``."""
        slot = self._slots[ticket]
        if slot.state is SlotState.DOWN:
            return None
        self._drop_batch(slot, lost=True)
        if not self._queue:
            slot.state = SlotState.IDLE
            return None
        routes = [*self._queue, *(key for key in self._parked if key not in self._queue)]
        self._queue.clear()
        self._parked.clear()
        batch = Batch(
            self._next_batch,
            ticket,
            tuple(self._wire[key] for key in routes),
            tuple(routes),
        )
        self._next_batch += 1
        self._batches[batch.batch_id] = batch
        for key in routes:
            self._in_flight[key] = batch.batch_id
        slot.state = SlotState.BUSY
        slot.batch = batch.batch_id
        return batch

    def settle(self, ticket: int, batch_id: int, *, lost: bool) -> None:
        """``ticket``'s batch is over. After a loss (``lost``) its missing keys are queued again
        and the ticket is ``IDLE``; otherwise they are parked and the ticket pulls again
        (``WOKEN``). A batch the ticket no longer holds is ignored."""
        slot = self._slots[ticket]
        if slot.batch != batch_id:
            return
        self._drop_batch(slot, lost=lost)
        slot.state = SlotState.IDLE if lost else SlotState.WOKEN

    def fail(self, ticket: int, batch_id: int | None) -> list[int]:
        """Upbit answered ``ticket``'s batch with an error: remove and return the asks still
        waiting on any of its keys. The ticket is ``IDLE`` and disconnected afterwards."""
        slot = self._slots[ticket]
        failed: list[int] = []
        if batch_id is not None and slot.batch == batch_id:
            batch = self._batches[batch_id]
            pending = [key for key in batch.keys if self._in_flight.get(key) == batch_id]
            failed = sorted({a for key in pending for a in self._waiters.get(key, ())})
            for ask_id in failed:
                self.cancel(ask_id)
            self._drop_batch(slot, lost=False)
        if slot.state is not SlotState.DOWN:
            slot.state = SlotState.IDLE
        slot.connected = False
        return failed

    def idle(self, ticket: int) -> None:
        """``ticket`` is waiting for work again (a connect failed, or it found nothing to take)."""
        slot = self._slots[ticket]
        if slot.state is not SlotState.DOWN:
            self._drop_batch(slot, lost=True)
            slot.state = SlotState.IDLE

    def _drop_batch(self, slot: _Slot, *, lost: bool) -> None:
        if slot.batch is None:
            return
        batch = self._batches.pop(slot.batch)
        slot.batch = None
        for route in batch.keys:
            if self._in_flight.get(route) != batch.batch_id:
                continue  # answered, or re-sent in a later batch
            del self._in_flight[route]
            if route not in self._waiters:
                self._wire.pop(route, None)
            elif lost:
                self._queue[route] = None
            else:
                self._parked[route] = None

    # -- inspection ------------------------------------------------------------------------------

    @property
    def pending_asks(self) -> int:
        """Asks not yet resolved, failed or expired."""
        return len(self._asks)

    @property
    def queued(self) -> tuple[StreamKey, ...]:
        """Route keys waiting to be sent, in order."""
        return tuple(self._queue)

    @property
    def parked(self) -> tuple[StreamKey, ...]:
        """Route keys that will ride along with the next batch (see the module doc)."""
        return tuple(self._parked)

    @property
    def in_flight(self) -> Mapping[StreamKey, int]:
        """Route keys sent and not answered yet, with their batch."""
        return dict(self._in_flight)

    def slot(self, ticket: int) -> SlotState:
        """The state of ``ticket``'s slot."""
        return self._slots[ticket].state

    def connected(self) -> tuple[int, ...]:
        """Tickets that hold an open connection."""
        return tuple(i for i, s in enumerate(self._slots) if s.connected)

    def batch_of(self, ticket: int) -> Batch | None:
        """The batch ``ticket`` holds, if any."""
        batch_id = self._slots[ticket].batch
        return None if batch_id is None else self._batches[batch_id]

    def waiting_for(self, keys: Iterable[StreamKey]) -> bool:
        """Whether any pending ask waits for one of ``keys`` (route keys)."""
        return any(key in self._waiters for key in keys)
