"""Running the engine: :func:`open_engine` builds the shared state, starts the supervision tree
and yields the :class:`~engine.facade.engine.Engine`; leaving the block stops everything in
reverse start order."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import trio

from actors import open_supervisor
from engine.config import EngineConfig
from engine.core.registry import DEFAULT_CAPACITY
from engine.facade.engine import Engine
from engine.facade.operations import open_operations
from engine.facade.views import engine_metrics
from engine.markets.catalog import MarketCatalog
from engine.runtime.metrics_http import serve_metrics
from engine.runtime.state import EngineCore
from engine.runtime.tree import engine_children, root_options
from engine.transport import transport_for
from engine.transport.base import Transport

__all__ = ("open_engine",)

#: Seconds closing the REST client may take when the engine stops.
_REST_CLOSE_TIMEOUT = 2.0


@asynccontextmanager
async def _metrics_endpoint(core: EngineCore) -> AsyncIterator[None]:
    """Prometheus over HTTP while the engine runs, if ``EngineConfig.metrics_port`` asks."""
    config = core.config
    if config.metrics_port is None:
        yield
        return
    read = functools.partial(engine_metrics, core)
    async with serve_metrics(read, host=config.metrics_host, port=config.metrics_port) as where:
        core.metrics_address = where
        try:
            yield
        finally:
            core.metrics_address = None


@asynccontextmanager
async def open_engine(
    config: EngineConfig | None = None,
    /,
    *,
    catalog: MarketCatalog | None = None,
    transport: Transport | str | None = None,
    ticket_capacity: int = DEFAULT_CAPACITY,
    **options: Any,
) -> AsyncIterator[Engine]:
    """Run the engine for the duration of the block.

    Options are :class:`~engine.config.EngineConfig` fields as keywords (applied on top of
    ``config`` if one is given); the defaults point at the real Upbit endpoints. ``catalog``
    replaces fetching the market list (tests), ``transport`` the WebSocket implementation (a
    :class:`~engine.transport.Transport`, or the name of one: the ``EngineConfig.transport``
    option), and
    ``ticket_capacity`` is the most distinct codes the planner puts on one realtime ticket
    before opening the next. Leaving the block ends every stream cleanly and stops every actor
    in reverse start order.
    """
    if isinstance(transport, str):
        options["transport"] = transport
        transport = None
    engine_config = EngineConfig.from_options(config, **options)
    core = EngineCore(
        engine_config,
        transport=transport or transport_for(engine_config.transport),
        catalog=catalog,
        ticket_capacity=ticket_capacity,
    )
    try:
        async with (
            open_supervisor(engine_children(core), **root_options(core)) as root,
            _metrics_endpoint(core),
            open_operations(core, root),
        ):
            core.root = root
            try:
                yield Engine(core, root)
            finally:
                core.closed = True
                for buffer in core.buffers.values():
                    buffer.close("the engine closed")
                core.note_change()
                # Readers of events() and debug followers end after the last Ended.
                core.journal.close()
    finally:
        core.root = None
        core.registry_ref = None
        with trio.move_on_after(_REST_CLOSE_TIMEOUT) as scope:
            scope.shield = True
            await core.quotation.aclose()
