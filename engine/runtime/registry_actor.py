"""The registry actor: the single writer of subscription state.

Theory of operation
-------------------
Every subscription change goes through this actor's mailbox, one at a time, so the sans-IO
:class:`~engine.core.registry.Registry` never sees two writers. For each command it

1. applies it to the registry, which returns the :class:`~engine.core.registry.TicketChange`
   of every connected ticket whose complete set changed;
2. publishes the routing changes to the router (incrementally, ``engine.routing.publish``)
   **before** anything is sent, so a SNAPSHOT a new subscriber asked for finds its wait armed,
   and an unsubscribed subscriber receives nothing more from that instant;
3. casts each change to its ticket (the ticket coalesces and rate-limits the sends);
4. asks its launcher task to start tickets that should carry streams but are not running.

Tickets report back with their connection generation (``TicketConnected`` is a call returning
the replay; ``TicketSent`` and ``TicketLost`` are casts); the registry ignores stale generations.
The launcher is a separate task so that starting and stopping tickets never holds up commands.

A ticket that gives up tells the registry before it reports the loss: ``TicketGaveUp`` (its
restart intensity was exceeded) and ``AuthFailed`` (Upbit refused the keys) fail every
subscription on it; ``RequestRejected`` (an error frame traced to a request) fails the one
subscription that request added, or makes the several it added *suspects* that the next
connection tests one request at a time (``ProbePassed`` clears one); the ticket then asks
(``WantsConnection``) whether anything is left to carry before it reconnects.

A once-a-second housekeeping task feeds the registry what the hot path does not report one by
one: the last frame time per ticket and which subscriptions received messages.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Callable, Sequence
from typing import Any, Literal

import trio

from actors import (
    ActorContext,
    ActorDeadError,
    ActorError,
    ActorRef,
    ChildNotRunningError,
    ChildSpec,
    DuplicateChildError,
    NodeState,
    Reply,
    Restart,
)
from engine.core.keys import StreamKey
from engine.core.registry import Subscription, SubscriptionKind, TicketChange
from engine.errors import InvalidSubscriptionError, SubscriptionFailedError
from engine.observability.operator_events import (
    ConnectionLost,
    SubscriptionFailed,
    TicketFailed,
)
from engine.routing.publish import publish_routes
from engine.routing.router import SubscriberBuffer
from engine.runtime.hosts import RegistryHost
from engine.runtime.registry_messages import (
    USER_CALLS,
    AuthFailed,
    BufferFailed,
    Cleanup,
    CleanupOutcome,
    ConsumerClosed,
    ConsumerOpened,
    MarkActive,
    Modify,
    NoteFrames,
    Optimize,
    ProbePassed,
    RegistryCommand,
    Relaunch,
    RequestRejected,
    SnapshotOverdue,
    SnapshotSeen,
    Subscribe,
    TicketConnected,
    TicketGaveUp,
    TicketLost,
    TicketSent,
    Unsubscribe,
    WantsConnection,
)

#: Makes the actor function of the ticket of this name (``engine.runtime.ticket.ticket_actor``
#: bound to the shared state), handed in by the tree's wiring so this module does not import the
#: tickets.
TicketFactory = Callable[[str], Any]

_log = logging.getLogger("engine.registry")

__all__ = ("HOUSEKEEPING_INTERVAL", "TicketFactory", "registry_actor")

#: Seconds between housekeeping rounds (activity marks, last-frame times).
HOUSEKEEPING_INTERVAL = 1.0


_Launch = tuple[Literal["start", "stop"], str]


def registry_actor(core: RegistryHost, ticket_factory: TicketFactory) -> Any:
    """The registry actor's start function, bound to ``core``; ``ticket_factory`` makes the
    actor of each ticket its launcher starts."""

    async def registry(
        ctx: ActorContext[RegistryCommand],
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        launch_send, launch_receive = trio.open_memory_channel[_Launch](math.inf)
        state = _RegistryState(core, ctx.ref, launch_send)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_launcher, core, ticket_factory, launch_receive)
            nursery.start_soon(_housekeeping, core, ctx.ref)
            state.recover()
            core.registry_ref = ctx.ref
            task_status.started()
            async for command in ctx.mailbox:
                state.handle(command)
                core.note_change()
            nursery.cancel_scope.cancel()

    return registry


class _RegistryState:
    """The actor's command handlers (synchronous: the registry is sans-IO)."""

    def __init__(
        self,
        core: RegistryHost,
        ref: ActorRef[RegistryCommand],
        launch: trio.MemorySendChannel[_Launch],
    ) -> None:
        self.core = core
        self.ref = ref
        self.launch = launch
        self.ticket_refs: dict[str, tuple[int, ActorRef[TicketChange]]] = {}
        self.delivered: dict[str, int] = {}

    # -- start-up ------------------------------------------------------------------------------

    def recover(self) -> None:
        """Connections a previous incarnation knew of are gone (their tickets restart with
        this actor): declare them lost, then start what should run."""
        core = self.core
        now = trio.current_time()
        for name in core.registry.tickets():
            status = core.registry.ticket_status(name)
            if status.generation is not None:
                cause = "the registry restarted"
                core.registry.ticket_lost(name, status.generation, cause, now=now)
                core.router.ticket_lost(name, status.generation, cause, at=now)
        self.publish()
        self.launch_needed()

    # -- dispatch -----------------------------------------------------------------------------

    def handle(self, command: RegistryCommand) -> None:
        if isinstance(command, USER_CALLS) and command.reply.abandoned:
            # The caller was cancelled (or timed out) before this command's turn came: it was
            # told the call did not happen, so it must not. Nothing is sent, nothing is kept.
            _log.debug("skipped %s: its caller stopped waiting", type(command).__name__)
            return
        match command:
            case Subscribe():
                self.on_subscribe(command)
            case Modify(sub_id, codes, reply):
                self.answer(reply, lambda: self.core.registry.modify(sub_id, codes, now=_now()))
            case Unsubscribe(sub_id, mode, reply):
                self.on_unsubscribe(sub_id, mode, reply)
            case Optimize(reply):
                reports, changes = self.core.registry.optimize(now=_now())
                self.apply(changes)
                reply.send((reports, self.close_empty_tickets()))
            case Cleanup(inactive_after, reading, reply):
                self.on_cleanup(inactive_after, reading, reply)
            case TicketConnected():
                self.on_connected(command)
            case TicketSent(ticket, generation, keys, snapshot_keys, at, through):
                self.core.registry.ticket_sent(
                    ticket, generation, keys, snapshot_keys=snapshot_keys, through=through, now=at
                )
            case TicketLost(ticket, generation, cause, at):
                self.on_lost(ticket, generation, cause, at)
            case AuthFailed(ticket, cause) | TicketGaveUp(ticket, cause):
                self.on_ticket_failed(ticket, cause)
            case RequestRejected():
                self.on_rejected(command)
            case ProbePassed(ticket, _, sub_ids):
                self.core.registry.probe_passed(ticket, sub_ids)
            case WantsConnection(ticket, reply):
                reply.send(bool(self.core.registry.ticket_status(ticket).desired))
            case Relaunch():
                self.launch_needed()
            case SnapshotSeen(ticket, key, sub_id, at):
                self.on_snapshot(ticket, key, sub_id, at)
            case SnapshotOverdue(ticket, key, sub_id, at):
                self.on_snapshot_overdue(ticket, key, sub_id, at)
            case BufferFailed(sub_id, cause):
                self.on_buffer_failed(sub_id, cause)
            case ConsumerOpened(sub_id):
                with contextlib.suppress(InvalidSubscriptionError):
                    self.core.registry.consumer_opened(sub_id, now=_now())
            case ConsumerClosed(sub_id):
                with contextlib.suppress(InvalidSubscriptionError):
                    self.core.registry.consumer_closed(sub_id, now=_now())
            case MarkActive(sub_ids, at):
                for sub_id in sub_ids:
                    self._mark_active(sub_id, at)
            case NoteFrames(times):
                for ticket, at in times:
                    self.core.registry.note_message(ticket, now=at)

    def answer(
        self,
        reply: Reply[Subscription],
        operation: Any,
    ) -> None:
        try:
            sub, changes = operation()
        except InvalidSubscriptionError as exc:
            reply.fail(exc)
            return
        self.apply(changes)
        reply.send(sub)

    # -- commands -----------------------------------------------------------------------------

    def on_subscribe(self, command: Subscribe) -> None:
        core = self.core
        now = _now()
        try:
            sub, changes = core.registry.subscribe(
                command.data_types,
                command.codes,
                units=command.units,
                level=command.level,
                now=now,
            )
        except InvalidSubscriptionError as exc:
            command.reply.fail(exc)
            return
        core.buffers[sub.id] = SubscriberBuffer(
            sub.id,
            max_size=core.config.subscriber_buffer,
            policies=core.config.overflow,
            on_failed=self._buffer_failed_callback(sub.id),
            backfill=core.config.backfill if command.backfill is None else command.backfill,
            on_note=core.journal.note_for(sub.id),
        )
        if sub.kind is not SubscriptionKind.PRIVATE:
            core.first_message_due[sub.id] = now
        self.apply(changes)
        command.reply.send(sub)

    def _buffer_failed_callback(self, sub_id: str) -> Any:
        ref = self.ref

        def failed(error: SubscriptionFailedError) -> None:
            # The registry is gone (engine stopping): nobody is left to tell.
            with contextlib.suppress(ActorDeadError, trio.WouldBlock):
                ref.cast_nowait(BufferFailed(sub_id, error.cause))

        return failed

    def on_unsubscribe(
        self, sub_id: str, mode: Literal["soft", "hard"], reply: Reply[Subscription]
    ) -> None:
        core = self.core
        try:
            sub, changes = core.registry.unsubscribe(sub_id, mode=mode, now=_now())
        except InvalidSubscriptionError as exc:
            reply.fail(exc)
            return
        self.apply(changes)
        self._close_buffer(sub_id, "unsubscribed")
        reply.send(sub)

    def on_buffer_failed(self, sub_id: str, cause: str) -> None:
        core = self.core
        try:
            sub = core.registry.subscription(sub_id)
        except InvalidSubscriptionError:
            return
        if not sub.is_live:
            return
        core.metrics.subscriptions_broken += 1
        core.journal.publish(SubscriptionFailed(at=_now(), subscription_id=sub_id, cause=cause))
        _, changes = core.registry.fail(sub_id, cause, now=_now())
        self.apply(changes)
        # The buffer stays: its consumer reads what is buffered, then the error.
        core.first_message_due.pop(sub_id, None)

    def on_cleanup(
        self, inactive_after: float, reading: frozenset[str], reply: Reply[CleanupOutcome]
    ) -> None:
        core = self.core
        now = _now()
        released: list[str] = []
        for sub_id in core.registry.inactive(now, inactive_after, reading=reading):
            _, changes = core.registry.unsubscribe(sub_id, mode="soft", now=now)
            self.apply(changes)
            self._close_buffer(sub_id, "released by cleanup_inactive")
            released.append(sub_id)
        reply.send(CleanupOutcome(tuple(released), self.close_empty_tickets()))

    def close_empty_tickets(self) -> tuple[str, ...]:
        """Stop the connected tickets that carry nothing (parked or idle)."""
        closing = self.core.registry.closable_tickets()
        for name in closing:
            self.core.closing.setdefault(name, trio.Event())
            self.launch.send_nowait(("stop", name))
        return closing

    def on_connected(self, command: TicketConnected) -> None:
        core = self.core
        now = _now()
        replay = core.registry.ticket_connected(command.ticket, command.generation, now=now)
        # Only the generation the registry accepted owns the ticket's ref: a late report from an
        # older connection must not divert the live connection's changes to a dead mailbox.
        if core.registry.ticket_status(command.ticket).generation == command.generation:
            self.ticket_refs[command.ticket] = (command.generation, command.ref)
        # The replay asks a SNAPSHOT of every stream: every route on the ticket waits again
        # (the router re-armed them when the ticket told it of the connection).
        command.reply.send(replay)

    def on_lost(self, ticket: str, generation: int, cause: str | None, at: float) -> None:
        core = self.core
        known = self.ticket_refs.get(ticket)
        if known is not None and known[0] == generation:
            del self.ticket_refs[ticket]
        if core.registry.ticket_lost(ticket, generation, cause, now=at):
            closed = core.closing.pop(ticket, None)
            if closed is not None:
                closed.set()
            if cause is not None:
                core.metrics.connection_losses += 1
                core.journal.publish(
                    ConnectionLost(at=at, ticket=ticket, generation=generation, cause=cause)
                )
            self.launch_needed()

    def on_ticket_failed(self, ticket: str, cause: str) -> None:
        """Fail every live subscription placed on ``ticket``; its consumers read what is
        buffered, then ``SubscriptionFailedError(cause)``. The ticket is left carrying nothing,
        so its loss relaunches nothing."""
        core = self.core
        core.metrics.tickets_failed += 1
        failed, changes = core.registry.ticket_failed(ticket, cause, now=_now())
        core.journal.publish(
            TicketFailed(at=_now(), ticket=ticket, subscriptions=len(failed), cause=cause)
        )
        self._failed(failed, cause)
        self.apply(changes)

    def on_rejected(self, command: RequestRejected) -> None:
        """An error frame traced to a request: fail its one subscription, or suspect several."""
        core = self.core
        failed, changes = core.registry.reject(
            command.ticket,
            command.keys,
            command.cause,
            subscriptions=command.subscriptions,
            now=_now(),
        )
        self._failed(failed, command.cause)
        self.apply(changes)

    def _failed(self, sub_ids: Sequence[str], cause: str) -> None:
        core = self.core
        for sub_id in sub_ids:
            core.metrics.subscriptions_broken += 1
            core.journal.publish(SubscriptionFailed(at=_now(), subscription_id=sub_id, cause=cause))
            buffer = core.buffers.get(sub_id)
            if buffer is not None:
                buffer.fail(cause)
            core.first_message_due.pop(sub_id, None)

    def on_snapshot(self, ticket: str, key: StreamKey, sub_id: str, at: float) -> None:
        core = self.core
        core.registry.note_snapshot(ticket, key, now=at)
        core.awaiting.discard((ticket, key, sub_id))
        self._mark_active(sub_id, at)
        requested = core.first_message_due.pop(sub_id, None)
        if requested is not None:
            core.metrics.connect_latency.observe(at - requested)

    def on_snapshot_overdue(self, ticket: str, key: StreamKey, sub_id: str, at: float) -> None:
        # The stream is live without its SNAPSHOT. The registry's own record of the missing
        # SNAPSHOT stays (detect_conflicts reports MISSING_SNAPSHOT); the route asks no more.
        core = self.core
        core.awaiting.discard((ticket, key, sub_id))
        core.first_message_due.pop(sub_id, None)
        self._mark_active(sub_id, at)

    def _mark_active(self, sub_id: str, at: float) -> None:
        try:
            self.core.registry.mark_active(sub_id, now=max(at, _now()))
        except InvalidSubscriptionError:
            return

    # -- effects ------------------------------------------------------------------------------

    def apply(self, changes: Sequence[TicketChange]) -> None:
        """Publish the new routing table, then hand each change to its ticket, then start
        whatever should run."""
        self.publish()
        for change in changes:
            known = self.ticket_refs.get(change.ticket)
            if known is None or known[0] != change.generation:
                continue  # that connection is gone: its successor replays the latest set
            try:
                known[1].cast_nowait(change)
            except (ActorError, trio.WouldBlock):
                continue  # the ticket is ending; its replacement replays
        self.launch_needed()

    def publish(self) -> None:
        # Incremental: costs what the change touched, not every live route.
        publish_routes(self.core)
        # A subscriber placed on a ticket that is down hears of the outage at once.
        self.core.router.join_outages(at=_now())

    def launch_needed(self) -> None:
        for name in self.core.registry.tickets_needing_connection():
            self.launch.send_nowait(("start", name))

    def _close_buffer(self, sub_id: str, reason: str) -> None:
        core = self.core
        buffer = core.buffers.pop(sub_id, None)
        if buffer is not None:
            buffer.close(reason)
        core.first_message_due.pop(sub_id, None)
        self.delivered.pop(sub_id, None)


