"""The incremental route publisher against a real (sans-IO) registry: what each change publishes,
the SNAPSHOT flags and ``awaiting``, and the fall-backs to a full publish. The equivalence with
the from-scratch publish over random histories is in test_router_publish_properties.py."""

from __future__ import annotations

from collections.abc import Iterable

import attrs
import pytest

from engine.core.keys import StreamKey
from engine.core.registry import Registry
from engine.events import Gap, Interrupted
from engine.routing.publish import RoutePublisher, full_routes, publish_routes
from engine.routing.router import Route, RouteId, Router, RoutingTable, SubscriberBuffer
from tests.engine.test_router_support import SNAP, drain, ticker

T = "realtime-0"
U = "realtime-1"


class CountingRouter(Router):
    """Counts whole-table publishes and updates."""

    def __init__(self) -> None:
        super().__init__()
        self.publishes = 0
        self.updates: list[tuple[int, int]] = []

    def publish(self, table: RoutingTable) -> None:
        self.publishes += 1
        super().publish(table)

    def update(self, *, remove: Iterable[RouteId] = (), add: Iterable[Route] = ()) -> None:
        removing, adding = list(remove), list(add)
        self.updates.append((len(removing), len(adding)))
        super().update(remove=removing, add=adding)


@attrs.define(eq=False)
class Core:
    registry: Registry
    router: CountingRouter = attrs.Factory(CountingRouter)
    buffers: dict[str, SubscriberBuffer] = attrs.Factory(dict)
    awaiting: set[RouteId] = attrs.Factory(set)
    now: float = 0.0

    def subscribe(self, data_type: str | tuple[str, ...], codes: list[str]) -> str:
        self.now += 1.0
        sub, _ = self.registry.subscribe(data_type, codes, now=self.now)
        self.buffers[sub.id] = SubscriberBuffer(sub.id)
        return sub.id


def core(**options: int) -> Core:
    return Core(Registry(realtime=2, snapshot=0, private=1, **options))


def ids(router: Router) -> set[tuple[str, str, str, str]]:
    return {(ticket, key.data_type, key.code, sub) for ticket, key, sub in router.route_ids}


def test_the_first_publish_is_full_and_the_next_ones_are_updates() -> None:
    c = core()
    publisher = RoutePublisher()
    first = c.subscribe("ticker", ["KRW-BTC", "KRW-ETH"])
    publisher.publish(c)
    assert (c.router.publishes, c.router.updates) == (1, [])
    second = c.subscribe("ticker", ["KRW-BTC"])
    publisher.publish(c)
    assert (c.router.publishes, c.router.updates) == (1, [(0, 1)])
    assert ids(c.router) == {
        (T, "ticker", "KRW-BTC", first),
        (T, "ticker", "KRW-ETH", first),
        (T, "ticker", "KRW-BTC", second),
    }
    c.registry.modify(second, ["KRW-XRP"], now=9.0)
    publisher.publish(c)
    assert c.router.updates[-1] == (1, 1)
    publisher.publish(c)  # nothing changed: nothing to tell the router
    assert len(c.router.updates) == 2
    assert c.router.publishes == 1


def test_new_routes_wait_and_staying_ones_keep_what_the_registry_says() -> None:
    c = core()
    c.router.ticket_connected(T, 1, at=0.0)
    first = c.subscribe("ticker", ["KRW-BTC"])
    publish_routes(c)
    btc = (T, StreamKey("ticker", "KRW-BTC"), first)
    assert c.awaiting == {btc}
    assert c.router.waiting == {btc}
    c.router.route(T, 1, ticker(stream=SNAP))
    c.awaiting.discard(btc)  # the registry processed the router's report
    second = c.subscribe("ticker", ["KRW-BTC"])
    publish_routes(c)
    joined = (T, StreamKey("ticker", "KRW-BTC"), second)
    assert c.awaiting == {joined}
    assert c.router.waiting == {joined}
    assert c.router.route(T, 1, ticker(price=2.0)) == 1  # first streams on; second waits
    assert c.router.route(T, 1, ticker(price=3.0, stream=SNAP)) == 1
    assert [m.trade_price for m in drain(c.buffers[first])] == [100.0, 2.0]  # type: ignore[union-attr]
    assert [m.trade_price for m in drain(c.buffers[second])] == [3.0]  # type: ignore[union-attr]


def test_unsubscribe_removes_routes_and_their_awaiting_entries() -> None:
    c = core()
    keep = c.subscribe("trade", ["KRW-BTC"])
    leave = c.subscribe(("ticker", "trade"), ["KRW-BTC", "KRW-ETH"])
    publish_routes(c)
    assert len(c.awaiting) == 5
    c.now += 1.0
    c.registry.unsubscribe(leave, now=c.now)
    publish_routes(c)
    assert ids(c.router) == {(T, "trade", "KRW-BTC", keep)}
    assert c.awaiting == {(T, StreamKey("trade", "KRW-BTC"), keep)}
    assert set(c.router.statistics().subscribers) == {keep}


