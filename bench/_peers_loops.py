"""The project-side receive loops of ``bench/peers.py``, one per process run.

``python -m bench._peers_loops LOOP --url ws://127.0.0.1:PORT/websocket/v1 --warmup W --frames N``
runs one loop against the frame source and prints one JSON line (see ``bench/_peers_meter.py``):

- ``source``: a raw socket reader that parses nothing (``recv_into`` a reused buffer), so its
  rate is what the source and the loopback can deliver; frames are bytes over the mean frame
  size;
- ``trio-websocket``: ``get_message`` + ``orjson.loads`` (the engine's transport, bare);
- ``sansio``: Trio streams driving ``websockets``' sans-IO ``ClientProtocol`` + ``orjson.loads``;
- ``engine``: ``open_engine`` with the transport named by ``--transport``,
  ``subscribe_realtime("trade", [code])`` and a consumer task counting what ``stream()`` yields.

Every loop stops by itself after ``warmup + frames`` frames or after ``--timeout`` seconds.
"""

from __future__ import annotations

import argparse
import math
import os
import socket
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import trio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._peers_meter import Meter, error_line, pin, result_line

if TYPE_CHECKING:
    from engine.transport import Transport

__all__ = ("LOOPS", "main")

CODE = "KRW-BTC"
REQUEST = orjson.dumps(
    [{"ticket": "bench-peers"}, {"type": "trade", "codes": [CODE]}, {"format": "DEFAULT"}]
).decode()
#: Bytes asked of the socket per read by the bare sans-IO loop.
SANSIO_RECEIVE = 65536


class Unavailable(Exception):
    """The loop cannot run in this checkout (its message says why)."""


# -- source alone -----------------------------------------------------------------------------


def _masked_text(payload: bytes) -> bytes:
    key = os.urandom(4)
    body = bytes(b ^ key[i & 3] for i, b in enumerate(payload))
    size = len(payload)
    head = bytes((0x81, 0x80 | size)) if size < 126 else bytes((0x81, 0xFE)) + size.to_bytes(2)
    return head + key + body


