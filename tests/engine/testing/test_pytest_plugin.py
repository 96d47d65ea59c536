"""The ``upbit_emulator`` fixture and its marker."""

from __future__ import annotations

import pytest
from trio.testing import MockClock

from engine.testing import Emulator

from ._wire import connect, recv_dict, send, subscribe


async def test_fixture_serves_a_default_emulator(upbit_emulator: Emulator) -> None:
    assert upbit_emulator.config.limits.enforce
    assert len(upbit_emulator.catalog) > 800
    async with connect(upbit_emulator) as ws:
        await send(ws, subscribe({"type": "ticker", "codes": ["KRW-BTC"]}))
        snapshot = await recv_dict(ws)
        assert (snapshot["code"], snapshot["stream_type"]) == ("KRW-BTC", "SNAPSHOT")


@pytest.mark.upbit_emulator(markets=("KRW-BTC", "KRW-ETH"), idle_timeout=120.0, seed=9)
async def test_marker_configures_the_fixture(
    autojump_clock: MockClock, upbit_emulator: Emulator
) -> None:
    assert [listing.market for listing in upbit_emulator.catalog] == ["KRW-BTC", "KRW-ETH"]
    assert (upbit_emulator.config.idle_timeout, upbit_emulator.config.seed) == (120.0, 9)
