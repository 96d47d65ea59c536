"""``Engine.debug_tree()``: the supervision tree, enriched with what each ticket carries.

The actors runtime gives a frozen :class:`~actors.NodeSnapshot` of every node (state,
generation, restarts, last exit, mailbox). The engine adds, per ticket, the registry's view
(connection generation, desired and sent sets, parked or idle), the connection's state (time in
it, reconnects, last failure) and the router's counters, so one value answers "what is this
connection doing and why".
"""

from __future__ import annotations

from collections.abc import Mapping

import attrs

from actors import NodeSnapshot
from engine.core.registry import TicketStatus
from engine.observability.records import TicketMetrics
from engine.routing.router import TicketRouteStatistics

__all__ = ("EngineTree", "TicketNode")


@attrs.frozen
class TicketNode:
    """One ticket: registry status, router counters (``None`` if it never routed) and its
    connection (``None`` for tickets without one, such as snapshot tickets)."""

    status: TicketStatus
    routing: TicketRouteStatistics | None
    connection: TicketMetrics | None = None

    @property
    def state(self) -> str:
        """``streaming``, ``idle``, ``parked``, ``down`` (wanted, not connected) or ``closed``."""
        status = self.status
        if not status.connected:
            return "down" if status.desired else "closed"
        if status.parked:
            return "parked"
        return "idle" if status.idle else "streaming"

    def describe(self) -> str:
        """One line: connection, what it carries, what the router did with its frames."""
        status = self.status
        state = self.state
        codes = sorted({key.code for key in status.desired if key.code})
        text = f"{status.ticket} [{state}]"
        connection = self.connection
        if connection is not None:
            text += (
                f" state={connection.state.value} for {connection.time_in_state:.1f}s"
                f" reconnects={connection.reconnects}"
            )
        text += f" generation={status.generation} streams={len(status.desired)} codes={len(codes)}"
        if status.suspects:
            text += f" suspects={','.join(status.suspects)}"
        if self.routing is not None:
            routed = sum(self.routing.routed.values())
            text += f" routed={routed} unrouted={self.routing.unrouted} stale={self.routing.stale}"
            # Only what went wrong: a quiet line for a healthy ticket.
            for label, count in (
                ("held_back", self.routing.held_back),
                ("snapshots_missing", self.routing.snapshots_missing),
                ("books_trimmed", self.routing.books_trimmed),
                ("books_short", self.routing.books_short),
            ):
                if count:
                    text += f" {label}={count}"
        if connection is not None and connection.frames_skipped:
            text += f" frames_skipped={connection.frames_skipped}"
        if connection is not None and connection.last_failure is not None:
            text += f" last_failure={connection.last_failure!r}"
        if status.failure is not None:
            text += f" failed={status.failure!r}"
        return text


@attrs.frozen
class EngineTree:
    """A frozen snapshot of the engine's supervision tree and its tickets."""

    #: The actors runtime's tree, rooted at the engine supervisor.
    actors: NodeSnapshot
    #: Ticket id -> its registry status and routing counters.
    tickets: Mapping[str, TicketNode]

    def render(self) -> str:
        """The tree as text, followed by one line per ticket."""
        lines = [self.actors.render()]
        lines.extend(node.describe() for node in self.tickets.values())
        return "\n".join(lines)
