"""Prometheus over HTTP (``open_engine(metrics_port=...)``): the endpoint is served by the
standard client library, scraped over loopback and parsed with the library's own parser; its
values are the engine's ``metrics()``; it is gone when the engine closes."""

from __future__ import annotations

import httpx
import pytest
import trio
from prometheus_client.parser import text_string_to_metric_families
from trio.testing import MockClock

from ._engine_support import engine_on_emulator, settle


def _get(url: str) -> httpx.Response:
    return httpx.get(url, timeout=10.0)


async def test_the_endpoint_serves_metrics_in_the_library_format(autojump_clock: MockClock) -> None:
    async with engine_on_emulator(metrics_port=0) as (eng, emu):
        sub_id = await eng.subscribe_realtime("trade", ["KRW-BTC"])
        await settle(eng, emu)
        await trio.sleep(5.0)
        address = eng.metrics_address
        assert address is not None
        host, port = address
        assert host == "127.0.0.1"
        assert port > 0
        url = f"http://{host}:{port}/metrics"
        response = await trio.to_thread.run_sync(_get, url)
        expected = eng.metrics()
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain")
        families = {f.name: f for f in text_string_to_metric_families(response.text)}
        connects = families["upbit_engine_connects"]
        assert connects.type == "counter"
        assert [s.value for s in connects.samples if s.name.endswith("_total")] == [
            expected.connects
        ]
        received = families["upbit_engine_messages_received"]
        by_type = {s.labels["type"]: s.value for s in received.samples if s.name.endswith("_total")}
        assert by_type["trade"] >= 1
        latency = families["upbit_engine_connect_latency_seconds"]
        assert latency.type == "summary"
        assert {s.name for s in latency.samples} >= {
            "upbit_engine_connect_latency_seconds_count",
            "upbit_engine_connect_latency_seconds_sum",
        }
        assert families["upbit_engine_backfills_running"].type == "gauge"
        del sub_id
    assert eng.metrics_address is None
    with pytest.raises(httpx.ConnectError):
        await trio.to_thread.run_sync(_get, url)  # closed with the engine


async def test_no_endpoint_unless_asked(autojump_clock: MockClock) -> None:
    async with engine_on_emulator() as (eng, _):
        assert eng.metrics_address is None
