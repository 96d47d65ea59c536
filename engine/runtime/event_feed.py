"""``Engine.events()``: the journal's operator events as an async iterator, with its own bounded
buffer (a reader that falls behind gets :class:`EventsDropped` and never slows the engine)."""

from __future__ import annotations

from types import TracebackType

import trio

from engine.observability.journal import Journal, JournalReader
from engine.observability.operator_events import OperatorEvent

__all__ = ("EventFeed",)


class EventFeed:
    """Operator events published after its creation (and the last ``replay`` ones), in order.

    Iterate it (``async for event in feed``); the iteration ends when the engine stops. Use it
    as a context manager (``with eng.events() as feed``) or call :meth:`close` to stop
    receiving earlier; an iterator never closed holds at most ``capacity`` events.
    """

    def __init__(self, journal: Journal, *, capacity: int = 1024, replay: int = 0) -> None:
        self._lot = trio.lowlevel.ParkingLot()
        self._reader: JournalReader = journal.reader(
            capacity, wake=self._lot.unpark_all, replay=replay
        )

    @property
    def dropped(self) -> int:
        """Events this feed lost because it was read too slowly."""
        return self._reader.dropped

    def receive_nowait(self) -> OperatorEvent | None:
        """The next waiting event, or ``None``."""
        return self._reader.take()

    async def receive(self) -> OperatorEvent:
        """The next event; raises :class:`trio.EndOfChannel` once the engine stopped (or the
        feed was closed) and every waiting event was taken."""
        # As Trio's channels do: a cancelled receive takes nothing (the cancel is checked before
        # the take, and the checkpoint after it cannot be cancelled).
        await trio.lowlevel.checkpoint_if_cancelled()
        while True:
            event = self._reader.take()
            if event is not None:
                await trio.lowlevel.cancel_shielded_checkpoint()
                return event
            if self._reader.closed:
                await trio.lowlevel.cancel_shielded_checkpoint()
                raise trio.EndOfChannel
            await self._lot.park()

    def close(self) -> None:
        """Stop receiving (events already waiting can still be read)."""
        self._reader.close()

    def __aiter__(self) -> EventFeed:
        return self

    async def __anext__(self) -> OperatorEvent:
        try:
            return await self.receive()
        except trio.EndOfChannel:
            raise StopAsyncIteration from None

    def __enter__(self) -> EventFeed:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
