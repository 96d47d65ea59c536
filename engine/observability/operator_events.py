"""What the engine tells its operator: typed events of connections, actors, the server and
subscribers, for ``Engine.events()``, the debug channel and the ``engine.*`` loggers.

A subscriber's stream carries the events that concern it (:mod:`engine.events`); these are the
engine-wide view an operator needs when something goes wrong: a connection lost and why, a
connect refused, a replay done, an actor restarted, an error frame, a 429, a catalog refresh,
frames that drift from the model, a subscriber that reads too slowly. Each one is small, frozen
and carries no secret (no keys, no tokens, no headers).

``at`` is the Trio clock (``trio.current_time()``), the clock of every other engine time;
``utc`` is the wall-clock time of the event, for relating it to the world.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime
from typing import ClassVar, Final, TypeAlias

import attrs

from engine.events import Backfilled, Ended, Gap, Interrupted, SnapshotMissing

__all__ = (
    "OPERATOR_EVENT_TYPES",
    "SUBSCRIBER_NOTICES",
    "ActorGaveUp",
    "ActorRestarting",
    "CatalogRefreshFailed",
    "CatalogRefreshed",
    "ConnectFailed",
    "Connected",
    "ConnectionLost",
    "ErrorFrame",
    "EventsDropped",
    "FrameDrift",
    "OperatorEvent",
    "RateLimited",
    "Replayed",
    "SlowSubscriber",
    "StreamEvent",
    "SubscriptionFailed",
    "TicketFailed",
    "shape_of",
)

#: The longest free text (a cause, an error message) an event keeps.
MAX_TEXT: Final = 300
_NUMBERS: Final = re.compile(r"\d+(?:\.\d+)?")


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _text(value: object) -> str:
    text = str(value)
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 3] + "..."


def shape_of(text: str) -> str:
    """``text`` with its numbers blanked: the same cause with another port, delay or count
    has the same shape (what the logs rate-limit on)."""
    return _NUMBERS.sub("#", text)


@attrs.frozen(kw_only=True)
class OperatorEvent:
    """The base of every operator event: when it happened, and how it is logged."""

    #: The event's name on the debug channel and in JSON (``"connected"``, ...).
    kind: ClassVar[str] = "event"
    #: The ``logging`` level of its log line, and the logger under ``engine.``.
    level: ClassVar[int] = logging.INFO
    logger: ClassVar[str] = "engine"
    #: False for events whose line another part of the engine already logs with its own
    #: suppression rules (connection-failure streaks, frame drift, REST 429s).
    logged: ClassVar[bool] = True

    #: Trio clock seconds.
    at: float
    utc: datetime = attrs.field(factory=_utc_now, eq=False, repr=False)

    def summary(self) -> str:
        """One concise line (counts, never lists of codes)."""
        return self.kind

    def throttle_key(self) -> str | None:
        """Events with equal keys share one log line a minute; ``None``: never throttled."""
        return None

    def loggable(self) -> bool:
        """Whether the journal logs this event (``logged``, unless the event knows better)."""
        return self.logged

    def context(self) -> dict[str, object]:
        """The event's own fields, for ``extra=`` and JSON (no ``at``/``utc``)."""
        return {
            field.name: getattr(self, field.name)
            for field in attrs.fields(type(self))
            if field.name not in ("at", "utc")
        }


@attrs.frozen(kw_only=True)
class Connected(OperatorEvent):
    """A ticket's connection opened (its subscriptions are replayed next)."""

    kind: ClassVar[str] = "connected"
    logger: ClassVar[str] = "engine.connection"
    ticket: str
    generation: int
    #: Whether an earlier connection of this ticket existed.
    reconnect: bool
    #: Failed connects or lost connections since the ticket was last healthy.
    failed_attempts: int = 0
    #: Seconds since the first of those failures, if any.
    down_for: float | None = None

    def summary(self) -> str:
        if not self.reconnect:
            return f"{self.ticket} connected (generation {self.generation})"
        down = "" if self.down_for is None else f" after {self.down_for:.1f} s down"
        return (
            f"{self.ticket} reconnected (generation {self.generation}, "
            f"{self.failed_attempts} failed attempt(s){down})"
        )

    def loggable(self) -> bool:
        # A reconnect is logged by FailureLog ("connected again after N failed attempts").
        return not self.reconnect


