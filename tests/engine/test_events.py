"""Engine events: frozen values with a ``type`` like the messages they travel with."""

from __future__ import annotations

from datetime import UTC, datetime

import attrs
import pytest

from engine.events import EngineEvent, Gap, Interrupted, SnapshotMissing


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
    ]
    assert [event.type for event in events] == ["interrupted", "gap", "snapshot_missing"]
    gap_fields = ["ticket", "start", "end", "cause", "codes", "utc"]
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
