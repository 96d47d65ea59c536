"""Tests for engine.core.inspect.find_conflicts: each check's findings, messages and order.

The records are built by hand (not through a ``Registry``) so each test can set up placements the
registry would never make, and pin exactly what every check reports and in which order.
"""

from __future__ import annotations

from collections.abc import Sequence

from engine.core.inspect import find_conflicts
from engine.core.keys import StreamKey
from engine.core.lifecycle import SubscriptionState
from engine.core.records import Conflict, ConflictKind, Subscription, SubscriptionKind, TicketStatus

REALTIME = SubscriptionKind.REALTIME
SNAPSHOT = SubscriptionKind.SNAPSHOT
PRIVATE = SubscriptionKind.PRIVATE
K = ConflictKind

BTC, ETH, XRP, SOL, DOGE = "KRW-BTC", "KRW-ETH", "KRW-XRP", "KRW-SOL", "KRW-DOGE"


def key(
    data_type: str, code: str = "", units: int | None = None, level: float | None = None
) -> StreamKey:
    return StreamKey(data_type, code, units, level)


def sub(
    serial: int,
    data_types: str | Sequence[str],
    codes: Sequence[str],
    *,
    kind: SubscriptionKind = REALTIME,
    units: int | None = None,
    level: float | None = None,
    tickets: Sequence[str] = (),
) -> Subscription:
    types = (data_types,) if isinstance(data_types, str) else tuple(data_types)
    keys = tuple(key(t, c, units, level) for t in types for c in (codes or ("",)))
    return Subscription(
        id=f"sub-{serial}",
        serial=serial,
        data_types=types,
        codes=tuple(codes),
        units=units,
        level=level,
        kind=kind,
        state=SubscriptionState.ACTIVE,
        keys=keys,
        created_at=0.0,
        updated_at=0.0,
        tickets=tuple(tickets),
    )


def status(
    ticket: str,
    mode: SubscriptionKind,
    desired: Sequence[StreamKey] = (),
    awaiting: Sequence[tuple[StreamKey, float]] = (),
) -> TicketStatus:
    return TicketStatus(
        ticket=ticket,
        mode=mode,
        desired=tuple(desired),
        generation=None,
        last_generation=0,
        sent=None,
        queued=(),
        created_at=None,
        connected_at=None,
        last_message=None,
        lost_cause=None,
        awaiting_snapshot=tuple(awaiting),
    )


def of_kind(found: list[Conflict], kind: ConflictKind) -> list[Conflict]:
    return [c for c in found if c.kind is kind]


DUPLICATE_ADVICE = (
    "ask for the same streams (Upbit sends them once, yet each buffers every message); keep one "
    "and unsubscribe the others. A subscription has one reader: if several tasks need its "
    "messages, read it in one task and pass them on (a trio memory channel per consumer)"
)


# ---------------------------------------------------------------------------------------------


def test_nothing_to_find() -> None:
    assert find_conflicts([], [], now=None, snapshot_timeout=5.0) == []
    assert find_conflicts([], [], now=100.0, snapshot_timeout=5.0) == []
    live = [sub(1, "ticker", [BTC], tickets=["realtime-0"]), sub(2, "trade", [BTC])]
    statuses = [status("realtime-0", REALTIME, [key("ticker", BTC), key("trade", BTC)])]
    assert find_conflicts(live, statuses, now=100.0, snapshot_timeout=5.0) == []


def test_mode_mix_per_ticket_in_status_order() -> None:
    live = [
        # A realtime subscription on a snapshot ticket, and a snapshot one on a realtime ticket.
        sub(1, "ticker", [BTC], tickets=["snapshot-0"]),
        sub(2, "trade", [ETH], kind=SNAPSHOT, tickets=["realtime-1"]),
        # Realtime and private together is no mode mix: only snapshot-only streams are kept apart.
        sub(3, "ticker", [XRP], tickets=["realtime-0"]),
        sub(4, "myAsset", [], kind=PRIVATE, tickets=["realtime-0"]),
        # A ticket no status describes is not looked at.
        sub(5, "ticker", [SOL], kind=SNAPSHOT, tickets=["realtime-9"]),
        sub(6, "ticker", [DOGE], tickets=["realtime-9"]),
    ]
    statuses = [
        status("realtime-0", REALTIME),
        status("realtime-1", REALTIME),
        status("snapshot-1", SNAPSHOT),
        status("snapshot-0", SNAPSHOT),
        status("private-0", PRIVATE),
    ]
    found = find_conflicts(live, statuses, now=None, snapshot_timeout=5.0)
    assert found == [
        Conflict(
            kind=K.MODE_MIX,
            message=(
                "realtime-1 would carry snapshot-only and realtime streams together; one request "
                "would cancel the other (engine bug: please report)"
            ),
            tickets=("realtime-1",),
        ),
        Conflict(
            kind=K.MODE_MIX,
            message=(
                "snapshot-0 would carry snapshot-only and realtime streams together; one request "
                "would cancel the other (engine bug: please report)"
            ),
            tickets=("snapshot-0",),
        ),
    ]


