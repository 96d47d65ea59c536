"""One snapshot ticket: a supervised actor owning at most one WebSocket connection at a time.

Theory of operation
-------------------
The ticket sleeps on its mailbox until the coordinator sends :class:`Work`. It then connects
(after its own backoff if the last attempt failed, after any HTTP 429/418 block, and through the
engine's shared connect limiter) and serves batches on that connection:

1. wait ``coalesce_window`` and for a free slot of the connection's message limiter, then pull
   the batch (:class:`TakeBatch`). Pulling only when able to send means everything that queued
   during the connect or the limiter's wait goes out in this one request;
2. send it as one snapshot-only request and *settle* it: wait until every SNAPSHOT arrived, or,
   once the connection has been quiet for the settle period, ping. A pong with still nothing
   new means the connection is alive and the rest will not come (unlisted codes get silence);
   no pong means the connection is dead;
3. pull again. With nothing to take, *linger*: keep the connection (and its pings) for
   ``snapshot_linger`` seconds, then close it with 1000.

Only then is the next request sent: Upbit replaces a connection's subscription with every
request, so sending earlier could cancel SNAPSHOTs still on their way.

A lost connection, a failed connect, or a missing pong is reported as :class:`Disconnected`; the
coordinator queues the missing keys again, and the ticket reconnects after a jittered
exponential backoff when woken. An error frame is reported as :class:`Rejected` and the
connection is closed. Anything else is a bug: the actor crashes and its supervisor restarts it.
A protocol ping every ``ping_interval`` (pong within ``ping_timeout``) runs while connected.
"""

from __future__ import annotations

import random
import uuid
from contextlib import suppress
from typing import NoReturn

import attrs
import trio

from actors import ActorContext, ActorDeadError, ActorFunction, ActorRef
from engine._groups import leaf_exceptions, raise_single_leaf
from engine.config import EngineConfig
from engine.core.keys import StreamKey
from engine.core.ratelimit import SlidingWindowLimiter, message_limiter
from engine.core.requests import snapshot_request
from engine.core.snapshot_book import Batch, message_key
from engine.errors import ConnectionFailedError, RateLimitedError, ServerError
from engine.observability.frame_report import FrameReport
from engine.runtime.link import keepalive, probe, read_frames, wait_connect_slot
from engine.runtime.pacing import acquire_slot
from engine.runtime.snapshot_messages import (
    CoordinatorMessage,
    Delivered,
    Disconnected,
    Hub,
    Rejected,
    Settled,
    SnapshotTicketConnected,
    TakeBatch,
    TicketDown,
    TicketUp,
    Work,
)
from engine.transport.base import Connection, Transport
from engine.wire.messages import (
    Message,
)
from engine.wire.protocol import PING_TEXT, Format, build_request

__all__ = ("TicketSettings", "ticket_actor")

#: Frames read between two schedule points (see ``read_frames``): snapshot answers are few.
_BURST = 64


@attrs.frozen
class TicketSettings:
    """What every snapshot ticket of one service shares."""

    config: EngineConfig
    transport: Transport
    connect_limiter: SlidingWindowLimiter
    rng: random.Random
    #: Quiet seconds after which a batch's missing SNAPSHOTs are presumed not coming.
    settle_quiet: float
    #: Where undecodable frames and drifted fields are counted (the engine's metrics).
    frame_report: FrameReport


class _ErrorFrame(Exception):
    def __init__(self, error: ServerError) -> None:
        self.error = error
        super().__init__(str(error))


@attrs.define(eq=False)
class _Progress:
    batch_id: int
    outstanding: set[StreamKey]
    last_activity: float
    frames: int = 0
    changed: trio.Event = attrs.field(factory=trio.Event)


