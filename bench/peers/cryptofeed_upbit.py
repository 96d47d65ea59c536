"""Peer row of ``bench/peers.py``: cryptofeed's ``Upbit`` feed (trades), uvloop off, local source.

Runs in the peers virtualenv (``bench/.peers-venv``), never in the project's. How cryptofeed is
pointed at a local server (verified with cryptofeed 2.4.1 on Python 3.11): the symbol table is
pre-seeded (``Symbols.set``) so no REST call is made, and ``connect()`` is overridden to point the
feed's connection at the local ``ws://`` source after construction (cryptofeed refuses any address
but ``wss://`` when a connection is built, but dials whatever ``conn.address`` holds). The feed asks
for SIMPLE keys and ``isOnlyRealtime``, so the source sends it the same trades in SIMPLE keys, as
Upbit would. Frames are counted after ``message_handler`` returns (parsed with ``Decimal`` floats,
turned into a ``Trade``, passed to the callback). Plain asyncio event loop:
``FeedHandler(config={"uvloop": False})``. Prints one JSON line (``bench/_peers_meter.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from importlib.metadata import version
from pathlib import Path
from typing import Any

from cryptofeed import FeedHandler
from cryptofeed.connection import WSAsyncConn
from cryptofeed.defines import TRADES
from cryptofeed.exchanges import Upbit
from cryptofeed.symbols import Symbols

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench._peers_meter import Meter, error_line, pin

SYMBOL = "BTC-KRW"


def local_feed(url: str, meter: Meter) -> Upbit:
    class LocalUpbit(Upbit):  # type: ignore[misc]
        def connect(self) -> list[tuple[Any, ...]]:
            connections: list[tuple[Any, ...]] = super().connect()
            for conn, *_ in connections:
                if isinstance(conn, WSAsyncConn):
                    conn.address = url
            return connections

        async def message_handler(self, msg: str, conn: object, timestamp: float) -> None:
            await super().message_handler(msg, conn, timestamp)
            meter.tick()

    async def on_trade(trade: object, receipt_timestamp: float) -> None:
        return None

    Symbols.set(Upbit.id, {SYMBOL: "KRW-BTC"}, {"instrument_type": {SYMBOL: "spot"}})
    feed: Upbit = LocalUpbit(symbols=[SYMBOL], channels=[TRADES], callbacks={TRADES: on_trade})
    return feed


def run(args: argparse.Namespace) -> str:
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    done = asyncio.Event()
    meter = Meter(args.warmup, args.frames, done.set)
    handler = FeedHandler(config={"uvloop": False, "log": {"disabled": True}})
    handler.add_feed(local_feed(args.url, meter))
    handler.run(start_loop=False, install_signal_handlers=False)
    try:
        loop.run_until_complete(asyncio.wait_for(done.wait(), args.timeout))
    except TimeoutError:
        return error_line(f"timed out after {args.timeout:g} s with {meter.count:,} frames")
    return meter.result(version=version("cryptofeed"))


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
        line = run(arguments)
    except Exception as exc:
        line = error_line(f"{type(exc).__name__}: {exc}")
    print(line, flush=True)
    # No shutdown of the feed: the measurement is over, and a close handshake would wait behind
    # the frames still queued in the socket.
    os._exit(0)
