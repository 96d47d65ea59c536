"""Ticket failures: restart with backoff, ordered replay, Interrupted/Gap, metrics; server
restarts; a ticket that exceeds its restart intensity."""

from __future__ import annotations

import pytest
import trio
from trio.testing import MockClock

from actors import NodeState, Restarting
from engine.core.connection_state import ConnectionState
from engine.errors import SubscriptionFailedError
from engine.events import Gap
from engine.testing import Emulator
from engine.testing.introspection import ConnectionInfo

from ._engine_support import (
    MAJORS,
    WAIT,
    collect,
    emulator_set,
    engine_on_emulator,
    messages,
    settle,
    subscribe_requests,
    until,
    wire_set,
)


def ticket_of(emu: Emulator, conn_id: int) -> str | None:
    """The engine ticket (``realtime-0``...) a connection belongs to, from its first request."""
    requests = subscribe_requests(emu, conn_id)
    if not requests:
        return None
    first = requests[0].json()
    assert isinstance(first, list)
    return "-".join(str(first[0]["ticket"]).split("-")[-2:])


def connections_of(emu: Emulator, ticket: str) -> list[ConnectionInfo]:
    return [info for info in emu.connections() if ticket_of(emu, info.conn_id) == ticket]


def most_in_any_second(times: list[float]) -> int:
    ordered = sorted(times)
    return max(
        sum(1 for other in ordered[index:] if other < start + 1.0)
        for index, start in enumerate(ordered)
    )


async def test_a_dropped_connection_is_restored_and_replayed_in_order(
    autojump_clock: MockClock,
) -> None:
    async with engine_on_emulator() as (eng, emu):
        first = await eng.subscribe_realtime("ticker", ["KRW-BTC"])
        second = await eng.subscribe_realtime(["trade", "ticker"], ["KRW-ETH"])
        stream = eng.stream(first)
        await collect(stream, 2)
        await settle(eng, emu)
        (before,) = emu.connections(open_only=True)
        await emu.drop(before.conn_id)
        items = await until(stream, lambda item: isinstance(item, Gap))
        gap = items[-1]
        assert isinstance(gap, Gap)
        assert gap.codes == ("KRW-BTC",)
        assert gap.end is not None
        assert gap.end >= gap.start
        (after,) = await emu.wait_connections(1)
        assert after.conn_id != before.conn_id
        await settle(eng, emu)
        (replay,) = subscribe_requests(emu, after.conn_id)
        # One request, the whole set, types merged over codes in first-appearance order,
        # each with a fresh SNAPSHOT.
        assert list(wire_set(replay)) == [
            ("ticker", "KRW-BTC"),
            ("ticker", "KRW-ETH"),
            ("trade", "KRW-ETH"),
        ]
        assert not any(wire_set(replay).values())
        (snapshot,) = await collect(stream, 1)
        assert snapshot.stream_type == "SNAPSHOT"  # type: ignore[union-attr]
        assert emulator_set(emu, after.conn_id) == {
            ("ticker", "KRW-BTC"),
            ("trade", "KRW-ETH"),
            ("ticker", "KRW-ETH"),
        }
        metrics = eng.metrics()
        assert metrics.restarts == 1
        assert metrics.reconnects == 1
        assert metrics.connection_losses == 1
        assert metrics.resubscribe_latency.count == 1
        assert metrics.gaps == 1
        assert eng.subscription(second).state.value == "active"
        node = eng.debug_tree().actors.find("tickets", "realtime-0")
        assert node.restarts_in_window == 1


async def test_an_error_frame_restarts_the_ticket_without_losing_subscriptions(
    autojump_clock: MockClock,
) -> None:
    async with engine_on_emulator() as (eng, emu):
        sub_id = await eng.subscribe_realtime("ticker", ["KRW-XRP"])
        stream = eng.stream(sub_id)
        await collect(stream, 1)
        (before,) = emu.connections(open_only=True)
        emu.inject_error(before.conn_id, "INVALID_PARAM")
        await until(stream, lambda item: isinstance(item, Gap))
        (after,) = await emu.wait_connections(1)
        await settle(eng, emu)
        assert emulator_set(emu, after.conn_id) == {("ticker", "KRW-XRP")}
        assert eng.subscription(sub_id).state.value == "active"


async def test_a_stalled_connection_is_detected_by_the_keepalive(
    autojump_clock: MockClock,
) -> None:
    async with engine_on_emulator() as (eng, emu):
        sub_id = await eng.subscribe_realtime("ticker", ["KRW-BTC"])
        stream = eng.stream(sub_id)
        await collect(stream, 1)
        (before,) = emu.connections(open_only=True)
        emu.stall(before.conn_id)
        start = trio.current_time()
        await until(stream, lambda item: isinstance(item, Gap))
        took = trio.current_time() - start
        config = eng.config
        assert took <= config.ping_interval + config.ping_timeout + config.backoff_max
        with trio.fail_after(WAIT):
            await emu.wait_connections(1)
        await settle(eng, emu)
        assert eng.metrics().connection_losses == 1