def test_private_routes_never_wait_and_a_subscription_without_buffer_gets_none() -> None:
    c = core()
    mine = c.subscribe("myOrder", [])
    c.now += 1.0
    orphan, _ = c.registry.subscribe("ticker", ["KRW-BTC"], now=c.now)  # no buffer
    publish_routes(c)
    assert ids(c.router) == {("private-0", "myOrder", "", mine)}
    assert c.awaiting == set()
    assert orphan.id not in c.router.statistics().subscribers


def test_a_stream_moved_off_a_ticket_that_is_down_gets_its_gap() -> None:
    c = core(capacity=1)
    first = c.subscribe("ticker", ["KRW-BTC"])
    second = c.subscribe("ticker", ["KRW-ETH"])  # capacity 1: onto the second ticket
    publish_routes(c)
    assert ids(c.router) == {(T, "ticker", "KRW-BTC", first), (U, "ticker", "KRW-ETH", second)}
    for name in (T, U):
        c.router.ticket_connected(name, 1, at=0.0)
    c.router.ticket_lost(T, 1, "reset", at=5.0)
    # first now wants ETH, which streams on U: it leaves T while T is down.
    c.registry.modify(first, ["KRW-ETH"], now=7.0)
    publish_routes(c)
    assert ids(c.router) == {(U, "ticker", "KRW-ETH", first), (U, "ticker", "KRW-ETH", second)}
    assert drain(c.buffers[first]) == [
        Interrupted(T, 5.0, "reset", ("KRW-BTC",)),
        Gap(T, 5.0, None, "reset", ("KRW-BTC",)),
    ]
    assert drain(c.buffers[second]) == []
    c.router.ticket_connected(T, 2, at=9.0)
    assert drain(c.buffers[first]) == []  # told already


def test_someone_else_publishing_makes_the_next_publish_full() -> None:
    c = core()
    publisher = RoutePublisher()
    sub = c.subscribe("ticker", ["KRW-BTC"])
    publisher.publish(c)
    c.router.publish(RoutingTable())  # behind the publisher's back
    publisher.publish(c)
    assert c.router.publishes == 3
    assert ids(c.router) == {(T, "ticker", "KRW-BTC", sub)}


def test_a_replaced_buffer_makes_the_publish_full() -> None:
    c = core()
    publisher = RoutePublisher()
    sub = c.subscribe("ticker", ["KRW-BTC"])
    publisher.publish(c)
    c.buffers[sub] = replacement = SubscriberBuffer(sub)
    c.registry.modify(sub, ["KRW-ETH"], now=9.0)
    publisher.publish(c)
    assert c.router.publishes == 2
    assert c.router.table.buffers == {sub: replacement}


def test_an_update_that_raised_leaves_the_next_publish_full() -> None:
    c = core()
    publisher = RoutePublisher()
    c.subscribe("ticker", ["KRW-BTC"])
    publisher.publish(c)
    c.subscribe("ticker", ["KRW-ETH"])
    failing = c.router.update

    def refuse(**changes: object) -> None:
        raise RuntimeError("interrupted")

    c.router.update = refuse  # type: ignore[method-assign]
    with pytest.raises(RuntimeError, match="interrupted"):
        publisher.publish(c)
    c.router.update = failing  # type: ignore[method-assign]
    publisher.publish(c)
    assert c.router.publishes == 2
    expected, _ = full_routes(c)
    assert set(c.router.route_ids) == {route.id for route in expected.routes}


def test_full_routes_lists_tickets_then_desired_order_then_creation_order() -> None:
    c = core(capacity=1)
    a = c.subscribe("ticker", ["KRW-ETH"])
    b = c.subscribe(("ticker", "trade"), ["KRW-BTC", "KRW-ETH"])
    table, flagged = full_routes(c)
    assert [(r.ticket, str(r.key), r.subscriber) for r in table.routes] == [
        (T, "ticker:KRW-ETH", a),
        (T, "ticker:KRW-ETH", b),
        (T, "trade:KRW-ETH", b),
        (U, "ticker:KRW-BTC", b),
        (U, "trade:KRW-BTC", b),
    ]
    assert flagged == {route.id for route in table.routes}
    assert all(isinstance(route, Route) and route.snapshot for route in table.routes)


def test_publish_routes_keeps_one_publisher_per_source() -> None:
    c = core()
    c.subscribe("ticker", ["KRW-BTC"])
    publish_routes(c)
    c.subscribe("ticker", ["KRW-ETH"])
    publish_routes(c)
    assert c.router.publishes == 1
    assert len(c.router.updates) == 1
    other = core()
    other.subscribe("ticker", ["KRW-BTC"])
    publish_routes(other)
    assert other.router.publishes == 1
