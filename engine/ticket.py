"""The realtime ticket actor: one WebSocket connection carrying one complete subscription set.

Theory of operation
-------------------
One incarnation runs connections one after another (a hard reset closes and reopens without a
restart). For each connection, with a fresh engine-wide generation number ``g``:

1. wait for the shared connect limiter (5 connects/s per IP) and any 429/418 block in force;
2. connect; tell the router (``ticket_connected``: frames of ``g`` are routed from now on, every
   public route waits for its SNAPSHOT again, an open outage turns into a Gap);
3. ask the registry for the replay (``TicketConnected``: the whole desired set in creation
   order) and send it as ONE request, then the text ``PING`` if configured; only now is the
   ticket ready (``task_status.started()``), so a restarted ticket is "back" once replayed;
4. run three tasks until something ends the connection:

   - the **pump**: receive, ``decode_frame`` once, ``Router.route`` (no actor hop per message);
     an error frame raises :class:`~engine.errors.ServerError` (Upbit closes after one);
   - the **keepalive**: a protocol ping every ``ping_interval`` bounded by ``ping_timeout``;
     with the text ``PING`` on, Upbit sends a status frame every 10 s, so total silence for
     ``stall_timeout`` means a stall even when every subscribed pair is quiet;
   - the **send loop**: takes the registry's changes, drops those of other generations, waits
     ``coalesce_window`` and the per-connection message limiter (5/s and 100/min), merges
     everything that arrived meanwhile into one change, and sends the complete set: codes
     already streaming go with ``is_only_realtime``, an empty set parks the ticket with a
     snapshot-only request for a parking code, a hard reset ends the connection.

Any failure raises out of the actor, and the tickets supervisor restarts it with backoff. On the
way out the ticket tells the router (subscribers get ``Interrupted`` at once) and the registry
(its subscriptions go back to PENDING until the next replay).

One failure is not retried: a private ticket whose keys Upbit refuses (an ``INVALID_AUTH`` error
frame, or HTTP 401 on the upgrade) would be refused again on every reconnect. It tells the
registry (``AuthFailed``: the private subscriptions fail with a cause naming the keys) before it
reports the loss, so nothing relaunches it, and ends normally.
"""

from __future__ import annotations

import contextlib
import math
from typing import TYPE_CHECKING, Any, Literal

import trio

from actors import ActorContext, ActorError
from engine._groups import leaf_exceptions
from engine._pacing import acquire_slot
from engine.errors import (
    ConnectionFailedError,
    NoParkingCodeError,
    RateLimitedError,
    ServerError,
)
from engine.markets import choose_parking_code
from engine.messages import Candle, ErrorReply, MyAsset, MyOrder, Orderbook, StatusUp, Ticker, Trade
from engine.planner import StreamKey, build_ticket_request, fresh_keys, parking_request
from engine.protocol import PING_TEXT, build_request, decode_frame
from engine.ratelimit import SlidingWindowLimiter, message_limiter
from engine.registry_actor import AuthFailed, TicketConnected, TicketLost, TicketSent
from engine.subscriptions import TicketChange, coalesce_changes
from engine.transport import Connection, HandshakeRejectedError

if TYPE_CHECKING:
    from engine.engine_tree import EngineCore

__all__ = ("TicketOutcome", "ticket_actor")

TicketOutcome = Literal["reset", "close"]
"""How a connection ended on purpose: reopen it (hard reset) or stay closed."""

_MESSAGE_TYPES = frozenset({Ticker, Trade, Orderbook, Candle, MyOrder, MyAsset})
#: Seconds a ticket waits for the registry's answer to ``TicketConnected``.
_REGISTRY_TIMEOUT = 10.0
#: Upbit's answer to a refused JWT (an error frame after the first request).
_AUTH_ERROR = "INVALID_AUTH"


