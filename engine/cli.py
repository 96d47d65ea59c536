"""The ``upbit-engine`` command line."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

__all__ = ("build_parser", "main")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="upbit-engine",
        description="A Trio-native subscription engine for Upbit's WebSocket API.",
    )
    parser.add_subparsers(dest="command", metavar="COMMAND")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    return 0
