"""Mailboxes, references and replies: how messages reach an actor.

Theory of operation
-------------------
Each *incarnation* of an actor owns one bounded :class:`Mailbox`, a Trio memory channel. The
actor reads it (``async for message in ctx.mailbox``); everyone else holds an :class:`ActorRef`,
which can only send.

* :meth:`ActorRef.cast` is fire-and-forget: one ``send`` on the channel, so a full mailbox pushes
  back on the sender exactly as a channel would.
* :meth:`ActorRef.call` is a request. The caller builds the message around a fresh
  :class:`Reply`, a one-slot reply channel, sends it, and waits for the answer within a timeout.
  Answering (:meth:`Reply.send` / :meth:`Reply.fail`) never blocks and never fails because the
  caller left; a second answer is a bug and raises.
* The runtime closes the mailbox when the incarnation ends. Senders blocked on a full mailbox,
  later senders and every caller still waiting for a reply then get
  :class:`~actors.ActorDeadError` at once: nobody waits on a dead actor. Messages left in the
  buffer are dropped, as they would be in Erlang.
* A *stop request* closes only the sending side: the actor drains what is already buffered, its
  ``async for`` ends, and new sends fail with :class:`~actors.ActorDeadError`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Generic, TypeVar, cast, final

import attrs
import trio

from actors._util import NoPublicConstructor, format_path
from actors.errors import ActorDeadError, CallTimeoutError, ReplyAlreadySentError

__all__ = ("ActorRef", "Mailbox", "MailboxStatistics", "Reply")

M = TypeVar("M")
M_contra = TypeVar("M_contra", contravariant=True)
R = TypeVar("R")

_WAITING, _ANSWERED, _ABANDONED = 0, 1, 2
# The runtime answered for an actor that died. The request may still be answered later by an
# actor it was forwarded to; that late answer is dropped, not an error.
_EXPIRED = 3


@attrs.frozen
class MailboxStatistics:
    """A snapshot of one mailbox, as returned by :meth:`ActorRef.statistics`."""

    capacity: float
    """Messages the buffer holds before senders wait (``math.inf`` for unbounded)."""

    buffered: int
    """Messages waiting to be read now."""

    peak_buffered: int
    """The most messages ever buffered at once: size mailboxes from real runs with this."""

    senders_waiting: int
    """Tasks blocked in :meth:`ActorRef.cast` or :meth:`ActorRef.call` on a full mailbox."""

    calls_pending: int
    """Calls sent to this incarnation that have not been answered yet."""

    accepting: bool
    """False once a stop was requested or the incarnation ended."""

    alive: bool
    """False once the incarnation ended."""


@final
class Reply(Generic[R], metaclass=NoPublicConstructor):
    """The one-slot reply channel of a :meth:`ActorRef.call`.

    Put it in the request message; the actor answers exactly once with :meth:`send` or
    :meth:`fail`. Answering never blocks: if the caller already gave up (timed out or was
    cancelled), the answer is dropped silently.
    """

    __slots__ = ("_error", "_pending", "_state", "_value", "_waiter")

    def __init__(self, pending: set[Reply[Any]]) -> None:
        # The caller's task while it waits for the answer (see _wait).
        self._waiter: trio.lowlevel.Task | None = None
        self._state = _WAITING
        self._value: R | None = None
        self._error: BaseException | None = None
        self._pending = pending

    def send(self, value: R) -> None:
        """Answer the request with ``value``; the caller's :meth:`ActorRef.call` returns it."""
        self._answer(value, None)

    def fail(self, error: Exception) -> None:
        """Answer the request with an error; the caller's :meth:`ActorRef.call` raises it.

        Use this for errors that belong to the protocol (a rejected request); crash the actor
        only for real failures.
        """
        if not isinstance(error, Exception):
            raise TypeError(f"fail() takes an Exception instance, got {error!r}")
        self._answer(None, error)

    @property
    def answered(self) -> bool:
        """True once :meth:`send` or :meth:`fail` was called (or the actor died first)."""
        return self._state in (_ANSWERED, _EXPIRED)

    @property
    def abandoned(self) -> bool:
        """True when the caller stopped waiting before an answer came."""
        return self._state == _ABANDONED

    def _answer(self, value: R | None, error: BaseException | None) -> None:
        if self._state == _EXPIRED:
            return
        if self._state == _ANSWERED:
            raise ReplyAlreadySentError("this request was already answered; answer each once")
        if self._state == _ABANDONED:
            self._state = _ANSWERED
            return
        self._state = _ANSWERED
        self._value = value
        self._error = error
        self._pending.discard(self)
        waiter, self._waiter = self._waiter, None
        if waiter is not None:
            trio.lowlevel.reschedule(waiter)

    def _expire(self, error: BaseException) -> None:
        """Fail the caller because the actor that held the request died."""
        if self._state == _WAITING:
            self._answer(None, error)
            self._state = _EXPIRED

    def _abandon(self) -> None:
        if self._state == _WAITING:
            self._state = _ABANDONED
        self._pending.discard(self)

    async def _wait(self) -> None:
        """Park the caller until the answer comes.

        A cancellation delivered to the parked caller abandons the request in the same step
        (the abort callback), so there is no moment at which the actor could still answer a
        caller that is already on its way out with Cancelled: either the caller gets the
        answer, or the actor sees :attr:`abandoned` before it acts.
        """
        if self._state != _WAITING:
            return
        self._waiter = trio.lowlevel.current_task()

        def abort(_: trio.lowlevel.RaiseCancelT) -> trio.lowlevel.Abort:
            self._waiter = None
            self._abandon()
            return trio.lowlevel.Abort.SUCCEEDED

        await trio.lowlevel.wait_task_rescheduled(abort)

    def _result(self) -> R:
        if self._error is not None:
            raise self._error
        return self._value  # type: ignore[return-value]


