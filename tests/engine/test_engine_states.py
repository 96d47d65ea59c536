"""Connection state monitoring: each ticket's state, time in state, reconnects and last failure
in ``metrics()`` (and its Prometheus text), ``registry()`` and ``debug_tree()``."""

from __future__ import annotations

import pytest
import trio
from trio.testing import MockClock

from engine.core.connection_state import ConnectionState
from engine.events import Gap
from engine.runtime.ticket_runtime import TicketRuntime

from ._engine_support import WAIT, collect, engine_on_emulator, settle, until

C = ConnectionState


@pytest.fixture
def transitions(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, ConnectionState, float]]:
    """Every state change of every ticket: (ticket, new state, Trio time)."""
    log: list[tuple[str, ConnectionState, float]] = []
    enter = TicketRuntime.enter

    def logged(self: TicketRuntime, state: ConnectionState) -> None:
        if state is not self.state:
            log.append((self.name, state, trio.current_time()))
        enter(self, state)

    monkeypatch.setattr(TicketRuntime, "enter", logged)
    return log


def states_of(log: list[tuple[str, ConnectionState, float]], ticket: str) -> list[ConnectionState]:
    return [state for name, state, _ in log if name == ticket]


async def test_a_ticket_walks_through_its_states_and_reports_them_everywhere(
    autojump_clock: MockClock, transitions: list[tuple[str, ConnectionState, float]]
) -> None:
    async with engine_on_emulator() as (eng, emu):
        ticket = eng.metrics().tickets["realtime-0"]
        assert (ticket.state, ticket.connects, ticket.last_failure) == (C.CLOSED, 0, None)
        sub_id = await eng.subscribe_realtime("ticker", ["KRW-BTC"])
        stream = eng.stream(sub_id)
        await collect(stream, 1)
        await settle(eng, emu)
        assert states_of(transitions, "realtime-0") == [C.CONNECTING, C.REPLAYING, C.READY]
        entry = eng.registry()["realtime-0"]
        assert (entry.state, entry.reconnects, entry.last_failure) == ("ready", 0, None)

        (conn,) = emu.connections(open_only=True)
        dropped_at = trio.current_time()
        await emu.drop(conn.conn_id)
        await until(stream, lambda item: isinstance(item, Gap))
        await settle(eng, emu)
        with trio.fail_after(WAIT):
            await emu.wait_for(lambda: eng.metrics().tickets["realtime-0"].state is C.READY)
        assert states_of(transitions, "realtime-0")[3:] == [
            C.BACKING_OFF,
            C.CONNECTING,
            C.REPLAYING,
            C.READY,
        ]
        ticket = eng.metrics().tickets["realtime-0"]
        assert (ticket.connects, ticket.reconnects, ticket.failures) == (2, 1, 1)
        assert ticket.last_failure is not None
        assert "ConnectionClosedError" in ticket.last_failure
        assert ticket.last_failure_at is not None
        assert dropped_at <= ticket.last_failure_at <= dropped_at + 1.0
        ready_at = transitions[-1][2]
        assert ticket.since == ready_at
        await trio.sleep(5)
        assert eng.metrics().tickets["realtime-0"].time_in_state == pytest.approx(
            trio.current_time() - ready_at
        )
        entry = eng.registry()["realtime-0"]
        assert (entry.state, entry.reconnects) == ("ready", 1)
        assert entry.last_failure == ticket.last_failure
        assert entry.last_failure_at == ticket.last_failure_at
        line = eng.debug_tree().tickets["realtime-0"].describe()
        assert "state=ready" in line
        assert "reconnects=1" in line
        assert "last_failure=" in line

        await eng.unsubscribe_realtime(sub_id)
        with trio.fail_after(WAIT):
            await emu.wait_for(lambda: eng.metrics().tickets["realtime-0"].state is C.PARKED)
        assert eng.registry()["realtime-0"].state == "parked"
        usage = eng.get_ticket_usage().realtime
        assert usage.connection_states == {"parked": 1, "closed": 1}  # type: ignore[union-attr]
        outcome = await eng.cleanup_inactive()
        assert outcome.tickets == ("realtime-0",)
        assert eng.metrics().tickets["realtime-0"].state is C.CLOSED
        assert states_of(transitions, "realtime-0")[-2:] == [C.PARKED, C.CLOSED]
        # A pool ticket that never ran stays closed.
        assert eng.metrics().tickets["realtime-1"].state is C.CLOSED


async def test_a_connect_block_shows_as_backing_off(autojump_clock: MockClock) -> None:
    block = 30.0
    async with engine_on_emulator() as (eng, emu):
        emu.reject_connects(418, block=block)
        await eng.subscribe_realtime("ticker", ["KRW-ETH"])
        (refusal,) = await emu.wait_refusals(1)
        runtime = eng._core.tickets["realtime-0"]  # tests look inside
        with trio.fail_after(WAIT):
            while runtime.state is not C.BACKING_OFF:
                await runtime.pulse.wait()  # fired on every state change
        entry = eng.registry()["realtime-0"]
        assert entry.state == "backing_off"
        assert "418" in str(entry.last_failure)
        await settle(eng, emu)
        ticket = eng.metrics().tickets["realtime-0"]
        assert ticket.connects == 1
        assert ticket.reconnects == 0
        assert ticket.failures == 1
        (conn,) = emu.connections()
        assert conn.opened_at >= refusal.at + block


async def test_ticket_states_in_the_prometheus_text(autojump_clock: MockClock) -> None:
    async with engine_on_emulator() as (eng, emu):
        sub_id = await eng.subscribe_realtime("ticker", ["KRW-XRP"])
        stream = eng.stream(sub_id)
        await collect(stream, 1)
        await settle(eng, emu)
        (conn,) = emu.connections(open_only=True)
        await emu.drop(conn.conn_id)
        await until(stream, lambda item: isinstance(item, Gap))
        await settle(eng, emu)
        with trio.fail_after(WAIT):
            await emu.wait_for(lambda: eng.metrics().tickets["realtime-0"].state is C.READY)
        text = eng.metrics().to_prometheus()
        lines = set(text.splitlines())
        assert 'upbit_engine_ticket_state{ticket="realtime-0",state="ready"} 1' in lines
        assert 'upbit_engine_ticket_state{ticket="realtime-0",state="backing_off"} 0' in lines
        assert 'upbit_engine_ticket_state{ticket="realtime-1",state="closed"} 1' in lines
        assert 'upbit_engine_ticket_reconnects_total{ticket="realtime-0"} 1' in lines
        assert 'upbit_engine_ticket_failures_total{ticket="realtime-0"} 1' in lines
        assert "upbit_engine_requests_rejected_total 0" in lines
        assert "upbit_engine_tickets_failed_total 0" in lines
        assert "# TYPE upbit_engine_ticket_time_in_state_seconds gauge" in lines
        states = [line for line in lines if line.startswith("upbit_engine_ticket_state{")]
        assert len(states) == 2 * len(ConnectionState)  # every state of both realtime tickets
