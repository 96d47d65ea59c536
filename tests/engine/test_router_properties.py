"""Property test: random table swaps, frames, losses and reconnects through one Router.

Checked for every subscriber, whatever the interleaving:

- it never receives a frame of a stream it did not want (per the table in force when the frame
  was routed) or of a connection generation that was not open;
- its first message of every stream is a SNAPSHOT;
- it receives a SNAPSHOT only when it was waiting for one (at most one per request);
- it never receives one trade ``sequential_id`` twice;
- an Interrupted for a ticket is followed by its Gap before any message of that ticket, and after
  the Gap every (non-trade) stream of that ticket starts again with a SNAPSHOT;
- ``route`` returns the number of subscribers that received the frame.

Set ``HYPOTHESIS_PROFILE=router-long`` for a longer run.
"""

from __future__ import annotations

import os
import random
from collections import defaultdict

import attrs
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.core.keys import StreamKey
from engine.events import Gap, Interrupted
from engine.routing.router import Route, RouteId, Router, RoutingTable, SubscriberBuffer
from engine.wire.messages import Message, Orderbook, Ticker, Trade
from tests.engine.test_router_support import SNAP, book, drain, ticker, trade

#: ``HYPOTHESIS_PROFILE=router-long`` runs ten times the examples.
_EXAMPLES = 2000 if os.environ.get("HYPOTHESIS_PROFILE") == "router-long" else 200

TICKETS = ("t0", "t1")
SUBS = ("s0", "s1", "s2")
STREAMS = (
    StreamKey("ticker", "KRW-A"),
    StreamKey("ticker", "KRW-B"),
    StreamKey("trade", "KRW-A"),
    StreamKey("trade", "KRW-B"),
    StreamKey("orderbook", "KRW-A", 5),
    StreamKey("orderbook", "KRW-A"),
    StreamKey("orderbook", "KRW-A", 15, 10.0),
)
# What a frame is: (type, code, rows, level); the streams above plus one nobody asks for.
FRAME_KINDS = (
    ("ticker", "KRW-A", 0, 0.0),
    ("ticker", "KRW-B", 0, 0.0),
    ("trade", "KRW-A", 0, 0.0),
    ("trade", "KRW-B", 0, 0.0),
    ("orderbook", "KRW-A", 5, 0.0),
    ("orderbook", "KRW-A", 30, 0.0),
    ("orderbook", "KRW-A", 15, 10.0),
    ("orderbook", "KRW-A", 15, 0.0),
    ("ticker", "KRW-C", 0, 0.0),
)
FrameKind = tuple[str, str, int, float]


def matches(stream: StreamKey, kind: FrameKind) -> bool:
    """Orderbooks match by (code, level), whatever their row count (the subscriber gets at most
    the rows it asked for)."""
    data_type, code, _rows, level = kind
    if (stream.data_type, stream.code) != (data_type, code):
        return False
    if data_type != "orderbook":
        return True
    want_level = 0.0 if stream.level is None else stream.level
    return want_level == level


def make_frame(kind: FrameKind, fid: int, snapshot: bool, sid: int) -> Message:
    data_type, code, rows, level = kind
    stream = SNAP if snapshot else "REALTIME"
    if data_type == "ticker":
        return ticker(code, float(fid), stream=stream)
    if data_type == "trade":
        return attrs.evolve(trade(code, sid, stream=stream), trade_price=float(fid))
    return book(code, rows, level, stream=stream, stamp=fid)


def frame_id(item: Message) -> int:
    if isinstance(item, Orderbook):
        return item.timestamp
    assert isinstance(item, Ticker | Trade)
    return int(item.trade_price)


