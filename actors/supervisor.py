"""An OTP-style supervisor on Trio.

Theory of operation
-------------------
A :class:`Supervisor` is one Trio task (its *loop*) plus a nursery holding one task per running
child. Each child task runs an incarnation inside its own cancel scope and never raises an
``Exception`` into the nursery: it reports the exit to the loop through the supervisor's own
(unbounded) control mailbox. The loop is the only writer of the supervisor's state and handles
one thing at a time, as an OTP supervisor does:

* **start**: children start one by one, in order, each with ``nursery.start`` inside a
  ``move_on_after(start_timeout)``; the next starts only once the previous is ready.
* **exit of a child**: decided by :mod:`actors.strategy`. A restart is counted in the
  :class:`~actors.RestartWindow` first; if that exceeds the intensity the supervisor stops every
  child in reverse order and raises :class:`~actors.SupervisorGaveUpError`. Otherwise the other
  members of the restart group are stopped in reverse order, the backoff delay is drawn, and a
  *plan* (the group, in start order, due at now + delay) is queued.
* **plans** run when due, between messages: each member is started in order and the restart
  hook is awaited before the next. A failed start is handled exactly like a crash of that child
  at that moment (counted, strategy applied again), so the rest of the group waits for it.
* **stop**: children are stopped in reverse start order; each gets a stop request (its mailbox
  stops accepting, ``ctx.wait_stop_requested()`` returns), ``shutdown`` seconds of grace, then
  cancellation of its scope.

Queued messages are handled before due plans, so a stop request is never starved by a crash
loop (OTP's ``try_again_restart``).
"""

from __future__ import annotations

import math
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager, suppress
from typing import Any, Never, TypeAlias, TypeVar, final, overload

import attrs
import trio

from actors._child import Child, Incarnation, run_incarnation
from actors._tree_shared import TreeShared
from actors._util import format_path, single_leaf
from actors.actor import ActorContext
from actors.errors import (
    ActorDeadError,
    ChildNotRunningError,
    ChildStartError,
    DuplicateChildError,
    StartTimeoutError,
    SupervisorGaveUpError,
    UnknownChildError,
)
from actors.events import EventBus, EventSubscription, Exited, GaveUp, Restarting, RestartRecord
from actors.intensity import Backoff, BackoffPolicy, RestartIntensity, RestartWindow
from actors.mailbox import ActorRef, Mailbox, MailboxStatistics, Reply
from actors.named import NamedRef
from actors.spec import ChildSpec
from actors.strategy import (
    ExitKind,
    ExitReason,
    Restart,
    Strategy,
    restart_group,
    should_restart,
)
from actors.tree import NodeKind, NodeSnapshot, NodeState

__all__ = ("RestartHook", "Supervisor", "open_supervisor", "supervisor_spec")

M = TypeVar("M")
R = TypeVar("R")

RestartHook: TypeAlias = Callable[[str, int], Awaitable[None]]
"""``async def hook(name, generation)``: awaited after a restarted child is ready, before the next
child of its group starts."""

_RUNNING_STATES = (NodeState.STARTING, NodeState.RUNNING, NodeState.STOPPING)


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


