"""Trio <-> asyncio for nats-py: an asyncio event loop in a dedicated thread owns the NATS
connection, and Trio tasks run coroutines on it.

Why a thread and not trio-asyncio: trio-asyncio does not import on Python 3.14 (it uses the
removed asyncio policy classes), and a thread keeps asyncio's scheduling out of the engine's
Trio loop entirely. The cost is one cross-thread hop per call, which the gateway amortises by
publishing in batches. A Trio caller that is cancelled cancels the asyncio future; a cancelled
publish may still have been stored, which is why every publish carries its ``Nats-Msg-Id``.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import trio

__all__ = ("AsyncioThread", "open_asyncio_thread")

T = TypeVar("T")


class AsyncioThread:
    """A running asyncio loop in its own thread."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop

    async def call(self, make: Callable[[], Coroutine[Any, Any, T]]) -> T:
        """Run ``make()`` on the asyncio loop and return its result (or raise its error)."""
        token = trio.lowlevel.current_trio_token()
        done = trio.Event()
        future = asyncio.run_coroutine_threadsafe(make(), self.loop)

        def finished(_: object) -> None:
            # The Trio run may have ended: then nobody waits any more.
            with contextlib.suppress(trio.RunFinishedError):
                token.run_sync_soon(done.set)

        future.add_done_callback(finished)
        try:
            await done.wait()
        except trio.Cancelled:
            future.cancel()
            raise
        return future.result()

    def call_soon(self, function: Callable[[], object]) -> None:
        """Schedule ``function`` on the asyncio loop without waiting."""
        self.loop.call_soon_threadsafe(function)


@asynccontextmanager
async def open_asyncio_thread() -> AsyncIterator[AsyncioThread]:
    """Start the loop's thread for the block; stop it (and wait for the thread) on exit."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=_run, args=(loop,), name="upbit-engine-nats", daemon=True)
    thread.start()
    try:
        yield AsyncioThread(loop)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(thread.join, 10.0)


def _run(loop: asyncio.AbstractEventLoop) -> None:
    asyncio.set_event_loop(loop)
    try:
        loop.run_forever()
    finally:
        pending = asyncio.all_tasks(loop)
        for task in pending:
            task.cancel()
        if pending:
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.close()
