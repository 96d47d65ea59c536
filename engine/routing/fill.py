"""Trade backfill in the router: a trade stream held back while the trades it missed are fetched,
then released in order, each trade once.

Theory of operation
-------------------
*Arming.* When a connection is lost, the router notes for each trade route whose subscriber wants
backfill (``SubscriberBuffer.backfill``) the time of the last trade its stream delivered
(:func:`since_of`). When the connection comes back, those routes are *armed*
(``Target.fill_since``) and the subscriber's Gap lists their codes (``Gap.backfill``).

*Opening.* The restored stream's SNAPSHOT (the latest trade) ends an armed route's wait, as for
every route; instead of delivering it, the route opens a :class:`Fill` that holds it and every
trade after it, and the router asks the runtime for one :class:`BackfillJob` per stream: the
trades from ``since`` (the last delivered) to ``until`` (the SNAPSHOT's time), which is exactly
what the subscriber missed. Fetching only after the SNAPSHOT means REST is asked about a past the
WebSocket already reached. A wait that runs out without a SNAPSHOT opens the fill the same way,
with what was held back during the wait.

*Releasing.* When every job of a fill is done (:func:`complete`; a loss during a fill folds what
was held into the fetched trades and adds a job for the new hole), :func:`drain` delivers the
fetched trades the subscriber has not had (the trade window decides, as for live duplicates),
oldest first by (trade time, ``sequential_id``), marked ``stream_type="BACKFILL"``; then a
:class:`~engine.events.Backfilled` event saying what was filled and what was not
(:class:`~engine.events.Unfilled` ranges with reasons); then the held trades. A drain puts at
most the room the buffer has (keeping a quarter of it, and room for the held trades, free), so
a long backfill never overflows a lossless buffer; the runtime drains again as the consumer reads
and gives up at its deadline, reporting what was left as unfilled (``slow_consumer``).

Everything here is bounded: held trades by :func:`hold_limit` (the oldest dropped first, and
reported as an unfilled range), fetched trades by the runtime's page limit.
"""

from __future__ import annotations

from collections import deque
from datetime import UTC, datetime
from typing import Any, TypeAlias

import attrs

from engine.events import Backfilled, Unfilled
from engine.routing.index import RouteIndex, Stream, Target
from engine.routing.outages import Outage
from engine.routing.table import RouteId
from engine.wire.messages import Candle, Trade

Filled: TypeAlias = Trade | Candle
"""What a backfill fetches and holds: trades, or candles (one per period)."""

__all__ = (
    "BackfillJob",
    "BackfillResult",
    "Fill",
    "abandon",
    "add_job",
    "arm",
    "arm_silence",
    "armed_count",
    "complete",
    "divert_held",
    "drain",
    "drain_job",
    "fold_held",
    "hold_limit",
    "job_done",
    "new_job",
    "open_fill",
    "since_of",
    "since_on_loss",
    "time_of",
)

#: The mark backfilled trades carry in ``stream_type``.
BACKFILL = "BACKFILL"


@attrs.frozen
class BackfillJob:
    """Fetch what ``routes`` (all reading one stream of ``ticket``) missed: for ``trade``, the
    trades of ``code`` with ``since_ms <= trade time <= until_ms``; for a candle type, the
    candles whose period starts in ``[since_ms, until_ms)`` (epoch ms). ``until_ms`` ``None``: up
    to now."""

    id: int
    ticket: str
    code: str
    since_ms: int
    until_ms: int | None
    routes: tuple[RouteId, ...]
    data_type: str = "trade"


@attrs.frozen
class BackfillResult:
    """What a job brought: the trades or candles found (any order), what it could not cover,
    its REST pages."""

    items: tuple[Filled, ...] = ()
    unfilled: tuple[Unfilled, ...] = ()
    pages: int = 0


