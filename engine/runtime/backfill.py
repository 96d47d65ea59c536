"""The backfill service: fetches what a restored trade or candle stream missed, for the router.

Theory of operation
-------------------
The router (:mod:`engine.routing.fill`) decides *what* to fetch: when a trade stream comes back
after a gap it holds the stream's live trades for the subscribers to fill and hands a
:class:`~engine.routing.fill.BackfillJob` to :meth:`BackfillService.submit` (synchronously, from
its hot path: the job is only queued there). The service's actor, a child of the engine's root
supervisor, runs the jobs, at most ``EngineConfig.backfill_concurrency`` at once, each through
the engine's one :class:`~engine.rest.QuotationClient`, so backfills and the user's history
calls share Upbit's per-second budget and its 429/418 state:

- the trades from ``since`` to ``until`` are fetched with
  :func:`~engine.rest.history_trades.fetch_trades` (the candles of the periods from ``since`` up
  to ``until`` with :func:`~engine.rest.history_candles.fetch_candles`; paged, at most
  ``backfill_max_pages``),
  with the exchange's own clock (``until``, a trade time) as "now", so a host clock that is off
  does not move the UTC day REST is asked about;
- whatever happens (an error, the ``backfill_timeout`` deadline from the fetch's start, the
  service stopping), the
  router is answered with a :class:`~engine.routing.fill.BackfillResult` whose ``unfilled``
  ranges say what is missing and why: a held stream is never left waiting;
- the router then releases the trades as far as each subscriber's buffer has room; while some
  wait for room the job polls every :data:`DRAIN_POLL` seconds as the consumer reads, and gives
  up after another ``backfill_timeout``, reporting the rest unfilled (``slow_consumer``).

A job queued while the actor restarts waits in the queue; a job whose runner was cancelled
answers the router first (reason ``stopped``).
"""

from __future__ import annotations

from collections import deque
from datetime import UTC, datetime
from typing import Any, Final

import trio

from actors import ActorContext
from engine.config import EngineConfig
from engine.errors import UpbitEngineError
from engine.events import Unfilled
from engine.observability.records import MetricsRecorder
from engine.rest.history import Coverage, HistoryResult
from engine.rest.history_candles import fetch_candles
from engine.rest.history_trades import fetch_trades
from engine.rest.quotation import QuotationClient
from engine.routing.fill import BackfillJob, BackfillResult
from engine.routing.router import Router

__all__ = ("DRAIN_POLL", "BackfillService")

#: Seconds between two attempts to release fetched trades into a full buffer.
DRAIN_POLL: Final = 0.05


def _at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _unfilled(coverage: Coverage) -> tuple[Unfilled, ...]:
    span = coverage.uncovered
    if span is None:
        return ()
    return (Unfilled(_ms(span.start), _ms(span.end), coverage.reason or "rest_error"),)


