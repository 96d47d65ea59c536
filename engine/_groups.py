"""Unwrapping Trio's exception groups at the library's boundary.

Trio nurseries wrap everything that crosses them in an ExceptionGroup. Callers of this library
should see the library's own exceptions, so where a nursery is an implementation detail, a group
holding exactly one exception is unwrapped; anything richer is re-raised as it is.
"""

from __future__ import annotations

from typing import NoReturn

__all__ = ("leaf_exceptions", "raise_single_leaf")


def leaf_exceptions(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    """Every non-group exception inside ``group``, depth first."""
    leaves: list[BaseException] = []
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            leaves.extend(leaf_exceptions(exc))
        else:
            leaves.append(exc)
    return leaves


def raise_single_leaf(group: BaseExceptionGroup[BaseException]) -> NoReturn:
    """Raise the group's only leaf (keeping its own context), or the group itself."""
    leaves = leaf_exceptions(group)
    if len(leaves) != 1:
        raise group
    leaf = leaves[0]
    context = leaf.__context__
    try:
        raise leaf
    finally:
        # Re-raising inside the handler would set the group as the leaf's context; undo that so
        # tracebacks show the real chain, not the wrapper.
        leaf.__context__ = context
        del leaf, context
