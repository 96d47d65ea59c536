"""The realtime ticket actor: one WebSocket connection carrying one complete subscription set.

Theory of operation
-------------------
An incarnation reports ready to its supervisor at once, then runs connections one after
another (a hard reset closes and reopens without a restart). Whether the *connection* is back
is the ticket's own state (:class:`~engine.core.connection_state.ConnectionState`, kept in its
:class:`~engine.runtime.state.TicketRuntime`): waiting inside the supervisor's start would hold up
every other restart, stop and start of the tickets supervisor for as long as a connect or an
HTTP 418 block lasts. For each connection, with a fresh engine-wide generation number ``g``:

1. ``connecting``: wait for this ticket's turn (tickets that are down together reconnect in
   ticket order, see :meth:`~engine.runtime.ticket_runtime.ReconnectOrder.wait_turn`), for any
   429/418 block in force (``backing_off``) and for the shared connect limiter (5 connects/s per
   IP);
2. ``replaying``: connect; tell the router (``ticket_connected``: frames of ``g`` are routed
   from now on, every public route waits for its SNAPSHOT again, an open outage turns into a
   Gap); ask the registry for the replay (``TicketConnected``: the desired set in creation
   order) and send it as ONE request, then the text ``PING`` if configured. While some
   subscriptions are suspects (below) the replay comes in steps instead: the set without them,
   then one request per suspect adding its streams, each sent only once Upbit accepted the
   previous one (its SNAPSHOTs came, or ``ATTRIBUTION_WINDOW`` passed without an error frame);
3. ``ready`` (``parked`` while holding a parking request): run three tasks until something
   ends the connection:

   - the **pump**: receive, ``decode_frame`` once, ``Router.route`` (no actor hop per message);
     an error frame raises :class:`~engine.errors.ServerError` (Upbit closes after one); a
     frame that cannot be decoded, or of a type the engine does not model, is counted and
     skipped (:mod:`engine.observability.frame_report`): only transport failures, error frames and
     stalls end a connection;
   - the **keepalive**: a protocol ping every ``ping_interval`` bounded by ``ping_timeout``;
     with the text ``PING`` on, Upbit sends a status frame every 10 s, so total silence for
     ``stall_timeout`` means a stall even when every subscribed pair is quiet;
   - the **send loop**: takes the registry's changes, drops those of other generations, waits
     ``coalesce_window`` and the per-connection message limiter (5/s and 100/min), merges
     everything that arrived meanwhile into one change, and sends the complete set: codes
     already streaming go with ``is_only_realtime``, an empty set parks the ticket with a
     snapshot-only request for a parking code, a hard reset ends the connection.

How a connection ends decides what follows (``_judge``). On the way out the ticket always tells
the router (subscribers get ``Interrupted`` at once) and the registry (``TicketLost``: its
subscriptions go back to PENDING until the next replay), after any verdict below:

- **An error frame traced to a request.** Upbit rejects a bad request with an error frame.
  If one arrives within ``ATTRIBUTION_WINDOW`` seconds of a request that added streams Upbit
  has not yet accepted, those streams' subscriptions are the suspects (``RequestRejected``): one
  suspect fails with the server's error; several are tested one by one by the next connection
  (step 2), so only the culprit fails. The ticket reconnects at once if anything is left to
  carry (``WantsConnection``): no restart is counted, and each rejection fails a subscription or
  narrows the suspects, so this cannot loop. Rate-limit errors are never blamed on anyone.
- **Refused keys** (a private ticket's ``INVALID_AUTH``, or HTTP 401 on the upgrade) would be
  refused on every reconnect: ``AuthFailed`` fails its subscriptions and the ticket ends.
- **Anything else** (abort, close, an error frame no request explains, a stall, a failed
  connect) is a failure: the ticket enters ``backing_off`` and raises, and the tickets
  supervisor restarts it with backoff. Each ticket allows ``EngineConfig.max_restarts``
  failures in ``restart_window`` seconds; one more and it gives up (``failed``):
  ``TicketGaveUp`` fails its subscriptions with a cause saying how often it failed, the last
  failure and what to do, and the other tickets carry on.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any, Literal

import trio

from actors import ActorContext, ActorError
from engine._groups import leaf_exceptions
from engine.core.connection_state import ConnectionState
from engine.core.keys import StreamKey
from engine.core.ratelimit import SlidingWindowLimiter, message_limiter
from engine.core.registry import TicketChange, coalesce_changes
from engine.core.requests import build_ticket_request, fresh_keys, parking_request
from engine.core.stall import StallDetector
from engine.errors import ConnectionFailedError, NoParkingCodeError, RateLimitedError, ServerError
from engine.markets.parking import choose_parking_code
from engine.runtime.hosts import TicketHost
from engine.runtime.link import keepalive, wait_connect_slot, watch_stall
from engine.runtime.pacing import acquire_slot
from engine.runtime.registry_messages import (
    AuthFailed,
    ProbePassed,
    RequestRejected,
    SnapshotOverdue,
    TicketConnected,
    TicketGaveUp,
    TicketLost,
    TicketSent,
    WantsConnection,
)
from engine.runtime.ticket_causes import AUTH_ERROR, RATE_ERRORS, auth_failure, describe
from engine.runtime.ticket_pump import pump
from engine.transport.base import Connection
from engine.wire.protocol import PING_TEXT, build_request

__all__ = (
    "ATTRIBUTION_WINDOW",
    "HEALTHY_AFTER",
    "STALL_CHECK_INTERVAL",
    "TicketOutcome",
    "ticket_actor",
)

TicketOutcome = Literal["reset", "close"]
"""How a connection ended on purpose: reopen it (hard reset) or stay closed."""

#: Seconds after a request during which an error frame is blamed on what that request added.
#: Upbit answers a bad request at once (then closes the socket about 150 ms later), so one
#: second covers a slow round trip; it is also how long a probe waits for Upbit to object when
#: no SNAPSHOT can show that the request was accepted.
ATTRIBUTION_WINDOW = 1.0

#: Seconds between two judgements of a connection's silence (engine.core.stall).
STALL_CHECK_INTERVAL = 0.5

#: Seconds after the replay before a connection with data flowing counts as healthy.
HEALTHY_AFTER = 1.0

#: Seconds a ticket waits for the registry's answer to ``TicketConnected``.
_REGISTRY_TIMEOUT = 10.0


def ticket_actor(core: TicketHost, name: str) -> Any:
    """The start function of ticket ``name`` (``realtime-<i>`` or ``private-<i>``)."""

    async def ticket(
        ctx: ActorContext[TicketChange],
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        await _RealtimeTicket(core, name, ctx).run(task_status)

    return ticket


class _RealtimeTicket:
    def __init__(self, core: TicketHost, name: str, ctx: ActorContext[TicketChange]) -> None:
        self.core = core
        self.name = name
        self.ctx = ctx
        self.runtime = core.runtime(name)
        self.request_ticket = f"upbit-engine-{core.instance}-{name}"
        self.streaming: frozenset[StreamKey] = frozenset()
        self.sent_codes: tuple[str, ...] = ()
        #: Requests of this connection whose streams Upbit has not accepted yet: (sent at, the
        #: streams they added).
        self.recent: list[tuple[float, frozenset[StreamKey]]] = []
        #: Keys the last request asked a SNAPSHOT for.
        self.fresh: tuple[StreamKey, ...] = ()
        #: The subscriptions the probe in flight adds (their request awaits Upbit's verdict).
        self.probing: tuple[str, ...] | None = None
        #: The verdict ``_serve`` reached for the failure it re-raises (see ``_judge``).
        self.judged: tuple[TicketOutcome | None] | None = None
        self.crashing = False
        #: The last connection ended with a rejected request: ask before reconnecting.
        self.rejected = False
        #: Set (and replaced) on every request sent: wakes the SNAPSHOT deadline watch.
        self.sent = trio.Event()

    async def run(self, task_status: trio.TaskStatus[None]) -> None:
        task_status.started()
        try:
            while True:
                self.rejected = False
                outcome = await self._connect_and_serve()
                if outcome == "close" or self.ctx.stop_requested:
                    return
                if self.rejected and not await self._still_wanted():
                    return
        finally:
            state = self.runtime.state
            if not self.crashing and state is not ConnectionState.FAILED:
                self.runtime.enter(ConnectionState.CLOSED)

    async def _still_wanted(self) -> bool:
        """Whether the registry still wants this ticket connected (after it handled the
        rejection this ticket just reported)."""
        ref = self.core.registry_ref
        if ref is None:
            return True  # the next connection finds out, and fails if it must
        wanted: bool = await ref.call(
            lambda reply: WantsConnection(self.name, reply), timeout=_REGISTRY_TIMEOUT
        )
        return wanted

    # -- connecting ----------------------------------------------------------------------------

    async def _wait_connect_slot(self) -> None:
        core = self.core
        runtime = self.runtime

        async def take_turn() -> None:
            runtime.enter(ConnectionState.CONNECTING)
            await core.wait_turn(self.name)

        def blocked(seconds: float) -> None:
            runtime.enter(ConnectionState.BACKING_OFF)
            self._connect_failed(
                f"Upbit's rate limit (HTTP 429/418) holds connects back for another {seconds:.1f} s"
            )

        await wait_connect_slot(
            core.rate_backoff, core.connect_limiter, before_round=take_turn, on_blocked=blocked
        )

    async def _connect_and_serve(self) -> TicketOutcome:
        core = self.core
        while True:
            await self._wait_connect_slot()
            self.judged = None
            connected = False
            try:
                async with core.transport.connect(
                    core.url_for(self.name),
                    headers=core.headers_for(self.name),
                    connect_timeout=core.config.connect_timeout,
                ) as conn:
                    connected = True
                    return await self._serve(conn)
            except RateLimitedError as exc:
                if connected:
                    raise
                # Upbit pushed back on the upgrade: honour the block, never hammer.
                self.runtime.note_failure(describe(exc))
                core.rate_backoff.on_rejected(
                    exc.status, trio.current_time(), retry_after=exc.retry_after
                )
                self._connect_failed(describe(exc), exc)
            except BaseException as exc:
                # A failure inside _serve was judged there, before the loss was reported.
                judged = self._take_verdict()
                verdict = judged[0] if judged is not None else self._judge(exc, None)
                if not connected and isinstance(exc, Exception) and not self.ctx.stop_requested:
                    self._connect_failed(describe(exc))
                if verdict is None:
                    raise
                return verdict

    async def _serve(self, conn: Connection) -> TicketOutcome:
        core = self.core
        runtime = self.runtime
        generation = core.next_generation()
        if runtime.connects:
            core.metrics.reconnects += 1
        runtime.connected(generation)  # told before the subscribers' Gaps
        core.router.ticket_connected(self.name, generation, at=trio.current_time())
        core.metrics.connects += 1
        if runtime.lost_at is not None and core.carries_streams(self.name):
            core.metrics.gaps += 1  # an abnormal outage of a ticket carrying streams ends now
        self.streaming = frozenset()
        self.sent_codes = ()
        self.recent = []
        self.probing = None
        cause: str | None = "the connection ended unexpectedly"
        try:
            outcome = await self._session(conn, generation)
            cause = None
            if outcome == "close":
                runtime.enter(ConnectionState.CLOSED)  # before anyone hears of the loss
            return outcome
        except BaseException as exc:
            cause = describe(exc)
            # Before the loss: the registry must fail or suspect subscriptions before the loss
            # would make it relaunch the ticket for them.
            self.judged = (self._judge(exc, generation),)
            raise
        finally:
            self._promote(trio.current_time())
            self._report_lost(generation, cause)

    def _report_lost(self, generation: int, cause: str | None) -> None:
        core = self.core
        now = trio.current_time()
        core.router.ticket_lost(self.name, generation, cause or "closed by the engine", at=now)
        if cause is not None and self.runtime.lost_at is None:
            self.runtime.lost_at = now
        self._tell_registry(TicketLost(self.name, generation, cause, now))

    def _connect_failed(self, cause: str, refused: RateLimitedError | None = None) -> None:
        # The subscribers hear of it now (Interrupted), not after the next success, and
        # registry() shows the ticket as failing.
        now = trio.current_time()
        if self.runtime.lost_at is None:
            self.runtime.lost_at = now
        self.core.router.connect_failed(self.name, cause, at=now)
        self.runtime.connect_failed(cause, refused)

    def _tell_registry(self, message: Any) -> None:
        ref = self.core.registry_ref
        if ref is not None:
            with contextlib.suppress(ActorError, trio.WouldBlock):
                ref.cast_nowait(message)

    # -- judging how a connection ended -----------------------------------------------------------

    def _judge(self, exc: BaseException, generation: int | None) -> TicketOutcome | None:
        """What follows the failure ``exc``: ``"close"`` (handled here: the ticket ends
        normally), ``"reset"`` (a rejected request was reported: reconnect for what remains) or
        ``None`` (re-raise: the supervisor restarts the ticket, or it is being stopped)."""
        leaves = leaf_exceptions(exc) if isinstance(exc, BaseExceptionGroup) else [exc]
        if self.ctx.stop_requested or not all(isinstance(leaf, Exception) for leaf in leaves):
            return None  # stopped or cancelled: not the connection's failure
        runtime = self.runtime
        auth = auth_failure(self.name, leaves)
        if auth is not None:
            runtime.note_failure(auth)
            self._tell_registry(AuthFailed(self.name, auth))
            runtime.enter(ConnectionState.FAILED)
            return "close"  # normal exit: the transient ticket is not restarted
        if generation is not None and self._rejected(leaves, generation):
            self.rejected = True
            return "reset"  # reconnect for what remains, if anything does
        cause = describe(exc)
        runtime.note_failure(cause)
        if runtime.may_restart(cause):
            runtime.enter(ConnectionState.BACKING_OFF)
            self.crashing = True
            return None
        config = self.core.config
        count = runtime.window.count(trio.current_time())
        reason = (
            f"ticket {self.name} failed {count} times within {config.restart_window:g} s "
            f"(EngineConfig.max_restarts={config.max_restarts}), so the engine stopped "
            f"reconnecting it; last failure: {cause}. Check the network and Upbit's service "
            "status, then subscribe again (raise max_restarts or restart_window to keep "
            "retrying longer)"
        )
        # A new subscription placed on the ticket starts it afresh, with a fresh window.
        runtime.forget_restarts()
        self._tell_registry(TicketGaveUp(self.name, reason))
        runtime.enter(ConnectionState.FAILED)
        return "close"

    def _take_verdict(self) -> tuple[TicketOutcome | None] | None:
        """The verdict ``_serve`` reached on its way out, if the failure got that far."""
        judged, self.judged = self.judged, None
        return judged

    def _rejected(self, leaves: Sequence[BaseException], generation: int) -> bool:
        """Trace an error frame to the request that caused it; True if one did."""
        if not leaves or not all(isinstance(leaf, ServerError) for leaf in leaves):
            return False
        error = leaves[0]
        assert isinstance(error, ServerError)
        if error.name in RATE_ERRORS or error.name == AUTH_ERROR:
            return False
        self._promote(trio.current_time())
        keys = frozenset(key for _, added in self.recent for key in added)
        keys -= self.runtime.known_good
        if not keys and self.probing is None:
            return False  # nothing unproven was sent lately: a connection failure
        cause = (
            f"{error}. Upbit answered the request that added this subscription with this "
            "error; fix its data types, codes or options, then subscribe again"
        )
        runtime = self.runtime
        runtime.rejected_requests += 1
        runtime.note_failure(str(error))
        self.core.metrics.requests_rejected += 1
        self._tell_registry(RequestRejected(self.name, generation, keys, self.probing, cause))
        return True

    def _promote(self, now: float) -> None:
        """Requests older than the attribution window drew no error: Upbit accepted them."""
        keep: list[tuple[float, frozenset[StreamKey]]] = []
        for at, added in self.recent:
            if now - at > ATTRIBUTION_WINDOW:
                self.runtime.known_good.update(added)
            else:
                keep.append((at, added))
        self.recent = keep

    # -- one connection ------------------------------------------------------------------------

    async def _session(self, conn: Connection, generation: int) -> TicketOutcome:
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
        async with trio.open_nursery() as nursery:
            nursery.start_soon(pump, self.core, self.name, conn, generation)
            nursery.start_soon(self._keepalive, conn)
            nursery.start_soon(self._watch_stall, conn)
            nursery.start_soon(self._snapshot_deadlines)
            outcome = await self._replay(conn, generation, limiter, replay)
            if outcome is None:
                nursery.start_soon(self._watch_health, trio.current_time())
                outcome = await self._send_loop(conn, generation, limiter)
            nursery.cancel_scope.cancel()
        return outcome

    async def _watch_health(self, replayed_at: float) -> None:
        """Mark the incarnation healthy once the replay was accepted and data flows (a frame
        after the replay, or a parked connection): its loss then reconnects at once, with the
        backoff and the restart intensity starting afresh (see ``ActorContext.mark_healthy``)."""
        runtime = self.runtime
        while True:
            await trio.sleep(HEALTHY_AFTER)
            flowing = runtime.last_frame is not None and runtime.last_frame > replayed_at
            if flowing or runtime.state is ConnectionState.PARKED:
                self.ctx.mark_healthy()
                runtime.forget_restarts()
                return

    async def _replay(
        self,
        conn: Connection,
        generation: int,
        limiter: SlidingWindowLimiter,
        replay: list[TicketChange],
    ) -> TicketOutcome | None:
        """Send the replay (one request, or the steps that test suspects), then the text PING."""
        runtime = self.runtime
        # Forget what the ticket no longer carries: a stream added again is unproven again.
        runtime.known_good.intersection_update(replay[-1].keys)
        probing = len(replay) > 1 or bool(replay[0].probe)
        steps = replay if probing else [coalesce_changes(replay)]
        for index, step in enumerate(steps):
            await self._wait_send_slot(limiter)
            self.probing = step.probe or None
            outcome = await self._send(conn, generation, step)
            if outcome is not None:
                return outcome
            if index == 0 and self.core.config.text_ping:
                await self._wait_send_slot(limiter)
                await conn.send_text(PING_TEXT)
                self.core.metrics.requests_sent += 1
            if probing:
                await self._await_acceptance(generation, step)
        self._serving()
        return None

    async def _await_acceptance(self, generation: int, step: TicketChange) -> None:
        """Wait until Upbit accepted ``step``: every SNAPSHOT it asked for arrived, or the
        attribution window passed without an error frame (which would end the connection)."""
        runtime = self.runtime
        unproven = set(step.keys) - runtime.known_good
        # Only unproven streams can draw an error: a step of proven ones needs no wait.
        waiting = {key for key in self.fresh if not key.is_private} & unproven
        if waiting:
            runtime.probe_done = trio.Event()
            runtime.probe_waiting = waiting
            try:
                with trio.move_on_after(ATTRIBUTION_WINDOW):
                    await runtime.probe_done.wait()
            finally:
                runtime.probe_waiting = None
        elif unproven:
            await trio.sleep(ATTRIBUTION_WINDOW)  # no SNAPSHOT can prove them: give Upbit time
        runtime.known_good.update(step.keys)
        self.recent = []
        self.probing = None
        if step.probe:
            self._tell_registry(ProbePassed(self.name, generation, step.probe))

    def _serving(self) -> None:
        parked = not self.streaming
        self.runtime.enter(ConnectionState.PARKED if parked else ConnectionState.READY)

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
            self._serving()

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
        now = trio.current_time()
        self._promote(now)
        await conn.send_text(text)
        core.metrics.requests_sent += 1
        core.router.note_sent(self.name, at=now, keys=frozenset(keys))
        self.sent.set()
        self.sent = trio.Event()
        added = frozenset(keys) - self.streaming - self.runtime.known_good
        if added:
            self.recent.append((now, added))
        self.fresh = fresh
        self.streaming = frozenset(keys)
        self.sent_codes = tuple(dict.fromkeys(key.code for key in keys if key.code))
        self._tell_registry(
            TicketSent(self.name, generation, keys, fresh, trio.current_time(), change.serial)
        )
        return None

    async def _snapshot_deadlines(self) -> None:
        """No SNAPSHOT wait outlives ``snapshot_timeout``: when one runs out, the router ends it
        (the subscriber gets ``SnapshotMissing``, then REALTIME) and the registry is told."""
        router = self.core.router
        timeout = self.core.config.snapshot_timeout
        while True:
            sent = self.sent
            deadline = router.next_wait_deadline(self.name, timeout)
            if deadline is None:
                await sent.wait()
                continue
            await trio.sleep_until(deadline)
            now = trio.current_time()
            ended = router.expire_waits(self.name, now=now, timeout=timeout)
            # Counted here, with the event: a reader that saw SnapshotMissing sees the count.
            self.core.metrics.snapshots_missing += len(ended)
            for ticket, key, sub_id in ended:
                self._tell_registry(SnapshotOverdue(ticket, key, sub_id, now))

    # -- receiving -----------------------------------------------------------------------------

    async def _keepalive(self, conn: Connection) -> None:
        config = self.core.config
        await keepalive(
            conn,
            interval=config.ping_interval,
            pong_within=config.ping_timeout,
            on_round=self._promote,
        )

    async def _watch_stall(self, conn: Connection) -> None:
        metrics, config, runtime = self.core.metrics, self.core.config, self.runtime
        if runtime.stall is None:
            runtime.stall = StallDetector(
                # Upbit's status frame comes every 10 s only after a text PING.
                heartbeat_timeout=config.stall_timeout if config.text_ping else None,
                probe_floor=config.stall_probe_floor,
                probe_intervals=config.stall_probe_intervals,
                probing=config.stall_probe,
            )
        try:
            await watch_stall(
                conn,
                runtime.stall,
                runtime,
                check_interval=STALL_CHECK_INTERVAL,
                pong_within=config.stall_probe_timeout,
                on_probe=lambda: self.core.stall_probed(self.name),
            )
        except ConnectionFailedError:
            metrics.stalls += 1
            raise
