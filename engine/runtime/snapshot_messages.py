"""What the snapshot coordinator, its tickets and the service's callers say to each other, and
the state they share across actor incarnations (the hub)."""

from __future__ import annotations

import enum
import itertools
from typing import TypeAlias

import attrs
import trio

from actors import ActorRef, Reply
from engine.core.keys import StreamKey
from engine.core.ratelimit import RateLimitBackoff
from engine.core.snapshot_book import Batch, SnapshotBook
from engine.errors import EngineClosedError, ServerError
from engine.observability.failure_log import FailureLog
from engine.wire.messages import Message

__all__ = (
    "Abandoned",
    "Ask",
    "CoordinatorMessage",
    "Delivered",
    "Disconnected",
    "Hub",
    "HubStatus",
    "Rejected",
    "Settled",
    "SnapshotCounters",
    "TakeBatch",
    "SnapshotTicketConnected",
    "TicketDown",
    "TicketUp",
    "Work",
)

Results: TypeAlias = dict[tuple[str, str], Message]


# -- to the coordinator ----------------------------------------------------------------------


@attrs.frozen
class Ask:
    """A caller wants one SNAPSHOT for each of ``keys`` before ``deadline``."""

    keys: tuple[StreamKey, ...]
    deadline: float
    timeout: float
    reply: Reply[Results]
    #: Chosen by the caller (``Hub.next_ask_id``), so a cancelled caller can withdraw it.
    ask_id: int


@attrs.frozen
class Abandoned:
    """A caller stopped waiting (cancelled): forget its ask now, not at its deadline."""


@attrs.frozen
class TicketUp:
    """A ticket incarnation is running and takes :class:`Work` at ``ref``."""

    ticket: int
    generation: int
    ref: ActorRef[Work]


@attrs.frozen
class TicketDown:
    """A ticket incarnation ended."""

    ticket: int
    generation: int


@attrs.frozen
class SnapshotTicketConnected:
    """A ticket opened its connection."""

    ticket: int
    generation: int


@attrs.frozen
class TakeBatch:
    """A connected ticket may send now: it wants everything queued, or ``None``."""

    ticket: int
    generation: int
    reply: Reply[Batch | None]


@attrs.frozen
class Delivered:
    """SNAPSHOT messages a ticket received."""

    ticket: int
    generation: int
    messages: tuple[Message, ...]


@attrs.frozen
class Settled:
    """Everything of the batch that will come has come; the ticket pulls again next."""

    ticket: int
    generation: int
    batch_id: int


@attrs.frozen
class Disconnected:
    """The ticket's connection ended, or never opened. ``error`` is ``None`` after a normal close
    (linger over, or a stop); ``batch_id`` names the batch it was waiting on."""

    ticket: int
    generation: int
    batch_id: int | None
    error: Exception | None


@attrs.frozen
class Rejected:
    """Upbit sent an error frame (and closes the connection); the batch's asks fail with it."""

    ticket: int
    generation: int
    batch_id: int | None
    error: ServerError


CoordinatorMessage: TypeAlias = (
    Ask
    | Abandoned
    | TicketUp
    | TicketDown
    | SnapshotTicketConnected
    | TakeBatch
    | Delivered
    | Settled
    | Disconnected
    | Rejected
)


# -- to a ticket -----------------------------------------------------------------------------


@attrs.frozen
class Work:
    """There is queued work: connect if needed, then pull it with :class:`TakeBatch`."""


# -- shared state ----------------------------------------------------------------------------


@attrs.define
class SnapshotCounters:
    """Running totals since the service was created (they survive restarts)."""

    calls: int = 0
    completed: int = 0
    timeouts: int = 0
    server_errors: int = 0
    wire_requests: int = 0
    snapshots: int = 0
    connects: int = 0
    connect_failures: int = 0
    connections_lost: int = 0
    #: Frames received, skipped (undecodable, or of a type the engine does not model), and when
    #: the last one came, over every snapshot ticket (``engine.runtime.link.FrameCounts``).
    frames: int = 0
    frames_skipped: int = 0
    last_frame: float | None = None
    #: Snapshot connections do not measure outages (``FrameCounts.lost_at``).
    lost_at: float | None = None
    #: Messages received by type (``status`` for Upbit's status frames).
    received: dict[str, int] = attrs.field(factory=dict)


