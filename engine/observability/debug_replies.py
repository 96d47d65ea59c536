"""The debug channel's protocol, without the sockets: requests parsed from a line, replies built
as JSON-ready dicts from the engine's frozen views.

A request is one line: a command word with options (``events follow``, ``events 50``) or a JSON
object (``{"cmd": "events", "follow": true, "limit": 50}``). Each reply is one JSON object on one
line with ``"ok"``; ``events follow`` then streams one ``{"event": ...}`` line per event until the
client disconnects or the engine stops (``{"end": ...}``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

import attrs
import orjson

from engine.core.records import Subscription
from engine.observability.debug import EngineTree, TicketNode
from engine.observability.jsonable import to_jsonable
from engine.observability.metrics import EngineMetrics
from engine.observability.operator_events import OperatorEvent

__all__ = (
    "COMMANDS",
    "MAX_REQUEST_BYTES",
    "DebugRequest",
    "encode_line",
    "event_json",
    "metrics_reply",
    "parse_request",
    "subscriptions_reply",
    "tickets_reply",
    "tree_reply",
)

#: Command -> what it answers (``help`` lists them).
COMMANDS: Final = {
    "help": "this list",
    "tree": "the supervision tree (text and JSON)",
    "tickets": "each connection: state, time in it, streams, messages by type, failures",
    "subscriptions": "each subscription: types, codes, tickets, buffer, deliveries, gaps",
    "metrics": "the engine's metrics snapshot",
    "events": "recent operator events; 'events follow' streams them live, 'events N' the last N",
}
#: The longest request line the channel reads.
MAX_REQUEST_BYTES: Final = 4096


@attrs.frozen
class DebugRequest:
    command: str
    follow: bool = False
    limit: int | None = None


def parse_request(line: str) -> DebugRequest:
    """One request line; ``ValueError`` saying what the channel understands."""
    text = line.strip()
    if text.startswith("{"):
        try:
            obj = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise ValueError(f"request is not valid JSON: {exc}") from None
        if not isinstance(obj, dict) or not isinstance(obj.get("cmd"), str):
            raise ValueError('a JSON request needs a "cmd" string, e.g. {"cmd": "tree"}')
        command, follow, limit = obj["cmd"], obj.get("follow", False), obj.get("limit")
    else:
        words = text.split()
        if not words:
            raise ValueError(f"empty request; commands: {', '.join(COMMANDS)}")
        command, follow, limit = words[0], "follow" in words[1:], None
        for word in words[1:]:
            if word.isdigit():
                limit = int(word)
            elif word != "follow":
                raise ValueError(f"unknown option {word!r} (use 'follow' or a count)")
    if command not in COMMANDS:
        raise ValueError(f"unknown command {command!r}; commands: {', '.join(COMMANDS)}")
    if not isinstance(follow, bool):
        raise ValueError('"follow" must be true or false')
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise ValueError('"limit" must be a non-negative integer')
    if follow and command != "events":
        raise ValueError("only 'events' can follow")
    return DebugRequest(command, follow, limit)


def encode_line(obj: object) -> bytes:
    """``obj`` (JSON-ready) as one line of UTF-8 JSON."""
    return orjson.dumps(obj) + b"\n"


def event_json(event: OperatorEvent) -> dict[str, object]:
    """An operator event as JSON: its fields, ``kind`` and a readable ``summary``."""
    data = to_jsonable(event)
    assert isinstance(data, dict)
    data["summary"] = event.summary()
    return data


def tree_reply(tree: EngineTree) -> dict[str, object]:
    return {"ok": True, "cmd": "tree", "text": tree.render(), "tree": to_jsonable(tree.actors)}


def _ticket(node: TicketNode) -> dict[str, object]:
    status = node.status
    types: dict[str, int] = {}
    for key in status.desired:
        types[key.data_type] = types.get(key.data_type, 0) + 1
    out: dict[str, object] = {
        "ticket": status.ticket,
        "mode": to_jsonable(status.mode),
        "state": node.state,
        "generation": status.generation,
        "streams": len(status.desired),
        "codes": len({key.code for key in status.desired if key.code}),
        "types": types,
        "suspects": list(status.suspects),
        "failure": status.failure,
        "line": node.describe(),
    }
    connection = node.connection
    if connection is not None:
        out.update(
            connection_state=connection.state.value,
            time_in_state=connection.time_in_state,
            connects=connection.connects,
            reconnects=connection.reconnects,
            failures=connection.failures,
            last_failure=connection.last_failure,
            last_failure_at=connection.last_failure_at,
            frames_skipped=connection.frames_skipped,
        )
    routing = node.routing
    if routing is not None:
        out.update(
            routed=dict(routing.routed),
            unrouted=routing.unrouted,
            stale=routing.stale,
            held_back=routing.held_back,
            down_since=routing.down_since,
        )
    return out


def tickets_reply(tree: EngineTree, at: float) -> dict[str, object]:
    return {
        "ok": True,
        "cmd": "tickets",
        "at": at,
        "tickets": [_ticket(node) for node in tree.tickets.values()],
    }


def subscriptions_reply(
    subscriptions: Sequence[Subscription],
    metrics: EngineMetrics,
    capacity: Mapping[str, int],
    gaps: Mapping[str, int],
) -> dict[str, object]:
    rows = []
    for sub in subscriptions:
        seen = metrics.subscribers.get(sub.id)
        rows.append(
            {
                "id": sub.id,
                "state": sub.state.value,
                "kind": sub.kind.value,
                "types": list(sub.data_types),
                "codes": list(sub.codes),
                "tickets": list(sub.tickets),
                "routed": dict(seen.routed) if seen else {},
                "delivered": seen.delivered if seen else 0,
                "buffered": seen.buffered if seen else 0,
                "max_size": capacity.get(sub.id),
                "conflated": seen.conflated if seen else 0,
                "dropped": seen.dropped if seen else 0,
                "gaps": gaps.get(sub.id, 0),
                "failure": sub.failure,
            }
        )
    return {"ok": True, "cmd": "subscriptions", "at": metrics.at, "subscriptions": rows}


def metrics_reply(metrics: EngineMetrics) -> dict[str, object]:
    return {"ok": True, "cmd": "metrics", "metrics": to_jsonable(metrics)}
