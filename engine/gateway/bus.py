"""The consumer side for Trio applications: read what gateways published, as the same typed
models ``eng.stream()`` yields, with the gateways' events.

``open_bus(nats_url, durable="strategy-1")`` binds a durable JetStream pull consumer: a
consumer restarted under the same name resumes after the last message it finished with. A
message is acknowledged when the consumer asks for the one after the whole batch it came in, so
a consumer that crashes mid-batch gets the unfinished part again (at least once, never lost);
trades carry ``sequential_id`` for the rare repeat. Without ``durable`` the consumer is
ephemeral and starts at the newest message.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any, Final

import attrs
import orjson
import trio
from nats.errors import TimeoutError as NatsTimeout
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from engine.gateway.bridge import AsyncioThread, open_asyncio_thread
from engine.gateway.nats_session import NatsSession, connect
from engine.wire.decode import decode_frame
from engine.wire.messages import Message

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

    def __init__(self, thread: AsyncioThread, subscription: Any, events_prefix: str) -> None:
        self._thread = thread
        self._subscription = subscription
        self._events_prefix = events_prefix
        self._batch: list[Any] = []
        self._done: list[Any] = []
        self.batch_size = 256

    def __aiter__(self) -> BusConsumer:
        return self

    async def __anext__(self) -> Message | BusEvent:
        while not self._batch:
            await self._ack_done()
            self._batch = await self._thread.call(self._fetch)
        raw = self._batch.pop(0)
        self._done.append(raw)
        return self._decode(raw.subject, raw.data)

    async def _fetch(self) -> list[Any]:
        try:
            return list(await self._subscription.fetch(self.batch_size, timeout=FETCH_WAIT))
        except (TimeoutError, NatsTimeout):
            return []

    async def close(self) -> None:
        """Acknowledge what was handed out; hand back (nak) what was fetched but not read, so
        the next consumer of the durable gets it at once, in order."""
        await self._ack_done()
        unread, self._batch = self._batch, []
        if unread:

            async def nak_all() -> None:
                await asyncio.gather(*(raw.nak() for raw in unread))

            await self._thread.call(nak_all)

    async def _ack_done(self) -> None:
        done, self._done = self._done, []
        if done:

            async def ack_all() -> None:
                await asyncio.gather(*(raw.ack() for raw in done))

            await self._thread.call(ack_all)

    def _decode(self, subject: str, data: bytes) -> Message | BusEvent:
        if subject.startswith(self._events_prefix):
            event = orjson.loads(data)
            return BusEvent(
                subject[len(self._events_prefix) :],
                str(event.get("kind", "")),
                str(event.get("summary", "")),
                event,
            )
        decoded = decode_frame(data)
        assert not isinstance(decoded, list)
        return decoded  # type: ignore[return-value]


@asynccontextmanager
async def open_bus(
    nats: str,
    *,
    durable: str | None = None,
    stream: str = "UPBIT",
    subjects: str | None = None,
    prefix: str = "upbit",
) -> AsyncIterator[BusConsumer]:
    """A consumer of ``stream`` (``subjects``, default every ``{prefix}.>`` subject)."""
    async with open_asyncio_thread() as thread:
        session: NatsSession = await thread.call(lambda: connect(nats, lambda state: None))
        try:
            config = ConsumerConfig(
                ack_policy=AckPolicy.EXPLICIT,
                deliver_policy=DeliverPolicy.ALL if durable else DeliverPolicy.NEW,
                ack_wait=30.0,
                max_ack_pending=-1,
            )
            subscription = await thread.call(
                lambda: session.js.pull_subscribe(
                    subjects or f"{prefix}.>", durable=durable, stream=stream, config=config
                )
            )
            consumer = BusConsumer(thread, subscription, f"{prefix}.events.")
            try:
                yield consumer
            finally:
                with trio.CancelScope(shield=True), trio.move_on_after(CLOSE_TIMEOUT):
                    await consumer.close()
                    await thread.call(subscription.unsubscribe)
        finally:
            with trio.CancelScope(shield=True), trio.move_on_after(CLOSE_TIMEOUT):
                await thread.call(session.close)
