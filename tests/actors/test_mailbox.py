"""Mailboxes, cast and call: delivery, replies, timeouts, and callers of dead actors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import attrs
import pytest
import trio
import trio.testing

from actors import (
    ActorContext,
    ActorDeadError,
    ActorFunction,
    ActorRef,
    CallTimeoutError,
    ChildSpec,
    Mailbox,
    Reply,
    ReplyAlreadySentError,
    Restart,
    Supervisor,
    open_supervisor,
)


@attrs.frozen
class Put:
    value: int


@attrs.frozen
class Get:
    reply: Reply[list[int]]


@attrs.frozen
class Reject:
    reply: Reply[int]


@attrs.frozen
class Stash:
    """Keep the reply without answering it (the test answers later, or never)."""

    reply: Reply[int]


@attrs.frozen
class Block:
    """Stop reading the mailbox until the probe releases it."""


@attrs.frozen
class Die:
    pass


Message = Put | Get | Reject | Stash | Block | Die


@attrs.define
class Probe:
    items: list[int] = attrs.field(factory=list)
    stashed: list[Reply[int]] = attrs.field(factory=list)
    release: trio.Event = attrs.field(factory=trio.Event)


class Invalid(Exception):
    pass


def store(probe: Probe) -> ActorFunction[Message]:
    async def run(
        ctx: ActorContext[Message], *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        task_status.started()
        async for message in ctx.mailbox:
            if isinstance(message, Put):
                probe.items.append(message.value)
            elif isinstance(message, Get):
                message.reply.send(list(probe.items))
            elif isinstance(message, Reject):
                message.reply.fail(Invalid("rejected on purpose"))
            elif isinstance(message, Stash):
                probe.stashed.append(message.reply)
            elif isinstance(message, Block):
                await probe.release.wait()
            else:
                raise RuntimeError("told to die")

    return run


@asynccontextmanager
async def running_store(
    probe: Probe, *, mailbox_size: int = 8, grace: float = 1.0
) -> AsyncIterator[tuple[Supervisor, ActorRef[Message]]]:
    spec = ChildSpec("store", store(probe), mailbox_size=mailbox_size, shutdown=grace)
    async with open_supervisor([spec], name="app") as supervisor:
        yield supervisor, supervisor.ref(spec)


async def test_cast_delivers_in_order_and_call_answers(autojump_clock: trio.abc.Clock) -> None:
    probe = Probe()
    async with running_store(probe) as (_, ref):
        for value in range(20):
            await ref.cast(Put(value))
        assert await ref.call(Get) == list(range(20))
        assert ref.path == ("app", "store")
        assert ref.name == "store"
        assert ref.generation == 0
        assert ref.is_alive


async def test_reply_fail_raises_the_error_at_the_caller(autojump_clock: trio.abc.Clock) -> None:
    async with running_store(Probe()) as (_, ref):
        with pytest.raises(Invalid, match="rejected on purpose"):
            await ref.call(Reject)
        assert ref.is_alive  # a protocol error is not a crash


async def test_call_times_out_and_the_late_answer_is_dropped(
    autojump_clock: trio.abc.Clock,
) -> None:
    probe = Probe()
    async with running_store(probe) as (_, ref):
        start = trio.current_time()
        with pytest.raises(CallTimeoutError, match=r"app/store \(generation 0\) did not reply"):
            await ref.call(Stash, timeout=2.5)
        assert trio.current_time() - start == pytest.approx(2.5)
        (reply,) = probe.stashed
        assert reply.abandoned
        reply.send(1)  # never blocks, never raises: the caller has gone
        assert reply.answered
        assert ref.statistics().calls_pending == 0


async def test_a_reply_is_answered_once(autojump_clock: trio.abc.Clock) -> None:
    probe = Probe()
    async with running_store(probe) as (_, ref), trio.open_nursery() as nursery:
        result: list[int] = []

        async def ask() -> None:
            result.append(await ref.call(Stash))

        nursery.start_soon(ask)
        await trio.testing.wait_all_tasks_blocked()
        (reply,) = probe.stashed
        reply.send(7)
        with pytest.raises(ReplyAlreadySentError):
            reply.send(8)
        with pytest.raises(ReplyAlreadySentError):
            reply.fail(Invalid())
        with pytest.raises(TypeError, match="Exception instance"):
            reply.fail(KeyboardInterrupt())  # type: ignore[arg-type]
    assert result == [7]


async def test_callers_of_a_dead_actor_fail_at_once(autojump_clock: trio.abc.Clock) -> None:
    """A waiting caller, a sender blocked on a full mailbox and later senders all fail promptly."""
    probe = Probe()
    outcomes: dict[str, tuple[str, float]] = {}
    async with running_store(probe, mailbox_size=1) as (supervisor, ref):

        async def attempt(label: str, message: Message | None) -> None:
            try:
                if message is None:
                    await ref.call(Stash, timeout=1_000)
                else:
                    await ref.cast(message)
            except ActorDeadError as error:
                outcomes[label] = (str(error), trio.current_time())
            else:
                outcomes[label] = ("delivered", trio.current_time())

        await ref.cast(Block())
        async with trio.open_nursery() as nursery:
            nursery.start_soon(attempt, "waiting for a reply", None)
            await trio.testing.wait_all_tasks_blocked()
            nursery.start_soon(attempt, "blocked on a full mailbox", Put(1))
            await trio.testing.wait_all_tasks_blocked()
            assert ref.statistics().senders_waiting == 1
            await trio.sleep(10)  # virtual: nobody is answered while the actor is blocked
            assert outcomes == {}
            died_at = trio.current_time()
            # Dying: the stop request closes the mailbox, the actor (blocked) is cancelled.
            await supervisor.terminate_child("store")
        assert outcomes["blocked on a full mailbox"][1] == died_at
        assert outcomes["waiting for a reply"][1] == died_at + 1.0  # after the 1 s grace
        assert "has ended" in outcomes["waiting for a reply"][0]
        assert not ref.is_alive
        with pytest.raises(ActorDeadError, match=r"app/store \(generation 0\) has ended"):
            await ref.cast(Put(2))
        with pytest.raises(ActorDeadError):
            ref.cast_nowait(Put(2))
        with pytest.raises(ActorDeadError):
            await ref.call(Get)


async def test_a_crash_fails_pending_calls(autojump_clock: trio.abc.Clock) -> None:
    probe = Probe()
    async with running_store(probe) as (_, ref), trio.open_nursery() as nursery:

        async def ask() -> None:
            with pytest.raises(ActorDeadError):
                await ref.call(Stash, timeout=1_000)

        nursery.start_soon(ask)
        await trio.testing.wait_all_tasks_blocked()
        start = trio.current_time()
        await ref.cast(Die())
    assert trio.current_time() == start


async def test_a_stop_request_drains_the_mailbox_first(autojump_clock: trio.abc.Clock) -> None:
    probe = Probe()
    async with running_store(probe, mailbox_size=64) as (supervisor, ref):
        await ref.cast(Block())
        for value in range(5):
            ref.cast_nowait(Put(value))
        supervisor.request_stop()
        await trio.testing.wait_all_tasks_blocked()
        with pytest.raises(ActorDeadError, match="is stopping"):
            await ref.cast(Put(99))
        probe.release.set()
    assert probe.items == [0, 1, 2, 3, 4]


async def test_cast_nowait_on_a_full_mailbox_would_block(autojump_clock: trio.abc.Clock) -> None:
    probe = Probe()
    async with running_store(probe, mailbox_size=2) as (_, ref):
        await ref.cast(Block())
        await trio.testing.wait_all_tasks_blocked()
        ref.cast_nowait(Put(1))
        ref.cast_nowait(Put(2))
        with pytest.raises(trio.WouldBlock):
            ref.cast_nowait(Put(3))
        stats = ref.statistics()
        assert (stats.capacity, stats.buffered, stats.peak_buffered) == (2, 2, 2)
        assert stats.accepting
        assert stats.alive
        probe.release.set()
        assert await ref.call(Get) == [1, 2]
        assert ref.statistics().buffered == 0
        assert ref.statistics().peak_buffered == 2


async def test_statistics_count_pending_calls(autojump_clock: trio.abc.Clock) -> None:
    probe = Probe()
    async with running_store(probe) as (_, ref), trio.open_nursery() as nursery:
        for _ in range(3):
            nursery.start_soon(lambda: ref.call(Stash))
        await trio.testing.wait_all_tasks_blocked()
        assert ref.statistics().calls_pending == 3
        for reply in probe.stashed:
            reply.send(0)
    assert ref.statistics().calls_pending == 0


def test_handles_have_no_public_constructor() -> None:
    for cls in (ActorRef, Reply, Mailbox):
        with pytest.raises(TypeError, match="no public constructor"):
            cls()  # type: ignore[call-arg]


@attrs.frozen
class _Ask:
    reply: Reply[int]


async def test_a_forwarded_request_can_be_answered_after_the_forwarder_died(
    autojump_clock: object,
) -> None:
    outcomes: list[str] = []
    answered = trio.Event()

    async def responder(
        ctx: ActorContext[_Ask], *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        task_status.started()
        async for message in ctx.mailbox:
            await trio.sleep(1)
            message.reply.send(42)  # the caller is gone: dropped, and no error for us
            outcomes.append("responder answered")
            answered.set()

    async def forwarder(
        ctx: ActorContext[_Ask], *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        task_status.started()
        async for message in ctx.mailbox:
            await supervisors[0].ref("responder").cast(message)
            raise RuntimeError("dies after forwarding")

    supervisors: list[Supervisor] = []
    specs: list[ChildSpec[Any]] = [
        ChildSpec("responder", responder),
        ChildSpec("forwarder", forwarder, restart=Restart.TEMPORARY),
    ]
    async with open_supervisor(specs) as supervisor:
        supervisors.append(supervisor)
        with pytest.raises(ActorDeadError):
            await supervisor.ref("forwarder").call(_Ask, timeout=10)
        with trio.fail_after(60):
            await answered.wait()
        assert supervisor.tree().children[0].generation == 0  # the responder never crashed
    assert outcomes == ["responder answered"]


async def test_a_cancelled_caller_abandons_its_request_in_the_same_step(
    autojump_clock: trio.abc.Clock,
) -> None:
    # The race behind orphan subscriptions: the caller's cancellation is delivered, then the
    # actor runs before the caller does. The actor must already see the request abandoned.
    probe = Probe()
    async with running_store(probe) as (_, ref), trio.open_nursery() as nursery:
        outcome: list[str] = []

        async def ask(scope: trio.CancelScope) -> None:
            with scope:
                outcome.append(f"answered {await ref.call(Stash)}")
            if scope.cancelled_caught:
                outcome.append("cancelled")

        scope = trio.CancelScope()
        nursery.start_soon(ask, scope)
        await trio.testing.wait_all_tasks_blocked()
        (reply,) = probe.stashed
        scope.cancel()
        assert reply.abandoned, "abandoned as soon as the cancellation reached the caller"
        reply.send(1)  # what an actor running first would do: dropped, the caller is leaving
        await trio.testing.wait_all_tasks_blocked()
        assert outcome == ["cancelled"]

        # The other order: the answer wins, and the caller gets it despite a later cancel.
        second = trio.CancelScope()
        nursery.start_soon(ask, second)
        await trio.testing.wait_all_tasks_blocked()
        later = probe.stashed[-1]
        later.send(2)
        second.cancel()
        assert not later.abandoned
        await trio.testing.wait_all_tasks_blocked()
        assert outcome == ["cancelled", "answered 2"]
