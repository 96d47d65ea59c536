"""The engine's shared core and the supervision tree composed around it.

Theory of operation
-------------------
:class:`EngineCore` holds what outlives any one actor incarnation: the sans-IO
:class:`~engine.subscriptions.Registry` (written only by the registry actor), the
:class:`~engine.router.Router` (fed by the ticket pumps, re-tabled by the registry actor), the
subscribers' buffers, the market catalog source, the transport, the connect limiter shared by
every ticket (Upbit counts connects per IP) and the metrics recorder. Keeping the registry here
rather than inside the actor means a crashed registry actor loses no subscription: its next
incarnation declares every connection lost and lets the tickets reconnect and replay.

The tree (ARCHITECTURE.md section 3)::

    engine        Supervisor(rest_for_one)
     |- registry  the single writer of subscription state (permanent)
     |- markets   keeps the market catalog fresh (permanent)
     |- tickets   Supervisor(one_for_one, dynamic ticket children, intensity + backoff)
     `- snapshots the snapshot service (its coordinator and snapshot tickets)

``rest_for_one``: if the registry actor restarts, everything after it restarts too, so no
ticket keeps talking to a registry incarnation that no longer knows it.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import random
import uuid
import warnings
from typing import TYPE_CHECKING, Any

import attrs
import trio

from actors import (
    ActorContext,
    ActorDeadError,
    ActorRef,
    BackoffPolicy,
    ChildSpec,
    Jitter,
    RestartIntensity,
    Strategy,
    Supervisor,
    supervisor_spec,
)
from engine.config import EngineConfig
from engine.errors import CatalogUnavailableError, EngineClosedError
from engine.markets import CatalogSource, MarketCatalog
from engine.metrics import MetricsRecorder
from engine.ratelimit import RateLimitBackoff, SlidingWindowLimiter, connect_limiter
from engine.router import RouteId, Router, SubscriberBuffer
from engine.snapshots import SnapshotService
from engine.subscriptions import DEFAULT_CAPACITY, Registry
from engine.transport import Transport

if TYPE_CHECKING:
    from engine.registry_actor import RegistryCommand

__all__ = ("EngineCore", "TicketRuntime", "engine_children", "root_options")

#: The tickets supervisor's name (its children are named like the registry's tickets).
TICKETS = "tickets"


@attrs.define(eq=False)
class TicketRuntime:
    """What a ticket's pump writes for others to read without an actor hop."""

    name: str
    #: Trio time of the last frame received on the current connection.
    last_frame: float | None = None
    #: Frames received since the engine started.
    frames: int = 0
    #: When the last abnormal loss began, until the restored connection's first frame.
    lost_at: float | None = None


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
        self.metrics = MetricsRecorder()
        self.router = Router(on_snapshot=self._on_snapshot)
        self.buffers: dict[str, SubscriberBuffer] = {}
        if catalog is not None:
            fixed = catalog

            async def fetch() -> MarketCatalog:
                await trio.lowlevel.checkpoint()
                return fixed

            self.catalog = CatalogSource(fetch, ttl=config.catalog_ttl, initial=catalog)
        else:
            self.catalog = CatalogSource.for_url(
                config.rest_url,
                ttl=config.catalog_ttl,
                retry_interval=config.catalog_retry_interval,
                timeout=config.catalog_timeout,
                with_instruments=config.catalog_instruments,
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
        )
        self.instance = uuid.UUID(int=self.rng.getrandbits(128)).hex[:12]
        self.registry_ref: ActorRef[RegistryCommand] | None = None
        self.root: Supervisor | None = None
        self.tickets: dict[str, TicketRuntime] = {
            name: TicketRuntime(name) for name in self.registry.tickets()
        }
        #: Routes flagged as waiting for a SNAPSHOT, and the route ids last published.
        self.awaiting: set[RouteId] = set()
        self.published: frozenset[RouteId] = frozenset()
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
        if ticket.startswith("private-"):
            return self.config.private_ws_url
        return self.config.ws_url

    def headers_for(self, ticket: str) -> list[tuple[str, str]]:
        """Upgrade headers: a fresh JWT for private tickets, nothing for public ones."""
        if not ticket.startswith("private-"):
            return []
        import jwt  # only private streams need it

        config = self.config
        assert config.access_key is not None
        assert config.secret_key is not None
        payload = {"access_key": config.access_key, "nonce": str(uuid.uuid4())}
        with warnings.catch_warnings():
            # Upbit issues the secret keys (40 characters): shorter than PyJWT's advice for
            # HS512, and nothing the user can change, so the advice is noise on every connect.
            warnings.simplefilter("ignore", jwt.InsecureKeyLengthWarning)
            token = jwt.encode(payload, config.secret_key, algorithm=config.jwt_algorithm)
        return [("Authorization", f"Bearer {token}")]

    def tickets_supervisor(self) -> Supervisor:
        """The running tickets supervisor (raises ``ActorError`` subclasses if it is not)."""
        if self.root is None:
            raise EngineClosedError("the engine is not running")
        return self.root.supervisor(TICKETS)

    # -- callbacks from the hot path -------------------------------------------------------------

    def _on_snapshot(self, ticket: str, key: Any, subscription_id: str) -> None:
        # Called synchronously from Router.route: hand the news to the registry actor.
        from engine.registry_actor import SnapshotSeen

        ref = self.registry_ref
        if ref is None:
            return
        # The registry is gone (engine stopping): the snapshot no longer matters.
        with contextlib.suppress(ActorDeadError, trio.WouldBlock):
            ref.cast_nowait(SnapshotSeen(ticket, key, subscription_id, trio.current_time()))


def _backoff(config: EngineConfig) -> BackoffPolicy:
    return BackoffPolicy(
        initial=config.backoff_initial,
        maximum=config.backoff_max,
        multiplier=config.backoff_multiplier,
        jitter=Jitter.EQUAL if config.backoff_jitter > 0 else Jitter.NONE,
    )


def root_options(core: EngineCore) -> dict[str, Any]:
    """Keyword arguments for the engine's root supervisor."""
    config = core.config
    return {
        "name": "engine",
        "strategy": Strategy.REST_FOR_ONE,
        "intensity": RestartIntensity(config.max_restarts, config.restart_window),
        "backoff": _backoff(config),
        "rng": core.rng,
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
    from engine.registry_actor import registry_actor

    config = core.config

    async def count_restart(name: str, generation: int) -> None:
        del name, generation
        core.metrics.restarts += 1
        await trio.lowlevel.checkpoint()

    return [
        ChildSpec(
            "registry",
            registry_actor(core),
            mailbox_size=math.inf,  # tickets and the router cast to it: a circular flow
            shutdown=config.shutdown_grace,
        ),
        ChildSpec("markets", _markets_actor(core), shutdown=config.shutdown_grace),
        supervisor_spec(
            TICKETS,
            [],
            strategy=Strategy.ONE_FOR_ONE,
            intensity=RestartIntensity(config.max_restarts, config.restart_window),
            backoff=_backoff(config),
            on_restart=count_restart,
        ),
        *core.snapshots.child_specs(),
    ]