def ticket_actor(core: EngineCore, name: str) -> Any:
    """The start function of ticket ``name`` (``realtime-<i>`` or ``private-<i>``)."""

    async def ticket(
        ctx: ActorContext[TicketChange],
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        await _Ticket(core, name, ctx).run(task_status)

    return ticket


class _Ticket:
    def __init__(self, core: EngineCore, name: str, ctx: ActorContext[TicketChange]) -> None:
        self.core = core
        self.name = name
        self.ctx = ctx
        self.runtime = core.tickets[name]
        self.ready = False
        self.request_ticket = f"upbit-engine-{core.instance}-{name}"
        self.streaming: frozenset[StreamKey] = frozenset()
        self.sent_codes: tuple[str, ...] = ()
        self.auth_reported = False

    async def run(self, task_status: trio.TaskStatus[None]) -> None:
        while True:
            outcome = await self._connect_and_serve(task_status)
            if outcome == "close" or self.ctx.stop_requested:
                if not self.ready:
                    self.ready = True
                    task_status.started()
                return

    # -- connecting ----------------------------------------------------------------------------

    async def _wait_connect_slot(self) -> None:
        core = self.core
        while True:
            now = trio.current_time()
            blocked = core.rate_backoff.blocked_until(now)
            if blocked > now:
                await trio.sleep_until(blocked)
                continue
            await acquire_slot(core.connect_limiter)
            if core.rate_backoff.blocked_until(trio.current_time()) <= trio.current_time():
                return

    async def _connect_and_serve(self, task_status: trio.TaskStatus[None]) -> TicketOutcome:
        core = self.core
        while True:
            await self._wait_connect_slot()
            self.auth_reported = False
            try:
                async with core.transport.connect(
                    core.url_for(self.name),
                    headers=core.headers_for(self.name),
                    connect_timeout=core.config.connect_timeout,
                ) as conn:
                    return await self._serve(conn, task_status)
            except RateLimitedError as exc:
                # Upbit pushed back on the upgrade: honour the block, never hammer.
                core.rate_backoff.on_rejected(
                    exc.status, trio.current_time(), retry_after=exc.retry_after
                )
            except BaseException as exc:
                if self._auth_failure(exc) is None:
                    raise
                if not self.auth_reported:  # refused at the upgrade (HTTP 401)
                    self._report_auth_failure(exc)
                return "close"  # normal exit: the transient ticket is not restarted

    def _auth_failure(self, exc: BaseException) -> str | None:
        """The cause to report if ``exc`` means Upbit refused this private ticket's keys."""
        if not self.name.startswith("private-"):
            return None
        leaves = leaf_exceptions(exc) if isinstance(exc, BaseExceptionGroup) else [exc]
        for leaf in leaves:
            refused = (isinstance(leaf, ServerError) and leaf.name == _AUTH_ERROR) or (
                isinstance(leaf, HandshakeRejectedError) and leaf.status == 401
            )
            if refused:
                return (
                    f"Upbit refused the API keys ({_describe(leaf)}): check access_key and "
                    "secret_key (and the key's WebSocket permission), then subscribe again"
                )
        return None

    def _report_auth_failure(self, exc: BaseException) -> bool:
        cause = self._auth_failure(exc)
        if cause is None:
            return False
        ref = self.core.registry_ref
        if ref is not None:
            with contextlib.suppress(ActorError, trio.WouldBlock):
                ref.cast_nowait(AuthFailed(self.name, cause))
        return True

    async def _serve(self, conn: Connection, task_status: trio.TaskStatus[None]) -> TicketOutcome:
        core = self.core
        generation = core.next_generation()
        core.router.ticket_connected(self.name, generation, at=trio.current_time())
        core.metrics.connects += 1
        if self.runtime.frames or self.runtime.lost_at is not None:
            core.metrics.reconnects += 1
        if self.runtime.lost_at is not None and core.registry.ticket_status(self.name).desired:
            core.metrics.gaps += 1  # an abnormal outage of a ticket carrying streams ends now
        self.streaming = frozenset()
        self.sent_codes = ()
        cause: str | None = "the connection ended unexpectedly"
        try:
            outcome = await self._session(conn, generation, task_status)
            cause = None
            return outcome
        except BaseException as exc:
            cause = _describe(exc)
            # Before the loss: the registry must fail the subscriptions before the loss would
            # make it relaunch the ticket.
            self.auth_reported = self._report_auth_failure(exc)
            raise
        finally:
            self._report_lost(generation, cause)

    def _report_lost(self, generation: int, cause: str | None) -> None:
        core = self.core
        now = trio.current_time()
        core.router.ticket_lost(self.name, generation, cause or "closed by the engine", at=now)
        if cause is not None and self.runtime.lost_at is None:
            self.runtime.lost_at = now
        ref = core.registry_ref
        if ref is not None:
            with contextlib.suppress(ActorError, trio.WouldBlock):
                ref.cast_nowait(TicketLost(self.name, generation, cause, now))

    async def _session(
        self, conn: Connection, generation: int, task_status: trio.TaskStatus[None]
    ) -> TicketOutcome:
        core = self.core
        config = core.config
        ref = core.registry_ref
        if ref is None:
            raise ConnectionFailedError("the registry is not running; retrying")
        replay: list[TicketChange] = await ref.call(
            lambda reply: TicketConnected(self.name, generation, self.ctx.ref, reply),
            timeout=_REGISTRY_TIMEOUT,
        )
        if not replay:
            return "close"  # nothing to carry (any more): do not hold a connection open
        limiter = message_limiter(config.messages_per_second, config.messages_per_minute)
        await self._wait_send_slot(limiter)
        outcome = await self._send(conn, generation, coalesce_changes(replay))
        if outcome is not None:
            return outcome
        if config.text_ping:
            await self._wait_send_slot(limiter)
            await conn.send_text(PING_TEXT)
            core.metrics.requests_sent += 1
        if not self.ready:
            self.ready = True
            task_status.started()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._pump, conn, generation)
            nursery.start_soon(self._keepalive, conn)
            outcome = await self._send_loop(conn, generation, limiter)
            nursery.cancel_scope.cancel()
        return outcome

    # -- sending -------------------------------------------------------------------------------

    async def _wait_send_slot(self, limiter: SlidingWindowLimiter) -> None:
        await acquire_slot(limiter)

    def _drain(self, pending: list[TicketChange]) -> None:
        mailbox = self.ctx.mailbox
        while True:
            try:
                pending.append(mailbox.receive_nowait())
            except (trio.WouldBlock, trio.EndOfChannel):
                return

    async def _send_loop(
        self, conn: Connection, generation: int, limiter: SlidingWindowLimiter
    ) -> TicketOutcome:
        config = self.core.config
        mailbox = self.ctx.mailbox
        while True:
            try:
                pending = [await mailbox.receive()]
            except trio.EndOfChannel:
                return "close"  # the supervisor asked this ticket to stop
            if config.coalesce_window > 0:
                await trio.sleep(config.coalesce_window)
            self._drain(pending)
            # Changes arriving while the limiter holds the send are merged into it.
            await self._wait_send_slot(limiter)
            self._drain(pending)
            current = [change for change in pending if change.generation == generation]
            if not current:
                continue  # all for an older connection: the replay already carried them
            outcome = await self._send(conn, generation, coalesce_changes(current))
            if outcome is not None:
                return outcome

    async def _send(
        self, conn: Connection, generation: int, change: TicketChange
    ) -> TicketOutcome | None:
        """Send one complete set; returns an outcome when the connection must end."""
        core = self.core
        if change.hard_reset:
            return "reset" if change.keys else "close"
        keys = change.keys
        fresh: tuple[StreamKey, ...] = ()
        if not keys:
            try:
                code = choose_parking_code(self.sent_codes, core.catalog.current)
            except NoParkingCodeError:
                return "reset"  # nothing listed to park on: a new connection carries nothing
            requests = parking_request(code)
            core.metrics.parking_requests += 1
        else:
            requests = build_ticket_request(
                keys, streaming=self.streaming, snapshot_wanted=change.snapshot_wanted
            )
            fresh = fresh_keys(
                keys, streaming=self.streaming, snapshot_wanted=change.snapshot_wanted
            )
        text = build_request(self.request_ticket, requests, format=core.config.format)  # type: ignore[arg-type]
        await conn.send_text(text)
        core.metrics.requests_sent += 1
        self.streaming = frozenset(keys)
        self.sent_codes = tuple(dict.fromkeys(key.code for key in keys if key.code))
        ref = core.registry_ref
        if ref is not None:
            with contextlib.suppress(ActorError, trio.WouldBlock):
                ref.cast_nowait(TicketSent(self.name, generation, keys, fresh, trio.current_time()))
        return None

    # -- receiving -----------------------------------------------------------------------------

    async def _pump(self, conn: Connection, generation: int) -> None:
        core = self.core
        route = core.router.route
        runtime = self.runtime
        metrics = core.metrics
        received = metrics.received
        name = self.name
        now = trio.current_time
        message_types = _MESSAGE_TYPES
        while True:
            frame = await conn.receive()
            at = now()
            runtime.last_frame = at
            runtime.frames += 1
            decoded = decode_frame(frame)
            kind = type(decoded)
            if kind in message_types:
                route(name, generation, decoded)  # type: ignore[arg-type]
                data_type: str = decoded.type  # type: ignore[union-attr]
                received[data_type] = received.get(data_type, 0) + 1
            elif kind is list:
                for item in decoded:  # type: ignore[union-attr]
                    if type(item) in message_types:
                        route(name, generation, item)  # type: ignore[arg-type]
                        item_type: str = item.type  # type: ignore[union-attr]
                        received[item_type] = received.get(item_type, 0) + 1
            elif kind is ErrorReply:
                raise ServerError(decoded.name, decoded.message)  # type: ignore[union-attr]
            elif kind is StatusUp:
                received["status"] = received.get("status", 0) + 1
                continue
            else:
                continue
            if runtime.lost_at is not None:
                metrics.resubscribe_latency.observe(at - runtime.lost_at)
                runtime.lost_at = None

    async def _keepalive(self, conn: Connection) -> None:
        config = self.core.config
        runtime = self.runtime
        connected_at = trio.current_time()
        stall_after = config.stall_timeout if config.text_ping else None
        while True:
            await trio.sleep(config.ping_interval)
            with trio.move_on_after(config.ping_timeout) as scope:
                await conn.ping()
            if scope.cancelled_caught:
                raise ConnectionFailedError(
                    f"no pong within {config.ping_timeout:g} s: the connection is dead"
                )
            if stall_after is None:
                continue
            # With the text PING on, Upbit sends a status frame every 10 s, so silence means a
            # stall whatever the subscribed pairs are doing.
            last = max(connected_at, runtime.last_frame or -math.inf)
            silent = trio.current_time() - last
            if silent > stall_after:
                raise ConnectionFailedError(
                    f"stalled: no frame for {silent:.1f} s (stall_timeout {stall_after:g} s)"
                )


def _describe(exc: BaseException) -> str:
    if isinstance(exc, trio.Cancelled):
        return "cancelled"
    if isinstance(exc, BaseExceptionGroup):
        inner = [_describe(item) for item in exc.exceptions]
        return "; ".join(inner)
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
