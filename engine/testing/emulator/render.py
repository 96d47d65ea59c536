"""Turning messages into the bytes of server frames, per connection format (sans-IO).

Formats (docs/UPBIT.md, Request format): DEFAULT keys, SIMPLE abbreviations, and the ``*_LIST``
variants that wrap each message in a one-element JSON array. Errors and the ``UP`` status are not
data messages: they keep one shape whatever the format.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import orjson

from engine.testing.emulator.frames import OPCODE_BINARY, OPCODE_TEXT, encode_frame
from engine.testing.introspection import SubscriptionEntry
from engine.wire.keys import LIST_SUBSCRIPTIONS_KEYS, SUBSCRIPTION_ENTRY_KEYS

__all__ = (
    "STATUS_UP",
    "Simplifier",
    "encode_data",
    "is_list",
    "is_simple",
    "error_frame",
    "list_subscriptions_frame",
    "status_frame",
)

Simplifier = Callable[[dict[str, object]], dict[str, object]]

STATUS_UP = b'{"status":"UP"}'


def is_simple(fmt: str) -> bool:
    return fmt.startswith("SIMPLE")


def is_list(fmt: str) -> bool:
    return fmt.endswith("_LIST")


def encode_data(message: dict[str, object], fmt: str, simplify: Simplifier) -> bytes:
    """One data message as the frame a connection in ``fmt`` receives."""
    body: object = simplify(message) if is_simple(fmt) else message
    if is_list(fmt):
        body = [body]
    return encode_frame(orjson.dumps(body))


def error_frame(name: str, message: str) -> bytes:
    return encode_frame(orjson.dumps({"error": {"name": name, "message": message}}))


def status_frame(*, text: bool = False) -> bytes:
    return encode_frame(STATUS_UP, OPCODE_TEXT if text else OPCODE_BINARY)


def list_subscriptions_frame(entries: Sequence[SubscriptionEntry], ticket: str, fmt: str) -> bytes:
    """The LIST_SUBSCRIPTIONS reply, keyed (and wrapped) per the connection's format."""
    result = [entry.as_json() for entry in entries]
    reply: dict[str, object] = {"method": "LIST_SUBSCRIPTIONS", "result": result, "ticket": ticket}
    if is_simple(fmt):
        reply = {
            LIST_SUBSCRIPTIONS_KEYS["method"]: "LIST_SUBSCRIPTIONS",
            LIST_SUBSCRIPTIONS_KEYS["result"]: [
                {SUBSCRIPTION_ENTRY_KEYS[key]: value for key, value in item.items()}
                for item in result
            ],
            LIST_SUBSCRIPTIONS_KEYS["ticket"]: ticket,
        }
    body: object = [reply] if is_list(fmt) else reply
    return encode_frame(orjson.dumps(body))
