"""Fixtures for the emulator's own tests.

The ``upbit_emulator`` fixture and its marker come from the pytest plugin. Until the plugin is
registered through its ``pytest11`` entry point they are imported here; remove these imports once
the entry point exists.
"""

from __future__ import annotations

from engine.testing.pytest_plugin import pytest_configure, upbit_emulator  # noqa: F401
