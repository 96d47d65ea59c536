"""Peer row of ``bench/peers.py``: ccxt.pro's ``upbit`` exchange, ``watch_trades``, local source.

Runs in the peers virtualenv (``bench/.peers-venv``), never in the project's. How ccxt.pro is
pointed at a local server (verified with ccxt 4.5.90, where ccxt.pro ships in the free ``ccxt``
package): the constructor's config is deep-merged over ``describe()``, so its ``urls.api`` (``ws``,
``public``, ``private``) point at the local source (``hostname`` alone would keep ``wss://``); the
market list is set with ``set_markets`` from one ``/v1/market/all``-shaped row instead of a REST
call. Frames are counted at ``handle_message`` (every frame, after ccxt has decoded and processed
it), because ``watch_trades`` returns coalesce under load; a consumer task keeps calling
``watch_trades`` as a real user would. Stock asyncio loop with aiohttp. Prints one JSON line
(``bench/_peers_meter.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from importlib.metadata import version
from pathlib import Path

import ccxt.pro as ccxtpro

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench._peers_meter import Meter, error_line, pin

MARKET_ROW = {"market": "KRW-BTC", "korean_name": "비트코인", "english_name": "Bitcoin"}
SYMBOL = "BTC/KRW"


class CountingUpbit(ccxtpro.upbit):  # type: ignore[misc, name-defined]
    meter: Meter

    def handle_message(self, client: object, message: object) -> None:
        super().handle_message(client, message)
        self.meter.tick()


async def run(args: argparse.Namespace) -> str:
    done = asyncio.Event()
    meter = Meter(args.warmup, args.frames, done.set)
    http = args.url.replace("ws://", "http://").partition("/websocket")[0]
    exchange = CountingUpbit({"urls": {"api": {"ws": args.url, "public": http, "private": http}}})
    exchange.meter = meter
    exchange.set_markets(exchange.parse_markets([MARKET_ROW]))

    async def consume() -> None:
        while True:
            await exchange.watch_trades(SYMBOL)

    consumer = asyncio.ensure_future(consume())
    try:
        waiter = asyncio.ensure_future(done.wait())
        finished, _ = await asyncio.wait(
            {consumer, waiter}, timeout=args.timeout, return_when=asyncio.FIRST_COMPLETED
        )
        if consumer in finished:
            consumer.result()  # raises what ended it
        if not meter.done:
            return error_line(f"timed out after {args.timeout:g} s with {meter.count:,} frames")
        return meter.result(version=version("ccxt"))
    finally:
        consumer.cancel()


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
        line = asyncio.run(run(arguments))
    except Exception as exc:
        line = error_line(f"{type(exc).__name__}: {exc}")
    print(line, flush=True)
    # No close handshake: the measurement is over, and aiohttp's would wait behind the frames
    # still queued in the socket.
    os._exit(0)
