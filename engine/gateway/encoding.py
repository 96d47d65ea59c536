"""What the gateway puts on NATS for each message: its subject, its bytes and its ``Nats-Msg-Id``.

The payload is one JSON object per message with Upbit's DEFAULT field names, exactly the shape
of a DEFAULT frame from Upbit (``type``, ``code``, ``sequential_id``, ``trade_timestamp``,
``stream_type``, ...; fields the engine does not model are kept): any language reads it, and
``engine.wire.decode.decode_frame`` turns it back into the same typed model.

The message id is derived from the exchange's data only, never from the gateway or the local
clock, so two gateways that receive the same frame compute the same id and JetStream stores it
once:

- a trade: ``trade:{code}:{sequential_id}`` (unique per trade, Upbit's documented key);
- anything else: ``{type}:{code}:{timestamp}:{hash}``, where ``hash`` is a 64-bit BLAKE2b of the
  payload without ``stream_type`` (a SNAPSHOT repeating a REALTIME value is the same value) and
  ``timestamp`` is the frame's own (Upbit stamps every ticker, orderbook and candle).

Subjects are ``{prefix}.{type}.{code}``; a dot in a type (``candle.1m``) becomes ``_``
(``upbit.candle_1m.KRW-BTC``) so every subject has the same three tokens.
"""

from __future__ import annotations

import hashlib
from typing import Final

import orjson

from engine.observability.jsonable import to_jsonable
from engine.wire.messages import Message, Trade

__all__ = (
    "DEFAULT_PREFIX",
    "encode_message",
    "message_id",
    "payload_of",
    "subject_for",
    "subject_token",
)

DEFAULT_PREFIX: Final = "upbit"


def subject_token(data_type: str) -> str:
    """A data type as one subject token (``candle.1m`` -> ``candle_1m``)."""
    return data_type.replace(".", "_")


def subject_for(data_type: str, code: str, prefix: str = DEFAULT_PREFIX) -> str:
    return f"{prefix}.{subject_token(data_type)}.{code or 'all'}"


def payload_of(msg: Message) -> dict[str, object]:
    """``msg`` as Upbit's DEFAULT JSON object (unmodelled fields merged back in)."""
    data = to_jsonable(msg)
    assert isinstance(data, dict)
    extra = data.pop("extra", None)
    if isinstance(extra, dict):
        for key, value in extra.items():
            data.setdefault(key, value)
    return data


def message_id(msg: Message, payload: dict[str, object]) -> str:
    """The content-derived ``Nats-Msg-Id`` (see the module docstring)."""
    code = getattr(msg, "code", "") or ""
    if type(msg) is Trade:
        return f"trade:{code}:{msg.sequential_id}"
    body = {key: value for key, value in payload.items() if key != "stream_type"}
    digest = hashlib.blake2b(orjson.dumps(body, option=orjson.OPT_SORT_KEYS), digest_size=8)
    return f"{msg.type}:{code}:{payload.get('timestamp')}:{digest.hexdigest()}"


def encode_message(msg: Message, prefix: str = DEFAULT_PREFIX) -> tuple[str, bytes, str]:
    """``(subject, payload bytes, message id)`` for ``msg``."""
    payload = payload_of(msg)
    return (
        subject_for(msg.type, getattr(msg, "code", "") or "", prefix),
        orjson.dumps(payload),
        message_id(msg, payload),
    )