@attrs.frozen(kw_only=True)
class ConnectionLost(OperatorEvent):
    """A ticket's open connection ended abnormally; it reconnects with backoff."""

    kind: ClassVar[str] = "connection_lost"
    level: ClassVar[int] = logging.WARNING
    logger: ClassVar[str] = "engine.connection"
    logged: ClassVar[bool] = False  # FailureLog: one line per new cause, not per retry
    ticket: str
    generation: int
    cause: str = attrs.field(converter=_text)

    def summary(self) -> str:
        return f"{self.ticket} lost its connection (generation {self.generation}): {self.cause}"


@attrs.frozen(kw_only=True)
class ConnectFailed(OperatorEvent):
    """A connect attempt failed (network, handshake, 429/418); the ticket retries."""

    kind: ClassVar[str] = "connect_failed"
    level: ClassVar[int] = logging.WARNING
    logger: ClassVar[str] = "engine.connection"
    logged: ClassVar[bool] = False  # FailureLog: one line per new cause, not per retry
    ticket: str
    #: Failures in the current streak, this one included.
    attempt: int
    cause: str = attrs.field(converter=_text)

    def summary(self) -> str:
        return f"{self.ticket} connect attempt {self.attempt} failed: {self.cause}"


@attrs.frozen(kw_only=True)
class Replayed(OperatorEvent):
    """A reconnected ticket's subscriptions were restored: Upbit confirmed the replay."""

    kind: ClassVar[str] = "replayed"
    logger: ClassVar[str] = "engine.connection"
    ticket: str
    #: Seconds from the loss to the first frame of the restored connection.
    seconds: float

    def summary(self) -> str:
        return f"{self.ticket} streams restored {self.seconds:.2f} s after the loss"

    def throttle_key(self) -> str | None:
        return f"replayed:{self.ticket}"


@attrs.frozen(kw_only=True)
class ActorRestarting(OperatorEvent):
    """The supervisor restarts an actor after ``delay`` seconds (its backoff)."""

    kind: ClassVar[str] = "actor_restarting"
    level: ClassVar[int] = logging.WARNING
    logger: ClassVar[str] = "engine.supervisor"
    actor: str
    generation: int
    delay: float
    #: The child whose exit caused the restart (itself, or a sibling under rest_for_one).
    caused_by: str
    #: Restarts of this supervisor in its intensity window, this one included.
    restarts_in_window: int

    def summary(self) -> str:
        return (
            f"restarting {self.actor} in {self.delay:.2f} s after {self.caused_by} exited "
            f"(restart {self.restarts_in_window} in the window)"
        )

    def throttle_key(self) -> str | None:
        return f"restarting:{self.actor}"


@attrs.frozen(kw_only=True)
class ActorGaveUp(OperatorEvent):
    """A supervisor exceeded its restart intensity and stopped."""

    kind: ClassVar[str] = "actor_gave_up"
    level: ClassVar[int] = logging.ERROR
    logger: ClassVar[str] = "engine.supervisor"
    actor: str
    restarts: int

    def summary(self) -> str:
        return f"supervisor {self.actor} gave up after {self.restarts} restart(s)"


@attrs.frozen(kw_only=True)
class TicketFailed(OperatorEvent):
    """A ticket stopped reconnecting (restart intensity exceeded, refused keys); its
    subscriptions failed with ``cause``."""

    kind: ClassVar[str] = "ticket_failed"
    level: ClassVar[int] = logging.ERROR
    logger: ClassVar[str] = "engine.connection"
    ticket: str
    subscriptions: int
    cause: str = attrs.field(converter=_text)

    def summary(self) -> str:
        return f"{self.ticket} gave up; {self.subscriptions} subscription(s) failed: {self.cause}"


