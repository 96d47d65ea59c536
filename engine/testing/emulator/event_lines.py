"""One short line per emulator event, for a human watching (``upbit-engine emulator -v``).

Lines stay short whatever the client sends: a subscription request is summarised (data types,
codes listed up to three and counted beyond, format, ticket), never echoed, and every detail is
clipped.
"""

from __future__ import annotations

import orjson

from engine.testing.introspection import EmulatorEvent, RequestRecord

__all__ = ("describe_event", "describe_request")

_MAX_DETAIL = 160
_MAX_CODES_LISTED = 3
_MAX_ITEMS = 6


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _codes(value: object) -> str:
    if not isinstance(value, list):
        return f"codes {type(value).__name__}"
    if 0 < len(value) <= _MAX_CODES_LISTED:
        return ",".join(_clip(str(code), 20) for code in value)
    return f"{len(value)} codes"


def _item(item: object) -> str:
    if not isinstance(item, dict):
        return _clip(type(item).__name__, 20)
    if "ticket" in item:
        return f"ticket {_clip(str(item['ticket']), 16)}"
    if "type" in item:
        parts = [_clip(str(item["type"]), 24)]
        if "codes" in item:
            parts.append(_codes(item["codes"]))
        if "level" in item:
            parts.append(f"level {_clip(str(item['level']), 12)}")
        for flag, words in (
            ("is_only_snapshot", "snapshot only"),
            ("isOnlySnapshot", "snapshot only"),
            ("is_only_realtime", "realtime only"),
            ("isOnlyRealtime", "realtime only"),
        ):
            if item.get(flag) is True:
                parts.append(words)
        return " ".join(parts)
    if "format" in item:
        return f"format {_clip(str(item['format']), 16)}"
    if "method" in item:
        return f"method {_clip(str(item['method']), 24)}"
    return "{" + _clip(",".join(str(key) for key in item), 24) + "}"


def describe_request(text: str) -> str:
    """A subscription request in a few words: ``ticket t, ticker 100 codes, trade KRW-BTC,
    format SIMPLE``."""
    try:
        parsed = orjson.loads(text)
    except orjson.JSONDecodeError:
        return f"{_clip(repr(text), 40)} ({len(text)} chars)"
    if not isinstance(parsed, list):
        return f"JSON {type(parsed).__name__}, not an array ({len(text)} chars)"
    parts = [_item(item) for item in parsed[:_MAX_ITEMS]]
    if len(parsed) > _MAX_ITEMS:
        parts.append(f"{len(parsed) - _MAX_ITEMS} more")
    return ", ".join(parts) if parts else "empty array"


def describe_event(event: EmulatorEvent, request: RequestRecord | None = None) -> str:
    """``conn 3 connect /websocket/v1 from 127.0.0.1``, ``conn 3 request subscribe: ticket t,
    ticker 100 codes``, ``fault REST failure 500 for every group``... For a ``request`` event,
    pass the request it records (the connection's newest) to have it summarised."""
    who = f"conn {event.conn_id} " if event.conn_id is not None else ""
    what = event.kind.replace("_", " ") + (":" if event.kind.startswith("server_") else "")
    if event.kind == "request" and request is not None:
        kind = request.kind if request.error is None else f"{request.kind} {request.error}"
        detail = "" if request.kind == "ping" else describe_request(request.text)
        detail = f"{kind}: {detail}" if detail else kind
    else:
        detail = event.detail
    return f"{who}{what} {_clip(detail, _MAX_DETAIL)}"
