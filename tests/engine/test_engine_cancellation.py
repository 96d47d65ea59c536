"""Property: every public async call of the engine facade is cancellation safe.

Each call either returns (its effect made) or raises ``trio.Cancelled`` and leaves no trace:
the registry skips a command whose caller was cancelled before its turn, and ``ActorRef.call``
raises ``Cancelled`` only when the actor never acted. The test draws a sequence of calls, each
with a point at which its caller is cancelled (``N`` steps of the calling task after the call
started, ``0`` = before it started, ``None`` = never), and after each call lets the engine settle
and compares it with a model of what the caller was told:

* the registry's live subscriptions and their codes are those returned by ``subscribe_realtime``,
  minus those whose unsubscribe (or ``cleanup_inactive`` release) returned, with the codes of
  the last ``modify_subscription`` that returned;
* the emulator's open realtime connections carry exactly those subscriptions' streams (each
  connection what the registry wants for its ticket, and all of them together the model's
  streams; a parked ticket's snapshot-only ticker is ignored);
* ``metrics()`` counts returned subscribe/modify calls as succeeded, cancelled ones as
  cancelled, none as failed, and no snapshot request stays in flight;
* ``detect_conflicts()`` reports exactly the model's duplicate groups.

Besides the calls, a step may close a subscription's stream (the reader leaving), so that
``cleanup_inactive`` has something to release: a returned cleanup released every closed one.

Each example runs a fresh emulator and engine under a MockClock (``trio.run`` per example).
``HYPOTHESIS_PROFILE=cancel-long`` (with ``CANCEL_EXAMPLES=n``, default 200) runs more::

    HYPOTHESIS_PROFILE=cancel-long CANCEL_EXAMPLES=500 uv run pytest -q -p no:randomly \\
        tests/engine/test_engine_cancellation.py

Whether a call cancelled mid-way returns depends on how Trio interleaves it with the engine's
tasks, so a failure may not reproduce every time; Hypothesis then shrinks until its time limit
(about five minutes) before it reports.

The plain tests at the end reproduce the original report through the public API: cancelled
``subscribe_realtime`` calls left subscriptions nobody knew of.
"""

from __future__ import annotations

import contextlib
import functools
import os
import random
import re
from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import Any, Generic, TypeVar, cast

import attrs
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from trio.testing import MockClock

from engine.core.keys import StreamKey
from engine.core.registry import ConflictKind, SubscriptionState
from engine.errors import InvalidSubscriptionError
from engine.facade.engine import Engine
from engine.observability.records import SnapshotUsage
from engine.runtime.registry_messages import CleanupOutcome
from engine.testing import Emulator

from ._engine_support import WAIT, emulator_set, engine_on_emulator

T = TypeVar("T")

