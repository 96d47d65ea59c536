"""The snapshot coordinator actor: the single owner of the asks, the merge queue and the batches.

Callers' asks, tickets' deliveries and ticket state changes all arrive in its mailbox; it keeps
the sans-IO :class:`~engine.core.snapshot_book.SnapshotBook` and answers each caller's
:class:`~actors.Reply` exactly once: with its results, a
:class:`~engine.errors.SnapshotTimeoutError` at its deadline, or a
:class:`~engine.errors.ServerError` when Upbit rejected its batch. If the coordinator dies,
the runtime fails every reply still pending with ``ActorDeadError`` at once, so no caller hangs.
"""

from __future__ import annotations

import math

import trio

from actors import ActorContext, ActorDeadError, ActorFunction, ActorRef, Reply
from engine.core.snapshot_book import SnapshotBook, result_key
from engine.errors import ServerError, SnapshotTimeoutError
from engine.runtime.snapshot_messages import (
    Abandoned,
    Ask,
    CoordinatorMessage,
    Delivered,
    Disconnected,
    Hub,
    Rejected,
    Results,
    Settled,
    SnapshotTicketConnected,
    TakeBatch,
    TicketDown,
    TicketUp,
    Work,
)
from engine.wire.messages import Message

__all__ = ("coordinator_actor",)

_WORK = Work()


class _Coordinator:
    def __init__(self, hub: Hub, tickets: int) -> None:
        self._hub = hub
        self.book = SnapshotBook(tickets)
        self._replies: dict[int, Reply[Results]] = {}
        self._starts: dict[int, float] = {}
        self._tickets: dict[int, tuple[int, ActorRef[Work]]] = {}
        self._wakeup = trio.Event()

    # -- the mailbox -----------------------------------------------------------------------------

    def handle(self, message: CoordinatorMessage) -> None:
        match message:
            case Ask():
                self._ask(message)
            case Abandoned():
                self._purge_abandoned()
            case Delivered(messages=messages):
                # Routed whatever incarnation received them: a SNAPSHOT is a SNAPSHOT.
                self._deliver(messages)
            case TicketUp(ticket, generation, ref):
                self._tickets[ticket] = (generation, ref)
                self.book.ticket_up(ticket)
            case TakeBatch(ticket, generation, batch_reply):
                self._purge_abandoned()
                current = self._current(ticket, generation)
                batch_reply.send(self.book.take(ticket) if current else None)
            case _ if not self._current(message.ticket, message.generation):
                pass  # from an incarnation that has been replaced
            case TicketDown(ticket):
                del self._tickets[ticket]
                self.book.ticket_down(ticket)
            case SnapshotTicketConnected(ticket):
                self.book.set_connected(ticket, True)
            case Settled(ticket, _, batch_id):
                self.book.settle(ticket, batch_id, lost=False)
            case Disconnected(ticket, _, batch_id, error):
                if error is not None:
                    self._hub.note_error(error)
                self.book.set_connected(ticket, False)
                if batch_id is None:
                    self.book.idle(ticket)
                else:
                    self.book.settle(ticket, batch_id, lost=True)
            case Rejected(ticket, _, batch_id, error):
                self._hub.note_error(error)
                for ask_id in self.book.fail(ticket, batch_id):
                    self._starts.pop(ask_id, None)
                    self._hub.counters.server_errors += 1
                    # One exception object per caller: each raises it from its own task.
                    failed = ServerError(error.name, error.server_message)
                    self._replies.pop(ask_id).fail(failed)
            case _:
                raise TypeError(f"the snapshot coordinator got an unknown message: {message!r}")
        self._dispatch()

    def _current(self, ticket: int, generation: int) -> bool:
        entry = self._tickets.get(ticket)
        return entry is not None and entry[0] == generation

    def _ask(self, ask: Ask) -> None:
        if ask.reply.abandoned:
            return
        ask_id = ask.ask_id
        self._replies[ask_id] = ask.reply
        self._starts[ask_id] = ask.deadline - ask.timeout
        self.book.add(ask_id, ask.keys, deadline=ask.deadline, timeout=ask.timeout)
        self._wakeup.set()

    def _deliver(self, messages: tuple[Message, ...]) -> None:
        counters = self._hub.counters
        for message in messages:
            counters.snapshots += 1
            for resolved in self.book.deliver(message):
                self._starts.pop(resolved.ask_id, None)
                counters.completed += 1
                self._replies.pop(resolved.ask_id).send(dict(resolved.results))

    def _purge_abandoned(self) -> None:
        # A caller cancelled from outside leaves its reply abandoned: stop asking for its keys.
        for ask_id, reply in list(self._replies.items()):
            if reply.abandoned:
                del self._replies[ask_id]
                self._starts.pop(ask_id, None)
                self.book.cancel(ask_id)

    def _dispatch(self) -> None:
        while (ticket := self.book.wake()) is not None:
            _, ref = self._tickets[ticket]
            try:
                ref.cast_nowait(_WORK)
            except trio.WouldBlock:
                pass  # a wake-up is already waiting in its mailbox
            except ActorDeadError:
                del self._tickets[ticket]
                self.book.ticket_down(ticket)

    # -- deadlines -------------------------------------------------------------------------------

    async def expire_loop(self) -> None:
        while True:
            deadline = self.book.next_deadline()
            self._wakeup = trio.Event()
            with trio.move_on_at(math.inf if deadline is None else deadline):
                await self._wakeup.wait()
            self._expire(trio.current_time())

    def _expire(self, now: float) -> None:
        # Streams still queued were never sent: if a ticket is holding them back for its
        # message budget, that, not the codes, is why they timed out.
        queued = {result_key(key) for key in self.book.queued}
        for expired in self.book.expire(now):
            start = self._starts.pop(expired.ask_id)
            reply = self._replies.pop(expired.ask_id)
            self._hub.counters.timeouts += 1
            reason: str | None = None
            free_at = self._hub.budget_free_at()
            if free_at is not None and queued.intersection(expired.missing):
                reason = _budget_reason(free_at, now)
            # A timeout after connection trouble says so: the codes may well be fine.
            failure = self._hub.error_since(start)
            error = SnapshotTimeoutError(
                expired.missing, expired.timeout, reason=reason, connection_error=failure
            )
            error.__cause__ = failure
            reply.fail(error)


def _budget_reason(free_at: float, now: float) -> str:
    wait = max(0.0, free_at - now)
    return (
        "they were never sent: the snapshot connection's message budget is spent (Upbit allows "
        "5 requests/s and 100/min per connection) and frees in "
        f"{wait:.1f} s (at Trio time {free_at:.1f}); merge calls with "
        "request_snapshots_batch, space them out, raise snapshot_pool_size or pass a longer "
        "timeout"
    )


def coordinator_actor(hub: Hub, tickets: int) -> ActorFunction[CoordinatorMessage]:
    """The coordinator of a pool of ``tickets`` snapshot tickets, publishing itself on ``hub``."""

    async def coordinator(
        ctx: ActorContext[CoordinatorMessage],
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        state = _Coordinator(hub, tickets)
        hub.attach(ctx.ref, state.book)
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(state.expire_loop)
                task_status.started()
                async for message in ctx.mailbox:
                    state.handle(message)
                nursery.cancel_scope.cancel()
        finally:
            hub.detach(ctx.ref, stopped=ctx.stop_requested)

    return coordinator
