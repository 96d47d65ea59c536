"""The router's part of trade backfill (engine.routing.fill), sans-IO: what is armed at a gap,
what a restored stream holds, the job it asks for, and the order, de-duplication, room and
reports of the release. (The test trades' ``trade_timestamp`` equals their ``sequential_id``.)"""

from __future__ import annotations

from datetime import UTC, datetime

import attrs

from engine.events import Backfilled, Gap, SnapshotMissing
from engine.routing.fill import BackfillJob, BackfillResult
from engine.routing.router import Router, RoutingTable, StreamItem, SubscriberBuffer
from engine.wire.messages import Candle, Trade
from tests.engine.test_router_support import SNAP, candle, drain, route, trade

T = "realtime-0"
U = "realtime-1"
CODE = "KRW-BTC"


class Jobs(list[BackfillJob]):
    def __call__(self, job: BackfillJob) -> None:
        self.append(job)


def _setup(
    *buffers: SubscriberBuffer, jobs: Jobs, clock: float = 0.0
) -> tuple[Router, RoutingTable]:
    router = Router(on_snapshot=None, on_backfill=jobs, clock=lambda: clock)
    table = RoutingTable([route(T, "trade", CODE, buffer) for buffer in buffers])
    router.publish(table)
    assert router.ticket_connected(T, 1, at=0.0)
    return router, table


def _live(router: Router, generation: int, *sids: int, first: str = "REALTIME") -> None:
    for index, sid in enumerate(sids):
        router.route(T, generation, trade(sid=sid, stream=first if index == 0 else "REALTIME"))


def _rest(*sids: int) -> BackfillResult:
    return BackfillResult(tuple(trade(sid=sid, stream="REST") for sid in sids), (), 1)


def _seq(items: list[StreamItem]) -> list[object]:
    """Trades as (id, stream type initial), events by type."""
    out: list[object] = []
    for item in items:
        if isinstance(item, Trade):
            out.append((item.sequential_id, item.stream_type[0]))
        else:
            out.append(item.type)
    return out


def _outage(router: Router, generation: int) -> None:
    assert router.ticket_lost(T, generation, "dropped", at=10.0)
    assert router.ticket_connected(T, generation + 1, at=12.0)


def test_the_missed_trades_come_before_the_live_ones_each_once() -> None:
    jobs = Jobs()
    a = SubscriberBuffer("a", backfill=True)
    router, _ = _setup(a, jobs=jobs)
    _live(router, 1, 100, 110, first=SNAP)
    assert _seq(drain(a)) == [(100, "S"), (110, "R")]
    _outage(router, 1)
    gap = [item for item in drain(a) if isinstance(item, Gap)]
    assert [g.backfill for g in gap] == [(CODE,)]
    _live(router, 2, 150, 160, first=SNAP)  # the restored stream: held
    assert drain(a) == []
    assert jobs == [BackfillJob(1, T, CODE, 110, 150, ((T, route(T, "trade", CODE, a).key, "a"),))]
    statistics = router.statistics()
    assert statistics.tickets[T].backfill_held == 2
    assert statistics.subscribers["a"].filling == 1
    # REST brings the last trade seen (110), the missed ones and the SNAPSHOT's own (150).
    assert not router.backfill_done(jobs[0], _rest(150, 120, 110, 130), at=20.0)
    items = drain(a)
    assert _seq(items) == [(120, "B"), (130, "B"), (150, "B"), "backfilled", (160, "R")]
    done = items[3]
    assert isinstance(done, Backfilled)
    assert (done.since_ms, done.until_ms, done.delivered, done.complete) == (110, 150, 3, True)
    _live(router, 2, 170)  # live again, on the fast path
    assert _seq(drain(a)) == [(170, "R")]
    assert router.statistics().subscribers["a"].filling == 0