def hold_limit(target: Target) -> int:
    """Live trades a filling route holds at most: half its subscriber's buffer, so they always
    fit once the fetched trades are read."""
    return max(1, target.buffer.max_size // 2)


def time_of(item: Filled) -> int | None:
    """A trade's time, or a candle's period start (epoch ms); ``None`` if it carries none."""
    if isinstance(item, Trade):
        return item.trade_timestamp
    return item.period_start_ms


def _ms(item: Filled) -> int:
    return time_of(item) or 0


def _order(item: Filled) -> tuple[int, int]:
    return (_ms(item), item.sequential_id if type(item) is Trade else 0)


class Fill:
    """One route's backfill in progress (see the module's theory of operation)."""

    __slots__ = (
        "delivered",
        "dropped",
        "fetched",
        "held",
        "jobs",
        "pages",
        "paused",
        "position",
        "released",
        "since_ms",
        "sorted",
        "unfilled",
        "until_ms",
    )

    def __init__(self, since_ms: int) -> None:
        #: The last trade delivered before the first gap this fill closes.
        self.since_ms = since_ms
        #: The newest ``until`` of its jobs (``None``: a job ran up to "now").
        self.until_ms: int | None = None
        #: Job id -> the range it fetches, while it runs.
        self.jobs: dict[int, tuple[int, int | None]] = {}
        self.fetched: list[Filled] = []
        #: ``fetched[:position]`` were delivered (or given up); the rest is sorted once
        #: ``sorted`` is True.
        self.position = 0
        self.sorted = True
        #: Trade ids this fill delivered (de-duplication beyond the bounded trade window).
        self.released: set[int] = set()
        self.held: deque[Filled] = deque()
        self.unfilled: list[Unfilled] = []
        #: Oldest and newest time of the held trades dropped for room, if any.
        self.dropped: tuple[int, int] | None = None
        self.delivered = 0
        self.pages = 0
        #: Its connection was lost: nothing is released until a job for the new hole is added
        #: (the subscriber has its Interrupted; older trades may not follow it).
        self.paused = False

    def hold(self, trade: Filled, limit: int) -> None:
        """Hold a live trade (or candle) until the fill is released (the oldest goes beyond
        ``limit``). A candle replaces a held one of its period: only the latest counts."""
        held = self.held
        if held and type(trade) is Candle and _ms(held[-1]) == _ms(trade):
            held[-1] = trade
            return
        held.append(trade)
        if len(held) > limit:
            lost = _ms(held.popleft())
            dropped = self.dropped
            self.dropped = (lost, lost) if dropped is None else (dropped[0], max(dropped[1], lost))

    def newest_ms(self) -> int:
        """The newest trade time this fill knows of: where the next hole begins."""
        newest = self.since_ms
        if self.until_ms is not None:
            newest = max(newest, self.until_ms)
        if self.held:
            newest = max(newest, max(_ms(trade) for trade in self.held))
        if self.fetched:
            newest = max(newest, max(_ms(trade) for trade in self.fetched))
        return newest


def since_of(stream: Stream, target: Target) -> int | None:
    """Where a backfill of ``target`` would start if its connection were lost now: its armed
    time, the newest its fill knows, or its stream's last trade; ``None``: nothing to fill
    (backfill off, never had a trade, or still waiting for its first SNAPSHOT)."""
    if not target.buffer.backfill:
        return None
    if target.fill_since is not None:
        return target.fill_since
    fill: Fill | None = target.fill
    if fill is not None:
        return fill.newest_ms()
    last: Filled | None = stream.last
    if target.waiting or last is None:
        return None
    return time_of(last)


def since_on_loss(index: RouteIndex, ticket: str) -> dict[tuple[str, str, str], int]:
    """``ticket``'s connection is lost: where each of its trade and candle routes to backfill
    starts, by (subscription, type, code); what a fill in progress held joins its fetched
    items."""
    since: dict[tuple[str, str, str], int] = {}
    for stream in index.by_ticket.get(ticket, {}).values():
        if not stream.fillable:
            continue
        for target in stream.targets:
            at = since_of(stream, target)
            fold_held(target)
            if at is not None:
                key = target.key
                since[(target.subscriber, key.data_type, key.code)] = at
                _remember_seen(stream, target)
    return since


def _remember_seen(stream: Stream, target: Target) -> None:
    """Keep the trade ids ``target``'s subscriber had: other routes' releases may push them out
    of the bounded window before this route's fill releases."""
    window, subscriber = stream.window, target.subscriber
    if window is not None:
        mine = (sid for sid, subs in window.ids.items() if subscriber in subs)
        target.fill_seen = target.fill_seen.union(mine)


def arm(
    index: RouteIndex, outage: Outage, sub: str, codes: tuple[str, ...], ticket: str | None
) -> tuple[str, ...]:
    """Arm the backfill of ``codes`` for ``sub``, whose gap ends now (on ``ticket``, or where
    its streams went when ``None``): the codes armed, for its Gap."""
    armed: list[str] = []
    tickets = [ticket] if ticket is not None else list(index.by_ticket)
    wanted = set(codes)
    for sub_type_code in [key for key in outage.since if key[0] == sub and key[2] in wanted]:
        since = outage.since.pop(sub_type_code)
        _, data_type, code = sub_type_code
        for name in tickets:
            stream = index.streams.get((name, data_type, code))
            for target in () if stream is None else stream.targets:
                if target.subscriber != sub or target.buffer.closed:
                    continue
                if ticket is None and not target.waiting:
                    continue  # no SNAPSHOT is coming to open the fill
                known = target.fill_since
                target.fill_since = since if known is None else min(known, since)
                armed.append(code)
    return tuple(sorted(set(armed)))


def arm_silence(index: RouteIndex, ticket: str) -> None:
    """Arm ``ticket``'s trade and candle routes that stream live (not waiting, not filling) to
    fetch from their last item; the next item opens the fill (the router's general path)."""
    for stream in index.by_ticket.get(ticket, {}).values():
        if not stream.fillable:
            continue
        for target in stream.targets:
            if target.waiting or target.fill is not None or target.fill_since is not None:
                continue
            target.fill_since = since_of(stream, target)
            _remember_seen(stream, target)
        stream.count_fills()


def open_fill(stream: Stream, target: Target, held: list[Filled]) -> int | None:
    """``target``'s wait ended: hold ``held`` (the SNAPSHOT, or what the wait held back) in its
    fill, opened if need be. Returns the ``since`` a new job must fetch from, if armed."""
    since = target.fill_since
    fill = target.fill
    if fill is None:
        if since is None:
            return None
        fill = target.fill = Fill(since)
        stream.count_fills()
    fill.released.update(target.fill_seen)
    target.fill_since, target.fill_seen = None, frozenset()
    limit = hold_limit(target)
    for trade in held:
        fill.hold(trade, limit)
    return since


def divert_held(
    stream: Stream, target: Target, held: list[Any]
) -> tuple[bool, int | None, int | None]:
    """A wait ran out without a SNAPSHOT: an armed or filling route holds what the wait held
    back, to fetch from its last item up to the oldest held (or now). Returns whether it took
    ``held``, and the ``since`` and ``until`` of the job to ask for (``since`` None: none)."""
    if not stream.fillable or (target.fill is None and target.fill_since is None):
        return False, None, None
    items = [msg for msg in held if isinstance(msg, Trade | Candle)]
    since = open_fill(stream, target, items)
    until = min((t for t in map(time_of, items) if t is not None), default=None)
    return True, since, until


def add_job(target: Target, job: BackfillJob) -> None:
    """Record that ``job`` fetches for ``target``'s fill."""
    fill = target.fill
    assert fill is not None
    fill.jobs[job.id] = (job.since_ms, job.until_ms)
    fill.paused = False
    if job.until_ms is not None:
        fill.until_ms = max(fill.until_ms or 0, job.until_ms)


def new_job(
    job_id: int, stream: Stream, filling: list[tuple[Target, int]], until: int | None
) -> BackfillJob:
    """The job that fetches for ``filling`` (routes of ``stream`` and where each starts), up to
    ``until``; each route's fill now waits for it."""
    targets = [target for target, _ in filling]
    job = BackfillJob(
        job_id,
        stream.ticket,
        targets[0].key.code,
        min(since for _, since in filling),
        until,
        tuple(target.route_id for target in targets),
        stream.data_type,
    )
    for target in targets:
        add_job(target, job)
    return job


def fold_held(target: Target) -> None:
    """The connection of a filling ``target`` is lost: it pauses until the next connection's
    job, and what it held joins the fetched trades (older than anything that job brings)."""
    fill = target.fill
    if fill is None:
        return
    fill.paused = True
    if not fill.held:
        return
    fill.fetched.extend(fill.held)
    fill.held.clear()
    fill.sorted = False


def complete(target: Target, job_id: int, result: BackfillResult) -> bool:
    """Job ``job_id`` of ``target``'s fill is done; True if that was its last job."""
    fill = target.fill
    if fill is None or fill.jobs.pop(job_id, None) is None:
        return False
    fill.fetched.extend(result.items)
    fill.unfilled.extend(result.unfilled)
    fill.pages += result.pages
    fill.sorted = False
    return not fill.jobs


def _deliver(stream: Stream, target: Target, trade: Filled, released: set[int]) -> bool:
    """Put ``trade`` into ``target``'s buffer unless its subscriber had it (trades: the window,
    or ``released``, the ids this fill delivered: a long backfill outgrows the bounded window,
    and the held trades that follow overlap its newest); True if put."""
    window = stream.window
    if window is not None and type(trade) is Trade:
        sequential_id = trade.sequential_id
        subscriber = target.subscriber
        seen = window.ids.get(sequential_id)
        if sequential_id in released or (seen is not None and subscriber in seen):
            target.buffer.count_duplicate()
            return False
        window.add(sequential_id, (subscriber,))
        released.add(sequential_id)
    target.put(trade)
    target.delivered += 1
    last = stream.last
    if last is None or _order(trade) > _order(last):
        stream.last = trade
    return True


def drain(stream: Stream, target: Target, *, at: float, give_up: bool) -> bool:
    """Release what ``target``'s fill can (see the module's theory of operation); True once the
    fill is over. ``give_up``: the deadline passed, deliver what fits and report the rest."""
    fill = target.fill
    if fill is None:
        return True
    if fill.jobs or (fill.paused and not give_up):
        return False
    if not fill.sorted:
        # Candles: the SNAPSHOT's period (``until``) is held, so it is not delivered twice.
        until = fill.until_ms if stream.window is None and fill.until_ms is not None else None
        pending = [
            item
            for item in fill.fetched[fill.position :]
            if _ms(item) >= fill.since_ms and (until is None or _ms(item) < until)
        ]
        pending.sort(key=_order)
        fill.fetched[fill.position :] = pending
        fill.sorted = True
    buffer = target.buffer
    fetched = fill.fetched
    room = buffer.max_size - len(buffer) - len(fill.held) - buffer.max_size // 4
    while fill.position < len(fetched) and room > 0:
        trade = fetched[fill.position]
        fill.position += 1
        if _deliver(stream, target, attrs.evolve(trade, stream_type=BACKFILL), fill.released):
            fill.delivered += 1
            room -= 1
    if fill.position < len(fetched):
        if not give_up:
            return False
        end = _ms(fetched[-1]) + 1
        fill.unfilled.append(Unfilled(_ms(fetched[fill.position]), end, "slow_consumer"))
        fill.position = len(fetched)
    if not give_up and buffer.max_size - len(buffer) <= len(fill.held):
        return False
    _finish(stream, target, fill, at)
    return True


def _finish(stream: Stream, target: Target, fill: Fill, at: float) -> None:
    """Put the event and the held trades; the route streams live again."""
    unfilled = list(fill.unfilled)
    if fill.dropped is not None:
        first, last = fill.dropped
        unfilled.append(Unfilled(first, last + 1, "hold_limit"))
    unfilled.sort(key=lambda span: span.start_ms)
    key = target.key
    target.buffer.put_event(
        Backfilled(
            stream.ticket,
            key.code,
            fill.since_ms,
            fill.until_ms,
            fill.delivered,
            tuple(unfilled),
            at,
            fill.pages,
            key.data_type,
            utc=datetime.now(UTC),
        )
    )
    target.fill = None
    for trade in fill.held:
        _deliver(stream, target, trade, fill.released)
    stream.count_fills()


def abandon(stream: Stream, target: Target, *, at: float, gone: bool = False) -> None:
    """``target``'s route left its ticket while armed or filling. If its stream moved, deliver
    what was fetched and held, and report the ranges still being fetched as unfilled; if its
    subscriber dropped it (``gone``), drop the fill."""
    since = target.fill_since
    target.fill_since = None
    fill = target.fill
    if fill is None:
        if since is None or target.buffer.closed:
            return
        fill = target.fill = Fill(since)
        fill.unfilled.append(Unfilled(since, None, "moved"))
    for job_since, _ in fill.jobs.values():
        fill.unfilled.append(Unfilled(job_since, None, "moved"))
    fill.jobs.clear()
    if gone or target.buffer.closed:
        target.fill = None
        return
    # ``stream`` no longer lists ``target``: its counts are not touched (count_fills skips it).
    drain(stream, target, at=at, give_up=True)


def _fills(index: RouteIndex, job: BackfillJob) -> list[tuple[Stream, Target]]:
    stream = index.streams.get((job.ticket, job.data_type, job.code))
    if stream is None:
        return []
    return [
        (stream, target)
        for target in stream.targets
        if target.route_id in job.routes and target.fill is not None
    ]


def job_done(index: RouteIndex, job: BackfillJob, result: BackfillResult, *, at: float) -> bool:
    """``job`` brought ``result``: the fills it was the last job of are drained. True if some
    still wait for room in their buffers."""
    waiting = False
    for stream, target in _fills(index, job):
        if complete(target, job.id, result):
            waiting |= not drain(stream, target, at=at, give_up=False)
    return waiting


def drain_job(index: RouteIndex, job: BackfillJob, *, at: float, give_up: bool) -> bool:
    """Drain the fills of ``job`` again (those another job still fetches for are drained when
    that one ends); True if some still wait for room."""
    waiting = False
    for stream, target in _fills(index, job):
        if not target.fill.jobs and not target.fill.paused:
            waiting |= not drain(stream, target, at=at, give_up=give_up)
    return waiting


def armed_count(index: RouteIndex) -> int:
    """Routes armed for a backfill at a reconnect whose SNAPSHOT has not come yet (routes armed
    by a silence wait for a trade that may not come, and are not counted)."""
    return sum(
        1
        for stream in index.streams.values()
        if stream.fillable
        for target in stream.targets
        if target.fill_since is not None and target.waiting
    )