async def test_quiet_pairs_cause_no_false_restart(autojump_clock: MockClock) -> None:
    async with engine_on_emulator(emulator={"rates": {"BTC-XRP": 0.0}}) as (eng, emu):
        sub_id = await eng.subscribe_realtime("trade", ["BTC-XRP"])
        stream = eng.stream(sub_id)
        (snapshot,) = await collect(stream, 1)
        assert snapshot.stream_type == "SNAPSHOT"  # type: ignore[union-attr]
        await trio.sleep(200)  # several ping intervals of silence on the pair
        assert eng.metrics().connection_losses == 0
        assert len(emu.connections()) == 1
        assert emu.connection(1).pings_received >= 10


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_after_a_server_restart_tickets_come_back_one_after_another_in_order(
    autojump_clock: MockClock, seed: int
) -> None:
    codes = MAJORS[:4]
    async with engine_on_emulator(realtime_pool_size=4, ticket_capacity=1, seed=seed) as (
        eng,
        emu,
    ):
        streams = []
        for code in codes:
            streams.append(eng.stream(await eng.subscribe_realtime("ticker", [code])))
        await settle(eng, emu)
        before = {info.conn_id for info in emu.connections()}
        down = trio.current_time()
        # Long enough for several failed reconnects per ticket while the server is down.
        await emu.restart(downtime=5.0)
        for stream in streams:
            await until(stream, lambda item: isinstance(item, Gap))
        await settle(eng, emu)
        back = sorted(
            (info for info in emu.connections() if info.conn_id not in before),
            key=lambda info: info.conn_id,
        )
        assert [ticket_of(emu, info.conn_id) for info in back] == [
            "realtime-0",
            "realtime-1",
            "realtime-2",
            "realtime-3",
        ]
        opened = [info.opened_at for info in back]
        assert opened == sorted(opened)
        assert min(opened) >= down + 5.0
        assert most_in_any_second([info.opened_at for info in emu.connections()]) <= 5
        # realtime-0 kept knocking while the others waited their turn behind it; the tickets
        # supervisor never gave up.
        tree = eng.debug_tree().actors
        assert tree.find("tickets").generation == 0
        with trio.fail_after(WAIT):  # the text PING follows the replay
            await emu.wait_for(
                lambda: all(
                    ticket.state is ConnectionState.READY
                    for ticket in eng.metrics().tickets.values()
                )
            )
        metrics = eng.metrics()
        assert metrics.tickets["realtime-0"].failures >= 3
        for name in ("realtime-0", "realtime-1", "realtime-2", "realtime-3"):
            ticket = metrics.tickets[name]
            assert ticket.state is ConnectionState.READY
            assert ticket.reconnects == 1


async def test_a_ticket_over_its_restart_intensity_fails_its_subscriptions_alone(
    autojump_clock: MockClock,
) -> None:
    async with engine_on_emulator(
        realtime_pool_size=2, ticket_capacity=1, max_restarts=2, restart_window=60.0
    ) as (eng, emu):
        doomed = await eng.subscribe_realtime("ticker", ["KRW-BTC"])
        other = await eng.subscribe_realtime("ticker", ["KRW-ETH"])
        assert eng.subscription(doomed).tickets == ("realtime-0",)
        assert eng.subscription(other).tickets == ("realtime-1",)
        await settle(eng, emu)
        for dropped in range(3):
            with trio.fail_after(WAIT):
                await emu.wait_for(
                    lambda: any(info.open for info in connections_of(emu, "realtime-0"))
                )
            (conn,) = [info for info in connections_of(emu, "realtime-0") if info.open]
            await emu.drop(conn.conn_id)
            assert len(connections_of(emu, "realtime-0")) == dropped + 1
        with pytest.raises(SubscriptionFailedError) as caught:
            await until(eng.stream(doomed), lambda item: False)
        cause = caught.value.cause
        assert "realtime-0 failed 3 times within 60 s" in cause
        assert "max_restarts=2" in cause
        assert "last failure: " in cause
        assert "subscribe again" in cause
        view = eng.registry()["realtime-0"]
        assert (view.status, view.state, view.error) == ("error", "failed", cause)
        metrics = eng.metrics()
        assert metrics.tickets["realtime-0"].state is ConnectionState.FAILED
        assert metrics.tickets_failed == 1
        assert metrics.restarts == 2  # the third failure was not restarted
        # No hot loop: nothing knocks for the failed ticket any more (backoff_max is 30 s).
        await trio.sleep(65)
        assert len(connections_of(emu, "realtime-0")) == 3
        # The other ticket never stopped streaming.
        assert eng.subscription(other).state.value == "active"
        assert len(messages(await collect(eng.stream(other), 3))) >= 1
        assert eng.registry()["realtime-1"].status == "active"
        # The engine stays usable: a new subscription starts the failed ticket afresh.
        again = await eng.subscribe_realtime("ticker", ["KRW-XRP"])
        assert eng.subscription(again).tickets == ("realtime-0",)
        await settle(eng, emu)
        assert eng.registry()["realtime-0"].status == "active"
        with trio.fail_after(WAIT):
            await emu.wait_for(
                lambda: eng.metrics().tickets["realtime-0"].state is ConnectionState.READY
            )
        assert eng.debug_tree().actors.find("tickets").generation == 0


async def test_a_restarted_tickets_supervisor_gets_its_tickets_back(
    autojump_clock: MockClock,
) -> None:
    async with engine_on_emulator() as (eng, emu):
        sub_id = await eng.subscribe_realtime("ticker", ["KRW-SOL"])
        stream = eng.stream(sub_id)
        await collect(stream, 1)
        await settle(eng, emu)
        (conn,) = emu.connections(open_only=True)
        tickets = eng._core.tickets_supervisor()  # tests look inside
        with tickets.subscribe() as events:
            await emu.drop(conn.conn_id)
            # The ticket waits for its restart; the supervisor stops before it comes.
            with trio.fail_after(WAIT):
                async for event in events:
                    if isinstance(event, Restarting):
                        break
        assert tickets.tree().find("realtime-0").state is NodeState.RESTARTING
        tickets.request_stop()
        await until(stream, lambda item: isinstance(item, Gap))
        await settle(eng, emu)
        assert eng.debug_tree().actors.find("tickets").generation == 1
        assert eng.subscription(sub_id).state.value == "active"
        (after,) = emu.connections(open_only=True)
        assert emulator_set(emu, after.conn_id) == {("ticker", "KRW-SOL")}
