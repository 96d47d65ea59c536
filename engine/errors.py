"""The library's exceptions.

Every error the engine raises to a caller is an :class:`UpbitEngineError`. Messages say what went
wrong *and* what to change, because most of them are raised before anything is sent to Upbit.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from types import MappingProxyType

__all__ = (
    "CatalogNotReadyError",
    "CatalogUnavailableError",
    "ConnectionDeadError",
    "ConnectionFailedError",
    "EngineClosedError",
    "InvalidSubscriptionError",
    "NoParkingCodeError",
    "NotSettledError",
    "ProtocolError",
    "RateLimitedError",
    "SERVER_ERROR_HINTS",
    "ServerError",
    "SnapshotTimeoutError",
    "StreamBusyError",
    "SubscriptionFailedError",
    "SubscriptionTimeoutError",
    "UnknownMarketError",
    "UpbitEngineError",
)


class UpbitEngineError(Exception):
    """Base class of every exception this library raises on purpose."""


class InvalidSubscriptionError(UpbitEngineError, ValueError):
    """A request was rejected before anything was sent.

    ``reasons`` lists every problem found, not only the first, so a caller can fix them all at once.
    """

    def __init__(self, reasons: Iterable[str]) -> None:
        self.reasons: tuple[str, ...] = tuple(reasons)
        if not self.reasons:
            raise ValueError("InvalidSubscriptionError needs at least one reason")
        if len(self.reasons) == 1:
            text = f"invalid subscription: {self.reasons[0]}"
        else:
            text = "invalid subscription:\n" + "\n".join(f"  - {r}" for r in self.reasons)
        super().__init__(text)


class UnknownMarketError(InvalidSubscriptionError):
    """Codes that are well-formed but not listed on Upbit (Upbit would silently ignore them)."""

    def __init__(self, codes: Sequence[str], *, hint: str = "") -> None:
        self.codes: tuple[str, ...] = tuple(codes)
        listed = ", ".join(self.codes)
        reason = f"not listed on Upbit: {listed}"
        if hint:
            reason += f" ({hint})"
        super().__init__([reason])


class ProtocolError(UpbitEngineError):
    """A frame from the server could not be decoded at all (not JSON, no readable type or code).

    ``reason`` is a short machine-readable cause (``not_json``, ``identity``...), the key under
    which the engine counts such frames in its metrics.
    """

    def __init__(self, message: str, *, reason: str = "malformed") -> None:
        super().__init__(message)
        self.reason = reason


#: What each of Upbit's error names means for the caller (docs/UPBIT.md, Errors).
SERVER_ERROR_HINTS: Mapping[str, str] = MappingProxyType(
    {
        "WRONG_FORMAT": "the request is not a JSON array of objects, or myAsset came with codes",
        "NO_TICKET": 'the request has no ticket object; put {"ticket": ...} first',
        "NO_TYPE": 'a data object has no "type"',
        "NO_CODES": 'a public data type was requested without "codes"',
        "INVALID_PARAM": "a data type or option Upbit does not support; check the type and options",
        "INVALID_AUTH": (
            "the JWT is missing or invalid: check the access and secret keys, that the key allows "
            "this IP, and that private types go to the private endpoint"
        ),
        "Too Many Requests": "over 5 messages/s or 100/min on one connection; send less often",
        "I'm a teapot": "blocked after repeated rate-limit violations; wait before sending again",
    }
)


class ServerError(UpbitEngineError):
    """Upbit answered with an error frame ``{"error": {"name": ..., "message": ...}}``.

    Upbit closes the connection after it. ``hint`` says what the name means for the caller.
    """

    def __init__(self, name: str, message: str) -> None:
        self.name = name
        self.server_message = message
        self.hint = SERVER_ERROR_HINTS.get(name, "")
        text = f"Upbit error {name}: {message}"
        if self.hint:
            text += f" ({self.hint})"
        super().__init__(text)


class RateLimitedError(UpbitEngineError):
    """Upbit refused a connect, message or REST request for exceeding its rate limit (HTTP 429 or
    418). ``advice`` replaces the default fix-it text for a 429 (the default speaks of connects)."""

    def __init__(
        self,
        status: int,
        *,
        retry_after: float | None = None,
        detail: str = "",
        advice: str = "Upbit allows 5 connects/s per IP: wait, then connect less often",
    ) -> None:
        self.status = status
        self.retry_after = retry_after
        kind = "blocked (418)" if status == 418 else "rate limited (429)"
        text = f"Upbit {kind}"
        if retry_after is not None:
            text += f"; retry after {retry_after:g} s"
        if detail:
            text += f": {detail}"
        if status == 418:
            text += " (repeated limit violations: wait for the block to end before reconnecting)"
        else:
            text += f" ({advice})"
        super().__init__(text)


class CatalogUnavailableError(UpbitEngineError):
    """The market catalog (``GET /v1/market/all``) could not be fetched or parsed."""


class CatalogNotReadyError(CatalogUnavailableError):
    """A check needs the market catalog, and the engine has not loaded it yet.

    The engine fetches the catalog when it opens; a synchronous check made before that fetch
    completed cannot tell a listed code from an unlisted one, so it says so instead of guessing.
    """

    def __init__(self) -> None:
        super().__init__(
            "the market catalog has not loaded yet, so listed codes cannot be told from "
            "unlisted ones: await engine.wait_catalog() first (subscribe_realtime and "
            "request_snapshot wait for it by themselves)"
        )


class ConnectionFailedError(UpbitEngineError):
    """A WebSocket connection could not be opened, or broke."""


class ConnectionDeadError(ConnectionFailedError):
    """A connection that is open but dead: no pong in time, or no frame for longer than the
    connection ever stays silent (stalled). It is closed without a close handshake, which a dead
    peer would never answer, so the reconnect does not wait for one."""


class SnapshotTimeoutError(UpbitEngineError):
    """A snapshot request did not receive one SNAPSHOT for every requested (type, code) in time."""

    def __init__(
        self,
        missing: Iterable[tuple[str, str]],
        timeout: float,
        *,
        reason: str | None = None,
        connection_error: BaseException | None = None,
    ) -> None:
        self.missing: tuple[tuple[str, str], ...] = tuple(sorted(missing))
        self.timeout = timeout
        if reason is None and connection_error is not None:
            reason = (
                f"the snapshot connection failed meanwhile ({connection_error}); the codes may "
                "well be fine: check the network and Upbit's status, then retry"
            )
        #: Why nothing came, when the engine knows (``None``: Upbit stayed silent).
        self.reason = reason
        #: The snapshot connection's last failure during the wait, if it had one.
        self.connection_error = connection_error
        names = ", ".join(f"{t}:{c}" for t, c in self.missing)
        explanation = reason or "check the codes are listed and trading"
        super().__init__(f"no SNAPSHOT within {timeout:g} s for {names}; {explanation}")


class SubscriptionFailedError(UpbitEngineError):
    """A realtime subscription ended abnormally; ``cause`` says why."""

    def __init__(self, subscription_id: str, cause: str) -> None:
        self.subscription_id = subscription_id
        self.cause = cause
        super().__init__(f"subscription {subscription_id} failed: {cause}")


class SubscriptionTimeoutError(UpbitEngineError, TimeoutError):
    """``wait_active`` ran out: the subscription was not live within the timeout.

    ``state`` is the subscription's state at the deadline and ``cause`` what the engine knows
    of why (its connection's last failure), or ``None``.
    """

    def __init__(self, subscription_id: str, timeout: float, state: str, cause: str | None) -> None:
        self.subscription_id = subscription_id
        self.timeout = timeout
        self.state = state
        self.cause = cause
        why = f"; its connection: {cause}" if cause else ""
        super().__init__(
            f"subscription {subscription_id} was not live within {timeout:g} s "
            f"(it is {state}){why}. It stays subscribed and starts as soon as it can: wait "
            "again, or read its stream, where an Interrupted event says when its connection fails"
        )


class NotSettledError(UpbitEngineError, TimeoutError):
    """``wait_settled`` ran out; ``pending`` lists what was still on its way to the wire."""

    def __init__(self, timeout: float, pending: Sequence[str]) -> None:
        self.timeout = timeout
        self.pending: tuple[str, ...] = tuple(pending)
        super().__init__(
            f"the engine did not settle within {timeout:g} s: {'; '.join(self.pending)}. "
            "Check the connection (registry(), metrics().tickets) or wait longer"
        )


class StreamBusyError(UpbitEngineError, RuntimeError):
    """A subscription's stream already has a reader.

    A subscription has one reader at a time: a second ``engine.stream(sub_id)`` while the first
    is open, or a second task receiving from the same stream, would silently split the messages
    between them, so it is refused instead.
    """


class EngineClosedError(UpbitEngineError):
    """The engine (or the part of it that was asked) has shut down."""


class NoParkingCodeError(UpbitEngineError, LookupError):
    """No listed code is free to park a ticket on (soft unsubscribe); unsubscribe hard instead."""