def test_mode_mix_counts_one_finding_per_ticket() -> None:
    live = [
        sub(1, "ticker", [BTC], kind=SNAPSHOT, tickets=["realtime-0", "realtime-1"]),
        sub(2, "trade", [BTC], kind=SNAPSHOT, tickets=["realtime-0"]),
        sub(3, "trade", [ETH], kind=PRIVATE, tickets=["snapshot-0"]),
    ]
    statuses = [
        status("realtime-0", REALTIME),
        status("snapshot-0", SNAPSHOT),
        status("realtime-1", REALTIME),
    ]
    found = find_conflicts(live, statuses, now=None, snapshot_timeout=5.0)
    assert [(c.kind, c.tickets) for c in found] == [
        (K.MODE_MIX, ("realtime-0",)),
        (K.MODE_MIX, ("snapshot-0",)),
        (K.MODE_MIX, ("realtime-1",)),
    ]


def test_duplicates_message_grouping_and_numeric_order() -> None:
    live = [
        sub(12, "orderbook", [BTC], units=15),
        sub(10, "trade", [XRP]),
        sub(9, "orderbook", [BTC], units=15),
        sub(11, "trade", [XRP]),
        # Same codes and type, other options or pool: not duplicates.
        sub(13, "orderbook", [BTC]),
        sub(14, "orderbook", [BTC], units=15, level=1000.0),
        sub(15, "orderbook", [BTC], units=15, kind=SNAPSHOT),
        # Order of types and codes does not matter.
        sub(16, ["ticker", "trade"], [ETH, SOL]),
        sub(17, ["trade", "ticker"], [SOL, ETH]),
        sub(18, "trade", [XRP]),
        sub(3, "ticker", [DOGE]),
        sub(2, "ticker", [DOGE]),
    ]
    found = of_kind(find_conflicts(live, [], now=None, snapshot_timeout=5.0), K.DUPLICATE)
    # Ids inside a group keep the order of ``live``; groups sort by their ids' serial numbers.
    assert [c.subscriptions for c in found] == [
        ("sub-3", "sub-2"),
        ("sub-10", "sub-11", "sub-18"),
        ("sub-12", "sub-9"),
        ("sub-16", "sub-17"),
    ]
    assert found[1] == Conflict(
        kind=K.DUPLICATE,
        message=f"subscriptions sub-10, sub-11, sub-18 {DUPLICATE_ADVICE}",
        subscriptions=("sub-10", "sub-11", "sub-18"),
    )
    for conflict in found:
        assert conflict.message == (
            f"subscriptions {', '.join(conflict.subscriptions)} {DUPLICATE_ADVICE}"
        )
        assert (conflict.tickets, conflict.keys) == ((), ())


def test_duplicate_advice_names_one_reader_and_a_memory_channel() -> None:
    live = [sub(1, "ticker", [BTC]), sub(2, "ticker", [BTC])]
    (found,) = find_conflicts(live, [], now=None, snapshot_timeout=5.0)
    assert found.kind is K.DUPLICATE
    assert "A subscription has one reader" in found.message
    assert "pass them on (a trio memory channel per consumer)" in found.message


