"""The engine's journal of operator events: recent ones kept, live ones fanned out to bounded
readers, each logged once (repeats rate-limited) under its ``engine.*`` logger.

Publishing never blocks and never fails: a reader that falls behind loses its oldest events and
is told how many (:class:`~engine.observability.operator_events.EventsDropped`), so a stuck
debug client or a forgotten ``Engine.events()`` iterator costs a bounded amount of memory and
nothing else. Sans-IO: the clock is passed in, and a reader is woken through a callback.
"""

from __future__ import annotations

import logging
import weakref
from collections import deque
from collections.abc import Callable
from typing import Final

from engine.events import Ended, Gap
from engine.observability.operator_events import (
    SUBSCRIBER_NOTICES,
    EventsDropped,
    OperatorEvent,
    SlowSubscriber,
    StreamEvent,
    SubscriptionFailed,
)
from engine.observability.throttle import LogThrottle

__all__ = ("LOG_INTERVAL", "RECENT", "Journal", "JournalReader")

#: Events the journal keeps for ``events`` requests and late readers.
RECENT: Final = 500
#: Seconds within which events of one throttle key share one log line.
LOG_INTERVAL: Final = 60.0


class JournalReader:
    """One reader's bounded queue of events (an ``Engine.events()`` iterator, a debug client).

    Oldest events go first when it is full; the next :meth:`take` then returns an
    :class:`EventsDropped` with their count before the events that remain.
    """

    __slots__ = (
        "__weakref__",
        "_capacity",
        "_clock",
        "_items",
        "_journal",
        "_lost",
        "closed",
        "dropped",
        "wake",
    )

    def __init__(
        self,
        journal: Journal,
        capacity: int,
        clock: Callable[[], float],
        wake: Callable[[], object] | None,
    ) -> None:
        self._journal = journal
        self._capacity = capacity
        self._clock = clock
        self._items: deque[OperatorEvent] = deque()
        self._lost = 0
        #: Events dropped from this reader since it started.
        self.dropped = 0
        #: Called (synchronously) when an event arrives or the reader closes.
        self.wake = wake
        self.closed = False

    def offer(self, event: OperatorEvent) -> None:
        if self.closed:
            return
        if len(self._items) >= self._capacity:
            self._items.popleft()
            self._lost += 1
            self.dropped += 1
            self._journal.dropped += 1
        self._items.append(event)
        if self.wake is not None:
            self.wake()

    def take(self) -> OperatorEvent | None:
        """The next event, or ``None`` if none is waiting."""
        if self._lost:
            lost, self._lost = self._lost, 0
            return EventsDropped(at=self._clock(), count=lost)
        if self._items:
            return self._items.popleft()
        return None

    def __len__(self) -> int:
        return len(self._items) + (1 if self._lost else 0)

    def close(self) -> None:
        """Stop receiving; what is queued can still be taken."""
        if not self.closed:
            self.closed = True
            self._journal._readers.discard(self)
            if self.wake is not None:
                self.wake()


class Journal:
    """Where the engine publishes operator events."""

    def __init__(
        self,
        clock: Callable[[], float],
        *,
        recent: int = RECENT,
        log_interval: float = LOG_INTERVAL,
    ) -> None:
        self._clock = clock
        self._recent: deque[OperatorEvent] = deque(maxlen=recent)
        # Weak: an events() iterator the application forgot detaches itself when collected.
        self._readers: weakref.WeakSet[JournalReader] = weakref.WeakSet()
        self._throttle = LogThrottle(clock, log_interval)
        self.closed = False
        #: Events published, and dropped from readers that fell behind (all readers).
        self.published = 0
        self.dropped = 0
        #: Events published per kind.
        self.by_kind: dict[str, int] = {}
        #: Gap events per live subscription (dropped when its stream ends).
        self.gaps: dict[str, int] = {}

    def now(self) -> float:
        """The journal's clock (Trio time in the engine)."""
        return self._clock()

    def publish(self, event: OperatorEvent) -> None:
        """Record ``event``, hand it to every reader and log it."""
        self.published += 1
        self.by_kind[event.kind] = self.by_kind.get(event.kind, 0) + 1
        if isinstance(event, SubscriptionFailed):
            self.gaps.pop(event.subscription_id, None)  # a failed stream gets no Ended
        self._recent.append(event)
        for reader in tuple(self._readers):
            reader.offer(event)
        if event.loggable():
            self._log(event)

    def note_for(self, subscription_id: str) -> Callable[[object, int, int], None]:
        """The ``on_note`` callback of a subscriber's buffer: its stream events, and the moment
        it fills up (``note(None, buffered, max_size)``)."""

        def note(event: object, buffered: int, max_size: int) -> None:
            now = self._clock()
            if event is None:
                self.publish(
                    SlowSubscriber(
                        at=now,
                        subscription_id=subscription_id,
                        buffered=buffered,
                        max_size=max_size,
                    )
                )
            elif isinstance(event, SUBSCRIBER_NOTICES):
                if isinstance(event, Gap):
                    self.gaps[subscription_id] = self.gaps.get(subscription_id, 0) + 1
                elif isinstance(event, Ended):
                    self.gaps.pop(subscription_id, None)
                self.publish(StreamEvent(at=now, subscription_id=subscription_id, event=event))

        return note

    def recent(self, limit: int | None = None) -> tuple[OperatorEvent, ...]:
        """The last ``limit`` events (all kept ones by default), oldest first."""
        events = tuple(self._recent)
        return events if limit is None else events[max(0, len(events) - limit) :]

    def reader(
        self, capacity: int = 1024, *, wake: Callable[[], object] | None = None, replay: int = 0
    ) -> JournalReader:
        """A new reader of the events published from now on (and the last ``replay`` ones)."""
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1:
            raise ValueError(f"capacity must be a positive int, got {capacity!r}")
        reader = JournalReader(self, capacity, self._clock, wake)
        for event in self.recent(replay) if replay else ():
            reader.offer(event)
        if self.closed:
            reader.closed = True
        else:
            self._readers.add(reader)
        return reader

    @property
    def readers(self) -> int:
        """Readers attached now."""
        return len(self._readers)

    def close(self) -> None:
        """The engine stops: every reader ends once it has taken what it holds."""
        self.closed = True
        for reader in tuple(self._readers):
            reader.close()

    def _log(self, event: OperatorEvent) -> None:
        logger = logging.getLogger(event.logger)
        if not logger.isEnabledFor(event.level):
            return
        key = event.throttle_key()
        suppressed = 0
        if key is not None:
            admitted = self._throttle.admit(key)
            if admitted is None:
                return
            suppressed = admitted
        text = event.summary()
        if suppressed:
            text += f" (+{suppressed} like it in the last {self._throttle.interval:.0f} s)"
        extra = {
            name if name not in _RESERVED else f"event_{name}": _loggable(value)
            for name, value in event.context().items()
        }
        extra["event"] = event.kind
        extra["suppressed"] = suppressed
        logger.log(event.level, "%s", text, extra=extra)


#: LogRecord's own attributes: ``extra`` may not overwrite them.
_RESERVED: Final = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


def _loggable(value: object) -> object:
    """Keep scalars as they are for structured handlers; nested values as their text."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)
