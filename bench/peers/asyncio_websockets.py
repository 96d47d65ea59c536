"""Reference row of ``bench/peers.py``: the ``websockets`` package's asyncio client + ``orjson``.

``python bench/peers/asyncio_websockets.py --url ws://... --warmup W --frames N`` connects,
subscribes to the code's trades, decodes every frame with ``orjson.loads`` and prints one JSON
line (``bench/_peers_meter.py``). Plain asyncio event loop (no uvloop).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

import orjson
from websockets.asyncio.client import connect

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench._peers_meter import Meter, error_line, pin

REQUEST = orjson.dumps(
    [{"ticket": "bench-peers"}, {"type": "trade", "codes": ["KRW-BTC"]}, {"format": "DEFAULT"}]
).decode()


async def receive(url: str, meter: Meter) -> None:
    # No compression, as for every other loop (the source would refuse it anyway), and the
    # engine's 4 MiB frame limit.
    async with connect(url, compression=None, max_size=4 * 1024 * 1024) as ws:
        await ws.send(REQUEST)
        loads, tick, recv = orjson.loads, meter.tick, ws.recv
        while not meter.done:
            loads(await recv())
            tick()
        # The measurement is over: drop the connection instead of a close handshake, which would
        # wait behind the frames still queued in the socket (up to websockets' close_timeout).
        ws.transport.abort()


async def main(args: argparse.Namespace) -> str:
    meter = Meter(args.warmup, args.frames)
    try:
        await asyncio.wait_for(receive(args.url, meter), args.timeout)
    except TimeoutError:
        return error_line(f"timed out after {args.timeout:g} s with {meter.count:,} frames")
    return meter.result()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--url", required=True)
    parser.add_argument("--warmup", type=int, required=True)
    parser.add_argument("--frames", type=int, required=True)
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--cpu", type=int)
    arguments = parser.parse_args()
    pin(arguments.cpu)
    try:
        line = asyncio.run(main(arguments))
    except Exception as exc:
        line = error_line(f"{type(exc).__name__}: {exc}")
    print(line, flush=True)
