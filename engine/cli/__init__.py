"""The ``upbit-engine`` command: ``demo``, ``watch``, ``snapshot`` and ``emulator``."""

from __future__ import annotations

from engine.cli.entry import build_parser, main

__all__ = ("build_parser", "main")
