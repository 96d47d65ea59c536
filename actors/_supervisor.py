"""The :class:`Supervisor` itself: its public API, its start-up and shutdown, and its loop.

How it works is told in :mod:`actors.supervisor`, the public module that exports it. Restart
handling lives in :mod:`actors._restarts`, lookups and snapshots in :mod:`actors._inspect`,
starting and stopping one incarnation in :mod:`actors._child`, and the ways to run a supervisor
(``open_supervisor``, ``supervisor_spec``) in :mod:`actors._launch`.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterable, Sequence
from contextlib import suppress
from typing import Any, Never, TypeAlias, TypeVar, final, overload

import attrs
import trio

from actors._child import RUNNING_STATES, Child, Incarnation, start_incarnation, stop_child
from actors._inspect import key_names, lookup, snapshot
from actors._restarts import RestartHook, Restarts
from actors._tree_shared import TreeShared
from actors._util import format_path, single_leaf
from actors.actor import ActorContext
from actors.errors import (
    ActorDeadError,
    ChildNotRunningError,
    ChildStartError,
    DuplicateChildError,
    SupervisorGaveUpError,
    UnknownChildError,
)
from actors.events import EventBus, EventSubscription, GaveUp
from actors.intensity import Backoff, BackoffPolicy, RestartIntensity
from actors.mailbox import ActorRef, Mailbox, Reply
from actors.named import NamedRef
from actors.spec import ChildSpec
from actors.strategy import Strategy
from actors.tree import NodeKind, NodeSnapshot, NodeState

__all__ = ("Supervisor", "check_unique")

M = TypeVar("M")
R = TypeVar("R")


# -- control messages (the loop's mailbox) ----------------------------------------------------


@attrs.frozen
class _ChildExited:
    incarnation: Incarnation


@attrs.frozen
class _StartChild:
    spec: ChildSpec[Any]
    reply: Reply[ActorRef[Any]]


@attrs.frozen
class _TerminateChild:
    name: str
    reply: Reply[None]


@attrs.frozen
class _Stop:
    pass


_Control: TypeAlias = _ChildExited | _StartChild | _TerminateChild | _Stop


@attrs.frozen
class _Finish:
    gave_up: SupervisorGaveUpError | None


# -- the supervisor ------------------------------------------------------------------------------


@final
class Supervisor:
    """Supervises children: restarts them by strategy, within an intensity, with backoff.

    Run it with ``await nursery.start(supervisor.run)`` or ``async with open_supervisor(...)``;
    nest it in another supervisor with :func:`supervisor_spec`. A supervisor runs once.

    Args:
        children: the static children, started in this order at start-up.
        name: the supervisor's name, first element of every path in its tree.
        strategy: which siblings restart with a failed child.
        intensity: at most that many restarts in that many seconds, else give up.
        backoff: delay policy between a child's consecutive restarts (default: none, as OTP).
        rng: source of backoff jitter; seed it for reproducible runs. Nested supervisors share
            their root's unless given their own.
        on_restart: awaited as ``on_restart(name, generation)`` after each restarted child is
            ready, before the next child of its group starts. If it raises, the child counts
            as failed to come back. It runs in the supervisor's loop: keep it short and never
            call back into this supervisor from it.
    """

    def __init__(
        self,
        children: Iterable[ChildSpec[Any]] = (),
        *,
        name: str = "supervisor",
        strategy: Strategy = Strategy.ONE_FOR_ONE,
        intensity: RestartIntensity = RestartIntensity(),  # noqa: B008 (frozen, shared safely)
        backoff: BackoffPolicy = BackoffPolicy.none(),  # noqa: B008
        rng: random.Random | None = None,
        on_restart: RestartHook | None = None,
    ) -> None:
        self._specs = tuple(children)
        check_unique(self._specs)
        if not name or "/" in name:
            raise ValueError(f"a supervisor name must be a non-empty str without '/', got {name!r}")
        self._name = name
        self._path: tuple[str, ...] = (name,)
        self._generation = 0
        self._backoff = backoff
        self._own_rng = rng
        self._rng = rng if rng is not None else random.Random()
        self._tree = TreeShared(EventBus._create(), self._rng)
        self._is_root = True
        self._children: dict[str, Child] = {}
        self._restarts = Restarts(self, strategy, intensity, on_restart)
        self._state = NodeState.STARTING
        self._ran = False
        self._finished = trio.Event()
        self._nursery: trio.Nursery | None = None
        self._control: Mailbox[_Control] | None = None
        self._control_ref: ActorRef[_Control] | None = None

    # -- public API ---------------------------------------------------------------------------

    @property
    def name(self) -> str:
        """The supervisor's name."""
        return self._name

    @property
    def path(self) -> tuple[str, ...]:
        """Names from the root supervisor down to this one."""
        return self._path

    @property
    def state(self) -> NodeState:
        """STARTING, RUNNING, STOPPING, then STOPPED or GAVE_UP."""
        return self._state

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Start the children in order, report ready, then supervise until stopped.

        Returns after a graceful stop (:meth:`request_stop`), once every child has stopped.

        Raises:
            ChildStartError: a static child failed to start (the others were stopped first).
            SupervisorGaveUpError: the restart intensity was exceeded.
        """
        if self._ran:
            raise RuntimeError(f"supervisor {format_path(self._path)} already ran; make a new one")
        self._ran = True
        self._control = Mailbox[_Control]._create(math.inf, self._path, self._generation)
        self._control_ref = ActorRef[_Control]._create(self._control)
        failure: BaseException | None = None
        unwrapped: BaseException | None = None
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                failure = await self._start_static()
                if failure is None:
                    self._state = NodeState.RUNNING
                    task_status.started()
                    finish = await self._serve()
                    failure = finish.gave_up
        except BaseExceptionGroup as group:
            # Child tasks never raise Exceptions, so this is Cancelled, KeyboardInterrupt and the
            # like (or a bug in the loop): pass a lone one on as itself, several as the group.
            unwrapped = single_leaf(group)
            if unwrapped is None:
                raise
        finally:
            self._finish()
        if unwrapped is not None:
            raise unwrapped
        if failure is not None:
            raise failure

    def request_stop(self) -> None:
        """Ask the supervisor to stop its children in reverse order and return from :meth:`run`.

        Does nothing if it is not running.
        """
        if self._control_ref is None:
            return
        with suppress(ActorDeadError):  # it has already finished
            self._control_ref.cast_nowait(_Stop())

    async def stop(self) -> None:
        """:meth:`request_stop`, then wait until the supervisor has finished."""
        self.request_stop()
        if self._ran:
            await self._finished.wait()

    async def start_child(self, spec: ChildSpec[M]) -> ActorRef[M]:
        """Add a child at the end of the start order, start it, and return once it is ready.

        Raises:
            DuplicateChildError: a child of that name exists.
            ChildStartError: it failed to start (it is not added; this does not count as a
                restart).
            ActorDeadError: the supervisor is not running any more.
        """
        ref: ActorRef[M] = await self._request(lambda reply: _StartChild(spec, reply))
        return ref

    async def terminate_child(self, name: str) -> None:
        """Stop a child (stop request, grace, cancellation) and forget it.

        Raises:
            UnknownChildError: there is no child of that name.
            ActorDeadError: the supervisor is not running any more.
        """
        await self._request(lambda reply: _TerminateChild(name, reply))

    @overload
    def ref(self, key: ChildSpec[M]) -> ActorRef[M]: ...
    @overload
    def ref(self, key: str | Sequence[str]) -> ActorRef[Any]: ...
    def ref(self, key: ChildSpec[Any] | str | Sequence[str]) -> ActorRef[Any]:
        """The :class:`~actors.ActorRef` of a child's running incarnation, found by name.

        ``key`` is a child's name, its spec (for a typed ref), or a sequence of names leading
        through nested supervisors (``("tickets", "realtime-0")``).

        Raises:
            UnknownChildError: no such child.
            ChildNotRunningError: it has no running incarnation right now.
            TypeError: the child is a nested supervisor.
        """
        child = lookup(self, key_names(key))
        if child.spec.kind is NodeKind.SUPERVISOR:
            raise TypeError(
                f"{format_path(child.path)} is a supervisor, which takes no messages; "
                "use supervisor(...) to reach it, or ref() with a path to reach its children"
            )
        incarnation = child.incarnation
        if (
            child.state is NodeState.RUNNING
            and incarnation is not None
            and incarnation.ready
            and not incarnation.done.is_set()
        ):
            ref: ActorRef[Any] = incarnation.context.ref
            return ref
        raise ChildNotRunningError(
            child.path,
            child.generation,
            f"is {child.state.value}, not running; retry later or use named_ref(..., wait=...)",
        )

    @overload
    def named_ref(self, key: ChildSpec[M], *, wait: float = 0.0) -> NamedRef[M]: ...
    @overload
    def named_ref(self, key: str | Sequence[str], *, wait: float = 0.0) -> NamedRef[Any]: ...
    def named_ref(
        self, key: ChildSpec[Any] | str | Sequence[str], *, wait: float = 0.0
    ) -> NamedRef[Any]:
        """A reference by name that always routes to the child's current incarnation.

        While the child has no running incarnation its operations wait up to ``wait`` seconds
        for the next one, then raise :class:`~actors.ChildNotRunningError` (at once with the
        default ``wait=0``). To follow a child of a nested supervisor across restarts of that
        supervisor too, take the named ref from an ancestor with a path of names.
        """
        if not wait >= 0:
            raise ValueError(f"wait must be >= 0 seconds, got {wait!r}")
        return NamedRef._create(self, key_names(key), wait)

    def supervisor(self, key: str | Sequence[str]) -> Supervisor:
        """The running nested supervisor at ``key`` (a name or a sequence of names).

        Raises:
            UnknownChildError: no such child.
            ChildNotRunningError: it is not a running supervisor.
        """
        child = lookup(self, key_names(key))
        incarnation = child.incarnation
        nested: Supervisor | None = None if incarnation is None else incarnation.context._nested
        if nested is None or child.state is not NodeState.RUNNING:
            raise ChildNotRunningError(child.path, child.generation, "is not a running supervisor")
        return nested

    def subscribe(self, *, max_buffer: int = 1024) -> EventSubscription:
        """Subscribe to the events of this supervisor's subtree.

        Publishing never waits for the subscriber: when ``max_buffer`` events are waiting, new
        ones are dropped and counted in :attr:`~actors.EventSubscription.dropped`. Subscribe
        before :meth:`run` to see the first starts.
        """
        return self._tree.bus.subscribe(self._path, max_buffer)

    def tree(self) -> NodeSnapshot:
        """A frozen snapshot of this supervisor and everything below it."""
        return snapshot(self)

    def __repr__(self) -> str:
        return (
            f"<Supervisor {format_path(self._path)} {self._restarts.strategy.value} "
            f"{self._state.value} children={list(self._children)}>"
        )

    # -- start-up and shutdown ------------------------------------------------------------------

    def _adopt(self, context: ActorContext[Never]) -> None:
        """Become a nested supervisor: share the parent's tree, live at the context's path."""
        self._tree = context._tree
        self._is_root = False
        self._path = context.path
        self._generation = context.generation
        if self._own_rng is None:
            self._rng = self._tree.rng
        context._nested = self
        context._stop_callbacks.append(self.request_stop)

    async def _start_static(self) -> ChildStartError | None:
        for spec in self._specs:
            child = self._add(spec)
            error = await self._start(child, restart=False)
            if error is not None:
                failure = ChildStartError(child.path, error)
                failure.__cause__ = error
                await self._stop_all()
                return failure
        return None

    def _finish(self) -> None:
        self._nursery = None
        if self._control is not None:
            self._control._close()
        if self._state is not NodeState.GAVE_UP:
            self._state = NodeState.STOPPED
        for child in self._children.values():
            if child.state is not NodeState.STOPPED:
                child.state = NodeState.STOPPED
        self._restarts.plans.clear()
        self._finished.set()
        if self._is_root:
            self._tree.bus.close()
        self._tree.notify_changed()

    async def _stop_all(self) -> None:
        self._state = NodeState.STOPPING
        self._restarts.plans.clear()
        for child in reversed(list(self._children.values())):
            if child.state in RUNNING_STATES:
                await stop_child(child)
            child.state = NodeState.STOPPED

    async def _give_up(self, now: float) -> SupervisorGaveUpError:
        """The restart intensity was exceeded (called by the restart handling): stop everything."""
        # The history is the window at the moment of the decision, before the children are
        # stopped (their grace periods may outlast the window).
        history = self._restarts.history(now)
        await self._stop_all()
        self._state = NodeState.GAVE_UP
        self._tree.bus.publish(GaveUp(self._path, self._generation, trio.current_time(), history))
        return SupervisorGaveUpError(self._path, self._restarts.intensity, history)

    # -- the loop -------------------------------------------------------------------------------

    async def _serve(self) -> _Finish:
        control = self._control
        assert control is not None
        while True:
            try:
                message = control.receive_nowait()
            except trio.WouldBlock:
                plan = self._restarts.due_plan()
                if plan is not None:
                    gave_up = await self._restarts.run_plan(plan)
                    if gave_up is not None:
                        return _Finish(gave_up)
                    continue
                with trio.move_on_at(self._restarts.next_due()) as waiting:
                    message = await control.receive()
                if waiting.cancelled_caught:
                    continue  # a plan fell due
            finish = await self._handle(message)
            if finish is not None:
                return finish

    async def _handle(self, message: _Control) -> _Finish | None:
        if isinstance(message, _ChildExited):
            return await self._on_child_exited(message.incarnation)
        if isinstance(message, _StartChild):
            await self._on_start_child(message.spec, message.reply)
            return None
        if isinstance(message, _TerminateChild):
            await self._on_terminate_child(message.name, message.reply)
            return None
        await self._stop_all()
        return _Finish(None)

    async def _on_child_exited(self, incarnation: Incarnation) -> _Finish | None:
        child = self._children.get(incarnation.spec.name)
        if child is None or child.incarnation is not incarnation or incarnation.expected:
            return None  # stale, or an exit the supervisor caused itself
        reason = incarnation.reason
        assert reason is not None
        child.last_exit = reason
        healthy = incarnation.context.healthy
        if healthy:
            child.backoff.after_healthy()
        else:
            child.backoff.observe_uptime(trio.current_time() - incarnation.ready_at)
        gave_up = await self._restarts.after_exit(
            child, incarnation.generation, reason, counted=not healthy
        )
        return None if gave_up is None else _Finish(gave_up)

    async def _on_start_child(self, spec: ChildSpec[Any], reply: Reply[ActorRef[Any]]) -> None:
        if reply.abandoned:
            return
        if spec.name in self._children:
            reply.fail(
                DuplicateChildError(
                    f"{format_path(self._path)} already has a child named {spec.name!r}; "
                    "terminate it first or pick another name"
                )
            )
            return
        child = self._add(spec)
        error = await self._start(child, restart=False)
        if error is not None:
            self._remove(child)
            failure = ChildStartError(child.path, error)
            failure.__cause__ = error
            reply.fail(failure)
            return
        assert child.incarnation is not None
        reply.send(child.incarnation.context.ref)

    async def _on_terminate_child(self, name: str, reply: Reply[None]) -> None:
        child = self._children.get(name)
        if child is None:
            reply.fail(UnknownChildError(f"{format_path(self._path)} has no child named {name!r}"))
            return
        self._restarts.claim([name])
        if child.state in RUNNING_STATES:
            await stop_child(child)
        self._remove(child)
        reply.send(None)

    # -- one child -----------------------------------------------------------------------------

    def _add(self, spec: ChildSpec[Any]) -> Child:
        child = Child(spec, (*self._path, spec.name), Backoff(self._backoff))
        self._children[spec.name] = child
        return child

    def _remove(self, child: Child) -> None:
        child.state = NodeState.STOPPED
        if self._children.get(child.name) is child:
            del self._children[child.name]
        self._tree.notify_changed()

    async def _start(self, child: Child, *, restart: bool) -> BaseException | None:
        """Start one incarnation; return ``None`` once it is ready, or why it failed."""
        nursery = self._nursery
        assert nursery is not None
        return await start_incarnation(
            child,
            nursery,
            self._tree,
            restart=restart,
            on_ready=self._on_ready,
            on_exit=self._on_exit,
        )

    def _on_ready(self, incarnation: Incarnation) -> None:
        child = self._children.get(incarnation.spec.name)
        if child is not None and child.incarnation is incarnation:
            child.state = NodeState.RUNNING
        self._tree.notify_changed()

    def _on_exit(self, incarnation: Incarnation) -> None:
        if self._control_ref is None:
            return
        with suppress(ActorDeadError):  # the supervisor itself has finished
            self._control_ref.cast_nowait(_ChildExited(incarnation))

    async def _request(self, make: Callable[[Reply[R]], _Control]) -> R:
        if self._control_ref is None:
            raise RuntimeError(
                f"supervisor {format_path(self._path)} is not running; start it with "
                "nursery.start(supervisor.run) or open_supervisor() first"
            )
        return await self._control_ref.call(make, timeout=math.inf)


def check_unique(specs: Sequence[ChildSpec[Any]]) -> None:
    """Raise :class:`~actors.DuplicateChildError` if two of ``specs`` share a name."""
    seen: set[str] = set()
    for spec in specs:
        if spec.name in seen:
            raise DuplicateChildError(
                f"two children are named {spec.name!r}; names are unique per supervisor"
            )
        seen.add(spec.name)
