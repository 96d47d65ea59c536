"""The supervision event stream: started, exited, restarting, gave up.

Every supervisor in a tree publishes to one bus shared with its root. A subscriber gets its own
bounded buffer; publishing never waits for it: when the buffer is full the event is dropped and
counted in :attr:`EventSubscription.dropped`, so a slow consumer (a debug view, a logger) can
never slow the runtime down. Each subscription sees the events of the subtree it was taken on.
"""

from __future__ import annotations

from typing import TypeAlias, final

import attrs
import trio

from actors._util import NoPublicConstructor
from actors.strategy import ExitReason

__all__ = (
    "EventBus",
    "EventSubscription",
    "Exited",
    "GaveUp",
    "RestartRecord",
    "Restarting",
    "Started",
    "SupervisorEvent",
)


@attrs.frozen
class RestartRecord:
    """One restart counted against a supervisor's intensity."""

    time: float
    """When the supervisor decided to restart (Trio clock)."""

    name: str
    """The child whose exit caused the restart."""

    generation: int
    """The incarnation of that child that exited."""

    reason: ExitReason
    """Why it exited."""


@attrs.frozen
class Started:
    """An incarnation called ``task_status.started()``: it is ready."""

    path: tuple[str, ...]
    generation: int
    time: float
    restart: bool
    """True when this start is a restart by the supervisor, not the first start."""


@attrs.frozen
class Exited:
    """An incarnation ended (or failed to start, when ``ready`` is False)."""

    path: tuple[str, ...]
    generation: int
    time: float
    reason: ExitReason
    ready: bool
    """False when it ended before calling ``task_status.started()``: a failed start."""


@attrs.frozen
class Restarting:
    """A child will be started again after ``delay`` seconds of backoff."""

    path: tuple[str, ...]
    generation: int
    """The incarnation being replaced."""

    time: float
    delay: float
    """Backoff before the start attempt, in seconds."""

    cause: str
    """The child whose exit caused this restart (itself, or a sibling under one_for_all /
    rest_for_one)."""

    restarts_in_window: int
    """The supervisor's restart count inside its intensity window, this restart included."""


@attrs.frozen
class GaveUp:
    """A supervisor exceeded its restart intensity; its children are stopped."""

    path: tuple[str, ...]
    generation: int
    time: float
    history: tuple[RestartRecord, ...]
    """The restarts inside the window, oldest first."""


SupervisorEvent: TypeAlias = Started | Exited | Restarting | GaveUp
"""Any event of the supervision stream."""


@final
class EventSubscription(metaclass=NoPublicConstructor):
    """A bounded, lossy view of the events of one subtree.

    Use it as a context manager (closing unsubscribes) and iterate it, or call :meth:`receive`.
    Iteration ends when the root supervisor has stopped and the buffer is drained.
    """

    __slots__ = ("_bus", "_dropped", "_prefix", "_receive", "_send")

    def __init__(self, bus: EventBus, prefix: tuple[str, ...], max_buffer: int) -> None:
        if not (isinstance(max_buffer, int) and max_buffer >= 1):
            raise ValueError(f"max_buffer must be an int >= 1, got {max_buffer!r}")
        self._bus = bus
        self._prefix = prefix
        self._send, self._receive = trio.open_memory_channel[SupervisorEvent](max_buffer)
        self._dropped = 0
        if bus.closed:
            self._send.close()

    @property
    def dropped(self) -> int:
        """Events lost because the buffer was full."""
        return self._dropped

    def __aiter__(self) -> trio.MemoryReceiveChannel[SupervisorEvent]:
        return self._receive

    async def receive(self) -> SupervisorEvent:
        """The next event (raises :class:`trio.EndOfChannel` once the tree stopped)."""
        return await self._receive.receive()

    def receive_nowait(self) -> SupervisorEvent:
        """The next buffered event, else :class:`trio.WouldBlock`."""
        return self._receive.receive_nowait()

    def close(self) -> None:
        """Unsubscribe; buffered events are discarded."""
        self._bus._remove(self)
        self._send.close()
        self._receive.close()

    def __enter__(self) -> EventSubscription:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _offer(self, event: SupervisorEvent) -> None:
        if event.path[: len(self._prefix)] != self._prefix:
            return
        try:
            self._send.send_nowait(event)
        except trio.WouldBlock:
            self._dropped += 1
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            self._bus._remove(self)


@final
class EventBus(metaclass=NoPublicConstructor):
    """The event bus shared by a supervision tree (internal; subscribe through a supervisor)."""

    __slots__ = ("_closed", "_subscribers")

    def __init__(self) -> None:
        self._subscribers: list[EventSubscription] = []
        self._closed = False

    @property
    def closed(self) -> bool:
        """True once the root supervisor stopped."""
        return self._closed

    def subscribe(self, prefix: tuple[str, ...], max_buffer: int) -> EventSubscription:
        """A new subscription to the events under ``prefix``."""
        subscription: EventSubscription = EventSubscription._create(self, prefix, max_buffer)
        if not self._closed:
            self._subscribers.append(subscription)
        return subscription

    def publish(self, event: SupervisorEvent) -> None:
        """Offer ``event`` to every subscriber without waiting."""
        for subscription in tuple(self._subscribers):
            subscription._offer(event)

    def close(self) -> None:
        """End every subscription's iteration once its buffer is drained."""
        self._closed = True
        for subscription in self._subscribers:
            subscription._send.close()
        self._subscribers.clear()

    def _remove(self, subscription: EventSubscription) -> None:
        if subscription in self._subscribers:
            self._subscribers.remove(subscription)