class BackfillService:
    """Runs the router's backfill jobs (see the module's theory of operation)."""

    def __init__(
        self,
        config: EngineConfig,
        *,
        router: Router,
        quotation: QuotationClient,
        metrics: MetricsRecorder,
    ) -> None:
        self._config = config
        self._router = router
        self._quotation = quotation
        self._metrics = metrics
        self._queue: deque[tuple[BackfillJob, float]] = deque()
        self._wake = trio.Event()
        #: Jobs queued or running, and an event set whenever there are none.
        self.busy = 0
        self._idle = trio.Event()
        self._idle.set()
        self._submitted = trio.Event()

    def submit(self, job: BackfillJob) -> None:
        """Queue ``job`` (the router's ``on_backfill``: synchronous, never blocks)."""
        self._queue.append((job, trio.current_time()))
        if not self.busy:
            self._idle = trio.Event()
        self.busy += 1
        self._wake.set()
        self._submitted.set()
        self._submitted = trio.Event()

    async def wait_submitted(self) -> None:
        """Return at the next :meth:`submit`."""
        await self._submitted.wait()

    async def wait_idle(self) -> None:
        """Return once no job is queued or running (every held stream was released)."""
        while self.busy:
            await self._idle.wait()

    def _job_ended(self) -> None:
        self.busy -= 1
        if not self.busy:
            self._idle.set()

    async def run(
        self,
        ctx: ActorContext[Any],
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """The actor: start every queued job, at most ``backfill_concurrency`` at once."""
        limiter = trio.CapacityLimiter(self._config.backfill_concurrency)
        async with trio.open_nursery() as nursery:
            task_status.started()
            while not ctx.stop_requested:
                while self._queue:
                    job, asked = self._queue.popleft()
                    nursery.start_soon(self._run_job, job, asked, limiter)
                if not self._queue:
                    self._wake = trio.Event()
                    await self._wait(ctx)
            nursery.cancel_scope.cancel()

    async def _wait(self, ctx: ActorContext[Any]) -> None:
        async with trio.open_nursery() as nursery:

            async def stop() -> None:
                await ctx.wait_stop_requested()
                nursery.cancel_scope.cancel()

            nursery.start_soon(stop)
            await self._wake.wait()
            nursery.cancel_scope.cancel()

    async def _run_job(self, job: BackfillJob, asked: float, limiter: trio.CapacityLimiter) -> None:
        metrics = self._metrics
        metrics.backfills_running += 1
        router = self._router
        answered = False
        try:
            async with limiter:
                # From its start: jobs wait their turn in the quotation budget (10 requests/s),
                # so with every KRW code interrupted the last one starts ~30 s after the first.
                deadline = trio.current_time() + self._config.backfill_timeout
                result = await self._fetch(job, deadline)
            answered = True
            waiting = router.backfill_done(job, result, at=trio.current_time())
            if job.data_type == "trade":
                metrics.backfill_trades += len(result.items)
            metrics.backfill_pages += result.pages
            if result.unfilled:
                metrics.backfills_incomplete += 1
            give_up_at = trio.current_time() + self._config.backfill_timeout
            while waiting:
                await trio.sleep(DRAIN_POLL)
                now = trio.current_time()
                waiting = router.drain_backfill(job, at=now, give_up=now >= give_up_at)
            metrics.backfill_latency.observe(trio.current_time() - asked)
        finally:
            self._job_ended()
            metrics.backfills_running -= 1
            metrics.backfills += 1
            # Cancelled (the engine is stopping, or the service restarts): the held streams
            # hear why instead of waiting for good.
            at = trio.current_time()
            if not answered:
                stopped = Unfilled(job.since_ms, _end_ms(job), "stopped")
                router.backfill_done(job, BackfillResult(unfilled=(stopped,)), at=at)
            router.drain_backfill(job, at=at, give_up=True)

    async def _fetch(self, job: BackfillJob, deadline: float) -> BackfillResult:
        """The trades (candles) of ``job`` (a result whatever happens, by ``deadline``)."""
        end_ms = _end_ms(job)
        if end_ms is not None and end_ms <= job.since_ms:
            return BackfillResult()  # a candle stream back within the period it left
        # The exchange's clock where known (a trade time), so "today" is Upbit's UTC day.
        now = max(datetime.now(UTC) if end_ms is None else _at(end_ms), _at(job.since_ms + 1))
        start, pages = _at(job.since_ms), self._config.backfill_max_pages
        history: HistoryResult[Any]
        with trio.move_on_at(deadline):
            try:
                if job.data_type == "trade":
                    history = await fetch_trades(
                        self._quotation, job.code, start=start, end=now, max_pages=pages, now=now
                    )
                else:
                    unit = job.data_type.removeprefix("candle.")
                    history = await fetch_candles(
                        self._quotation,
                        job.code,
                        unit,
                        start=start,
                        end=now,
                        max_pages=pages,
                        now=now,
                    )
            except UpbitEngineError:
                return BackfillResult(unfilled=(Unfilled(job.since_ms, end_ms, "rest_error"),))
            return BackfillResult(history.items, _unfilled(history.coverage), history.pages)
        return BackfillResult(unfilled=(Unfilled(job.since_ms, end_ms, "timeout"),))


def _end_ms(job: BackfillJob) -> int | None:
    """The end (exclusive) of what ``job`` fetches (``None``: now): just after ``until`` for
    trades, ``until`` itself for candles (the restored stream's first period is held)."""
    if job.until_ms is None:
        return None
    return job.until_ms + 1 if job.data_type == "trade" else job.until_ms
