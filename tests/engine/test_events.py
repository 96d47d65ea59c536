"""Engine events: frozen values with a ``type`` like the messages they travel with."""

from __future__ import annotations

from datetime import UTC, datetime

import attrs
import pytest

from engine.events import Backfilled, EngineEvent, Gap, Interrupted, SnapshotMissing, Unfilled


def test_events_are_frozen_values() -> None:
    gap = Gap("realtime-0", 1.0, 3.5, "reset", ("KRW-BTC",))
    assert gap == Gap("realtime-0", 1.0, 3.5, "reset", ("KRW-BTC",))
    assert hash(gap) == hash(Gap("realtime-0", 1.0, 3.5, "reset", ("KRW-BTC",)))
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        gap.end = 4.0  # type: ignore[misc]
    interrupted = Interrupted("realtime-0", 1.0, "reset", ())
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        interrupted.cause = "x"  # type: ignore[misc]


def test_events_have_a_type_but_it_is_not_a_field() -> None:
    events: list[EngineEvent] = [
        Interrupted("t", 0.0, "x", ()),
        Gap("t", 0.0, None, "x", ()),
        SnapshotMissing("t", "ticker", "KRW-BTC", 5.0, 5.0),
        Backfilled("t", "KRW-BTC", 1, 2, 0, (), 3.0),
    ]
    assert [event.type for event in events] == [
        "interrupted",
        "gap",
        "snapshot_missing",
        "backfilled",
    ]
    gap_fields = ["ticket", "start", "end", "cause", "codes", "backfill", "utc"]
    assert [f.name for f in attrs.fields(Gap)] == gap_fields
    assert [f.name for f in attrs.fields(Interrupted)] == [
        "ticket",
        "start",
        "cause",
        "codes",
        "utc",
    ]


def test_the_wall_clock_time_is_outside_equality_and_repr() -> None:
    now = datetime.now(UTC)
    stamped = Interrupted("t", 0.0, "x", (), utc=now)
    assert stamped == Interrupted("t", 0.0, "x", ())
    assert "utc" not in repr(stamped)
    assert stamped.utc == now


def test_gap_duration() -> None:
    assert Gap("t", 10.0, 12.5, "x", ()).duration == 2.5
    assert Gap("t", 10.0, None, "x", ()).duration is None


def test_events_are_slotted() -> None:
    with pytest.raises(AttributeError):
        Gap("t", 0.0, 1.0, "x", ()).__dict__  # noqa: B018


def test_backfilled_says_what_stayed_unfilled() -> None:
    done = Backfilled("t", "KRW-BTC", 1_000, 2_000, 5, (), 3.0)
    assert done.complete
    assert not done.covers(1_500)
    partial = Backfilled(
        "t",
        "KRW-BTC",
        1_000,
        2_000,
        5,
        (Unfilled(1_000, 1_200, "page_limit"), Unfilled(1_900, None, "moved")),
        3.0,
    )
    assert not partial.complete
    assert partial.covers(1_000)
    assert partial.covers(1_199)
    assert not partial.covers(1_200)
    assert partial.covers(10**12)  # an open end runs to the next trade delivered
