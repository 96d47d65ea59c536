"""References by name: reach a child's current incarnation, across restarts."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Generic, Protocol, TypeVar, final

import trio

from actors._tree_shared import TreeShared
from actors._util import NoPublicConstructor, format_path
from actors.errors import ChildNotRunningError, UnknownChildError
from actors.mailbox import ActorRef, Reply


class _Root(Protocol):
    """What a named ref needs of the root supervisor (a Protocol, so this module need not import
    the supervisor, which imports it)."""

    _tree: TreeShared
    _finished: trio.Event

    @property
    def path(self) -> tuple[str, ...]: ...

    def ref(self, key: str | Sequence[str]) -> ActorRef[Any]: ...


__all__ = ("NamedRef",)

M = TypeVar("M")
R = TypeVar("R")


@final
class NamedRef(Generic[M], metaclass=NoPublicConstructor):
    """A reference by name that follows a child across restarts.

    Every operation resolves the child's *current* incarnation first. While the child has none
    (it is restarting), operations wait up to the ``wait`` given to
    :meth:`Supervisor.named_ref` and then raise :class:`~actors.ChildNotRunningError`.
    A message is sent to one incarnation only: if that one dies, the operation fails with
    :class:`~actors.ActorDeadError` rather than being re-sent to the next.
    """

    __slots__ = ("_names", "_root", "_wait")

    def __init__(self, root: _Root, names: tuple[str, ...], wait: float) -> None:
        self._root = root
        self._names = names
        self._wait = wait

    @property
    def path(self) -> tuple[str, ...]:
        """The child's path in the tree."""
        return (*self._root.path, *self._names)

    def current(self) -> ActorRef[M]:
        """The current incarnation's ref, without waiting.

        Raises:
            ChildNotRunningError: it has no running incarnation now.
            UnknownChildError: there is no such child.
        """
        return self._root.ref(self._names)

    async def resolve(self) -> ActorRef[M]:
        """The current incarnation's ref, waiting up to ``wait`` seconds for one."""
        try:
            return self.current()
        except ChildNotRunningError:
            if self._wait <= 0:
                raise
        tree = self._root._tree
        with trio.move_on_after(self._wait):
            while True:
                changed = tree.changed
                try:
                    return self.current()
                except ChildNotRunningError:
                    if self._root._finished.is_set():
                        raise
                await changed.wait()
        return self.current()

    async def cast(self, message: M) -> None:
        """Resolve, then :meth:`ActorRef.cast`."""
        ref = await self.resolve()
        await ref.cast(message)

    def cast_nowait(self, message: M) -> None:
        """:meth:`ActorRef.cast_nowait` to the current incarnation (no waiting for a restart)."""
        self.current().cast_nowait(message)

    async def call(
        self,
        make_request: Callable[[Reply[R]], M],
        *,
        timeout: float = 5.0,  # noqa: ASYNC109 (a call's deadline is part of its contract, as in OTP)
    ) -> R:
        """Resolve, then :meth:`ActorRef.call`; the timeout covers only the call itself."""
        ref = await self.resolve()
        return await ref.call(make_request, timeout=timeout)

    @property
    def is_alive(self) -> bool:
        """True when the child has a running incarnation now."""
        try:
            self.current()
        except (ChildNotRunningError, UnknownChildError):
            return False
        return True

    @property
    def generation(self) -> int | None:
        """The current incarnation's generation, or ``None`` if it has none now."""
        try:
            return self.current().generation
        except (ChildNotRunningError, UnknownChildError):
            return None

    def __repr__(self) -> str:
        return f"<NamedRef {format_path(self.path)} wait={self._wait}>"
