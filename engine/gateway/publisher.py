"""The gateway's outbound queue: messages wait here (bounded) until JetStream acknowledges them.

The engine's consumers only ever call :meth:`Publisher.offer`, which never blocks: a gateway
that loses NATS keeps the engine running, holds up to ``limit`` messages, and beyond that refuses
the newest (the oldest may be in flight), counts them and says so on the events subject once
NATS is back. A batch whose acks
did not all come is retried, in order, with the same message ids: JetStream keeps one copy of a
message that was stored but whose ack was lost.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Final

import attrs
import orjson
import trio

from engine.gateway.nats_session import PublishOutcome

__all__ = ("GatewayStats", "Publisher")

_log = logging.getLogger("engine.gateway")

#: Seconds between retries of a batch that was not acknowledged.
RETRY_DELAY: Final = 0.5

Item = tuple[str, bytes, "str | None"]


@attrs.define
class GatewayStats:
    """What the gateway did (``upbit-engine serve`` logs it; tests read it)."""

    offered: int = 0
    stored: int = 0
    duplicates: int = 0
    dropped: int = 0
    retries: int = 0
    buffered: int = 0
    connected: bool = True
    last_error: str | None = None

    def as_metrics(self) -> dict[str, float]:
        """The counters as ``EngineMetrics.gateway`` holds them."""
        return {
            "stored": self.stored,
            "duplicates": self.duplicates,
            "dropped": self.dropped,
            "retries": self.retries,
            "queued": self.buffered,
            "connected": 1.0 if self.connected else 0.0,
        }


class Publisher:
    """A bounded queue drained by :meth:`run` through ``publish`` (a batch -> its outcome)."""

    def __init__(
        self,
        publish: Callable[[Sequence[Item]], Awaitable[PublishOutcome]],
        *,
        limit: int,
        batch: int,
        events_subject: str,
        instance: str,
    ) -> None:
        self._publish = publish
        self._limit = limit
        self._batch = batch
        self._queue: deque[Item] = deque()
        self._wake = trio.Event()
        self._settled = trio.Event()
        self._events_subject = events_subject
        self._instance = instance
        self._event_serial = 0
        self._dropped_unreported = 0
        self.stats = GatewayStats()

    def offer(self, subject: str, data: bytes, msg_id: str | None) -> None:
        """Queue one message; never blocks (refused, and counted, when the queue is full)."""
        self.stats.offered += 1
        if len(self._queue) >= self._limit:
            # Full: the new message is refused (the head may be in flight: never evict it).
            self.stats.dropped += 1
            self._dropped_unreported += 1
            return
        self._queue.append((subject, data, msg_id))
        self.stats.buffered = len(self._queue)
        self._wake.set()

    def offer_event(self, event: dict[str, object], *, first: bool = False) -> None:
        """Queue an event for the events subject (its id makes a retried publish idempotent);
        ``first``: ahead of everything queued (a loss report must not be lost to the overflow
        it reports)."""
        self._event_serial += 1
        msg_id = f"event:{self._instance}:{self._event_serial}"
        if first:
            self.stats.offered += 1
            self._queue.appendleft((self._events_subject, orjson.dumps(event), msg_id))
            self._wake.set()
        else:
            self.offer(self._events_subject, orjson.dumps(event), msg_id)

    def __len__(self) -> int:
        return len(self._queue)

    async def wait_empty(self) -> None:
        """Return once everything queued so far was acknowledged (or dropped)."""
        while self._queue:
            await self._settled.wait()

    def nats_state(self, state: str) -> None:
        """The NATS client's news (``disconnected``, ``reconnected``, ``error: ...``)."""
        if state == "disconnected":
            self.stats.connected = False
            self.stats.last_error = "NATS disconnected"
        elif state == "reconnected":
            self.stats.connected = True

    async def run(self) -> None:
        """Publish until cancelled."""
        while True:
            if not self._queue:
                self._wake = trio.Event()
                await self._wake.wait()
            await self.flush_once()

    async def flush_once(self) -> None:
        """Publish one batch; on failure wait ``RETRY_DELAY`` (the batch stays queued)."""
        batch = [self._queue[i] for i in range(min(self._batch, len(self._queue)))]
        if not batch:
            return
        try:
            outcome = await self._publish(batch)
        except Exception as exc:  # the connection itself failed: everything is retried
            outcome = PublishOutcome(0, 0, tuple(range(len(batch))), repr(exc))
        self._settle(batch, outcome)
        self._settled.set()
        self._settled = trio.Event()
        if outcome.failed:
            await trio.sleep(RETRY_DELAY)

    def _settle(self, batch: list[Item], outcome: PublishOutcome) -> None:
        """The batch at the queue's head was answered: acknowledged items leave the queue."""
        stats = self.stats
        stats.stored += outcome.stored
        stats.duplicates += outcome.duplicates
        failed = set(outcome.failed)
        # Acknowledged ones leave the queue; the rest stay at its head, in their order.
        keep = [item for index, item in enumerate(batch) if index in failed]
        # A loss report put first while the batch was in flight sits ahead of it.
        reports = []
        while self._queue and self._queue[0] is not batch[0]:
            reports.append(self._queue.popleft())
        for _ in batch:
            self._queue.popleft()
        self._queue.extendleft(reversed(reports))
        self._queue.extendleft(reversed(keep))
        if failed:
            stats.retries += len(failed)
            if stats.connected:
                _log.warning(
                    "NATS did not acknowledge %d of %d messages (%s); holding up to %d and "
                    "retrying with the same ids",
                    len(failed),
                    len(batch),
                    outcome.error,
                    self._limit,
                    extra={"failed": len(failed), "error": outcome.error},
                )
            stats.connected = False
            stats.last_error = outcome.error
        else:
            if not stats.connected:
                stats.connected = True
                _log.info("NATS acknowledges again; %d messages queued", len(self._queue))
            if self._dropped_unreported:
                lost, self._dropped_unreported = self._dropped_unreported, 0
                _log.warning(
                    "dropped %d message(s): NATS did not take them before the buffer (%d) "
                    "filled; announced on %s",
                    lost,
                    self._limit,
                    self._events_subject,
                    extra={"dropped": lost},
                )
                self.offer_event(
                    first=True,
                    event={
                        "kind": "gateway_dropped",
                        "count": lost,
                        "summary": f"{lost} message(s) dropped: NATS was unreachable longer "
                        f"than the buffer ({self._limit} messages) lasts",
                    },
                )
        stats.buffered = len(self._queue)
