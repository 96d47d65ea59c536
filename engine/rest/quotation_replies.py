"""Reading a quotation REST answer: its JSON body, and the exception an error answer stands for.

Upbit's REST errors have the shape ``{"error": {"name": ..., "message": ...}}`` where the name is
often the HTTP status as a number (docs/UPBIT.md, Market codes): ``404 {"error": {"name": 404,
"message": "Code not found"}}`` for an unknown market. They become the library's exceptions:

- 404 "Code not found" for a request naming markets: :class:`UnknownMarketError`;
- any other error status: :class:`ServerError`, named as Upbit named it (``"HTTP <status>"``
  when the body says nothing readable);
- a 200 whose body is not JSON: :class:`ProtocolError` (reason ``not_json``).

Rate limits (429, 418) are the client's business, not this module's.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

import orjson

from engine.errors import ProtocolError, ServerError, UnknownMarketError, UpbitEngineError

__all__ = ("error_for_status", "parse_json_body")

_SNIPPET = 120


def parse_json_body(content: bytes, *, what: str) -> object:
    """The JSON in ``content``; integers keep every digit (``sequential_id`` is beyond 2^53).

    orjson reads integers up to 64 bits exactly; a body it refuses (a larger integer, a number
    beyond a double) is read again by the standard library, which has no such bounds.
    """
    try:
        return orjson.loads(content)
    except orjson.JSONDecodeError:
        pass
    try:
        return json.loads(content.decode("utf-8"))
    except (ValueError, RecursionError) as exc:
        raise ProtocolError(
            f"{what} returned a body that is not JSON ({exc}); it starts with "
            f"{_snippet(content)!r}",
            reason="not_json",
        ) from None


def _snippet(content: bytes) -> str:
    return content[:_SNIPPET].decode("utf-8", "replace")


def _upbit_error(content: bytes) -> tuple[str | None, str | None]:
    """``(name, message)`` of an Upbit error body, each ``None`` when not readable."""
    try:
        body = parse_json_body(content, what="")
    except ProtocolError:
        return None, None
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return None, None
    name, message = error.get("name"), error.get("message")
    return (
        None if name is None else str(name),
        message if isinstance(message, str) else None,
    )


def _markets(params: Mapping[str, object] | None) -> Sequence[str]:
    if not params:
        return ()
    named = params.get("market", params.get("markets"))
    if not isinstance(named, str) or not named:
        return ()
    return tuple(code.strip() for code in named.split(",") if code.strip())


def error_for_status(
    status: int,
    reason: str,
    content: bytes,
    *,
    what: str,
    params: Mapping[str, object] | None = None,
) -> UpbitEngineError:
    """The exception for an error answer ``status`` to the request described by ``what``."""
    name, message = _upbit_error(content)
    markets = _markets(params)
    if status == 404 and markets and "code not found" in (message or "").lower():
        return UnknownMarketError(
            markets,
            hint=f"Upbit answered 404 Code not found to {what}; check the code against the "
            "market catalog (engine.rest.fetch_catalog)",
        )
    detail = message if message is not None else (_snippet(content) or "no body")
    text = f"HTTP {status} {reason}".rstrip() + f" to {what}: {detail}"
    if 500 <= status < 600:
        text += " (a server-side failure: retry later)"
    return ServerError(name or f"HTTP {status}", text)
