"""The engine's commands of ``upbit-engine``: ``watch``, ``snapshot`` and ``demo``.

``watch`` and ``snapshot`` talk to the real Upbit unless ``--emulator`` starts the embedded one.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TextIO

import trio

from engine.errors import UpbitEngineError
from engine.events import EVENT_TYPES, Backfilled, Ended, Gap, Interrupted, SnapshotMissing
from engine.facade.engine import Engine
from engine.facade.open import open_engine
from engine.wire.messages import Candle, MyAsset, MyOrder, Orderbook, Ticker, Trade

__all__ = ("add_engine_commands", "describe", "run_engine_command")


def add_engine_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``watch``, ``snapshot`` and ``demo`` on the CLI's sub-parsers."""
    for name, summary in (
        ("watch", "stream realtime messages of one data type (until Ctrl-C or --count)"),
        ("snapshot", "print one SNAPSHOT per code (one-shot, snapshot ticket)"),
    ):
        command = commands.add_parser(name, help=summary, description=summary)
        command.add_argument("data_type", metavar="TYPE", help="ticker, trade, orderbook, ...")
        command.add_argument("codes", metavar="CODE", nargs="+", help="e.g. KRW-BTC KRW-ETH")
        command.add_argument(
            "--emulator",
            action="store_true",
            help="run against the embedded emulator instead of the real Upbit",
        )
        command.add_argument("--units", type=int, default=None, help="orderbook units (1/5/15/30)")
        command.add_argument("--level", type=float, default=None, help="orderbook level (KRW)")
        if name == "watch":
            command.add_argument(
                "--count", type=int, default=None, help="stop after this many messages"
            )
            command.add_argument(
                "--metrics-port",
                type=int,
                default=None,
                metavar="N",
                help="serve Prometheus metrics on 127.0.0.1:N (0: any free port)",
            )
    demo = commands.add_parser(
        "demo",
        help="run the engine on the embedded emulator and show what it does (ends by itself)",
        description=(
            "Snapshots, realtime streams, a dropped connection and its recovery, modify, soft "
            "and hard unsubscribe, the supervisor tree and a summary, on the embedded emulator."
        ),
    )
    demo.add_argument("--duration", type=float, default=20.0, help="seconds (default 20)")
    demo.add_argument("--seed", type=int, default=7, help="emulator seed (default 7)")


def _num(value: float | None) -> str:
    """Prices as a trader reads them: grouped integers for large values, 8 digits for small;
    ``?`` for a value the frame did not carry (see ``engine.wire.messages`` on drift)."""
    if value is None:
        return "?"
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.8g}"


def describe(item: object) -> str:
    """One readable line for a message or engine event."""
    match item:
        case Ticker():
            return (
                f"{item.code:<10} ticker    {item.stream_type:<8} {_num(item.trade_price):>16}"
                + ("" if item.signed_change_rate is None else f" {item.signed_change_rate:+.2%}")
            )
        case Trade():
            return (
                f"{item.code:<10} trade     {item.stream_type:<8} {_num(item.trade_price):>16} "
                f"x {_num(item.trade_volume)} {item.ask_bid} #{item.sequential_id}"
            )
        case Orderbook():
            best = item.orderbook_units[0] if item.orderbook_units else None
            top = f"{_num(best.bid_price)} / {_num(best.ask_price)}" if best else "empty"
            return (
                f"{item.code:<10} orderbook {item.stream_type:<8} {top} "
                f"({len(item.orderbook_units)} units, level {item.level:g})"
            )
        case Candle():
            return (
                f"{item.code:<10} {item.type:<9} {item.stream_type:<8} "
                f"O {_num(item.opening_price)} H {_num(item.high_price)} "
                f"L {_num(item.low_price)} C {_num(item.trade_price)}"
            )
        case MyOrder():
            return (
                f"{item.code:<10} myOrder   {item.state} {item.ask_bid} "
                f"{item.price} x {item.volume}"
            )
        case MyAsset():
            return "myAsset   " + ", ".join(f"{a.currency} {a.balance}" for a in item.assets)
        case Interrupted():
            return f"-- interrupted: {item.cause} (ticket {item.ticket})"
        case Gap():
            span = item.duration
            length = "open-ended" if span is None else f"{span:.3f} s"
            filling = f"; backfilling {', '.join(item.backfill)}" if item.backfill else ""
            return f"-- gap ({length}) on ticket {item.ticket}: {item.cause}{filling}"
        case Backfilled():
            left = "complete" if item.complete else f"{len(item.unfilled)} range(s) unfilled"
            return f"-- backfilled {item.code}: {item.delivered} trades, {left}"
        case SnapshotMissing():
            return f"-- no SNAPSHOT of {item.data_type} {item.code} within {item.waited:g} s"
        case Ended():
            return f"-- ended: {item.reason}"
    return repr(item)