settings.register_profile(
    "cancel-ci",
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "cancel-long",
    max_examples=int(os.environ.get("CANCEL_EXAMPLES", "200")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

CODES = ("KRW-BTC", "KRW-ETH", "KRW-XRP", "BTC-ETH")
TYPES = ("ticker", "trade", "orderbook")
#: Engine options: several tickets in use, and no subscription failed by its unread buffer
#: (trades are lossless by default; nobody reads the streams here).
ENGINE_OPTIONS: dict[str, Any] = {"ticket_capacity": 3, "overflow": {"trade": "conflate"}}

#: Mock seconds between re-checks of a wait (see :func:`wait_until`).
RECHECK = 0.1

Wire = set[tuple[str, str]]


# -- cancelling a call after N steps of its caller ------------------------------------------------


class CancelAfterSteps(trio.abc.Instrument):
    """Cancels a scope once the armed task has taken N steps since arming.

    A step ends each time the task yields to the scheduler (a checkpoint or a schedule point),
    so N counts the call's own progress, whatever the other tasks do meanwhile.
    """

    def __init__(self) -> None:
        self._task: trio.lowlevel.Task | None = None
        self._scope: trio.CancelScope | None = None
        self._after: int | None = None
        self.steps = 0

    def arm(self, scope: trio.CancelScope, after: int | None) -> None:
        self._task = trio.lowlevel.current_task()
        self._scope = scope
        self._after = after
        self.steps = 0
        if after == 0:
            scope.cancel()

    def disarm(self) -> int:
        """Stop counting; the steps taken since :meth:`arm`."""
        self._task = None
        self._scope = None
        return self.steps

    def after_task_step(self, task: trio.lowlevel.Task) -> None:
        if self._scope is None or task is not self._task:
            return
        self.steps += 1
        if self.steps == self._after:
            self._scope.cancel()


@attrs.frozen
class Attempt(Generic[T]):
    """How a call ended: it returned ``value``, or it raised Cancelled."""

    returned: bool
    value: T | None
    #: Steps the caller took from the call's start to its end.
    steps: int

    def result(self) -> T:
        """What the call returned (a call that returned only)."""
        assert self.returned, "expected a call that returned"
        return cast(T, self.value)


async def attempt(
    canceller: CancelAfterSteps, call: Callable[[], Awaitable[T]], cancel_after: int | None
) -> Attempt[T]:
    """Run ``call()`` and cancel it ``cancel_after`` steps in (0: before it starts)."""
    returned = False
    value: T | None = None
    with trio.CancelScope() as scope:
        canceller.arm(scope, cancel_after)
        try:
            value = await call()
            returned = True
        finally:
            steps = canceller.disarm()
    if not returned:
        # Any other exception propagates: only our Cancelled ends the call without one.
        assert scope.cancelled_caught, "a call that did not return must have raised Cancelled"
    return Attempt(returned, value, steps)


@contextlib.contextmanager
def cancel_after_steps() -> Iterator[CancelAfterSteps]:
    """A :class:`CancelAfterSteps` installed in the current run for the block."""
    canceller = CancelAfterSteps()
    trio.lowlevel.add_instrument(canceller)
    try:
        yield canceller
    finally:
        trio.lowlevel.remove_instrument(canceller)


# -- the model: what the caller was told --------------------------------------------------------


@attrs.define
class Model:
    #: Live subscriptions as the caller knows them: id -> (type, codes).
    live: dict[str, tuple[str, tuple[str, ...]]] = attrs.field(factory=dict)
    #: Ids whose end the caller was told of.
    gone: set[str] = attrs.field(factory=set)
    #: Live ids whose stream the reader closed (inactive: the next cleanup releases them).
    closed: set[str] = attrs.field(factory=set)
    #: subscribe_realtime / modify_subscription calls that returned, and that were cancelled.
    succeeded: int = 0
    cancelled: int = 0

    def end(self, sub_id: str) -> None:
        """The caller was told ``sub_id`` ended."""
        del self.live[sub_id]
        self.closed.discard(sub_id)
        self.gone.add(sub_id)

    def wire(self) -> Wire:
        return {(data_type, code) for data_type, codes in self.live.values() for code in codes}

    def duplicates(self) -> set[frozenset[str]]:
        groups: dict[tuple[str, frozenset[str]], set[str]] = {}
        for sub_id, (data_type, codes) in self.live.items():
            groups.setdefault((data_type, frozenset(codes)), set()).add(sub_id)
        return {frozenset(ids) for ids in groups.values() if len(ids) > 1}


# -- checks --------------------------------------------------------------------------------------

_REALTIME_TICKET = re.compile(r"-(realtime-\d+)$")


def _last_request(emu: Emulator, conn_id: int) -> tuple[str | None, bool]:
    """The connection's realtime ticket (None for another pool, or before its first request)
    and whether its last request was snapshot-only (a parked ticket)."""
    for record in reversed(emu.requests(conn_id)):
        if record.kind != "subscribe":
            continue
        items = record.json()
        assert isinstance(items, list), f"a subscribe request is a JSON list, got {items!r}"
        match = _REALTIME_TICKET.search(str(items[0]["ticket"]))
        parked = all(item.get("is_only_snapshot") is True for item in items[1:-1])
        return (match.group(1) if match else None), parked
    return None, False


def _wire_key(key: StreamKey) -> tuple[str, str]:
    return (key.data_type, key.code if key.units is None else f"{key.code}.{key.units}")


def wire_problems(eng: Engine, emu: Emulator, expected: Wire) -> list[str]:
    """Where the emulator's open realtime connections differ from the registry and from
    ``expected`` (the union of the model's streams); empty when they match."""
    registry = eng._core.registry  # the property compares internals
    problems: list[str] = []
    carried: Wire = set()
    seen: set[str] = set()
    for conn in emu.connections(open_only=True):
        ticket, parked = _last_request(emu, conn.conn_id)
        if ticket is None:
            continue
        actual = emulator_set(emu, conn.conn_id)
        if parked and len(actual) <= 1 and all(t == "ticker" for t, _ in actual):
            actual = set()  # the parking ticker, if the emulator lists it
        if ticket in seen:
            problems.append(f"{ticket}: expected one open connection, found several")
        seen.add(ticket)
        wanted = {_wire_key(key) for key in registry.ticket_status(ticket).desired}
        if actual != wanted:
            problems.append(
                f"{ticket} (connection {conn.conn_id}): expected {sorted(wanted)} on the wire, "
                f"carries {sorted(actual)}"
            )
        carried |= actual
    for name in registry.tickets("realtime"):
        if registry.ticket_status(name).desired and name not in seen:
            problems.append(f"{name}: expected an open connection for its streams, found none")
    if carried != expected:
        problems.append(
            f"expected the model's streams {sorted(expected)} on the wire; missing "
            f"{sorted(expected - carried)}, extra {sorted(carried - expected)}"
        )
    return problems


def engine_settled(eng: Engine) -> bool:
    """Every live subscription ACTIVE and every ticket's sends confirmed (as ``settle``)."""
    registry = eng._core.registry
    if any(sub.state is not SubscriptionState.ACTIVE for sub in registry.subscriptions()):
        return False
    for name in registry.tickets():
        status = registry.ticket_status(name)
        if status.desired and not status.connected:
            return False
        if status.connected and (status.queued or status.sent is None):
            return False
    return True


async def wait_until(emu: Emulator, predicate: Callable[[], bool]) -> bool:
    """Whether ``predicate`` became true within ``WAIT`` (mock) seconds.

    Re-checked after every emulator event and at least every ``RECHECK`` seconds: an engine
    with nothing left to stream may confirm its last request after the emulator's last event,
    and then no event would come to wake a plain ``emu.wait_for``.
    """
    with trio.move_on_after(WAIT):
        while not predicate():
            with trio.move_on_after(RECHECK):
                await emu.wait_for(predicate)
        return True
    return False


async def wait_wire(eng: Engine, emu: Emulator, expected: Wire, where: str) -> None:
    """Wait until the engine settled and the wire matches ``expected``; fail listing why not."""
    if not await wait_until(emu, lambda: engine_settled(eng)):
        states = {sub.id: sub.state.value for sub in eng.subscriptions()}
        raise AssertionError(f"{where}: expected the engine to settle, states {states}")
    if not await wait_until(emu, lambda: not wire_problems(eng, emu, expected)):
        problems = "; ".join(wire_problems(eng, emu, expected))
        raise AssertionError(f"{where}: the wire never matched: {problems}")


def check_registry(eng: Engine, model: Model, where: str) -> None:
    registry = eng._core.registry
    live = {sub.id: (sub.data_types, sub.codes) for sub in registry.subscriptions()}
    expected = {sub_id: ((t,), codes) for sub_id, (t, codes) in model.live.items()}
    assert live == expected, (
        f"{where}: expected the live subscriptions {expected} (what the caller was told), "
        f"the registry has {live}"
    )
    for sub_id in model.live:
        sub = eng.subscription(sub_id)
        assert sub.is_live, f"{where}: expected {sub_id} live, it is {sub.state}"
    for sub_id in model.gone:
        try:
            sub = eng.subscription(sub_id)
        except InvalidSubscriptionError:
            continue  # forgotten: ended all the same
        assert not sub.is_live, f"{where}: expected {sub_id} ended, it is {sub.state}"


def check_metrics(eng: Engine, model: Model, where: str) -> None:
    metrics = eng.metrics()
    counted = (
        metrics.subscriptions_succeeded,
        metrics.subscriptions_cancelled,
        metrics.subscriptions_failed,
        metrics.subscriptions_broken,
    )
    expected = (model.succeeded, model.cancelled, 0, 0)
    assert counted == expected, (
        f"{where}: expected subscriptions succeeded/cancelled/failed/broken {expected}, "
        f"metrics say {counted}"
    )
    usage = eng.get_ticket_usage().snapshot
    assert isinstance(usage, SnapshotUsage), f"expected SnapshotUsage, got {usage!r}"
    assert usage.requests_in_flight == 0, (
        f"{where}: expected no snapshot request in flight (a cancelled one withdraws its ask), "
        f"found {usage.requests_in_flight}"
    )


def check_conflicts(eng: Engine, model: Model, where: str) -> None:
    found = {
        frozenset(conflict.subscriptions)
        for conflict in eng.detect_conflicts()
        if conflict.kind is ConflictKind.DUPLICATE
    }
    expected = model.duplicates()
    assert found == expected, (
        f"{where}: expected the duplicate groups {sorted(map(sorted, expected))}, "
        f"detect_conflicts reports {sorted(map(sorted, found))}"
    )


async def check_all(eng: Engine, emu: Emulator, model: Model, where: str) -> None:
    """Compare the registry with ``model`` at once and once settled, then the wire, the metrics
    and the findings."""
    check_registry(eng, model, where)
    await wait_wire(eng, emu, model.wire(), where)
    check_registry(eng, model, where)
    check_metrics(eng, model, where)
    check_conflicts(eng, model, where)


# -- the property -------------------------------------------------------------------------------

codes_st = st.lists(st.sampled_from(CODES), min_size=1, max_size=3, unique=True).map(tuple)
subscribe_st = st.tuples(st.just("subscribe"), st.sampled_from(TYPES), codes_st)
call_st = st.one_of(
    subscribe_st,
    st.tuples(st.just("modify"), st.integers(0, 7), codes_st),
    st.tuples(
        st.just("unsubscribe"),
        st.integers(0, 7),
        st.sampled_from(("unsubscribe_realtime", "soft", "hard")),
    ),
    st.tuples(st.just("optimize")),
    st.tuples(st.just("cleanup"), st.sampled_from((0.001, 0.5, 5.0, 3600.0))),
    st.tuples(st.just("snapshot"), st.sampled_from(TYPES), codes_st),
    # Not a call: the reader closes a stream, so that cleanup_inactive has something to release.
    st.tuples(st.just("close"), st.integers(0, 7)),
)
#: After how many of its caller's steps a call is cancelled; None: never. Calls take a few
#: steps, so small counts (the interesting ones) are drawn more often.
cancel_st = st.one_of(st.none(), st.integers(0, 2), st.integers(0, 8))
step_st = st.tuples(call_st, cancel_st)
#: A few subscriptions first, so that modify / unsubscribe / close find something to act on.
steps_st = st.tuples(
    st.lists(st.tuples(subscribe_st, cancel_st), min_size=1, max_size=4),
    st.lists(step_st, min_size=1, max_size=10),
).map(lambda parts: parts[0] + parts[1])


def _pick(model: Model, index: int) -> str | None:
    ids = list(model.live)
    return ids[index % len(ids)] if ids else None


async def run_step(
    eng: Engine,
    canceller: CancelAfterSteps,
    model: Model,
    call: tuple[Any, ...],
    cancel_after: int | None,
    where: str,
) -> str | None:
    """Make one call and update ``model`` by what the caller was told; how the call ended
    (``"returned"`` or ``"raised Cancelled"``), or None if the step was skipped."""
    got: Attempt[Any]
    match call:
        case ("subscribe", data_type, codes):
            got = await attempt(
                canceller, functools.partial(eng.subscribe_realtime, data_type, codes), cancel_after
            )
            if got.returned:
                assert isinstance(got.value, str), f"{where}: expected an id, got {got.value!r}"
                known = got.value in model.live or got.value in model.gone
                assert not known, f"{where}: expected a new id, got {got.value} again"
                model.live[got.value] = (data_type, codes)
                model.succeeded += 1
            else:
                model.cancelled += 1
        case ("modify", index, codes):
            sub_id = _pick(model, index)
            if sub_id is None:
                return None
            got = await attempt(
                canceller, functools.partial(eng.modify_subscription, sub_id, codes), cancel_after
            )
            if got.returned:
                model.live[sub_id] = (model.live[sub_id][0], codes)
                model.succeeded += 1
            else:
                model.cancelled += 1
        case ("unsubscribe", index, how):
            sub_id = _pick(model, index)
            if sub_id is None:
                return None
            method = {
                "unsubscribe_realtime": eng.unsubscribe_realtime,
                "soft": eng.soft_unsubscribe,
                "hard": eng.hard_unsubscribe,
            }[how]
            got = await attempt(canceller, functools.partial(method, sub_id), cancel_after)
            if got.returned:
                model.end(sub_id)
        case ("optimize",):
            got = await attempt(canceller, eng.optimize_subscriptions, cancel_after)
        case ("cleanup", inactive_after):
            got = await attempt(
                canceller,
                functools.partial(eng.cleanup_inactive, inactive_after=inactive_after),
                cancel_after,
            )
            if got.returned:
                released = set(got.result().subscriptions)
                assert released <= set(model.live), (
                    f"{where}: expected cleanup to release only subscriptions the caller holds "
                    f"{sorted(model.live)}, it released {sorted(released)}"
                )
                # Closed streams are always inactive; with an hour's grace nothing else is.
                assert released >= model.closed, (
                    f"{where}: expected cleanup to release every closed stream's subscription "
                    f"{sorted(model.closed)}, it released {sorted(released)}"
                )
                if inactive_after >= 3600.0:
                    assert released == model.closed, (
                        f"{where}: expected cleanup to release only the closed streams' "
                        f"subscriptions {sorted(model.closed)}, it released {sorted(released)}"
                    )
                for sub_id in released:
                    model.end(sub_id)
        case ("snapshot", data_type, codes):
            got = await attempt(
                canceller, functools.partial(eng.request_snapshot, data_type, codes), cancel_after
            )
            if got.returned:
                result = got.result()
                assert set(result) == set(codes), (
                    f"{where}: expected a snapshot of every code {sorted(codes)}, "
                    f"got {sorted(result)}"
                )
        case ("close", index):
            sub_id = _pick(model, index)
            if sub_id is None or sub_id in model.closed:
                return None
            eng.stream(sub_id).close()
            model.closed.add(sub_id)
            return "closed"
        case _:
            raise AssertionError(f"expected a known call, drew {call!r}")
    return "returned" if got.returned else "raised Cancelled"


async def _run(steps: list[tuple[tuple[Any, ...], int | None]]) -> None:
    with cancel_after_steps() as canceller:
        async with engine_on_emulator(**ENGINE_OPTIONS) as (eng, emu):
            await eng.wait_catalog()
            model = Model()
            for number, (call, cancel_after) in enumerate(steps):
                when = "never" if cancel_after is None else f"after {cancel_after} steps"
                where = f"step {number} {call!r} (cancel {when})"
                ended = await run_step(eng, canceller, model, call, cancel_after, where)
                if ended is not None:
                    await check_all(eng, emu, model, f"{where}, {ended}")


_PROFILE = "cancel-long" if os.environ.get("HYPOTHESIS_PROFILE") == "cancel-long" else "cancel-ci"


@settings(settings.get_profile(_PROFILE))
@given(steps_st)
def test_a_cancelled_call_leaves_no_trace(
    steps: list[tuple[tuple[Any, ...], int | None]],
) -> None:
    trio.run(_run, steps, clock=MockClock(autojump_threshold=0))


# -- regressions ---------------------------------------------------------------------------------


def _outcomes(attempts: Iterable[Attempt[Any]]) -> set[bool]:
    return {got.returned for got in attempts}


async def test_cancelled_subscribes_leave_no_phantom_subscriptions(
    autojump_clock: MockClock,
) -> None:
    """The original report: subscribe_realtime cancelled just after it started could still
    create the subscription, which nobody held (phantom duplicates, never cleaned up)."""
    rng = random.Random(20240607)
    with cancel_after_steps() as canceller:
        async with engine_on_emulator(**ENGINE_OPTIONS) as (eng, emu):
            await eng.wait_catalog()
            model = Model()
            attempts: list[Attempt[str]] = []
            for _ in range(20):
                data_type = rng.choice(TYPES)
                codes = tuple(rng.sample(CODES[:3], rng.randint(1, 2)))
                got = await attempt(
                    canceller,
                    functools.partial(eng.subscribe_realtime, data_type, codes),
                    rng.randint(0, 3),
                )
                attempts.append(got)
                if got.returned:
                    model.live[got.result()] = (data_type, codes)
                    model.succeeded += 1
                else:
                    model.cancelled += 1
            # Counts 0 and 1 always cancel (before anything is sent); 2 and 3 race the
            # registry (about half return), so how many return varies from run to run.
            assert model.cancelled > 0, (
                "expected some subscribes to be cancelled, "
                f"got {[(got.returned, got.steps) for got in attempts]}"
            )
            where = f"after {model.succeeded} subscribes returned, {model.cancelled} cancelled"
            await check_all(eng, emu, model, where)
            live = eng.subscriptions()
            assert len(live) == len(model.live), (
                f"expected {len(model.live)} live subscriptions (the ids returned), "
                f"found {len(live)}"
            )
            assert eng.metrics().subscriptions_cancelled == model.cancelled, (
                f"expected {model.cancelled} cancelled subscribes in the metrics"
            )
            # Closing every stream the caller holds makes exactly those inactive: cleanup
            # releases all of them and leaves nothing behind.
            for sub_id in model.live:
                eng.stream(sub_id).close()
            outcome = await eng.cleanup_inactive(inactive_after=3600.0)
            assert set(outcome.subscriptions) == set(model.live), (
                f"expected cleanup to release the {len(model.live)} subscriptions held, "
                f"released {outcome.subscriptions}"
            )
            for sub_id in outcome.subscriptions:
                model.end(sub_id)
            left = [sub.id for sub in eng.subscriptions()]
            assert left == [], f"expected no live subscription after cleanup, found {left}"
            await check_all(eng, emu, model, "after cleanup")


async def test_a_cancelled_modify_changes_all_codes_or_none(autojump_clock: MockClock) -> None:
    old, new = ("KRW-BTC", "KRW-ETH"), ("KRW-ETH", "KRW-XRP")
    with cancel_after_steps() as canceller:
        async with engine_on_emulator(**ENGINE_OPTIONS) as (eng, emu):
            await eng.wait_catalog()
            model = Model()
            # A neighbour on another code keeps its stream throughout.
            model.live[await eng.subscribe_realtime("trade", ["BTC-ETH"])] = ("trade", ("BTC-ETH",))
            model.succeeded += 1
            attempts: list[Attempt[None]] = []
            for cancel_after in range(7):
                sub_id = await eng.subscribe_realtime("ticker", old)
                model.live[sub_id] = ("ticker", old)
                model.succeeded += 1
                where = f"modify cancelled after {cancel_after} steps"
                await check_all(eng, emu, model, f"before the {where}")
                got = await attempt(
                    canceller,
                    functools.partial(eng.modify_subscription, sub_id, new),
                    cancel_after,
                )
                attempts.append(got)
                if got.returned:
                    model.live[sub_id] = ("ticker", new)
                    model.succeeded += 1
                else:
                    model.cancelled += 1
                where = f"{where} ({'returned' if got.returned else 'cancelled'})"
                codes = eng.subscription(sub_id).codes
                assert codes == model.live[sub_id][1], (
                    f"{where}: expected the codes {model.live[sub_id][1]}, never a mix, "
                    f"found {codes}"
                )
                await check_all(eng, emu, model, where)
                await eng.unsubscribe_realtime(sub_id)
                model.end(sub_id)
                await check_all(eng, emu, model, f"{where}, then unsubscribed")
            assert _outcomes(attempts) == {True, False}, (
                "expected modify cancelled at 0..6 steps both to return and to be cancelled, "
                f"got {[(got.returned, got.steps) for got in attempts]}"
            )


async def test_a_cancelled_cleanup_releases_everything_it_reports_or_nothing(
    autojump_clock: MockClock,
) -> None:
    with cancel_after_steps() as canceller:
        # One code per ticket: releasing a subscription empties its ticket, which cleanup
        # closes and waits for (the wait a late cancellation interrupts).
        options = {**ENGINE_OPTIONS, "ticket_capacity": 1}
        async with engine_on_emulator(**options) as (eng, emu):
            await eng.wait_catalog()
            model = Model()
            attempts: list[Attempt[CleanupOutcome]] = []
            for cancel_after in range(9):
                idle = await eng.subscribe_realtime("ticker", ["KRW-BTC"])
                kept = await eng.subscribe_realtime("ticker", ["KRW-ETH"])
                model.live.update({idle: ("ticker", ("KRW-BTC",)), kept: ("ticker", ("KRW-ETH",))})
                model.succeeded += 2
                where = f"cleanup cancelled after {cancel_after} steps"
                await check_all(eng, emu, model, f"before the {where}")
                eng.stream(idle).close()
                got = await attempt(
                    canceller,
                    functools.partial(eng.cleanup_inactive, inactive_after=3600.0),
                    cancel_after,
                )
                attempts.append(got)
                if got.returned:
                    released = got.result().subscriptions
                    assert released == (idle,), (
                        f"{where}: expected cleanup to release {idle} only, released {released}"
                    )
                    model.end(idle)
                where = f"{where} ({'returned' if got.returned else 'cancelled'})"
                await check_all(eng, emu, model, where)
                for sub_id in list(model.live):
                    await eng.unsubscribe_realtime(sub_id)
                    model.end(sub_id)
                await check_all(eng, emu, model, f"{where}, then unsubscribed")
            assert _outcomes(attempts) == {True, False}, (
                "expected cleanup cancelled at 0..8 steps both to return and to be cancelled, "
                f"got {[(got.returned, got.steps) for got in attempts]}"
            )
