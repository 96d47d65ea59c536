"""What a realtime/private ticket keeps across its actor's incarnations, and the order in which
tickets that are down together reconnect.

When several tickets are down at once (a server restart), :meth:`ReconnectOrder.wait_turn` makes
them reconnect in ticket order: a ticket does not attempt a connect while a lower ticket is also
trying to get back (connecting or backing off), so they come back one after another, each
through the shared connect limiter.
"""

from __future__ import annotations

from collections.abc import Mapping

import attrs
import trio

from actors import RestartWindow
from engine.core.connection_state import ConnectionState
from engine.core.keys import StreamKey
from engine.core.stall import StallDetector
from engine.errors import RateLimitedError
from engine.observability.failure_log import FailureLog
from engine.observability.journal import Journal
from engine.observability.operator_events import (
    Connected,
    ConnectFailed,
    RateLimited,
    Replayed,
)
from engine.observability.records import TicketMetrics

__all__ = ("Pulse", "ReconnectOrder", "TicketRuntime")

#: States in which a ticket is down and trying to come back (it holds lower tickets' turns).
_RECONNECTING = frozenset({ConnectionState.CONNECTING, ConnectionState.BACKING_OFF})


class Pulse:
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
    pulse: Pulse
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
    #: The connection's stall judgement; its rate estimate outlives connections and
    #: incarnations (the same streams come back at the same pace). Set by the ticket.
    stall: StallDetector | None = None
    #: The current failure streak, for the log (one line per new cause, one on recovery).
    failure_log: FailureLog = attrs.field(
        default=attrs.Factory(lambda self: FailureLog(self.name), takes_self=True)
    )
    #: Where connects, failed attempts and replays are told (the engine's journal).
    journal: Journal | None = None

    def enter(self, state: ConnectionState) -> None:
        """Move to ``state`` (``since`` changes only when the state does)."""
        if state is not self.state:
            self.state = state
            self.since = trio.current_time()
            self.pulse.fire()

    def connected(self, generation: int) -> None:
        """A connection was opened (its replay comes next)."""
        now = trio.current_time()
        if self.journal is not None:
            streak = self.failure_log
            self.journal.publish(
                Connected(
                    at=now,
                    ticket=self.name,
                    generation=generation,
                    reconnect=self.connects > 0,
                    failed_attempts=streak.attempts,
                    down_for=None if streak.since is None else now - streak.since,
                )
            )
        if self.connects:
            self.reconnects += 1
        self.connects += 1
        self.enter(ConnectionState.REPLAYING)
        self.failure_log.connected(now)

    def connect_failed(self, cause: str, refused: RateLimitedError | None = None) -> None:
        """A connect attempt failed (after :meth:`note_failure`); ``refused``: by a 429/418."""
        journal = self.journal
        if journal is None:
            return
        now = trio.current_time()
        if refused is not None:
            journal.publish(
                RateLimited(
                    at=now,
                    source="websocket",
                    status=refused.status,
                    request=f"connect of {self.name}",
                    retry_in=refused.retry_after,
                )
            )
        journal.publish(
            ConnectFailed(at=now, ticket=self.name, attempt=self.failure_log.attempts, cause=cause)
        )

    def restored(self, seconds: float) -> None:
        """The first frame after a loss arrived ``seconds`` after it."""
        if self.journal is not None:
            self.journal.publish(
                Replayed(at=trio.current_time(), ticket=self.name, seconds=seconds)
            )

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


class ReconnectOrder:
    """Tickets that are down together reconnect in ticket order (see the module docstring)."""

    def __init__(self, tickets: Mapping[str, TicketRuntime], turns: Pulse, *, patience: float):
        self._tickets = tickets
        self._turns = turns
        self._patience = patience

    async def wait_turn(self, ticket: str) -> None:
        """Return when ``ticket`` may make its next connect attempt in ticket order.

        It waits while a lower ticket is also trying to get back (connecting or backing off).
        A ticket that is connected, closed or failed holds nobody back, and the wait is bounded
        by ``patience`` (``backoff_max + connect_timeout``: about one backoff and one connect of
        the lower ticket), so a lower ticket that stopped trying cannot hold the others back.
        """
        me = self._tickets[ticket]
        deadline = trio.current_time() + self._patience
        while any(
            other.index < me.index and other.state in _RECONNECTING
            for other in self._tickets.values()
        ):
            with trio.move_on_at(deadline) as waited:
                await self._turns.wait()
            if waited.cancelled_caught:
                return
