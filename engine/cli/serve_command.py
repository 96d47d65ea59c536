"""``upbit-engine serve``: run the engine as a gateway to NATS JetStream until Ctrl-C or SIGTERM.

``serve --nats nats://127.0.0.1:4222 trade:KRW-BTC,KRW-ETH ticker:KRW-BTC`` publishes every
message to the stream ``UPBIT`` on ``upbit.<type>.<code>`` and the engine's events on
``upbit.events.<name>``; ``--config gateway.toml`` reads the same settings from a file.
"""

from __future__ import annotations

import argparse
import sys
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any, TextIO

import trio

from engine.cli.output import stop_on_signals
from engine.cli.watch_command import add_endpoint_options, engine_options

__all__ = ("add_serve_command", "check_serve_args", "run_serve")

#: Seconds between two status lines on stderr.
STATUS_INTERVAL = 30.0


def add_serve_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    summary = "run the engine as a gateway to NATS JetStream (needs upbit-engine[gateway])"
    serve = commands.add_parser("serve", help=summary, description=summary)
    serve.add_argument("specs", metavar="TYPE:CODE[,CODE...]", nargs="*", help="what to publish")
    serve.add_argument(
        "--nats", default=None, metavar="URL", help="NATS server(s), comma separated"
    )
    serve.add_argument("--config", type=Path, default=None, metavar="FILE", help="a TOML file")
    serve.add_argument("--name", default=None, help="this gateway's name (events subject)")
    serve.add_argument("--stream", default=None, help="JetStream stream (default UPBIT)")
    serve.add_argument("--buffer", type=int, default=None, help="messages held while NATS is down")
    serve.add_argument(
        "--shard", default=None, metavar="I/N", help="publish only the codes shard I of N owns"
    )
    serve.add_argument("--debug", metavar="ADDRESS", default=None, help="serve the debug channel")
    serve.add_argument("--metrics-port", type=int, default=None, metavar="N", help="Prometheus")
    add_endpoint_options(serve)


def _config(args: argparse.Namespace) -> Any:
    from engine.gateway.config import GatewayConfig, parse_spec_text
    from engine.gateway.sharding import parse_shard

    specs = tuple(parse_spec_text(text) for text in args.specs) or None
    overrides = {
        "nats": args.nats,
        "specs": specs,
        "name": args.name,
        "stream": args.stream,
        "buffer": args.buffer,
        "shard": parse_shard(args.shard) if args.shard else None,
    }
    if args.config is not None:
        return GatewayConfig.from_toml(args.config, **overrides)
    return GatewayConfig(**{key: value for key, value in overrides.items() if value is not None})


def check_serve_args(args: argparse.Namespace) -> str | None:
    try:
        import nats  # noqa: F401
    except ImportError:
        return "the gateway needs NATS support: pip install 'upbit-engine[gateway]'"
    if args.config is None and not args.nats:
        return "give --nats URL (or --config FILE)"
    try:
        _config(args)
    except (ValueError, TypeError, OSError) as exc:
        return str(exc)
    return None


async def run_serve(args: argparse.Namespace, out: TextIO) -> None:
    from engine.gateway.run import open_gateway

    del out  # stdout stays empty: the data goes to NATS, the status lines to stderr
    config = _config(args)
    options = engine_options(args)
    async with stop_on_signals(), AsyncExitStack() as stack:
        if args.emulator:
            from engine.testing import open_emulator

            emulator = await stack.enter_async_context(open_emulator())
            options.update(ws_url=emulator.ws_url, rest_url=emulator.rest_url)
        gateway = await stack.enter_async_context(open_gateway(config, **options))
        print(
            f"gateway {config.name}: publishing {len(config.own_specs())} spec(s) to stream "
            f"{config.stream} ({gateway.stream_setup}) on {config.nats}; events on "
            f"{config.events_subject}",
            file=sys.stderr,
            flush=True,
        )
        if gateway.engine.debug_address:
            print(f"debug channel on {gateway.engine.debug_address}", file=sys.stderr, flush=True)
        while True:
            await trio.sleep(STATUS_INTERVAL)
            stats = gateway.stats
            print(
                f"gateway {config.name}: {stats.stored} stored, {stats.duplicates} duplicates, "
                f"{stats.buffered} queued, {stats.dropped} dropped",
                file=sys.stderr,
                flush=True,
            )