def test_a_subscriber_without_backfill_keeps_its_gap_and_shares_the_stream() -> None:
    jobs = Jobs()
    on, off = SubscriberBuffer("on", backfill=True), SubscriberBuffer("off")
    router, _ = _setup(on, off, jobs=jobs)
    _live(router, 1, 100, first=SNAP)
    _outage(router, 1)
    gaps = {b.subscription_id: [i for i in drain(b) if isinstance(i, Gap)] for b in (on, off)}
    assert gaps["on"][0].backfill == (CODE,)
    assert gaps["off"][0].backfill == ()
    _live(router, 2, 150, 160, first=SNAP)
    assert _seq(drain(off)) == [(150, "S"), (160, "R")]  # not held for the other one
    assert len(jobs) == 1
    assert [r[2] for r in jobs[0].routes] == ["on"]
    router.backfill_done(jobs[0], _rest(120, 150), at=20.0)
    assert _seq(drain(on)) == [(120, "B"), (150, "B"), "backfilled", (160, "R")]


def test_a_router_without_a_backfill_callback_arms_nothing() -> None:
    a = SubscriberBuffer("a", backfill=True)
    router = Router()
    router.publish(RoutingTable([route(T, "trade", CODE, a)]))
    router.ticket_connected(T, 1, at=0.0)
    _live(router, 1, 100, first=SNAP)
    _outage(router, 1)
    _live(router, 2, 150, first=SNAP)
    items = drain(a)
    assert [i.backfill for i in items if isinstance(i, Gap)] == [()]
    assert _seq(items)[-1] == (150, "S")


def test_a_full_buffer_is_filled_as_it_is_read_and_a_slow_reader_is_told() -> None:
    jobs = Jobs()
    a = SubscriberBuffer("a", max_size=16, backfill=True)
    router, _ = _setup(a, jobs=jobs)
    _live(router, 1, 100, first=SNAP)
    _outage(router, 1)
    drain(a)
    _live(router, 2, 1000, first=SNAP)
    assert router.backfill_done(jobs[0], _rest(*range(101, 141)), at=20.0)  # waits for room
    first = drain(a)
    assert 0 < len(first) <= 16 - 16 // 4 - 1
    assert router.drain_backfill(jobs[0], at=21.0)
    second = drain(a)
    assert _seq(first + second) == [(sid, "B") for sid in range(101, 101 + len(first + second))]
    # The reader stops: at the deadline what fits goes, the rest is reported.
    assert not router.drain_backfill(jobs[0], at=50.0, give_up=True)
    items = drain(a)
    done = next(i for i in items if isinstance(i, Backfilled))
    delivered = [i for i in first + second + items if isinstance(i, Trade)]
    missing = [sid for sid in range(101, 141) if sid not in {t.sequential_id for t in delivered}]
    assert missing
    assert all(done.covers(sid) for sid in missing)
    assert {span.reason for span in done.unfilled} == {"slow_consumer"}
    assert _seq(items)[-1] == (1000, "S")  # the held SNAPSHOT after the event


def test_too_many_live_trades_during_a_fill_are_reported_not_lost_silently() -> None:
    jobs = Jobs()
    a = SubscriberBuffer("a", max_size=32, backfill=True)  # holds 16 live trades at most
    router, _ = _setup(a, jobs=jobs)
    _live(router, 1, 100, first=SNAP)
    _outage(router, 1)
    drain(a)
    _live(router, 2, *range(200, 230), first=SNAP)
    router.backfill_done(jobs[0], _rest(150, 200), at=20.0)
    items = drain(a)
    done = next(i for i in items if isinstance(i, Backfilled))
    assert [(s.start_ms, s.end_ms, s.reason) for s in done.unfilled] == [(200, 214, "hold_limit")]
    assert [i.sequential_id for i in items if isinstance(i, Trade)] == [150, 200, *range(214, 230)]


def test_a_wait_that_runs_out_fetches_up_to_the_oldest_held_trade() -> None:
    jobs = Jobs()
    a = SubscriberBuffer("a", backfill=True)
    router, _ = _setup(a, jobs=jobs)
    _live(router, 1, 100, first=SNAP)
    _outage(router, 1)
    drain(a)
    router.note_sent(T, at=12.0)
    _live(router, 2, 150, 160)  # no SNAPSHOT comes
    router.expire_waits(T, now=20.0, timeout=5.0)
    assert [type(i) for i in drain(a)] == [SnapshotMissing]
    assert [(j.since_ms, j.until_ms) for j in jobs] == [(100, 150)]
    router.backfill_done(jobs[0], _rest(120, 150), at=21.0)
    assert _seq(drain(a)) == [(120, "B"), (150, "B"), "backfilled", (160, "R")]