def _route_of(
    item: Message, record: Sent, sub: str, fid: int, taken: set[tuple[int, StreamKey]]
) -> tuple[StreamKey, int]:
    """The route ``item`` (frame ``fid``) was delivered through: an orderbook carries at most
    the rows its route asked for, so its row count tells depths apart."""
    rows = record.kind[2]
    for stream, request in record.allowed[sub]:
        if (fid, stream) in taken:
            continue
        if isinstance(item, Orderbook):
            wanted = 30 if stream.units is None else stream.units
            if len(item.orderbook_units) != min(rows, wanted):
                continue
        taken.add((fid, stream))
        return stream, request
    raise AssertionError(f"{sub} received frame {fid} more often than it has routes for it")


@attrs.define
class Sent:
    """What the test knows about one routed frame."""

    ticket: str
    kind: FrameKind
    snapshot: bool
    sid: int
    #: subscriber -> the streams (route keys) it may receive this frame as, each with its
    #: request epoch (several: orderbooks of one code and level at different depths)
    allowed: dict[str, list[tuple[StreamKey, int]]]


# A table from a seed (cheap to generate, and uniform): each (subscriber, stream) slot is routed
# nowhere, to t0 or to t1, and a kept route keeps or drops its SNAPSHOT flag.
_publish = st.tuples(st.just("publish"), st.integers(0, 2**32))
_frame = st.tuples(
    st.just("frame"),
    st.sampled_from(TICKETS),
    st.integers(0, 5),  # 0: a stale generation, else the current one
    st.sampled_from(FRAME_KINDS),
    st.booleans(),
    st.integers(1, 6),
)
OPS = st.lists(
    st.one_of(
        _publish,
        st.tuples(st.just("connect"), st.sampled_from(TICKETS)),
        st.tuples(st.just("lose"), st.sampled_from(TICKETS), st.booleans()),
        _frame,
        _frame,
        _frame,
        _frame,
        st.tuples(st.just("collect")),
    ),
    min_size=20,
    max_size=80,
)


