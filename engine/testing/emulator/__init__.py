"""The Upbit emulator: a WebSocket and REST server on loopback that speaks Upbit's protocol, with
its limits, drift and fault injection. Start one with :func:`open_emulator`."""

from __future__ import annotations

from engine.testing.emulator.facade import Emulator, open_emulator

__all__ = ("Emulator", "open_emulator")