@attrs.frozen(kw_only=True)
class ErrorFrame(OperatorEvent):
    """Upbit answered on ``ticket`` with an error frame (which closes the connection)."""

    kind: ClassVar[str] = "error_frame"
    level: ClassVar[int] = logging.WARNING
    logger: ClassVar[str] = "engine.wire"
    ticket: str
    #: Upbit's error name (``INVALID_PARAM``, ...) and message.
    error: str
    detail: str = attrs.field(converter=_text)

    def summary(self) -> str:
        return f"{self.ticket} error frame {self.error}: {self.detail}"

    def throttle_key(self) -> str | None:
        return f"error:{self.ticket}:{self.error}"


@attrs.frozen(kw_only=True)
class RateLimited(OperatorEvent):
    """Upbit refused with HTTP 429 (too many requests) or 418 (blocked for a while)."""

    kind: ClassVar[str] = "rate_limited"
    level: ClassVar[int] = logging.WARNING
    logger: ClassVar[str] = "engine.ratelimit"
    #: ``"websocket"`` (a connect) or ``"rest"`` (a quotation request).
    source: str
    status: int
    #: What was refused, concisely (a ticket, or ``GET /v1/trades/ticks (1 code)``).
    request: str = attrs.field(converter=_text)
    #: Seconds until the engine tries again, when known.
    retry_in: float | None = None

    def summary(self) -> str:
        wait = "" if self.retry_in is None else f"; retrying in {self.retry_in:.2f} s"
        return f"{self.source} {self.status} for {self.request}{wait}"

    def throttle_key(self) -> str | None:
        return f"rate:{self.source}:{self.status}"


@attrs.frozen(kw_only=True)
class CatalogRefreshed(OperatorEvent):
    """The market catalog was fetched (at start, and every ``catalog_ttl``)."""

    kind: ClassVar[str] = "catalog_refreshed"
    logger: ClassVar[str] = "engine.markets"
    markets: int
    added: int
    removed: int

    def summary(self) -> str:
        return f"market catalog: {self.markets} markets (+{self.added} -{self.removed})"


@attrs.frozen(kw_only=True)
class CatalogRefreshFailed(OperatorEvent):
    """Fetching the market catalog failed; the previous one (if any) stays in use."""

    kind: ClassVar[str] = "catalog_refresh_failed"
    level: ClassVar[int] = logging.WARNING
    logger: ClassVar[str] = "engine.markets"
    logged: ClassVar[bool] = False  # CatalogSource logs it
    #: Whether an earlier catalog is still served.
    serving_previous: bool
    cause: str = attrs.field(converter=_text)

    def summary(self) -> str:
        held = "serving the previous catalog" if self.serving_previous else "no catalog yet"
        return f"market catalog refresh failed ({held}): {self.cause}"


@attrs.frozen(kw_only=True)
class FrameDrift(OperatorEvent):
    """Frames departed from the model: skipped (undecodable, unmodelled type) or decoded with
    a field left ``None``. One event per report (at most one a minute per kind of problem);
    ``suppressed`` counts the like ones since the last."""

    kind: ClassVar[str] = "frame_drift"
    level: ClassVar[int] = logging.WARNING
    logger: ClassVar[str] = "engine.wire"
    logged: ClassVar[bool] = False  # FrameReport logs it, rate-limited
    #: ``"undecodable"``, ``"unmodelled_type"`` or ``"field"``.
    problem: str
    detail: str = attrs.field(converter=_text)
    #: The ticket it arrived on ("" for field drift, counted across tickets).
    ticket: str = ""
    suppressed: int = 0

    def summary(self) -> str:
        where = f" on {self.ticket}" if self.ticket else ""
        more = f" (+{self.suppressed} like it)" if self.suppressed else ""
        return f"frame drift{where}: {self.problem} {self.detail}{more}"


