"""Bare receive loops of the transports: frames received and ``orjson``-decoded per second.

The source is a separate process on 127.0.0.1 that answers the WebSocket upgrade by hand and then
writes one pre-built buffer of unmasked binary frames (Upbit-shaped DEFAULT trade messages from
the emulator's seeded market, a few codes) over and over with ``sendall``: it does no per-frame
work, so it is never the bottleneck. Each loop is ``orjson.loads(await conn.receive())`` on one
connection for a fixed time after a warm-up. Rounds run the loops in turn on fresh connections;
the table gives each loop's median over the rounds and its ratio to the trio-websocket loop, all
from this one run. For context it also times ``orjson.loads`` alone over the same payloads (no
socket, no WebSocket): the ceiling of any receive-and-decode loop.

Run: ``uv run python bench/transport.py [--seconds S] [--rounds N] [--no-write]``.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import multiprocessing
import os
import socket
import statistics
import struct
import sys
import time
from collections.abc import Callable
from multiprocessing.connection import Connection as Pipe
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import attrs
import orjson
import trio

from bench._report import write_section
from engine.testing.marketdata import MarketSimulator, default_catalog
from engine.transport import Transport, TrioWebsocketTransport
from engine.transport.websockets_transport import WebsocketsTransport

#: Frames in the buffer the source repeats (about 450 bytes each: roughly 1.8 MB).
FRAMES_IN_BUFFER = 4096
WARM_UP = 20_000
BATCH = 1_000

LOOPS: dict[str, Callable[[], Transport]] = {
    "trio-websocket (`TrioWebsocketTransport`)": lambda: TrioWebsocketTransport(
        disconnect_timeout=0.2
    ),
    "websockets sans-I/O, fast path (`WebsocketsTransport`)": lambda: WebsocketsTransport(
        disconnect_timeout=0.2
    ),
    "websockets sans-I/O, every frame through its parser (`fast_path=False`)": lambda: (
        WebsocketsTransport(disconnect_timeout=0.2, fast_path=False)
    ),
}
BASELINE = next(iter(LOOPS))


def trade_payloads() -> list[bytes]:
    """DEFAULT-format REALTIME trade messages of the emulator's market, as Upbit spells them."""
    catalog = default_catalog()
    simulator = MarketSimulator(catalog, seed=0)
    codes = [entry.market for entry in catalog if entry.market.startswith("KRW-")][:16]
    return [
        orjson.dumps(simulator.render("trade", codes[index % len(codes)], "REALTIME"))
        for index in range(FRAMES_IN_BUFFER)
    ]


def server_frame(payload: bytes) -> bytes:
    size = len(payload)
    if size < 126:
        return bytes([0x82, size]) + payload
    if size < 65536:
        return struct.pack("!BBH", 0x82, 126, size) + payload
    return struct.pack("!BBQ", 0x82, 127, size) + payload


def _source(ready: Pipe, buffer: bytes) -> None:
    """The frame source (runs in its own process): upgrade each client, then flood it."""
    listener = socket.create_server(("127.0.0.1", 0))
    ready.send(listener.getsockname()[1])
    while True:
        client, _ = listener.accept()
        with client:
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = client.recv(4096)
                if not chunk:
                    break
                head += chunk
            key = next(
                (
                    line.split(b":", 1)[1].strip()
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"sec-websocket-key:")
                ),
                b"",
            )
            digest = hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest()
            response = (
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + base64.b64encode(digest)
            )
            try:
                client.sendall(response + b"\r\n\r\n")
                while True:
                    client.sendall(buffer)
            except OSError:
                continue  # the client hung up: wait for the next one


@attrs.frozen
class Rate:
    """One measured slice: frames per wall-clock second and per CPU second of this process."""

    wall: float
    cpu: float


async def _measure(transport: Transport, url: str, seconds: float) -> Rate:
    loads = orjson.loads
    async with transport.connect(url) as conn:
        receive = conn.receive
        for _ in range(WARM_UP):
            loads(await receive())
        frames = 0
        start, start_cpu = time.perf_counter(), time.process_time()
        deadline = start + seconds
        while True:
            for _ in range(BATCH):
                loads(await receive())
            frames += BATCH
            now = time.perf_counter()
            if now >= deadline:
                return Rate(frames / (now - start), frames / (time.process_time() - start_cpu))


