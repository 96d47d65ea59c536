"""Property test: the incremental publisher leaves the router exactly where the from-scratch
publish leaves it, after any sequence of registry changes.

One sans-IO ``Registry`` lives through random subscribes, modifies, soft and hard unsubscribes,
failures, optimizations, connects, sends and losses (a small ticket capacity makes streams spread
over and move between tickets), plus frames and SNAPSHOT reports. Two worlds read it after every
change, each with its own router and buffers: the reference publishes the way the registry
actor did before publishing became incremental (kept here verbatim), the other through
``publish_routes``. Both must agree on every compiled route, wait, window, counter and
``awaiting`` entry, route every frame to the same subscribers, and fill every buffer alike
(Gaps included). ``full_routes`` must also compute the reference's very table.

Set ``HYPOTHESIS_PROFILE=router-long`` for a longer run.
"""

from __future__ import annotations

import os

import attrs
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.core.keys import StreamKey
from engine.core.registry import Registry, SubscriptionKind
from engine.errors import InvalidSubscriptionError
from engine.routing.publish import full_routes, publish_routes
from engine.routing.router import Route, RouteId, Router, RoutingTable, SubscriberBuffer
from engine.wire.messages import Message
from tests.engine.test_router_support import SNAP, book, drain, my_order, ticker, trade
from tests.engine.test_router_update_properties import compiled

_EXAMPLES = 1000 if os.environ.get("HYPOTHESIS_PROFILE") == "router-long" else 100

CODES = ("KRW-A", "KRW-B", "KRW-C", "KRW-D", "KRW-E")
TICKETS = ("realtime-0", "realtime-1", "private-0")


@attrs.define(eq=False)
class World:
    registry: Registry
    router: Router
    buffers: dict[str, SubscriberBuffer] = attrs.Factory(dict)
    awaiting: set[RouteId] = attrs.Factory(set)
    published: frozenset[RouteId] = frozenset()
    reports: list[tuple[str, StreamKey, str]] = attrs.Factory(list)


def reference_publish(core: World) -> None:
    """The registry actor's publish before it became incremental."""
    registry = core.registry
    previous = core.published
    routes: list[Route] = []
    awaiting: set[RouteId] = set()
    for kind in (SubscriptionKind.REALTIME, SubscriptionKind.PRIVATE):
        table = registry.routes(kind)
        if not table:
            continue
        for ticket in registry.tickets(kind):
            for key in registry.ticket_status(ticket).desired:
                for sub_id in table.get(key, ()):
                    buffer = core.buffers.get(sub_id)
                    if buffer is None:
                        continue
                    route_id: RouteId = (ticket, key, sub_id)
                    wait = not key.is_private and (
                        route_id not in previous or route_id in core.awaiting
                    )
                    if wait:
                        awaiting.add(route_id)
                    routes.append(Route(ticket, key, buffer, snapshot=wait))
    core.router.publish(RoutingTable(routes))
    core.awaiting = awaiting
    core.published = frozenset(route.id for route in routes)


def world(registry: Registry) -> World:
    reports: list[tuple[str, StreamKey, str]] = []
    made = World(registry, Router(on_snapshot=lambda *call: reports.append(call)))
    made.reports = reports
    return made


_codes = st.lists(st.sampled_from(CODES), min_size=1, max_size=3, unique=True)
_public = st.tuples(
    st.just("subscribe"),
    st.lists(
        st.sampled_from(("ticker", "trade", "orderbook")), min_size=1, max_size=3, unique=True
    ),
    _codes,
    st.sampled_from((None, 5, 15)),
    st.sampled_from((None, 10.0)),
    st.booleans(),  # whether the subscription gets a buffer
)
_private = st.tuples(
    st.just("private"),
    st.sampled_from(("myOrder", "myAsset")),
    st.lists(st.sampled_from(CODES[:2]), max_size=1),
)
_ops = st.lists(
    st.one_of(
        _public,
        _public,
        _private,
        st.tuples(st.just("modify"), st.integers(0, 30), _codes),
        st.tuples(st.just("modify"), st.integers(0, 30), _codes),
        st.tuples(st.just("unsubscribe"), st.integers(0, 30), st.sampled_from(("soft", "hard"))),
        st.tuples(st.just("fail"), st.integers(0, 30)),
        st.just(("optimize",)),
        st.tuples(st.just("connect"), st.sampled_from(TICKETS)),
        st.tuples(st.just("sent"), st.sampled_from(TICKETS)),
        st.tuples(st.just("lose"), st.sampled_from(TICKETS)),
        st.tuples(
            st.just("frame"),
            st.sampled_from(TICKETS),
            st.sampled_from(("ticker", "trade", "orderbook", "myOrder")),
            st.sampled_from(CODES),
            st.booleans(),
            st.integers(1, 4),
        ),
        st.just(("reports",)),
        st.tuples(st.just("defer"), st.integers(1, 4)),
    ),
    min_size=20,
    max_size=60,
)


