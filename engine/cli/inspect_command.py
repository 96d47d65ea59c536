"""``upbit-engine inspect ADDRESS [--json] [--follow]``: look into a running engine through its
debug channel (``open_engine(debug=...)``, ``watch --debug``).

Without options it prints the supervision tree with its tickets, the subscriptions and the last
events; ``--json`` prints the channel's replies as JSON lines; ``--follow`` opens the live
dashboard (with ``--json``: streams events as JSON lines instead).
"""

from __future__ import annotations

import argparse
from contextlib import aclosing
from typing import TextIO

import orjson

from engine.cli.dashboard import run_dashboard
from engine.cli.debug_client import DebugClient, open_debug_client
from engine.cli.output import stop_on_signals
from engine.debug_address import parse_debug_address

__all__ = ("add_inspect_command", "check_inspect_args", "run_inspect")


def add_inspect_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    summary = "look into a running engine through its debug channel"
    inspect = commands.add_parser(
        "inspect",
        help=summary,
        description=summary
        + " (open_engine(debug=...) or watch --debug). Examples: inspect unix:/run/user/1000/"
        "upbit-engine-42.sock; inspect 127.0.0.1:8765 --follow",
    )
    inspect.add_argument("address", metavar="ADDRESS", help="unix:PATH or 127.0.0.1:PORT")
    inspect.add_argument("--json", action="store_true", help="JSON lines (for scripts)")
    inspect.add_argument(
        "--follow",
        action="store_true",
        help="live dashboard (with --json: stream the events as JSON lines)",
    )
    inspect.add_argument(
        "--interval", type=float, default=1.0, help="dashboard refresh in seconds (default 1)"
    )


def check_inspect_args(args: argparse.Namespace) -> str | None:
    try:
        parse_debug_address(args.address)
    except ValueError as exc:
        return str(exc)
    if not args.interval > 0:
        return "--interval must be > 0"
    return None


async def run_inspect(args: argparse.Namespace, out: TextIO) -> None:
    async with stop_on_signals():
        client, stream = await open_debug_client(args.address)
        async with stream:
            if args.json:
                await _json(client, out, follow=args.follow)
            elif args.follow:
                await run_dashboard(args.address, client, out, args.interval)
            else:
                await _text(client, out)


async def _json(client: DebugClient, out: TextIO, *, follow: bool) -> None:
    for command in ("tree", "tickets", "subscriptions"):
        reply = await client.request(command)
        print(orjson.dumps(reply).decode(), file=out, flush=True)
    if follow:
        async with aclosing(client.follow(recent=0)) as events:
            async for event in events:
                print(orjson.dumps({"event": event}).decode(), file=out, flush=True)


async def _text(client: DebugClient, out: TextIO) -> None:
    tree = await client.request("tree")
    print(tree["text"], file=out)
    subscriptions = (await client.request("subscriptions"))["subscriptions"]
    rows = subscriptions if isinstance(subscriptions, list) else []
    print(f"\nsubscriptions: {len(rows)}", file=out)
    for row in rows:
        codes = row["codes"]
        shown = ",".join(codes[:5]) + (f" (+{len(codes) - 5})" if len(codes) > 5 else "")
        print(
            f"  {row['id']} {row['state']} {','.join(row['types'])} {shown or '-'} "
            f"on {','.join(row['tickets']) or '-'}: delivered {row['delivered']}, "
            f"buffered {row['buffered']}/{row['max_size']}, gaps {row['gaps']}, "
            f"dropped {row['dropped']}",
            file=out,
        )
    events = (await client.request("events 10"))["events"]
    print("\nrecent events:", file=out)
    for event in events if isinstance(events, list) else []:
        print(f"  {str(event.get('utc', ''))[11:23]} {event.get('summary')}", file=out)
    out.flush()
