"""Connection failures reach the log once per cause, not once per retry.

(engine.observability.failure_log)
"""

from __future__ import annotations

import logging

import pytest

from engine.observability.failure_log import HEALTHY_AFTER, FailureLog


def _lines(caplog: pytest.LogCaptureFixture) -> list[tuple[int, str]]:
    return [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "engine.connection"]


def test_a_server_down_for_minutes_costs_one_warning_and_one_info(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="engine.connection")
    log = FailureLog("realtime-0")
    for attempt in range(15):  # ports and durations differ; the cause does not
        log.failed(f"could not connect to 127.0.0.1:{9000 + attempt} after {attempt}.5 s", attempt)
    log.connected(200.0)
    lines = _lines(caplog)
    assert [level for level, _ in lines] == [logging.WARNING, logging.INFO]
    assert "attempt 1" in lines[0][1]
    assert "after 15 failed attempt(s) over 200.0 s" in lines[1][1]
    assert caplog.records[0].ticket == "realtime-0"  # type: ignore[attr-defined]


def test_a_new_cause_is_news_and_a_flapping_link_is_not(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="engine.connection")
    log = FailureLog("realtime-1")
    now = 0.0
    for _ in range(10):  # connects, then drops within seconds, again and again
        log.failed("connection aborted without a close frame", now)
        log.connected(now + 1)
        now += 5
    assert [level for level, _ in _lines(caplog)] == [logging.WARNING, logging.INFO]
    log.failed("stalled: no frame for 31.0 s", now)
    assert _lines(caplog)[-1][0] == logging.WARNING
    assert "stalled" in _lines(caplog)[-1][1]
    # Healthy for long enough: the same cause as before is news again.
    log.connected(now + 1)
    log.failed("stalled: no frame for 30.2 s", now + 1 + HEALTHY_AFTER)
    warnings = [text for level, text in _lines(caplog) if level == logging.WARNING]
    assert len(warnings) == 3
    assert "attempt 1" in warnings[-1]
