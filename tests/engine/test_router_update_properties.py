"""Property test: ``Router.update`` with the difference between two tables does exactly what
``Router.publish`` of the new table does, whatever the history.

Two routers live through the same random history (table changes, frames, connects, losses,
ended waits); one is always given the whole new table, the other only the routes that left,
arrived or changed flag. After every step their compiled state, statistics and waits are equal,
every frame reaches the same subscribers, and every subscriber's buffer holds the same items.

Set ``HYPOTHESIS_PROFILE=router-long`` for a longer run.
"""

from __future__ import annotations

import os
import random
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.core.keys import StreamKey
from engine.routing.router import Route, RouteId, Router, RoutingTable, SubscriberBuffer
from engine.wire.messages import Message, Orderbook
from tests.engine.test_router_properties import FRAME_KINDS, STREAMS, FrameKind, make_frame
from tests.engine.test_router_support import drain, my_order

#: ``HYPOTHESIS_PROFILE=router-long`` runs ten times the examples.
_EXAMPLES = 1500 if os.environ.get("HYPOTHESIS_PROFILE") == "router-long" else 150

TICKETS = ("t0", "t1")
SUBS = ("s0", "s1", "s2")
PRIVATE_STREAMS = (StreamKey("myOrder", ""), StreamKey("myOrder", "KRW-A"))


def compiled(router: Router) -> dict[str, object]:
    """Everything the router compiled from its routes, in an order-free form."""
    index = router._index  # the test looks inside on purpose
    streams = {}
    for key, stream in index.streams.items():
        assert stream.puts == tuple(target.put for target in stream.targets)
        assert stream.subscribers == tuple(target.subscriber for target in stream.targets)
        assert stream.waiting == sum(target.waiting for target in stream.targets)
        if stream.window is not None:
            assert stream.window is index.windows[key[2]], "one window per trade code"
        streams[key] = (
            stream.mode,
            sorted(
                (target.route_id, target.waiting, target.rows, target.level)
                for target in stream.targets
            ),
        )
    windows = {
        code: (sorted((sid, sorted(subs)) for sid, subs in window.ids.items()), list(window.order))
        for code, window in index.windows.items()
    }
    return {
        "routes": sorted(index.routes),
        "waiting": sorted(router.waiting),
        "streams": streams,
        "windows": windows,
        "buffers": {sub: buffer.subscription_id for sub, buffer in index.buffers.items()},
        "ticket_subs": index.ticket_subs,
        "statistics": router.statistics(),
    }


def random_table(
    rng: random.Random, buffers: dict[str, SubscriberBuffer], present: set[RouteId]
) -> list[Route]:
    routes: list[Route] = []
    for sub in SUBS:
        for stream in STREAMS:
            where = rng.choice((None, *TICKETS))
            if where is None:
                continue
            route_id = (where, stream, sub)
            flag = route_id not in present or rng.random() < 0.5
            routes.append(Route(where, stream, buffers[sub], snapshot=flag))
        for stream in PRIVATE_STREAMS:
            if rng.random() < 0.3:
                routes.append(Route(rng.choice(TICKETS), stream, buffers[sub]))
    rng.shuffle(routes)
    return routes


def difference(old: RoutingTable, new: list[Route]) -> tuple[list[RouteId], list[Route]]:
    """What update needs: routes gone, and routes new or changed (a changed one is replaced)."""
    before = {route.id: route for route in old.routes}
    after = {route.id: route for route in new}
    remove = [route_id for route_id in before if route_id not in after]
    add: list[Route] = []
    for route_id, route in after.items():
        previous = before.get(route_id)
        if previous is None:
            add.append(route)
        elif previous != route:
            remove.append(route_id)
            add.append(route)
    return remove, add


_ops = st.lists(
    st.one_of(
        st.tuples(st.just("table"), st.integers(0, 2**32)),
        st.tuples(st.just("connect"), st.sampled_from(TICKETS)),
        st.tuples(st.just("lose"), st.sampled_from(TICKETS)),
        st.tuples(st.just("end_wait"), st.integers(0, 2**32)),
        st.tuples(st.just("order"), st.sampled_from(TICKETS), st.sampled_from(("KRW-A", "KRW-B"))),
        st.tuples(
            st.just("frame"),
            st.sampled_from(TICKETS),
            st.sampled_from(FRAME_KINDS),
            st.booleans(),
            st.integers(1, 6),
        ),
        st.tuples(
            st.just("frame"),
            st.sampled_from(TICKETS),
            st.sampled_from(FRAME_KINDS),
            st.just(False),
            st.integers(1, 6),
        ),
    ),
    min_size=10,
    max_size=60,
)


