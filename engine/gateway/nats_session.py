"""The gateway's NATS side, run on the asyncio thread (:mod:`engine.gateway.bridge`): connect,
create or check the JetStream stream, publish a batch with message ids, close.

nats-py is used as documented, with its known pitfalls handled (see docs/DESIGN.md "Gateway"):
reconnects never give up, every ack wait has a timeout (a JetStream error reply can leave a
future pending forever), and the ``Nats-Msg-Id`` header is spelt exactly (it is case-sensitive).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

import attrs
import nats
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import Header, StreamConfig
from nats.js.errors import NotFoundError

__all__ = ("NatsSession", "PublishOutcome", "connect")


@attrs.frozen
class PublishOutcome:
    """What a batch did: stored, already there (a duplicate id), and what must be retried."""

    stored: int
    duplicates: int
    #: Indexes into the batch of messages whose ack did not come.
    failed: tuple[int, ...]
    error: str | None


class NatsSession:
    def __init__(self, client: Client, js: JetStreamContext) -> None:
        self.client = client
        self.js = js

    async def ensure_stream(
        self, name: str, prefix: str, *, max_age: float, max_bytes: int, window: float
    ) -> str:
        """Create the stream, or check that an existing one takes ``{prefix}.>``; says which."""
        subject = f"{prefix}.>"
        try:
            info = await self.js.stream_info(name)
        except NotFoundError:
            await self.js.add_stream(
                StreamConfig(
                    name=name,
                    subjects=[subject],
                    max_age=max_age,
                    max_bytes=max_bytes or None,
                    duplicate_window=window,
                )
            )
            return "created"
        subjects = list(info.config.subjects or [])
        if subject not in subjects:
            raise ValueError(
                f"JetStream stream {name} exists with subjects {subjects}, not {subject!r}: "
                "use another --stream, or add the subject to it"
            )
        return "checked"

    async def publish_batch(
        self, batch: Sequence[tuple[str, bytes, str | None]], ack_wait: float
    ) -> PublishOutcome:
        """Publish every ``(subject, data, message id)`` concurrently (one connection: the
        server receives them in order) and wait for each ack within ``ack_wait``."""

        async def one(subject: str, data: bytes, msg_id: str | None) -> bool | None:
            headers = {Header.MSG_ID.value: msg_id} if msg_id else None
            ack = await asyncio.wait_for(
                self.js.publish(subject, data, timeout=ack_wait, headers=headers), ack_wait * 1.5
            )
            return bool(ack.duplicate)

        results = await asyncio.gather(
            *(one(subject, data, msg_id) for subject, data, msg_id in batch),
            return_exceptions=True,
        )
        failed = tuple(i for i, result in enumerate(results) if isinstance(result, BaseException))
        error = next((repr(r) for r in results if isinstance(r, BaseException)), None)
        duplicates = sum(1 for result in results if result is True)
        return PublishOutcome(len(batch) - len(failed) - duplicates, duplicates, failed, error)

    async def close(self) -> None:
        if not self.client.is_closed:
            await self.client.close()


async def connect(url: str, on_state: Callable[[str], None]) -> NatsSession:
    """Connect to ``url`` (comma-separated servers); ``on_state`` hears ``disconnected``,
    ``reconnected`` and errors (called on the asyncio thread)."""

    async def disconnected() -> None:
        on_state("disconnected")

    async def reconnected() -> None:
        on_state("reconnected")

    async def error(exc: Exception) -> None:
        on_state(f"error: {exc!r}")

    client = await nats.connect(
        servers=[server.strip() for server in url.split(",")],
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.5,
        connect_timeout=5,
        disconnected_cb=disconnected,
        reconnected_cb=reconnected,
        error_cb=error,
        name="upbit-engine gateway",
    )
    return NatsSession(client, client.jetstream())
