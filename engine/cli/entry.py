"""The ``upbit-engine`` command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from engine.cli.commands import add_engine_commands, run_engine_command

__all__ = ("build_parser", "main")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="upbit-engine",
        description="A Trio-native subscription engine for Upbit's WebSocket API.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    emulator = commands.add_parser(
        "emulator",
        help="run the Upbit emulator (WebSocket + REST) until Ctrl-C",
        description=(
            "Serve an emulated Upbit: the public and private WebSockets and the quotation REST "
            "endpoints, fed by a seeded market simulator. Point any client at the printed URLs."
        ),
    )
    emulator.add_argument(
        "--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)"
    )
    emulator.add_argument(
        "--port",
        type=int,
        default=0,
        help="TCP port for WebSocket and REST (default 0: a free one)",
    )
    emulator.add_argument("--seed", type=int, default=0, help="market simulator seed (default 0)")
    emulator.add_argument(
        "--rate-scale",
        type=float,
        default=1.0,
        help="multiply every pair's trading activity (default 1.0)",
    )
    emulator.add_argument(
        "--no-limits",
        action="store_true",
        help="do not enforce Upbit's connect and message rate limits",
    )
    add_engine_commands(commands)
    return parser


def _run_emulator(args: argparse.Namespace) -> int:
    import signal

    import trio

    from engine.testing import EmulatorConfig, Limits, open_emulator

    if args.port < 0 or args.rate_scale < 0:
        print("upbit-engine emulator: --port and --rate-scale must be >= 0", file=sys.stderr)
        return 2
    config = EmulatorConfig(
        host=args.host,
        port=args.port,
        seed=args.seed,
        rate_scale=args.rate_scale,
        limits=Limits(enforce=not args.no_limits),
    )

    async def serve() -> None:
        # Ctrl-C arrives as a message, not as KeyboardInterrupt raised inside whichever emulator
        # task happens to run, so shutdown always goes through the normal cancellation path.
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async with open_emulator(config) as emulator:
                limits = "off" if args.no_limits else "on (5 connects/s, 5 messages/s, 100/min)"
                print(
                    f"Upbit emulator: {len(emulator.catalog)} pairs, seed {config.seed}, "
                    f"rate limits {limits}\n"
                    f"  public WebSocket   {emulator.ws_url}\n"
                    f"  private WebSocket  {emulator.private_ws_url}\n"
                    f"  REST               {emulator.rest_url}  (/v1/market/all, "
                    "/v1/orderbook/instruments)\n"
                    f"  access key         {emulator.access_key}\n"
                    f"  secret key         {emulator.secret_key}\n"
                    "Press Ctrl-C to stop.",
                    flush=True,
                )
                async for _ in signals:
                    break
        print("stopped", flush=True)

    try:
        trio.run(serve)
    except KeyboardInterrupt:  # a second Ctrl-C during shutdown
        print("stopped", flush=True)
        return 0
    except OSError as exc:
        print(
            f"upbit-engine emulator: cannot listen on {args.host}:{args.port} ({exc.strerror}); "
            "pick another --port, or 0 for a free one",
            file=sys.stderr,
        )
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    if args.command == "emulator":
        return _run_emulator(args)
    result = run_engine_command(args)
    if result is None:
        parser.error(f"unknown command {args.command!r}")
    return result