def test_a_second_outage_during_a_fill_is_filled_by_a_second_job_in_order() -> None:
    jobs = Jobs()
    a = SubscriberBuffer("a", backfill=True)
    router, _ = _setup(a, jobs=jobs)
    _live(router, 1, 100, first=SNAP)
    drain(a)
    _outage(router, 1)
    _live(router, 2, 150, 160, first=SNAP)
    assert router.ticket_lost(T, 2, "again", at=30.0)
    assert router.ticket_connected(T, 3, at=31.0)
    _live(router, 3, 200, 210, first=SNAP)
    assert [(j.since_ms, j.until_ms) for j in jobs] == [(100, 150), (160, 200)]
    # The second finishes first: nothing is released while the first still runs.
    assert not router.backfill_done(jobs[1], _rest(170, 200), at=32.0)
    assert [i for i in drain(a) if isinstance(i, Trade | Backfilled)] == []
    router.backfill_done(jobs[0], _rest(120, 150), at=33.0)
    trades = [(t.sequential_id, t.stream_type[0]) for t in drain(a) if isinstance(t, Trade)]
    assert trades == [(120, "B"), (150, "B"), (160, "B"), (170, "B"), (200, "B"), (210, "R")]


def test_a_stream_that_moves_during_its_fill_reports_what_was_not_fetched() -> None:
    jobs = Jobs()
    a = SubscriberBuffer("a", backfill=True)
    router, table = _setup(a, jobs=jobs)
    _live(router, 1, 100, first=SNAP)
    _outage(router, 1)
    _live(router, 2, 150, 160, first=SNAP)
    drain(a)
    router.update(remove=[table.routes[0].id], add=[route(U, "trade", CODE, a)])
    items = drain(a)
    done = next(i for i in items if isinstance(i, Backfilled))
    assert [(s.start_ms, s.end_ms, s.reason) for s in done.unfilled] == [(100, None, "moved")]
    assert done.covers(120)
    assert _seq(items)[-2:] == [(150, "S"), (160, "R")]  # what was held is not lost
    # The job's late answer finds nothing to fill.
    assert not router.backfill_done(jobs[0], _rest(120), at=40.0)
    assert drain(a) == []


def test_a_replaced_route_keeps_its_fill() -> None:
    jobs = Jobs()
    a = SubscriberBuffer("a", backfill=True)
    router, table = _setup(a, jobs=jobs)
    _live(router, 1, 100, first=SNAP)
    _outage(router, 1)
    _live(router, 2, 150, first=SNAP)
    drain(a)
    old = table.routes[0]
    router.update(remove=[old.id], add=[attrs.evolve(old, snapshot=False)])
    router.backfill_done(jobs[0], _rest(120, 150), at=20.0)
    assert _seq(drain(a)) == [(120, "B"), (150, "B"), "backfilled"]


def test_a_loss_while_releasing_pauses_the_release_until_the_next_job() -> None:
    jobs = Jobs()
    a = SubscriberBuffer("a", max_size=16, backfill=True)
    router, _ = _setup(a, jobs=jobs)
    _live(router, 1, 100, first=SNAP)
    _outage(router, 1)
    drain(a)
    _live(router, 2, 1000, first=SNAP)
    assert router.backfill_done(jobs[0], _rest(*range(101, 141)), at=20.0)  # waits for room
    released = drain(a)
    assert router.ticket_lost(T, 2, "again", at=21.0)
    assert not router.drain_backfill(jobs[0], at=22.0, give_up=True)  # nothing after Interrupted
    assert [type(i).__name__ for i in drain(a)] == ["Interrupted"]
    assert router.ticket_connected(T, 3, at=23.0)
    _live(router, 3, 2000, first=SNAP)
    assert [(j.since_ms, j.until_ms) for j in jobs[1:]] == [(1000, 2000)]
    while router.backfill_done(jobs[1], _rest(1500), at=24.0) or router.drain_backfill(
        jobs[1], at=25.0
    ):
        released += drain(a)
    released += drain(a)
    ids = [i.sequential_id for i in released if isinstance(i, Trade)]
    assert ids == [*range(101, 141), 1000, 1500, 2000]
    assert [i.type for i in released if not isinstance(i, Trade)] == ["gap", "backfilled"]


