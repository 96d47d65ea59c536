"""What the emulator tells a test: connections, requests, history, statistics, waits; plus
determinism under a seed and the REST endpoints over HTTP."""

from __future__ import annotations

import httpx
import pytest
import trio
from trio.testing import MockClock

from engine.testing import EmulatorConfig, SubscriptionEntry, open_emulator

from ._wire import MAJORS, collect, connect, emulator, recv, recv_raw, send, subscribe


async def test_connection_snapshot(autojump_clock: MockClock) -> None:
    async with emulator(recent_frames=3) as emu, connect(emu) as ws:
        (info,) = await emu.wait_connections(1)
        assert (info.conn_id, info.path, info.peer[0], info.access_key) == (
            1,
            "/websocket/v1",
            "127.0.0.1",
            None,
        )
        assert (info.format, info.subscriptions, info.requests, info.frames_sent) == (
            "DEFAULT",
            (),
            (),
            0,
        )
        sent_at = trio.current_time()
        await send(ws, subscribe({"type": "trade", "codes": ["KRW-BTC"]}, fmt="SIMPLE"))
        received = await collect(ws, 5)
        info = emu.connection(1)
        assert info.format == "SIMPLE"
        assert info.subscriptions == (SubscriptionEntry("trade", ("KRW-BTC",)),)
        (request,) = info.requests
        assert (request.kind, request.at, request.conn_id) == ("subscribe", sent_at, 1)
        assert request.json() == subscribe({"type": "trade", "codes": ["KRW-BTC"]}, fmt="SIMPLE")
        assert info.frames_sent >= 5
        assert len(info.recent_frames) == 3
        recent = info.recent_messages()
        assert all(isinstance(m, dict) and m["ty"] == "trade" for m in recent)
        assert received[0]["st"] == "SNAPSHOT"
        assert info.open
        assert info.closed_at is None
    closed = emu.connection(1)
    assert closed.closed_at is not None
    assert closed.close_reason == "client closed 1000"


async def test_private_connection_shows_its_key(autojump_clock: MockClock) -> None:
    async with emulator() as emu, connect(emu, private=True):
        (info,) = await emu.wait_connections(1)
        assert info.path == "/websocket/v1/private"
        assert info.access_key == emu.access_key


async def test_history_and_waits(autojump_clock: MockClock) -> None:
    async with emulator() as emu:
        async with trio.open_nursery() as nursery:

            async def client() -> None:
                async with connect(emu) as ws:
                    await ws.send_message("PING")
                    await send(ws, subscribe({"type": "ticker", "codes": ["KRW-BTC"]}))
                    await recv(ws)

            nursery.start_soon(client)
            records = await emu.wait_requests(2)
            assert [r.kind for r in records] == ["ping", "subscribe"]
            assert (await emu.wait_requests(1, conn_id=1, kind="subscribe"))[0].kind == "subscribe"
            info = await emu.wait_closed(1)
            assert info.close_reason == "client closed 1000"
        kinds = [event.kind for event in emu.history()]
        assert kinds == ["server_up", "connect", "request", "request", "close"]
        assert emu.connects_accepted == 1
        assert emu.connects_refused == 0
        stats = emu.statistics()
        assert stats.connections_open == 0
        assert stats.listening
        assert stats.market_time == pytest.approx(trio.current_time() - emu.history()[0].at)


async def test_wait_for_sees_realtime_frames(autojump_clock: MockClock) -> None:
    async with emulator() as emu, connect(emu) as ws:
        await send(ws, subscribe({"type": "orderbook", "codes": ["KRW-BTC"]}))
        with trio.fail_after(60):
            await emu.wait_for(lambda: emu.statistics().realtime_frames >= 20)
        assert emu.connection(1).frames_sent >= 21
        await recv(ws)


async def test_unknown_connection_id_says_which_exist(autojump_clock: MockClock) -> None:
    async with emulator() as emu, connect(emu):
        await emu.wait_connections(1)
        with pytest.raises(KeyError, match=r"no connection 9; known connections: \[1\]"):
            emu.connection(9)


async def test_credentials_helpers(autojump_clock: MockClock) -> None:
    async with emulator() as emu:
        assert emu.ws_url == f"ws://127.0.0.1:{emu.port}/websocket/v1"
        assert emu.private_ws_url == f"ws://127.0.0.1:{emu.port}/websocket/v1/private"
        assert emu.rest_url == f"http://127.0.0.1:{emu.port}"
        assert emu.secret_key == emu.config.access_keys[emu.access_key]
        with pytest.raises(ValueError, match="not a configured access key"):
            emu.make_token("nobody")
        with pytest.raises(ValueError, match="expected a myOrder message"):
            emu.emit_my_order({"type": "myAsset"})


async def test_markets_restricts_the_catalog_and_is_checked() -> None:
    async with open_emulator(EmulatorConfig(markets=("KRW-BTC", "KRW-ETH"))) as emu:
        assert [listing.market for listing in emu.catalog] == ["KRW-BTC", "KRW-ETH"]
    with pytest.raises(ValueError, match="KRW-NOPE"):
        async with open_emulator(EmulatorConfig(markets=("KRW-NOPE",))):
            pass
    with pytest.raises(TypeError, match="not a string"):
        EmulatorConfig(markets="KRW-BTC")  # type: ignore[arg-type]