def _now() -> float:
    return trio.current_time()


async def _launcher(
    core: RegistryHost,
    ticket_factory: TicketFactory,
    requests: trio.MemoryReceiveChannel[_Launch],
) -> None:
    """Start and stop ticket children, one at a time, in request order.

    A ticket reports ready at once and connects on its own, so a start only fails when the
    tickets supervisor is not running (it restarts, or the engine stops); it is retried with the
    configured backoff while the ticket is still needed. Restarts after a crash are the tickets
    supervisor's business.
    """
    config = core.config
    failures = 0
    async for action, name in requests:
        while True:
            if action == "start" and name not in core.registry.tickets_needing_connection():
                break
            try:
                tickets = core.tickets_supervisor()
                if action == "stop":
                    if _child_state(core, name) is not None:
                        await tickets.terminate_child(name)
                    break
                state = _child_state(core, name)
                if state is NodeState.STOPPED:
                    await tickets.terminate_child(name)
                elif state is not None:
                    break  # running, starting or restarting: the supervisor has it
                await tickets.start_child(
                    ChildSpec(
                        name,
                        ticket_factory(name),
                        restart=Restart.TRANSIENT,
                        shutdown=config.shutdown_grace,
                        mailbox_size=math.inf,
                    )
                )
                failures = 0
                break
            except DuplicateChildError:
                break
            except ActorError as exc:
                # The tickets supervisor is restarting or stopping (ChildNotRunningError at
                # engine shutdown): retried with backoff; programming errors are not caught.
                level = logging.DEBUG if isinstance(exc, ChildNotRunningError) else logging.WARNING
                _log.log(level, "ticket %s could not be started: %r", name, exc)
                failures += 1
                await trio.sleep(config.backoff_policy().delay(failures - 1, core.rng))


def _child_state(core: RegistryHost, name: str) -> NodeState | None:
    tickets = core.tickets_supervisor()
    for node in tickets.tree().children:
        if node.name == name:
            return node.state
    return None


async def _housekeeping(core: RegistryHost, ref: ActorRef[RegistryCommand]) -> None:
    """Once a second: last frame time per ticket, and subscriptions that received messages."""
    seen_frames: dict[str, float] = {}
    routed: dict[str, int] = {}
    while True:
        await trio.sleep(HOUSEKEEPING_INTERVAL)
        now = trio.current_time()
        times = tuple(
            (name, runtime.last_frame)
            for name, runtime in core.tickets.items()
            if runtime.last_frame is not None and seen_frames.get(name) != runtime.last_frame
        )
        for name, at in times:
            seen_frames[name] = at
        active: list[str] = []
        current: dict[str, int] = {}
        for sub_id, stats in core.router.statistics().subscribers.items():
            total = sum(stats.routed.values())
            current[sub_id] = total
            if total != routed.get(sub_id, 0):
                active.append(sub_id)
        routed = current
        try:
            if times:
                ref.cast_nowait(NoteFrames(times))
            if active:
                ref.cast_nowait(MarkActive(tuple(active), now))
        except ActorError:
            return
