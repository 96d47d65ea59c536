"""What a decoded frame may hold, field by field: value conversions, drift reporting, kinds.

Part of the decoder (:mod:`engine.wire.decode` has the theory of operation). This module holds the
vocabulary the others share and nothing that runs per frame on the common path:

- the value conversions (``_to_float``, ``_to_decimal``) and the names of JSON types used in
  error messages;
- drift: the :class:`DriftSink` protocol, :class:`DriftCounter`, and :data:`FRAME_PROBLEMS`, the
  reasons a whole frame cannot be decoded;
- field kinds (:class:`_Kind`: which JSON types a model field accepts and how each converts) and
  :func:`_fields_of`, which reads a model's wire fields and their kinds from its annotations.
"""

from __future__ import annotations

import math
import types
import typing
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any, Final, Protocol

import attrs

from engine.errors import ProtocolError
from engine.wire.messages import MyOrder, Orderbook, Ticker

_NONE_TYPE: Final = type(None)
_MISSING: Final = object()


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _to_float(value: float | Decimal) -> float:
    try:
        result = float(value)
    except OverflowError:  # an integer from the exact parser, beyond any double
        result = math.inf
    if not math.isfinite(result):
        raise ProtocolError(f"number {_short(value)} is out of the range of a double")
    return result


def _to_decimal(value: int | str | Decimal) -> Decimal:
    # Upbit's REST API sends money as strings; accept that spelling here too.
    try:
        result = Decimal(value)
    except InvalidOperation:
        raise ProtocolError(f"{_short(value)} is not a decimal number") from None
    if not result.is_finite():
        raise ProtocolError(f"{_short(value)} is not a finite decimal number")
    return result


def _json_type_name(value_type: type) -> str:
    names = {
        dict: "an object",
        list: "a list",
        str: "a string",
        int: "an integer",
        float: "a number with a fraction",
        Decimal: "a number with a fraction",
        bool: "a boolean",
        _NONE_TYPE: "null",
    }
    return names.get(value_type, value_type.__name__)


# ----------------------------------------------------------------------------------------------
# Drift: fields the models hold as None (or their default) because the frame departed from them


class DriftSink(Protocol):
    """Told about every field a decoded frame did not carry as the model expects."""

    def field_drift(self, data_type: str, field: str, problem: str) -> None:
        """``field`` (a DEFAULT name; ``orderbook_units.ask_size`` for nested ones) of a
        ``data_type`` frame was ``missing``, ``null``, or of an unreadable ``type``."""


class DriftCounter:
    """A :class:`DriftSink` that counts: per ``(data type, field)``, and per problem."""

    __slots__ = ("fields", "problems", "total")

    def __init__(self) -> None:
        self.fields: dict[tuple[str, str], int] = {}
        self.problems: dict[str, int] = {}
        self.total = 0

    def field_drift(self, data_type: str, field: str, problem: str) -> None:
        key = (data_type, field)
        self.fields[key] = self.fields.get(key, 0) + 1
        self.problems[problem] = self.problems.get(problem, 0) + 1
        self.total += 1


class _IgnoreDrift:
    __slots__ = ()

    def field_drift(self, data_type: str, field: str, problem: str) -> None:
        return None


_IGNORE: Final = _IgnoreDrift()

#: Why a whole frame could not be decoded (``ProtocolError.reason``).
FRAME_PROBLEMS: Final = (
    "not_json",  # not UTF-8 JSON at all
    "not_object",  # JSON, but not an object or an array of objects
    "bad_type",  # a "type"/"ty" that is not a string
    "identity",  # a known type without a readable code (or a trade without sequential_id)
    "unknown_status",  # {"status": ...} other than "UP"
    "unknown_shape",  # an object with no type and no known reply key
    "bad_reply",  # a malformed error frame or LIST_SUBSCRIPTIONS reply
)

# Fields Upbit documents as absent or null in normal operation: no drift when they are.
_USUALLY_ABSENT: Final[Mapping[type, frozenset[str]]] = {
    Ticker: frozenset({"is_trading_suspended", "delisting_date", "market_warning"}),
    Orderbook: frozenset({"level"}),
    MyOrder: frozenset(
        {
            "trade_uuid",
            "price",
            "avg_price",
            "volume",
            "remaining_volume",
            "time_in_force",
            "trade_fee",
            "is_maker",
            "identifier",
            "smp_type",
            "prevented_volume",
            "prevented_locked",
            "trade_timestamp",
        }
    ),
}

