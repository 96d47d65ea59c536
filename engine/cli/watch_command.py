"""``upbit-engine watch``: stream several ``TYPE:CODE[,CODE...]`` at once, one timestamped line
(or one JSON object) per message and per engine event, until Ctrl-C, SIGTERM, ``--count`` or a
closed pipe.

``watch trade:KRW-BTC,KRW-ETH ticker:KRW-BTC`` subscribes once per argument; private types
take no codes (``watch myAsset``) and read ``UPBIT_ACCESS_KEY``/``UPBIT_SECRET_KEY``.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, TextIO

import orjson
import trio

from engine.cli.output import describe, stop_on_signals
from engine.core.keys import PRIVATE_TYPES
from engine.core.specs import Spec, parse_spec
from engine.events import EVENT_TYPES
from engine.facade.engine import Engine
from engine.facade.open import open_engine
from engine.observability.jsonable import to_jsonable

__all__ = (
    "add_endpoint_options",
    "add_watch_command",
    "check_watch_args",
    "engine_for",
    "engine_options",
    "format_item",
    "parse_spec_argument",
    "run_watch",
)

ACCESS_KEY_ENV = "UPBIT_ACCESS_KEY"
SECRET_KEY_ENV = "UPBIT_SECRET_KEY"


def parse_spec_argument(text: str) -> Spec:
    """``parse_spec`` for argparse: its message becomes the usage error."""
    try:
        return parse_spec(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_watch_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    summary = "stream realtime messages and engine events (until Ctrl-C, SIGTERM or --count)"
    watch = commands.add_parser(
        "watch",
        help=summary,
        description=summary
        + ". Examples: watch trade:KRW-BTC,KRW-ETH ticker:KRW-BTC; watch --json orderbook:KRW-BTC"
        f"; watch myAsset (keys from {ACCESS_KEY_ENV} and {SECRET_KEY_ENV}).",
    )
    watch.add_argument(
        "specs",
        metavar="TYPE:CODE[,CODE...]",
        nargs="+",
        type=parse_spec_argument,
        help="what to watch",
    )
    add_endpoint_options(watch)
    watch.add_argument("--json", action="store_true", help="one JSON object a line (for pipes)")
    watch.add_argument(
        "--debug",
        metavar="ADDRESS",
        default=None,
        help="serve the debug channel at unix:PATH or 127.0.0.1:PORT (see upbit-engine inspect)",
    )
    watch.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        metavar="N",
        help="serve Prometheus metrics on 127.0.0.1:N (0: any free port)",
    )
    watch.add_argument("--count", type=int, default=None, help="stop after this many messages")
    watch.add_argument("--units", type=int, default=None, help="orderbook units (1/5/15/30)")
    watch.add_argument("--level", type=float, default=None, help="orderbook level (KRW)")


def add_endpoint_options(command: argparse.ArgumentParser) -> None:
    """``--ws-url``/``--private-ws-url``/``--rest-url`` and ``--emulator``."""
    command.add_argument(
        "--ws-url", default=None, metavar="URL", help="public WebSocket (default: Upbit's)"
    )
    command.add_argument(
        "--private-ws-url",
        default=None,
        metavar="URL",
        help="private WebSocket (default: --ws-url + '/private', or Upbit's)",
    )
    command.add_argument(
        "--rest-url", default=None, metavar="URL", help="quotation REST API (default: Upbit's)"
    )
    command.add_argument(
        "--emulator",
        action="store_true",
        help="run against the embedded emulator instead of the real Upbit",
    )


def check_watch_args(args: argparse.Namespace) -> str | None:
    """What is wrong with the options, for a usage error (``None``: nothing)."""
    if args.count is not None and args.count <= 0:
        return "--count must be > 0"
    if args.metrics_port is not None and not 0 <= args.metrics_port <= 65535:
        return "--metrics-port must be a TCP port (0-65535)"
    if args.emulator and (args.ws_url or args.rest_url or args.private_ws_url):
        return "--emulator runs its own endpoints: drop --ws-url/--rest-url"
    private = [spec for spec in args.specs if spec.data_type in PRIVATE_TYPES]
    if private and not args.emulator and not _env_keys():
        return (
            f"{private[0].data_type} needs API keys: set {ACCESS_KEY_ENV} and {SECRET_KEY_ENV} "
            "(never on the command line)"
        )
    return None


def _env_keys() -> dict[str, str]:
    access, secret = os.environ.get(ACCESS_KEY_ENV), os.environ.get(SECRET_KEY_ENV)
    return {"access_key": access, "secret_key": secret} if access and secret else {}


def engine_options(args: argparse.Namespace) -> dict[str, Any]:
    """``open_engine`` options from the endpoint, debug and metrics flags and the key env."""
    options: dict[str, Any] = {}
    if args.ws_url:
        options["ws_url"] = args.ws_url
        options["private_ws_url"] = args.private_ws_url or args.ws_url.rstrip("/") + "/private"
    elif args.private_ws_url:
        options["private_ws_url"] = args.private_ws_url
    if args.rest_url:
        options["rest_url"] = args.rest_url
    if getattr(args, "debug", None):
        options["debug"] = args.debug
    if getattr(args, "metrics_port", None) is not None:
        options["metrics_port"] = args.metrics_port
    options.update(_env_keys())
    return options


@asynccontextmanager
async def engine_for(args: argparse.Namespace) -> AsyncIterator[Engine]:
    """The engine the flags describe (on an embedded emulator with ``--emulator``); says on
    stderr where its metrics and debug channel are."""
    options = engine_options(args)
    if args.emulator:
        from engine.testing import open_emulator

        async with open_emulator() as emulator:
            options.update(
                ws_url=emulator.ws_url,
                private_ws_url=emulator.private_ws_url,
                rest_url=emulator.rest_url,
                access_key=emulator.access_key,
                secret_key=emulator.secret_key,
            )
            async with open_engine(**options) as eng:
                yield _announce(eng)
    else:
        async with open_engine(**options) as eng:
            yield _announce(eng)


def _announce(eng: Engine) -> Engine:
    """Where metrics and the debug channel are served (stderr: stdout carries the data)."""
    if eng.metrics_address is not None:
        host, port = eng.metrics_address
        print(f"metrics on http://{host}:{port}/metrics", file=sys.stderr, flush=True)
    if eng.debug_address is not None:
        print(f"debug channel on {eng.debug_address}", file=sys.stderr, flush=True)
    return eng


def _stamp() -> str:
    return datetime.now(UTC).strftime("%H:%M:%S.%f")[:-3]


def format_item(item: object, subscription_id: str, *, as_json: bool) -> str:
    """One output line for a message or an engine event."""
    if as_json:
        record = {
            "ts": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "subscription": subscription_id,
            "type": getattr(item, "type", type(item).__name__),
            "event": isinstance(item, EVENT_TYPES),
            "data": to_jsonable(item),
        }
        return orjson.dumps(record).decode()
    return f"{_stamp()} {describe(item)}"


async def run_watch(args: argparse.Namespace, out: TextIO) -> None:
    """Subscribe to every spec and print until stopped (``--count`` messages, a signal)."""
    async with stop_on_signals() as scope, engine_for(args) as eng:
        subscriptions = [
            await eng.subscribe_realtime(
                spec.data_type, list(spec.codes), units=args.units, level=args.level
            )
            for spec in args.specs
        ]
        seen = 0
        limit = args.count

        async def show(sub_id: str) -> None:
            nonlocal seen
            async for item in eng.stream(sub_id):
                print(format_item(item, sub_id, as_json=args.json), file=out, flush=True)
                if not isinstance(item, EVENT_TYPES):
                    seen += 1
                    if limit is not None and seen >= limit:
                        scope.cancel()
                        return

        async with trio.open_nursery() as nursery:
            for sub_id in subscriptions:
                nursery.start_soon(show, sub_id)
