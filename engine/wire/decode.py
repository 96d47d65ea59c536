"""Decoding server frames into the models of :mod:`engine.wire.messages` (the engine's hot path).

Theory of operation. ``decode_frame`` parses with orjson, then dispatches on the ``type`` value
(DEFAULT keys) or the ``ty`` value (SIMPLE keys) through a dict of per-type decoders; objects
without either are replies (status, error, LIST_SUBSCRIPTIONS). Each decoder is generated once at
import from the model's attrs fields and the key tables of :mod:`engine.wire.keys`:

1. one C-level ``itemgetter`` pulls every field out of the dict in constructor order. A missing
   key switches to the getter of that frame shape (which optional keys are absent, filled with
   their defaults), kept for the next frames, or names the missing required fields;
2. the list of the values' *types* is compared with the signature accepted last, then looked up
   in a small cache of signatures already checked; only a new signature is validated field by
   field. Frames of one stream nearly always share a signature, so validation costs one list of
   types and one comparison;
3. the cached plan lists the few conversions that signature needs (a nested list of units,
   Decimals from the exact parser), then the model is built from the values in one call.

Building the models is most of the remaining cost; ``_maker`` makes it cheaper.

Private frames (``myOrder``/``myAsset``) are re-parsed with the standard library's ``json`` and
``parse_float=Decimal``, so money keeps every digit; market data never pays for that.

The modules, by idea (this one holds the entry points, the per-type tables and the dispatch):

- :mod:`engine.wire._decode_fields`: value conversions, drift (:class:`DriftSink`,
  :class:`DriftCounter`, :data:`FRAME_PROBLEMS`), field kinds and a model's wire fields;
- :mod:`engine.wire._decode_models`: the decoder of one model (steps 1 to 3 and ``_maker``);
- :mod:`engine.wire._decode_nested`: the lists inside frames (orderbook units, asset balances);
- :mod:`engine.wire._decode_replies`: replies, 2018-era frames and unmodelled types.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Final

import orjson

from engine.errors import ProtocolError
from engine.wire import keys as wire_keys
from engine.wire._decode_fields import (
    _IGNORE,
    FRAME_PROBLEMS,
    DriftCounter,
    DriftSink,
    _Decoder,
    _fields_of,
    _json_type_name,
    _Kind,
    _short,
)
from engine.wire._decode_fields import _to_float as _to_float
from engine.wire._decode_models import _SIGNATURE_CACHE_SIZE as _SIGNATURE_CACHE_SIZE
from engine.wire._decode_models import _maker, _model_decoder
from engine.wire._decode_nested import _items_decoder, _units_decoder
from engine.wire._decode_replies import _legacy, _reply, _unknown
from engine.wire.messages import (
    AssetBalance,
    Candle,
    Message,
    MyAsset,
    MyOrder,
    Orderbook,
    OrderbookUnit,
    Reply,
    Ticker,
    Trade,
    UnknownMessage,
)

__all__ = (
    "FRAME_PROBLEMS",
    "PRIVATE_TYPES",
    "Decoded",
    "DriftCounter",
    "DriftSink",
    "decode_frame",
    "decode_reporting",
)
# Also reached through this module by the tests: _maker and _decoders_for (patched and called
# together, which is why the tables look _maker up here), _to_float and _SIGNATURE_CACHE_SIZE
# (hence their ``as`` imports).

Decoded = Message | Reply | UnknownMessage | list[Message | Reply | UnknownMessage]

PRIVATE_TYPES: Final = ("myOrder", "myAsset")


class _NeedsExactParse(Exception):
    """Raised inside the fast path when a private frame needs its Decimal re-parse."""


# ----------------------------------------------------------------------------------------------
# Per-type decoders


def _decoders_for(simple: bool) -> dict[str, _Decoder]:
    """Per-type decoders for DEFAULT keys (``simple=False``) or SIMPLE keys.

    The models are built by ``_maker``'s classes, looked up here when the tables are made."""
    style = "SIMPLE" if simple else "DEFAULT"

    def keys(table: Mapping[str, str]) -> Mapping[str, str]:
        return table if simple else {name: name for name in table}

    def top(data_type: str) -> Mapping[str, str]:
        return keys(wire_keys.DEFAULT_TO_SIMPLE[data_type])

    def model(cls: type[Any], data_type: str, nested: Mapping[str, _Kind]) -> _Decoder:
        fields = _fields_of(cls, top(data_type), nested)
        label = f"{data_type.partition('.')[0]} frame ({style} keys)"
        return _model_decoder(cls, fields, label, _maker(cls))

    units_kind = _Kind(
        "a list of orderbook units",
        frozenset({list}),
        {list: _units_decoder(keys(wire_keys.ORDERBOOK_UNIT_KEYS), _maker(OrderbookUnit))},
    )
    asset_item = _model_decoder(
        AssetBalance,
        _fields_of(AssetBalance, keys(wire_keys.ASSET_KEYS), {}),
        "asset balance",
        _maker(AssetBalance),
        nested_in="myAsset:assets",
    )
    assets_kind = _Kind(
        "a list of asset balances",
        frozenset({list}),
        {list: _items_decoder(asset_item, "myAsset", "assets")},
    )
    candle = model(Candle, "candle.1m", {})
    return {
        "ticker": model(Ticker, "ticker", {}),
        "trade": model(Trade, "trade", {}),
        "orderbook": model(Orderbook, "orderbook", {"orderbook_units": units_kind}),
        **dict.fromkeys(wire_keys.CANDLE_TYPES, candle),
        "myOrder": model(MyOrder, "myOrder", {}),
        "myAsset": model(MyAsset, "myAsset", {"assets": assets_kind}),
    }