# ----------------------------------------------------------------------------------------------
# Field kinds

#: Converts one accepted value (a nested list, a Decimal); raises ProtocolError if it cannot.
_Converter = Callable[[Any, DriftSink], object]
#: Decodes one JSON object (a dict) into a model.
_Decoder = Callable[[Any, DriftSink], Any]


@attrs.frozen
class _Kind:
    """What one model field accepts on the wire, and how each accepted type is converted.

    ``null`` is never "accepted": the decoder stores the field's default for it, and counts it
    as drift unless the field is usually absent."""

    description: str
    accepted: frozenset[type]
    converters: Mapping[type, _Converter]


def _scalar(convert: Callable[[Any], object]) -> _Converter:
    def converter(value: Any, sink: DriftSink) -> object:
        return convert(value)

    return converter


def _constant(value: object) -> _Converter:
    def converter(_: Any, sink: DriftSink) -> object:
        return value

    return converter


def _iso_date(value: dict[str, Any]) -> str:
    # Upbit's official SDK types the ticker's delisting_date as {year, month, day}
    # (docs/UPBIT.md#drift-history); the documented wire form is "yyyy-MM-dd".
    parts = [value.get(name) for name in ("year", "month", "day")]
    if not all(type(part) is int for part in parts):
        raise ProtocolError(f"date object {_short(value)} lacks integer year, month and day")
    year, month, day = parts
    return f"{year:04d}-{month:02d}-{day:02d}"


# An int stays an int in a float field: PEP 484 accepts int where float is declared, equality
# and hashing agree, and converting every integral price of a SIMPLE orderbook would cost a
# quarter of its decode time. Decimals only come from the exact parser and become floats.
_FLOAT_KIND: Final = _Kind(
    "a number", frozenset({float, int, Decimal}), {Decimal: _scalar(_to_float)}
)
_INT_KIND: Final = _Kind("an integer", frozenset({int}), {})
_STR_KIND: Final = _Kind("a string", frozenset({str}), {})
_BOOL_KIND: Final = _Kind("true or false", frozenset({bool}), {})
_DECIMAL_KIND: Final = _Kind(
    "a decimal number",
    frozenset({Decimal, int, str}),
    {int: _scalar(_to_decimal), str: _scalar(_to_decimal)},
)
_DATE_KIND: Final = _Kind(
    "a date string or {year, month, day}", frozenset({str, dict}), {dict: _scalar(_iso_date)}
)
_SCALAR_KINDS: Final[Mapping[object, _Kind]] = {
    float: _FLOAT_KIND,
    int: _INT_KIND,
    str: _STR_KIND,
    bool: _BOOL_KIND,
    Decimal: _DECIMAL_KIND,
}


@attrs.frozen
class _Field:
    name: str
    key: str
    kind: _Kind
    #: The value stored when the frame lacks the field or its value is unreadable.
    default: object
    #: Identity: a frame without it (readable) cannot be decoded at all.
    required: bool
    #: Absent or null in normal operation: not counted as drift.
    usual: bool


def _fields_of(
    cls: type[Any], keys: Mapping[str, str], nested: Mapping[str, _Kind]
) -> tuple[_Field, ...]:
    """Wire fields of ``cls`` in constructor order, with kinds derived from its annotations."""
    attrs.resolve_types(cls)
    usual = _USUALLY_ABSENT.get(cls, frozenset())
    fields: list[_Field] = []
    for attribute in attrs.fields(cls):
        if attribute.name == "extra":
            continue
        declared = attribute.type
        options = typing.get_args(declared) if isinstance(declared, types.UnionType) else ()
        if attribute.name in nested:
            kind = nested[attribute.name]
        elif attribute.name == "delisting_date":
            kind = _DATE_KIND
        else:
            inner = next((opt for opt in options if opt is not _NONE_TYPE), declared)
            kind = _SCALAR_KINDS[inner]
        required = attribute.default is attrs.NOTHING
        default = None if required else attribute.default
        fields.append(
            _Field(
                attribute.name,
                keys[attribute.name],
                kind,
                default,
                required,
                attribute.name in usual,
            )
        )
    return tuple(fields)
