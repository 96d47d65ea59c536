"""Prometheus over HTTP: the engine's metrics served by the standard client library.

``prometheus-client`` does the exposition and the HTTP (``start_http_server``: a WSGI server in
a daemon thread); the engine contributes a custom collector that reads one
:class:`~engine.observability.metrics.EngineMetrics` snapshot per scrape and turns the metrics
table (``prometheus_families``) into the library's metric families. The snapshot is taken in the
engine's Trio thread (``trio.from_thread.run_sync``), never from the server's thread, so a scrape
sees a consistent state and touches nothing concurrently. Counters keep the table's ``_total``
names (the library adds the suffix back to the base name it stores).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager

import trio
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    Metric,
    SummaryMetricFamily,
)
from prometheus_client.registry import Collector

from engine.observability.metrics import EngineMetrics, prometheus_families

__all__ = ("EngineCollector", "serve_metrics")


class EngineCollector(Collector):
    """A ``prometheus_client`` collector over ``read()``, one snapshot per scrape."""

    def __init__(self, read: Callable[[], EngineMetrics], prefix: str = "upbit_engine") -> None:
        self._read = read
        self._prefix = prefix

    def collect(self) -> Iterator[Metric]:
        for name, kind, text, samples in prometheus_families(self._read(), self._prefix):
            labels = sorted(samples[0][1]) if samples else []
            if kind == "summary":
                summary = SummaryMetricFamily(name, text, labels=labels)
                values = {suffix: value for suffix, _, value in samples}
                summary.add_metric([], count_value=int(values["_count"]), sum_value=values["_sum"])
                yield summary
                continue
            family: CounterMetricFamily | GaugeMetricFamily
            if kind == "counter":
                family = CounterMetricFamily(name, text, labels=labels)
            else:
                family = GaugeMetricFamily(name, text, labels=labels)
            for _, sample_labels, value in samples:
                family.add_metric([sample_labels[label] for label in labels], value)
            yield family


@asynccontextmanager
async def serve_metrics(
    read: Callable[[], EngineMetrics], *, host: str, port: int
) -> AsyncIterator[tuple[str, int]]:
    """Serve ``read()`` (called in this Trio thread at each scrape) on ``http://host:port/``
    for the duration of the block; yields the address bound (``port`` 0 picks a free one)."""
    token = trio.lowlevel.current_trio_token()

    def snapshot() -> EngineMetrics:
        return trio.from_thread.run_sync(read, trio_token=token)

    registry = CollectorRegistry(auto_describe=False)
    registry.register(EngineCollector(snapshot))
    server, _ = await trio.to_thread.run_sync(
        lambda: start_http_server(port, addr=host, registry=registry)
    )
    try:
        yield host, server.server_address[1]
    finally:
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(server.shutdown)
            server.server_close()