def source_alone(url: str, warmup: int, frames: int, timeout: float, frame_bytes: float) -> str:
    """Read the stream as raw bytes: the source's delivery rate with no client work at all."""
    host, _, rest = url.removeprefix("ws://").partition(":")
    port = int(rest.partition("/")[0])
    deadline = time.monotonic() + timeout
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(
            b"GET /websocket/v1 HTTP/1.1\r\nHost: " + f"{host}:{port}".encode() + b"\r\n"
            b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = sock.recv(4096)
            if not chunk:
                return error_line("the source closed during the handshake")
            head += chunk
        if not head.startswith(b"HTTP/1.1 101"):
            return error_line(f"handshake refused: {head.splitlines()[0]!r}")
        sock.sendall(_masked_text(REQUEST.encode()))
        start_bytes = warmup * frame_bytes
        stop_bytes = (warmup + frames) * frame_bytes
        buffer = bytearray(1 << 20)
        received = len(head.partition(b"\r\n\r\n")[2])
        recv_into = sock.recv_into
        wall = cpu = 0.0
        mark = -1  # bytes received when the clock started
        while received < stop_bytes:
            if mark < 0 and received >= start_bytes:
                wall, cpu, mark = time.perf_counter(), time.process_time(), received
            got = recv_into(buffer)
            if not got:
                return error_line("the source closed the stream")
            received += got
            if time.monotonic() > deadline:
                return error_line(f"timed out after {timeout:g} s")
        if mark < 0:
            return error_line("the timed window fit in one read: raise --frames")
        seconds, cpu = time.perf_counter() - wall, time.process_time() - cpu
        measured = (received - mark) / frame_bytes
    return result_line(frames=round(measured), seconds=seconds, cpu=cpu)


# -- bare trio-websocket ----------------------------------------------------------------------


async def trio_websocket_loop(url: str, meter: Meter) -> None:
    import trio_websocket

    from engine.transport import DEFAULT_MAX_MESSAGE_SIZE, TrioWebsocketTransport

    # The same queue and size limit as the engine's transport, so only the engine differs.
    async with trio_websocket.open_websocket_url(
        url,
        message_queue_size=TrioWebsocketTransport().message_queue_size,
        max_message_size=DEFAULT_MAX_MESSAGE_SIZE,
    ) as ws:
        await ws.send_message(REQUEST)
        get, loads, tick = ws.get_message, orjson.loads, meter.tick
        while not meter.done:
            loads(await get())
            tick()


# -- bare sans-IO -----------------------------------------------------------------------------


async def sansio_loop(url: str, meter: Meter) -> None:
    """Trio's TCP stream feeding ``websockets.client.ClientProtocol``, nothing else."""
    from websockets.client import ClientProtocol
    from websockets.frames import Opcode
    from websockets.http11 import Response
    from websockets.uri import parse_uri

    from engine.transport import DEFAULT_MAX_MESSAGE_SIZE

    uri = parse_uri(url)
    protocol = ClientProtocol(uri, max_size=DEFAULT_MAX_MESSAGE_SIZE)
    stream = await trio.open_tcp_stream(uri.host, uri.port)
    async with stream:
        protocol.send_request(protocol.connect())
        await stream.send_all(b"".join(protocol.data_to_send()))
        while True:
            data = await stream.receive_some(SANSIO_RECEIVE)
            if not data:
                raise ConnectionError("the source closed during the handshake")
            protocol.receive_data(data)
            events = protocol.events_received()
            if events:
                break
        if protocol.handshake_exc is not None:
            raise protocol.handshake_exc
        assert isinstance(events[0], Response)
        protocol.send_text(REQUEST.encode())
        await stream.send_all(b"".join(protocol.data_to_send()))
        text, binary = Opcode.TEXT, Opcode.BINARY
        loads, tick = orjson.loads, meter.tick
        receive_some, receive_data = stream.receive_some, protocol.receive_data
        events_received, data_to_send = protocol.events_received, protocol.data_to_send
        pending = events[1:]
        while not meter.done:
            for event in pending:
                opcode = event.opcode  # type: ignore[union-attr]
                if opcode is binary or opcode is text:
                    loads(event.data)  # type: ignore[union-attr]
                    tick()
            outgoing = data_to_send()
            if outgoing:  # pongs the protocol queued
                await stream.send_all(b"".join(outgoing))
            data = await receive_some(SANSIO_RECEIVE)
            if not data:
                raise ConnectionError("the source closed the stream")
            receive_data(data)
            pending = events_received()


# -- the engine ---------------------------------------------------------------------------------


def engine_transport(name: str) -> Transport:
    """The transport object for ``name``; :class:`Unavailable` if this checkout lacks it."""
    try:
        from engine.transport import transport_for
    except ImportError:
        if name == "trio-websocket":
            from engine.transport import TrioWebsocketTransport

            return TrioWebsocketTransport()
        raise Unavailable(
            f"transport {name!r} is not in this checkout: engine.transport has no "
            "transport_for() factory yet"
        ) from None
    try:
        return transport_for(name)
    except (ImportError, ValueError, KeyError) as exc:
        raise Unavailable(f"transport {name!r} is not available: {exc}") from exc


async def engine_loop(url: str, meter: Meter, transport_name: str) -> None:
    from engine import EVENT_TYPES, EngineConfig, open_engine
    from engine.config import KNOWN_TRANSPORTS
    from engine.markets import MarketCatalog

    transport = engine_transport(transport_name)
    # The config names the transport too when it knows the name, so the engine's own
    # selection and the object passed here agree.
    named: dict[str, Any] = (
        {"transport": transport_name} if transport_name in KNOWN_TRANSPORTS else {}
    )
    config = EngineConfig.from_options(None, ws_url=url, seed=1, **named)
    catalog = MarketCatalog.from_json(
        [{"market": CODE, "korean_name": "비트코인", "english_name": "Bitcoin"}]
    )
    async with open_engine(config, catalog=catalog, transport=transport) as engine:
        sub_id = await engine.subscribe_realtime("trade", [CODE])
        tick = meter.tick
        async with engine.stream(sub_id) as stream:
            async for item in stream:
                if isinstance(item, EVENT_TYPES):
                    raise ConnectionError(f"the engine reported {item!r} during the run")
                tick()
                if meter.done:
                    break


# -- running one loop ---------------------------------------------------------------------------

LOOPS = ("source", "trio-websocket", "sansio", "engine")


def _run_trio(
    make: Callable[[Meter], Awaitable[None]], warmup: int, frames: int, timeout: float
) -> str:
    meter = Meter(warmup, frames)

    async def main() -> str:
        with trio.move_on_after(timeout):
            await make(meter)
        if not meter.done:
            return error_line(
                f"timed out after {timeout:g} s with {meter.count:,} of {warmup + frames:,} frames"
            )
        return meter.result()

    return trio.run(main)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("loop", choices=LOOPS)
    parser.add_argument("--url", required=True)
    parser.add_argument("--warmup", type=int, required=True)
    parser.add_argument("--frames", type=int, required=True)
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--cpu", type=int)
    parser.add_argument("--transport", default="trio-websocket")
    parser.add_argument("--frame-bytes", type=float, default=math.nan)
    args = parser.parse_args(argv)
    pin(args.cpu)
    window = (args.warmup, args.frames, args.timeout)
    try:
        if args.loop == "source":
            line = source_alone(args.url, *window, args.frame_bytes)
        elif args.loop == "trio-websocket":
            line = _run_trio(lambda m: trio_websocket_loop(args.url, m), *window)
        elif args.loop == "sansio":
            line = _run_trio(lambda m: sansio_loop(args.url, m), *window)
        else:
            line = _run_trio(lambda m: engine_loop(args.url, m, args.transport), *window)
    except Unavailable as exc:
        line = error_line(str(exc), skipped=True)
    except Exception as exc:  # reported in the table, not as a traceback
        line = error_line(f"{type(exc).__name__}: {exc}")
    print(line, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