def test_overlaps_skip_duplicates_and_other_pools() -> None:
    live = [
        sub(1, "ticker", [BTC, ETH]),
        sub(2, "ticker", [ETH, BTC]),
        sub(3, ["ticker", "trade"], [ETH, BTC]),
        # The same stream in another pool is another stream.
        sub(4, "trade", [BTC], kind=SNAPSHOT),
        sub(5, "trade", [ETH, BTC]),
        sub(6, "myOrder", [], kind=PRIVATE),
        sub(7, "myOrder", [BTC], kind=PRIVATE),
        sub(8, "myOrder", [], kind=PRIVATE),
    ]
    found = find_conflicts(live, [], now=None, snapshot_timeout=5.0)
    assert [c.kind for c in found] == [K.DUPLICATE, K.DUPLICATE] + [K.OVERLAP] * 3
    assert [c.subscriptions for c in of_kind(found, K.DUPLICATE)] == [
        ("sub-1", "sub-2"),
        ("sub-6", "sub-8"),
    ]
    assert of_kind(found, K.OVERLAP) == [
        Conflict(
            kind=K.OVERLAP,
            message="sub-1 and sub-3 share 2 stream(s); each is carried once and delivered to both",
            subscriptions=("sub-1", "sub-3"),
            keys=(key("ticker", BTC), key("ticker", ETH)),
        ),
        Conflict(
            kind=K.OVERLAP,
            message="sub-2 and sub-3 share 2 stream(s); each is carried once and delivered to both",
            subscriptions=("sub-2", "sub-3"),
            keys=(key("ticker", BTC), key("ticker", ETH)),
        ),
        Conflict(
            kind=K.OVERLAP,
            message="sub-3 and sub-5 share 2 stream(s); each is carried once and delivered to both",
            subscriptions=("sub-3", "sub-5"),
            keys=(key("trade", ETH), key("trade", BTC)),
        ),
    ]


def test_overlap_pairs_follow_the_first_shared_stream() -> None:
    live = [
        sub(1, "ticker", [BTC]),
        sub(2, "ticker", [ETH, XRP]),
        sub(3, "ticker", [XRP, ETH, BTC]),
    ]
    found = find_conflicts(live, [], now=None, snapshot_timeout=5.0)
    assert [(c.kind, c.subscriptions, c.keys) for c in found] == [
        (K.OVERLAP, ("sub-1", "sub-3"), (key("ticker", BTC),)),
        (K.OVERLAP, ("sub-2", "sub-3"), (key("ticker", ETH), key("ticker", XRP))),
    ]
    assert found[0].message == (
        "sub-1 and sub-3 share 1 stream(s); each is carried once and delivered to both"
    )


def test_split_streams_then_codes_pool_by_pool() -> None:
    book = key("orderbook", BTC, 15, 1000.0)
    statuses = [
        status("realtime-0", REALTIME, [key("ticker", BTC), key("trade", ETH), book]),
        status("realtime-1", REALTIME, [key("ticker", BTC), key("ticker", ETH), book]),
        # The same stream in another pool is not split.
        status("snapshot-0", SNAPSHOT, [key("ticker", BTC)]),
        status("snapshot-1", SNAPSHOT, [key("ticker", XRP)]),
        status("snapshot-2", SNAPSHOT, [key("ticker", XRP), key("trade", SOL)]),
        status("private-0", PRIVATE, [key("myOrder"), key("myAsset")]),
        status("private-1", PRIVATE, [key("myOrder")]),
        # Listed last, yet reported with its pool.
        status("realtime-2", REALTIME, [key("ticker", BTC)]),
    ]
    found = find_conflicts([], statuses, now=None, snapshot_timeout=5.0)
    assert found == [
        Conflict(
            kind=K.SPLIT_STREAM,
            message=(
                "ticker:KRW-BTC is wanted on realtime-0, realtime-1, realtime-2, so its messages "
                "would arrive twice (engine bug: please report)"
            ),
            tickets=("realtime-0", "realtime-1", "realtime-2"),
            keys=(key("ticker", BTC),),
        ),
        Conflict(
            kind=K.SPLIT_STREAM,
            message=(
                "orderbook:KRW-BTC.15@1000 is wanted on realtime-0, realtime-1, so its messages "
                "would arrive twice (engine bug: please report)"
            ),
            tickets=("realtime-0", "realtime-1"),
            keys=(book,),
        ),
        Conflict(
            kind=K.SPLIT_CODE,
            message=(
                "KRW-BTC is split over realtime-0, realtime-1, realtime-2; "
                "optimize_subscriptions() merges it back"
            ),
            tickets=("realtime-0", "realtime-1", "realtime-2"),
        ),
        Conflict(
            kind=K.SPLIT_CODE,
            message=(
                "KRW-ETH is split over realtime-0, realtime-1; "
                "optimize_subscriptions() merges it back"
            ),
            tickets=("realtime-0", "realtime-1"),
        ),
        Conflict(
            kind=K.SPLIT_STREAM,
            message=(
                "ticker:KRW-XRP is wanted on snapshot-1, snapshot-2, so its messages would arrive "
                "twice (engine bug: please report)"
            ),
            tickets=("snapshot-1", "snapshot-2"),
            keys=(key("ticker", XRP),),
        ),
        Conflict(
            kind=K.SPLIT_CODE,
            message=(
                "KRW-XRP is split over snapshot-1, snapshot-2; "
                "optimize_subscriptions() merges it back"
            ),
            tickets=("snapshot-1", "snapshot-2"),
        ),
        Conflict(
            kind=K.SPLIT_STREAM,
            message=(
                "myOrder:* is wanted on private-0, private-1, so its messages would arrive twice "
                "(engine bug: please report)"
            ),
            tickets=("private-0", "private-1"),
            keys=(key("myOrder"),),
        ),
        Conflict(
            kind=K.SPLIT_CODE,
            message=(
                "the private stream is split over private-0, private-1; "
                "optimize_subscriptions() merges it back"
            ),
            tickets=("private-0", "private-1"),
        ),
    ]


