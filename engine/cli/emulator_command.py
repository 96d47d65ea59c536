"""``upbit-engine emulator``: the Upbit emulator as a standalone server, with its fault controls
over HTTP and, with ``-v``, one line per connect, request, fault and close on stdout."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from engine.testing import Emulator, EmulatorEvent

__all__ = ("add_emulator_command", "run_emulator_command")


def add_emulator_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    emulator = commands.add_parser(
        "emulator",
        help="run the Upbit emulator (WebSocket + REST) until Ctrl-C",
        description=(
            "Serve an emulated Upbit: the public and private WebSockets and the quotation REST "
            "endpoints, fed by a seeded market simulator. Point any client at the printed URLs. "
            "Faults (drops, restarts, stalls, refused connects, REST failures...) are injected "
            "over HTTP under the printed control URL: GET it for the list."
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
    emulator.add_argument(
        "--no-controls",
        action="store_true",
        help="do not serve the fault controls under /emulator/ on the REST port",
    )
    emulator.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="print a line (UTC time) per connect, refusal, request, fault and close",
    )


def _print_events(emulator: Emulator) -> None:
    """Print every emulator event from now on, one line each, until stdout goes away."""
    from engine.testing.emulator.event_lines import describe_event

    def show(event: EmulatorEvent) -> None:
        request = None
        if event.kind == "request" and event.conn_id is not None:
            # Recorded just after the request itself: it is the connection's newest.
            request = emulator.requests(event.conn_id)[-1]
        stamp = datetime.now(UTC).strftime("%H:%M:%S.%f")[:-3]
        try:
            print(f"{stamp} {describe_event(event, request)}", flush=True)
        except OSError:  # stdout closed (a pipe whose reader left): keep serving, silently
            remove()

    remove = emulator.add_listener(show)


def _banner(emulator: Emulator, no_limits: bool) -> str:
    limits = "off" if no_limits else "on (5 connects/s, 5 messages/s, 100/min)"
    lines = [
        f"Upbit emulator: {len(emulator.catalog)} pairs, seed {emulator.config.seed}, "
        f"rate limits {limits}",
        f"  public WebSocket   {emulator.ws_url}",
        f"  private WebSocket  {emulator.private_ws_url}",
        f"  REST               {emulator.rest_url}  (/v1/market/all, /v1/orderbook/instruments)",
    ]
    if emulator.control_url is not None:
        lines.append(
            f"  fault controls     {emulator.control_url}  (POST /drop, /restart, /stall...; "
            "GET it for the list)"
        )
    lines += [
        f"  access key         {emulator.access_key}",
        f"  secret key         {emulator.secret_key}",
        "Press Ctrl-C to stop.",
    ]
    return "\n".join(lines)


def run_emulator_command(args: argparse.Namespace) -> int:
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
        fault_controls=not args.no_controls,
    )

    async def serve() -> None:
        # Ctrl-C arrives as a message, not as KeyboardInterrupt raised inside whichever emulator
        # task happens to run, so shutdown always goes through the normal cancellation path.
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async with open_emulator(config) as emulator:
                print(_banner(emulator, args.no_limits), flush=True)
                if args.verbose:
                    _print_events(emulator)
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
