"""The property-based fault-injection example of docs/USAGE.md, run for real.

``PriceWatcher`` stands for a user's own code: it keeps the last KRW-BTC price and reconnects
after any failure. The property: whatever faults a plan throws at it, once the plan is over the
watcher receives fresh prices again within two minutes.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import AsyncIterator

import trio
import trio_websocket
from hypothesis import HealthCheck, given, settings
from trio.testing import MockClock

from engine.testing import EmulatorConfig, FaultPlan, fault_plans, open_emulator


@contextlib.asynccontextmanager
async def open_ws(url: str) -> AsyncIterator[trio_websocket.WebSocketConnection]:
    """``open_websocket_url`` with two fixes a fault plan finds: the handshake is bounded (a
    connection dropped mid-handshake would wait forever), and the TCP stream is ours, so it is
    closed even when the server closes first (trio-websocket 0.12.2 leaves it open)."""
    host_port, _, path = url.removeprefix("ws://").partition("/")
    host, _, port = host_port.rpartition(":")
    stream = await trio.open_tcp_stream(host, int(port))
    try:
        async with trio.open_nursery() as nursery:
            with trio.fail_after(10):
                ws = await trio_websocket.wrap_client_stream(nursery, stream, host_port, "/" + path)
            try:
                yield ws
            finally:
                with trio.move_on_after(5):
                    await ws.aclose()
                nursery.cancel_scope.cancel()
    finally:
        await trio.aclose_forcefully(stream)


#: Failures after which reconnecting is the right answer.
RECOVERABLE = (
    OSError,  # refused, reset
    ValueError,  # a frame that is not JSON (or not UTF-8)
    KeyError,  # JSON of an unexpected shape
    trio.TooSlowError,  # a stalled connection or handshake
    trio_websocket.HandshakeError,  # 429 / 418 on the upgrade
    trio_websocket.ConnectionClosed,
)


class PriceWatcher:
    """Example user code: the last KRW-BTC trade price, kept up to date through any failure."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.price: float | None = None
        self.updates = 0
        self._updated = trio.Event()
        self._backoff = 0.5

    async def run(self) -> None:
        while True:
            try:
                await self._session()
            except* RECOVERABLE:
                pass
            await trio.sleep(self._backoff)
            self._backoff = min(self._backoff * 2, 8.0)

    async def _session(self) -> None:
        async with open_ws(self.url) as ws:
            request = [{"ticket": "watcher"}, {"type": "ticker", "codes": ["KRW-BTC"]}]
            await ws.send_message(json.dumps(request))
            while True:
                with trio.fail_after(30):  # a silent socket is a dead socket
                    message = json.loads(await ws.get_message())
                if "error" in message:
                    return  # Upbit closes the socket after an error: reconnect
                self.price = message["trade_price"]
                self.updates += 1
                self._updated.set()
                self._updated = trio.Event()
                self._backoff = 0.5

    async def wait_updates(self, count: int) -> None:
        target = self.updates + count
        while self.updates < target:
            await self._updated.wait()


@settings(
    # A few examples in CI; EMULATOR_FAULT_EXAMPLES=500 for a long search.
    max_examples=int(os.environ.get("EMULATOR_FAULT_EXAMPLES", "10")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(plan=fault_plans(max_steps=4, horizon=30.0))
async def test_price_watcher_survives_any_fault_plan(
    autojump_clock: MockClock, plan: FaultPlan
) -> None:
    # One emulator per example (a fixture would be shared by all of Hypothesis' examples).
    config = EmulatorConfig(markets=("KRW-BTC",), rates={"KRW-BTC": 2.0})
    async with open_emulator(config) as emulator:
        watcher = PriceWatcher(emulator.ws_url)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(watcher.run)
            await emulator.run_plan(plan)
            with trio.fail_after(120):  # mock-clock seconds: instant in real time
                await watcher.wait_updates(3)
            nursery.cancel_scope.cancel()
    assert watcher.price is not None, plan.describe()
    assert watcher.price > 0
