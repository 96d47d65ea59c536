"""The engine's shared state: what outlives any one actor incarnation.

:class:`EngineCore` holds the sans-IO :class:`~engine.core.registry.Registry` (written only by the
registry actor), the :class:`~engine.routing.router.Router` (fed by the ticket pumps, re-tabled by
the registry actor), the subscribers' buffers, the market catalog source, the transport, the connect
limiter shared by every ticket (Upbit counts connects per IP), the metrics recorder and one
:class:`TicketRuntime` per ticket. Keeping the registry here rather than inside the actor means a
crashed registry actor loses no subscription: its next incarnation declares every connection
lost and lets the tickets reconnect and replay.

The actors do not see this class: each declares the part it uses as a Protocol
(:class:`~engine.runtime.ticket.TicketHost`, :class:`~engine.runtime.registry_actor.RegistryHost`,
:class:`~engine.routing.publish.RouteSource`), which this class satisfies; only the facade and the
tree wiring, which create and own it, use it whole. What a ticket keeps across incarnations and the
reconnect order are in :mod:`engine.runtime.ticket_runtime`; endpoints and JWTs in
:mod:`engine.runtime.credentials`.

This module imports neither the registry actor nor the tickets (they import it): the messages
they exchange live in :mod:`engine.runtime.registry_messages`, and :mod:`engine.runtime.tree` wires
the actors together.
"""

from __future__ import annotations

import contextlib
import itertools
import random
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import trio

from actors import (
    ActorDeadError,
    ActorRef,
    RestartIntensity,
    RestartWindow,
    Supervisor,
)
from engine.config import EngineConfig
from engine.core.ratelimit import RateLimitBackoff, SlidingWindowLimiter, connect_limiter
from engine.core.registry import DEFAULT_CAPACITY, Registry
from engine.errors import EngineClosedError
from engine.markets.catalog import MarketCatalog
from engine.observability.journal import Journal
from engine.observability.operator_events import CatalogRefreshed, CatalogRefreshFailed
from engine.observability.records import MetricsRecorder
from engine.rest.catalog_source import CatalogSource
from engine.rest.quotation import QuotationClient
from engine.routing.router import BackfillJob, RouteId, Router, SubscriberBuffer
from engine.runtime.backfill import BackfillService
from engine.runtime.credentials import endpoint_for, upgrade_headers
from engine.runtime.debug_channel import DebugChannel
from engine.runtime.registry_messages import RegistryCommand, SnapshotSeen
from engine.runtime.snapshots import SnapshotService
from engine.runtime.ticket_runtime import Pulse, ReconnectOrder, TicketRuntime
from engine.transport.base import Transport

__all__ = ("TICKETS", "EngineCore")

#: The tickets supervisor's name (its children are named like the registry's tickets).
TICKETS = "tickets"


def _catalog_source(config: EngineConfig, catalog: MarketCatalog | None) -> CatalogSource:
    """The catalog given (fixed), or one fetched from ``config.rest_url`` and kept fresh."""
    if catalog is None:
        return CatalogSource.for_url(
            config.rest_url,
            ttl=config.catalog_ttl,
            retry_interval=config.catalog_retry_interval,
            timeout=config.catalog_timeout,
            with_instruments=config.catalog_instruments,
        )
    fixed = catalog

    async def fetch() -> MarketCatalog:
        await trio.lowlevel.checkpoint()
        return fixed

    return CatalogSource(fetch, ttl=config.catalog_ttl, initial=catalog)


