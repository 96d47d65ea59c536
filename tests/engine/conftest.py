"""Runs every test that opens an engine once per transport (issue 7: both pass the same suite).

A module takes part when it uses ``engine_on_emulator`` or ``open_engine``; the autouse
``engine_transport`` fixture then carries the transport's name, which ``engine_on_emulator`` (and
:func:`tests.engine._engine_support.transport_name` for direct ``open_engine`` calls) applies.
Sans-IO tests in the same folder run once.
"""

from __future__ import annotations

from collections.abc import Iterator
from types import ModuleType

import pytest

from engine.config import KNOWN_TRANSPORTS, EngineConfig
from tests.engine import _engine_support


def _opens_engines(module: ModuleType | None) -> bool:
    names = vars(module) if module is not None else {}
    return "engine_on_emulator" in names or "open_engine" in names


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "engine_transport" in metafunc.fixturenames and _opens_engines(metafunc.module):
        metafunc.parametrize("engine_transport", KNOWN_TRANSPORTS, indirect=True)


@pytest.fixture(autouse=True)
def engine_transport(request: pytest.FixtureRequest) -> Iterator[str]:
    name: str = getattr(request, "param", EngineConfig().transport)
    previous = _engine_support.TRANSPORT
    _engine_support.TRANSPORT = name
    try:
        yield name
    finally:
        _engine_support.TRANSPORT = previous
