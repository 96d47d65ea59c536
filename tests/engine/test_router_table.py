"""Route and RoutingTable: validation and lookup."""

from __future__ import annotations

import pytest

from engine.core.keys import StreamKey
from engine.routing.router import Route, RoutingTable, SubscriberBuffer
from tests.engine.test_router_support import key, route


def test_lookup_by_ticket_type_and_code() -> None:
    a, b = SubscriberBuffer("a"), SubscriberBuffer("b")
    table = RoutingTable(
        [
            route("rt-0", "ticker", "KRW-BTC", a),
            route("rt-0", "ticker", "KRW-BTC", b, snapshot=False),
            route("rt-1", "orderbook", "KRW-ETH", b, units=5, level=10.0),
            Route("pv-0", StreamKey("myAsset", ""), a),
        ]
    )
    assert [r.subscriber for r in table.lookup("rt-0", "ticker", "KRW-BTC")] == ["a", "b"]
    assert table.lookup("rt-1", "ticker", "KRW-BTC") == ()
    (book,) = table.lookup("rt-1", "orderbook", "KRW-ETH")
    assert (book.rows, book.level) == (5, 10.0)
    assert table.lookup("pv-0", "myAsset", "")[0].rows is None
    assert table.awaiting == {("rt-0", key("ticker"), "a"), ("rt-1", book.key, "b")}
    assert table.tickets == {"rt-0", "rt-1", "pv-0"}
    assert dict(table.buffers) == {"a": a, "b": b}
    assert len(table) == 4
    assert [r.subscriber for r in table.routes_on("rt-0")] == ["a", "b"]


def test_orderbook_defaults_are_thirty_rows_and_level_zero() -> None:
    r = route("rt-0", "orderbook", "KRW-BTC", SubscriberBuffer("a"))
    assert (r.rows, r.level) == (30, 0.0)
    assert r.index == ("rt-0", "orderbook", "KRW-BTC")
    assert r.id == ("rt-0", key("orderbook"), "a")


def test_empty_table() -> None:
    table = RoutingTable()
    assert len(table) == 0
    assert table.awaiting == frozenset()
    assert table.lookup("x", "ticker", "KRW-BTC") == ()


@pytest.mark.parametrize(
    ("stream", "snapshot", "problem"),
    [
        (StreamKey("myAsset", "KRW-BTC"), False, "myAsset has no code"),
        (StreamKey("myOrder", ""), True, "never send a SNAPSHOT"),
        (StreamKey("ticker", ""), False, "ticker needs a code"),
        (StreamKey("ticker", "KRW-BTC", 5), False, "orderbook only"),
        (StreamKey("orderbook", "KRW-BTC", 7), False, "use 1, 5, 15 or 30"),
        (StreamKey("nope", "KRW-BTC"), False, "unknown data type"),
    ],
)
def test_route_rejects_what_cannot_be_routed(
    stream: StreamKey, snapshot: bool, problem: str
) -> None:
    with pytest.raises(ValueError, match=problem):
        Route("rt-0", stream, SubscriberBuffer("a"), snapshot=snapshot)


def test_route_needs_a_ticket_and_a_buffer() -> None:
    with pytest.raises(ValueError, match="ticket must be a non-empty string"):
        Route("", key("ticker"), SubscriberBuffer("a"))
    with pytest.raises(ValueError, match="buffer must be a SubscriberBuffer"):
        Route("rt-0", key("ticker"), object())  # type: ignore[arg-type]


def test_table_rejects_two_buffers_for_one_subscription_and_repeated_routes() -> None:
    one, other = SubscriberBuffer("a"), SubscriberBuffer("a")
    with pytest.raises(ValueError, match="two different buffers"):
        RoutingTable([route("t", "ticker", "KRW-BTC", one), route("t", "trade", "KRW-BTC", other)])
    with pytest.raises(ValueError, match="listed twice"):
        RoutingTable([route("t", "ticker", "KRW-BTC", one), route("t", "ticker", "KRW-BTC", one)])
    with pytest.raises(ValueError, match="is not a Route"):
        RoutingTable(["nope"])  # type: ignore[list-item]


def test_tables_are_values() -> None:
    a = SubscriberBuffer("a")
    first = RoutingTable([route("t", "ticker", "KRW-BTC", a)])
    second = RoutingTable([route("t", "ticker", "KRW-BTC", a)])
    assert first == second
    with pytest.raises(AttributeError):
        first.routes = ()  # type: ignore[misc]