@asynccontextmanager
async def _engine(args: argparse.Namespace) -> AsyncIterator[Engine]:
    port: int | None = getattr(args, "metrics_port", None)
    if args.emulator:
        from engine.testing import open_emulator

        async with (
            open_emulator() as emulator,
            open_engine(
                ws_url=emulator.ws_url, rest_url=emulator.rest_url, metrics_port=port
            ) as eng,
        ):
            yield _announce(eng)
    else:
        async with open_engine(metrics_port=port) as eng:
            yield _announce(eng)


def _announce(eng: Engine) -> Engine:
    """Say where the metrics are served (on stderr: stdout carries the messages)."""
    if eng.metrics_address is not None:
        host, port = eng.metrics_address
        print(f"metrics on http://{host}:{port}/metrics", file=sys.stderr, flush=True)
    return eng


async def _watch(args: argparse.Namespace, out: TextIO) -> None:
    async with _engine(args) as eng:
        sub_id = await eng.subscribe_realtime(
            args.data_type, args.codes, units=args.units, level=args.level
        )
        seen = 0
        async for item in eng.stream(sub_id):
            print(describe(item), file=out, flush=True)
            if not isinstance(item, EVENT_TYPES):
                seen += 1
                if args.count is not None and seen >= args.count:
                    break


async def _snapshot(args: argparse.Namespace, out: TextIO) -> None:
    async with _engine(args) as eng:
        result = await eng.request_snapshot(
            args.data_type, args.codes, units=args.units, level=args.level
        )
        for code in args.codes:
            print(describe(result[code]), file=out, flush=True)


async def _demo(args: argparse.Namespace, out: TextIO) -> None:
    from engine.cli.demo import run_demo

    await run_demo(duration=args.duration, seed=args.seed, out=out)


_COMMANDS: dict[str, Callable[[argparse.Namespace, TextIO], object]] = {
    "watch": _watch,
    "snapshot": _snapshot,
    "demo": _demo,
}


def run_engine_command(args: argparse.Namespace, *, out: TextIO | None = None) -> int | None:
    """Run ``args.command`` if it is one of the engine's; ``None`` if it is not."""
    command = _COMMANDS.get(args.command)
    if command is None:
        return None
    stream = out if out is not None else sys.stdout
    if args.command == "demo" and args.duration <= 0:
        print("upbit-engine demo: --duration must be > 0", file=sys.stderr)
        return 2
    if args.command == "watch" and args.count is not None and args.count <= 0:
        print("upbit-engine watch: --count must be > 0", file=sys.stderr)
        return 2
    port = getattr(args, "metrics_port", None)
    if port is not None and not 0 <= port <= 65535:
        print("upbit-engine watch: --metrics-port must be a TCP port (0-65535)", file=sys.stderr)
        return 2

    async def run() -> None:
        await command(args, stream)  # type: ignore[misc]

    try:
        trio.run(run)
    except KeyboardInterrupt:
        return 0
    except UpbitEngineError as exc:
        print(f"upbit-engine {args.command}: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, ValueError) else 1
    return 0
