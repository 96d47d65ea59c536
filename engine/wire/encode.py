"""Encoding models back into Upbit's wire shapes: what a server sends (the emulator, tests).

The per-type key lists come from the model's attrs fields and :mod:`engine.wire.keys`, the same
tables the decoder uses, so an encoded frame always decodes back to an equal model.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from operator import attrgetter
from typing import Any, Final, Literal, TypeAlias

import attrs
import orjson

from engine.wire import keys as wire_keys
from engine.wire.messages import (
    AssetBalance,
    Candle,
    ErrorReply,
    Message,
    MyAsset,
    MyOrder,
    Orderbook,
    OrderbookUnit,
    Reply,
    StatusUp,
    SubscriptionEntry,
    SubscriptionList,
    Ticker,
    Trade,
)

__all__ = ("FORMATS", "LIST_FORMATS", "Format", "encode_frame", "encode_message")

Format: TypeAlias = Literal["DEFAULT", "SIMPLE", "JSON_LIST", "SIMPLE_LIST"]
"""A connection's response format (docs/UPBIT.md, Request format): full or abbreviated keys,
one object per frame or a JSON array per frame."""

FORMATS: Final[tuple[Format, ...]] = ("DEFAULT", "SIMPLE", "JSON_LIST", "SIMPLE_LIST")
LIST_FORMATS: Final[frozenset[Format]] = frozenset({"JSON_LIST", "SIMPLE_LIST"})
_SIMPLE_FORMATS: Final[frozenset[Format]] = frozenset({"SIMPLE", "SIMPLE_LIST"})

#: Deprecated ticker fields: once ``None`` they are left out, as Upbit will leave them out.
_OMITTED_WHEN_NONE: Final = frozenset({"is_trading_suspended", "market_warning"})

_Encoder = Callable[[Any], dict[str, object]]


def _record_encoder(
    cls: type[Any],
    keys: Mapping[str, str],
    nested: Mapping[str, Callable[[Any], object]] | None = None,
) -> _Encoder:
    names = tuple(field.name for field in attrs.fields(cls) if field.name != "extra")
    wire = tuple(keys[name] for name in names)
    keeps_extra = len(names) != len(attrs.fields(cls))
    getter = attrgetter(*names)
    children = tuple((keys[name], encode) for name, encode in (nested or {}).items())
    omissible = tuple(keys[name] for name in names if name in _OMITTED_WHEN_NONE)

    def encode(msg: Any) -> dict[str, object]:
        out: dict[str, object] = dict(zip(wire, getter(msg), strict=True))
        for key, child in children:
            out[key] = child(out[key])
        for key in omissible:
            if out[key] is None:
                del out[key]
        if keeps_extra and msg.extra:
            # Keys a decoded frame carried beyond the model go back as they came.
            for key, value in msg.extra.items():
                out.setdefault(key, value)
        return out

    return encode


def _list_of(item: _Encoder) -> Callable[[Any], object]:
    def encode(items: Sequence[Any]) -> object:
        return [item(entry) for entry in items]

    return encode


def _entry_encoder(keys: Mapping[str, str]) -> _Encoder:
    def encode(entry: SubscriptionEntry) -> dict[str, object]:
        out: dict[str, object] = {keys["type"]: entry.type}
        if entry.codes is not None:
            out[keys["codes"]] = list(entry.codes)
        if entry.level is not None:
            out[keys["level"]] = entry.level
        return out

    return encode


def _encoders_for(simple: bool) -> dict[type, _Encoder]:
    def keys(table: Mapping[str, str]) -> Mapping[str, str]:
        return table if simple else {name: name for name in table}

    tables = wire_keys.DEFAULT_TO_SIMPLE
    unit = _record_encoder(OrderbookUnit, keys(wire_keys.ORDERBOOK_UNIT_KEYS))
    asset = _record_encoder(AssetBalance, keys(wire_keys.ASSET_KEYS))
    entry = _entry_encoder(keys(wire_keys.SUBSCRIPTION_ENTRY_KEYS))
    return {
        Ticker: _record_encoder(Ticker, keys(tables["ticker"])),
        Trade: _record_encoder(Trade, keys(tables["trade"])),
        Orderbook: _record_encoder(
            Orderbook, keys(tables["orderbook"]), {"orderbook_units": _list_of(unit)}
        ),
        Candle: _record_encoder(Candle, keys(tables["candle.1m"])),
        MyOrder: _record_encoder(MyOrder, keys(tables["myOrder"])),
        MyAsset: _record_encoder(MyAsset, keys(tables["myAsset"]), {"assets": _list_of(asset)}),
        SubscriptionList: _record_encoder(
            SubscriptionList,
            keys(wire_keys.LIST_SUBSCRIPTIONS_KEYS),
            {"result": _list_of(entry)},
        ),
        # Upbit documents one spelling of these two, whatever the format.
        StatusUp: lambda msg: {"status": "UP"},
        ErrorReply: lambda msg: {"error": {"name": msg.name, "message": msg.message}},
    }


_DEFAULT_ENCODERS: Final = _encoders_for(simple=False)
_SIMPLE_ENCODERS: Final = _encoders_for(simple=True)


def _check_format(format: object) -> None:
    if format not in FORMATS:
        raise ValueError(f"unknown format {format!r}: use one of {', '.join(FORMATS)}")


def encode_message(msg: Message | Reply, format: Format = "DEFAULT") -> dict[str, object]:
    """The JSON object Upbit would send for ``msg`` in ``format`` (SIMPLE keys for the SIMPLE
    formats). For a ``*_LIST`` format this is one element of the array; see :func:`encode_frame`.

    Money on private models stays :class:`~decimal.Decimal` in the result, so nothing is rounded;
    :func:`encode_frame` writes those as JSON numbers.
    """
    _check_format(format)
    table = _SIMPLE_ENCODERS if format in _SIMPLE_FORMATS else _DEFAULT_ENCODERS
    encoder = table.get(type(msg))
    if encoder is None:
        raise TypeError(f"cannot encode {type(msg).__name__}: not a model of engine.wire.messages")
    return encoder(msg)


def _decimal_as_number(value: object) -> orjson.Fragment:
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"{value} cannot be written as a JSON number")
        return orjson.Fragment(str(value))
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def encode_frame(
    msg: Message | Reply | Sequence[Message | Reply], format: Format = "DEFAULT"
) -> bytes:
    """The bytes of the frame a server sends for ``msg`` in ``format``.

    ``*_LIST`` formats wrap the object(s) in a JSON array; a sequence of messages needs one of
    those formats. Decimal money is written as exact JSON numbers.
    """
    _check_format(format)
    if isinstance(msg, Sequence):
        if format not in LIST_FORMATS:
            raise ValueError(f"several messages need JSON_LIST or SIMPLE_LIST, not {format}")
        payload: object = [encode_message(item, format) for item in msg]
    elif format in LIST_FORMATS:
        payload = [encode_message(msg, format)]
    else:
        payload = encode_message(msg, format)
    return orjson.dumps(payload, default=_decimal_as_number)
