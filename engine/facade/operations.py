"""What runs beside the supervision tree for operators while the engine is open: the bridge from
the actors runtime's supervision events to the journal, and the debug channel
(``EngineConfig.debug``)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import trio

from actors import EventSubscription, GaveUp, Restarting, Supervisor
from engine.debug_address import parse_debug_address
from engine.facade.views import debug_tree, engine_metrics
from engine.observability.debug_replies import (
    DebugRequest,
    metrics_reply,
    subscriptions_reply,
    tickets_reply,
    tree_reply,
)
from engine.observability.operator_events import ActorGaveUp, ActorRestarting
from engine.runtime.debug_channel import open_debug_channel
from engine.runtime.state import EngineCore

__all__ = ("debug_answer", "open_operations")

#: Supervision events buffered for the bridge (a restart storm beyond it is counted as dropped).
_BRIDGE_BUFFER = 256


@asynccontextmanager
async def open_operations(core: EngineCore, root: Supervisor) -> AsyncIterator[None]:
    """Run the supervision bridge and, if configured, the debug channel for the block."""
    async with trio.open_nursery() as nursery:
        subscription = root.subscribe(max_buffer=_BRIDGE_BUFFER)
        nursery.start_soon(_bridge, core, subscription)
        try:
            if core.config.debug is None:
                yield
            else:
                address = parse_debug_address(core.config.debug)
                answer = debug_answer(core, root)
                async with open_debug_channel(address, core.journal, answer) as (channel, where):
                    core.debug_channel, core.debug_address = channel, where
                    try:
                        yield
                    finally:
                        core.debug_address = None
        finally:
            subscription.close()
            nursery.cancel_scope.cancel()


async def _bridge(core: EngineCore, subscription: EventSubscription) -> None:
    """Supervision events of interest, as operator events (restarts with their delay)."""
    journal = core.journal
    with contextlib.suppress(trio.ClosedResourceError):
        async for event in subscription:
            actor = "/".join(event.path)
            if isinstance(event, Restarting):
                journal.publish(
                    ActorRestarting(
                        at=event.time,
                        actor=actor,
                        generation=event.generation,
                        delay=event.delay,
                        caused_by=event.cause,
                        restarts_in_window=event.restarts_in_window,
                    )
                )
            elif isinstance(event, GaveUp):
                journal.publish(
                    ActorGaveUp(at=event.time, actor=actor, restarts=len(event.history))
                )


def debug_answer(core: EngineCore, root: Supervisor) -> Callable[[DebugRequest], dict[str, object]]:
    """The debug channel's replies to every command but ``help`` and ``events``."""

    def answer(request: DebugRequest) -> dict[str, object]:
        command = request.command
        if command == "tree":
            return tree_reply(debug_tree(core, root))
        if command == "tickets":
            return tickets_reply(debug_tree(core, root), trio.current_time())
        metrics = engine_metrics(core)
        if command == "subscriptions":
            capacity = {sub_id: buffer.max_size for sub_id, buffer in core.buffers.items()}
            subs = core.registry.subscriptions()
            return subscriptions_reply(subs, metrics, capacity, core.journal.gaps)
        return metrics_reply(metrics)

    return answer
