"""The ``upbit-engine`` command line."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from engine.cli.commands import add_engine_commands, run_engine_command
from engine.cli.emulator_command import add_emulator_command, run_emulator_command

__all__ = ("build_parser", "main")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="upbit-engine",
        description="A Trio-native subscription engine for Upbit's WebSocket API.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    add_emulator_command(commands)
    add_engine_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    if args.command == "emulator":
        return run_emulator_command(args)
    result = run_engine_command(args)
    if result is None:
        parser.error(f"unknown command {args.command!r}")
    return result
