"""The runtime's bookkeeping for one child and one incarnation, the task that runs it, and how a
supervisor starts and stops one incarnation."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import attrs
import trio

from actors._tree_shared import TreeShared
from actors._util import format_path
from actors.actor import ActorContext, Shutdown
from actors.errors import NeverReadyError, StartTimeoutError
from actors.events import Exited, Started
from actors.intensity import Backoff
from actors.mailbox import Mailbox
from actors.strategy import ExitKind, ExitReason
from actors.tree import NodeState

if TYPE_CHECKING:
    from actors.spec import ChildSpec

__all__ = (
    "RUNNING_STATES",
    "Child",
    "Incarnation",
    "TreeShared",
    "run_incarnation",
    "start_incarnation",
    "stop_child",
)

RUNNING_STATES = (NodeState.STARTING, NodeState.RUNNING, NodeState.STOPPING)
"""The states of a child whose incarnation may still be running (and must be stopped)."""


@attrs.define(eq=False)
class Incarnation:
    """One start attempt of a child, from spawn to exit."""

    spec: ChildSpec[Any]
    context: ActorContext[Any]
    restart: bool
    on_ready: Callable[[Incarnation], None]
    on_exit: Callable[[Incarnation], None]
    scope: trio.CancelScope = attrs.field(factory=trio.CancelScope)
    done: trio.Event = attrs.field(factory=trio.Event)
    ready: bool = False
    ready_at: float = 0.0
    expected: bool = False
    """Set when the supervisor stops it: its exit is then not a failure to act on."""
    reason: ExitReason | None = None

    @property
    def path(self) -> tuple[str, ...]:
        return self.context.path

    @property
    def generation(self) -> int:
        return self.context.generation


@attrs.define(eq=False)
class Child:
    """A supervisor's record of one child, across its incarnations."""

    spec: ChildSpec[Any]
    path: tuple[str, ...]
    backoff: Backoff
    state: NodeState = NodeState.STARTING
    incarnation: Incarnation | None = None
    last_exit: ExitReason | None = None

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def generation(self) -> int | None:
        return None if self.incarnation is None else self.incarnation.generation


class _ReadyStatus(trio.TaskStatus[None]):
    """Forwards ``started()`` to Trio and records the moment the incarnation became ready."""

    def __init__(self, inner: trio.TaskStatus[None], incarnation: Incarnation) -> None:
        self._inner = inner
        self._incarnation = incarnation

    def started(self, value: object = None) -> None:
        incarnation = self._incarnation
        if incarnation.ready:
            raise RuntimeError("task_status.started() called twice; call it once, when ready")
        if value is not None:
            raise TypeError("an actor reports ready with task_status.started(), without a value")
        incarnation.ready = True
        incarnation.ready_at = trio.current_time()
        incarnation.context._tree.bus.publish(
            Started(
                incarnation.path, incarnation.generation, incarnation.ready_at, incarnation.restart
            )
        )
        incarnation.on_ready(incarnation)
        self._inner.started()


def _classify(error: Exception, incarnation: Incarnation) -> ExitReason:
    if _only(error, Shutdown):
        return ExitReason(ExitKind.SHUTDOWN, error)
    if incarnation.context.stop_requested and _only(error, trio.EndOfChannel):
        # receive() on a mailbox whose stop was requested: the actor is simply done.
        return ExitReason(ExitKind.SHUTDOWN, detail="mailbox closed by the stop request")
    return ExitReason(ExitKind.ERROR, error)


def _only(error: Exception, kind: type[Exception]) -> bool:
    if isinstance(error, ExceptionGroup):
        _, rest = error.split(kind)
        return rest is None
    return isinstance(error, kind)


