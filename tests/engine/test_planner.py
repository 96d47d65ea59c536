"""Tests for engine.core: packing rules, repack, diff, request building, efficiency."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.core.efficiency import measure_efficiency
from engine.core.keys import StreamKey, TicketPlan, distinct_codes
from engine.core.packing import consolidate, diff, plan, repack, tickets_needed
from engine.core.requests import build_ticket_request, fresh_keys, parking_request, snapshot_request
from engine.wire.protocol import TypeRequest


def tk(code: str) -> StreamKey:
    return StreamKey("ticker", code)


def tr(code: str) -> StreamKey:
    return StreamKey("trade", code)


def ob(code: str, units: int | None = None, level: float | None = None) -> StreamKey:
    return StreamKey("orderbook", code, units, level)


T2 = ("t0", "t1")
T3 = ("t0", "t1", "t2")


# ---------------------------------------------------------------------------------------------
# StreamKey and TicketPlan


def test_stream_keys_are_hashable_ordered_values() -> None:
    keys = [ob("KRW-BTC", 15), ob("KRW-BTC"), ob("KRW-BTC", 5, 10.0), ob("KRW-BTC", 5)]
    assert sorted(keys) == [
        ob("KRW-BTC"),
        ob("KRW-BTC", 5),
        ob("KRW-BTC", 5, 10.0),
        ob("KRW-BTC", 15),
    ]
    assert len({ob("KRW-BTC", 15), ob("KRW-BTC", 15), ob("KRW-BTC", 5)}) == 2
    assert str(ob("KRW-BTC", 15, 1000)) == "orderbook:KRW-BTC.15@1000"
    assert str(StreamKey("myAsset", "")) == "myAsset:*"
    assert StreamKey("myOrder", "").is_private
    assert not tk("KRW-BTC").is_private


def test_ticket_plan_is_a_read_only_mapping_in_pool_order() -> None:
    result = plan({}, [tk("A"), tk("B")], tickets=T2, capacity=1)
    assert isinstance(result, Mapping)
    assert list(result) == ["t0", "t1"]
    assert result["t0"] == (tk("A"),)
    assert result.as_dict()["t1"] == (tk("B"),)
    assert result.ticket_of(tk("B")) == "t1"
    assert result.ticket_of(tk("Z")) is None
    assert result.open_tickets == ("t0", "t1")
    with pytest.raises(KeyError):
        result["nope"]


# ---------------------------------------------------------------------------------------------
# plan(): the rules


def test_fill_first_uses_the_first_ticket_with_room() -> None:
    result = plan({}, [tk("A"), tk("B"), tk("C")], tickets=T3, capacity=2)
    assert result.as_dict() == {"t0": (tk("A"), tk("B")), "t1": (tk("C"),), "t2": ()}


def test_sticky_keys_stay_even_where_another_ticket_is_emptier() -> None:
    current = {"t0": [], "t1": [tk("A")]}
    result = plan(current, [tk("A"), tk("B")], tickets=T2, capacity=5)
    assert result["t1"] == (tk("A"),)
    assert result["t0"] == (tk("B"),)
    assert result.moved == 0


def test_new_type_merges_onto_its_codes_ticket_even_when_full() -> None:
    current = {"t0": [tk("A"), tk("B")], "t1": []}
    result = plan(current, [tk("A"), tk("B"), tr("B"), ob("B", 15)], tickets=T2, capacity=2)
    assert result["t0"] == (tk("A"), tk("B"), tr("B"), ob("B", 15))
    assert result["t1"] == ()
    assert result.overloaded == ()


def test_two_units_of_one_code_are_two_keys_on_one_ticket() -> None:
    result = plan({}, [ob("A", 5), ob("A", 15), tk("B")], tickets=T2, capacity=1)
    assert result["t0"] == (ob("A", 5), ob("A", 15))
    assert result["t1"] == (tk("B"),)


def test_when_every_ticket_is_full_the_least_loaded_takes_it_and_is_reported() -> None:
    current = {"t0": [tk("A"), tk("B")], "t1": [tk("C")]}
    result = plan(current, [tk("A"), tk("B"), tk("C"), tk("D"), tk("E")], tickets=T2, capacity=1)
    # t0 is over capacity already (sticky); t1 is least loaded and takes D; then both carry
    # two codes and the tie goes to pool order.
    assert result["t1"] == (tk("C"), tk("D"))
    assert result["t0"] == (tk("A"), tk("B"), tk("E"))
    assert result.overloaded == ("t0", "t1")


def test_unwanted_keys_are_dropped_and_order_follows_wanted() -> None:
    current = {"t0": [tk("C"), tk("B"), tk("A")]}
    result = plan(current, [tk("A"), tk("C")], tickets=("t0",), capacity=10)
    assert result["t0"] == (tk("A"), tk("C"))


def test_keys_of_a_vanished_ticket_are_placed_again_and_counted_as_moved() -> None:
    current = {"old": [tk("A"), tr("A")], "t0": [tk("B")]}
    result = plan(current, [tk("A"), tr("A"), tk("B")], tickets=T2, capacity=1)
    assert result["t1"] == (tk("A"), tr("A"))
    assert result.moved == 2


def test_a_key_on_two_tickets_stays_with_the_first_in_pool_order() -> None:
    current = {"t1": [tk("A")], "t0": [tk("A")]}
    assert plan(current, [tk("A")], tickets=T2, capacity=5)["t0"] == (tk("A"),)


@pytest.mark.parametrize(
    ("tickets", "capacity", "message"),
    [((), 1, "no tickets"), (("t0",), 0, "capacity"), (("t0", "t0"), 1, "unique")],
)
def test_plan_rejects_impossible_pools(
    tickets: tuple[str, ...], capacity: int, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        plan({}, [tk("A")], tickets=tickets, capacity=capacity)


def test_tickets_needed() -> None:
    assert tickets_needed(0, 5) == 0
    assert tickets_needed(1, 5) == 1
    assert tickets_needed(10, 5) == 2
    assert tickets_needed(11, 5) == 3
    assert tickets_needed(11, 5, max_tickets=2) == 2


# ---------------------------------------------------------------------------------------------
# consolidate() and repack()


def test_consolidate_folds_a_ticket_left_nearly_empty() -> None:
    current = {"t0": [tk("B")], "t1": [tk("C")], "t2": [tk("D"), tk("E")]}
    result = consolidate(current, [tk("B"), tk("C"), tk("D"), tk("E")], tickets=T3, capacity=2)
    assert len(result.open_tickets) == 2
    # The least-loaded open ticket, last in pool order on ties (t1), is folded into t0.
    assert result.as_dict() == {"t0": (tk("B"), tk("C")), "t1": (), "t2": (tk("D"), tk("E"))}
    assert result.moved == 1


def test_consolidate_relieves_an_overloaded_ticket_once_room_appears() -> None:
    current = {"t0": [tk("A"), tk("B"), tk("C")], "t1": []}
    result = consolidate(current, [tk("A"), tk("B"), tk("C")], tickets=T2, capacity=2)
    assert result.as_dict() == {"t0": (tk("A"), tk("B")), "t1": (tk("C"),)}
    assert result.overloaded == ()


def test_consolidate_moves_nothing_in_steady_state() -> None:
    current = {"t0": [tk("A"), tr("A"), tk("B")], "t1": [tk("C")]}
    result = consolidate(current, [tk("A"), tr("A"), tk("B"), tk("C")], tickets=T2, capacity=2)
    assert result.moved == 0
    assert result.as_dict() == {"t0": (tk("A"), tr("A"), tk("B")), "t1": (tk("C"),)}


def test_repack_merges_a_split_code_and_closes_tickets() -> None:
    current = {"t0": [tk("A")], "t1": [tr("A"), tk("B")], "t2": [tk("C")]}
    wanted = [tk("A"), tr("A"), tk("B"), tk("C")]
    result = repack(wanted, T3, 3, current=current)
    assert result.open_tickets == ("t1",)
    assert result["t1"] == (tk("A"), tr("A"), tk("B"), tk("C"))
    assert result.moved == 2


def test_repack_prefers_to_leave_codes_where_they_are() -> None:
    current = {"t0": [tk("A")], "t1": [tk("B"), tk("C")]}
    result = repack([tk("A"), tk("B"), tk("C")], T2, 2, current=current)
    assert result.as_dict() == {"t0": (tk("A"),), "t1": (tk("B"), tk("C"))}
    assert result.moved == 0


def test_repack_spreads_evenly_when_the_pool_is_too_small() -> None:
    wanted = [tk(code) for code in "ABCDE"]
    result = repack(wanted, T2, 1)
    assert [len(result[name]) for name in T2] == [3, 2]


def test_diff_reports_added_removed_kept_per_ticket() -> None:
    old = {"t0": (tk("A"), tk("B")), "t1": (tk("C"),)}
    new = {"t0": (tk("B"), tk("D")), "t2": (tk("C"),)}
    result = diff(old, new)
    assert list(result) == ["t0", "t1", "t2"]
    assert (result["t0"].added, result["t0"].removed, result["t0"].kept) == (
        (tk("D"),),
        (tk("A"),),
        (tk("B"),),
    )
    assert result["t1"].removed == (tk("C"),)
    assert result["t2"].added == (tk("C"),)
    assert all(d.changed for d in result.values())
    assert not diff({"t0": (tk("A"),)}, {"t0": (tk("A"),)})["t0"].changed


# ---------------------------------------------------------------------------------------------
# Requests


def test_request_groups_types_and_splits_snapshot_from_realtime() -> None:
    keys = [tk("A"), tk("B"), tr("A"), tk("C"), tr("B")]
    requests = build_ticket_request(keys, streaming={tk("A"), tk("B"), tr("A")}, snapshot_wanted=())
    assert requests == [
        TypeRequest("ticker", ("C",)),
        TypeRequest("ticker", ("A", "B"), is_only_realtime=True),
        TypeRequest("trade", ("B",)),
        TypeRequest("trade", ("A",), is_only_realtime=True),
    ]


def test_fresh_keys_are_the_ones_sent_with_a_snapshot_due() -> None:
    keys = [tk("A"), tk("B"), tr("A"), StreamKey("myOrder", "")]
    assert fresh_keys(keys, streaming={tk("A"), tr("A")}, snapshot_wanted={tr("A")}) == (
        tk("B"),
        tr("A"),
    )


def test_a_joining_subscriber_gets_a_snapshot_of_a_flowing_stream() -> None:
    requests = build_ticket_request(
        [tk("A"), tk("B")], streaming={tk("A"), tk("B")}, snapshot_wanted={tk("B")}
    )
    assert requests == [
        TypeRequest("ticker", ("B",)),
        TypeRequest("ticker", ("A",), is_only_realtime=True),
    ]


def test_orderbook_depths_of_one_code_and_level_go_as_one_stream_at_the_deepest() -> None:
    # Frames are matched by (code, level), never by row count: two depths of one pair would be
    # indistinguishable on the wire, so the deepest is carried and shallower views are trimmed.
    keys = [ob("A", 15), ob("B", 15), ob("A", 5), ob("A", 15, 1000), ob("B", 30)]
    requests = build_ticket_request(keys, streaming=(), snapshot_wanted=())
    assert requests == [
        TypeRequest("orderbook", ("A",), units=15),
        TypeRequest("orderbook", ("B",), units=30),
        TypeRequest("orderbook", ("A",), units=15, level=1000),
    ]
    # No suffix is Upbit's full depth: deeper than any suffix.
    full = build_ticket_request(
        [ob("A", 5), StreamKey("orderbook", "A")], streaming=(), snapshot_wanted=()
    )
    assert full == [TypeRequest("orderbook", ("A",))]


def test_a_merged_orderbook_asks_a_snapshot_when_any_of_its_depths_needs_one() -> None:
    old, new = ob("A", 5), ob("A", 15)
    requests = build_ticket_request([old, new], streaming={old}, snapshot_wanted=())
    assert requests == [TypeRequest("orderbook", ("A",), units=15)]
    flowing = build_ticket_request([old, new], streaming={old, new}, snapshot_wanted=())
    assert flowing == [TypeRequest("orderbook", ("A",), units=15, is_only_realtime=True)]


def test_private_types_get_plain_objects_and_every_market_wins() -> None:
    keys = [StreamKey("myOrder", "KRW-BTC"), StreamKey("myAsset", ""), StreamKey("myOrder", "")]
    requests = build_ticket_request(keys, streaming=set(keys), snapshot_wanted=set(keys))
    assert requests == [TypeRequest("myOrder", ()), TypeRequest("myAsset", ())]
    only_btc = build_ticket_request(
        [StreamKey("myOrder", "KRW-BTC")], streaming=(), snapshot_wanted=()
    )
    assert only_btc == [TypeRequest("myOrder", ("KRW-BTC",))]


def test_an_empty_set_or_a_codeless_public_key_has_no_request() -> None:
    with pytest.raises(ValueError, match="parking_request"):
        build_ticket_request([], streaming=(), snapshot_wanted=())
    with pytest.raises(ValueError, match="need a code"):
        build_ticket_request([StreamKey("ticker", "")], streaming=(), snapshot_wanted=())


def test_parking_request_is_one_snapshot_only_ticker() -> None:
    assert parking_request("USDT-BTC") == [
        TypeRequest("ticker", ("USDT-BTC",), is_only_snapshot=True)
    ]


def test_snapshot_request_merges_concurrent_asks() -> None:
    asks = [tk("A"), ob("A", 15), tk("B"), tk("A"), ob("C", 15), tr("A")]
    assert snapshot_request(asks) == [
        TypeRequest("ticker", ("A", "B"), is_only_snapshot=True),
        TypeRequest("orderbook", ("A", "C"), units=15, is_only_snapshot=True),
        TypeRequest("trade", ("A",), is_only_snapshot=True),
    ]
    with pytest.raises(ValueError, match="no snapshots"):
        snapshot_request([StreamKey("myAsset", "")])
    with pytest.raises(ValueError, match="at least one"):
        snapshot_request([])


# ---------------------------------------------------------------------------------------------
# Efficiency


def test_steady_state_packing_is_fully_efficient() -> None:
    wanted = [tk("A"), tr("A"), tk("B")]
    eff = measure_efficiency(wanted, {"t0": wanted}, capacity=10, max_tickets=2)
    assert (eff.stream, eff.connection, eff.ticket) == (1.0, 1.0, 1.0)
    assert (eff.wanted_streams, eff.carried_streams, eff.wanted_codes) == (3, 3, 2)
    assert (eff.tickets_needed, eff.tickets_open) == (1, 1)


def test_parked_duplicate_and_stale_streams_cost_stream_efficiency() -> None:
    wanted = [tk("A"), tk("B")]
    parked = measure_efficiency(wanted, {"t0": wanted, "t1": ()}, capacity=10, parked=["t1"])
    assert parked.stream == pytest.approx(2 / 3)
    assert parked.connection == pytest.approx(1 / 2)
    assert parked.ticket == pytest.approx(1 / 3)
    dup = measure_efficiency(wanted, {"t0": [tk("A"), tk("B"), tk("A")]}, capacity=10)
    assert dup.stream == pytest.approx(2 / 3)
    stale = measure_efficiency(wanted, {"t0": [tk("A"), tk("B"), tk("Z")]}, capacity=10)
    assert (stale.useful_streams, stale.carried_streams) == (2, 3)


def test_efficiency_edge_cases() -> None:
    nothing = measure_efficiency([], {}, capacity=5)
    assert (nothing.stream, nothing.connection, nothing.ticket) == (1.0, 1.0, 1.0)
    unserved = measure_efficiency([tk("A")], {}, capacity=5)
    assert unserved.connection == 0.0
    assert unserved.ticket == 0.0
    overloaded = measure_efficiency([tk("A"), tk("B")], {"t0": [tk("A"), tk("B")]}, capacity=1)
    assert overloaded.tickets_needed == 2
    assert overloaded.connection == 1.0


# ---------------------------------------------------------------------------------------------
# Properties

CODES = ("A", "B", "C", "D", "E", "F", "G", "H")
key_strategy = st.builds(
    StreamKey,
    data_type=st.sampled_from(["ticker", "trade", "orderbook"]),
    code=st.sampled_from(CODES),
    units=st.sampled_from([None, 15]),
)
wanted_strategy = st.lists(key_strategy, max_size=20, unique=True)
pool_strategy = st.integers(1, 4).map(lambda n: tuple(f"t{i}" for i in range(n)))


@st.composite
def scenario(
    draw: st.DrawFn,
) -> tuple[dict[str, list[StreamKey]], list[StreamKey], tuple[str, ...], int]:
    tickets = draw(pool_strategy)
    capacity = draw(st.integers(1, 4))
    placed = draw(st.lists(key_strategy, max_size=16, unique=True))
    homes = [*tickets, "gone"]
    current: dict[str, list[StreamKey]] = {}
    for key in placed:
        current.setdefault(draw(st.sampled_from(homes)), []).append(key)
    return current, draw(wanted_strategy), tickets, capacity


def _codes_per_ticket(result: Mapping[str, Sequence[StreamKey]]) -> dict[str, set[str]]:
    return {name: set(distinct_codes(keys)) for name, keys in result.items()}


@settings(max_examples=150)
@given(scenario())
def test_plan_properties(
    case: tuple[dict[str, list[StreamKey]], list[StreamKey], tuple[str, ...], int],
) -> None:
    current, wanted, tickets, capacity = case
    result = plan(current, wanted, tickets=tickets, capacity=capacity)
    placed = [key for keys in result.values() for key in keys]
    # Exactly the wanted keys, each once, in wanted order on each ticket.
    assert sorted(placed) == sorted(set(wanted))
    for keys in result.values():
        assert list(keys) == [key for key in wanted if key in keys]
    # Sticky: a wanted key on a pool ticket never moves.
    for name in tickets:
        for key in current.get(name, []):
            if key in wanted and all(
                key not in current.get(n, []) for n in tickets[: tickets.index(name)]
            ):
                assert result.ticket_of(key) == name
    # Deterministic, whatever the order of the current mapping.
    again = plan(
        dict(reversed(list(current.items()))), list(wanted), tickets=tickets, capacity=capacity
    )
    assert again == result
    # Capacity is only exceeded when stickiness forced it or every ticket was full.
    sticky_codes = {
        name: {k.code for k in current.get(name, []) if k in wanted and result.ticket_of(k) == name}
        for name in tickets
    }
    loads = {name: len(codes) for name, codes in _codes_per_ticket(result).items()}
    for name in result.overloaded:
        assert len(sticky_codes[name]) > capacity or min(loads.values()) >= capacity


@settings(max_examples=150)
@given(
    st.lists(key_strategy, max_size=20, unique=True), pool_strategy, st.integers(1, 4), st.data()
)
def test_merging_keeps_each_code_on_one_ticket(
    wanted: list[StreamKey], tickets: tuple[str, ...], capacity: int, data: st.DataObject
) -> None:
    # Grow a pool step by step, as the registry does: every code stays on one ticket.
    result: TicketPlan | dict[str, list[StreamKey]] = {}
    for size in range(len(wanted) + 1):
        result = plan(result, wanted[:size], tickets=tickets, capacity=capacity)
        homes: dict[str, set[str]] = {}
        for name, keys in result.items():
            for key in keys:
                homes.setdefault(key.code, set()).add(name)
        assert all(len(names) == 1 for names in homes.values())
    drop = data.draw(st.sets(st.sampled_from(wanted))) if wanted else set()
    remaining = [key for key in wanted if key not in drop]
    folded = consolidate(result, remaining, tickets=tickets, capacity=capacity)
    codes = len(set(distinct_codes(remaining)))
    assert len(folded.open_tickets) == tickets_needed(codes, capacity, max_tickets=len(tickets))
    if codes <= capacity * len(tickets):
        assert folded.overloaded == ()


@settings(max_examples=150)
@given(scenario())
def test_repack_properties(
    case: tuple[dict[str, list[StreamKey]], list[StreamKey], tuple[str, ...], int],
) -> None:
    current, wanted, tickets, capacity = case
    result = repack(wanted, tickets, capacity, current=current)
    assert sorted(k for keys in result.values() for k in keys) == sorted(set(wanted))
    codes = len(set(distinct_codes(wanted)))
    needed = tickets_needed(codes, capacity, max_tickets=len(tickets))
    assert len(result.open_tickets) == needed
    # Each code's keys together.
    homes: dict[str, set[str]] = {}
    for name, keys in result.items():
        for key in keys:
            homes.setdefault(key.code, set()).add(name)
    assert all(len(names) == 1 for names in homes.values())
    if codes <= capacity * len(tickets):
        assert result.overloaded == ()
    # Never more open tickets than a capacity-respecting current packing had.
    wanted_set = set(wanted)
    before = {name: [k for k in current.get(name, []) if k in wanted_set] for name in tickets}
    placed_before = {k for keys in before.values() for k in keys}
    respects = all(len(set(distinct_codes(keys))) <= capacity for keys in before.values())
    if respects and placed_before == wanted_set:
        assert len(result.open_tickets) <= sum(1 for keys in before.values() if keys)
    assert repack(wanted, tickets, capacity, current=current) == result
