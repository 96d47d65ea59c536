"""The registry actor through the engine: stale reports, single-writer ordering, recovery."""

from __future__ import annotations

import trio
from trio.testing import MockClock

from actors import ActorRef, NodeState, Reply
from engine.core.keys import StreamKey
from engine.core.registry import TicketChange
from engine.events import Gap
from engine.facade.engine import Engine
from engine.runtime.registry_messages import (
    BufferFailed,
    RegistryCommand,
    SnapshotSeen,
    TicketConnected,
    TicketLost,
    TicketSent,
)
from engine.testing import Emulator

from ._engine_support import (
    WAIT,
    collect,
    emulator_set,
    engine_on_emulator,
    settle,
    subscribe_requests,
    until,
    wire_set,
)


def registry_ref(eng: Engine) -> ActorRef[RegistryCommand]:
    ref = eng._core.registry_ref  # tests look inside
    assert ref is not None
    return ref


async def running_ticket_ref(eng: Engine, emu: Emulator, name: str) -> ActorRef[TicketChange]:
    tickets = eng._core.tickets_supervisor()
    with trio.fail_after(WAIT):  # the supervisor acknowledges started() just after the replay
        await emu.wait_for(lambda: tickets.tree().find(name).state is NodeState.RUNNING)
    ref: ActorRef[TicketChange] = tickets.ref(name)
    return ref


async def barrier(eng: Engine) -> None:
    """Return once the registry handled everything cast before (its mailbox is in order)."""
    await eng.cleanup_inactive(inactive_after=1e9)


async def test_reports_of_an_older_connection_change_nothing(autojump_clock: MockClock) -> None:
    async with engine_on_emulator() as (eng, emu):
        sub_id = await eng.subscribe_realtime("ticker", ["KRW-BTC", "KRW-ETH"])
        stream = eng.stream(sub_id)
        await settle(eng, emu)
        registry = eng._core.registry
        old = registry.ticket_status("realtime-0").generation
        (first,) = emu.connections(open_only=True)
        await emu.drop(first.conn_id)
        await until(stream, lambda item: isinstance(item, Gap))
        await settle(eng, emu)
        before = registry.ticket_status("realtime-0")
        assert old is not None
        assert before.generation is not None
        assert before.generation > old

        ticket = await running_ticket_ref(eng, emu, "realtime-0")
        ref = registry_ref(eng)
        ref.cast_nowait(TicketLost("realtime-0", old, "late report of the dropped socket", 0.0))
        ref.cast_nowait(TicketSent("realtime-0", old, (), (), trio.current_time()))

        def stale_connect(reply: Reply[list[TicketChange]]) -> TicketConnected:
            return TicketConnected("realtime-0", old, ticket, reply)

        assert await ref.call(stale_connect, timeout=WAIT) == []  # no replay for the past
        await barrier(eng)

        after = registry.ticket_status("realtime-0")
        assert (after.generation, after.sent, after.queued) == (
            before.generation,
            before.sent,
            before.queued,
        )
        assert eng.subscription(sub_id).state.value == "active"
        await trio.sleep(5)
        (conn,) = emu.connections(open_only=True)
        assert len(emu.connections()) == 2  # no reconnect was triggered
        assert len(subscribe_requests(emu, conn.conn_id)) == 1
        assert eng.metrics().connection_losses == 1
        # Changes still reach the live connection (the stale report did not replace its ref).
        await eng.modify_subscription(sub_id, ["KRW-BTC", "KRW-ETH", "KRW-SOL"])
        await settle(eng, emu)
        assert ("ticker", "KRW-SOL") in emulator_set(emu, conn.conn_id)


async def test_reports_for_unknown_subscriptions_are_ignored(autojump_clock: MockClock) -> None:
    async with engine_on_emulator() as (eng, emu):
        sub_id = await eng.subscribe_realtime("trade", ["KRW-XRP"])
        await settle(eng, emu)
        ref = registry_ref(eng)
        key = StreamKey("trade", "KRW-XRP")
        ref.cast_nowait(BufferFailed("sub-999", "overflow"))
        ref.cast_nowait(SnapshotSeen("realtime-0", key, "sub-999", trio.current_time()))
        await barrier(eng)
        assert eng.metrics().subscriptions_broken == 0
        assert eng.subscription(sub_id).state.value == "active"
        assert eng.debug_tree().actors.find("registry").restarts_in_window == 0


async def test_a_crashed_registry_restarts_and_every_ticket_replays(
    autojump_clock: MockClock,
) -> None:
    async with engine_on_emulator() as (eng, emu):
        first = await eng.subscribe_realtime("ticker", ["KRW-BTC"])
        second = await eng.subscribe_realtime("trade", ["KRW-ETH"])
        stream = eng.stream(first)
        await collect(stream, 2)
        await settle(eng, emu)
        (before,) = emu.connections(open_only=True)
        # A report naming a ticket that does not exist is a bug in the sender: it crashes the
        # registry actor, and rest_for_one restarts it with everything started after it.
        registry_ref(eng).cast_nowait(TicketSent("realtime-9", 1, (), (), 0.0))
        with trio.fail_after(WAIT):
            await emu.wait_closed(before.conn_id)
        await until(stream, lambda item: isinstance(item, Gap))
        await settle(eng, emu)
        (after,) = emu.connections(open_only=True)
        (replay,) = subscribe_requests(emu, after.conn_id)
        assert list(wire_set(replay)) == [("ticker", "KRW-BTC"), ("trade", "KRW-ETH")]
        assert emulator_set(emu, after.conn_id) == {("ticker", "KRW-BTC"), ("trade", "KRW-ETH")}
        assert eng.debug_tree().actors.find("registry").restarts_in_window == 1
        assert {eng.subscription(s).state.value for s in (first, second)} == {"active"}
        # The facade keeps working against the new incarnation.
        third = await eng.subscribe_realtime("ticker", ["KRW-XRP"])
        await settle(eng, emu)
        assert ("ticker", "KRW-XRP") in emulator_set(emu, after.conn_id)
        assert eng.subscription(third).tickets == ("realtime-0",)
