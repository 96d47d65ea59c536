"""Router.update: changing the table in force in proportion to the change (the equivalence with
publish over random histories is in test_router_update_properties.py)."""

from __future__ import annotations

import pytest

from engine.core.keys import StreamKey
from engine.events import Gap, Interrupted
from engine.routing.router import Route, Router, RoutingTable, SubscriberBuffer
from tests.engine.test_router_support import SNAP, drain, key, route, ticker, trade

T = "realtime-0"
U = "realtime-1"


def test_update_adds_and_removes_routes_and_the_table_follows() -> None:
    a, b = SubscriberBuffer("a"), SubscriberBuffer("b")
    router = Router()
    router.ticket_connected(T, 1, at=0.0)
    first = route(T, "ticker", "KRW-BTC", a, snapshot=False)
    router.update(add=[first])
    assert router.revision == 1
    assert router.route(T, 1, ticker(price=1.0)) == 1
    second = route(T, "ticker", "KRW-ETH", b, snapshot=False)
    router.update(remove=[first.id], add=[second])
    assert router.revision == 2
    assert router.table == RoutingTable([second])
    assert set(router.route_ids) == {second.id}
    assert router.route(T, 1, ticker(price=2.0)) == 0  # a's stream is gone
    assert router.route(T, 1, ticker("KRW-ETH", 3.0)) == 1
    assert [m.trade_price for m in drain(a)] == [1.0]  # type: ignore[union-attr]
    assert [m.trade_price for m in drain(b)] == [3.0]  # type: ignore[union-attr]
    assert set(router.statistics().subscribers) == {"b"}


def test_an_empty_update_changes_nothing() -> None:
    router = Router()
    router.update()
    assert router.revision == 0


def test_a_new_flagged_route_waits_for_its_snapshot_and_streaming_ones_do_not_get_it() -> None:
    a, b = SubscriberBuffer("a"), SubscriberBuffer("b")
    router = Router()
    router.ticket_connected(T, 1, at=0.0)
    router.update(add=[route(T, "ticker", "KRW-BTC", a, snapshot=False)])
    router.update(add=[route(T, "ticker", "KRW-BTC", b, snapshot=True)])
    assert router.waiting == {(T, key("ticker"), "b")}
    assert router.route(T, 1, ticker(price=1.0)) == 1  # a streams on, b is held back
    assert router.route(T, 1, ticker(price=2.0, stream=SNAP)) == 1  # only b waits
    assert router.route(T, 1, ticker(price=3.0)) == 2
    assert [m.trade_price for m in drain(a)] == [1.0, 3.0]  # type: ignore[union-attr]
    assert [m.trade_price for m in drain(b)] == [2.0, 3.0]  # type: ignore[union-attr]


def test_a_replaced_route_keeps_its_wait_and_a_raised_flag_arms_one() -> None:
    a = SubscriberBuffer("a")
    flagged = route(T, "ticker", "KRW-BTC", a, snapshot=True)
    plain = route(T, "ticker", "KRW-BTC", a, snapshot=False)
    router = Router()
    router.ticket_connected(T, 1, at=0.0)
    router.update(add=[flagged])
    router.update(remove=[flagged.id], add=[plain])  # the flag falls: the wait carries over
    assert router.waiting == {flagged.id}
    router.route(T, 1, ticker(stream=SNAP))
    assert router.waiting == frozenset()
    router.update(remove=[plain.id], add=[flagged])  # raised again: a new request
    assert router.waiting == {flagged.id}
    router.route(T, 1, ticker(stream=SNAP))
    router.update(remove=[flagged.id], add=[flagged])  # still raised: not re-armed
    assert router.waiting == frozenset()
    assert router.table.awaiting == {flagged.id}


@pytest.mark.parametrize(
    ("remove", "add", "problem"),
    [
        ([(T, key("trade"), "a")], [], "not in the table"),
        ([(T, key("ticker"), "a"), (T, key("ticker"), "a")], [], "twice for removal"),
        ([], ["nope"], "is not a Route"),
        ([], ["existing"], "already in the table"),
        ([], ["twice", "twice"], "listed twice"),
        ([], ["other-buffer"], "two different buffers"),
    ],
)
def test_an_invalid_update_raises_and_changes_nothing(
    remove: list[tuple[str, StreamKey, str]], add: list[str], problem: str
) -> None:
    a = SubscriberBuffer("a")
    existing = route(T, "ticker", "KRW-BTC", a)
    router = Router()
    router.update(add=[existing])
    made = {
        "existing": existing,
        "twice": route(T, "trade", "KRW-BTC", a),
        "other-buffer": route(T, "trade", "KRW-BTC", SubscriberBuffer("a")),
    }
    routes = [made.get(name, name) for name in add]
    with pytest.raises(ValueError, match=problem):
        router.update(remove=remove, add=routes)  # type: ignore[arg-type]
    assert router.revision == 1
    assert router.table == RoutingTable([existing])
    assert router.waiting == {existing.id}