@settings(max_examples=_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(first=st.lists(_public, min_size=3, max_size=6), ops=_ops)
def test_incremental_publish_equals_the_from_scratch_publish(
    first: list[tuple[object, ...]], ops: list[tuple[object, ...]]
) -> None:
    registry = Registry(realtime=2, snapshot=0, private=1, capacity=3)
    old, new = world(registry), world(registry)
    worlds = (old, new)
    generation = dict.fromkeys(TICKETS, 0)
    issued: list[str] = []
    now = 0.0

    deferred = [0]

    def publish(*, always: bool = False) -> None:
        if deferred[0] and not always:
            # Several registry changes, one publish (the delta must combine them).
            deferred[0] -= 1
            return
        expected, _ = full_routes(new)
        reference_publish(old)
        assert list(expected.routes) == [
            Route(r.ticket, r.key, new.buffers[r.subscriber], snapshot=r.snapshot)
            for r in old.router.table.routes
        ]
        publish_routes(new)

    def pick(index: object) -> str | None:
        return issued[int(str(index)) % len(issued)] if issued else None

    publish(always=True)
    # Start with streams flowing on every ticket, so most runs move and deliver plenty.
    start: list[tuple[object, ...]] = [*(("connect", ticket) for ticket in TICKETS), *first]
    for op in [*start, *ops]:
        now += 1.0
        action = op[0]
        if action == "subscribe":
            _, types, codes, units, level, buffered = op
            wants_book = "orderbook" in types  # type: ignore[operator]
            try:
                sub, _ = registry.subscribe(
                    tuple(types),  # type: ignore[arg-type]
                    tuple(codes),  # type: ignore[arg-type]
                    units=units if wants_book else None,  # type: ignore[arg-type]
                    level=level if wants_book else None,  # type: ignore[arg-type]
                    now=now,
                )
            except InvalidSubscriptionError:
                continue
            issued.append(sub.id)
            if buffered:
                for each in worlds:
                    each.buffers[sub.id] = SubscriberBuffer(sub.id, max_size=100_000)
            publish()
        elif action == "private":
            _, data_type, codes = op
            codes = () if data_type == "myAsset" else tuple(codes)  # type: ignore[arg-type]
            sub, _ = registry.subscribe(str(data_type), codes, now=now)
            issued.append(sub.id)
            for each in worlds:
                each.buffers[sub.id] = SubscriberBuffer(sub.id, max_size=100_000)
            publish()
        elif action == "modify":
            sub_id = pick(op[1])
            if sub_id is None:
                continue
            try:
                registry.modify(sub_id, tuple(op[2]), now=now)  # type: ignore[arg-type]
            except InvalidSubscriptionError:
                continue
            publish()
        elif action == "unsubscribe":
            sub_id = pick(op[1])
            if sub_id is None:
                continue
            registry.unsubscribe(sub_id, mode=op[2], now=now)  # type: ignore[arg-type]
            publish()
            # As the registry actor does: the buffer closes after the publish.
            for each in worlds:
                buffer = each.buffers.pop(sub_id, None)
                if buffer is not None:
                    buffer.close("unsubscribed")
        elif action == "fail":
            sub_id = pick(op[1])
            if sub_id is None:
                continue
            registry.fail(sub_id, "overflow", now=now)
            publish()
        elif action == "optimize":
            registry.optimize(now=now)
            publish()
        elif action == "connect":
            ticket = str(op[1])
            generation[ticket] += 1
            registry.ticket_connected(ticket, generation[ticket], now=now)
            for each in worlds:
                assert each.router.ticket_connected(ticket, generation[ticket], at=now)
        elif action == "sent":
            ticket = str(op[1])
            desired = registry.ticket_status(ticket).desired
            registry.ticket_sent(
                ticket, generation[ticket], desired, snapshot_keys=desired, now=now
            )
        elif action == "lose":
            ticket = str(op[1])
            registry.ticket_lost(ticket, generation[ticket], "reset", now=now)
            lost = [
                each.router.ticket_lost(ticket, generation[ticket], "reset", at=now)
                for each in worlds
            ]
            assert lost[0] == lost[1]
        elif action == "frame":
            _, ticket_, data_type, code, snapshot, sid = op
            ticket = str(ticket_)
            stream = SNAP if snapshot else "REALTIME"
            msg: Message
            if data_type == "ticker":
                msg = ticker(str(code), now, stream=stream)
            elif data_type == "trade":
                msg = trade(str(code), int(str(sid)), stream=stream)
            elif data_type == "orderbook":
                msg = book(str(code), 5, stream=stream, stamp=int(now))
            else:
                msg = my_order(str(code))
            routed = [each.router.route(ticket, generation[ticket], msg) for each in worlds]
            assert routed[0] == routed[1]
        elif action == "defer":
            deferred[0] = int(str(op[1]))
            continue
        else:
            assert sorted(old.reports) == sorted(new.reports)
            for each in worlds:
                # As the registry actor does on SnapshotSeen.
                for ticket, key, sub_id in each.reports:
                    each.awaiting.discard((ticket, key, sub_id))
                each.reports.clear()
        assert compiled(old.router) == compiled(new.router)
        assert old.awaiting == new.awaiting
        assert old.published == set(new.router.route_ids)
        for sub_id in old.buffers:
            assert drain(old.buffers[sub_id]) == drain(new.buffers[sub_id])
