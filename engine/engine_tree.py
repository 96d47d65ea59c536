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
ticket keeps talking to a registry incarnation that no longer knows it. If the tickets
supervisor itself is restarted (it gave up), the registry is told to start again every ticket
that should carry streams: a fresh supervisor starts with no ticket children.

Restart intensity is judged **per ticket** (:class:`TicketRuntime` keeps each ticket's window
of failures, ``EngineConfig.max_restarts`` in ``restart_window``): a ticket that fails too often
gives up alone, failing its own subscriptions with a cause that says so, and the other tickets
carry on. The tickets supervisor's own intensity is the sum of its children's, a safety net
that only a bug can reach.

When several tickets are down at once (a server restart), :meth:`EngineCore.wait_turn` makes
them reconnect in ticket order: a ticket does not attempt a connect while a lower ticket is also
trying to get back (connecting or backing off), so they come back one after another, each
through the shared connect limiter.
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
    RestartWindow,
    Strategy,
    Supervisor,
    supervisor_spec,
)
from engine._failure_log import FailureLog
from engine.config import EngineConfig
from engine.errors import CatalogUnavailableError, EngineClosedError
from engine.markets import CatalogSource, MarketCatalog
from engine.metrics import ConnectionState, MetricsRecorder, TicketMetrics
from engine.planner import StreamKey
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

#: States in which a ticket is down and trying to come back (it holds lower tickets' turns).
_RECONNECTING = frozenset({ConnectionState.CONNECTING, ConnectionState.BACKING_OFF})


class _Pulse:
    """Wakes every waiter on each :meth:`fire`; waiters re-check their condition."""

    def __init__(self) -> None:
        self._event = trio.Event()

    def fire(self) -> None:
        self._event.set()
        self._event = trio.Event()

    async def wait(self) -> None:
        await self._event.wait()