async def run_incarnation(
    incarnation: Incarnation, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
) -> None:
    """Run one incarnation to its end and report how it ended; never raises an ``Exception``.

    Before the actor is ready, its exceptions propagate to the supervisor's ``nursery.start``
    (a failed start). After that they are captured into an :class:`ExitReason`. ``Cancelled``
    from outside the incarnation's own scope, ``KeyboardInterrupt`` and other ``BaseException``
    always propagate: the runtime never swallows them.
    """
    status = _ReadyStatus(task_status, incarnation)
    reason: ExitReason | None = None
    try:
        try:
            with incarnation.scope:
                await incarnation.spec.start(incarnation.context, task_status=status)
        except Exception as error:
            if not incarnation.ready:
                raise
            reason = _classify(error, incarnation)
        except BaseException as error:
            # Cancelled from outside the supervisor, KeyboardInterrupt, ...: record, never swallow.
            if incarnation.ready:
                reason = ExitReason(
                    ExitKind.KILLED, detail=f"{type(error).__name__} from outside its supervisor"
                )
            raise
        else:
            if not incarnation.ready:
                raise NeverReadyError(
                    f"{incarnation.spec.name}'s start callable returned without calling "
                    "task_status.started(); call it once the actor is ready to serve"
                )
            if incarnation.scope.cancel_called:
                reason = ExitReason(
                    ExitKind.KILLED,
                    detail=f"cancelled after its {incarnation.spec.shutdown} s shutdown grace",
                )
            elif incarnation.context.stop_requested:
                reason = ExitReason(ExitKind.SHUTDOWN)
            else:
                reason = ExitReason(ExitKind.NORMAL)
    finally:
        incarnation.reason = reason
        incarnation.context.mailbox._close()
        if incarnation.ready:
            assert reason is not None
            incarnation.context._tree.bus.publish(
                Exited(incarnation.path, incarnation.generation, trio.current_time(), reason, True)
            )
        incarnation.done.set()
        if incarnation.ready:
            incarnation.on_exit(incarnation)


async def start_incarnation(
    child: Child,
    nursery: trio.Nursery,
    tree: TreeShared,
    *,
    restart: bool,
    on_ready: Callable[[Incarnation], None],
    on_exit: Callable[[Incarnation], None],
) -> BaseException | None:
    """Start one incarnation of ``child`` in ``nursery``; return ``None`` once it is ready, or why
    it failed (its spec's ``start_timeout`` included)."""
    spec = child.spec
    generation = tree.next_generation(child.path)
    mailbox: Mailbox[Any] = Mailbox._create(spec.mailbox_size, child.path, generation)
    context: ActorContext[Any] = ActorContext._create(mailbox, tree)
    incarnation = Incarnation(spec, context, restart, on_ready, on_exit)
    child.incarnation = incarnation
    child.state = NodeState.STARTING
    error: BaseException | None = None
    with trio.move_on_after(spec.start_timeout):
        try:
            await nursery.start(run_incarnation, incarnation, name=format_path(child.path))
        except Exception as exc:
            error = exc
    if incarnation.ready:
        return None  # ready, even if the timeout fired just as it reported so
    if error is None:
        error = StartTimeoutError(
            f"{format_path(child.path)} did not call task_status.started() within "
            f"{spec.start_timeout} s; raise the spec's start_timeout or fix the start-up"
        )
    reason = ExitReason(ExitKind.ERROR, error, detail="failed to start")
    incarnation.reason = reason
    child.last_exit = reason
    tree.bus.publish(Exited(child.path, generation, trio.current_time(), reason, False))
    return error


async def stop_child(child: Child) -> None:
    """Stop request, then ``shutdown`` seconds of grace, then cancellation; wait for the end."""
    incarnation = child.incarnation
    if incarnation is None:
        return
    incarnation.expected = True
    if not incarnation.done.is_set():
        child.state = NodeState.STOPPING
        incarnation.context._request_stop()
        grace = child.spec.shutdown
        if grace > 0:
            with trio.move_on_after(grace):
                await incarnation.done.wait()
        if not incarnation.done.is_set():
            incarnation.scope.cancel(
                reason=f"{format_path(child.path)} outlived its {grace} s shutdown grace"
            )
            await incarnation.done.wait()
    if incarnation.reason is not None:
        child.last_exit = incarnation.reason
    child.state = NodeState.STOPPED