def _orjson_ceiling(payloads: list[bytes], seconds: float) -> Rate:
    loads = orjson.loads
    frames = 0
    start, start_cpu = time.perf_counter(), time.process_time()
    while time.perf_counter() - start < seconds:
        for payload in payloads:
            loads(payload)
        frames += len(payloads)
    return Rate(frames / (time.perf_counter() - start), frames / (time.process_time() - start_cpu))


async def _run(url: str, seconds: float, rounds: int) -> dict[str, list[Rate]]:
    rates: dict[str, list[Rate]] = {name: [] for name in LOOPS}
    for index in range(rounds):
        for name, make in LOOPS.items():
            rate = await _measure(make(), url, seconds)
            rates[name].append(rate)
            print(
                f"round {index + 1}: {name}: {rate.wall:,.0f} frames/s, "
                f"{rate.cpu:,.0f} frames per CPU-s",
                flush=True,
            )
    return rates


def _row(name: str, rates: list[Rate], base: list[Rate]) -> str:
    wall = statistics.median(rate.wall for rate in rates)
    cpu = statistics.median(rate.cpu for rate in rates)
    # Ratios are taken within each round (same machine state), then the median.
    ratio = statistics.median(r.cpu / b.cpu for r, b in zip(rates, base, strict=True))
    return f"| {name} | {wall:,.0f} | {cpu:,.0f} | {1e6 / cpu:.2f} | {ratio:.2f}x |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="measured time per loop")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()

    payloads = trade_payloads()
    buffer = b"".join(server_frame(payload) for payload in payloads)
    ready, ready_child = multiprocessing.Pipe()
    source = multiprocessing.Process(target=_source, args=(ready_child, buffer), daemon=True)
    source.start()
    try:
        port = ready.recv()
        url = f"ws://127.0.0.1:{port}/websocket/v1"
        rates = trio.run(_run, url, args.seconds, args.rounds)
    finally:
        source.kill()
        source.join()
    ceiling = _orjson_ceiling(payloads, args.seconds)
    load = os.getloadavg()[0]

    base = rates[BASELINE]
    rows = [_row(name, values, base) for name, values in rates.items()]
    base_cpu = statistics.median(rate.cpu for rate in base)
    rows.append(
        f"| `orjson.loads` alone on the same payloads (no socket; the ceiling) | "
        f"{ceiling.wall:,.0f} | {ceiling.cpu:,.0f} | {1e6 / ceiling.cpu:.2f} | "
        f"{ceiling.cpu / base_cpu:.2f}x |"
    )
    size = statistics.mean(len(payload) for payload in payloads)
    body = (
        f"Bare receive loops, `orjson.loads(await conn.receive())`, one connection to a source "
        f"process on 127.0.0.1 that repeats a pre-built buffer of {FRAMES_IN_BUFFER:,} "
        f"binary DEFAULT trade frames (mean payload {size:.0f} bytes) with `sendall`. "
        f"{args.rounds} rounds; each runs every loop in turn for {args.seconds:g} s after "
        f"{WARM_UP:,} warm-up frames on a fresh connection. Rates are medians over the rounds; "
        f"the ratio is the median of the per-round ratios of frames per CPU second (the "
        f"receiving process's user + system time, which other load on this shared box "
        f"disturbs far less than wall-clock time). Load average at the end: {load:.1f}.\n\n"
        "| loop | frames/s (wall) | frames per CPU s | µs CPU per frame | "
        "ratio to trio-websocket (CPU) |\n"
        "|---|---:|---:|---:|---:|\n" + "\n".join(rows) + "\n\n"
        "The fast path slices final, unmasked, unfragmented data frames itself and hands every "
        "other frame to websockets' protocol (see `engine/transport/frame_core.py`); "
        "the third row sends every frame through websockets' generator-based parser."
    )
    print(body)
    if not args.no_write:
        write_section("transport", "Transport receive loops", body)


if __name__ == "__main__":
    main()