def test_missing_snapshots_only_with_a_clock() -> None:
    statuses = [
        status(
            "realtime-0",
            REALTIME,
            awaiting=[
                (key("ticker", BTC), 10.0),
                (key("ticker", ETH), 12.0),
                (key("orderbook", XRP, 5), 9.5),
            ],
        ),
        status("realtime-1", REALTIME, awaiting=[(key("trade", SOL), 11.0)]),
        status("realtime-2", REALTIME),
    ]
    assert find_conflicts([], statuses, now=None, snapshot_timeout=5.0) == []
    # Exactly the timeout counts as late.
    assert find_conflicts([], statuses, now=15.0, snapshot_timeout=5.0) == [
        Conflict(
            kind=K.MISSING_SNAPSHOT,
            message=(
                "no SNAPSHOT within 5 s on realtime-0 for ticker:KRW-BTC, orderbook:KRW-XRP.5; "
                "check the codes are listed, upper case and trading, and the orderbook level is "
                "supported"
            ),
            tickets=("realtime-0",),
            keys=(key("ticker", BTC), key("orderbook", XRP, 5)),
        ),
    ]
    found = find_conflicts([], statuses, now=15.0, snapshot_timeout=2.5)
    assert [(c.kind, c.tickets, c.keys) for c in found] == [
        (
            K.MISSING_SNAPSHOT,
            ("realtime-0",),
            (key("ticker", BTC), key("ticker", ETH), key("orderbook", XRP, 5)),
        ),
        (K.MISSING_SNAPSHOT, ("realtime-1",), (key("trade", SOL),)),
    ]
    assert found[1].message == (
        "no SNAPSHOT within 2.5 s on realtime-1 for trade:KRW-SOL; check the codes are listed, "
        "upper case and trading, and the orderbook level is supported"
    )


def test_every_kind_in_check_order() -> None:
    live = [
        sub(1, "ticker", [BTC], tickets=["snapshot-0", "realtime-0"]),
        sub(2, "ticker", [BTC], tickets=["realtime-0"]),
        sub(3, "ticker", [BTC, ETH], tickets=["realtime-0", "realtime-1"]),
    ]
    statuses = [
        status("realtime-1", REALTIME, [key("ticker", BTC), key("ticker", ETH)]),
        status("snapshot-0", SNAPSHOT, awaiting=[(key("ticker", XRP), 0.0)]),
        status("realtime-0", REALTIME, [key("ticker", BTC)], [(key("ticker", BTC), 1.0)]),
    ]
    found = find_conflicts(live, statuses, now=10.0, snapshot_timeout=5.0)
    assert [(c.kind, c.subscriptions, c.tickets, c.keys) for c in found] == [
        (K.MODE_MIX, (), ("snapshot-0",), ()),
        (K.DUPLICATE, ("sub-1", "sub-2"), (), ()),
        (K.OVERLAP, ("sub-1", "sub-3"), (), (key("ticker", BTC),)),
        (K.OVERLAP, ("sub-2", "sub-3"), (), (key("ticker", BTC),)),
        (K.SPLIT_STREAM, (), ("realtime-1", "realtime-0"), (key("ticker", BTC),)),
        (K.SPLIT_CODE, (), ("realtime-1", "realtime-0"), ()),
        (K.MISSING_SNAPSHOT, (), ("snapshot-0",), (key("ticker", XRP),)),
        (K.MISSING_SNAPSHOT, (), ("realtime-0",), (key("ticker", BTC),)),
    ]
    assert {c.kind for c in found} == set(ConflictKind)