@final
class Mailbox(Generic[M], metaclass=NoPublicConstructor):
    """The receiving end of one incarnation's mailbox; the actor reads it from its context.

    Iterate it (``async for message in ctx.mailbox``) or call :meth:`receive`. Iteration ends,
    and :meth:`receive` raises :class:`trio.EndOfChannel`, once a stop was requested and the
    buffered messages were read.
    """

    __slots__ = (
        "_closed",
        "_generation",
        "_path",
        "_pending",
        "_receive",
        "_send",
    )

    def __init__(self, capacity: float, path: tuple[str, ...], generation: int) -> None:
        if not (capacity == math.inf or (isinstance(capacity, int) and capacity >= 0)):
            raise ValueError(f"mailbox capacity must be an int >= 0 or math.inf, got {capacity!r}")
        self._send, self._receive = trio.open_memory_channel[M](capacity)
        self._pending: set[Reply[Any]] = set()
        self._path = path
        self._generation = generation
        self._closed = False

    def __aiter__(self) -> trio.MemoryReceiveChannel[M]:
        return self._receive

    async def receive(self) -> M:
        """Wait for the next message (raises :class:`trio.EndOfChannel` after a stop request)."""
        return await self._receive.receive()

    def receive_nowait(self) -> M:
        """The next message if one is buffered, else :class:`trio.WouldBlock`."""
        return self._receive.receive_nowait()

    @property
    def path(self) -> tuple[str, ...]:
        """The owner's path in the supervision tree."""
        return self._path

    @property
    def generation(self) -> int:
        """The owner's generation."""
        return self._generation

    def statistics(self) -> MailboxStatistics:
        """A frozen snapshot of the buffer, waiting senders and pending calls."""
        stats = self._send.statistics()
        return MailboxStatistics(
            capacity=stats.max_buffer_size,
            buffered=stats.current_buffer_used,
            peak_buffered=stats.peak_buffer_used,
            senders_waiting=stats.tasks_waiting_send,
            calls_pending=len(self._pending),
            accepting=stats.open_send_channels > 0 and not self._closed,
            alive=not self._closed,
        )

    # -- used by ActorRef and the runtime -------------------------------------------------------

    def _dead_error(self) -> ActorDeadError:
        if self._closed:
            detail = "has ended; look the actor up again to reach its next incarnation"
        else:
            detail = "is stopping and accepts no more messages"
        return ActorDeadError(self._path, self._generation, detail)

    def _request_stop(self) -> None:
        self._send.close()

    def _close(self) -> None:
        """The incarnation ended: drop the buffer and fail every sender and waiting caller."""
        if self._closed:
            return
        self._closed = True
        self._send.close()
        self._receive.close()
        pending = list(self._pending)
        self._pending.clear()
        for reply in pending:
            reply._expire(self._dead_error())


