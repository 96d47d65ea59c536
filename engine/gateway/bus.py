"""The consumer side for Trio applications: read what gateways published, as the same typed
models ``eng.stream()`` yields, with the gateways' events.

``open_bus(nats_url, durable="strategy-1")`` binds a durable JetStream pull consumer: a
consumer restarted under the same name resumes after the last message it finished with. A
message is acknowledged when the consumer asks for the next one, so a consumer that crashes
gets the message it was working on (and what it had fetched) again: at least once, never lost;
trades carry ``sequential_id`` for the rare repeat. Without ``durable`` the consumer is
ephemeral and starts at the newest message.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any, Final

import attrs
import orjson
import trio
from nats.errors import TimeoutError as NatsTimeout
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from engine.errors import ProtocolError
from engine.gateway.bridge import AsyncioThread, open_asyncio_thread
from engine.gateway.nats_session import NatsSession, connect
from engine.wire.decode import decode_frame
from engine.wire.messages import Candle, Message, Orderbook, Ticker, Trade

__all__ = ("BusConsumer", "BusEvent", "open_bus")

#: Seconds one fetch waits for messages before asking again.
FETCH_WAIT: Final = 1.0
#: Seconds closing a consumer may take (acks, naks, unsubscribe).
CLOSE_TIMEOUT: Final = 5.0


@attrs.frozen
class BusEvent:
    """An operator event a gateway published on ``{prefix}.events.{gateway}``."""

    gateway: str
    kind: str
    summary: str
    data: Mapping[str, object]


class BusConsumer:
    """Iterate it: messages and :class:`BusEvent`, in the stream's order."""

    def __init__(
        self, thread: AsyncioThread, subscription: Any, events_prefix: str, batch_size: int
    ) -> None:
        self._thread = thread
        self._subscription = subscription
        self._events_prefix = events_prefix
        self._batch: list[Any] = []
        self._handed: Any = None
        self.batch_size = batch_size
        #: Messages skipped: not a market data message this API models.
        self.skipped = 0

    def __aiter__(self) -> BusConsumer:
        return self

    async def __anext__(self) -> Message | BusEvent:
        # Asking for the next message is finishing the last one: acknowledge it (without
        # waiting; only it is outstanding, so a slow reader never outlasts ack_wait).
        self._ack_handed()
        while True:
            while not self._batch:
                # Shielded (bounded by FETCH_WAIT): a fetched batch is never dropped by a
                # cancel; it waits here for the next call, or is handed back by close().
                with trio.CancelScope(shield=True):
                    self._batch = await self._thread.call(self._fetch)
                await trio.lowlevel.checkpoint()
            raw = self._batch.pop(0)
            self._handed = raw
            item = self._decode(raw.subject, raw.data)
            if item is not None:
                return item
            self.skipped += 1  # counted and acknowledged: the stream goes on
            self._ack_handed()

    async def _fetch(self) -> list[Any]:
        try:
            return list(await self._subscription.fetch(self.batch_size, timeout=FETCH_WAIT))
        except (TimeoutError, NatsTimeout):
            return []

    def _ack_handed(self) -> None:
        raw, self._handed = self._handed, None
        if raw is not None:
            self._thread.call_soon(lambda: self._thread.loop.create_task(_quiet(raw.ack())))

    async def close(self) -> None:
        """Acknowledge what was handed out; hand back (nak) what was fetched but not read, so
        the next consumer of the durable gets it at once, in order."""
        self._ack_handed()
        unread, self._batch = self._batch, []

        async def settle() -> None:
            await asyncio.gather(*(raw.nak() for raw in unread))

        await self._thread.call(settle)

    def _decode(self, subject: str, data: bytes) -> Message | BusEvent | None:
        if subject.startswith(self._events_prefix):
            event = orjson.loads(data)
            return BusEvent(
                subject[len(self._events_prefix) :],
                str(event.get("kind", "")),
                str(event.get("summary", "")),
                event,
            )
        try:
            decoded = decode_frame(data)
        except ProtocolError:
            decoded = None
        if not isinstance(decoded, Ticker | Trade | Orderbook | Candle):
            return None  # not a message this API models (another publisher's, a newer type)
        return decoded


async def _quiet(ack: Any) -> None:
    # A lost ack only means a redelivery after ack_wait (at least once): nothing to raise.
    with contextlib.suppress(Exception):
        await ack


@asynccontextmanager
async def open_bus(
    nats: str,
    *,
    durable: str | None = None,
    stream: str = "UPBIT",
    subjects: str | None = None,
    prefix: str = "upbit",
    batch_size: int = 64,
    ack_wait: float = 60.0,
) -> AsyncIterator[BusConsumer]:
    """A consumer of ``stream`` (``subjects``, default every ``{prefix}.>`` subject). It fetches
    ``batch_size`` messages at a time; a message not finished within ``ack_wait`` seconds of its
    fetch comes again, so keep ``ack_wait / batch_size`` above the time one message takes."""
    async with open_asyncio_thread() as thread:
        session: NatsSession = await thread.call(lambda: connect(nats, lambda state: None))
        try:
            config = ConsumerConfig(
                ack_policy=AckPolicy.EXPLICIT,
                deliver_policy=DeliverPolicy.ALL if durable else DeliverPolicy.NEW,
                ack_wait=ack_wait,
                max_ack_pending=-1,
            )
            subscription = await thread.call(
                lambda: session.js.pull_subscribe(
                    subjects or f"{prefix}.>", durable=durable, stream=stream, config=config
                )
            )
            consumer = BusConsumer(thread, subscription, f"{prefix}.events.", batch_size)
            try:
                yield consumer
            finally:
                with trio.CancelScope(shield=True), trio.move_on_after(CLOSE_TIMEOUT):
                    await consumer.close()
                    await thread.call(subscription.unsubscribe)
        finally:
            with trio.CancelScope(shield=True), trio.move_on_after(CLOSE_TIMEOUT):
                await thread.call(session.close)
