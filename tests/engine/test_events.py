"""Engine events: frozen values with a ``type`` like the messages they travel with."""

from __future__ import annotations

import attrs
import pytest

from engine.events import EngineEvent, Gap, Interrupted


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
    ]
    assert [event.type for event in events] == ["interrupted", "gap"]
    assert [f.name for f in attrs.fields(Gap)] == ["ticket", "start", "end", "cause", "codes"]
    assert [f.name for f in attrs.fields(Interrupted)] == ["ticket", "start", "cause", "codes"]


def test_gap_duration() -> None:
    assert Gap("t", 10.0, 12.5, "x", ()).duration == 2.5
    assert Gap("t", 10.0, None, "x", ()).duration is None


def test_events_are_slotted() -> None:
    with pytest.raises(AttributeError):
        Gap("t", 0.0, 1.0, "x", ()).__dict__  # noqa: B018