class EngineCore:
    """State shared by the engine's actors (see the module's theory of operation)."""

    def __init__(
        self,
        config: EngineConfig,
        *,
        transport: Transport,
        catalog: MarketCatalog | None = None,
        ticket_capacity: int = DEFAULT_CAPACITY,
    ) -> None:
        self.config = config
        self.transport = transport
        self.rng = random.Random(config.seed)
        private = 1 if config.has_credentials else 0
        # Snapshot tickets belong to the snapshot service: the registry plans realtime and
        # private streams only, so a one-shot ask can never land on a realtime connection.
        self.registry = Registry(
            realtime=config.realtime_pool_size,
            snapshot=0,
            private=private,
            capacity=ticket_capacity,
        )
        self.metrics = MetricsRecorder(trio.current_time)
        #: Operator events: ``Engine.events()``, the debug channel and the ``engine.*`` logs.
        self.journal = Journal(trio.current_time)
        self.router = Router(
            on_snapshot=self._on_snapshot,
            on_backfill=self._on_backfill,
            clock=trio.current_time,
        )
        self.buffers: dict[str, SubscriberBuffer] = {}
        #: Set (and replaced) each time the registry actor handled a command: what
        #: ``Engine.wait_active`` waits on.
        self.changed = trio.Event()
        self.catalog = _catalog_source(config, catalog)
        #: The one quotation REST client: history calls and the engine's own REST traffic share
        #: Upbit's per-second budget and its 429/418 state (closed by open_engine).
        self.quotation = QuotationClient(config.rest_url)
        #: Fetches the trades restored trade streams missed (a child of the root supervisor).
        self.backfill = BackfillService(
            config, router=self.router, quotation=self.quotation, metrics=self.metrics
        )
        self.connect_limiter: SlidingWindowLimiter = connect_limiter(config.connects_per_second)
        # One 429/418 state per engine, like the connect limiter: Upbit blocks the IP, so a
        # block seen by any ticket (snapshot tickets included) holds every other one back.
        self.rate_backoff = RateLimitBackoff()
        self.snapshots = SnapshotService(
            config,
            transport=transport,
            connect_limiter=self.connect_limiter,
            rate_backoff=self.rate_backoff,
            rng=random.Random(self.rng.getrandbits(64)),
            frame_report=self.metrics.frames,
        )
        self.instance = uuid.UUID(int=self.rng.getrandbits(128)).hex[:12]
        self.registry_ref: ActorRef[RegistryCommand] | None = None
        self.root: Supervisor | None = None
        turns = Pulse()
        intensity = RestartIntensity(config.max_restarts, config.restart_window)
        started = trio.current_time()
        self.tickets: dict[str, TicketRuntime] = {
            name: TicketRuntime(
                name, index, RestartWindow(intensity), turns, since=started, journal=self.journal
            )
            for index, name in enumerate(self.registry.tickets())
        }
        self._init_operations()
        self._order = ReconnectOrder(
            self.tickets, turns, patience=config.backoff_max + config.connect_timeout
        )
        #: Routes flagged as waiting for a SNAPSHOT (kept by engine.routing.publish).
        self.awaiting: set[RouteId] = set()
        #: Subscription id -> when it was requested, until its first message.
        self.first_message_due: dict[str, float] = {}
        #: Tickets being closed by cleanup/optimize -> set once their connection is gone.
        self.closing: dict[str, trio.Event] = {}
        self._generations = itertools.count(1)
        self.closed = False

    # -- connection parameters ---------------------------------------------------------------

    def next_generation(self) -> int:
        """A connection generation above every one handed out before (engine-wide)."""
        return next(self._generations)

    def url_for(self, ticket: str) -> str:
        """The endpoint a ticket connects to."""
        return endpoint_for(self.config, ticket)

    def headers_for(self, ticket: str) -> list[tuple[str, str]]:
        """Upgrade headers: a fresh JWT for private tickets, nothing for public ones."""
        return upgrade_headers(self.config, ticket)

    def carries_streams(self, ticket: str) -> bool:
        """Whether the registry wants streams on ``ticket`` now."""
        return bool(self.registry.ticket_status(ticket).desired)

    def runtime(self, ticket: str) -> TicketRuntime:
        """What ``ticket`` keeps across its actor's incarnations."""
        return self.tickets[ticket]

    async def wait_turn(self, ticket: str) -> None:
        """Return when ``ticket`` may connect again, in ticket order (:class:`ReconnectOrder`)."""
        await self._order.wait_turn(ticket)

    def note_change(self) -> None:
        """Wake whoever waits for the registry's state to change."""
        self.changed.set()
        self.changed = trio.Event()

    def tickets_supervisor(self) -> Supervisor:
        """The running tickets supervisor (raises ``ActorError`` subclasses if it is not)."""
        if self.root is None:
            raise EngineClosedError("the engine is not running")
        return self.root.supervisor(TICKETS)

    # -- callbacks from the hot path -------------------------------------------------------------

    def stall_probed(self, ticket: str) -> None:
        """A busy ``ticket`` went silent and is being probed: count it, and have its trade and
        candle streams checked against REST once data resumes (a server that stops sending
        loses frames without losing the connection)."""
        self.metrics.count_stall_probe()
        self.router.check_silence(ticket)

    def _init_operations(self) -> None:
        """Have the parts that see operator news publish it to the journal."""
        #: Where Prometheus scrapes ``metrics()`` (``EngineConfig.metrics_port``), while served.
        self.metrics_address: tuple[str, int] | None = None
        #: Where the debug channel listens (``EngineConfig.debug``), and its server, while served.
        self.debug_address: str | None = None
        self.debug_channel: DebugChannel | None = None
        #: Set by a gateway (``engine.gateway.run``): its counters, for ``metrics()``.
        self.gateway_metrics: Callable[[], Mapping[str, float]] | None = None
        self.metrics.frames.on_report = self.journal.publish
        self.quotation.on_event = self.journal.publish
        self.catalog.on_refresh = self._catalog_refreshed
        self.catalog.on_error = self._catalog_failed

    def _catalog_refreshed(self, catalog: MarketCatalog, previous: MarketCatalog | None) -> None:
        codes = set(catalog.codes())
        before = set(previous.codes()) if previous is not None else set()
        self.journal.publish(
            CatalogRefreshed(
                at=trio.current_time(),
                markets=len(codes),
                added=len(codes - before) if previous is not None else 0,
                removed=len(before - codes),
            )
        )

    def _catalog_failed(self, error: Exception) -> None:
        self.journal.publish(
            CatalogRefreshFailed(
                at=trio.current_time(),
                serving_previous=self.catalog.current is not None,
                cause=str(error),
            )
        )

    def _on_backfill(self, job: BackfillJob) -> None:
        # Called synchronously from Router.route: only queued here.
        self.backfill.submit(job)

    def _on_snapshot(self, ticket: str, key: Any, subscription_id: str) -> None:
        # Called synchronously from Router.route: hand the news to the registry actor.
        runtime = self.tickets.get(ticket)
        if runtime is not None:
            runtime.confirm(key)
        ref = self.registry_ref
        if ref is None:
            return
        # The registry is gone (engine stopping): the snapshot no longer matters.
        with contextlib.suppress(ActorDeadError, trio.WouldBlock):
            ref.cast_nowait(SnapshotSeen(ticket, key, subscription_id, trio.current_time()))