class _SnapshotTicket:
    def __init__(self, index: int, ctx: ActorContext[Work], hub: Hub, settings: TicketSettings):
        self._index = index
        self._ctx = ctx
        self._generation = ctx.generation
        self._hub = hub
        self._settings = settings
        self._config = config = settings.config
        self._failures = 0
        #: The current connection settled a batch: its loss reconnects at once.
        self._healthy = False
        self._failure_log = hub.failure_log(index)
        self._progress: _Progress | None = None
        # Both replaced for every connection.
        self._limiter = message_limiter(config.messages_per_second, config.messages_per_minute)
        self._ticket_id = ""
        self._stoppable: trio.CancelScope | None = None
        coordinator = hub.coordinator
        if coordinator is None:
            raise RuntimeError("a snapshot ticket started without its coordinator running")
        self._coordinator: ActorRef[CoordinatorMessage] = coordinator

    async def run(self, task_status: trio.TaskStatus[None]) -> None:
        self._coordinator.cast_nowait(TicketUp(self._index, self._generation, self._ctx.ref))
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._stop_watch)
                task_status.started()
                await self._loop()
                nursery.cancel_scope.cancel()
        except BaseExceptionGroup as group:
            raise_single_leaf(group)
        finally:
            with suppress(ActorDeadError):
                self._coordinator.cast_nowait(TicketDown(self._index, self._generation))

    async def _stop_watch(self) -> None:
        await self._ctx.wait_stop_requested()
        if self._stoppable is not None:
            self._stoppable.cancel()

    def _stop_here(self, scope: trio.CancelScope) -> trio.CancelScope:
        """Make ``scope`` the one a stop request cancels.

        Only ever the innermost wait: cancelling a scope around the transport's connection would
        also cancel its reader, and the close handshake would then wait out its timeout.
        """
        self._stoppable = scope
        if self._ctx.stop_requested:
            scope.cancel()
        return scope

    async def _loop(self) -> None:
        while True:
            try:
                await self._ctx.mailbox.receive()
            except trio.EndOfChannel:
                return
            await self._connect_and_serve()

    # -- connecting ------------------------------------------------------------------------------

    async def _connect_and_serve(self) -> None:
        with self._stop_here(trio.CancelScope()):
            await self._wait_turn()
        connected = False
        error: Exception
        try:
            with self._stop_here(trio.CancelScope()):  # stops a handshake in progress
                async with self._settings.transport.connect(
                    self._config.ws_url, connect_timeout=self._config.connect_timeout
                ) as conn:
                    connected = True
                    self._on_connected()
                    try:
                        await self._session(conn)
                    finally:
                        self._stoppable = None
                        self._hub.open_tickets.discard(self._index)
        except _ErrorFrame as exc:
            self._count_failure()
            batch_id = self._end_progress()
            self._report(Rejected(self._index, self._generation, batch_id, exc.error))
            return
        except RateLimitedError as exc:
            self._hub.rate_backoff.on_rejected(
                exc.status, trio.current_time(), retry_after=exc.retry_after
            )
            error = exc
        except ConnectionFailedError as exc:
            error = exc
        else:
            self._report(Disconnected(self._index, self._generation, self._end_progress(), None))
            return
        self._count_failure()
        self._failure_log.failed(str(error) or type(error).__name__, trio.current_time())
        counters = self._hub.counters
        if connected:
            counters.connections_lost += 1
        else:
            counters.connect_failures += 1
        self._report(Disconnected(self._index, self._generation, self._end_progress(), error))

    async def _wait_turn(self) -> None:
        """Back off after failures, then wait out any 429/418 block and take a slot of the
        shared connect limiter."""
        await trio.sleep(self._backoff_delay())
        await wait_connect_slot(self._hub.rate_backoff, self._settings.connect_limiter)

    def _count_failure(self) -> None:
        # Backoff follows health, not uptime: the loss of a connection that did its work
        # reconnects at once; only failures before that make the backoff grow.
        if self._healthy:
            self._healthy = False
        else:
            self._failures += 1

    def _backoff_delay(self) -> float:
        if self._failures == 0:
            return 0.0
        return self._config.backoff_policy().delay(self._failures - 1, self._settings.rng)

    def _on_connected(self) -> None:
        config = self._config
        self._limiter = message_limiter(config.messages_per_second, config.messages_per_minute)
        self._ticket_id = (
            f"upbit-engine-{uuid.UUID(int=self._settings.rng.getrandbits(128), version=4)}"
        )
        self._hub.counters.connects += 1
        self._failure_log.connected(trio.current_time())
        self._hub.open_tickets.add(self._index)
        self._report(SnapshotTicketConnected(self._index, self._generation))

    def _end_progress(self) -> int | None:
        progress, self._progress = self._progress, None
        return None if progress is None else progress.batch_id

    def _report(self, message: CoordinatorMessage) -> None:
        # The coordinator's mailbox is unbounded (a circular flow): this never blocks.
        self._coordinator.cast_nowait(message)

    # -- one connection --------------------------------------------------------------------------

    async def _session(self, conn: Connection) -> None:
        try:
            async with trio.open_nursery() as nursery:
                self._stop_here(nursery.cancel_scope)
                nursery.start_soon(self._reader, conn)
                nursery.start_soon(self._pinger, conn)
                await self._serve(conn)
                nursery.cancel_scope.cancel()
        except BaseExceptionGroup as group:
            _raise_connection_error(group)

    async def _serve(self, conn: Connection) -> None:
        config = self._config
        if config.text_ping:
            # Starts Upbit's 10 s status frames, which keep a lingering socket alive.
            await self._send(conn, PING_TEXT)
        while True:
            await trio.sleep(config.coalesce_window)
            await self._wait_budget()
            batch: Batch | None = await self._coordinator.call(
                lambda reply: TakeBatch(self._index, self._generation, reply)
            )
            if batch is None:
                if await self._linger():
                    continue
                return
            await self._send_batch(conn, batch)
            await self._settle(conn)
            self._failures = 0
            self._healthy = True
            self._report(Settled(self._index, self._generation, batch.batch_id))
            self._progress = None

    async def _wait_budget(self) -> None:
        """Wait for the connection's message limiter, telling the hub while it holds us back
        (a request timing out meanwhile then says why, instead of blaming the codes)."""
        now = trio.current_time()
        delay = self._limiter.delay(now)
        if delay <= 0:
            return
        self._hub.budget_waits[self._index] = now + delay
        try:
            await trio.sleep(delay)
        finally:
            self._hub.budget_waits.pop(self._index, None)

    async def _linger(self) -> bool:
        """Keep the connection for reuse; True when woken for more work before it expires."""
        with trio.move_on_after(self._config.snapshot_linger):
            try:
                await self._ctx.mailbox.receive()
            except trio.EndOfChannel:
                return False
            return True
        return False

    async def _send(self, conn: Connection, text: str) -> None:
        await acquire_slot(self._limiter)
        await conn.send_text(text)

    async def _send_batch(self, conn: Connection, batch: Batch) -> None:
        fmt: Format = "SIMPLE" if self._config.format == "SIMPLE" else "DEFAULT"
        text = build_request(self._ticket_id, snapshot_request(batch.wire), format=fmt)
        self._progress = _Progress(batch.batch_id, set(batch.keys), trio.current_time())
        await self._send(conn, text)
        self._progress.last_activity = trio.current_time()
        self._hub.counters.wire_requests += 1

    async def _settle(self, conn: Connection) -> None:
        progress = self._progress
        assert progress is not None
        quiet = self._settings.settle_quiet
        while progress.outstanding:
            progress.changed = trio.Event()
            with trio.move_on_at(progress.last_activity + quiet):
                await progress.changed.wait()
            if not progress.outstanding:
                return
            if trio.current_time() < progress.last_activity + quiet:
                continue  # something arrived: keep waiting
            seen = progress.frames
            await self._ping(conn)
            if progress.frames == seen:
                return  # alive and silent: what is missing is not coming on this request

    async def _ping(self, conn: Connection) -> None:
        await probe(conn, self._config.ping_timeout, "the snapshot connection")

    async def _pinger(self, conn: Connection) -> None:
        config = self._config
        await keepalive(
            conn,
            interval=config.ping_interval,
            pong_within=config.ping_timeout,
            what="the snapshot connection",
        )

    async def _reader(self, conn: Connection) -> None:
        try:
            await read_frames(
                conn,
                self._deliver,
                name=f"snapshot-{self._index}",
                generation=self._generation,
                counts=self._hub.counters,
                report=self._settings.frame_report,
                received=self._hub.counters.received,
                burst=_BURST,
            )
        except ServerError as exc:
            raise _ErrorFrame(exc) from None

    def _deliver(self, name: str, generation: int, message: Message) -> None:
        del name
        # Not only stream_type SNAPSHOT: this connection only ever asks is_only_snapshot, and a
        # server that omits stream_type makes its answers look REALTIME. A message no ask waits
        # for is dropped by the book.
        self._report(Delivered(self._index, generation, (message,)))
        self._note_progress([message])

    def _note_progress(self, snapshots: list[Message]) -> None:
        progress = self._progress
        if progress is None:
            return
        for message in snapshots:
            key = message_key(message)
            if key is not None:
                progress.outstanding.discard(key)
        progress.frames += 1
        progress.last_activity = trio.current_time()
        progress.changed.set()


def _raise_connection_error(group: BaseExceptionGroup[BaseException]) -> NoReturn:
    """Raise the error that ended a session: an error frame first, else a connection error.

    Anything else (cancellation, a bug) is raised as the group itself.
    """
    leaves = leaf_exceptions(group)
    if all(isinstance(leaf, Exception) for leaf in leaves):
        for kind in (_ErrorFrame, ConnectionFailedError):
            for leaf in leaves:
                if isinstance(leaf, kind):
                    raise_single_leaf(BaseExceptionGroup("session ended", [leaf]))
    raise group


def ticket_actor(index: int, hub: Hub, settings: TicketSettings) -> ActorFunction[Work]:
    """The actor of snapshot ticket ``index``."""

    async def ticket(
        ctx: ActorContext[Work], *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        await _SnapshotTicket(index, ctx, hub, settings).run(task_status)

    return ticket
