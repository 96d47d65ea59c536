"""The trades the emulator's market made, remembered for REST history (sans-IO).

The market trades whether or not anyone listens. The feed hands every batch of events to
:func:`record_events` before it fans them out, so every trade a WebSocket client is sent (its
``sequential_id``, price, volume and times) has been remembered first, and the REST history serves
exactly those trades. :class:`~engine.testing.config.TradeRetention` forgets the oldest first: by
market time behind the clock, by count per code and by count in total.

Each code keeps its trades in arrival order, which is time order: the simulator reports a pair's
trades in order. A trade older than the newest one remembered for its code, or repeating its
``sequential_id``, is not remembered: a ``ReplayMarket`` replays its recording in laps with the
same times and ids, so only its first state is history.
"""

from __future__ import annotations

import bisect
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from operator import attrgetter
from typing import Protocol, TypeVar, cast

import attrs

from engine.testing.config import TradeRetention
from engine.testing.marketdata.clock import trade_strings

__all__ = ("TradeHistory", "TradeRecord", "record_events", "seed")

_COMPACT_AT = 1024  # forgotten slots at the head of a tape before the list is compacted


@attrs.frozen
class TradeRecord:
    """One trade the market made, as the WebSocket ``trade`` stream sent it and REST serves it."""

    market: str
    #: Unique per trade (``sequential_id`` of both the stream and REST).
    sequential_id: int
    #: When the trade happened, epoch ms: REST's ``timestamp``, the stream's ``trade_timestamp``.
    trade_timestamp: int
    #: When it was reported, epoch ms: the stream's ``timestamp`` (a pair's lag after the trade);
    #: the ``timestamp`` of the candles it is the last trade of.
    timestamp: int
    trade_price: float
    trade_volume: float
    #: ``ASK`` (a sell) or ``BID`` (a buy).
    ask_bid: str
    #: The close of the previous UTC day.
    prev_closing_price: float
    #: ``trade_price - prev_closing_price``, signed as REST writes it (Upbit's REST examples show
    #: negative values); the stream's ``change_price`` is its absolute value.
    change_price: float

    @property
    def trade_date_utc(self) -> str:
        """``yyyy-MM-dd`` (UTC) of the trade."""
        return trade_strings(self.trade_timestamp)[1]

    @property
    def trade_time_utc(self) -> str:
        """``HH:mm:ss`` (UTC) of the trade."""
        return trade_strings(self.trade_timestamp)[3]

    def as_rest(self) -> dict[str, object]:
        """The trade as one item of ``GET /v1/trades/ticks``, fields in Upbit's order."""
        _, dashed, _, colon = trade_strings(self.trade_timestamp)
        return {
            "market": self.market,
            "trade_date_utc": dashed,
            "trade_time_utc": colon,
            "timestamp": self.trade_timestamp,
            "trade_price": self.trade_price,
            "trade_volume": self.trade_volume,
            "prev_closing_price": self.prev_closing_price,
            "change_price": self.change_price,
            "ask_bid": self.ask_bid,
            "sequential_id": self.sequential_id,
        }


def _record_of(message: Mapping[str, object]) -> TradeRecord:
    """A record of a DEFAULT-keyed ``trade`` message as the simulator renders it (its types are
    the renderer's, so they are cast, not checked: this runs for every trade the market makes)."""
    change_price = abs(cast(float, message["change_price"]))
    return TradeRecord(
        cast(str, message["code"]),
        cast(int, message["sequential_id"]),
        cast(int, message["trade_timestamp"]),
        cast(int, message["timestamp"]),
        cast(float, message["trade_price"]),
        cast(float, message["trade_volume"]),
        cast(str, message["ask_bid"]),
        cast(float, message["prev_closing_price"]),
        -change_price if message.get("change") == "FALL" else change_price,
    )


_TIME = attrgetter("trade_timestamp")
_SID = attrgetter("sequential_id")


class _Tape:
    """One code's remembered trades, oldest first: ``items[head:]`` (forgotten ones before)."""

    __slots__ = ("forgotten_ms", "head", "items", "last", "sorted_sids")

    def __init__(self) -> None:
        self.items: list[TradeRecord] = []
        self.head = 0
        #: The newest trade ever appended, forgotten or not (new ones must not be older).
        self.last: TradeRecord | None = None
        #: ``sequential_id`` grows with every trade (true of the simulator): cursors bisect.
        self.sorted_sids = True
        #: ``trade_timestamp`` of the newest forgotten trade: periods up to it are incomplete.
        self.forgotten_ms: int | None = None

    def __len__(self) -> int:
        return len(self.items) - self.head

    def accepts(self, record: TradeRecord) -> bool:
        last = self.last
        return last is None or (
            record.trade_timestamp >= last.trade_timestamp
            and record.sequential_id != last.sequential_id
        )

    def append(self, record: TradeRecord) -> None:
        if self.last is not None and record.sequential_id <= self.last.sequential_id:
            self.sorted_sids = False
        self.items.append(record)
        self.last = record

    def forget_oldest(self) -> None:
        self.forgotten_ms = self.items[self.head].trade_timestamp
        self.head += 1
        # Amortised O(1): the list is cut only once half of it is forgotten.
        if self.head >= _COMPACT_AT and 2 * self.head >= len(self.items):
            del self.items[: self.head]
            self.head = 0

    def before_cursor(self, cursor: int) -> int:
        """The index of the trade ``cursor`` names (every trade before it precedes it)."""
        items, head = self.items, self.head
        if self.sorted_sids:
            return bisect.bisect_left(items, cursor, head, len(items), key=_SID)
        for index in range(len(items) - 1, head - 1, -1):
            if items[index].sequential_id == cursor:
                return index
        return head  # an unknown cursor in unordered ids: nothing is known to precede it


