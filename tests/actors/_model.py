"""A synchronous reference model of the supervisor, written from the OTP rules, not from the code.

Each operation is a generator: it yields the :class:`Expect`-ation of the next event, receives
the event the runtime actually published, checks it, and goes on. The model never draws random
numbers: where the runtime draws a backoff delay, the model checks the delay lies within the
policy's bounds and takes the observed value as the truth, so the rest of the prediction (times,
intensity windows) follows it exactly.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator
from typing import Any

import attrs

from actors import (
    BackoffPolicy,
    Exited,
    ExitKind,
    GaveUp,
    NodeSnapshot,
    NodeState,
    Restart,
    Restarting,
    RestartIntensity,
    Started,
    StartTimeoutError,
    Strategy,
    SupervisorEvent,
    SupervisorGaveUpError,
)
from tests.actors._puppets import Faults

Gen = Generator["Expect", SupervisorEvent, Any]


@attrs.frozen
class WorkerConfig:
    name: str
    restart: Restart
    grace: float
    mailbox_size: int
    start_timeout: float


@attrs.frozen
class SupervisorConfig:
    name: str
    strategy: Strategy
    intensity: RestartIntensity
    backoff: BackoffPolicy
    restart: Restart
    children: tuple[WorkerConfig | SupervisorConfig, ...]


@attrs.frozen
class Expect:
    """What the next event must look like."""

    event_type: type[SupervisorEvent]
    path: tuple[str, ...]
    generation: int
    time: float
    kind: ExitKind | None = None
    ready: bool | None = None
    restart: bool | None = None
    cause: str | None = None
    restarts_in_window: int | None = None
    delay_bounds: tuple[float, float] | None = None
    delay: float | None = None
    error_type: type[BaseException] | None = None

    def check(self, event: SupervisorEvent) -> None:
        assert isinstance(event, self.event_type), f"expected {self}, got {event}"
        assert event.path == self.path, f"expected {self}, got {event}"
        assert event.generation == self.generation, f"expected {self}, got {event}"
        assert math.isclose(event.time, self.time, abs_tol=1e-9), f"expected {self}, got {event}"
        if isinstance(event, Exited):
            assert event.reason.kind is self.kind, f"expected {self}, got {event}"
            assert event.ready is self.ready, f"expected {self}, got {event}"
            if self.error_type is not None:
                assert isinstance(event.reason.error, self.error_type), (self, event)
        if isinstance(event, Started):
            assert event.restart is self.restart, f"expected {self}, got {event}"
        if isinstance(event, Restarting):
            assert event.cause == self.cause, f"expected {self}, got {event}"
            assert event.restarts_in_window == self.restarts_in_window, (self, event)
            assert self.delay_bounds is not None
            low, high = self.delay_bounds
            assert low <= event.delay <= high, f"delay {event.delay} outside {self.delay_bounds}"
            if self.delay is not None:
                assert event.delay == self.delay, f"one plan, one delay: {self} vs {event}"


@attrs.define(eq=False)
class MChild:
    config: WorkerConfig | SupervisorConfig
    path: tuple[str, ...]
    state: str = "new"  # new, running, restarting, stopped
    generation: int = -1
    hung: bool = False
    attempt: int = 0
    ready_at: float = 0.0
    nested: MSupervisor | None = None

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def restart(self) -> Restart:
        return self.config.restart

    @property
    def is_worker(self) -> bool:
        return isinstance(self.config, WorkerConfig)


@attrs.define(eq=False)
class MSupervisor:
    config: SupervisorConfig
    path: tuple[str, ...]
    generation: int
    parent: MSupervisor | None = None
    as_child: MChild | None = None
    children: list[MChild] = attrs.field(factory=list)
    window: list[tuple[float, str, int]] = attrs.field(factory=list)
    state: str = "running"  # running, stopped, gave_up

    def child(self, name: str) -> MChild:
        return next(child for child in self.children if child.name == name)


def _abnormal(kind: ExitKind) -> bool:
    return kind in (ExitKind.ERROR, ExitKind.KILLED)


def _group(strategy: Strategy, names: list[str], failed: str) -> list[str]:
    """OTP: the failed child alone, everyone, or the failed child and those started after it."""
    if strategy is Strategy.ONE_FOR_ONE:
        return [failed]
    if strategy is Strategy.ONE_FOR_ALL:
        return names
    return names[names.index(failed) :]


def _should_restart(restart: Restart, kind: ExitKind) -> bool:
    if restart is Restart.PERMANENT:
        return True
    if restart is Restart.TRANSIENT:
        return _abnormal(kind)
    return False


@attrs.define(eq=False)
class World:
    """The model of a whole tree, its clock, and its expected side effects."""

    root_config: SupervisorConfig
    faults: Faults
    now: float = 0.0
    generations: dict[tuple[str, ...], int] = attrs.field(factory=dict)
    expected_hooks: list[tuple[tuple[str, ...], int]] = attrs.field(factory=list)
    hung: set[tuple[tuple[str, ...], int]] = attrs.field(factory=set)
    exits: dict[tuple[tuple[str, ...], int], float] = attrs.field(factory=dict)
    root: MSupervisor = attrs.field(init=False)
    root_gave_up: bool = False

    def __attrs_post_init__(self) -> None:
        self.root = MSupervisor(self.root_config, (self.root_config.name,), 0)

    # -- helpers --------------------------------------------------------------------------------

    def _next_generation(self, path: tuple[str, ...]) -> int:
        generation = self.generations.get(path, -1) + 1
        self.generations[path] = generation
        return generation

    def _seen(self, event: SupervisorEvent) -> None:
        self.now = event.time
        if isinstance(event, Exited) and event.ready:
            self.exits[(event.path, event.generation)] = event.time

    def workers(self, predicate: Callable[[MChild], bool] = lambda c: True) -> list[MChild]:
        found: list[MChild] = []

        def visit(supervisor: MSupervisor) -> None:
            for child in supervisor.children:
                if child.is_worker:
                    if predicate(child):
                        found.append(child)
                elif child.nested is not None and child.state == "running":
                    visit(child.nested)

        if self.root.state == "running":
            visit(self.root)
        return found

    def owner(self, target: MChild) -> MSupervisor:
        def visit(supervisor: MSupervisor) -> MSupervisor | None:
            for child in supervisor.children:
                if child is target:
                    return supervisor
                if child.nested is not None:
                    found = visit(child.nested)
                    if found is not None:
                        return found
            return None

        owner = visit(self.root)
        assert owner is not None
        return owner

    # -- operations (generators) ----------------------------------------------------------------

    def start_static(self) -> Gen:
        for config in self.root_config.children:
            child = MChild(config, (*self.root.path, config.name))
            self.root.children.append(child)
            ok = yield from self.start(child, restart=False)
            assert ok, "the root's static children have no start faults"

    def start(self, child: MChild, *, restart: bool) -> Gen:
        """Start one incarnation; return whether it became ready."""
        child.generation = self._next_generation(child.path)
        child.hung = False
        config = child.config
        if isinstance(config, WorkerConfig):
            fault = self.faults.take(child.path)
            if fault is not None:
                timeout = config.start_timeout if fault == "hang" else 0.0
                event = yield Expect(
                    Exited,
                    child.path,
                    child.generation,
                    self.now + timeout,
                    kind=ExitKind.ERROR,
                    ready=False,
                    error_type=StartTimeoutError if fault == "hang" else None,
                )
                self._seen(event)
                child.state = "stopped"
                return False
        else:
            nested = MSupervisor(
                config,
                child.path,
                child.generation,
                parent=self.owner(child),
                as_child=child,
            )
            child.nested = nested
            for sub in config.children:
                grandchild = MChild(sub, (*child.path, sub.name))
                nested.children.append(grandchild)
                ok = yield from self.start(grandchild, restart=False)
                if not ok:
                    yield from self.stop_all(nested)
                    event = yield Expect(
                        Exited, child.path, child.generation, self.now, ExitKind.ERROR, False
                    )
                    self._seen(event)
                    child.state = "stopped"
                    return False
        event = yield Expect(Started, child.path, child.generation, self.now, restart=restart)
        self._seen(event)
        child.state = "running"
        child.ready_at = event.time
        return True

    def stop_child(self, child: MChild) -> Gen:
        """The supervisor stops a child: stop request, grace, cancellation."""
        if child.state != "running":
            child.state = "stopped"
            return
        config = child.config
        if isinstance(config, WorkerConfig):
            if config.grace == 0:
                kind, at = ExitKind.KILLED, self.now
            elif child.hung:
                kind, at = ExitKind.KILLED, self.now + config.grace
            else:
                kind, at = ExitKind.SHUTDOWN, self.now
            event = yield Expect(Exited, child.path, child.generation, at, kind, True)
        else:
            assert child.nested is not None
            yield from self.stop_all(child.nested)
            event = yield Expect(
                Exited, child.path, child.generation, self.now, ExitKind.SHUTDOWN, True
            )
        self._seen(event)
        child.state = "stopped"

    def stop_all(self, supervisor: MSupervisor) -> Gen:
        for child in reversed(supervisor.children):
            yield from self.stop_child(child)
        supervisor.state = "stopped"

    def crash(self, child: MChild, kind: ExitKind) -> Gen:
        """A worker ends on its own with ``kind``."""
        event = yield Expect(Exited, child.path, child.generation, self.now, kind, True)
        self._seen(event)
        yield from self.exited(self.owner(child), child, kind)

    def exited(self, supervisor: MSupervisor, child: MChild, kind: ExitKind) -> Gen:
        """A ready child ended on its own: the uptime may reset its backoff, then the policy."""
        if self.now - child.ready_at >= supervisor.config.backoff.reset_after:
            child.attempt = 0
        child.state = "stopped"
        yield from self.policy(supervisor, child, kind)

    def policy(self, supervisor: MSupervisor, child: MChild, kind: ExitKind) -> Gen:
        """OTP's decision for a child that ended (or failed to start) without being asked to."""
        if not _should_restart(child.restart, kind):
            if child.restart is Restart.TEMPORARY:
                supervisor.children.remove(child)
            else:
                child.state = "stopped"
            return
        now = self.now
        period = supervisor.config.intensity.period
        supervisor.window = [e for e in supervisor.window if now - e[0] <= period]
        supervisor.window.append((now, child.name, child.generation))
        if len(supervisor.window) > supervisor.config.intensity.max_restarts:
            yield from self.give_up(supervisor)
            return
        names = [c.name for c in supervisor.children]
        group = _group(supervisor.config.strategy, names, child.name)
        for name in reversed(group):
            other = supervisor.child(name)
            if other is child:
                continue
            yield from self.stop_child(other)
            if other.restart is Restart.TEMPORARY:
                supervisor.children.remove(other)
        members = [c for c in supervisor.children if c.name in group]
        bounds = supervisor.config.backoff.bounds(child.attempt)
        child.attempt += 1
        delay: float | None = None
        at = self.now
        for member in members:
            event = yield Expect(
                Restarting,
                member.path,
                member.generation,
                at,
                cause=child.name,
                restarts_in_window=len(supervisor.window),
                delay_bounds=bounds,
                delay=delay,
            )
            assert isinstance(event, Restarting)
            delay = event.delay
            member.state = "restarting"
        assert delay is not None
        self.now = at + delay
        yield from self.run_plan(supervisor, members)

    def run_plan(self, supervisor: MSupervisor, members: list[MChild]) -> Gen:
        for member in members:
            if member not in supervisor.children or member.state != "restarting":
                continue
            ok = yield from self.start(member, restart=True)
            if ok:
                self.expected_hooks.append((member.path, member.generation))
                continue
            # A failed start is the child failing at that moment; its (newer) plan takes over
            # the rest of this group, so this one ends here.
            yield from self.policy(supervisor, member, ExitKind.ERROR)
            return

    def give_up(self, supervisor: MSupervisor) -> Gen:
        yield from self.stop_all(supervisor)
        event = yield Expect(GaveUp, supervisor.path, supervisor.generation, self.now)
        assert isinstance(event, GaveUp)
        assert [(r.time, r.name, r.generation) for r in event.history] == supervisor.window
        supervisor.state = "gave_up"
        if supervisor.parent is None:
            self.root_gave_up = True
            return
        child = supervisor.as_child
        assert child is not None
        event = yield Expect(Exited, child.path, child.generation, self.now, ExitKind.ERROR, True)
        self._seen(event)
        assert isinstance(event, Exited)
        assert isinstance(event.reason.error, SupervisorGaveUpError)
        yield from self.exited(supervisor.parent, child, ExitKind.ERROR)

    def add(self, config: WorkerConfig) -> Gen:
        child = MChild(config, (*self.root.path, config.name))
        self.root.children.append(child)
        ok = yield from self.start(child, restart=False)
        assert ok

    def terminate(self, child: MChild) -> Gen:
        yield from self.stop_child(child)
        self.root.children.remove(child)

    def shutdown(self) -> Gen:
        yield from self.stop_all(self.root)

    # -- comparing with the runtime's own view ---------------------------------------------------

    def check_tree(self, snapshot: NodeSnapshot, now: float) -> None:
        _check_node(self.root, snapshot, now)


_STATES = {
    "running": NodeState.RUNNING,
    "restarting": NodeState.RESTARTING,
    "stopped": NodeState.STOPPED,
}


def _check_node(model: MSupervisor, snapshot: NodeSnapshot, now: float) -> None:
    assert snapshot.path == model.path
    assert [c.name for c in snapshot.children] == [c.name for c in model.children], (
        snapshot.render()
    )
    period = model.config.intensity.period
    in_window = [e for e in model.window if now - e[0] <= period]
    assert snapshot.restarts_in_window == len(in_window), snapshot.render()
    for child, node in zip(model.children, snapshot.children, strict=True):
        assert node.state is _STATES[child.state], (child, snapshot.render())
        assert node.generation == child.generation, (child, snapshot.render())
        if child.nested is not None and child.state == "running":
            _check_node(child.nested, node, now)
        else:
            mine = sum(1 for e in in_window if e[1] == child.name)
            assert node.restarts_in_window == mine, (child, snapshot.render())
