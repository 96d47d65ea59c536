"""Supervisor behaviour, scenario by scenario (random schedules: test_fault_injection.py)."""

from __future__ import annotations

import math
import random
from collections.abc import Callable

import pytest
import trio
import trio.testing

from actors import (
    ActorContext,
    ActorDeadError,
    ActorFunction,
    ActorRef,
    BackoffPolicy,
    ChildNotRunningError,
    ChildSpec,
    ChildStartError,
    DuplicateChildError,
    EventSubscription,
    Exited,
    ExitKind,
    GaveUp,
    Jitter,
    NeverReadyError,
    NodeKind,
    NodeState,
    Restart,
    Restarting,
    RestartIntensity,
    Started,
    StartTimeoutError,
    Strategy,
    Supervisor,
    SupervisorEvent,
    SupervisorGaveUpError,
    UnknownChildError,
    open_supervisor,
    supervisor_spec,
)
from tests.actors._puppets import (
    Command,
    Crash,
    Echo,
    Exit,
    Faults,
    Hang,
    Quit,
    StartFailed,
    puppet,
)

# -- helpers ---------------------------------------------------------------------------------------


def worker(name: str, faults: Faults | None = None, **options: object) -> ChildSpec[Command]:
    return ChildSpec(name, puppet(faults or Faults()), **options)  # type: ignore[arg-type]


async def until(
    events: EventSubscription, done: Callable[[SupervisorEvent], bool]
) -> list[SupervisorEvent]:
    """Collect events up to and including the first one for which ``done`` is true."""
    seen: list[SupervisorEvent] = []
    with trio.fail_after(10_000):  # virtual seconds
        async for event in events:
            seen.append(event)
            if done(event):
                return seen
    raise AssertionError(f"the stream ended before the expected event; saw {seen}")


def brief(events: list[SupervisorEvent]) -> list[str]:
    """``started a#1``, ``exited b#0 error``, ``restarting c#0``, ``gave_up root``."""
    lines = []
    for event in events:
        name = "/".join(event.path[1:]) or event.path[0]
        if isinstance(event, Started):
            lines.append(f"started {name}#{event.generation}")
        elif isinstance(event, Exited):
            suffix = "" if event.ready else " (start)"
            lines.append(f"exited {name}#{event.generation} {event.reason.kind.value}{suffix}")
        elif isinstance(event, Restarting):
            lines.append(f"restarting {name}#{event.generation}")
        else:
            lines.append(f"gave_up {name}")
    return lines


def started(path: tuple[str, ...], generation: int) -> Callable[[SupervisorEvent], bool]:
    return lambda e: isinstance(e, Started) and e.path == path and e.generation == generation


# -- start and stop order -------------------------------------------------------------------