async def test_errors_in_the_block_propagate_unwrapped() -> None:
    with pytest.raises(ZeroDivisionError):
        async with emulator():
            _ = 1 / 0


# -- determinism ----------------------------------------------------------------------------------


async def _frames(seed: int) -> list[str | bytes]:
    async with emulator(seed=seed) as emu, connect(emu) as ws:
        await trio.sleep(3.0)  # let the market move first
        await send(
            ws,
            subscribe(
                {"type": "ticker", "codes": ["KRW-BTC", "KRW-ETH"]},
                {"type": "trade", "codes": ["KRW-XRP"]},
                {"type": "orderbook", "codes": ["KRW-SOL.5"]},
                {"type": "candle.1s", "codes": ["KRW-BTC"]},
            ),
        )
        return [await recv_raw(ws) for _ in range(60)]


async def test_same_seed_same_frames(autojump_clock: MockClock) -> None:
    first = await _frames(5)
    assert first == await _frames(5)
    assert first != await _frames(6)


# -- REST over HTTP -------------------------------------------------------------------------------


async def test_rest_endpoints_over_http(autojump_clock: MockClock) -> None:
    async with emulator() as emu, httpx.AsyncClient(base_url=emu.rest_url) as http:
        markets = await http.get("/v1/market/all", params={"is_details": "true"})
        assert markets.status_code == 200
        assert markets.headers["content-type"].startswith("application/json")
        assert markets.headers["remaining-req"].startswith("group=market;")
        assert [row["market"] for row in markets.json()] == list(MAJORS)
        assert "market_event" in markets.json()[0]
        instruments = await http.get("/v1/orderbook/instruments", params={"markets": "KRW-BTC"})
        assert instruments.json()[0]["market"] == "KRW-BTC"
        assert instruments.headers["remaining-req"].startswith("group=orderbook;")
        assert (await http.get("/v1/orderbook/instruments?markets=KRW-NOPE")).status_code == 404
        assert (await http.get("/v1/nothing")).status_code == 404
        assert (await http.post("/v1/market/all")).status_code == 405


async def test_rest_keep_alive_and_rate_limit(autojump_clock: MockClock) -> None:
    async with emulator() as emu, httpx.AsyncClient(base_url=emu.rest_url) as http:
        statuses = [(await http.get("/v1/market/all")).status_code for _ in range(11)]
        assert statuses == [200] * 10 + [429]
        await trio.sleep(1.0)
        assert (await http.get("/v1/market/all")).status_code == 200


async def test_plain_http_to_a_websocket_path_and_garbage(autojump_clock: MockClock) -> None:
    async with emulator() as emu:
        async with httpx.AsyncClient(base_url=emu.rest_url) as http:
            assert (await http.get("/websocket/v1")).status_code == 404
        stream = await trio.open_tcp_stream("127.0.0.1", emu.port)
        async with stream:
            await stream.send_all(b"NOT HTTP AT ALL\r\n\r\n")
            reply = await stream.receive_some(1024)
            assert reply.startswith(b"HTTP/1.1 400")


# -- the replayed market --------------------------------------------------------------------------


def test_replay_market_loops_and_caches() -> None:
    from engine.testing import ReplayMarket, default_catalog

    catalog = [listing for listing in default_catalog(0) if listing.market in MAJORS]
    replay = ReplayMarket(catalog, seconds=5.0, speed=10.0)
    lap = replay.recorded_events
    first = replay.events_until(0.5)  # 5 recorded seconds: one lap
    assert len(first) == lap
    second = replay.events_until(1.0)
    assert [e.code for e in second] == [e.code for e in first], "the recording repeats"
    event = next(e for e in first if "orderbook" in e.kinds)
    rendered = replay.render_event(event, "orderbook", units=5)
    assert rendered is replay.render_event(event, "orderbook", units=5)
    assert rendered is not None
    assert len(rendered["orderbook_units"]) == 5  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="recorded rates"):
        replay.set_rate("KRW-BTC", 1.0)
    with pytest.raises(ValueError, match="no event"):
        ReplayMarket(catalog, seconds=1.0, rate_scale=0.0)


async def test_emulator_serves_a_replayed_market(autojump_clock: MockClock) -> None:
    from engine.testing import ReplayMarket, default_catalog

    catalog = [listing for listing in default_catalog(0) if listing.market in MAJORS]
    replay = ReplayMarket(catalog, seconds=5.0, speed=20.0)
    async with open_emulator(simulator=replay) as emu, connect(emu) as ws:
        assert [listing.market for listing in emu.catalog] == list(MAJORS)
        await send(ws, subscribe({"type": "ticker", "codes": ["KRW-BTC"]}))
        start = trio.current_time()
        messages = await collect(ws, 40)
        assert messages[0]["stream_type"] == "SNAPSHOT"
        assert trio.current_time() - start < 1.0, "20 times faster than the live market"
