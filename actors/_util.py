"""Small helpers shared by the runtime's modules (private)."""

from __future__ import annotations

from abc import ABCMeta
from collections.abc import Sequence
from typing import Any, NoReturn, TypeVar

__all__ = ("NoPublicConstructor", "format_path", "single_leaf")

T = TypeVar("T")


class NoPublicConstructor(ABCMeta):
    """Metaclass for handles that only the runtime may create (as Trio does for its handles).

    ``Cls(...)`` raises ``TypeError``; the runtime calls ``Cls._create(...)``.
    """

    def __call__(cls, *args: object, **kwargs: object) -> NoReturn:
        raise TypeError(
            f"{cls.__module__}.{cls.__qualname__} has no public constructor; "
            "the actor runtime hands these out"
        )

    def _create(cls: type[T], *args: Any, **kwargs: Any) -> T:
        return super().__call__(*args, **kwargs)  # type: ignore[misc, no-any-return]


def format_path(path: Sequence[str]) -> str:
    """How a path in the tree is written in messages: names joined by ``/``."""
    return "/".join(path)


def single_leaf(group: BaseExceptionGroup[BaseException]) -> BaseException | None:
    """The only leaf exception of a (possibly nested) group, or ``None`` if there are several.

    Used to unwrap groups whose shape the runtime knows (one supervisor task plus one body), never
    to blindly flatten a user's group.
    """
    leaves: list[BaseException] = []
    stack: list[BaseException] = [group]
    while stack:
        exc = stack.pop()
        if isinstance(exc, BaseExceptionGroup):
            stack.extend(exc.exceptions)
        else:
            leaves.append(exc)
        if len(leaves) > 1:
            return None
    return leaves[0] if leaves else None
