"""``upbit-engine record --out DIR TYPE:CODE[,CODE...] ...``: write streams to rotating gzip
JSON-lines files (:mod:`engine.gateway.recorder`) until Ctrl-C or SIGTERM; replay them with
``engine.testing.RecordedMarket``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TextIO

from engine.cli.output import stop_on_signals
from engine.cli.watch_command import add_endpoint_options, engine_for

__all__ = ("add_record_command", "check_record_args", "run_record")


def add_record_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    summary = "record streams to rotating gzip JSON-lines files (replay: RecordedMarket)"
    record = commands.add_parser("record", help=summary, description=summary)
    record.add_argument("specs", metavar="TYPE:CODE[,CODE...]", nargs="+", help="what to record")
    record.add_argument("--out", type=Path, required=True, metavar="DIR", help="where to write")
    record.add_argument(
        "--rotate-seconds", type=float, default=3600.0, help="a new file every N s (3600)"
    )
    record.add_argument(
        "--rotate-mb", type=float, default=256.0, help="or after N MB written (256)"
    )
    add_endpoint_options(record)


def check_record_args(args: argparse.Namespace) -> str | None:
    from engine.gateway.config import parse_spec_text

    try:
        args.parsed_specs = tuple(parse_spec_text(text) for text in args.specs)
    except ValueError as exc:
        return str(exc)
    if not args.rotate_seconds > 0 or not args.rotate_mb > 0:
        return "--rotate-seconds and --rotate-mb must be > 0"
    return None


async def run_record(args: argparse.Namespace, out: TextIO) -> None:
    from engine.gateway.recorder import Recorder, record

    del out
    recorder = Recorder(
        args.out,
        specs=args.parsed_specs,
        rotate_seconds=args.rotate_seconds,
        rotate_bytes=int(args.rotate_mb * 1024 * 1024),
    )
    try:
        async with stop_on_signals(), engine_for(args) as eng:
            print(f"recording into {args.out}", file=sys.stderr, flush=True)
            await record(eng, args.parsed_specs, recorder)
    finally:
        recorder.close()
        print(
            f"recorded {recorder.records} record(s) in {len(recorder.files)} file(s)",
            file=sys.stderr,
            flush=True,
        )
