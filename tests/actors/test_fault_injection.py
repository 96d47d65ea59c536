"""Property-based fault injection: random trees, random crash/hang/exit schedules, one model.

Hypothesis draws a supervision tree (strategies, intensities, backoff policies, restart types,
grace periods, one level of nested supervisors) and then, step by step, a schedule of faults:
crashes, normal and shutdown exits, hangs, failing or hanging (re)starts, calls, clock jumps,
dynamic children added and terminated. Each step runs under ``MockClock(autojump_threshold=0)``
and is checked event by event against the reference model in ``_model.py``:

* each strategy stops exactly the right siblings (in reverse order) and restarts exactly the
  right children (in order); ``temporary`` children are never restarted, ``transient`` ones
  only after an abnormal exit;
* the restart count in the window matches the history, and the supervisor gives up exactly when
  the intensity is exceeded (with that history), escalating to its parent;
* every backoff delay lies within its policy's bounds and the restart happens exactly then;
* generations only grow; the tree snapshot agrees with the model after every step;
* restart hooks fire once per restarted child, in order;
* no caller of a dead actor waits: it fails at the very instant the actor ends;
* after shutdown (or giving up) no task of the tree is left running.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Iterator

import attrs
import hypothesis
import trio
import trio.testing
from hypothesis import given
from hypothesis import strategies as st

from actors import (
    ActorDeadError,
    ActorRef,
    BackoffPolicy,
    CallTimeoutError,
    ChildSpec,
    EventSubscription,
    Exited,
    ExitKind,
    GaveUp,
    Jitter,
    Restart,
    RestartHook,
    Restarting,
    RestartIntensity,
    Started,
    Strategy,
    Supervisor,
    SupervisorEvent,
    SupervisorGaveUpError,
    supervisor_spec,
)
from tests.actors._model import Gen, MChild, SupervisorConfig, WorkerConfig, World
from tests.actors._puppets import (
    Command,
    Crash,
    Echo,
    Exit,
    Faults,
    Hang,
    Quit,
    examples,
    puppet,
)

ROOT = "root"

# -- drawing trees ---------------------------------------------------------------------------------

restarts = st.sampled_from(list(Restart))
intensities = st.builds(
    RestartIntensity,
    max_restarts=st.integers(0, 4),
    period=st.sampled_from([1.0, 5.0, 30.0]),
)
backoffs = st.one_of(
    st.just(BackoffPolicy.none()),
    st.builds(
        BackoffPolicy,
        initial=st.sampled_from([0.1, 1.0]),
        maximum=st.sampled_from([1.0, 5.0]),
        multiplier=st.sampled_from([1.0, 2.0]),
        jitter=st.sampled_from(list(Jitter)),
        reset_after=st.sampled_from([2.0, 30.0]),
    ),
)


def workers(name: str) -> st.SearchStrategy[WorkerConfig]:
    return st.builds(
        WorkerConfig,
        name=st.just(name),
        restart=restarts,
        grace=st.sampled_from([0.0, 0.5, 2.0]),
        mailbox_size=st.sampled_from([1, 8]),
        start_timeout=st.sampled_from([1.0, 4.0]),
    )


@st.composite
def supervisors(draw: st.DrawFn, name: str, *, nested: bool) -> SupervisorConfig:
    count = draw(st.integers(1, 4 if nested else 3), label=f"{name} children")
    children: list[WorkerConfig | SupervisorConfig] = []
    for index in range(count):
        if nested and draw(st.integers(0, 3), label="nested?") == 0:
            children.append(draw(supervisors(f"n{index}", nested=False)))
        else:
            children.append(draw(workers(f"w{index}")))
    return SupervisorConfig(
        name=name,
        strategy=draw(st.sampled_from(list(Strategy))),
        intensity=draw(intensities),
        backoff=draw(backoffs),
        restart=draw(restarts) if not nested else Restart.PERMANENT,
        children=tuple(children),
    )


# -- building the real tree ------------------------------------------------------------------------


def _worker_spec(config: WorkerConfig, faults: Faults) -> ChildSpec[Command]:
    return ChildSpec(
        config.name,
        puppet(faults),
        restart=config.restart,
        shutdown=config.grace,
        mailbox_size=config.mailbox_size,
        start_timeout=config.start_timeout,
    )


def _hook(path: tuple[str, ...], log: list[tuple[tuple[str, ...], int]]) -> RestartHook:
    async def on_restart(name: str, generation: int) -> None:
        log.append(((*path, name), generation))

    return on_restart


def _specs(
    config: SupervisorConfig,
    path: tuple[str, ...],
    faults: Faults,
    log: list[tuple[tuple[str, ...], int]],
) -> list[ChildSpec[object]]:
    specs: list[ChildSpec[object]] = []
    for child in config.children:
        if isinstance(child, WorkerConfig):
            specs.append(_worker_spec(child, faults))  # type: ignore[arg-type]
        else:
            sub_path = (*path, child.name)
            specs.append(
                supervisor_spec(  # type: ignore[arg-type]
                    child.name,
                    _specs(child, sub_path, faults, log),
                    strategy=child.strategy,
                    intensity=child.intensity,
                    backoff=child.backoff,
                    on_restart=_hook(sub_path, log),
                    restart=child.restart,
                )
            )
    return specs


# -- callers ---------------------------------------------------------------------------------------


@attrs.define
class Caller:
    path: tuple[str, ...]
    generation: int
    start: float
    timeout: float
    hung: bool
    outcome: str | None = None
    end: float | None = None

    def check(self, world: World) -> None:
        if self.outcome is None:
            return
        assert self.end is not None
        died = world.exits.get((self.path, self.generation))
        hypothesis.event("a call ended", self.outcome)
        if self.outcome == "ok":
            assert not self.hung, self
            assert self.end == self.start, self
        elif self.outcome == "timeout":
            assert self.hung, self
            assert abs(self.end - (self.start + self.timeout)) < 1e-9, self
            assert died is None or died >= self.end, (self, died)
        else:
            assert self.outcome == "dead", self
            assert died is not None, self
            # At the latest when the actor ended (earlier if it was blocked on a full mailbox
            # when the stop request closed it).
            assert self.start <= self.end <= died + 1e-9, f"a caller waited: {self} {died}"


async def _call(supervisor: Supervisor, caller: Caller) -> None:
    ref = supervisor.ref(caller.path[1:])
    assert ref.generation == caller.generation
    try:
        value = await ref.call(Echo, timeout=caller.timeout)
    except CallTimeoutError:
        caller.outcome = "timeout"
    except ActorDeadError:
        caller.outcome = "dead"
    else:
        assert value == caller.generation
        caller.outcome = "ok"
    caller.end = trio.current_time()


# -- the driver ------------------------------------------------------------------------------------


def _note(event: SupervisorEvent) -> None:
    """Label what an example exercised (shown by pytest --hypothesis-show-statistics)."""
    if isinstance(event, GaveUp):
        hypothesis.event("a supervisor gave up", "root" if len(event.path) == 1 else "nested")
    elif isinstance(event, Exited) and not event.ready:
        hypothesis.event("a start failed", type(event.reason.error).__name__)
    elif isinstance(event, Exited) and event.reason.kind is ExitKind.KILLED:
        hypothesis.event("a stop ran out of grace")
    elif isinstance(event, Restarting) and event.cause != event.path[-1]:
        hypothesis.event("a sibling restarted with a failed child")


@attrs.define(eq=False)
class Scenario:
    """One example: the real tree, the model, and the steps Hypothesis draws for them."""

    data: st.DataObject
    config: SupervisorConfig
    seed: int
    faults: Faults = attrs.field(factory=Faults)
    hooks: list[tuple[tuple[str, ...], int]] = attrs.field(factory=list)
    callers: list[Caller] = attrs.field(factory=list)
    last_started: dict[tuple[str, ...], int] = attrs.field(factory=dict)
    gave_up: list[SupervisorGaveUpError] = attrs.field(factory=list)
    names: Iterator[str] = attrs.field(factory=lambda: (f"d{i}" for i in itertools.count()))
    world: World = attrs.field(init=False)
    root: Supervisor = attrs.field(init=False)
    events: EventSubscription = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self.world = World(self.config, self.faults.copy())
        self.root = Supervisor(
            _specs(self.config, (ROOT,), self.faults, self.hooks),
            name=ROOT,
            strategy=self.config.strategy,
            intensity=self.config.intensity,
            backoff=self.config.backoff,
            rng=random.Random(self.seed),
            on_restart=_hook((ROOT,), self.hooks),
        )
        self.events = self.root.subscribe(max_buffer=100_000)

    async def run(self) -> None:
        baseline = trio.lowlevel.current_statistics().tasks_living
        async with trio.open_nursery() as nursery:
            await nursery.start(self._run_root)
            await self.drive(self.world.start_static())
            await self.settle()
            async with trio.open_nursery() as calls:
                for _ in range(self.data.draw(st.integers(1, 14), label="steps")):
                    if self.world.root_gave_up:
                        break
                    self.world.now = trio.current_time()
                    step = self.data.draw(st.sampled_from(STEPS), label="step")
                    await getattr(self, f"step_{step}")(calls)
                    await self.settle()
                if not self.world.root_gave_up:
                    self.world.now = trio.current_time()
                    await self.root.stop()
                    await self.drive(self.world.shutdown())
                await trio.testing.wait_all_tasks_blocked()
                pending = [caller for caller in self.callers if caller.outcome is None]
                assert not pending, f"callers still waiting after the tree ended: {pending}"
        assert trio.lowlevel.current_statistics().tasks_living == baseline, "tasks leaked"
        self.check_the_end()

    async def _run_root(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        try:
            await self.root.run(task_status=task_status)
        except SupervisorGaveUpError as error:
            self.gave_up.append(error)

    async def drive(self, operation: Gen) -> None:
        """Feed the runtime's events to the model, one by one, until its cascade ends."""
        try:
            expect = next(operation)
            while True:
                with trio.fail_after(100_000):  # virtual seconds: a missing event fails
                    event = await self.events.receive()
                expect.check(event)
                _note(event)
                if isinstance(event, Started):
                    previous = self.last_started.get(event.path, -1)
                    assert event.generation > previous, f"generation went backwards: {event}"
                    self.last_started[event.path] = event.generation
                expect = operation.send(event)
        except StopIteration:
            pass

    async def settle(self) -> None:
        """After a step: nothing else happens, and the runtime's view agrees with the model."""
        await trio.testing.wait_all_tasks_blocked()
        try:
            extra = self.events.receive_nowait()
        except (trio.WouldBlock, trio.EndOfChannel):
            pass  # (the stream ends when the root gives up)
        else:
            raise AssertionError(f"the model expected no more events, got {extra}")
        if not self.world.root_gave_up:
            self.world.check_tree(self.root.tree(), trio.current_time())
        assert self.hooks == self.world.expected_hooks
        for caller in self.callers:
            caller.check(self.world)

    def check_the_end(self) -> None:
        assert self.hooks == self.world.expected_hooks
        for caller in self.callers:
            caller.check(self.world)
        if self.world.root_gave_up:
            (error,) = self.gave_up
            assert [(r.name, r.generation) for r in error.history] == [
                (name, generation) for _, name, generation in self.world.root.window
            ]
        else:
            assert not self.gave_up
        tree = self.root.tree()
        assert all(node.state.value in {"stopped", "gave_up"} for node in tree.walk()), (
            tree.render()
        )
        try:  # the event stream ends (once drained) when the root has finished
            extra = self.events.receive_nowait()
        except trio.EndOfChannel:
            pass
        else:
            raise AssertionError(f"unexpected event after the tree ended: {extra}")

    def pick(self, label: str, predicate: Callable[[MChild], bool]) -> MChild | None:
        candidates = self.world.workers(predicate)
        if not candidates:
            return None
        return self.data.draw(st.sampled_from(candidates), label=label)

    def ref(self, child: MChild) -> ActorRef[Command]:
        return self.root.ref(child.path[1:])

    # -- steps --------------------------------------------------------------------------------

    async def step_crash(self, calls: trio.Nursery) -> None:
        child = self.pick("crash", lambda c: c.state == "running" and not c.hung)
        if child is not None:
            kind = self.data.draw(st.sampled_from(list(_MESSAGES)), label="exit kind")
            await self.ref(child).cast(_MESSAGES[kind])
            await self.drive(self.world.crash(child, kind))

    async def step_crash_into_bad_restarts(self, calls: trio.Nursery) -> None:
        child = self.pick("crash", lambda c: c.state == "running" and not c.hung)
        if child is not None:
            self.arm(child)
            await self.ref(child).cast(Crash())
            await self.drive(self.world.crash(child, ExitKind.ERROR))

    async def step_start_fault(self, calls: trio.Nursery) -> None:
        child = self.pick("start fault", lambda c: True)
        if child is not None:
            self.arm(child)

    def arm(self, child: MChild) -> None:
        fault = self.data.draw(st.sampled_from(["fail", "hang"]), label="fault")
        count = self.data.draw(st.integers(1, 3), label="count")
        self.faults.arm(child.path, fault, count)
        self.world.faults.arm(child.path, fault, count)

    async def step_hang(self, calls: trio.Nursery) -> None:
        child = self.pick("hang", lambda c: c.state == "running" and not c.hung)
        if child is not None:
            await self.ref(child).cast(Hang())
            child.hung = True
            if self.data.draw(st.booleans(), label="call it too"):
                await self.step_call(calls, child)

    async def step_call(self, calls: trio.Nursery, child: MChild | None = None) -> None:
        child = child or self.pick("call", lambda c: c.state == "running")
        if child is not None:
            timeout = self.data.draw(st.sampled_from([1.0, 6.0, 100.0]), label="timeout")
            caller = Caller(child.path, child.generation, trio.current_time(), timeout, child.hung)
            self.callers.append(caller)
            calls.start_soon(_call, self.root, caller)

    async def step_advance(self, calls: trio.Nursery) -> None:
        # Let virtual time pass (the autojump clock visits every deadline on the way, so
        # timeouts fire exactly on time); nothing is synchronised by it.
        await trio.sleep(self.data.draw(st.sampled_from([0.5, 1.0, 3.0, 10.0, 40.0])))

    async def step_add(self, calls: trio.Nursery) -> None:
        worker = self.data.draw(workers(next(self.names)), label="new child")
        await self.root.start_child(_worker_spec(worker, self.faults))
        await self.drive(self.world.add(worker))

    async def step_terminate(self, calls: trio.Nursery) -> None:
        if self.world.root.children:
            target = self.data.draw(st.sampled_from(self.world.root.children), label="terminate")
            await self.root.terminate_child(target.name)
            await self.drive(self.world.terminate(target))


STEPS = [
    "crash",
    "crash",
    "crash_into_bad_restarts",
    "start_fault",
    "hang",
    "call",
    "advance",
    "add",
    "terminate",
]


_MESSAGES: dict[ExitKind, Command] = {
    ExitKind.ERROR: Crash(),
    ExitKind.NORMAL: Exit(),
    ExitKind.SHUTDOWN: Quit(),
}


@examples(ci=200, long=5_000)
@given(data=st.data(), config=supervisors(ROOT, nested=True), seed=st.integers(0, 2**32 - 1))
def test_random_faults_match_the_model(
    data: st.DataObject, config: SupervisorConfig, seed: int
) -> None:
    scenario = Scenario(data, config, seed)
    trio.run(scenario.run, clock=trio.testing.MockClock(autojump_threshold=0))
