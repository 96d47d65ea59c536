"""The emulator's history of events, its listeners, and waiting on a condition.

Every event (connect, refusal, request, error, close, fault, restart) is kept (the newest
``history_limit``) and handed to each listener as it is recorded. Waiters re-check their condition
after every event and every batch of realtime frames (:meth:`EventLog.notify`), so tests
synchronise on what happened, never on sleeps.
"""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import Callable

import trio

from engine.testing.introspection import EmulatorEvent, EventKind

__all__ = ("EventListener", "EventLog")

#: Called with each event as it is recorded (see :meth:`EventLog.add_listener`).
EventListener = Callable[[EmulatorEvent], None]


class EventLog:
    def __init__(self, limit: int) -> None:
        # Old events fall off, so a long-running emulator stays bounded.
        self._events: deque[EmulatorEvent] = deque(maxlen=limit)
        self._listeners: list[EventListener] = []
        self._changed = trio.Event()
        self._waiters = 0

    def events(self) -> tuple[EmulatorEvent, ...]:
        return tuple(self._events)

    def record(self, kind: EventKind, conn_id: int | None, detail: str) -> None:
        event = EmulatorEvent(trio.current_time(), kind, conn_id, detail)
        self._events.append(event)
        for listener in tuple(self._listeners):  # a listener may remove itself
            listener(event)
        self.notify()

    def add_listener(self, listener: EventListener) -> Callable[[], None]:
        """Call ``listener`` with every event from now on; return a function that removes it."""
        self._listeners.append(listener)

        def remove() -> None:
            with contextlib.suppress(ValueError):
                self._listeners.remove(listener)

        return remove

    def notify(self) -> None:
        """Wake the waiters (something changed); cheap when nobody waits."""
        if self._waiters:
            self._changed.set()
            self._changed = trio.Event()

    async def wait_for(self, predicate: Callable[[], bool]) -> None:
        while not predicate():
            self._waiters += 1
            try:
                await self._changed.wait()
            finally:
                self._waiters -= 1
