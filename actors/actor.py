"""The actor contract: what a child's start callable receives and how it reports ready and ends.

An actor is an async callable ``actor(ctx, *, task_status)``:

* it opens its own nursery if it needs helper tasks, so its failure stays its own;
* it calls ``task_status.started()`` once it is ready to serve; its supervisor starts the next
  child only then, and a restarted actor is "back" only then;
* it ends by returning (a *normal* exit) or by raising (an *abnormal* exit, which restarts
  ``transient`` children too). Raising :class:`Shutdown`, or ending after a stop request, is a
  *shutdown* exit.

Each start attempt is a new *incarnation* with its own :attr:`ActorContext.generation`, mailbox
and :class:`~actors.ActorRef`; nothing carries over from the previous one. State that must survive
a crash belongs in another actor.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Generic, Protocol, TypeVar, final

import trio

from actors._tree_shared import TreeShared
from actors._util import NoPublicConstructor
from actors.mailbox import ActorRef, Mailbox

__all__ = ("ActorContext", "ActorFunction", "Shutdown")

M = TypeVar("M")


class Shutdown(Exception):
    """Raise this from an actor to end it with a *shutdown* exit instead of an error.

    A ``transient`` child that raises it is not restarted (OTP's ``{shutdown, Term}``).
    """


@final
class ActorContext(Generic[M], metaclass=NoPublicConstructor):
    """What the runtime hands to one incarnation of an actor."""

    __slots__ = (
        "_healthy",
        "_mailbox",
        "_nested",
        "_path",
        "_ref",
        "_stop",
        "_stop_callbacks",
        "_tree",
    )

    def __init__(self, mailbox: Mailbox[M], tree: TreeShared) -> None:
        self._mailbox = mailbox
        self._path = mailbox.path
        self._ref: ActorRef[M] = ActorRef[M]._create(mailbox)
        self._stop = trio.Event()
        self._stop_callbacks: list[Callable[[], None]] = []
        self._tree = tree
        # The Supervisor this actor runs, if it is one (set by actors._supervisor; typed loosely
        # so this module need not import the supervisor, which imports it).
        self._nested: Any = None
        self._healthy = False

    @property
    def name(self) -> str:
        """The child's name within its supervisor."""
        return self._path[-1]

    @property
    def path(self) -> tuple[str, ...]:
        """Names from the root supervisor down to this actor."""
        return self._path

    @property
    def generation(self) -> int:
        """This incarnation's number: it grows by one with every start attempt of the child."""
        return self._mailbox.generation

    @property
    def mailbox(self) -> Mailbox[M]:
        """This incarnation's mailbox; iterate it to receive messages."""
        return self._mailbox

    @property
    def ref(self) -> ActorRef[M]:
        """A reference to this incarnation, to hand to other actors."""
        return self._ref

    @property
    def stop_requested(self) -> bool:
        """True once the supervisor asked this incarnation to stop."""
        return self._stop.is_set()

    @property
    def healthy(self) -> bool:
        """True once this incarnation called :meth:`mark_healthy`."""
        return self._healthy

    def mark_healthy(self) -> None:
        """Declare that this incarnation did what it exists for (a connection that came back and
        delivers data, say).

        When a healthy incarnation fails, its supervisor restarts it at once, without counting
        the failure toward the restart intensity, and the backoff starts again from its first
        step: backoff is for a child that cannot get healthy, not for one that was. A hot loop
        needs the child to become healthy again before each failure, which is the child's own
        judgement; mark only after real progress.
        """
        self._healthy = True

    async def wait_stop_requested(self) -> None:
        """Return once the supervisor asks this incarnation to stop.

        Actors that do not read their mailbox (a socket pump, say) watch this to stop gracefully;
        after the child's shutdown grace period the supervisor cancels it anyway.
        """
        await self._stop.wait()

    def _request_stop(self) -> None:
        if self._stop.is_set():
            return
        self._stop.set()
        self._mailbox._request_stop()
        for callback in self._stop_callbacks:
            callback()


class ActorFunction(Protocol[M]):
    """The signature of an actor: ``async def actor(ctx, *, task_status) -> None``.

    Declare it as ``task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED`` so the actor
    can also be called directly in tests.
    """

    def __call__(
        self, ctx: ActorContext[M], /, *, task_status: trio.TaskStatus[None]
    ) -> Awaitable[Any]: ...