class HubStatus(enum.Enum):
    """Whether callers can reach a coordinator."""

    NEW = "new"
    RUNNING = "running"
    RESTARTING = "restarting"
    STOPPED = "stopped"


class Hub:
    """What outlives any one incarnation: the current coordinator, counters, the connect backoff
    after HTTP 429/418, the last connection error, which tickets hold a connection."""

    def __init__(self, rate_backoff: RateLimitBackoff) -> None:
        self.status = HubStatus.NEW
        self.coordinator: ActorRef[CoordinatorMessage] | None = None
        self.book: SnapshotBook | None = None
        self.counters = SnapshotCounters()
        self.rate_backoff = rate_backoff
        self.last_error: tuple[float, Exception] | None = None
        self.open_tickets: set[int] = set()
        #: Tickets holding a batch back for their connection's message budget -> when it frees.
        self.budget_waits: dict[int, float] = {}
        #: Per ticket index: its failure streak, for the log (it outlives restarts).
        self.failure_logs: dict[int, FailureLog] = {}
        self._ask_ids = itertools.count(1)
        self._changed = trio.Event()

    def next_ask_id(self) -> int:
        """A fresh id for an :class:`Ask`."""
        return next(self._ask_ids)

    def withdraw(self, ask_id: int) -> None:
        """A cancelled caller's ask leaves the book at once (the coordinator forgets its reply
        on :class:`Abandoned`); a no-op if it was never registered or is gone."""
        if self.book is not None:
            self.book.cancel(ask_id)

    def failure_log(self, ticket: int) -> FailureLog:
        """The failure streak of snapshot ticket ``ticket``."""
        log = self.failure_logs.get(ticket)
        if log is None:
            log = self.failure_logs[ticket] = FailureLog(f"snapshot-{ticket}")
        return log

    def budget_free_at(self) -> float | None:
        """When the first ticket waiting for its message budget may send again, if any is."""
        return min(self.budget_waits.values(), default=None)

    def attach(self, ref: ActorRef[CoordinatorMessage], book: SnapshotBook) -> None:
        """A coordinator incarnation is ready."""
        self.coordinator = ref
        self.book = book
        self.status = HubStatus.RUNNING
        self._signal()

    def detach(self, ref: ActorRef[CoordinatorMessage], *, stopped: bool) -> None:
        """That incarnation ended: for good (``stopped``) or to be restarted."""
        if self.coordinator is not ref:
            return
        self.coordinator = None
        self.book = None
        self.status = HubStatus.STOPPED if stopped else HubStatus.RESTARTING
        self._signal()

    def note_error(self, error: Exception) -> None:
        """Remember the latest connection trouble, to explain timeouts that follow it."""
        self.last_error = (trio.current_time(), error)

    def error_since(self, since: float) -> Exception | None:
        """The latest connection error recorded at or after ``since``, if any."""
        if self.last_error is None or self.last_error[0] < since:
            return None
        return self.last_error[1]

    async def wait_coordinator(self, deadline: float) -> ActorRef[CoordinatorMessage]:
        """The running coordinator; waits (until ``deadline``) while it restarts.

        Raises :class:`~engine.errors.EngineClosedError` if it never ran, has stopped, or did
        not come back in time.
        """
        while True:
            ref = self.coordinator
            if ref is not None and ref.is_alive:
                return ref
            if self.status is HubStatus.NEW:
                raise EngineClosedError(
                    "the snapshot service is not running: mount SnapshotService.child_specs() "
                    "under a running supervisor (open_engine does this) before requesting"
                )
            if self.status is HubStatus.STOPPED:
                raise EngineClosedError("the snapshot service has stopped; open a new engine")
            changed = self._changed
            with trio.move_on_at(deadline):
                await changed.wait()
                continue
            raise EngineClosedError(
                "the snapshot service is restarting after a failure and did not come back "
                "before the request's timeout; retry it"
            )

    def _signal(self) -> None:
        self._changed.set()
        self._changed = trio.Event()