def test_a_subscription_may_change_buffer_only_with_all_its_routes() -> None:
    old, new = SubscriberBuffer("a"), SubscriberBuffer("a")
    first = route(T, "ticker", "KRW-BTC", old)
    router = Router()
    router.update(add=[first, route(T, "trade", "KRW-BTC", old)])
    with pytest.raises(ValueError, match="two different buffers"):
        router.update(remove=[first.id], add=[route(T, "ticker", "KRW-BTC", new)])
    router.update(
        remove=list(router.route_ids),
        add=[route(T, "ticker", "KRW-BTC", new, snapshot=False)],
    )
    assert router.table.buffers == {"a": new}


def test_streams_leaving_a_ticket_that_is_down_get_an_open_ended_gap() -> None:
    a, b, c = SubscriberBuffer("a"), SubscriberBuffer("b"), SubscriberBuffer("c")
    on_t = [
        route(T, "ticker", "KRW-BTC", a),
        route(T, "trade", "KRW-ETH", a),
        route(T, "ticker", "KRW-ETH", b),
        route(T, "ticker", "KRW-XRP", c),
    ]
    router = Router()
    router.update(add=on_t)
    router.ticket_connected(T, 1, at=1.0)
    router.ticket_lost(T, 1, "stalled", at=5.0)
    # a's BTC ticker moves to U, its ETH trade stays on T: the outage is over for BTC (its
    # stream goes on at U, with its own SNAPSHOT), not for ETH.
    router.update(remove=[on_t[0].id], add=[route(U, "ticker", "KRW-BTC", a)])
    assert drain(a) == [
        Interrupted(T, 5.0, "stalled", ("KRW-BTC", "KRW-ETH")),
        Gap(T, 5.0, None, "stalled", ("KRW-BTC",)),
    ]
    # b leaves T entirely; c stays.
    router.update(remove=[on_t[2].id], add=[route(U, "ticker", "KRW-ETH", b)])
    got = drain(b)
    assert got == [
        Interrupted(T, 5.0, "stalled", ("KRW-ETH",)),
        Gap(T, 5.0, None, "stalled", ("KRW-ETH",)),
    ]
    router.ticket_connected(T, 2, at=8.0)
    assert drain(a) == [Gap(T, 5.0, 8.0, "stalled", ("KRW-ETH",))]  # the code that stayed
    assert drain(b) == []  # it was told already
    assert [item for item in drain(c) if isinstance(item, Gap)] == [
        Gap(T, 5.0, 8.0, "stalled", ("KRW-XRP",))
    ]


def test_the_trade_window_follows_a_stream_moved_in_one_update_and_ends_with_the_code() -> None:
    a = SubscriberBuffer("a")
    on_t = route(T, "trade", "KRW-BTC", a, snapshot=False)
    on_u = route(U, "trade", "KRW-BTC", a, snapshot=False)
    router = Router()
    router.ticket_connected(T, 1, at=0.0)
    router.ticket_connected(U, 1, at=0.0)
    router.update(add=[on_t])
    router.route(T, 1, trade(sid=7))
    router.update(remove=[on_t.id], add=[on_u])  # moved: the window stays
    assert router.route(U, 1, trade(sid=7)) == 0
    router.update(remove=[on_u.id])  # the code's last trade stream: the window goes
    router.update(add=[on_t])
    assert router.route(T, 1, trade(sid=7)) == 1
    assert [m.sequential_id for m in drain(a)] == [7, 7]  # type: ignore[union-attr]


def test_counters_survive_updates_of_their_stream() -> None:
    a, b = SubscriberBuffer("a"), SubscriberBuffer("b")
    router = Router()
    router.ticket_connected(T, 1, at=0.0)
    router.update(add=[route(T, "ticker", "KRW-BTC", a, snapshot=False)])
    router.route(T, 1, ticker())
    router.route(T, 1, ticker())
    router.update(add=[route(T, "ticker", "KRW-BTC", b)])  # same stream: counters fold
    router.route(T, 1, ticker())  # a gets it, b is held back
    router.route(T, 1, ticker(stream=SNAP))
    stats = router.statistics()
    assert dict(stats.tickets[T].routed) == {"ticker": 4}
    assert dict(stats.subscribers["a"].routed) == {"ticker": 3}
    assert dict(stats.subscribers["b"].routed) == {"ticker": 1}
    assert stats.subscribers["b"].held_back == 1
    assert stats.subscribers["b"].snapshots == 1
    assert stats.routes == 2


def test_publish_after_updates_compares_flags_with_the_table_in_force() -> None:
    a = SubscriberBuffer("a")
    router = Router()
    router.ticket_connected(T, 1, at=0.0)
    router.update(add=[route(T, "ticker", "KRW-BTC", a, snapshot=True)])
    router.route(T, 1, ticker(stream=SNAP))
    # The same flagged route published again: already flagged, not re-armed.
    router.publish(RoutingTable([route(T, "ticker", "KRW-BTC", a, snapshot=True)]))
    assert router.waiting == frozenset()
    router.update(add=[Route(T, key("ticker", "KRW-ETH"), a, snapshot=True)])
    assert router.waiting == {(T, key("ticker", "KRW-ETH"), "a")}
