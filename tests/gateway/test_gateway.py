"""The gateway against a real ``nats-server -js`` and the emulator: every trade stored once (with
one gateway, with two, with one of two killed), a durable consumer that resumes where it stopped,
and a NATS restart that loses nothing within the buffer and says so beyond it.

Real time (NATS runs outside Trio's clock), short runs; every wait has a deadline.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import Any

import attrs
import orjson
import pytest
import trio

from engine.cli.entry import main
from engine.gateway.bus import BusConsumer, BusEvent, open_bus
from engine.gateway.config import GatewayConfig, Spec
from engine.gateway.encoding import encode_message
from engine.gateway.run import Gateway, open_gateway
from engine.testing import Emulator, EmulatorConfig, open_emulator
from engine.testing.nats_server import NatsServer
from engine.wire.decode import decode_frame
from engine.wire.messages import Trade

CODES = ("KRW-BTC", "KRW-ETH")
DEADLINE = 60.0


def _config(server: NatsServer, **changes: Any) -> GatewayConfig:
    base = GatewayConfig(nats=server.url, specs=(Spec("trade", CODES), Spec("ticker", CODES)))
    return attrs.evolve(base, **changes)


def _emulator() -> EmulatorConfig:
    return EmulatorConfig(markets=(*CODES, "KRW-XRP"), seed=5, rate_scale=20.0)


async def _read_all(
    server: NatsServer, durable: str, *, stop_after: int | None = None
) -> tuple[list[object], BusConsumer | None]:
    """Everything in the stream (or the first ``stop_after``) through a durable consumer."""
    got: list[object] = []
    async with open_bus(server.url, durable=durable) as bus:
        bus.batch_size = 50
        while stop_after is None or len(got) < stop_after:
            with trio.move_on_after(2.0) as idle:
                got.append(await bus.__anext__())
            if idle.cancelled_caught:
                break
    return got, None


def _assert_no_hole(trades: list[Trade], emu: Emulator) -> None:
    """Each code's stored trades are every trade the market made between the first and last."""
    for code in CODES:
        mine = sorted(t.sequential_id for t in trades if t.code == code)
        made = [t.sequential_id for t in emu.trades_made(code) if mine[0] <= t.sequential_id]
        assert mine == [sid for sid in made if sid <= mine[-1]]


def _trades(items: list[object]) -> list[Trade]:
    return [item for item in items if isinstance(item, Trade)]


async def _run(gateway: Gateway, seconds: float) -> None:
    with trio.fail_after(DEADLINE):
        await trio.sleep(seconds)  # the market trades meanwhile (real time)
        await gateway.publisher.wait_empty()


async def test_one_gateway_stores_every_trade_once_in_upbit_json(nats_server: NatsServer) -> None:
    async with open_emulator(_emulator()) as emu:
        async with open_gateway(
            _config(nats_server), ws_url=emu.ws_url, rest_url=emu.rest_url
        ) as gw:
            assert gw.stream_setup == "created"
            await _run(gw, 3.0)
            stats = gw.stats
            exported = gw.engine.metrics().gateway  # metrics() and Prometheus carry them
            assert exported["stored"] == stats.stored > 0
            assert exported["connected"] == 1.0
            assert exported["queued"] == 0
        items, _ = await _read_all(nats_server, "check")
    trades = _trades(items)
    ids = [t.sequential_id for t in trades]
    assert len(trades) >= 20
    assert len(ids) == len(set(ids))  # each trade once (a SNAPSHOT repeat was deduplicated)
    made = {t.sequential_id for code in CODES for t in emu.trades_made(code)}
    assert set(ids) <= made
    assert any(isinstance(item, BusEvent) and item.kind == "connected" for item in items)
    assert stats.dropped == 0
    # The payload is Upbit's DEFAULT JSON: the engine's own decoder reads it back unchanged.
    subject, data, msg_id = encode_message(trades[0])
    assert subject == "upbit.trade." + trades[0].code
    assert msg_id == f"trade:{trades[0].code}:{trades[0].sequential_id}"
    raw = orjson.loads(data)
    assert {"type", "code", "sequential_id", "trade_timestamp", "stream_type"} <= set(raw)
    assert decode_frame(data) == trades[0]


async def test_two_gateways_store_each_trade_once_even_when_one_dies(
    nats_server: NatsServer,
) -> None:
    async with open_emulator(_emulator()) as emu:
        options = {"ws_url": emu.ws_url, "rest_url": emu.rest_url}
        async with open_gateway(_config(nats_server, name="b"), **options) as b:
            with trio.CancelScope() as a_scope:
                async with open_gateway(_config(nats_server, name="a"), **options) as a:
                    await _run(a, 2.0)
                    a_scope.cancel()  # gateway a goes away mid-stream
            await _run(b, 2.0)
            assert a.stats.duplicates + b.stats.duplicates > 0  # both published the same
            # a was stopped by cancellation and still published all it had queued.
            assert a.stats.offered == a.stats.stored + a.stats.duplicates
        items, _ = await _read_all(nats_server, "check")
    trades = _trades(items)
    ids = [t.sequential_id for t in trades]
    assert len(ids) == len(set(ids))
    # Nothing missing while b ran: every trade made after b's first one, until its last, is in.
    _assert_no_hole(trades, emu)
    gateways = {item.gateway for item in items if isinstance(item, BusEvent)}
    assert gateways == {"a", "b"}