@attrs.frozen(kw_only=True)
class SlowSubscriber(OperatorEvent):
    """A subscriber's buffer filled up: its conflating streams keep only their latest values
    from now on (a lossless stream would fail it instead: :class:`SubscriptionFailed`)."""

    kind: ClassVar[str] = "slow_subscriber"
    level: ClassVar[int] = logging.WARNING
    logger: ClassVar[str] = "engine.subscriber"
    subscription_id: str
    buffered: int
    max_size: int

    def summary(self) -> str:
        return (
            f"subscriber {self.subscription_id} reads too slowly: buffer full "
            f"({self.buffered}/{self.max_size}), conflating"
        )

    def throttle_key(self) -> str | None:
        return f"slow:{self.subscription_id}"


@attrs.frozen(kw_only=True)
class SubscriptionFailed(OperatorEvent):
    """A subscription failed after acceptance (overflow, rejected request, ticket gave up)."""

    kind: ClassVar[str] = "subscription_failed"
    level: ClassVar[int] = logging.ERROR
    logger: ClassVar[str] = "engine.subscriber"
    subscription_id: str
    cause: str = attrs.field(converter=_text)

    def summary(self) -> str:
        return f"subscription {self.subscription_id} failed: {self.cause}"

    def throttle_key(self) -> str | None:
        return f"failed:{shape_of(self.cause)}"


#: The subscriber events an operator sees too.
SubscriberNotice: TypeAlias = Interrupted | Gap | SnapshotMissing | Backfilled | Ended
SUBSCRIBER_NOTICES: Final = (Interrupted, Gap, SnapshotMissing, Backfilled, Ended)


@attrs.frozen(kw_only=True)
class StreamEvent(OperatorEvent):
    """An event put on a subscriber's stream (Interrupted, Gap, SnapshotMissing, Backfilled,
    Ended), seen from outside: which subscription got it."""

    kind: ClassVar[str] = "stream"
    logger: ClassVar[str] = "engine.subscriber"
    subscription_id: str
    event: SubscriberNotice

    def summary(self) -> str:
        event = self.event
        match event:
            case Interrupted():
                what = f"interrupted on {event.ticket}: {event.cause}"
            case Gap():
                length = "open-ended" if event.duration is None else f"{event.duration:.2f} s"
                fill = f", backfilling {len(event.backfill)} code(s)" if event.backfill else ""
                what = f"gap of {length} on {event.ticket} ({len(event.codes)} code(s){fill})"
            case SnapshotMissing():
                what = f"no SNAPSHOT of {event.data_type} {event.code} in {event.waited:g} s"
            case Backfilled():
                left = "complete" if event.complete else f"{len(event.unfilled)} range(s) unfilled"
                what = f"backfilled {event.data_type} {event.code}: {event.delivered}, {left}"
            case Ended():
                what = f"ended: {event.reason}"
        return f"subscription {self.subscription_id} {what}"

    def throttle_key(self) -> str | None:
        # One outage interrupts every subscriber of a ticket: one line per ticket and kind.
        event = self.event
        ticket = getattr(event, "ticket", "")
        return f"stream:{event.type}:{ticket}"


@attrs.frozen(kw_only=True)
class EventsDropped(OperatorEvent):
    """Only to one reader: ``count`` events were dropped because it read too slowly."""

    kind: ClassVar[str] = "events_dropped"
    level: ClassVar[int] = logging.WARNING
    logged: ClassVar[bool] = False
    count: int

    def summary(self) -> str:
        return f"{self.count} event(s) dropped: this reader fell behind"


#: Every concrete operator event type.
OPERATOR_EVENT_TYPES: Final = (
    Connected,
    ConnectionLost,
    ConnectFailed,
    Replayed,
    ActorRestarting,
    ActorGaveUp,
    TicketFailed,
    ErrorFrame,
    RateLimited,
    CatalogRefreshed,
    CatalogRefreshFailed,
    FrameDrift,
    SlowSubscriber,
    SubscriptionFailed,
    StreamEvent,
    EventsDropped,
)