# -- candles -----------------------------------------------------------------------------------


def _candle(minute: int, price: float = 100.0, stream: str = "REALTIME") -> Candle:
    stamp = f"2026-01-01T00:{minute:02d}:00"
    return attrs.evolve(
        candle(price=price, stream=stream), candle_date_time_utc=stamp, candle_date_time_kst=stamp
    )


def _minute_ms(minute: int) -> int:
    return int(datetime(2026, 1, 1, 0, minute, tzinfo=UTC).timestamp() * 1000)


def test_a_candle_stream_gets_the_periods_it_missed_then_its_live_candle() -> None:
    jobs = Jobs()
    a = SubscriberBuffer("a", backfill=True)
    router = Router(on_backfill=jobs)
    router.publish(RoutingTable([route(T, "candle.1m", CODE, a)]))
    router.ticket_connected(T, 1, at=0.0)
    router.route(T, 1, _candle(1, stream=SNAP))
    router.route(T, 1, _candle(2, 101.0))
    drain(a)
    _outage(router, 1)
    assert [i.backfill for i in drain(a) if isinstance(i, Gap)] == [(CODE,)]
    router.route(T, 2, _candle(6, 105.0, stream=SNAP))
    router.route(T, 2, _candle(6, 106.0))  # held, and replaces the held SNAPSHOT's value
    router.route(T, 2, _candle(7, 107.0))
    assert drain(a) == []
    assert [(j.data_type, j.since_ms, j.until_ms) for j in jobs] == [
        ("candle.1m", _minute_ms(2), _minute_ms(6))
    ]
    fetched = (_candle(m, 100.0 + m, stream="REST") for m in (1, 2, 3, 5, 6))
    router.backfill_done(jobs[0], BackfillResult(tuple(fetched), (), 1), at=20.0)
    items = drain(a)
    shown = [
        (i.candle_date_time_utc[14:16], i.stream_type[0]) if isinstance(i, Candle) else i.type
        for i in items
    ]
    # The last period delivered (its final value), the missed ones, then the live ones.
    assert shown == [("02", "B"), ("03", "B"), ("05", "B"), "backfilled", ("06", "R"), ("07", "R")]
    done = items[3]
    assert isinstance(done, Backfilled)
    assert (done.data_type, done.delivered, done.complete) == ("candle.1m", 3, True)
    router.route(T, 2, _candle(8, 108.0))  # live again, on the fast path
    assert [i.candle_date_time_utc for i in drain(a)] == ["2026-01-01T00:08:00"]


def test_a_backfill_longer_than_the_trade_window_delivers_each_trade_once() -> None:
    jobs = Jobs()
    a, b = SubscriberBuffer("a", max_size=4096, backfill=True), SubscriberBuffer("b", backfill=True)
    router = Router(on_backfill=jobs, dedupe_window=8)
    router.publish(RoutingTable([route(T, "trade", CODE, a), route(T, "trade", CODE, b)]))
    router.ticket_connected(T, 1, at=0.0)
    _live(router, 1, 100, first=SNAP)
    drain(a)
    drain(b)
    _outage(router, 1)
    _live(router, 2, 400, 400, 401, first=SNAP)  # the SNAPSHOT's trade again, live
    while router.backfill_done(jobs[0], _rest(*range(100, 401)), at=20.0) or router.drain_backfill(
        jobs[0], at=21.0
    ):
        pass
    for buffer in (a, b):
        ids = [i.sequential_id for i in drain(buffer) if isinstance(i, Trade)]
        assert ids == list(range(101, 402)), buffer.subscription_id