def _views(items: list[Any]) -> list[list[str]]:
    """Items in order, where the views of one frame a subscriber gets through several routes
    (orderbooks of one code and level at different depths) count in any order."""
    runs: list[list[str]] = []
    last: object = None
    for item in items:
        identity = (type(item), getattr(item, "timestamp", None), getattr(item, "code", None))
        if runs and isinstance(item, Orderbook) and identity == last:
            runs[-1].append(repr(item))
            runs[-1].sort()
        else:
            runs.append([repr(item)])
        last = identity
    return runs


@settings(max_examples=_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=_ops, seed=st.integers(0, 2**32), window=st.sampled_from((1, 3, 1000)))
def test_update_by_difference_equals_publishing_the_table(
    ops: list[tuple[object, ...]], seed: int, window: int
) -> None:
    snapshots: dict[str, list[tuple[str, StreamKey, str]]] = {"full": [], "delta": []}
    full = Router(dedupe_window=window, on_snapshot=lambda *call: snapshots["full"].append(call))
    delta = Router(dedupe_window=window, on_snapshot=lambda *call: snapshots["delta"].append(call))
    buffers = {
        name: {sub: SubscriberBuffer(sub, max_size=100_000) for sub in SUBS}
        for name in ("full", "delta")
    }
    generation = dict.fromkeys(TICKETS, 0)
    now = 0.0
    fid = 0
    for op in [("table", seed), ("connect", "t0"), ("connect", "t1"), *ops]:
        now += 1.0
        action = op[0]
        if action == "table":
            table_rng = random.Random(int(str(op[1])))
            present = set(full.route_ids)
            new = random_table(table_rng, buffers["full"], present)
            remove, add = difference(full.table, new)
            full.publish(RoutingTable(new))
            mirrored = [
                Route(r.ticket, r.key, buffers["delta"][r.subscriber], snapshot=r.snapshot)
                for r in add
            ]
            revision = delta.revision
            delta.update(remove=remove, add=mirrored)
            assert delta.revision == revision + (1 if remove or add else 0)
            assert set(delta.table.routes) == {
                Route(r.ticket, r.key, buffers["delta"][r.subscriber], snapshot=r.snapshot)
                for r in new
            }
        elif action == "connect":
            ticket = str(op[1])
            generation[ticket] += 1
            assert full.ticket_connected(ticket, generation[ticket], at=now)
            assert delta.ticket_connected(ticket, generation[ticket], at=now)
        elif action == "lose":
            ticket = str(op[1])
            lost = full.ticket_lost(ticket, generation[ticket], "cut", at=now)
            assert delta.ticket_lost(ticket, generation[ticket], "cut", at=now) == lost
        elif action == "end_wait":
            waiting = sorted(full.waiting)
            if waiting:
                route_id = waiting[int(str(op[1])) % len(waiting)]
                assert full.end_wait(route_id)
                assert delta.end_wait(route_id)
        elif action == "order":
            ticket = str(op[1])
            msg: Message = my_order(str(op[2]))
            assert full.route(ticket, generation[ticket], msg) == delta.route(
                ticket, generation[ticket], msg
            )
        else:
            _, ticket_, kind_, snapshot_, sid_ = op
            kind: FrameKind = kind_  # type: ignore[assignment]
            fid += 1
            msg = make_frame(kind, fid, bool(snapshot_), int(str(sid_)))
            ticket = str(ticket_)
            before = {name: len(snapshots[name]) for name in snapshots}
            assert full.route(ticket, generation[ticket], msg) == delta.route(
                ticket, generation[ticket], msg
            )
            # One frame may satisfy several waits; their order follows the stream's targets.
            assert sorted(snapshots["full"][before["full"] :]) == sorted(
                snapshots["delta"][before["delta"] :]
            )
        assert compiled(full) == compiled(delta)
        for sub in SUBS:
            assert _views(drain(buffers["full"][sub])) == _views(drain(buffers["delta"][sub]))