@attrs.define(eq=False)
class TicketRuntime:
    """What one realtime/private ticket keeps across its actor's incarnations, written by the
    ticket (and its pump, without an actor hop) and read by the facade and the registry.

    Nothing here is on the per-message path except ``last_frame`` and ``frames``.
    """

    name: str
    #: Position in ticket order (realtime pool first, then private).
    index: int
    #: ``EngineConfig.max_restarts`` failures in ``restart_window`` seconds, per ticket.
    window: RestartWindow[str]
    pulse: _Pulse
    #: Trio time of the last frame received on the current connection.
    last_frame: float | None = None
    #: Frames received since the engine started.
    frames: int = 0
    #: Frames skipped since the engine started: undecodable, or of an unmodelled type.
    frames_skipped: int = 0
    #: When the last abnormal loss began, until the restored connection's first frame.
    lost_at: float | None = None
    state: ConnectionState = ConnectionState.CLOSED
    #: Trio time ``state`` was entered.
    since: float = 0.0
    connects: int = 0
    reconnects: int = 0
    failures: int = 0
    last_failure: str | None = None
    last_failure_at: float | None = None
    rejected_requests: int = 0
    #: Streams Upbit accepted on this ticket (a SNAPSHOT came, or no error frame followed the
    #: request): an error frame after a request is never blamed on them.
    known_good: set[StreamKey] = attrs.field(factory=set)
    #: While the ticket waits for Upbit to accept a probe: the streams whose SNAPSHOT is due.
    probe_waiting: set[StreamKey] | None = None
    probe_done: trio.Event = attrs.field(factory=trio.Event)
    #: The current failure streak, for the log (one line per new cause, one on recovery).
    failure_log: FailureLog = attrs.field(
        default=attrs.Factory(lambda self: FailureLog(self.name), takes_self=True)
    )

    def enter(self, state: ConnectionState) -> None:
        """Move to ``state`` (``since`` changes only when the state does)."""
        if state is not self.state:
            self.state = state
            self.since = trio.current_time()
            self.pulse.fire()

    def connected(self) -> None:
        """A connection was opened (its replay comes next)."""
        if self.connects:
            self.reconnects += 1
        self.connects += 1
        self.enter(ConnectionState.REPLAYING)
        self.failure_log.connected(trio.current_time())

    def note_failure(self, cause: str) -> None:
        """Record an abnormal end of a connection or connect attempt.

        Logged at WARNING on the first failure and whenever the cause changes, never once per
        retry: a server down for minutes costs one line, not one per backoff step."""
        now = trio.current_time()
        self.failures += 1
        self.last_failure = cause
        self.last_failure_at = now
        self.failure_log.failed(cause, now)

    def may_restart(self, cause: str) -> bool:
        """Count a restart in the ticket's window; False once its intensity is exceeded."""
        return self.window.record(trio.current_time(), cause)

    def forget_restarts(self) -> None:
        """Start a fresh intensity window (the ticket gave up; a new start is a new story)."""
        self.window = RestartWindow(self.window.intensity)

    def confirm(self, key: StreamKey) -> None:
        """Upbit sent the SNAPSHOT of ``key``: the request carrying it was accepted."""
        self.known_good.add(key)
        waiting = self.probe_waiting
        if waiting is not None:
            waiting.discard(key)
            if not waiting:
                self.probe_done.set()

    def metrics(self, now: float) -> TicketMetrics:
        """A frozen view of the ticket's connection."""
        return TicketMetrics(
            ticket=self.name,
            state=self.state,
            since=self.since,
            time_in_state=max(0.0, now - self.since),
            connects=self.connects,
            reconnects=self.reconnects,
            failures=self.failures,
            last_failure=self.last_failure,
            last_failure_at=self.last_failure_at,
            rejected_requests=self.rejected_requests,
            frames_skipped=self.frames_skipped,
        )


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
        self.router = Router(on_snapshot=self._on_snapshot)
        self.buffers: dict[str, SubscriberBuffer] = {}
        #: Set (and replaced) each time the registry actor handled a command: what
        #: ``Engine.wait_active`` waits on.
        self.changed = trio.Event()
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
            frame_report=self.metrics.frames,
        )
        self.instance = uuid.UUID(int=self.rng.getrandbits(128)).hex[:12]
        self.registry_ref: ActorRef[RegistryCommand] | None = None
        self.root: Supervisor | None = None
        self._turns = _Pulse()
        intensity = RestartIntensity(config.max_restarts, config.restart_window)
        started = trio.current_time()
        self.tickets: dict[str, TicketRuntime] = {
            name: TicketRuntime(name, index, RestartWindow(intensity), self._turns, since=started)
            for index, name in enumerate(self.registry.tickets())
        }
        #: Routes flagged as waiting for a SNAPSHOT (kept by engine._route_publish).
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

    async def wait_turn(self, ticket: str) -> None:
        """Return when ``ticket`` may make its next connect attempt in ticket order.

        It waits while a lower ticket is also trying to get back (connecting or backing off),
        so tickets that fail together come back one after another, in ticket order. A ticket
        that is connected, closed or failed holds nobody back, and the wait is bounded
        (``backoff_max + connect_timeout``, about one backoff and one connect of the lower
        ticket), so a lower ticket that stopped trying cannot hold the others back for long.
        """
        me = self.tickets[ticket]
        config = self.config
        deadline = trio.current_time() + config.backoff_max + config.connect_timeout
        while any(
            other.index < me.index and other.state in _RECONNECTING
            for other in self.tickets.values()
        ):
            with trio.move_on_at(deadline) as waited:
                await self._turns.wait()
            if waited.cancelled_caught:
                return

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

    def _on_snapshot(self, ticket: str, key: Any, subscription_id: str) -> None:
        # Called synchronously from Router.route: hand the news to the registry actor.
        from engine.registry_actor import SnapshotSeen

        runtime = self.tickets.get(ticket)
        if runtime is not None:
            runtime.confirm(key)
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

    async def restarted(name: str, generation: int) -> None:
        del generation
        if name == TICKETS:
            # A fresh tickets supervisor has no ticket children: start what should run.
            from engine.registry_actor import Relaunch

            ref = core.registry_ref
            if ref is not None:
                with contextlib.suppress(ActorDeadError, trio.WouldBlock):
                    ref.cast_nowait(Relaunch())
        await trio.lowlevel.checkpoint()

    return {
        "name": "engine",
        "strategy": Strategy.REST_FOR_ONE,
        "intensity": RestartIntensity(config.max_restarts, config.restart_window),
        "backoff": _backoff(config),
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
            # Each ticket gives up on its own (TicketRuntime.window) before this sum is reached.
            intensity=RestartIntensity(
                (config.max_restarts + 1) * max(1, len(core.tickets)), config.restart_window
            ),
            backoff=_backoff(config),
            on_restart=count_restart,
        ),
        *core.snapshots.child_specs(),
    ]
