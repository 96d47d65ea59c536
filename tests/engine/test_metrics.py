"""EngineMetrics pieces that need no engine: latency summaries and the Prometheus text."""

from __future__ import annotations

import math

from engine.metrics import LatencySummary, LatencyTracker, MetricsRecorder


def test_latency_tracker_summarises_observations() -> None:
    tracker = LatencyTracker()
    assert tracker.summary() == LatencySummary()
    assert tracker.summary().mean is None
    for value in (0.5, 0.1, -1.0, 0.4):
        tracker.observe(value)
    summary = tracker.summary()
    assert summary.count == 4
    assert math.isclose(summary.total, 1.0)
    assert (summary.minimum, summary.maximum, summary.last) == (0.0, 0.5, 0.4)
    assert math.isclose(summary.mean or 0.0, 0.25)


def test_recorder_counts_received_messages_per_type() -> None:
    recorder = MetricsRecorder()
    recorder.count_received("ticker")
    recorder.count_received("ticker", 2)
    recorder.count_received("trade")
    assert recorder.received == {"ticker": 3, "trade": 1}


def test_prometheus_text_escapes_labels_and_lists_every_family() -> None:
    from engine.metrics import _Exposition, _label_text, _number

    assert _label_text({"subscription": 'a"b\\c\nd'}) == '{subscription="a\\"b\\\\c\\nd"}'
    assert _number(math.inf) == "+Inf"
    assert _number(math.nan) == "NaN"
    assert _number(3) == "3"
    out = _Exposition("x")
    out.counter("requests_total", "Requests.", 2)
    out.summary("latency_seconds", "Latency.", LatencySummary(2, 0.5, 0.1, 0.4, 0.4))
    text = out.text()
    assert text.splitlines() == [
        "# HELP x_requests_total Requests.",
        "# TYPE x_requests_total counter",
        "x_requests_total 2",
        "# HELP x_latency_seconds Latency.",
        "# TYPE x_latency_seconds summary",
        "x_latency_seconds_count 2",
        "x_latency_seconds_sum 0.5",
    ]