class TradeHistory:
    """Every code's remembered trades, with the retention of ``retention``."""

    def __init__(self, retention: TradeRetention) -> None:
        self._retention = retention
        self._tapes: dict[str, _Tape] = {}
        # Every remembered trade in arrival order (drives forgetting by age and by total). A
        # trade forgotten by the per-code bound stays here until it reaches the front.
        self._order: deque[TradeRecord] = deque()
        #: The market clock, epoch ms (UTC): REST's "now" (the current UTC day, the newest
        #: candles). Moved forward by :meth:`advance`.
        self.now_ms = 0
        #: The latest reporting time (``timestamp``) of any trade recorded, epoch ms.
        self.newest_ms = 0

    @property
    def enabled(self) -> bool:
        """Whether trades are remembered at all (``TradeRetention.total > 0``)."""
        return self._retention.total > 0

    def record(self, message: Mapping[str, object]) -> TradeRecord | None:
        """Remember the trade of a DEFAULT-keyed ``trade`` message; the record, or None when it
        is not remembered (no retention, or older than the newest one of its code)."""
        retention = self._retention
        if retention.total == 0:
            return None
        record = _record_of(message)
        tape = self._tapes.get(record.market)
        if tape is None:
            tape = self._tapes[record.market] = _Tape()
        if not tape.accepts(record):
            return None
        tape.append(record)
        self._order.append(record)
        if record.timestamp > self.newest_ms:
            self.newest_ms = record.timestamp
        if retention.per_code is not None and len(tape) > retention.per_code:
            tape.forget_oldest()
        while len(self._order) > retention.total:
            self._forget_first()
        return record

    def _forget_first(self) -> None:
        record = self._order.popleft()
        tape = self._tapes[record.market]
        if len(tape) and tape.items[tape.head] is record:
            tape.forget_oldest()

    def advance(self, now_ms: int) -> None:
        """The market clock reached ``now_ms``: forget what is older than the retention.

        Trades are forgotten in arrival order, which is time order but for the few tens of ms a
        pair's reports lag its trades, so a trade may outlive the bound by that much."""
        self.now_ms = max(self.now_ms, now_ms)
        seconds = self._retention.seconds
        if seconds is None:
            return
        horizon = self.now_ms - int(seconds * 1000)
        order = self._order
        while order and order[0].trade_timestamp < horizon:
            self._forget_first()

    def trades(self, code: str) -> tuple[TradeRecord, ...]:
        """The remembered trades of ``code``, oldest first."""
        tape = self._tapes.get(code)
        return tuple(tape.items[tape.head :]) if tape is not None else ()

    def forgotten_ms(self, code: str) -> int | None:
        """``trade_timestamp`` of the newest trade of ``code`` forgotten, None if none was."""
        tape = self._tapes.get(code)
        return tape.forgotten_ms if tape is not None else None

    def until(self, code: str, end_ms: int | None) -> list[TradeRecord]:
        """The remembered trades of ``code`` before ``end_ms`` (exclusive), oldest first."""
        tape = self._tapes.get(code)
        if tape is None:
            return []
        items, head = tape.items, tape.head
        end = len(items) if end_ms is None else bisect.bisect_left(items, end_ms, head, key=_TIME)
        return items[head:end]

    def newest_first(
        self,
        code: str,
        *,
        count: int,
        start_ms: int | None = None,
        end_ms: int | None = None,
        cursor: int | None = None,
    ) -> list[TradeRecord]:
        """Up to ``count`` trades of ``code``, newest first: at or after ``start_ms``, before
        ``end_ms`` (exclusive) and before the trade whose ``sequential_id`` is ``cursor``."""
        tape = self._tapes.get(code)
        if tape is None:
            return []
        items = tape.items
        lo, hi = tape.head, len(items)
        if start_ms is not None:
            lo = bisect.bisect_left(items, start_ms, lo, hi, key=_TIME)
        if end_ms is not None:
            hi = bisect.bisect_left(items, end_ms, lo, hi, key=_TIME)
        if cursor is not None:
            hi = min(hi, tape.before_cursor(cursor))
        if hi <= lo:
            return []
        return items[max(lo, hi - count) : hi][::-1]


class _EventLike(Protocol):
    @property
    def kinds(self) -> frozenset[str]: ...


E = TypeVar("E", bound=_EventLike)


def record_events(
    history: TradeHistory,
    events: Iterable[E],
    render: Callable[[E, str], Mapping[str, object] | None],
) -> None:
    """Remember the trade of every event that made one (``render`` is the market source's
    ``render_event``: the very message the stream's subscribers are sent)."""
    if not history.enabled:
        return  # rendering costs microseconds per trade; a saturated benchmark can opt out
    for event in events:
        if "trade" in event.kinds:
            message = render(event, "trade")
            if message is not None:
                history.record(message)


def seed(
    history: TradeHistory,
    codes: Sequence[str],
    render: Callable[[str, str, str], Mapping[str, object] | None],
) -> None:
    """Remember each code's last trade before the market started (what a SNAPSHOT shows);
    ``render`` is the market source's ``render`` (data type, code, stream type)."""
    for code in codes:
        message = render("trade", code, "SNAPSHOT")
        if message is not None:
            history.record(message)
