"""What each actor sees of the engine's shared state (:class:`~engine.runtime.state.EngineCore`),
declared as Protocols the way routing's ``RouteSource`` is: a ticket, its pump and the registry
actor each get exactly the members they use. ``EngineCore`` satisfies all of them (mypy checks it
where the tree passes it in); only the facade and the tree, which create and own it, use it whole.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Protocol

import trio

from actors import ActorRef, Supervisor
from engine.config import EngineConfig
from engine.core.ratelimit import RateLimitBackoff, SlidingWindowLimiter
from engine.observability.journal import Journal
from engine.observability.records import MetricsRecorder
from engine.rest.catalog_source import CatalogSource
from engine.routing.publish import RouteSource
from engine.routing.router import Router, SubscriberBuffer
from engine.runtime.registry_messages import RegistryCommand
from engine.runtime.ticket_runtime import TicketRuntime
from engine.transport.base import Transport

__all__ = ("PumpHost", "RegistryHost", "TicketHost")


class PumpHost(Protocol):
    """What the pump uses of the engine's shared state."""

    @property
    def config(self) -> EngineConfig: ...
    @property
    def router(self) -> Router: ...
    @property
    def metrics(self) -> MetricsRecorder: ...
    def stall_probed(self, ticket: str) -> None: ...
    def runtime(self, ticket: str) -> TicketRuntime: ...


class TicketHost(PumpHost, Protocol):
    """What a realtime/private ticket uses of the engine's shared state, and nothing else."""

    @property
    def transport(self) -> Transport: ...
    @property
    def connect_limiter(self) -> SlidingWindowLimiter: ...
    @property
    def rate_backoff(self) -> RateLimitBackoff: ...
    @property
    def catalog(self) -> CatalogSource: ...
    @property
    def instance(self) -> str:
        """This engine's id, part of every request's ticket field."""

    @property
    def registry_ref(self) -> ActorRef[RegistryCommand] | None: ...

    def next_generation(self) -> int:
        """A connection generation above every one handed out before (engine-wide)."""

    def url_for(self, ticket: str) -> str: ...
    def headers_for(self, ticket: str) -> list[tuple[str, str]]: ...
    def carries_streams(self, ticket: str) -> bool:
        """Whether the registry wants streams on ``ticket`` now."""

    async def wait_turn(self, ticket: str) -> None:
        """Return when ``ticket`` may connect again, in ticket order."""


class RegistryHost(RouteSource, Protocol):
    """What the registry actor uses of the engine's shared state: it alone writes the registry,
    the routes and the subscribers' buffers; it reads the tickets' runtimes."""

    #: Set by the registry actor once it serves, for the tickets and the router to cast to.
    registry_ref: ActorRef[RegistryCommand] | None

    @property
    def config(self) -> EngineConfig: ...
    @property
    def metrics(self) -> MetricsRecorder: ...
    @property
    def journal(self) -> Journal: ...
    @property
    def rng(self) -> random.Random: ...
    @property
    def buffers(self) -> dict[str, SubscriberBuffer]: ...
    @property
    def tickets(self) -> Mapping[str, TicketRuntime]: ...
    @property
    def first_message_due(self) -> dict[str, float]:
        """Subscription id -> when it was requested, until its first message."""

    @property
    def closing(self) -> dict[str, trio.Event]:
        """Tickets being closed by cleanup/optimize -> set once their connection is gone."""

    def note_change(self) -> None:
        """Wake whoever waits for the registry's state to change."""

    def tickets_supervisor(self) -> Supervisor:
        """The running tickets supervisor."""
