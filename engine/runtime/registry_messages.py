"""The messages of the registry actor: what the facade, the tickets and the housekeeping task
tell it (casts) or ask it (calls, carrying a :class:`~actors.Reply`).

A leaf module: the registry actor (:mod:`engine.runtime.registry_actor`) handles these, and the
tickets (:mod:`engine.runtime.ticket`) send them, without either importing the other.
"""

from __future__ import annotations

from typing import Literal

import attrs

from actors import ActorRef, Reply
from engine.core.keys import StreamKey
from engine.core.registry import OptimizeReport, Subscription, TicketChange

__all__ = (
    "AuthFailed",
    "BufferFailed",
    "Cleanup",
    "CleanupOutcome",
    "ConsumerClosed",
    "ConsumerOpened",
    "MarkActive",
    "Modify",
    "NoteFrames",
    "Optimize",
    "OptimizeOutcome",
    "ProbePassed",
    "RegistryCommand",
    "Relaunch",
    "RequestRejected",
    "SnapshotOverdue",
    "SnapshotSeen",
    "Subscribe",
    "TicketConnected",
    "TicketGaveUp",
    "TicketLost",
    "TicketSent",
    "USER_CALLS",
    "Unsubscribe",
    "WantsConnection",
)


@attrs.frozen
class Subscribe:
    """Register a realtime (or private) subscription; answers its record."""

    data_types: tuple[str, ...]
    codes: tuple[str, ...]
    units: int | None
    level: float | None
    reply: Reply[Subscription]
    #: Backfill its trade streams after gaps (None: ``EngineConfig.backfill``).
    backfill: bool | None = None


@attrs.frozen
class Modify:
    """Replace a subscription's codes; answers its new record."""

    subscription_id: str
    codes: tuple[str, ...]
    reply: Reply[Subscription]


@attrs.frozen
class Unsubscribe:
    """End a subscription (``soft``: re-send or park; ``hard``: close and reopen)."""

    subscription_id: str
    mode: Literal["soft", "hard"]
    reply: Reply[Subscription]


@attrs.frozen
class Optimize:
    """Repack the pools onto the fewest tickets and close tickets carrying nothing; answers
    the reports and the tickets being closed."""

    reply: Reply[tuple[tuple[OptimizeReport, ...], tuple[str, ...]]]


@attrs.frozen
class CleanupOutcome:
    """What ``cleanup_inactive`` released."""

    #: Subscriptions unsubscribed for inactivity (consumer gone, or silent too long).
    subscriptions: tuple[str, ...]
    #: Connected tickets carrying nothing (parked or idle) that were closed.
    tickets: tuple[str, ...]


@attrs.frozen
class Cleanup:
    """Release inactive subscriptions and close tickets that carry nothing; ``reading`` are the
    subscriptions whose stream a task reads (never released)."""

    inactive_after: float
    reading: frozenset[str]
    reply: Reply[CleanupOutcome]


@attrs.frozen
class TicketConnected:
    """A ticket's connection ``generation`` is up; answers the replay to send first."""

    ticket: str
    generation: int
    ref: ActorRef[TicketChange]
    reply: Reply[list[TicketChange]]


@attrs.frozen
class TicketSent:
    """A ticket sent exactly ``keys`` (``()``: the parking request); ``through`` is the highest
    ``TicketChange.serial`` the send merged (``None``: unknown, match by set)."""

    ticket: str
    generation: int
    keys: tuple[StreamKey, ...]
    snapshot_keys: tuple[StreamKey, ...]
    at: float
    through: int | None = None


@attrs.frozen
class TicketLost:
    """A ticket's connection ended (``cause`` None: closed on purpose)."""

    ticket: str
    generation: int
    cause: str | None
    at: float


@attrs.frozen
class AuthFailed:
    """Upbit refused a private ticket's API keys: its subscriptions fail with ``cause``
    (reconnecting would only be refused again)."""

    ticket: str
    cause: str


@attrs.frozen
class TicketGaveUp:
    """A ticket exceeded its restart intensity and stopped reconnecting: its subscriptions fail
    with ``cause`` (which says how often it failed, the last failure and what to do)."""

    ticket: str
    cause: str


@attrs.frozen
class RequestRejected:
    """Upbit answered a request of connection ``generation`` with an error frame.

    ``keys`` are the streams that request (and any other sent just before it) added and Upbit
    had not accepted yet; ``subscriptions`` names the subscriptions it added when the ticket
    knows them (a probe). ``cause`` is the error to fail the culprit with.
    """

    ticket: str
    generation: int
    keys: frozenset[StreamKey]
    subscriptions: tuple[str, ...] | None
    cause: str


@attrs.frozen
class ProbePassed:
    """Upbit accepted the probe that added ``subscriptions``: they are not suspects any more."""

    ticket: str
    generation: int
    subscriptions: tuple[str, ...]


@attrs.frozen
class WantsConnection:
    """Answers whether ``ticket`` should carry streams (asked after a rejection: the registry
    has handled the ``RequestRejected`` cast before, so the answer reflects it)."""

    ticket: str
    reply: Reply[bool]


@attrs.frozen
class Relaunch:
    """Start every ticket that should carry streams and is not running (the tickets supervisor
    was restarted and lost its children)."""


@attrs.frozen
class SnapshotSeen:
    """The router delivered a subscriber's awaited SNAPSHOT."""

    ticket: str
    key: StreamKey
    subscription_id: str
    at: float


@attrs.frozen
class SnapshotOverdue:
    """A subscriber's SNAPSHOT did not come within the snapshot timeout: the router ended its
    wait (REALTIME flows to it now) and told it with a ``SnapshotMissing`` event."""

    ticket: str
    key: StreamKey
    subscription_id: str
    at: float


@attrs.frozen
class BufferFailed:
    """A subscriber's buffer overflowed under the lossless policy."""

    subscription_id: str
    cause: str


@attrs.frozen
class ConsumerOpened:
    """A stream of the subscription was opened: it counts as consumed again."""

    subscription_id: str


@attrs.frozen
class ConsumerClosed:
    """The subscriber closed its stream: the subscription counts as inactive from now on."""

    subscription_id: str


@attrs.frozen
class MarkActive:
    """Housekeeping: these subscriptions received messages (at ``at``)."""

    subscription_ids: tuple[str, ...]
    at: float


@attrs.frozen
class NoteFrames:
    """Housekeeping: the last frame time per ticket."""

    times: tuple[tuple[str, float], ...]


RegistryCommand = (
    Subscribe
    | Modify
    | Unsubscribe
    | Optimize
    | Cleanup
    | TicketConnected
    | TicketSent
    | TicketLost
    | AuthFailed
    | TicketGaveUp
    | RequestRejected
    | ProbePassed
    | WantsConnection
    | Relaunch
    | SnapshotSeen
    | SnapshotOverdue
    | BufferFailed
    | ConsumerOpened
    | ConsumerClosed
    | MarkActive
    | NoteFrames
)

#: Commands a facade call waits for: skipped when their caller gave up before their turn.
USER_CALLS = (Subscribe, Modify, Unsubscribe, Optimize, Cleanup)


@attrs.frozen
class OptimizeOutcome:
    """What ``optimize_subscriptions`` did, with the realtime pool's efficiency around it."""

    reports: tuple[OptimizeReport, ...]
    #: Connected tickets that carried nothing (parked or idle) and were closed.
    closed: tuple[str, ...]
    #: Planned ticket efficiency of the realtime pool before and after.
    efficiency_before: float
    efficiency_after: float

    @property
    def moved(self) -> int:
        """Streams that changed ticket."""
        return sum(report.moved for report in self.reports)
