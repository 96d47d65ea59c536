"""pytest plugin: the ``upbit_emulator`` fixture.

Registered through the ``pytest11`` entry point of the package, so any project that installs
upbit-engine gets the fixture without configuration. It needs pytest-trio (the fixture is async;
with ``trio_mode = true`` every ``async def test_*`` runs under Trio)::

    async def test_my_client(upbit_emulator):
        async with my_client(upbit_emulator.ws_url) as client:
            ...

Configure one test with the marker (any :class:`~engine.testing.EmulatorConfig` field)::

    @pytest.mark.upbit_emulator(idle_timeout=120, markets=("KRW-BTC", "KRW-ETH"))
    async def test_with_docs_idle_timeout(upbit_emulator): ...
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import attrs
import pytest

from engine.testing.config import EmulatorConfig
from engine.testing.emulator.facade import Emulator, open_emulator

__all__ = ("pytest_configure", "upbit_emulator")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "upbit_emulator(**fields): EmulatorConfig fields for the upbit_emulator fixture",
    )


@pytest.fixture
async def upbit_emulator(request: pytest.FixtureRequest) -> AsyncIterator[Emulator]:
    """A running Upbit emulator (``engine.testing.Emulator``) on a free port of 127.0.0.1."""
    marker = request.node.get_closest_marker("upbit_emulator")
    config = EmulatorConfig()
    if marker is not None:
        if marker.args:
            raise TypeError(
                "upbit_emulator marker takes keyword arguments only, e.g. "
                "@pytest.mark.upbit_emulator(idle_timeout=120)"
            )
        config = attrs.evolve(config, **marker.kwargs)
    async with open_emulator(config) as emulator:
        yield emulator
