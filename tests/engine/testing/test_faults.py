"""Fault injection: each control, fault plans, and the Hypothesis strategy."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import AsyncIterator

import orjson
import pytest
import trio
import trio_websocket
from hypothesis import given, settings
from hypothesis import strategies as st
from trio.testing import MockClock

from engine.testing import (
    DropConnections,
    Emulator,
    FaultPlan,
    FaultStep,
    InjectError,
    InjectMalformed,
    RejectConnects,
    RestartServer,
    SetLatency,
    SetLimits,
    StallConnection,
    fault_plans,
)
from engine.testing.faults import ACTION_TYPES

from ._wire import (
    collect,
    connect,
    emulator,
    recv,
    recv_dict,
    recv_raw,
    send,
    subscribe,
    until_closed,
)

TICKER = {"type": "ticker", "codes": ["KRW-BTC", "KRW-ETH"]}


@pytest.mark.parametrize(
    ("how", "code", "reason"),
    [
        ("abort", 1006, "dropped (abort)"),
        ("reset", 1006, "dropped (reset)"),
        ("close1000", 1000, "server closed 1000"),
        ("close1001", 1001, "server closed 1001"),
    ],
)
async def test_drop_one_connection(
    autojump_clock: MockClock, how: str, code: int, reason: str
) -> None:
    async with emulator() as emu, connect(emu) as ws, connect(emu) as other:
        await send(ws, subscribe(TICKER))
        await recv(ws)
        await emu.drop(1, how=how)  # type: ignore[arg-type]
        _, closed = await until_closed(ws)
        assert closed.code == code
        info = emu.connection(1)
        assert (info.open, info.close_reason) == (False, reason)
        assert emu.connection(2).open
        await other.ping()


async def test_drop_all(autojump_clock: MockClock) -> None:
    async with emulator() as emu, connect(emu) as a, connect(emu) as b:
        await emu.drop()
        for ws in (a, b):
            assert (await until_closed(ws))[1].code == 1006
        assert emu.connections(open_only=True) == ()


async def test_restart_refuses_connects_during_downtime(autojump_clock: MockClock) -> None:
    async with emulator() as emu:
        port = emu.port
        async with connect(emu) as ws, trio.open_nursery() as nursery:
            nursery.start_soon(functools.partial(emu.restart, downtime=5.0))
            await emu.wait_for(lambda: not emu.statistics().listening)
            went_down = trio.current_time()
            assert (await until_closed(ws))[1].code == 1006
            with pytest.raises(OSError, match="connect"):
                await trio.open_tcp_stream("127.0.0.1", port)
            await emu.wait_for(lambda: emu.statistics().listening)
            assert trio.current_time() - went_down == pytest.approx(5.0, abs=0.05)
        assert emu.port == port
        async with connect(emu) as again:
            await send(again, subscribe(TICKER))
            assert (await recv_dict(again))["stream_type"] == "SNAPSHOT"
        kinds = [event.kind for event in emu.history()]
        assert kinds.index("server_down") < kinds.index("close") < kinds.index("server_up", 1)


async def test_stall_keeps_tcp_but_answers_nothing(autojump_clock: MockClock) -> None:
    async with emulator() as emu, connect(emu) as ws:
        await send(ws, subscribe(TICKER))
        await recv(ws)
        emu.stall(1)
        assert emu.connection(1).stalled
        with trio.move_on_after(0.5):  # drain what was already on the wire
            while True:
                await ws.get_message()
        pong = trio.Event()

        async def ping() -> None:
            await ws.ping(b"stalled")
            pong.set()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(ping)
            await send(ws, [{"ticket": "l"}, {"method": "LIST_SUBSCRIPTIONS"}])
            with trio.move_on_after(30) as silent:
                await ws.get_message()
            assert silent.cancelled_caught, "a stalled server sends nothing"
            assert not pong.is_set(), "and answers no ping"
            assert [r.kind for r in emu.requests()] == ["subscribe"], "nor reads requests"
            emu.unstall(1)
            _, reply = await _until_method(ws)
            assert reply["result"] == [{"type": "ticker", "codes": ["KRW-BTC", "KRW-ETH"]}]
            with trio.fail_after(5):
                await pong.wait()
        assert emu.connection(1).open


async def _until_method(ws: trio_websocket.WebSocketConnection) -> tuple[int, dict[str, object]]:
    skipped = 0
    while True:
        message = await recv_dict(ws)
        if "method" in message:
            return skipped, message
        skipped += 1


async def test_stall_for_a_duration_then_resume(autojump_clock: MockClock) -> None:
    async with emulator() as emu, connect(emu) as ws:
        await send(ws, subscribe(TICKER))
        await recv(ws)
        emu.stall(1, duration=10.0)
        start = trio.current_time()
        with trio.fail_after(30):
            await ws.ping()
        assert trio.current_time() - start == pytest.approx(10.0, abs=0.1)
        assert not emu.connection(1).stalled


async def test_a_client_leaving_a_stalled_connection_is_noticed(autojump_clock: MockClock) -> None:
    async with emulator() as emu:
        async with connect(emu) as ws:
            await send(ws, subscribe(TICKER))
            await recv(ws)
            emu.stall(1)
        info = await emu.wait_closed(1)
        assert info.close_reason == "connection lost"


async def test_inject_error_then_close(autojump_clock: MockClock) -> None:
    async with emulator() as emu, connect(emu) as ws:
        await send(ws, subscribe(TICKER))
        await collect(ws, 2)
        emu.inject_error(1, "INVALID_PARAM", "made up")
        messages, closed = await until_closed(ws)
        assert {"error": {"name": "INVALID_PARAM", "message": "made up"}} in messages
        assert closed.code == 1000


async def test_inject_error_without_close(autojump_clock: MockClock) -> None:
    async with emulator() as emu, connect(emu) as ws:
        emu.inject_error(1, "Too Many Requests", close=False)
        error = await recv_dict(ws)
        assert error["error"]["name"] == "Too Many Requests"  # type: ignore[index]
        await ws.ping()
        assert emu.connection(1).open


@pytest.mark.parametrize("kind", ["truncated_json", "invalid_utf8", "unexpected_json"])
async def test_inject_malformed_data(autojump_clock: MockClock, kind: str) -> None:
    async with emulator() as emu, connect(emu) as ws:
        emu.inject_malformed(1, kind)  # type: ignore[arg-type]
        raw = await recv_raw(ws)
        assert isinstance(raw, bytes)
        if kind == "unexpected_json":
            assert orjson.loads(raw) == {"unexpected": [1, 2, 3]}
        else:
            with pytest.raises(orjson.JSONDecodeError):
                orjson.loads(raw)
        await ws.ping()


async def test_inject_protocol_violation(autojump_clock: MockClock) -> None:
    async with emulator() as emu, connect(emu) as ws:
        emu.inject_malformed(1, "protocol")
        _, closed = await until_closed(ws)
        assert closed.code in (1002, 1006)
        info = await emu.wait_closed(1)
        assert info.close_reason is not None


async def test_latency_delays_every_frame(autojump_clock: MockClock) -> None:
    async with emulator() as emu, connect(emu) as ws, connect(emu) as fast:
        emu.set_latency(2.0, conn_id=1)
        for client in (ws, fast):
            await send(client, subscribe({"type": "ticker", "codes": ["KRW-BTC"]}))
        sent = trio.current_time()
        await recv(fast)
        assert trio.current_time() - sent < 0.1
        await recv(ws)
        assert trio.current_time() - sent == pytest.approx(2.0, abs=0.05)
        emu.set_latency(0.5)
        async with connect(emu) as third:
            await send(third, subscribe({"type": "ticker", "codes": ["KRW-BTC"]}))
            sent = trio.current_time()
            await recv(third)
            assert trio.current_time() - sent == pytest.approx(0.5, abs=0.05)


async def test_reject_next_connects(autojump_clock: MockClock) -> None:
    async with emulator() as emu:
        emu.reject_connects(429, count=2)
        for _ in range(2):
            with pytest.raises(trio_websocket.ConnectionRejected) as refused:
                async with connect(emu):
                    pass
            assert refused.value.status_code == 429
        async with connect(emu) as ws:
            await ws.ping()
        assert emu.connects_refused == 2


async def test_reject_connects_with_a_block(autojump_clock: MockClock) -> None:
    async with emulator() as emu:
        emu.reject_connects(418, block=10.0)
        start = trio.current_time()
        with pytest.raises(trio_websocket.ConnectionRejected) as refused:
            async with connect(emu):
                pass
        assert refused.value.status_code == 418
        assert dict(refused.value.headers)[b"retry-after"] == b"10"
        await trio.sleep_until(start + 10.0)
        async with connect(emu) as ws:
            await ws.ping()


async def test_set_limits_at_run_time(autojump_clock: MockClock) -> None:
    async with emulator() as emu, connect(emu) as ws:
        emu.set_limits(False)
        assert not emu.limits_enforced
        for i in range(7):
            await send(ws, [{"ticket": str(i)}, {"method": "LIST_SUBSCRIPTIONS"}])
        assert len([await recv_dict(ws) for _ in range(7)]) == 7
        await trio.sleep(1.1)
        emu.set_limits(True)
        for i in range(6):
            await send(ws, [{"ticket": str(i)}, {"method": "LIST_SUBSCRIPTIONS"}])
        messages, closed = await until_closed(ws)
        assert "error" in messages[-1]  # type: ignore[operator]
        assert closed.code == 1000


async def test_apply_one_action(autojump_clock: MockClock) -> None:
    async with emulator() as emu, connect(emu) as ws:
        await emu.apply(DropConnections("oldest", "close1001"))
        assert (await until_closed(ws))[1].code == 1001
        await emu.apply(SetLatency(1.0))
        assert emu.latency == 1.0
        await emu.apply(StallConnection("random"))  # nobody left: nothing happens
        faults = [e.detail for e in emu.history() if e.kind == "fault"]
        assert faults == ["drop (close1001)", "latency 1 s"]


# -- plans ----------------------------------------------------------------------------------------

PLAN = FaultPlan(
    (
        FaultStep(5.0, StallConnection("newest", 3.0)),
        FaultStep(1.0, SetLatency(0.2)),
        FaultStep(12.0, InjectError("random", "INVALID_PARAM")),
        FaultStep(15.0, RejectConnects(429, 1)),
        FaultStep(20.0, DropConnections("all", "abort")),
        FaultStep(25.0, RestartServer(2.0)),
        FaultStep(30.0, SetLimits(False)),
        FaultStep(31.0, InjectMalformed("oldest")),
    ),
    seed=7,
)


async def _run_plan(plan: FaultPlan) -> list[tuple[float, str, int | None, str]]:
    async with emulator() as emu, contextlib.AsyncExitStack() as stack:
        clients = [await stack.enter_async_context(connect(emu)) for _ in range(3)]
        for client in clients:
            await send(client, subscribe(TICKER))
        start = trio.current_time()
        before = len(emu.history())
        await emu.run_plan(plan)
        assert trio.current_time() - start == pytest.approx(plan.duration, abs=2.1)
        return [
            # (the port differs between runs, so server_up's detail is left out)
            (round(e.at - start, 3), e.kind, e.conn_id, "" if e.kind == "server_up" else e.detail)
            for e in emu.history()[before:]
            if e.kind in ("fault", "server_down", "server_up")
        ]


async def test_plan_steps_happen_at_their_offsets_in_order(autojump_clock: MockClock) -> None:
    assert [step.at for step in PLAN.steps] == sorted(step.at for step in PLAN.steps)
    faults = await _run_plan(PLAN)
    assert faults[0][:2] == (1.0, "fault")
    assert "latency" in faults[0][3]
    assert (5.0, "fault", 3, "stall for 3.0") in faults, "newest is connection 3"
    assert (8.0, "fault", 3, "unstall") in faults
    assert next(f for f in faults if f[1] == "server_down")[0] == 25.0
    assert next(f for f in faults if f[1] == "server_up")[0] == pytest.approx(27.0)


async def test_same_plan_same_seed_same_faults(autojump_clock: MockClock) -> None:
    first = await _run_plan(PLAN)
    second = await _run_plan(PLAN)
    assert first == second, "\n".join(f"{a}\n{b}" for a, b in zip(first, second, strict=False))


def test_generated_plans_are_reproducible() -> None:
    assert FaultPlan.generate(11) == FaultPlan.generate(11)
    assert FaultPlan.generate(11) != FaultPlan.generate(12)
    plan = FaultPlan.generate(3, steps=20, horizon=10.0, actions=(DropConnections, SetLatency))
    assert len(plan.steps) == 20
    assert all(0 <= step.at <= 10.0 for step in plan.steps)
    assert {type(step.action) for step in plan.steps} <= {DropConnections, SetLatency}
    assert plan.describe().count("\n") == 19


@settings(max_examples=50)
@given(fault_plans(max_steps=6, horizon=20.0, max_downtime=3.0))
def test_strategy_draws_valid_sorted_plans(plan: FaultPlan) -> None:
    assert len(plan.steps) <= 6
    offsets = [step.at for step in plan.steps]
    assert offsets == sorted(offsets)
    assert all(0 <= at <= 20.0 for at in offsets)
    for step in plan.steps:
        assert isinstance(step.action, ACTION_TYPES)
        if isinstance(step.action, RestartServer):
            assert step.action.downtime <= 3.0


@given(st.data())
def test_strategy_can_be_restricted(data: st.DataObject) -> None:
    plan = data.draw(fault_plans(min_steps=1, actions=(RestartServer,)))
    assert plan.steps
    assert all(isinstance(step.action, RestartServer) for step in plan.steps)


def test_strategy_needs_actions() -> None:
    with pytest.raises(ValueError, match="at least one fault type"):
        fault_plans(actions=())


def test_fault_step_offsets_cannot_be_negative() -> None:
    with pytest.raises(ValueError, match="at must be >= 0"):
        FaultStep(-1.0, SetLimits(True))


# -- slow clients and market controls -------------------------------------------------------------


@contextlib.asynccontextmanager
async def _stop_reading_after_subscribing(emu: Emulator) -> AsyncIterator[None]:
    """A client that subscribes to busy streams and then never reads (tiny receive buffer)."""
    sock = trio.socket.socket()
    sock.setsockopt(trio.socket.SOL_SOCKET, trio.socket.SO_RCVBUF, 4096)
    await sock.connect(("127.0.0.1", emu.port))
    stream = trio.SocketStream(sock)
    key = b"dGhlIHNhbXBsZSBub25jZQ=="
    await stream.send_all(
        b"GET /websocket/v1 HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: " + key + b"\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    request = orjson.dumps(subscribe({"type": "orderbook", "codes": ["KRW-BTC", "KRW-ETH"]}))
    mask = b"\x00\x00\x00\x00"  # a zero mask leaves the payload as is
    assert len(request) < 126
    header = bytes((0x81, 0x80 | len(request)))
    async with stream:
        await stream.send_all(header + mask + request)
        yield


@pytest.mark.parametrize("policy", ["abort", "drop_frames"])
async def test_a_client_that_stops_reading(autojump_clock: MockClock, policy: str) -> None:
    async with (
        emulator(
            send_buffer_limit=64 * 1024,
            slow_client=policy,
            rates={"KRW-BTC": 50.0, "KRW-ETH": 50.0},
            idle_timeout=None,
        ) as emu,
        _stop_reading_after_subscribing(emu),
    ):
        await emu.wait_for(lambda: len(emu.connections()) == 1)
        if policy == "abort":
            info = await emu.wait_closed(1)
            assert info.close_reason == "too slow: send buffer full"
        else:
            with trio.fail_after(300):
                await emu.wait_for(lambda: emu.connection(1).frames_dropped > 0)
            assert emu.connection(1).open


async def test_set_rate_silences_and_speeds_up_a_pair(autojump_clock: MockClock) -> None:
    async with emulator() as emu, connect(emu) as ws:
        emu.set_rate("KRW-BTC", 0.0)
        await send(ws, subscribe({"type": "trade", "codes": ["KRW-BTC"]}))
        assert (await recv_dict(ws))["stream_type"] == "SNAPSHOT"
        with trio.move_on_after(30) as silent:  # (within the 60 s idle timeout)
            await ws.get_message()
        assert silent.cancelled_caught
        emu.set_rate("KRW-BTC", 10.0)
        start = trio.current_time()
        await collect(ws, 20)
        assert trio.current_time() - start < 10


async def test_controls_on_a_closed_connection_say_so(autojump_clock: MockClock) -> None:
    async with emulator() as emu:
        async with connect(emu):
            await emu.wait_connections(1)
        await emu.wait_closed(1)
        with pytest.raises(ValueError, match=r"connection 1 is closed \(client closed 1000\)"):
            emu.inject_error(1)
        with pytest.raises(KeyError, match="no connection 2"):
            emu.stall(2)


async def _read_until_close_frame(stream: trio.SocketStream) -> bytes:
    """Read the upgrade response and server frames until a close frame (opcode 8) is complete."""
    data = b""
    while True:
        _, sep, frames = data.partition(b"\r\n\r\n")
        while sep and len(frames) >= 2:
            length = frames[1] & 0x7F
            offset = 2
            if length == 126:
                length, offset = int.from_bytes(frames[2:4], "big"), 4
            if len(frames) < offset + length:
                break
            if frames[0] & 0x0F == 0x8:
                return data
            frames = frames[offset + length :]
        chunk = await stream.receive_some(4096)
        assert chunk, "the emulator hung up before its close frame"
        data += chunk


async def test_a_ping_after_the_servers_close_does_not_stop_the_emulator(
    autojump_clock: MockClock,
) -> None:
    async with emulator() as emu:
        stream = await trio.open_tcp_stream("127.0.0.1", emu.port)
        async with stream:
            await stream.send_all(
                b"GET /websocket/v1 HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                b"Sec-WebSocket-Version: 13\r\n\r\n"
            )
            # "hello" is not JSON: Upbit answers WRONG_FORMAT, then closes.
            await stream.send_all(bytes((0x81, 0x85)) + b"\x00\x00\x00\x00" + b"hello")
            buffer = (await _read_until_close_frame(stream)).partition(b"\r\n\r\n")
            assert buffer[1], "no upgrade response"
            # Instead of answering the close, ping: the server must not answer with a pong.
            await stream.send_all(bytes((0x89, 0x80)) + b"\x00\x00\x00\x00")
            with trio.move_on_after(5):
                while await stream.receive_some(4096):
                    pass
        # The emulator is still serving: a new client subscribes and gets its SNAPSHOT.
        async with connect(emu) as ws:
            await send(ws, subscribe({"type": "ticker", "codes": ["KRW-BTC"]}))
            assert (await recv_dict(ws))["stream_type"] == "SNAPSHOT"
