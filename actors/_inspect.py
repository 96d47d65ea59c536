"""Looking into a supervision tree: finding a child by a path of names, and frozen snapshots.

Both read the supervisors' own bookkeeping synchronously, without a checkpoint, so what they see
is consistent: no supervisor acts meanwhile. They reach a supervisor only through
:class:`Inspected`, so this module need not import the supervisor, which imports it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import attrs
import trio

from actors._child import RUNNING_STATES, Child
from actors._restarts import Restarts
from actors._util import format_path
from actors.errors import ChildNotRunningError, UnknownChildError
from actors.mailbox import MailboxStatistics
from actors.spec import ChildSpec
from actors.tree import NodeKind, NodeSnapshot, NodeState

__all__ = ("Inspected", "key_names", "lookup", "snapshot")


class Inspected(Protocol):
    """What lookups and snapshots need of a supervisor."""

    _children: dict[str, Child]
    _restarts: Restarts
    _generation: int

    @property
    def name(self) -> str: ...

    @property
    def path(self) -> tuple[str, ...]: ...

    @property
    def state(self) -> NodeState: ...


def key_names(key: ChildSpec[Any] | str | Sequence[str]) -> tuple[str, ...]:
    """The names a child key stands for: a name, a spec's name, or a path of names."""
    if isinstance(key, ChildSpec):
        return (key.name,)
    if isinstance(key, str):
        return (key,)
    names = tuple(key)
    if not names or not all(isinstance(name, str) for name in names):
        raise ValueError(f"a child key is a name, a spec or a sequence of names, got {key!r}")
    return names


def lookup(root: Inspected, names: tuple[str, ...]) -> Child:
    """The child reached from ``root`` by following ``names`` through running nested supervisors.

    Raises:
        UnknownChildError: no such child.
        ChildNotRunningError: a supervisor on the way is not running.
    """
    supervisor = root
    for depth, name in enumerate(names):
        child = supervisor._children.get(name)
        if child is None:
            raise UnknownChildError(f"{format_path(supervisor.path)} has no child named {name!r}")
        if depth == len(names) - 1:
            return child
        incarnation = child.incarnation
        nested: Inspected | None = None if incarnation is None else incarnation.context._nested
        if nested is None or child.state is not NodeState.RUNNING:
            raise ChildNotRunningError(child.path, child.generation, "is not a running supervisor")
        supervisor = nested
    raise ValueError("a child key needs at least one name")


def snapshot(supervisor: Inspected) -> NodeSnapshot:
    """A frozen snapshot of ``supervisor`` and everything below it."""
    now = trio.current_time()
    restarts = supervisor._restarts
    return NodeSnapshot(
        name=supervisor.name,
        path=supervisor.path,
        kind=NodeKind.SUPERVISOR,
        state=supervisor.state,
        generation=supervisor._generation,
        restarts_in_window=restarts.window.count(now),
        last_exit=None,
        mailbox=None,
        strategy=restarts.strategy,
        children=tuple(
            _child_snapshot(restarts, child, now) for child in supervisor._children.values()
        ),
    )


def _child_snapshot(restarts: Restarts, child: Child, now: float) -> NodeSnapshot:
    incarnation = child.incarnation
    nested: Any = None if incarnation is None else incarnation.context._nested
    if nested is not None and child.state in RUNNING_STATES:
        subtree: NodeSnapshot = nested.tree()
        return attrs.evolve(
            subtree,
            state=child.state,
            last_exit=child.last_exit,
            restart=child.spec.restart,
        )
    mailbox: MailboxStatistics | None = None
    if incarnation is not None and child.spec.kind is NodeKind.WORKER:
        mailbox = incarnation.context.mailbox.statistics()
    in_window = sum(1 for _, record in restarts.window.entries(now) if record.name == child.name)
    return NodeSnapshot(
        name=child.name,
        path=child.path,
        kind=child.spec.kind,
        state=child.state,
        generation=child.generation,
        restarts_in_window=in_window,
        last_exit=child.last_exit,
        mailbox=mailbox,
        restart=child.spec.restart,
    )
