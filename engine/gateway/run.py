"""A gateway: an engine whose every message goes to a JetStream stream, and whose operator events
go to ``{prefix}.events.{name}``.

:func:`open_gateway` runs one for the duration of a block (``upbit-engine serve`` is this plus
signal handling). Leaving the block stops the subscriptions, then publishes what is still queued
(for at most ``FLUSH_TIMEOUT`` seconds), then closes NATS and the engine.
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any, Final

import attrs
import trio

from engine.events import Backfilled, Ended, Gap, Interrupted, SnapshotMissing
from engine.facade.engine import Engine
from engine.facade.open import open_engine
from engine.gateway.bridge import AsyncioThread, open_asyncio_thread
from engine.gateway.config import GatewayConfig
from engine.gateway.encoding import encode_message
from engine.gateway.nats_session import NatsSession, PublishOutcome, connect
from engine.gateway.publisher import GatewayStats, Item, Publisher
from engine.observability.debug_replies import event_json
from engine.observability.journal import LOG_INTERVAL
from engine.observability.operator_events import shape_of
from engine.observability.throttle import LogThrottle
from engine.runtime.event_feed import EventFeed

__all__ = ("FLUSH_TIMEOUT", "Gateway", "batch_publisher", "open_gateway")

#: Seconds a stopping gateway spends publishing what is still queued.
FLUSH_TIMEOUT: Final = 5.0

_log = logging.getLogger("engine.gateway")


@attrs.frozen
class Gateway:
    """A running gateway: its engine (for metrics and the debug channel) and its counters."""

    engine: Engine
    config: GatewayConfig
    publisher: Publisher
    #: ``"created"`` or ``"checked"``: what the gateway did to the JetStream stream.
    stream_setup: str

    @property
    def stats(self) -> GatewayStats:
        return self.publisher.stats


@asynccontextmanager
async def open_gateway(config: GatewayConfig, **engine_options: Any) -> AsyncIterator[Gateway]:
    """Connect to NATS, create or check the stream, start the engine (``engine_options`` are
    ``open_engine``'s) and publish until the block ends."""
    async with open_asyncio_thread() as thread:
        token = trio.lowlevel.current_trio_token()
        listeners: list[Publisher] = []

        def on_state(state: str) -> None:
            # Called on the asyncio thread: log there, tell the publisher in Trio's thread.
            _on_state(state)
            for publisher in listeners:
                with contextlib.suppress(trio.RunFinishedError):
                    token.run_sync_soon(publisher.nats_state, state)

        session = await thread.call(lambda: connect(config.nats, on_state))
        try:
            setup = await thread.call(
                lambda: session.ensure_stream(
                    config.stream,
                    config.prefix,
                    max_age=config.max_age,
                    max_bytes=config.max_bytes,
                    window=config.duplicate_window,
                )
            )
            _log.info("JetStream stream %s %s (subjects %s.>)", config.stream, setup, config.prefix)
            publisher = Publisher(
                batch_publisher(thread, session, config.publish_timeout),
                limit=config.buffer,
                batch=config.batch,
                events_subject=config.events_subject,
                instance=f"{config.name}:{uuid.uuid4().hex[:12]}",
            )
            listeners.append(publisher)
            try:
                async with open_engine(**engine_options) as eng:
                    eng._core.gateway_metrics = publisher.stats.as_metrics  # for metrics()
                    with eng.events(capacity=10_000) as feed:
                        async with trio.open_nursery() as nursery:
                            nursery.start_soon(publisher.run)
                            nursery.start_soon(_forward_events, feed, publisher)
                            for spec in config.own_specs():
                                codes = list(spec.codes)
                                sub_id = await eng.subscribe_realtime(spec.data_type, codes)
                                nursery.start_soon(_forward, eng, sub_id, publisher, config.prefix)
                            try:
                                yield Gateway(eng, config, publisher, setup)
                            finally:
                                nursery.cancel_scope.cancel()
            finally:
                # Also when stopped by cancellation (SIGTERM in serve): what is queued goes out.
                await _flush(publisher)
        finally:
            with trio.CancelScope(shield=True), trio.move_on_after(FLUSH_TIMEOUT):
                await thread.call(session.close)


def batch_publisher(
    thread: AsyncioThread, session: NatsSession, ack_wait: float
) -> Callable[[Sequence[Item]], Awaitable[PublishOutcome]]:
    """A publisher's ``publish``: one batch through ``session``, on the asyncio thread."""

    async def publish(batch: Sequence[Item]) -> PublishOutcome:
        return await thread.call(lambda: session.publish_batch(batch, ack_wait))

    return publish


#: nats-py reports every failed reconnect attempt (twice a second while the server is down).
_ERRORS = LogThrottle(time.monotonic, LOG_INTERVAL)


def _on_state(state: str) -> None:
    # Called on the asyncio thread; logging is thread-safe.
    if state.startswith("error"):
        repeats = _ERRORS.admit(shape_of(state))
        if repeats is None:
            return
        more = f" (+{repeats} like it in the last {LOG_INTERVAL:.0f} s)" if repeats else ""
        _log.warning("NATS %s%s", state, more, extra={"nats_state": "error"})
        return
    level = logging.WARNING if state != "reconnected" else logging.INFO
    _log.log(level, "NATS %s", state, extra={"nats_state": state})


async def _forward(eng: Engine, sub_id: str, publisher: Publisher, prefix: str) -> None:
    async for item in eng.stream(sub_id):
        if isinstance(item, Interrupted | Gap | SnapshotMissing | Backfilled | Ended):
            continue  # the journal's StreamEvent carries it to the events subject
        subject, data, msg_id = encode_message(item, prefix)
        publisher.offer(subject, data, msg_id)


async def _forward_events(feed: EventFeed, publisher: Publisher) -> None:
    async for event in feed:
        publisher.offer_event(event_json(event))


async def _flush(publisher: Publisher) -> None:
    """Publish what is queued, shielded, for at most ``FLUSH_TIMEOUT`` seconds."""
    with trio.CancelScope(shield=True), trio.move_on_after(FLUSH_TIMEOUT):
        while len(publisher):
            await publisher.flush_once()
    if len(publisher):
        _log.warning("stopped with %d message(s) unpublished", len(publisher))
