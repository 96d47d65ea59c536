"""How a ticket names what ended a connection: a short cause for logs, events and
``registry()``, and whether Upbit refused a private ticket's keys."""

from __future__ import annotations

from collections.abc import Sequence

import trio

from engine.errors import ServerError
from engine.transport.base import HandshakeRejectedError

__all__ = ("AUTH_ERROR", "RATE_ERRORS", "auth_failure", "describe")

#: Upbit's answer to a refused JWT (an error frame after the first request).
AUTH_ERROR = "INVALID_AUTH"
#: Error names about the sending rate, not the request's content: never blamed on a
#: subscription (docs/UPBIT.md, Errors; Upbit spells it both ways).
RATE_ERRORS = frozenset({"Too Many Requests", "I'm a teapot", "TOO_MANY_REQUEST"})


def auth_failure(name: str, leaves: Sequence[BaseException]) -> str | None:
    """The cause to report if ``leaves`` mean Upbit refused private ticket ``name``'s keys."""
    if not name.startswith("private-"):
        return None
    for leaf in leaves:
        refused = (isinstance(leaf, ServerError) and leaf.name == AUTH_ERROR) or (
            isinstance(leaf, HandshakeRejectedError) and leaf.status == 401
        )
        if refused:
            return (
                f"Upbit refused the API keys ({describe(leaf)}): check access_key and "
                "secret_key (and the key's WebSocket permission), then subscribe again"
            )
    return None


def describe(exc: BaseException) -> str:
    """``Type: message`` of ``exc`` (its leaves, joined, for a group)."""
    if isinstance(exc, trio.Cancelled):
        return "cancelled"
    if isinstance(exc, BaseExceptionGroup):
        inner = [describe(item) for item in exc.exceptions]
        return "; ".join(inner)
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
