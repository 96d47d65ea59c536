"""A realtime/private ticket's receive loop (the pump): :func:`engine.runtime.link.read_frames`
routing each message with ``Router.route``, with no actor hop per message. The first message after
an abnormal loss closes the outage's resubscribe latency.
"""

from __future__ import annotations

from typing import NoReturn

from engine.observability.records import MetricsRecorder
from engine.runtime.hosts import PumpHost
from engine.runtime.link import read_frames
from engine.runtime.ticket_runtime import TicketRuntime
from engine.transport.base import Connection

__all__ = ("pump",)


async def pump(core: PumpHost, name: str, conn: Connection, generation: int) -> NoReturn:
    """Receive, decode once and route every frame of connection ``generation`` of ticket
    ``name`` until the connection ends; an error frame raises ``ServerError``."""
    runtime = core.runtime(name)
    metrics = core.metrics
    # Yield every quarter of a subscriber buffer, so even a reader scheduled after two bursts
    # (Trio may order a batch either way) and a release of held-back trades find room; at most
    # 256 (the default buffer's quarter): a 64 KiB read rarely holds more frames.
    burst = max(1, min(256, core.config.subscriber_buffer // 4))
    await read_frames(
        conn,
        core.router.route,
        name=name,
        generation=generation,
        counts=runtime,
        report=metrics.frames,
        received=metrics.received,
        burst=burst,
        on_restored=lambda seconds: _restored(metrics, runtime, seconds),
    )


def _restored(metrics: MetricsRecorder, runtime: TicketRuntime, seconds: float) -> None:
    metrics.resubscribe_latency.observe(seconds)
    runtime.restored(seconds)
