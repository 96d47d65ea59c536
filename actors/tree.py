"""Frozen snapshots of a supervision tree, for debug views and tests.

:meth:`~actors.Supervisor.tree` builds a :class:`NodeSnapshot` from the supervisors' own
bookkeeping (OTP's ``which_children``/``count_children``), synchronously and without a
checkpoint, so the snapshot is consistent: no supervisor acts while it is taken.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator

import attrs

from actors._util import format_path
from actors.mailbox import MailboxStatistics
from actors.strategy import ExitReason, Restart, Strategy

__all__ = ("NodeKind", "NodeSnapshot", "NodeState")


class NodeKind(enum.Enum):
    """Whether a node runs user code or supervises other nodes."""

    WORKER = "worker"
    SUPERVISOR = "supervisor"


class NodeState(enum.Enum):
    """Where a node is in its life cycle."""

    STARTING = "starting"
    """Started, not yet ready."""

    RUNNING = "running"
    """Ready and serving."""

    STOPPING = "stopping"
    """Asked to stop; inside its shutdown grace period."""

    RESTARTING = "restarting"
    """Ended; waiting for its backoff to elapse (or for its turn in an ordered restart)."""

    STOPPED = "stopped"
    """Ended and not restarted (a ``transient`` child after a normal exit, or a stopped tree)."""

    GAVE_UP = "gave_up"
    """A supervisor that exceeded its restart intensity."""


@attrs.frozen
class NodeSnapshot:
    """One node of the tree and, for a supervisor, its children in start order."""

    name: str
    path: tuple[str, ...]
    kind: NodeKind
    state: NodeState
    generation: int | None
    """The current (or last) incarnation; ``None`` before the first start attempt."""

    restarts_in_window: int
    """For a child: its restarts inside its supervisor's intensity window. For a supervisor:
    all restarts inside its own window."""

    last_exit: ExitReason | None
    """Why the previous incarnation ended, if one did."""

    mailbox: MailboxStatistics | None
    """The current incarnation's mailbox, if it has one."""

    restart: Restart | None = None
    """The child's restart type (``None`` for the root)."""

    strategy: Strategy | None = None
    """For a running supervisor, its strategy."""

    children: tuple[NodeSnapshot, ...] = ()

    def walk(self) -> Iterator[NodeSnapshot]:
        """This node, then every node below it, depth first in start order."""
        yield self
        for child in self.children:
            yield from child.walk()

    def find(self, *names: str) -> NodeSnapshot:
        """The descendant reached by following ``names`` (``find("tickets", "realtime-0")``).

        Raises:
            LookupError: no such node.
        """
        node = self
        for name in names:
            for child in node.children:
                if child.name == name:
                    node = child
                    break
            else:
                raise LookupError(f"{format_path(node.path)} has no child named {name!r}")
        return node

    def render(self) -> str:
        """A readable multi-line picture of the tree, one node per line."""
        lines: list[str] = []
        self._render(lines, "", "")
        return "\n".join(lines)

    def _render(self, lines: list[str], first: str, rest: str) -> None:
        parts = [self.name, self.kind.value]
        if self.strategy is not None:
            parts.append(self.strategy.value)
        if self.restart is not None:
            parts.append(self.restart.value)
        parts.append(self.state.value)
        if self.generation is not None:
            parts.append(f"gen={self.generation}")
        parts.append(f"restarts={self.restarts_in_window}")
        if self.mailbox is not None:
            parts.append(f"mailbox={self.mailbox.buffered}/{self.mailbox.capacity}")
        if self.last_exit is not None:
            parts.append(f"last_exit={self.last_exit}")
        lines.append(first + " ".join(parts))
        for index, child in enumerate(self.children):
            last = index == len(self.children) - 1
            child._render(
                lines, rest + ("`- " if last else "|- "), rest + ("   " if last else "|  ")
            )
