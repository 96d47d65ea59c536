"""The fault controls over HTTP (``EmulatorConfig.fault_controls``): each one really applies its
fault, the reports are JSON, and a bad parameter gets a 400 that says what to fix."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import httpx
import pytest
import trio
import trio_websocket
from trio.testing import MockClock

from engine.testing import Emulator

from ._wire import connect, emulator, recv, recv_dict, send, subscribe, until_closed

TICKER: dict[str, object] = {"type": "ticker", "codes": ["KRW-BTC", "KRW-ETH"]}


@contextlib.asynccontextmanager
async def controlled(**changes: object) -> AsyncIterator[tuple[Emulator, httpx.AsyncClient]]:
    async with emulator(fault_controls=True, **changes) as emu:
        assert emu.control_url is not None
        async with httpx.AsyncClient(base_url=emu.control_url) as http:
            yield emu, http


@pytest.fixture
def steered_clock() -> MockClock:
    """Real time, which a test can jump ahead (over a restart's downtime) without waiting."""
    return MockClock(rate=1.0)


async def test_controls_are_off_unless_configured(autojump_clock: MockClock) -> None:
    async with emulator() as emu, httpx.AsyncClient(base_url=emu.rest_url) as http:
        assert emu.control_url is None
        answer = await http.post("/emulator/drop")
        assert answer.status_code == 404
        assert "fault_controls=True" in answer.json()["error"]["message"]


async def test_the_index_lists_every_control(autojump_clock: MockClock) -> None:
    async with controlled() as (emu, http):
        assert emu.control_url == f"{emu.rest_url}/emulator"
        index = (await http.get("")).json()["endpoints"]
        assert [(e["method"], e["path"]) for e in index] == [
            ("POST", f"/emulator/{name}")
            for name in (
                "drop",
                "restart",
                "stall",
                "unstall",
                "error",
                "malformed",
                "latency",
                "reject-connects",
                "fail-rest",
                "limits",
                "rate",
            )
        ] + [("GET", "/emulator/connections"), ("GET", "/emulator/statistics")]
        unknown = await http.post("/explode")
        assert unknown.status_code == 404
        assert "drop, restart" in unknown.json()["error"]["message"]
        wrong = await http.get("/drop")
        assert (wrong.status_code, wrong.headers["allow"]) == (405, "POST")
        assert (await http.post("/statistics")).status_code == 405


async def test_drop_one_then_all(autojump_clock: MockClock) -> None:
    async with controlled() as (emu, http), connect(emu) as ws, connect(emu) as other:
        # A form body, as ``curl -d conn=1 -d how=close1000`` sends it.
        answer = await http.post("/drop", data={"conn": "1", "how": "close1000"})
        assert answer.status_code == 200
        assert answer.json() == {"ok": True, "action": "drop", "dropped": [1], "how": "close1000"}
        assert (await until_closed(ws))[1].code == 1000
        assert emu.connection(1).close_reason == "server closed 1000"
        assert emu.connection(2).open
        answer = await http.post("/drop", json={})  # every open connection
        assert answer.json()["dropped"] == [2]
        assert (await until_closed(other))[1].code == 1006
        assert emu.connections(open_only=True) == ()


async def test_restart_answers_once_down_then_comes_back(steered_clock: MockClock) -> None:
    async with controlled() as (emu, http), connect(emu) as ws:
        with trio.fail_after(30):
            answer = await http.post("/restart", params={"downtime": "600"})
            assert answer.status_code == 200
            assert answer.json() == {
                "ok": True,
                "action": "restart",
                "downtime": 600.0,
                "how": "abort",
            }
            # Answered when applied, not after the downtime: down now, the client dropped.
            assert not emu.statistics().listening
            assert (await until_closed(ws))[1].code == 1006
            with pytest.raises(OSError, match="connect"):
                await trio.open_tcp_stream("127.0.0.1", emu.port)
        steered_clock.jump(600)
        with trio.fail_after(30):
            await emu.wait_for(lambda: emu.statistics().listening)
            assert (await http.get("/statistics")).json()["listening"] is True


async def test_stall_then_unstall(autojump_clock: MockClock) -> None:
    async with controlled() as (emu, http), connect(emu) as ws:
        answer = await http.post("/stall", params={"conn": 1})
        assert answer.json() == {"ok": True, "action": "stall", "conn": 1, "duration": None}
        assert emu.connection(1).stalled
        await send(ws, [{"ticket": "l"}, {"method": "LIST_SUBSCRIPTIONS"}])
        # Shorter than the server's 30 s keep-alive timeout, which would close our HTTP client's
        # idle connection under it.
        with trio.move_on_after(5) as silent:
            await ws.get_message()
        assert silent.cancelled_caught, "a stalled connection answers nothing"
        assert (await http.post("/unstall", json={"conn": 1})).status_code == 200
        assert not emu.connection(1).stalled
        assert "method" in await recv_dict(ws)
        await http.post("/stall", json={"conn": 1, "duration": 10})
        start = trio.current_time()
        await emu.wait_for(lambda: not emu.connection(1).stalled)
        assert trio.current_time() - start == pytest.approx(10.0, abs=0.1)


async def test_error_and_malformed_frames(autojump_clock: MockClock) -> None:
    async with controlled() as (emu, http), connect(emu) as ws:
        answer = await http.post("/error", json={"conn": 1, "name": "NO_CODES", "close": False})
        assert answer.json()["close"] is False
        error = await recv_dict(ws)
        assert error["error"]["name"] == "NO_CODES"  # type: ignore[index]
        await http.post("/malformed", data={"conn": "1", "kind": "unexpected_json"})
        assert await recv(ws) == {"unexpected": [1, 2, 3]}
        assert emu.connection(1).open
        await http.post("/error", data={"conn": "1"})  # INVALID_PARAM, then close 1000
        messages, closed = await until_closed(ws)
        assert messages[0]["error"]["name"] == "INVALID_PARAM"  # type: ignore[index]
        assert closed.code == 1000


async def test_latency_delays_frames(autojump_clock: MockClock) -> None:
    async with controlled() as (emu, http), connect(emu) as ws:
        answer = await http.post("/latency", data={"seconds": "10", "conn": "1"})
        assert answer.json() == {"ok": True, "action": "latency", "seconds": 10.0, "conn": 1}
        start = trio.current_time()
        await send(ws, [{"ticket": "l"}, {"method": "LIST_SUBSCRIPTIONS"}])
        assert "method" in await recv_dict(ws)
        assert trio.current_time() - start >= 10.0
        await http.post("/latency", data={"seconds": "2.5"})
        assert emu.latency == 2.5
        assert (await http.get("/statistics")).json()["latency"] == 2.5


async def test_reject_connects(autojump_clock: MockClock) -> None:
    async with controlled() as (emu, http):
        answer = await http.post("/reject-connects", data={"status": "418", "count": "2"})
        assert answer.json() == {
            "ok": True,
            "action": "reject-connects",
            "status": 418,
            "count": 2,
            "block": None,
        }
        for _ in range(2):
            with pytest.raises(trio_websocket.ConnectionRejected) as refused:
                async with connect(emu):
                    pass
            assert refused.value.status_code == 418
        async with connect(emu):
            pass
        assert [refusal.status for refusal in emu.refusals()] == [418, 418]


async def test_fail_rest_by_group_until_ended(autojump_clock: MockClock) -> None:
    async with controlled() as (emu, http), httpx.AsyncClient(base_url=emu.rest_url) as rest:
        await http.post("/fail-rest", data={"status": "503", "group": "market"})
        assert (await rest.get("/v1/market/all")).status_code == 503
        instruments = await rest.get("/v1/orderbook/instruments", params={"markets": "KRW-BTC"})
        assert instruments.status_code == 200  # another group
        await http.post("/fail-rest", json={})  # 500 for every group
        assert (await rest.get("/v1/orderbook/instruments")).status_code == 500
        # The controls themselves never fail.
        assert (await http.get("/statistics")).status_code == 200
        answer = await http.post("/fail-rest", data={"status": "none"})
        assert answer.json()["status"] is None
        assert (await rest.get("/v1/market/all")).status_code == 200


async def test_limits_relaxed_then_enforced(autojump_clock: MockClock) -> None:
    async with controlled() as (emu, http):
        await http.post("/limits", data={"enforce": "false"})
        assert not emu.limits_enforced
        assert (await http.get("/statistics")).json()["limits_enforced"] is False
        async with connect(emu) as ws:
            for i in range(12):
                await send(ws, [{"ticket": str(i)}, {"method": "LIST_SUBSCRIPTIONS"}])
            replies = [await recv_dict(ws) for _ in range(12)]
            assert all("method" in reply for reply in replies), "no Too Many Requests"
        await http.post("/limits", json={"enforce": True})
        assert emu.limits_enforced


async def test_rate_silences_a_pair(autojump_clock: MockClock) -> None:
    async with controlled() as (emu, http):
        answer = await http.post("/rate", data={"code": "KRW-BTC", "per_second": "0"})
        assert answer.json() == {"ok": True, "action": "rate", "code": "KRW-BTC", "per_second": 0}
        await trio.sleep(1)  # a trade already scheduled may still happen
        made = len(emu.trades_made("KRW-BTC"))
        await trio.sleep(60)
        assert len(emu.trades_made("KRW-BTC")) == made
        assert len(emu.trades_made("KRW-ETH")) > 0


async def test_connections_and_statistics_as_json(autojump_clock: MockClock) -> None:
    async with controlled() as (emu, http), connect(emu) as ws:
        await send(ws, subscribe(TICKER))
        await recv(ws)
        [conn] = (await http.get("/connections")).json()["connections"]
        assert {key: conn[key] for key in ("conn_id", "open", "path", "format", "requests")} == {
            "conn_id": 1,
            "open": True,
            "path": "/websocket/v1",
            "format": "DEFAULT",
            "requests": 1,
        }
        assert conn["subscriptions"] == [{"type": "ticker", "codes": ["KRW-BTC", "KRW-ETH"]}]
        assert conn["frames_sent"] >= 1
        stats = (await http.get("/statistics")).json()
        assert (stats["connections_open"], stats["connects_accepted"]) == (1, 1)
        assert (stats["listening"], stats["limits_enforced"], stats["latency"]) == (True, True, 0)
        await emu.drop(1)
        assert (await http.get("/connections", params={"open_only": "true"})).json() == {
            "connections": []
        }
        [closed] = (await http.get("/connections")).json()["connections"]
        assert (closed["open"], closed["close_reason"]) == (False, "dropped (abort)")


BAD_PARAMETERS = [
    ("/drop", {"conn": "abc"}, "conn must be the id of an open connection"),
    ("/drop", {"conn": "99"}, "conn 99 is not an open connection; open now: [1]"),
    ("/drop", {"how": "explode"}, "how must be one of abort, reset, close1000, close1001"),
    ("/drop", {"durration": "1"}, "unknown parameter 'durration'; this endpoint takes conn, how"),
    ("/restart", {"downtime": "-1"}, "downtime must be a number of seconds >= 0"),
    ("/stall", {}, "conn is required"),
    ("/stall", {"conn": "1", "duration": "0"}, "duration must be a number of seconds > 0"),
    ("/unstall", {"conn": "0"}, "conn must be"),
    ("/error", {"conn": "1", "close": "perhaps"}, "close must be true or false"),
    ("/malformed", {"conn": "1", "kind": "weird"}, "kind must be one of truncated_json"),
    ("/latency", {}, "seconds is required"),
    ("/latency", {"seconds": "nan"}, "seconds must be a number of seconds >= 0"),
    ("/reject-connects", {"status": "500"}, "status must be 429 or 418"),
    ("/reject-connects", {"count": "0"}, "count must be a whole number >= 1"),
    ("/reject-connects", {"block": "-5"}, "block must be a number of seconds > 0"),
    ("/fail-rest", {"status": "200"}, "status must be an HTTP error status 400-599"),
    ("/fail-rest", {"group": "ticker"}, "group must be one of market, orderbook, trade, candle"),
    ("/limits", {}, "enforce is required"),
    ("/limits", {"enforce": "maybe"}, "enforce must be true or false"),
    ("/rate", {"code": "KRW-NOPE", "per_second": "1"}, "code must be a pair the emulator lists"),
    ("/rate", {"code": "KRW-BTC", "per_second": "-1"}, "per_second must be trades per second"),
    ("/rate", {"per_second": "1"}, "code is required"),
]


@pytest.mark.parametrize(("path", "form", "message"), BAD_PARAMETERS)
async def test_bad_parameters_get_400_saying_what_to_fix(
    autojump_clock: MockClock, path: str, form: dict[str, str], message: str
) -> None:
    async with controlled() as (emu, http), connect(emu):
        before = [event for event in emu.history() if event.kind == "fault"]
        answer = await http.post(path, data=form)
        assert answer.status_code == 400
        error = answer.json()["error"]
        assert error["name"] == "bad_parameter"
        assert message in error["message"]
        assert [event for event in emu.history() if event.kind == "fault"] == before
        assert emu.connection(1).open


@pytest.mark.parametrize(
    ("body", "message"),
    [(b"{", "the body is not JSON"), (b"[1]", "the JSON body must be an object")],
)
async def test_a_body_that_is_not_a_json_object_gets_400(
    autojump_clock: MockClock, body: bytes, message: str
) -> None:
    async with controlled() as (_, http):
        headers = {"Content-Type": "application/json"}
        answer = await http.post("/drop", content=body, headers=headers)
        assert answer.status_code == 400
        assert message in answer.json()["error"]["message"]


async def test_a_json_body_with_typed_values_and_a_query_string_both_work(
    autojump_clock: MockClock,
) -> None:
    async with controlled() as (emu, http), connect(emu):
        answer = await http.post("/stall", params={"conn": "1"}, json={"duration": 2.5})
        assert answer.json()["duration"] == 2.5
        answer = await http.post("/limits", json={"enforce": False})
        assert answer.json()["enforce"] is False
        answer = await http.post("/latency", json={"seconds": True})
        assert answer.status_code == 400, "a JSON true is not a number of seconds"
