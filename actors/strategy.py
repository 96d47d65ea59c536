"""Which children a supervisor restarts, and why: the decisions, with no I/O.

Theory of operation
-------------------
When a child exits without being asked to, two questions decide what happens:

1. *Is it restarted at all?* That depends on the child's :class:`Restart` type and on how it
   ended (:class:`ExitKind`), following OTP: ``permanent`` always, ``transient`` only after an
   abnormal exit (:attr:`ExitKind.ERROR` or :attr:`ExitKind.KILLED`), ``temporary`` never.
2. *Which siblings go with it?* That is the supervisor's :class:`Strategy`: the restart group is
   the failed child alone (``one_for_one``), every child (``one_for_all``), or the failed child and
   every child started after it (``rest_for_one``). The other members of the group are stopped in
   reverse start order and the whole group is started again in start order; ``temporary`` members
   are removed instead of restarted.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence

import attrs

__all__ = ("ExitKind", "ExitReason", "Restart", "Strategy", "restart_group", "should_restart")


class Strategy(enum.Enum):
    """What else is restarted when one child has to be."""

    ONE_FOR_ONE = "one_for_one"
    """Only the child that exited."""

    ONE_FOR_ALL = "one_for_all"
    """All children: the others are stopped (reverse order), then all start again (in order)."""

    REST_FOR_ONE = "rest_for_one"
    """The child that exited and every child started after it (they depend on it)."""


class Restart(enum.Enum):
    """When a child that exited on its own is restarted."""

    PERMANENT = "permanent"
    """Always, however it ended."""

    TRANSIENT = "transient"
    """Only after an abnormal exit (an exception); returning or raising Shutdown ends it."""

    TEMPORARY = "temporary"
    """Never; it is removed from the supervisor when it ends, even when a sibling's failure
    stops it."""


class ExitKind(enum.Enum):
    """How an incarnation ended."""

    NORMAL = "normal"
    """It returned without being asked to stop."""

    SHUTDOWN = "shutdown"
    """It returned (or raised :class:`~actors.Shutdown`) after a stop request, or raised
    :class:`~actors.Shutdown` on its own."""

    KILLED = "killed"
    """Its supervisor cancelled it because it outlived its shutdown grace period."""

    ERROR = "error"
    """It raised an exception (or failed to start)."""


@attrs.frozen
class ExitReason:
    """Why an incarnation ended, as recorded in events and tree snapshots."""

    kind: ExitKind
    error: BaseException | None = attrs.field(default=None, eq=False)
    """The exception, for :attr:`ExitKind.ERROR` (and for a :class:`~actors.Shutdown`)."""

    detail: str = ""
    """A short human-readable explanation (e.g. which grace period expired)."""

    @property
    def abnormal(self) -> bool:
        """True when a ``transient`` child would be restarted after this exit."""
        return self.kind in (ExitKind.ERROR, ExitKind.KILLED)

    def __str__(self) -> str:
        text = self.kind.value
        if self.error is not None:
            text += f": {self.error!r}"
        if self.detail:
            text += f" ({self.detail})"
        return text


def should_restart(restart: Restart, reason: ExitReason) -> bool:
    """Whether a child of type ``restart`` that exited on its own for ``reason`` is restarted."""
    if restart is Restart.PERMANENT:
        return True
    if restart is Restart.TRANSIENT:
        return reason.abnormal
    return False


def restart_group(strategy: Strategy, order: Sequence[str], failed: str) -> tuple[str, ...]:
    """The names restarted with ``failed`` under ``strategy``, in start order.

    ``order`` is the supervisor's current children in start order and must contain ``failed``.
    """
    if failed not in order:
        raise ValueError(f"{failed!r} is not one of the children {list(order)!r}")
    if strategy is Strategy.ONE_FOR_ONE:
        return (failed,)
    if strategy is Strategy.ONE_FOR_ALL:
        return tuple(order)
    return tuple(order[order.index(failed) :])
