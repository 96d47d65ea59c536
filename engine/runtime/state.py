"""The engine's shared state: what outlives any one actor incarnation.

:class:`EngineCore` holds the sans-IO :class:`~engine.core.registry.Registry` (written only by the
registry actor), the :class:`~engine.routing.router.Router` (fed by the ticket pumps, re-tabled by
the registry actor), the subscribers' buffers, the market catalog source, the transport, the connect
limiter shared by every ticket (Upbit counts connects per IP), the metrics recorder and one
:class:`TicketRuntime` per ticket. Keeping the registry here rather than inside the actor means a
crashed registry actor loses no subscription: its next incarnation declares every connection
lost and lets the tickets reconnect and replay.

When several tickets are down at once (a server restart), :meth:`EngineCore.wait_turn` makes
them reconnect in ticket order: a ticket does not attempt a connect while a lower ticket is also
trying to get back (connecting or backing off), so they come back one after another, each
through the shared connect limiter.

This module imports neither the registry actor nor the tickets (they import it): the messages
they exchange live in :mod:`engine.runtime.registry_messages`, and :mod:`engine.runtime.tree` wires
the actors together.
"""

from __future__ import annotations

import contextlib
import itertools
import random
import uuid
import warnings
from typing import Any

import attrs
import trio

from actors import (
    ActorDeadError,
    ActorRef,
    RestartIntensity,
    RestartWindow,
    Supervisor,
)
from engine.config import EngineConfig
from engine.core.connection_state import ConnectionState
from engine.core.keys import StreamKey
from engine.core.ratelimit import RateLimitBackoff, SlidingWindowLimiter, connect_limiter
from engine.core.registry import DEFAULT_CAPACITY, Registry
from engine.errors import EngineClosedError
from engine.markets.catalog import MarketCatalog
from engine.observability.failure_log import FailureLog
from engine.observability.metrics import MetricsRecorder, TicketMetrics
from engine.rest.catalog_source import CatalogSource
from engine.routing.router import RouteId, Router, SubscriberBuffer
from engine.runtime.registry_messages import RegistryCommand, SnapshotSeen
from engine.runtime.snapshots import SnapshotService
from engine.transport.base import Transport

__all__ = ("TICKETS", "EngineCore", "TicketRuntime")

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
        runtime = self.tickets.get(ticket)
        if runtime is not None:
            runtime.confirm(key)
        ref = self.registry_ref
        if ref is None:
            return
        # The registry is gone (engine stopping): the snapshot no longer matters.
        with contextlib.suppress(ActorDeadError, trio.WouldBlock):
            ref.cast_nowait(SnapshotSeen(ticket, key, subscription_id, trio.current_time()))
