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

import attrs

from engine.events import Backfilled, Unfilled
from engine.routing.index import TRADE, RouteIndex, Stream, Target
from engine.routing.outages import Outage
from engine.routing.table import RouteId
from engine.wire.messages import Trade

__all__ = (
    "BackfillJob",
    "BackfillResult",
    "Fill",
    "abandon",
    "add_job",
    "arm",
    "armed_count",
    "complete",
    "drain",
    "drain_job",
    "fold_held",
    "hold_limit",
    "job_done",
    "open_fill",
    "since_of",
    "since_on_loss",
)

#: The mark backfilled trades carry in ``stream_type``.
BACKFILL = "BACKFILL"


@attrs.frozen
class BackfillJob:
    """Fetch the trades of ``code`` with ``since_ms <= trade time <= until_ms`` (epoch ms) for
    ``routes``, all reading one stream of ``ticket``; ``until_ms`` ``None``: up to now."""

    id: int
    ticket: str
    code: str
    since_ms: int
    until_ms: int | None
    routes: tuple[RouteId, ...]


@attrs.frozen
class BackfillResult:
    """What a job brought: the trades found (any order), what it could not cover, its pages."""

    trades: tuple[Trade, ...] = ()
    unfilled: tuple[Unfilled, ...] = ()
    pages: int = 0


def hold_limit(target: Target) -> int:
    """Live trades a filling route holds at most: half its subscriber's buffer, so they always
    fit once the fetched trades are read."""
    return max(1, target.buffer.max_size // 2)


def _ms(trade: Trade) -> int:
    return trade.trade_timestamp or 0


def _order(trade: Trade) -> tuple[int, int]:
    return (_ms(trade), trade.sequential_id)


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
        self.fetched: list[Trade] = []
        #: ``fetched[:position]`` were delivered (or given up); the rest is sorted once
        #: ``sorted`` is True.
        self.position = 0
        self.sorted = True
        self.held: deque[Trade] = deque()
        self.unfilled: list[Unfilled] = []
        #: Oldest and newest time of the held trades dropped for room, if any.
        self.dropped: tuple[int, int] | None = None
        self.delivered = 0
        self.pages = 0
        #: Its connection was lost: nothing is released until a job for the new hole is added
        #: (the subscriber has its Interrupted; older trades may not follow it).
        self.paused = False

    def hold(self, trade: Trade, limit: int) -> None:
        """Hold a live trade until the fill is released (the oldest goes beyond ``limit``)."""
        held = self.held
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
    last: Trade | None = stream.last
    if target.waiting or last is None:
        return None
    return last.trade_timestamp


def since_on_loss(index: RouteIndex, ticket: str) -> dict[tuple[str, str], int]:
    """``ticket``'s connection is lost: where each of its trade routes to backfill starts,
    by (subscription, code); what a fill in progress held joins its fetched trades."""
    since: dict[tuple[str, str], int] = {}
    for stream in index.by_ticket.get(ticket, {}).values():
        if stream.kind != TRADE:
            continue
        for target in stream.targets:
            at = since_of(stream, target)
            fold_held(target)
            if at is not None:
                since[(target.subscriber, target.key.code)] = at
    return since


def arm(
    index: RouteIndex, outage: Outage, sub: str, codes: tuple[str, ...], ticket: str | None
) -> tuple[str, ...]:
    """Arm the backfill of ``codes`` for ``sub``, whose gap ends now (on ``ticket``, or where
    its streams went when ``None``): the codes armed, for its Gap."""
    armed: list[str] = []
    tickets = [ticket] if ticket is not None else list(index.by_ticket)
    for code in codes:
        since = outage.since.pop((sub, code), None)
        if since is None:
            continue
        for name in tickets:
            stream = index.streams.get((name, "trade", code))
            for target in () if stream is None else stream.targets:
                if target.subscriber != sub or target.buffer.closed:
                    continue
                if ticket is None and not target.waiting:
                    continue  # no SNAPSHOT is coming to open the fill
                known = target.fill_since
                target.fill_since = since if known is None else min(known, since)
                armed.append(code)
    return tuple(dict.fromkeys(armed))


def open_fill(stream: Stream, target: Target, held: list[Trade]) -> int | None:
    """``target``'s wait ended: hold ``held`` (the SNAPSHOT, or what the wait held back) in its
    fill, opened if need be. Returns the ``since`` a new job must fetch from, if armed."""
    since = target.fill_since
    fill = target.fill
    if fill is None:
        if since is None:
            return None
        fill = target.fill = Fill(since)
        stream.count_fills()
    target.fill_since = None
    limit = hold_limit(target)
    for trade in held:
        fill.hold(trade, limit)
    return since


def add_job(target: Target, job: BackfillJob) -> None:
    """Record that ``job`` fetches for ``target``'s fill."""
    fill = target.fill
    assert fill is not None
    fill.jobs[job.id] = (job.since_ms, job.until_ms)
    fill.paused = False
    if job.until_ms is not None:
        fill.until_ms = max(fill.until_ms or 0, job.until_ms)


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
    fill.fetched.extend(result.trades)
    fill.unfilled.extend(result.unfilled)
    fill.pages += result.pages
    fill.sorted = False
    return not fill.jobs


def _deliver(stream: Stream, target: Target, trade: Trade) -> bool:
    """Put ``trade`` into ``target``'s buffer unless its subscriber had it; True if put."""
    window = stream.window
    sequential_id = trade.sequential_id
    subscriber = target.subscriber
    if window is not None:
        seen = window.ids.get(sequential_id)
        if seen is not None and subscriber in seen:
            target.buffer.count_duplicate()
            return False
        window.add(sequential_id, (subscriber,))
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
        pending = [trade for trade in fill.fetched[fill.position :] if _ms(trade) >= fill.since_ms]
        pending.sort(key=_order)
        fill.fetched[fill.position :] = pending
        fill.sorted = True
    buffer = target.buffer
    fetched = fill.fetched
    room = buffer.max_size - len(buffer) - len(fill.held) - buffer.max_size // 4
    while fill.position < len(fetched) and room > 0:
        trade = fetched[fill.position]
        fill.position += 1
        if _deliver(stream, target, attrs.evolve(trade, stream_type=BACKFILL)):
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
            utc=datetime.now(UTC),
        )
    )
    target.fill = None
    for trade in fill.held:
        _deliver(stream, target, trade)
    stream.count_fills()


def abandon(stream: Stream, target: Target, *, at: float) -> None:
    """``target``'s route left its ticket (its stream moved) while armed or filling: deliver
    what was fetched and held, and report the ranges still being fetched as unfilled."""
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
    if target.buffer.closed:
        target.fill = None
        return
    # ``stream`` no longer lists ``target``: its counts are not touched (count_fills skips it).
    drain(stream, target, at=at, give_up=True)


def _fills(index: RouteIndex, job: BackfillJob) -> list[tuple[Stream, Target]]:
    stream = index.streams.get((job.ticket, "trade", job.code))
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
    """Trade routes armed for a backfill whose job has not been asked for (no SNAPSHOT yet)."""
    return sum(
        1
        for stream in index.streams.values()
        if stream.kind == TRADE
        for target in stream.targets
        if target.fill_since is not None
    )