def _needs_exact_parse(obj: Any, sink: DriftSink) -> Any:
    raise _NeedsExactParse


# Exact tables: every type. Fast tables: private types trigger the Decimal re-parse instead.
_EXACT_DEFAULT: Final = _decoders_for(simple=False)
_EXACT_SIMPLE: Final = _decoders_for(simple=True)
_FAST_DEFAULT: Final = {**_EXACT_DEFAULT, **dict.fromkeys(PRIVATE_TYPES, _needs_exact_parse)}
_FAST_SIMPLE: Final = {**_EXACT_SIMPLE, **dict.fromkeys(PRIVATE_TYPES, _needs_exact_parse)}


# ----------------------------------------------------------------------------------------------
# Dispatch


def _decode_object(
    obj: Any, default: Mapping[str, _Decoder], simple: Mapping[str, _Decoder], sink: DriftSink
) -> Message | Reply | UnknownMessage:
    if type(obj) is not dict:
        raise ProtocolError(
            f"expected a JSON object, got {_json_type_name(type(obj))}", reason="not_object"
        )
    data_type = obj.get("type")
    table = default
    if data_type is None:
        data_type = obj.get("ty")
        table = simple
        if data_type is None:
            legacy = _legacy(obj, default, simple)
            if legacy is None:
                return _reply(obj)
            legacy_type, renamed, legacy_decoder = legacy
            sink.field_drift(legacy_type, "type", "missing")
            legacy_result: Message = legacy_decoder(renamed, sink)
            return legacy_result
    if type(data_type) is not str:
        raise ProtocolError(f"message type {_short(data_type)} is not a string", reason="bad_type")
    decoder = table.get(data_type)
    if decoder is None:
        return _unknown(obj, data_type)
    result: Message = decoder(obj, sink)
    return result


_INT_RANGE: Final = range(-(2**63), 2**64)


def _exact_int(text: str) -> int | Decimal:
    # As orjson reads the same frame: an integer beyond 64 bits is no integer (a float there,
    # a Decimal here, which float fields convert and integer fields refuse alike).
    value = int(text)
    return value if value in _INT_RANGE else Decimal(text)


def _decode_exact(data: bytes | bytearray | memoryview | str, sink: DriftSink) -> Decoded:
    """Parse with Decimal numbers: private frames (money keeps every digit), and frames orjson
    refused for a number beyond a double (``1e400``), which then drifts to None alone."""
    try:
        text = data if isinstance(data, str) else bytes(data).decode("utf-8")
        parsed = json.loads(text, parse_float=Decimal, parse_int=_exact_int)
    except (ValueError, RecursionError, TypeError) as exc:
        raise ProtocolError(f"frame is not valid UTF-8 JSON: {exc}", reason="not_json") from None
    if type(parsed) is list:
        return [_decode_object(item, _EXACT_DEFAULT, _EXACT_SIMPLE, sink) for item in parsed]
    return _decode_object(parsed, _EXACT_DEFAULT, _EXACT_SIMPLE, sink)


def decode_frame(data: bytes | str, *, drift: DriftSink | None = None) -> Decoded:
    """Decode one server frame (binary UTF-8 or text) into typed models.

    DEFAULT and SIMPLE keys are told apart by ``type`` versus ``ty``. A ``JSON_LIST`` or
    ``SIMPLE_LIST`` frame (a JSON array) gives a list. Replies decode to :class:`StatusUp`,
    :class:`ErrorReply` or :class:`SubscriptionList`; a data frame of a type the library does not
    model, to :class:`~engine.wire.messages.UnknownMessage`.

    The reader is tolerant (docs/UPBIT.md#drift-history): a frame decodes as long as its type and
    identity are readable (``code``; a trade's ``sequential_id``). Any other field that is
    missing, null or of an unreadable type becomes ``None`` (or its default) and is reported to
    ``drift`` (for example a :class:`DriftCounter`); unknown keys are kept in ``extra``.

    Raises :class:`~engine.errors.ProtocolError`, and nothing else, for a frame that cannot be
    decoded at all; its ``reason`` is one of :data:`FRAME_PROBLEMS` and its message names the
    problem.
    """
    return decode_reporting(data, _IGNORE if drift is None else drift)


def decode_reporting(data: bytes | str, sink: DriftSink) -> Decoded:
    """:func:`decode_frame` with a drift sink, positional: the receive loops' hot path."""
    try:
        parsed = orjson.loads(data)
    except orjson.JSONDecodeError as exc:  # also raised for input that is not bytes or str
        if "infinity" in str(exc):  # a number beyond a double: valid JSON all the same
            return _decode_exact(data, sink)
        raise ProtocolError(f"frame is not valid UTF-8 JSON: {exc}", reason="not_json") from None
    try:
        if type(parsed) is dict:
            # The common case, inlined from _decode_object: one frame holding one data object.
            data_type = parsed.get("type")
            table = _FAST_DEFAULT
            if data_type is None:
                data_type = parsed.get("ty")
                table = _FAST_SIMPLE
            if type(data_type) is str:
                decoder = table.get(data_type)
                if decoder is not None:
                    result: Message = decoder(parsed, sink)
                    return result
            return _decode_object(parsed, _FAST_DEFAULT, _FAST_SIMPLE, sink)
        if type(parsed) is list:
            return [_decode_object(item, _FAST_DEFAULT, _FAST_SIMPLE, sink) for item in parsed]
    except _NeedsExactParse:
        return _decode_exact(data, sink)
    raise ProtocolError(
        f"a frame is a JSON object or array, not {_json_type_name(type(parsed))}",
        reason="not_object",
    )
