"""The supervision tree composed around the engine's shared state (:mod:`engine.runtime.state`).

The tree::

    engine        Supervisor(rest_for_one)
     |- registry  the single writer of subscription state (permanent)
     |- markets   keeps the market catalog fresh (permanent)
     |- tickets   Supervisor(one_for_one, dynamic ticket children, intensity + backoff)
     |- snapshots the snapshot service (its coordinator and snapshot tickets)
     `- backfill  fetches the trades restored trade streams missed (engine.runtime.backfill)

``rest_for_one``: if the registry actor restarts, everything after it restarts too, so no
ticket keeps talking to a registry incarnation that no longer knows it. If the tickets
supervisor itself is restarted (it gave up), the registry is told to start again every ticket
that should carry streams: a fresh supervisor starts with no ticket children.

Restart intensity is judged **per ticket** (:class:`~engine.runtime.ticket_runtime.TicketRuntime`
keeps each ticket's window of failures, ``EngineConfig.max_restarts`` in ``restart_window``): a
ticket that fails too often gives up alone, failing its own subscriptions with a cause that says so,
and the other tickets carry on. The tickets supervisor's own intensity is the sum of its children's,
a safety net that only a bug can reach.

This module is the only one that knows both the registry actor and the ticket actor: it hands
the registry the ticket factory, so neither imports the other.
"""

from __future__ import annotations

import contextlib
import functools
import math
from typing import Any

import trio

from actors import (
    ActorContext,
    ActorDeadError,
    ChildSpec,
    RestartIntensity,
    Strategy,
    supervisor_spec,
)
from engine.errors import CatalogUnavailableError
from engine.runtime.registry_actor import registry_actor
from engine.runtime.registry_messages import Relaunch
from engine.runtime.state import TICKETS, EngineCore
from engine.runtime.ticket import ticket_actor

__all__ = ("engine_children", "root_options")


def root_options(core: EngineCore) -> dict[str, Any]:
    """Keyword arguments for the engine's root supervisor."""
    config = core.config

    async def restarted(name: str, generation: int) -> None:
        del generation
        if name == TICKETS:
            # A fresh tickets supervisor has no ticket children: start what should run.
            ref = core.registry_ref
            if ref is not None:
                with contextlib.suppress(ActorDeadError, trio.WouldBlock):
                    ref.cast_nowait(Relaunch())
        await trio.lowlevel.checkpoint()

    return {
        "name": "engine",
        "strategy": Strategy.REST_FOR_ONE,
        "intensity": RestartIntensity(config.max_restarts, config.restart_window),
        "backoff": config.backoff_policy(),
        "rng": core.rng,
        "on_restart": restarted,
    }


def _markets_actor(core: EngineCore) -> Any:
    async def markets(
        ctx: ActorContext[Any], *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        # Ready at once: the first subscription that needs the catalog waits for it itself,
        # so an unreachable REST API delays validation, not the engine's start.
        task_status.started()
        config = core.config
        while not ctx.stop_requested:
            try:
                await core.catalog.get()
                pause = config.catalog_ttl
            except CatalogUnavailableError:
                pause = config.catalog_retry_interval
            with trio.move_on_after(pause):
                await ctx.wait_stop_requested()

    return markets


def engine_children(core: EngineCore) -> list[ChildSpec[Any]]:
    """The root supervisor's children, in start order (the snapshot service's come last)."""
    config = core.config

    async def count_restart(name: str, generation: int) -> None:
        del name, generation
        core.metrics.restarts += 1
        await trio.lowlevel.checkpoint()

    return [
        ChildSpec(
            "registry",
            registry_actor(core, functools.partial(ticket_actor, core)),
            mailbox_size=math.inf,  # tickets and the router cast to it: a circular flow
            shutdown=config.shutdown_grace,
        ),
        ChildSpec("markets", _markets_actor(core), shutdown=config.shutdown_grace),
        supervisor_spec(
            TICKETS,
            [],
            strategy=Strategy.ONE_FOR_ONE,
            # Each ticket gives up on its own (TicketRuntime.window) before this sum is reached.
            intensity=RestartIntensity(
                (config.max_restarts + 1) * max(1, len(core.tickets)), config.restart_window
            ),
            backoff=config.backoff_policy(),
            on_restart=count_restart,
        ),
        *core.snapshots.child_specs(),
        # Last: under rest_for_one its restart touches nothing else.
        ChildSpec("backfill", core.backfill.run, shutdown=config.shutdown_grace),
    ]
