"""The trade de-duplication window (engine.routing.dedupe) on its own: bounded, merging, and the
hot path's ``add_new`` equal to ``add`` for a new id."""

from __future__ import annotations

import pytest

from engine.routing.dedupe import TradeWindow


def test_the_window_forgets_the_oldest_id_beyond_its_limit() -> None:
    window = TradeWindow(3)
    for sid in (1, 2, 3, 4):
        window.add_new(sid, ("a",))
    assert list(window.ids) == [2, 3, 4]
    assert len(window) == 3


def test_add_merges_recipients_and_add_new_matches_add_for_new_ids() -> None:
    one, other = TradeWindow(2), TradeWindow(2)
    for sid in (10, 11, 12):
        one.add(sid, ("a",))
        other.add_new(sid, ("a",))
    assert one.ids == other.ids == {11: ("a",), 12: ("a",)}
    one.add(12, ("a", "b"))
    assert one.ids[12] == ("a", "b")
    assert list(one.order) == [11, 12]  # a known id keeps its place


@pytest.mark.parametrize("limit", [0, -1, True, 2.5])
def test_a_bad_limit_is_refused(limit: object) -> None:
    with pytest.raises(ValueError, match="positive int"):
        TradeWindow(limit)  # type: ignore[arg-type]
