"""The engine's commands of ``upbit-engine``: ``watch``, ``snapshot``, ``demo`` and ``inspect``.

``watch`` and ``snapshot`` talk to the real Upbit unless ``--emulator`` starts the embedded one
or ``--ws-url``/``--rest-url`` point elsewhere (a standalone ``upbit-engine emulator``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable, Callable
from typing import TextIO

import trio

from engine.cli.debug_client import DebugClientError
from engine.cli.inspect_command import add_inspect_command, check_inspect_args, run_inspect
from engine.cli.output import describe, quiet_broken_pipe, stop_on_signals
from engine.cli.record_command import add_record_command, check_record_args, run_record
from engine.cli.serve_command import add_serve_command, check_serve_args, run_serve
from engine.cli.watch_command import (
    add_endpoint_options,
    add_watch_command,
    check_watch_args,
    engine_for,
    run_watch,
)
from engine.errors import UpbitEngineError

__all__ = ("add_engine_commands", "describe", "run_engine_command")


def add_engine_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``watch``, ``snapshot``, ``demo`` and ``inspect`` on the CLI's sub-parsers."""
    add_watch_command(commands)
    summary = "print one SNAPSHOT per code (one-shot, snapshot ticket)"
    snapshot = commands.add_parser("snapshot", help=summary, description=summary)
    snapshot.add_argument("data_type", metavar="TYPE", help="ticker, trade, orderbook, ...")
    snapshot.add_argument("codes", metavar="CODE", nargs="+", help="e.g. KRW-BTC KRW-ETH")
    add_endpoint_options(snapshot)
    snapshot.add_argument("--units", type=int, default=None, help="orderbook units (1/5/15/30)")
    snapshot.add_argument("--level", type=float, default=None, help="orderbook level (KRW)")
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
    add_inspect_command(commands)
    add_serve_command(commands)
    add_record_command(commands)


async def _snapshot(args: argparse.Namespace, out: TextIO) -> None:
    async with stop_on_signals(), engine_for(args) as eng:
        result = await eng.request_snapshot(
            args.data_type, args.codes, units=args.units, level=args.level
        )
        for code in args.codes:
            print(describe(result[code]), file=out, flush=True)


async def _demo(args: argparse.Namespace, out: TextIO) -> None:
    from engine.cli.demo import run_demo

    async with stop_on_signals():
        await run_demo(duration=args.duration, seed=args.seed, out=out)


_COMMANDS: dict[str, Callable[[argparse.Namespace, TextIO], Awaitable[object]]] = {
    "watch": run_watch,
    "snapshot": _snapshot,
    "demo": _demo,
    "inspect": run_inspect,
    "serve": run_serve,
    "record": run_record,
}


def _usage_problem(args: argparse.Namespace) -> str | None:
    if args.command == "demo" and args.duration <= 0:
        return "--duration must be > 0"
    if args.command == "watch":
        return check_watch_args(args)
    if args.command == "inspect":
        return check_inspect_args(args)
    if args.command == "serve":
        return check_serve_args(args)
    if args.command == "record":
        return check_record_args(args)
    if args.command == "snapshot" and args.emulator and (args.ws_url or args.rest_url):
        return "--emulator runs its own endpoints: drop --ws-url/--rest-url"
    return None


def run_engine_command(args: argparse.Namespace, *, out: TextIO | None = None) -> int | None:
    """Run ``args.command`` if it is one of the engine's; ``None`` if it is not."""
    command = _COMMANDS.get(args.command)
    if command is None:
        return None
    stream = out if out is not None else sys.stdout
    problem = _usage_problem(args)
    if problem is not None:
        print(f"upbit-engine {args.command}: {problem}", file=sys.stderr)
        return 2

    async def run() -> None:
        await command(args, stream)

    try:
        trio.run(run)
    except KeyboardInterrupt:  # a second Ctrl-C while stopping
        return 0
    except Exception as exc:
        return _report(args.command, exc)
    return 0


def _leaf(exc: BaseException) -> BaseException:
    """The first error inside nested exception groups (tasks of a nursery raise grouped)."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def _report(command: str, exc: Exception) -> int:
    """The exit status for an error a user can act on; anything else is a bug: re-raised."""
    leaf = _leaf(exc)
    if isinstance(leaf, BrokenPipeError):
        # `| head -1` closed our stdout: that ends the command, quietly.
        quiet_broken_pipe()
        return 0
    if isinstance(leaf, UpbitEngineError | DebugClientError | OSError | ValueError):
        print(f"upbit-engine {command}: {leaf}", file=sys.stderr)
        return 2 if isinstance(leaf, ValueError) else 1
    raise exc