@attrs.define(eq=False)
class _Plan:
    due: float
    names: list[str]


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
        _check_unique(self._specs)
        if not name or "/" in name:
            raise ValueError(f"a supervisor name must be a non-empty str without '/', got {name!r}")
        self._name = name
        self._path: tuple[str, ...] = (name,)
        self._generation = 0
        self._strategy = strategy
        self._intensity = intensity
        self._backoff = backoff
        self._own_rng = rng
        self._rng = rng if rng is not None else random.Random()
        self._on_restart = on_restart
        self._tree = TreeShared(EventBus._create(), self._rng)
        self._is_root = True
        self._children: dict[str, Child] = {}
        self._window: RestartWindow[RestartRecord] = RestartWindow(intensity)
        self._plans: list[_Plan] = []
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
        child = self._lookup(_names(key))
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
        return NamedRef._create(self, _names(key), wait)

    def supervisor(self, key: str | Sequence[str]) -> Supervisor:
        """The running nested supervisor at ``key`` (a name or a sequence of names).

        Raises:
            UnknownChildError: no such child.
            ChildNotRunningError: it is not a running supervisor.
        """
        child = self._lookup(_names(key))
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
        now = trio.current_time()
        return NodeSnapshot(
            name=self._name,
            path=self._path,
            kind=NodeKind.SUPERVISOR,
            state=self._state,
            generation=self._generation,
            restarts_in_window=self._window.count(now),
            last_exit=None,
            mailbox=None,
            strategy=self._strategy,
            children=tuple(self._snapshot(child, now) for child in self._children.values()),
        )

    def __repr__(self) -> str:
        return (
            f"<Supervisor {format_path(self._path)} {self._strategy.value} "
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
        self._plans.clear()
        self._finished.set()
        if self._is_root:
            self._tree.bus.close()
        self._tree.notify_changed()

    async def _stop_all(self) -> None:
        self._state = NodeState.STOPPING
        self._plans.clear()
        for child in reversed(list(self._children.values())):
            if child.state in _RUNNING_STATES:
                await self._stop_child(child)
            child.state = NodeState.STOPPED

    # -- the loop -------------------------------------------------------------------------------

    async def _serve(self) -> _Finish:
        control = self._control
        assert control is not None
        while True:
            try:
                message = control.receive_nowait()
            except trio.WouldBlock:
                plan = self._due_plan()
                if plan is not None:
                    finish = await self._run_plan(plan)
                    if finish is not None:
                        return finish
                    continue
                with trio.move_on_at(self._next_due()) as waiting:
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
        child.backoff.observe_uptime(trio.current_time() - incarnation.ready_at)
        return await self._after_exit(child, incarnation.generation, reason)

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
        self._claim([name])
        if child.state in _RUNNING_STATES:
            await self._stop_child(child)
        self._remove(child)
        reply.send(None)

    # -- restarts ------------------------------------------------------------------------------

    async def _after_exit(
        self, child: Child, generation: int, reason: ExitReason
    ) -> _Finish | None:
        """A child ended (or failed to start) without being asked to: apply the policy."""
        if not should_restart(child.spec.restart, reason):
            if child.spec.restart is Restart.TEMPORARY:
                self._remove(child)
            else:
                child.state = NodeState.STOPPED
                self._tree.notify_changed()
            return None
        now = trio.current_time()
        if not self._window.record(now, RestartRecord(now, child.name, generation, reason)):
            return _Finish(await self._give_up(now))
        group = restart_group(self._strategy, list(self._children), child.name)
        for name in reversed(group):
            other = self._children[name]
            if other is child:
                continue
            if other.state in _RUNNING_STATES:
                await self._stop_child(other)
            if other.spec.restart is Restart.TEMPORARY:
                self._remove(other)
        members = [name for name in group if name in self._children]
        self._claim(members)
        delay = child.backoff.next_delay(self._rng)
        at = trio.current_time()
        in_window = self._window.count(now)
        for name in members:
            member = self._children[name]
            member.state = NodeState.RESTARTING
            assert member.incarnation is not None  # every member has been started before
            self._tree.bus.publish(
                Restarting(
                    member.path, member.incarnation.generation, at, delay, child.name, in_window
                )
            )
        self._plans.append(_Plan(at + delay, members))
        self._tree.notify_changed()
        return None

    async def _run_plan(self, plan: _Plan) -> _Finish | None:
        self._plans.remove(plan)
        for name in plan.names:
            child = self._children.get(name)
            if child is None or child.state is not NodeState.RESTARTING or self._claimed(name):
                continue  # terminated meanwhile, or taken over by a newer plan
            error = await self._start(child, restart=True)
            if error is None and self._on_restart is not None:
                error = await self._run_hook(child)
            if error is not None:
                assert child.incarnation is not None
                assert child.last_exit is not None
                finish = await self._after_exit(
                    child, child.incarnation.generation, child.last_exit
                )
                if finish is not None:
                    return finish
        return None

    async def _run_hook(self, child: Child) -> BaseException | None:
        incarnation = child.incarnation
        assert incarnation is not None
        assert self._on_restart is not None
        try:
            await self._on_restart(child.name, incarnation.generation)
        except Exception as error:
            await self._stop_child(child)
            child.last_exit = ExitReason(ExitKind.ERROR, error, detail="restart hook failed")
            return error
        return None

    async def _give_up(self, now: float) -> SupervisorGaveUpError:
        # The history is the window at the moment of the decision, before the children are
        # stopped (their grace periods may outlast the window).
        history = tuple(record for _, record in self._window.entries(now))
        await self._stop_all()
        self._state = NodeState.GAVE_UP
        self._tree.bus.publish(GaveUp(self._path, self._generation, trio.current_time(), history))
        return SupervisorGaveUpError(self._path, self._intensity, history)

    def _claimed(self, name: str) -> bool:
        return any(name in plan.names for plan in self._plans)

    def _claim(self, names: Iterable[str]) -> None:
        """Take ``names`` out of every queued plan (a newer plan or a termination owns them)."""
        wanted = set(names)
        for plan in list(self._plans):
            plan.names = [name for name in plan.names if name not in wanted]
            if not plan.names:
                self._plans.remove(plan)

    def _due_plan(self) -> _Plan | None:
        if not self._plans:
            return None
        plan = min(self._plans, key=lambda p: p.due)
        return plan if plan.due <= trio.current_time() else None

    def _next_due(self) -> float:
        return min((plan.due for plan in self._plans), default=math.inf)

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
        spec = child.spec
        generation = self._tree.next_generation(child.path)
        mailbox: Mailbox[Any] = Mailbox._create(spec.mailbox_size, child.path, generation)
        context: ActorContext[Any] = ActorContext._create(mailbox, self._tree)
        incarnation = Incarnation(spec, context, restart, self._on_ready, self._on_exit)
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
        self._tree.bus.publish(Exited(child.path, generation, trio.current_time(), reason, False))
        return error

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

    async def _stop_child(self, child: Child) -> None:
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

    # -- lookups and snapshots -----------------------------------------------------------------

    def _lookup(self, names: tuple[str, ...]) -> Child:
        supervisor: Supervisor = self
        for depth, name in enumerate(names):
            child = supervisor._children.get(name)
            if child is None:
                raise UnknownChildError(
                    f"{format_path(supervisor._path)} has no child named {name!r}"
                )
            if depth == len(names) - 1:
                return child
            incarnation = child.incarnation
            nested: Supervisor | None = None if incarnation is None else incarnation.context._nested
            if nested is None or child.state is not NodeState.RUNNING:
                raise ChildNotRunningError(
                    child.path, child.generation, "is not a running supervisor"
                )
            supervisor = nested
        raise ValueError("a child key needs at least one name")

    def _snapshot(self, child: Child, now: float) -> NodeSnapshot:
        incarnation = child.incarnation
        nested: Supervisor | None = None if incarnation is None else incarnation.context._nested
        if nested is not None and child.state in _RUNNING_STATES:
            return attrs.evolve(
                nested.tree(),
                state=child.state,
                last_exit=child.last_exit,
                restart=child.spec.restart,
            )
        mailbox: MailboxStatistics | None = None
        if incarnation is not None and child.spec.kind is NodeKind.WORKER:
            mailbox = incarnation.context.mailbox.statistics()
        restarts = sum(1 for _, record in self._window.entries(now) if record.name == child.name)
        return NodeSnapshot(
            name=child.name,
            path=child.path,
            kind=child.spec.kind,
            state=child.state,
            generation=child.generation,
            restarts_in_window=restarts,
            last_exit=child.last_exit,
            mailbox=mailbox,
            restart=child.spec.restart,
        )

    async def _request(self, make: Callable[[Reply[R]], _Control]) -> R:
        if self._control_ref is None:
            raise RuntimeError(
                f"supervisor {format_path(self._path)} is not running; start it with "
                "nursery.start(supervisor.run) or open_supervisor() first"
            )
        return await self._control_ref.call(make, timeout=math.inf)


# -- convenience ---------------------------------------------------------------------------------


def supervisor_spec(
    name: str,
    children: Iterable[ChildSpec[Any]] = (),
    *,
    strategy: Strategy = Strategy.ONE_FOR_ONE,
    intensity: RestartIntensity = RestartIntensity(),  # noqa: B008
    backoff: BackoffPolicy = BackoffPolicy.none(),  # noqa: B008
    rng: random.Random | None = None,
    on_restart: RestartHook | None = None,
    restart: Restart = Restart.PERMANENT,
    shutdown: float = math.inf,
    start_timeout: float = math.inf,
) -> ChildSpec[Never]:
    """A child spec that runs a nested :class:`Supervisor` with these children and options.

    Each incarnation is a fresh supervisor started from ``children``: children added at run time
    are not restarted with it (as in OTP). It reports ready once all its children are, and its
    parent sees its :class:`~actors.SupervisorGaveUpError` as an abnormal exit. The defaults
    ``shutdown=inf`` and ``start_timeout=inf`` give the subtree all the time it needs; its own
    children have their own limits.
    """
    specs = tuple(children)
    _check_unique(specs)

    async def run_nested(
        ctx: ActorContext[Never], *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        nested = Supervisor(
            specs,
            name=name,
            strategy=strategy,
            intensity=intensity,
            backoff=backoff,
            rng=rng,
            on_restart=on_restart,
        )
        nested._adopt(ctx)
        await nested.run(task_status=task_status)

    return ChildSpec(
        name,
        run_nested,
        restart=restart,
        shutdown=shutdown,
        start_timeout=start_timeout,
        mailbox_size=0,
        kind=NodeKind.SUPERVISOR,
    )


@asynccontextmanager
async def open_supervisor(
    children: Iterable[ChildSpec[Any]] = (),
    *,
    name: str = "supervisor",
    strategy: Strategy = Strategy.ONE_FOR_ONE,
    intensity: RestartIntensity = RestartIntensity(),  # noqa: B008
    backoff: BackoffPolicy = BackoffPolicy.none(),  # noqa: B008
    rng: random.Random | None = None,
    on_restart: RestartHook | None = None,
) -> AsyncIterator[Supervisor]:
    """Run a :class:`Supervisor` for the duration of the ``async with`` block.

    The children are started (in order) before the block runs; leaving the block, normally or
    with an exception, stops them in reverse order. If the supervisor gives up, the block is
    cancelled and :class:`~actors.SupervisorGaveUpError` is raised from the ``async with``. A
    single exception (yours, or the runtime's) is raised as itself, not wrapped in a group.
    Cancellation from outside cancels every task of the tree at once (Trio semantics): use the
    block's normal exit, or :meth:`Supervisor.request_stop`, for an ordered stop.
    """
    supervisor = Supervisor(
        children,
        name=name,
        strategy=strategy,
        intensity=intensity,
        backoff=backoff,
        rng=rng,
        on_restart=on_restart,
    )
    unwrapped: BaseException | None = None
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(supervisor.run)
            try:
                yield supervisor
            except Exception:
                # Stop the tree in order before the error reaches the nursery, which would
                # cancel every child at once.
                await supervisor.stop()
                raise
            finally:
                supervisor.request_stop()
    except BaseExceptionGroup as group:
        # Two tasks only: the block and the supervisor. One exception is raised as itself.
        unwrapped = single_leaf(group)
        if unwrapped is None:
            raise
    if unwrapped is not None:
        raise unwrapped


def _names(key: ChildSpec[Any] | str | Sequence[str]) -> tuple[str, ...]:
    if isinstance(key, ChildSpec):
        return (key.name,)
    if isinstance(key, str):
        return (key,)
    names = tuple(key)
    if not names or not all(isinstance(name, str) for name in names):
        raise ValueError(f"a child key is a name, a spec or a sequence of names, got {key!r}")
    return names


def _check_unique(specs: Sequence[ChildSpec[Any]]) -> None:
    seen: set[str] = set()
    for spec in specs:
        if spec.name in seen:
            raise DuplicateChildError(
                f"two children are named {spec.name!r}; names are unique per supervisor"
            )
        seen.add(spec.name)