@settings(max_examples=_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=OPS, first=_publish)
def test_random_interleavings_keep_every_promise(
    first: tuple[object, ...], ops: list[tuple[object, ...]]
) -> None:
    buffers = {sub: SubscriberBuffer(sub, max_size=100_000) for sub in SUBS}
    router = Router(dedupe_window=1000)
    generation = dict.fromkeys(TICKETS, 0)
    open_ticket = dict.fromkeys(TICKETS, False)
    table = RoutingTable()
    # A "request epoch" per route: bumped whenever a new SNAPSHOT is asked for it.
    epoch: dict[RouteId, int] = defaultdict(int)
    sent: dict[int, Sent] = {}
    now = 0.0
    fid = 0
    received: dict[str, list[object]] = {sub: [] for sub in SUBS}

    def collect() -> None:
        for sub, buffer in buffers.items():
            received[sub].extend(drain(buffer))

    # Start with a table and both tickets up, so most runs deliver plenty.
    for op in [first, ("connect", "t0"), ("connect", "t1"), *ops]:
        now += 1.0
        action = op[0]
        if action == "publish":
            seed = op[1]
            assert isinstance(seed, int)
            rng = random.Random(seed)
            routes: list[Route] = []
            previous_flagged = table.awaiting
            present = {r.id for r in table.routes}
            for sub, stream in [(sub, stream) for sub in SUBS for stream in STREAMS]:
                where = rng.choice((None, *TICKETS))
                keep = rng.random() < 0.5
                if where is None:
                    continue
                route_id = (where, stream, sub)
                # A route new to the table always asks for a SNAPSHOT; a kept one may keep
                # listing (or drop) its flag.
                flag = route_id not in present or keep
                routes.append(Route(where, stream, buffers[sub], snapshot=flag))
                if flag and route_id not in previous_flagged:
                    epoch[route_id] += 1
            table = RoutingTable(routes)
            router.publish(table)
        elif action == "connect":
            ticket = str(op[1])
            generation[ticket] += 1
            assert router.ticket_connected(ticket, generation[ticket], at=now)
            open_ticket[ticket] = True
            for r in table.routes:
                if r.ticket == ticket:
                    epoch[r.id] += 1
        elif action == "lose":
            ticket, stale = str(op[1]), bool(op[2])
            lost = router.ticket_lost(
                ticket, generation[ticket] - (1 if stale else 0), "cut", at=now
            )
            assert lost == (open_ticket[ticket] and not stale)
            if lost:
                open_ticket[ticket] = False
        elif action == "frame":
            _, ticket_, which, kind_, snapshot_, sid_ = op
            ticket, stale = str(ticket_), which == 0
            kind: FrameKind = kind_  # type: ignore[assignment]
            snapshot, sid = bool(snapshot_), int(sid_)  # type: ignore[call-overload]
            fid += 1
            allowed: dict[str, list[tuple[StreamKey, int]]] = {}
            if open_ticket[ticket] and not stale:
                for r in table.routes:
                    if r.ticket == ticket and matches(r.key, kind):
                        allowed.setdefault(r.subscriber, []).append((r.key, epoch[r.id]))
            sent[fid] = Sent(ticket, kind, snapshot, sid, allowed)
            msg = make_frame(kind, fid, snapshot, sid)
            before = {sub: buffers[sub].statistics().buffered for sub in SUBS}
            count = router.route(ticket, generation[ticket] - (1 if stale else 0), msg)
            after = {sub: buffers[sub].statistics().buffered for sub in SUBS}
            assert count == sum(after[sub] - before[sub] for sub in SUBS)
        else:
            collect()
    collect()

    for sub in SUBS:
        first_seen: set[StreamKey] = set()
        snapshot_epochs: set[tuple[str, StreamKey, int]] = set()
        trade_ids: set[tuple[str, int]] = set()
        # Ticket -> (outage start, codes no Gap covered yet): a stream that moves off a down
        # ticket gets a Gap of its own codes first, the reconnect's Gap covers the rest.
        interrupted: dict[str, tuple[float, set[str]]] = {}
        # After a Gap, streams of that ticket that must start again with a SNAPSHOT.
        restarting: dict[str, set[StreamKey]] = defaultdict(set)
        # (frame id, stream) pairs received: one frame reaches each of its routes once.
        taken: set[tuple[int, StreamKey]] = set()
        for item in received[sub]:
            if isinstance(item, Interrupted):
                assert item.ticket not in interrupted
                interrupted[item.ticket] = (item.start, set(item.codes))
                continue
            if isinstance(item, Gap):
                start, left = interrupted[item.ticket]
                assert start == item.start
                assert set(item.codes) <= left, "a Gap for codes not interrupted"
                left.difference_update(item.codes)
                if item.end is not None or not left:
                    del interrupted[item.ticket]
                if item.end is not None:
                    restarting[item.ticket] = {
                        s for s in STREAMS if s.data_type != "trade"
                    } | restarting[item.ticket]
                continue
            assert isinstance(item, Message)
            fid = frame_id(item)
            record = sent[fid]
            # Wanted, from an open generation, at the time it was routed.
            assert sub in record.allowed, (sub, record)
            stream, request = _route_of(item, record, sub, fid, taken)
            outage = interrupted.get(record.ticket)
            assert outage is None or record.kind[1] not in outage[1], (
                "a message between Interrupted and Gap"
            )
            if stream not in first_seen:
                assert record.snapshot, f"{sub}'s first {stream} is not a SNAPSHOT"
                first_seen.add(stream)
            if stream in restarting[record.ticket]:
                assert record.snapshot, f"{sub}'s {stream} did not restart with a SNAPSHOT"
                restarting[record.ticket].discard(stream)
            if record.snapshot:
                mark = (record.ticket, stream, request)
                assert mark not in snapshot_epochs, "a second SNAPSHOT for one request"
                snapshot_epochs.add(mark)
            if isinstance(item, Trade):
                trade_id = (item.code, item.sequential_id)
                assert trade_id not in trade_ids, "a duplicate trade"
                trade_ids.add(trade_id)
