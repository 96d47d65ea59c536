"""Frames without a current ``type``/``ty``: replies, 2018-era frames, and unmodelled types.

Part of the decoder (:mod:`engine.wire.decode` has the theory of operation). None of this is on the
hot path: the dispatch only comes here for an object its tables do not decode. Replies are
``{"status": "UP"}``, error frames and the ``LIST_SUBSCRIPTIONS`` reply; a frame from before
``type``/``code`` existed is renamed into a current one; a data frame of a type the library does
not model becomes an :class:`~engine.wire.messages.UnknownMessage`.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Final

from engine.errors import ProtocolError
from engine.wire import keys as wire_keys
from engine.wire._decode_fields import _Decoder, _json_type_name, _short, _to_float
from engine.wire.messages import (
    ErrorReply,
    FrozenFields,
    Reply,
    StatusUp,
    SubscriptionEntry,
    SubscriptionList,
    UnknownMessage,
)


def _subscription_entry(entry: Any, keys: Mapping[str, str], position: int) -> SubscriptionEntry:
    where = f"LIST_SUBSCRIPTIONS result[{position}]"
    if type(entry) is not dict:
        raise ProtocolError(
            f"{where} must be an object, not {_json_type_name(type(entry))}", reason="bad_reply"
        )
    data_type = entry.get(keys["type"])
    if type(data_type) is not str:
        raise ProtocolError(f"{where} needs a string {keys['type']!r}", reason="bad_reply")
    codes = entry.get(keys["codes"])
    if codes is not None and (
        type(codes) is not list or not all(type(code) is str for code in codes)
    ):
        raise ProtocolError(
            f"{where}.{keys['codes']} must be a list of strings", reason="bad_reply"
        )
    level = entry.get(keys["level"])
    if level is not None and type(level) not in (int, float, Decimal):
        raise ProtocolError(f"{where}.{keys['level']} must be a number", reason="bad_reply")
    return SubscriptionEntry(
        type=data_type,
        codes=None if codes is None else tuple(codes),
        level=None if level is None else _to_float(level),
    )


_DEFAULT_LIST_KEYS: Final = {name: name for name in wire_keys.LIST_SUBSCRIPTIONS_KEYS}
_DEFAULT_ENTRY_KEYS: Final = {name: name for name in wire_keys.SUBSCRIPTION_ENTRY_KEYS}


def _subscription_list(obj: dict[str, Any], simple: bool) -> SubscriptionList:
    keys = wire_keys.LIST_SUBSCRIPTIONS_KEYS if simple else _DEFAULT_LIST_KEYS
    entry_keys = wire_keys.SUBSCRIPTION_ENTRY_KEYS if simple else _DEFAULT_ENTRY_KEYS
    method = obj.get(keys["method"])
    result = obj.get(keys["result"])
    ticket = obj.get(keys["ticket"])
    where = "LIST_SUBSCRIPTIONS reply"
    if type(method) is not str:
        raise ProtocolError(f"{where}: {keys['method']!r} must be a string", reason="bad_reply")
    if type(result) is not list:
        raise ProtocolError(f"{where}: {keys['result']!r} must be a list", reason="bad_reply")
    # The old documentation typed the ticket as a Long.
    if type(ticket) is int:
        ticket = str(ticket)
    if type(ticket) is not str:
        raise ProtocolError(f"{where}: {keys['ticket']!r} must be a string", reason="bad_reply")
    entries = tuple(
        _subscription_entry(entry, entry_keys, position) for position, entry in enumerate(result)
    )
    return SubscriptionList(method=method, result=entries, ticket=ticket)


def _error_reply(body: Any) -> ErrorReply:
    if type(body) is not dict:
        raise ProtocolError(
            "error frame: 'error' must be an object with 'name' and 'message'", reason="bad_reply"
        )
    name, message = body.get("name"), body.get("message", "")
    if type(name) is not str:
        raise ProtocolError("error frame: 'name' must be a string", reason="bad_reply")
    # An error is an error whatever its message looks like: the name is what matters.
    return ErrorReply(name=name, message=message if type(message) is str else "")


def _reply(obj: dict[str, Any]) -> Reply:
    if "status" in obj:
        if obj["status"] != "UP":
            raise ProtocolError(
                f"unknown status {_short(obj['status'])}; only 'UP' is documented",
                reason="unknown_status",
            )
        return StatusUp()
    if "error" in obj:
        return _error_reply(obj["error"])
    if "method" in obj:
        return _subscription_list(obj, simple=False)
    if wire_keys.LIST_SUBSCRIPTIONS_KEYS["method"] in obj:
        return _subscription_list(obj, simple=True)
    keys = ", ".join(map(_short, list(obj)[:8]))
    raise ProtocolError(
        "object has none of 'type', 'ty', 'status', 'error', 'method' or 'mthd' "
        f"(its keys: {keys or 'none'})",
        reason="unknown_shape",
    )


#: Frames from before ``type``/``code`` existed name the pair ``market`` (``mk`` in SIMPLE keys);
#: the keys each kind always had tell what it is (docs/UPBIT.md#drift-history).
_LEGACY_KINDS: Final = (
    ("market", "code", (("sequential_id", "trade"), ("orderbook_units", "orderbook"))),
    ("mk", "cd", (("sid", "trade"), ("obu", "orderbook"))),
)
_LEGACY_TICKER_KEYS: Final = frozenset({"opening_price", "acc_trade_volume", "op", "atv"})


def _legacy(
    obj: dict[str, Any], default: Mapping[str, _Decoder], simple: Mapping[str, _Decoder]
) -> tuple[str, dict[str, Any], _Decoder] | None:
    """A 2018-era frame (``market`` instead of ``type``/``code``) as a current one, if it is."""
    for pair_key, code_key, kinds in _LEGACY_KINDS:
        if pair_key not in obj:
            continue
        data_type = next((kind for key, kind in kinds if key in obj), None)
        if data_type is None and not _LEGACY_TICKER_KEYS.isdisjoint(obj):
            data_type = "ticker"
        if data_type is None:
            return None
        table = default if pair_key == "market" else simple
        type_key = "type" if pair_key == "market" else "ty"
        renamed = {type_key: data_type, code_key: obj[pair_key]}
        renamed.update((key, value) for key, value in obj.items() if key != pair_key)
        return data_type, renamed, table[data_type]
    return None


def _unknown(obj: dict[str, Any], data_type: str) -> UnknownMessage:
    code = obj.get("code", obj.get("cd"))
    stream_type = obj.get("stream_type", obj.get("st"))
    return UnknownMessage(
        type=data_type,
        code=code if type(code) is str else None,
        stream_type=stream_type if type(stream_type) is str else "REALTIME",
        fields=FrozenFields.wrap(obj),
    )