def slow_starter(log: list[tuple[str, str, float]]) -> ActorFunction[object]:
    async def run(
        ctx: ActorContext[object], *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        log.append(("enter", ctx.name, trio.current_time()))
        await trio.sleep(1)
        task_status.started()
        log.append(("ready", ctx.name, trio.current_time()))
        try:
            await ctx.wait_stop_requested()
        finally:
            log.append(("stop", ctx.name, trio.current_time()))

    return run


async def test_children_start_in_order_and_stop_in_reverse(autojump_clock: trio.abc.Clock) -> None:
    log: list[tuple[str, str, float]] = []
    specs = [ChildSpec(name, slow_starter(log)) for name in ("a", "b", "c")]
    async with open_supervisor(specs, name="app") as supervisor:
        assert [child.state for child in supervisor.tree().children] == [NodeState.RUNNING] * 3
        log.append(("body", "-", trio.current_time()))
    assert log == [
        ("enter", "a", 0.0),
        ("ready", "a", 1.0),
        ("enter", "b", 1.0),
        ("ready", "b", 2.0),
        ("enter", "c", 2.0),
        ("ready", "c", 3.0),
        ("body", "-", 3.0),
        ("stop", "c", 3.0),
        ("stop", "b", 3.0),
        ("stop", "a", 3.0),
    ]


async def stubborn(
    ctx: ActorContext[object], *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
) -> None:
    task_status.started()
    await trio.sleep_forever()  # ignores the stop request: only cancellation ends it


async def polite(
    ctx: ActorContext[object], *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
) -> None:
    task_status.started()
    await ctx.wait_stop_requested()


async def test_stop_is_a_request_then_a_grace_period_then_cancellation(
    autojump_clock: trio.abc.Clock,
) -> None:
    specs = [
        ChildSpec("polite", polite, shutdown=10.0),
        ChildSpec("stubborn", stubborn, shutdown=2.5),
        ChildSpec("brutal", polite, shutdown=0.0),
    ]
    supervisor = Supervisor(specs, name="app")
    with supervisor.subscribe() as events:
        async with trio.open_nursery() as nursery:
            await nursery.start(supervisor.run)
            await supervisor.stop()
        exits = [event async for event in events if isinstance(event, Exited)]
    assert [(e.path[-1], e.reason.kind, e.time) for e in exits] == [
        ("brutal", ExitKind.KILLED, 0.0),  # grace 0: cancelled at once, like brutal_kill
        ("stubborn", ExitKind.KILLED, 2.5),
        ("polite", ExitKind.SHUTDOWN, 2.5),
    ]
    assert "2.5 s shutdown grace" in exits[1].reason.detail
    assert supervisor.state is NodeState.STOPPED


# -- failed starts ---------------------------------------------------------------------------------


async def test_a_static_child_failing_to_start_stops_the_others(
    autojump_clock: trio.abc.Clock,
) -> None:
    faults = Faults()
    faults.arm(("app", "b"), "fail")
    supervisor = Supervisor([worker(n, faults) for n in "abc"], name="app")
    with supervisor.subscribe() as events:
        async with trio.open_nursery() as nursery:
            with pytest.raises(ChildStartError, match="app/b failed to start") as info:
                await nursery.start(supervisor.run)
        assert isinstance(info.value.__cause__, StartFailed)
        assert brief([event async for event in events]) == [
            "started a#0",
            "exited b#0 error (start)",
            "exited a#0 shutdown",
        ]


async def test_open_supervisor_raises_the_start_error_itself(
    autojump_clock: trio.abc.Clock,
) -> None:
    faults = Faults()
    faults.arm(("app", "a"), "hang")
    start = trio.current_time()
    with pytest.raises(ChildStartError) as info:
        async with open_supervisor([worker("a", faults, start_timeout=7.0)], name="app"):
            raise AssertionError("the body must not run")
    assert isinstance(info.value.__cause__, StartTimeoutError)
    assert trio.current_time() - start == 7.0


async def test_an_actor_must_report_ready(autojump_clock: trio.abc.Clock) -> None:
    async def lazy(
        ctx: ActorContext[object], *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        return

    with pytest.raises(ChildStartError) as info:
        async with open_supervisor([ChildSpec("lazy", lazy)]):
            pass
    assert isinstance(info.value.__cause__, NeverReadyError)
    assert "call it once the actor is ready" in str(info.value.__cause__)


# -- strategies and restart types ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("strategy", "expected"),
    [
        (Strategy.ONE_FOR_ONE, ["exited b#0 error", "restarting b#0", "started b#1"]),
        (
            Strategy.ONE_FOR_ALL,
            [
                "exited b#0 error",
                "exited c#0 shutdown",
                "exited a#0 shutdown",
                "restarting a#0",
                "restarting b#0",
                "restarting c#0",
                "started a#1",
                "started b#1",
                "started c#1",
            ],
        ),
        (
            Strategy.REST_FOR_ONE,
            [
                "exited b#0 error",
                "exited c#0 shutdown",
                "restarting b#0",
                "restarting c#0",
                "started b#1",
                "started c#1",
            ],
        ),
    ],
)
async def test_strategies(
    autojump_clock: trio.abc.Clock, strategy: Strategy, expected: list[str]
) -> None:
    async with open_supervisor(
        [worker(n) for n in "abc"], name="app", strategy=strategy, intensity=RestartIntensity(5, 5)
    ) as supervisor:
        with supervisor.subscribe() as events:
            await supervisor.ref("b").cast(Crash())
            last = expected[-1].split()[1].split("#")[0]
            seen = await until(events, started(("app", last), 1))
    assert brief(seen) == expected


async def test_restart_types(autojump_clock: trio.abc.Clock) -> None:
    specs = [
        worker("perm", restart=Restart.PERMANENT),
        worker("trans", restart=Restart.TRANSIENT),
        worker("temp", restart=Restart.TEMPORARY),
        worker("trans2", restart=Restart.TRANSIENT),
    ]
    async with open_supervisor(specs, name="app", intensity=RestartIntensity(10, 5)) as sup:
        with sup.subscribe() as events:
            await sup.ref("perm").cast(Exit())  # permanent: restarted even after a normal exit
            await until(events, started(("app", "perm"), 1))
            await sup.ref("trans").cast(Exit())  # transient, normal: stays stopped
            await sup.ref("trans2").cast(Quit())  # transient, Shutdown raised: stays stopped
            await sup.ref("temp").cast(Crash())  # temporary: removed, even after a crash
            await trio.testing.wait_all_tasks_blocked()
            tree = sup.tree()
            assert [(c.name, c.state) for c in tree.children] == [
                ("perm", NodeState.RUNNING),
                ("trans", NodeState.STOPPED),
                ("trans2", NodeState.STOPPED),
            ]
            assert tree.find("trans2").last_exit is not None
            assert tree.find("trans2").last_exit.kind is ExitKind.SHUTDOWN  # type: ignore[union-attr]
            with pytest.raises(ChildNotRunningError, match=r"app/trans .*is stopped"):
                sup.ref("trans")
            await sup.start_child(worker("trans3", restart=Restart.TRANSIENT))
            await sup.ref("trans3").cast(Crash())  # transient, abnormal: restarted
            await until(events, started(("app", "trans3"), 1))


# -- intensity, escalation, backoff ------------------------------------------------------------


async def test_gives_up_when_the_intensity_is_exceeded(
    autojump_clock: trio.testing.MockClock,
) -> None:
    body: list[str] = []
    holder: list[Supervisor] = []

    async def crash_a_three_times() -> None:
        async with open_supervisor(
            [worker("a"), worker("b")], name="app", intensity=RestartIntensity(2, 10)
        ) as sup:
            holder.append(sup)
            with sup.subscribe() as events:
                try:
                    for generation in range(2):
                        await sup.ref("a").cast(Crash())
                        await until(events, started(("app", "a"), generation + 1))
                        assert sup.ref("a").generation == generation + 1
                        # One second between crashes, so the history shows distinct times.
                        autojump_clock.jump(1)
                    await sup.ref("a").cast(Crash())
                    await trio.sleep_forever()  # the third crash exceeds the intensity
                except trio.Cancelled:
                    body.append("cancelled")
                    raise

    with pytest.raises(SupervisorGaveUpError) as info:
        await crash_a_three_times()
    error = info.value
    sup = holder[0]
    assert body == ["cancelled"]
    assert [(r.time, r.name, r.generation) for r in error.history] == [
        (0.0, "a", 0),
        (1.0, "a", 1),
        (2.0, "a", 2),
    ]
    assert error.path == ("app",)
    assert "3 restarts within 10 s exceed the intensity of 2 (children: a)" in str(error)
    assert sup.state is NodeState.GAVE_UP
    assert [n.state for n in sup.tree().children] == [NodeState.STOPPED] * 2


async def test_failed_restarts_count_and_follow_the_backoff(autojump_clock: trio.abc.Clock) -> None:
    faults = Faults()
    policy = BackoffPolicy(initial=1.0, maximum=4.0, jitter=Jitter.NONE)
    supervisor = Supervisor(
        [worker("a", faults)],
        name="app",
        intensity=RestartIntensity(3, 100),
        backoff=policy,
        rng=random.Random(1),
    )
    errors: list[SupervisorGaveUpError] = []

    async def run(*, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        try:
            await supervisor.run(task_status=task_status)
        except SupervisorGaveUpError as error:
            errors.append(error)

    with supervisor.subscribe() as events:
        async with trio.open_nursery() as nursery:
            await nursery.start(run)
            faults.arm(("app", "a"), "fail", 5)
            await supervisor.ref("a").cast(Crash())
        seen = [event async for event in events]
    restarting = [
        (e.time, e.delay, e.restarts_in_window) for e in seen if isinstance(e, Restarting)
    ]
    assert restarting == [(0.0, 1.0, 1), (1.0, 2.0, 2), (3.0, 4.0, 3)]
    start_failures = [e.time for e in seen if isinstance(e, Exited) and not e.ready]
    assert start_failures == [1.0, 3.0, 7.0]
    assert [r.time for r in errors[0].history] == [0.0, 1.0, 3.0, 7.0]
    assert isinstance(seen[-1], GaveUp)


async def test_a_stop_request_is_not_held_up_by_a_backoff(autojump_clock: trio.abc.Clock) -> None:
    backoff = BackoffPolicy(initial=100.0, maximum=100.0, jitter=Jitter.NONE)
    async with open_supervisor([worker("a")], name="app", backoff=backoff) as sup:
        await sup.ref("a").cast(Crash())
        await trio.testing.wait_all_tasks_blocked()
        assert sup.tree().find("a").state is NodeState.RESTARTING
        start = trio.current_time()
    assert trio.current_time() == start


async def test_a_nested_supervisor_that_gives_up_is_restarted_by_its_parent(
    autojump_clock: trio.abc.Clock,
) -> None:
    nested = supervisor_spec("inner", [worker("w")], intensity=RestartIntensity(0, 5))
    async with open_supervisor([worker("a"), nested], name="app") as sup:
        with sup.subscribe() as events:
            await sup.ref(("inner", "w")).cast(Crash())
            seen = await until(events, started(("app", "inner"), 1))
        assert brief(seen) == [
            "exited inner/w#0 error",
            "gave_up inner",
            "exited inner#0 error",
            "restarting inner#0",
            "started inner/w#1",  # generations keep growing across the supervisor's restart
            "started inner#1",
        ]
        gave_up = next(e for e in seen if isinstance(e, Exited) and e.path == ("app", "inner"))
        assert isinstance(gave_up.reason.error, SupervisorGaveUpError)
        assert sup.ref(("inner", "w")).generation == 1
        assert sup.supervisor("inner").path == ("app", "inner")
        with pytest.raises(ChildNotRunningError, match="not a running supervisor"):
            sup.supervisor("a")
        with pytest.raises(TypeError, match="app/inner is a supervisor, which takes no messages"):
            sup.ref("inner")


# -- dynamic children and lookups ---------------------------------------------------------------


async def test_dynamic_children(autojump_clock: trio.abc.Clock) -> None:
    faults = Faults()
    async with open_supervisor([worker("a")], name="app") as sup:
        ref = await sup.start_child(worker("b", faults))
        assert await ref.call(Echo) == 0
        assert [c.name for c in sup.tree().children] == ["a", "b"]
        with pytest.raises(DuplicateChildError, match="already has a child named 'b'"):
            await sup.start_child(worker("b"))
        await sup.terminate_child("b")
        assert not ref.is_alive
        assert [c.name for c in sup.tree().children] == ["a"]
        with pytest.raises(UnknownChildError, match="no child named 'b'"):
            await sup.terminate_child("b")
        faults.arm(("app", "b"), "fail")
        with pytest.raises(ChildStartError) as info:
            await sup.start_child(worker("b", faults))
        assert isinstance(info.value.__cause__, StartFailed)
        assert [c.name for c in sup.tree().children] == ["a"]
        again = await sup.start_child(worker("b", faults))
        assert again.generation == 2  # generations of a name only grow
        assert sup.tree().restarts_in_window == 0  # none of this is a restart


async def test_named_refs_follow_restarts(autojump_clock: trio.abc.Clock) -> None:
    spec = worker("a")
    backoff = BackoffPolicy(initial=5.0, maximum=5.0, jitter=Jitter.NONE)
    intensity = RestartIntensity(5, 5)
    async with open_supervisor([spec], name="app", backoff=backoff, intensity=intensity) as sup:
        old = sup.ref(spec)
        eager = sup.named_ref(spec)
        patient = sup.named_ref(spec, wait=60.0)
        impatient = sup.named_ref("a", wait=1.0)
        assert patient.generation == 0
        assert await patient.call(Echo) == 0
        await old.cast(Crash())
        await trio.testing.wait_all_tasks_blocked()
        with pytest.raises(ActorDeadError):
            await old.call(Echo)
        with pytest.raises(ChildNotRunningError, match="is restarting"):
            await eager.call(Echo)
        assert not eager.is_alive
        assert eager.generation is None
        start = trio.current_time()
        with pytest.raises(ChildNotRunningError):
            await impatient.call(Echo)
        assert trio.current_time() - start == 1.0
        assert await patient.call(Echo) == 1  # waited for the next incarnation
        assert trio.current_time() - start == 5.0
        await patient.cast(Crash())
        await trio.testing.wait_all_tasks_blocked()
        with pytest.raises(ChildNotRunningError):
            patient.cast_nowait(Echo)  # type: ignore[arg-type]
        assert patient.path == ("app", "a")
        with pytest.raises(UnknownChildError):
            sup.named_ref("ghost").current()


# -- restart hooks --------------------------------------------------------------------------


async def test_restart_hook_runs_before_the_next_child_starts(
    autojump_clock: trio.abc.Clock,
) -> None:
    seen: list[tuple[str, int, list[str]]] = []
    holder: list[Supervisor] = []

    async def on_restart(name: str, generation: int) -> None:
        states = [child.state.value for child in holder[0].tree().children]
        seen.append((name, generation, states))
        await trio.sleep(1)  # the next child waits for the hook

    sup = Supervisor(
        [worker(n) for n in "abc"], name="app", strategy=Strategy.ONE_FOR_ALL, on_restart=on_restart
    )
    holder.append(sup)
    async with trio.open_nursery() as nursery:
        await nursery.start(sup.run)
        with sup.subscribe() as events:
            await sup.ref("b").cast(Crash())
            seen_events = await until(events, started(("app", "c"), 1))
        await sup.stop()
    assert seen == [
        ("a", 1, ["running", "restarting", "restarting"]),
        ("b", 1, ["running", "running", "restarting"]),
        ("c", 1, ["running", "running", "running"]),
    ]
    assert [e.time for e in seen_events if isinstance(e, Started)] == [0.0, 1.0, 2.0]


async def test_a_failing_restart_hook_counts_as_a_failed_restart(
    autojump_clock: trio.abc.Clock,
) -> None:
    calls: list[int] = []

    async def on_restart(name: str, generation: int) -> None:
        calls.append(generation)
        if generation == 1:
            raise RuntimeError("replay failed")

    async with open_supervisor(
        [worker("a")], name="app", intensity=RestartIntensity(5, 5), on_restart=on_restart
    ) as sup:
        with sup.subscribe() as events:
            await sup.ref("a").cast(Crash())
            seen = await until(events, started(("app", "a"), 2))
        await trio.testing.wait_all_tasks_blocked()  # the hook runs just after the start
        assert calls == [1, 2]
        assert brief(seen) == [
            "exited a#0 error",
            "restarting a#0",
            "started a#1",
            "exited a#1 shutdown",
            "restarting a#1",
            "started a#2",
        ]
        assert sup.tree().restarts_in_window == 2
        last_exit = sup.tree().find("a").last_exit
        assert last_exit is not None
        assert last_exit.kind is ExitKind.ERROR
        assert last_exit.detail == "restart hook failed"


# -- tree and events ------------------------------------------------------------------------


async def test_tree_snapshot(autojump_clock: trio.abc.Clock) -> None:
    nested = supervisor_spec(
        "tickets", [worker("t0", mailbox_size=4)], strategy=Strategy.ONE_FOR_ONE
    )
    async with open_supervisor(
        [worker("registry"), nested], name="engine", strategy=Strategy.REST_FOR_ONE
    ) as sup:
        await sup.ref("registry").cast(Crash())
        await trio.testing.wait_all_tasks_blocked()
        tree = sup.tree()
    assert tree.kind is NodeKind.SUPERVISOR
    assert tree.strategy is Strategy.REST_FOR_ONE
    assert tree.restarts_in_window == 1
    registry = tree.find("registry")
    assert (registry.generation, registry.restarts_in_window) == (1, 1)
    assert registry.last_exit is not None
    assert registry.last_exit.kind is ExitKind.ERROR
    assert registry.mailbox is not None
    assert registry.mailbox.capacity == 64
    tickets = tree.find("tickets")
    assert (tickets.kind, tickets.generation, tickets.restart) == (
        NodeKind.SUPERVISOR,
        1,
        Restart.PERMANENT,
    )
    t0 = tree.find("tickets", "t0")
    assert t0.path == ("engine", "tickets", "t0")
    assert t0.mailbox is not None
    assert t0.mailbox.capacity == 4
    assert [node.name for node in tree.walk()] == ["engine", "registry", "tickets", "t0"]
    picture = tree.render()
    assert picture.splitlines()[0] == "engine supervisor rest_for_one running gen=0 restarts=1"
    assert "`- t0 worker permanent running gen=1" in picture
    with pytest.raises(LookupError, match="no child named 'nope'"):
        tree.find("tickets", "nope")


async def test_event_subscribers_never_slow_the_runtime(autojump_clock: trio.abc.Clock) -> None:
    nested = supervisor_spec("inner", [worker("w")], intensity=RestartIntensity(10, 5))
    sup = Supervisor([worker("a"), nested], name="app", intensity=RestartIntensity(10, 5))
    tiny = sup.subscribe(max_buffer=1)
    everything = sup.subscribe()
    async with trio.open_nursery() as nursery:
        await nursery.start(sup.run)
        inner = sup.supervisor("inner").subscribe()
        for _ in range(3):
            await sup.ref(("inner", "w")).cast(Crash())
            await trio.testing.wait_all_tasks_blocked()
        await sup.stop()
    all_events = [event async for event in everything]
    inner_events = [event async for event in inner]
    assert len(all_events) == 3 + 3 * 3 + 3  # starts, 3 x (exit, restarting, start), stops
    assert all(event.path[:2] == ("app", "inner") for event in inner_events)
    assert len(inner_events) == 3 * 3 + 2  # its subtree only: crashes, and the final stops
    assert [event async for event in tiny] == all_events[:1]
    assert tiny.dropped == len(all_events) - 1
    with pytest.raises(ValueError, match="max_buffer"):
        sup.subscribe(max_buffer=0)


# -- exceptions and cancellation -----------------------------------------------------------------


async def test_the_bodys_exception_is_raised_as_itself(autojump_clock: trio.abc.Clock) -> None:
    log: list[tuple[str, str, float]] = []
    with pytest.raises(ValueError, match="from the body"):
        async with open_supervisor([ChildSpec(n, slow_starter(log)) for n in "ab"]):
            raise ValueError("from the body")
    assert [(what, who) for what, who, _ in log if what == "stop"] == [("stop", "b"), ("stop", "a")]


async def test_keyboard_interrupt_is_never_swallowed(autojump_clock: trio.abc.Clock) -> None:
    async def interrupted(
        ctx: ActorContext[object], *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        task_status.started()
        await trio.sleep(1)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        async with open_supervisor([worker("a"), ChildSpec("ki", interrupted)]):
            await trio.sleep_forever()


async def test_outside_cancellation_ends_the_tree_and_fails_its_callers(
    autojump_clock: trio.abc.Clock,
) -> None:
    outcome: list[tuple[str, float]] = []
    baseline = trio.lowlevel.current_statistics().tasks_living

    async def ask_forever(ref: ActorRef[Command]) -> None:
        try:
            await ref.call(Echo, timeout=math.inf)
        except ActorDeadError:
            outcome.append(("dead", trio.current_time()))

    async with trio.open_nursery() as outside:
        with trio.move_on_after(3):
            async with open_supervisor(
                [worker("a"), supervisor_spec("inner", [worker("w")])], name="app"
            ) as sup:
                ref = sup.ref(("inner", "w"))
                await ref.cast(Hang())  # it will never answer
                outside.start_soon(ask_forever, ref)
                await trio.sleep_forever()
    assert outcome == [("dead", 3.0)]  # the caller outside the tree was not left hanging
    assert trio.lowlevel.current_statistics().tasks_living == baseline
    assert sup.state is NodeState.STOPPED
    assert all(n.state is NodeState.STOPPED for n in sup.tree().walk())


# -- life cycle and validation ---------------------------------------------------------------


async def test_life_cycle_errors(autojump_clock: trio.abc.Clock) -> None:
    sup = Supervisor([worker("a")], name="app")
    sup.request_stop()  # not running: nothing to do
    with pytest.raises(RuntimeError, match="not running; start it with"):
        await sup.start_child(worker("b"))
    async with trio.open_nursery() as nursery:
        await nursery.start(sup.run)
        ref = sup.ref("a")
        assert repr(ref) == "<ActorRef app/a generation=0 alive>"
        with pytest.raises(RuntimeError, match="already ran"):
            await sup.run()
        await sup.stop()
    assert repr(ref) == "<ActorRef app/a generation=0 dead>"
    with pytest.raises(ActorDeadError, match=r"app .*has ended"):
        await sup.start_child(worker("b"))
    with pytest.raises(ActorDeadError):
        await sup.terminate_child("a")
    await sup.stop()  # idempotent
    assert repr(sup) == "<Supervisor app one_for_one stopped children=['a']>"


def test_specs_are_validated() -> None:
    with pytest.raises(ValueError, match="without '/'"):
        worker("a/b")
    with pytest.raises(ValueError, match="shutdown"):
        worker("a", shutdown=-1.0)
    with pytest.raises(ValueError, match="mailbox_size"):
        worker("a", mailbox_size=1.5)
    with pytest.raises(DuplicateChildError, match="two children are named 'a'"):
        Supervisor([worker("a"), worker("a")])
    with pytest.raises(DuplicateChildError):
        supervisor_spec("inner", [worker("a"), worker("a")])
    with pytest.raises(ValueError, match="supervisor name"):
        Supervisor(name="")
    with pytest.raises(ValueError, match="wait"):
        Supervisor().named_ref("a", wait=-1)


async def test_the_context_describes_the_incarnation(autojump_clock: trio.abc.Clock) -> None:
    contexts: list[ActorContext[object]] = []

    async def introspective(
        ctx: ActorContext[object], *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        contexts.append(ctx)
        task_status.started()
        async for _ in ctx.mailbox:
            raise RuntimeError("any message crashes me")

    nested = supervisor_spec("inner", [ChildSpec("me", introspective)])
    async with open_supervisor([nested], name="app") as sup:
        await sup.ref(("inner", "me")).cast("crash")
        await trio.testing.wait_all_tasks_blocked()
        first, second = contexts
        assert (first.name, first.path, first.generation) == ("me", ("app", "inner", "me"), 0)
        assert second.generation == 1
        assert second.ref is sup.ref(("inner", "me"))
        assert not first.ref.is_alive
        stop_requested = [second.stop_requested]
    stop_requested.append(second.stop_requested)
    assert stop_requested == [False, True]
    assert not second.mailbox.statistics().alive


async def test_subscribing_to_a_finished_tree_gives_an_ended_stream(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with open_supervisor([worker("a")], name="app") as sup:
        pass
    with sup.subscribe() as events:
        with pytest.raises(trio.EndOfChannel):
            await events.receive()
        assert events.dropped == 0


async def test_a_healthy_child_restarts_at_once_and_outside_the_intensity(
    autojump_clock: trio.abc.Clock,
) -> None:
    # Each incarnation works for 10 s: the first two fail before becoming healthy, the rest
    # mark themselves healthy first. Healthy failures neither wait nor count toward an
    # intensity of 3, so twenty of them do not make the supervisor give up.
    policy = BackoffPolicy(initial=1.0, maximum=4.0, jitter=Jitter.NONE)
    incarnations: list[int] = []

    async def flaky(
        ctx: ActorContext[object], *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        task_status.started()
        incarnations.append(ctx.generation)
        await trio.sleep(10.0)
        if len(incarnations) > 2:
            ctx.mark_healthy()
            assert ctx.healthy
        raise RuntimeError("connection dropped")

    supervisor = Supervisor(
        [ChildSpec("conn", flaky)],
        name="app",
        intensity=RestartIntensity(3, 1000),
        backoff=policy,
        rng=random.Random(1),
    )
    with supervisor.subscribe() as events:
        async with trio.open_nursery() as nursery:
            await nursery.start(supervisor.run)
            seen = await until(
                events, lambda e: isinstance(e, Restarting) and len(incarnations) >= 22
            )
            nursery.cancel_scope.cancel()
    delays = [e.delay for e in seen if isinstance(e, Restarting)]
    # Two unhealthy failures back off (1 s, 2 s); after each healthy one the restart is
    # immediate and the backoff starts again from its first step.
    assert delays[:3] == [1.0, 2.0, 0.0]
    assert set(delays[3:]) == {0.0}
    assert not [e for e in seen if isinstance(e, GaveUp)]


async def test_after_a_healthy_failure_the_backoff_starts_again(
    autojump_clock: trio.abc.Clock,
) -> None:
    policy = BackoffPolicy(initial=1.0, maximum=8.0, jitter=Jitter.NONE)
    plan = [False, False, True, False, False]  # healthy before failing?

    async def child(
        ctx: ActorContext[object], *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        task_status.started()
        await trio.sleep(1.0)
        if plan[ctx.generation % len(plan)]:
            ctx.mark_healthy()
        raise RuntimeError("lost")

    supervisor = Supervisor(
        [ChildSpec("conn", child)],
        name="app",
        intensity=RestartIntensity(100, 1000),
        backoff=policy,
        rng=random.Random(1),
    )
    with supervisor.subscribe() as events:
        async with trio.open_nursery() as nursery:
            await nursery.start(supervisor.run)
            seen = await until(events, lambda e: isinstance(e, Restarting) and e.generation >= 4)
            nursery.cancel_scope.cancel()
    delays = [e.delay for e in seen if isinstance(e, Restarting)]
    assert delays == [1.0, 2.0, 0.0, 1.0, 2.0]
