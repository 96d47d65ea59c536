"""A subscription's stream as its reader sees it: one reader, an explicit end.

``async for item in engine.stream(sub_id)`` reads the subscription's buffer
(:class:`~engine.routing.router.SubscriberBuffer`); this wrapper adds the reading model: the task
that first receives owns the stream, a second task is refused, and closing it tells the engine
nobody reads the subscription any more.
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType

import trio

from engine.errors import StreamBusyError
from engine.routing.router import StreamItem, SubscriberBuffer

__all__ = ("SubscriptionStream",)


class SubscriptionStream:
    """``async for item in engine.stream(sub_id)``: messages and engine events, in order.

    **One reader.** A subscription has one open stream at a time, read by one task: every item
    goes to that reader. A second :meth:`Engine.stream` while this one is open, or a
    :meth:`receive` from a second task while the first still runs, raises
    :class:`~engine.errors.StreamBusyError` (rather than split the messages between them).
    Close it (leave ``async with``, or :meth:`close`) to hand the subscription to a new stream;
    a stream whose reading task has ended counts as closed.

    **The end is explicit.** When the subscription ends without an error (unsubscribed by any
    task, released by ``cleanup_inactive``, the engine closed) the last item is an
    :class:`~engine.events.Ended` event and iteration stops after it; when it failed, iteration
    raises :class:`~engine.errors.SubscriptionFailedError` after the buffered items.

    **Open means consumed.** While a stream is open the subscription counts as read, and
    ``cleanup_inactive`` never releases it. Closing it tells the engine nobody reads it any
    more (inactive for ``cleanup_inactive``); opening a new stream undoes that.
    """

    def __init__(self, buffer: SubscriberBuffer, on_close: Callable[[], None]) -> None:
        self._buffer = buffer
        self._on_close = on_close
        self._closed = False
        self._reader: trio.lowlevel.Task | None = None

    @property
    def subscription_id(self) -> str:
        """The subscription this stream reads."""
        return self._buffer.subscription_id

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    def _claim(self) -> None:
        # The first task to receive owns the stream; another may take over once it has ended.
        task = trio.lowlevel.current_task()
        reader = self._reader
        if reader is task:
            return
        if self._closed:
            raise trio.ClosedResourceError(
                f"this stream of {self.subscription_id} was closed; open a new one with "
                "engine.stream(sub_id)"
            )
        if reader is not None and _running(reader):
            raise StreamBusyError(
                f"{self.subscription_id}'s stream is read by task {reader.name!r}; a "
                "subscription has one reader. Read it in that task and pass items on (a "
                "trio memory channel per consumer)"
            )
        self._reader = task

    @property
    def is_read(self) -> bool:
        """Open, and its reading task (if one started) still runs."""
        reader = self._reader
        return not self._closed and (reader is None or _running(reader))

    async def receive(self) -> StreamItem:
        """The next item; raises ``trio.EndOfChannel`` once the subscription ended."""
        if self._reader is not trio.lowlevel.current_task():
            self._claim()
        return await self._buffer.receive()

    def receive_nowait(self) -> StreamItem:
        """The next item if one is waiting, else ``trio.WouldBlock``; ``trio.EndOfChannel``
        once the subscription ended and its items were read. Same one-reader rule as
        :meth:`receive`."""
        if self._reader is not trio.lowlevel.current_task():
            self._claim()
        return self._buffer.receive_nowait()

    def __aiter__(self) -> SubscriptionStream:
        return self

    async def __anext__(self) -> StreamItem:
        if self._reader is not trio.lowlevel.current_task():
            self._claim()
        try:
            return await self._buffer.receive()
        except trio.EndOfChannel:
            raise StopAsyncIteration from None

    def close(self) -> None:
        """Stop reading (idempotent). The subscription stays until it is unsubscribed."""
        if not self._closed:
            self._closed = True
            self._on_close()

    async def __aenter__(self) -> SubscriptionStream:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _running(task: trio.lowlevel.Task) -> bool:
    # A finished coroutine has no frame.
    return getattr(task.coro, "cr_frame", None) is not None