@final
class ActorRef(Generic[M_contra], metaclass=NoPublicConstructor):
    """The address of one incarnation of an actor: send it messages, ask it questions.

    A ref never outlives its incarnation: once that ends, every operation raises
    :class:`~actors.ActorDeadError` promptly. To follow a child across restarts use
    :meth:`~actors.Supervisor.named_ref`.
    """

    __slots__ = ("_mailbox", "_send", "_send_nowait")

    def __init__(self, mailbox: Mailbox[M_contra]) -> None:
        self._mailbox = mailbox
        # Bound once: cast() is the hot path and should cost one channel send.
        self._send = mailbox._send.send
        self._send_nowait = mailbox._send.send_nowait

    async def cast(self, message: M_contra) -> None:
        """Send ``message`` without waiting for a reply; waits only while the mailbox is full.

        Raises:
            ActorDeadError: the incarnation has ended or is stopping.
        """
        try:
            await self._send(message)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            raise self._mailbox._dead_error() from None

    def cast_nowait(self, message: M_contra) -> None:
        """Send ``message`` if the mailbox has room, else raise :class:`trio.WouldBlock`.

        Raises:
            trio.WouldBlock: the mailbox is full.
            ActorDeadError: the incarnation has ended or is stopping.
        """
        try:
            self._send_nowait(message)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            raise self._mailbox._dead_error() from None

    async def call(
        self,
        make_request: Callable[[Reply[R]], M_contra],
        *,
        timeout: float = 5.0,  # noqa: ASYNC109 (a call's deadline is part of its contract, as in OTP)
    ) -> R:
        """Send the request ``make_request(reply)`` and wait for its answer.

        ``make_request`` receives the :class:`Reply` to embed in the message, for example
        ``await ref.call(lambda reply: Get(key, reply))``. The timeout covers waiting for room
        in the mailbox and for the answer.

        Raises:
            CallTimeoutError: no answer within ``timeout`` seconds.
            ActorDeadError: the incarnation ended (or was stopping) before answering.
            Exception: whatever the actor passed to :meth:`Reply.fail`.
        """
        mailbox = self._mailbox
        pending = mailbox._pending
        reply = cast(Reply[R], Reply._create(pending))
        message = make_request(reply)
        if mailbox._closed:
            raise mailbox._dead_error()
        pending.add(reply)
        try:
            with trio.move_on_after(timeout):
                try:
                    await self._send(message)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    raise mailbox._dead_error() from None
                # The send's schedule point may already have let the actor answer; then
                # _wait returns without another checkpoint. Trio's rule holds either way:
                # Cancelled out of call() means the actor never acted on the request.
                await reply._wait()
        finally:
            reply._abandon()
        if not reply.answered:
            raise CallTimeoutError(mailbox._path, mailbox._generation, timeout)
        return reply._result()

    @property
    def path(self) -> tuple[str, ...]:
        """The actor's path in the supervision tree (its name is the last element)."""
        return self._mailbox._path

    @property
    def name(self) -> str:
        """The actor's name within its supervisor."""
        return self._mailbox._path[-1]

    @property
    def generation(self) -> int:
        """Which incarnation this ref addresses (grows by one with every start attempt)."""
        return self._mailbox._generation

    @property
    def is_alive(self) -> bool:
        """False once the incarnation has ended."""
        return not self._mailbox._closed

    def statistics(self) -> MailboxStatistics:
        """A frozen snapshot of this incarnation's mailbox."""
        return self._mailbox.statistics()

    def __repr__(self) -> str:
        state = "alive" if self.is_alive else "dead"
        return f"<ActorRef {format_path(self.path)} generation={self.generation} {state}>"
