"""Logging for operators: a long outage costs a handful of concise lines, each with its context in
``extra``; the journal rate-limits repeats and says how many a line stood for."""

from __future__ import annotations

import logging

import pytest
import trio
from trio.testing import MockClock

from engine.observability.journal import Journal
from engine.observability.operator_events import (
    ConnectionLost,
    ErrorFrame,
    EventsDropped,
    Replayed,
)

from ._engine_support import WAIT, engine_on_emulator, settle


async def test_a_200_second_outage_costs_a_few_short_lines_with_context(
    autojump_clock: MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="engine")
    async with engine_on_emulator() as (eng, emu):
        codes = [listing.market for listing in emu.catalog]
        await eng.subscribe_realtime("ticker", codes)  # conflating: nobody needs to read it
        await settle(eng, emu)
        caplog.clear()
        with trio.fail_after(WAIT + 200):
            await emu.restart(downtime=200)
            await settle(eng, emu)
        failures = eng.metrics().tickets["realtime-0"].failures
    records = [r for r in caplog.records if r.name.startswith("engine")]
    assert failures >= 10  # many attempts were made...
    assert len(records) <= 20  # ...and logged as a few lines, not one per attempt
    assert max(len(r.getMessage()) for r in records) <= 400
    assert "KRW-" not in "".join(r.getMessage() for r in records)  # counts, not code lists
    connection = [r for r in records if r.name == "engine.connection"]
    assert any("connected again after" in r.getMessage() for r in connection)
    assert all(getattr(r, "ticket", None) for r in connection)
    restarts = [r for r in records if r.name == "engine.supervisor"]
    assert restarts  # the restarts are logged...
    assert len(restarts) <= 5  # ...a line a minute per actor at most
    assert any(getattr(r, "suppressed", 0) for r in restarts)


def test_repeats_share_a_line_a_minute_that_counts_them(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    journal = Journal(lambda: now[0], log_interval=60.0)
    caplog.set_level(logging.INFO, logger="engine")
    for second in range(0, 130, 10):
        now[0] = float(second)
        journal.publish(Replayed(at=now[0], ticket="realtime-0", seconds=0.5))
    lines = [r for r in caplog.records if r.name == "engine.connection"]
    assert [r.getMessage().split(" (+")[0] for r in lines] == [
        "realtime-0 streams restored 0.50 s after the loss"
    ] * 3
    assert [getattr(r, "suppressed", None) for r in lines] == [0, 5, 5]
    assert "(+5 like it in the last 60 s)" in lines[1].getMessage()
    assert all(getattr(r, "event", None) == "replayed" for r in lines)
    assert journal.by_kind == {"replayed": 13}


def test_reserved_log_fields_are_renamed_and_not_logged_events_stay_quiet(
    caplog: pytest.LogCaptureFixture,
) -> None:
    journal = Journal(lambda: 0.0)
    caplog.set_level(logging.INFO, logger="engine")
    journal.publish(ErrorFrame(at=0.0, ticket="realtime-0", error="INVALID_PARAM", detail="x"))
    journal.publish(ConnectionLost(at=0.0, ticket="realtime-0", generation=1, cause="gone"))
    (line,) = caplog.records  # ConnectionLost is FailureLog's to log
    assert line.name == "engine.wire"
    assert getattr(line, "error", None) == "INVALID_PARAM"


def test_a_reader_that_falls_behind_is_told_how_many_it_lost() -> None:
    journal = Journal(lambda: 1.0)
    woken: list[int] = []
    reader = journal.reader(2, wake=lambda: woken.append(1))
    for generation in range(5):
        journal.publish(ConnectionLost(at=1.0, ticket="t", generation=generation, cause="c"))
    first = reader.take()
    assert isinstance(first, EventsDropped)
    assert first.count == 3
    rest = [reader.take(), reader.take()]
    assert [e.generation for e in rest if isinstance(e, ConnectionLost)] == [3, 4]
    assert reader.take() is None
    assert journal.dropped == 3
    assert len(woken) == 5
    journal.close()
    assert reader.closed
    late = journal.reader(replay=2)
    assert [late.take(), late.take()] == list(journal.recent(2))
    assert late.closed  # the journal is closed: nothing more will come


def test_a_failed_subscription_leaves_no_gap_count_and_a_forgotten_reader_detaches() -> None:
    import gc

    from engine.events import Gap
    from engine.observability.operator_events import SubscriptionFailed

    journal = Journal(lambda: 0.0)
    note = journal.note_for("sub-1")
    note(Gap(ticket="t", start=0.0, end=1.0, cause="c", codes=("KRW-BTC",)), 1, 16)
    assert journal.gaps == {"sub-1": 1}
    journal.publish(SubscriptionFailed(at=0.0, subscription_id="sub-1", cause="overflow"))
    assert journal.gaps == {}  # a failed stream gets no Ended: the count goes with the failure
    reader = journal.reader(4)
    assert journal.readers == 1
    del reader
    gc.collect()
    assert journal.readers == 0  # nobody holds it: the journal does not either


async def test_a_cancelled_receive_takes_no_event() -> None:
    from engine.runtime.event_feed import EventFeed

    journal = Journal(trio.current_time)
    feed = EventFeed(journal)
    journal.publish(ConnectionLost(at=0.0, ticket="t", generation=1, cause="c"))
    with trio.CancelScope() as scope:
        scope.cancel()
        await feed.receive()
    assert scope.cancelled_caught
    event = feed.receive_nowait()  # still there
    assert isinstance(event, ConnectionLost)