async def test_a_durable_consumer_resumes_where_it_stopped(nats_server: NatsServer) -> None:
    async with open_emulator(_emulator()) as emu:
        async with open_gateway(
            _config(nats_server), ws_url=emu.ws_url, rest_url=emu.rest_url
        ) as gw:
            await _run(gw, 2.0)
            first, _ = await _read_all(nats_server, "resume", stop_after=30)
            await _run(gw, 1.0)
        rest, _ = await _read_all(nats_server, "resume")
        everything, _ = await _read_all(nats_server, "everything")
    assert len(first) == 30
    assert first + rest == everything  # nothing missed, nothing repeated, in order


async def test_a_nats_restart_loses_nothing_within_the_buffer(nats_server: NatsServer) -> None:
    async with open_emulator(_emulator()) as emu:
        async with open_gateway(
            _config(nats_server, publish_timeout=0.5), ws_url=emu.ws_url, rest_url=emu.rest_url
        ) as gw:
            await _run(gw, 1.0)
            await trio.to_thread.run_sync(nats_server.stop)
            await trio.sleep(2.0)  # the engine goes on while NATS is down (real time)
            assert gw.stats.buffered > 0
            await trio.to_thread.run_sync(nats_server.start)
            await _run(gw, 1.0)
            stats = gw.stats
        items, _ = await _read_all(nats_server, "check")
    assert stats.dropped == 0
    assert stats.retries > 0
    trades = _trades(items)
    ids = [t.sequential_id for t in trades]
    assert len(ids) == len(set(ids))
    _assert_no_hole(trades, emu)  # the outage left no hole


async def test_beyond_the_buffer_the_loss_is_counted_and_announced(nats_server: NatsServer) -> None:
    async with open_emulator(_emulator()) as emu:
        config = _config(nats_server, publish_timeout=0.5, buffer=20, name="small")
        async with open_gateway(config, ws_url=emu.ws_url, rest_url=emu.rest_url) as gw:
            await _run(gw, 0.5)
            await trio.to_thread.run_sync(nats_server.stop)
            with trio.fail_after(DEADLINE):
                # The queue overflows in real time, fed by the emulator's market: poll it.
                while not gw.stats.dropped:  # noqa: ASYNC110
                    await trio.sleep(0.1)
            await trio.to_thread.run_sync(nats_server.start)
            await _run(gw, 1.0)
            dropped = gw.stats.dropped
            stats_text = repr(gw.stats)
        items, _ = await _read_all(nats_server, "check")
    announced = [i for i in items if isinstance(i, BusEvent) and i.kind == "gateway_dropped"]
    assert announced, ([i.kind for i in items if isinstance(i, BusEvent)], stats_text)
    assert sum(int(str(e.data["count"])) for e in announced) <= dropped
    assert announced[0].gateway == "small"


def test_serve_from_the_command_line_publishes_and_stops_on_sigterm(
    nats_server: NatsServer,
) -> None:
    command = [sys.executable, "-m", "engine.cli", "serve", "--emulator", "--nats"]
    process = subprocess.Popen(
        [*command, nats_server.url, "--name", "cli", "trade:KRW-BTC,KRW-ETH"],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stderr is not None
        line = process.stderr.readline()  # blocks until the gateway runs (or the process dies)
        assert "gateway cli: publishing 1 spec(s) to stream UPBIT (created)" in line
        time.sleep(2.0)  # it publishes meanwhile (real time)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=DEADLINE) == 0
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=DEADLINE)
        if process.stderr is not None:
            process.stderr.close()

    async def read() -> list[object]:
        items, _ = await _read_all(nats_server, "cli-check")
        return items

    items = trio.run(read)
    assert _trades(items)
    assert {item.gateway for item in items if isinstance(item, BusEvent)} == {"cli"}


def test_serve_refuses_what_it_cannot_run(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "trade:KRW-BTC"]) == 2
    assert "give --nats URL" in capsys.readouterr().err
    assert main(["serve", "--nats", "nats://127.0.0.1:1", "myAsset:KRW-BTC"]) == 2
    assert "must not go to a shared bus" in capsys.readouterr().err


async def test_a_gateway_killed_with_sigkill_loses_nothing_its_twin_has(
    nats_server: NatsServer,
) -> None:
    async with open_emulator(_emulator()) as emu:
        options = {"ws_url": emu.ws_url, "rest_url": emu.rest_url}
        argv = [sys.executable, "-m", "engine.cli", "serve", "--nats", nats_server.url]
        argv += ["--ws-url", emu.ws_url, "--rest-url", emu.rest_url, "--name", "killed"]
        argv += ["trade:" + ",".join(CODES)]
        async with open_gateway(_config(nats_server, name="twin"), **options) as twin:
            killed = await trio.lowlevel.open_process(argv, stderr=subprocess.PIPE)
            try:
                assert killed.stderr is not None
                with trio.fail_after(DEADLINE):
                    await killed.stderr.receive_some(4096)  # its "publishing" line
                await _run(twin, 2.0)
                killed.kill()  # SIGKILL: no flush, no goodbye
                await killed.wait()
                await _run(twin, 2.0)
                stats = twin.stats
            finally:
                if killed.returncode is None:
                    killed.kill()
                    await killed.wait()
                if killed.stderr is not None:
                    await killed.stderr.aclose()
        items, _ = await _read_all(nats_server, "check")
    assert killed.returncode == -signal.SIGKILL
    assert stats.duplicates > 0  # the killed one had published the same trades
    trades = _trades(items)
    ids = [t.sequential_id for t in trades]
    assert len(ids) == len(set(ids))
    _assert_no_hole(trades, emu)
    assert {i.gateway for i in items if isinstance(i, BusEvent)} == {"killed", "twin"}
