"""The exceptions the actor runtime raises to its callers.

Every one is an :class:`ActorError`. Messages name the actor (by its path in the tree, like
``app/tickets/realtime-0``) and its generation, and say what to do about it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from actors._util import format_path

if TYPE_CHECKING:
    from actors.events import RestartRecord
    from actors.intensity import RestartIntensity

__all__ = (
    "ActorDeadError",
    "ActorError",
    "CallTimeoutError",
    "ChildNotRunningError",
    "ChildStartError",
    "DuplicateChildError",
    "NeverReadyError",
    "ReplyAlreadySentError",
    "StartTimeoutError",
    "SupervisorGaveUpError",
    "UnknownChildError",
)


class ActorError(Exception):
    """Base class of every exception the actor runtime raises on purpose."""


class ActorDeadError(ActorError):
    """The incarnation a message was meant for has ended or is stopping.

    Messages still in its mailbox are dropped and calls waiting for its reply fail with this error
    as soon as it ends. Look the actor up again (or use a :class:`~actors.NamedRef`) to reach its
    next incarnation.
    """

    def __init__(self, path: Sequence[str], generation: int | None, detail: str) -> None:
        self.path: tuple[str, ...] = tuple(path)
        self.generation = generation
        where = format_path(self.path)
        if generation is not None:
            where += f" (generation {generation})"
        super().__init__(f"{where} {detail}")


class ChildNotRunningError(ActorDeadError):
    """A child looked up by name has no running incarnation now (restarting, stopping, stopped).

    Pass ``wait=`` to :meth:`~actors.Supervisor.named_ref` to wait for the next incarnation
    instead of failing at once.
    """


class CallTimeoutError(ActorError, TimeoutError):
    """A :meth:`~actors.ActorRef.call` got no reply within its timeout.

    The actor is alive but did not reply in time (it is busy, hung, or dropped the request).
    Raise the timeout, or make the actor reply (``reply.send``/``reply.fail``) to every request.
    """

    def __init__(self, path: Sequence[str], generation: int, timeout: float) -> None:
        self.path: tuple[str, ...] = tuple(path)
        self.generation = generation
        self.timeout = timeout
        super().__init__(
            f"{format_path(self.path)} (generation {generation}) did not reply within "
            f"{timeout} s; it is busy, hung, or did not reply to this request"
        )


class ReplyAlreadySentError(ActorError, RuntimeError):
    """A :class:`~actors.Reply` was answered twice; each request takes exactly one answer."""


class StartTimeoutError(ActorError, TimeoutError):
    """A child did not call ``task_status.started()`` within its spec's ``start_timeout``."""


class NeverReadyError(ActorError, RuntimeError):
    """A child's start callable returned without ever calling ``task_status.started()``.

    An actor must report ready before doing its work; if it has nothing to initialise, call
    ``task_status.started()`` first thing.
    """


class ChildStartError(ActorError):
    """A child could not be started by :meth:`~actors.Supervisor.start_child` or at start-up.

    The original exception is the ``__cause__``. A failed *restart* is not reported this way: it
    counts toward the restart intensity and is retried.
    """

    def __init__(self, path: Sequence[str], error: BaseException) -> None:
        self.path: tuple[str, ...] = tuple(path)
        self.error = error
        super().__init__(f"{format_path(self.path)} failed to start: {error!r}")


class DuplicateChildError(ActorError, ValueError):
    """A supervisor already has a child of that name; names are unique per supervisor."""


class UnknownChildError(ActorError, LookupError):
    """The supervisor has no child of that name (it was never added, or was removed)."""


class SupervisorGaveUpError(ActorError):
    """A supervisor exceeded its restart intensity, stopped its children, and gave up.

    ``history`` holds the restarts inside the window when it gave up (one more than the intensity
    allows), oldest first. Raised out of :meth:`~actors.Supervisor.run` and
    :func:`~actors.open_supervisor`; a parent supervisor sees it as the abnormal exit of a child.
    """

    def __init__(
        self,
        path: Sequence[str],
        intensity: RestartIntensity,
        history: Sequence[RestartRecord],
    ) -> None:
        self.path: tuple[str, ...] = tuple(path)
        self.intensity = intensity
        self.history: tuple[RestartRecord, ...] = tuple(history)
        culprits = ", ".join(sorted({record.name for record in self.history}))
        super().__init__(
            f"supervisor {format_path(self.path)} gave up: {len(self.history)} restarts within "
            f"{intensity.period} s exceed the intensity of {intensity.max_restarts} "
            f"(children: {culprits}); fix the failing children or raise the intensity"
        )
