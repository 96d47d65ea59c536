"""Decoding server frames into the models of :mod:`engine.messages` (the engine's hot path).

Theory of operation. ``decode_frame`` parses with orjson, then dispatches on the ``type`` value
(DEFAULT keys) or the ``ty`` value (SIMPLE keys) through a dict of per-type decoders; objects
without either are replies (status, error, LIST_SUBSCRIPTIONS). Each decoder is generated once at
import from the model's attrs fields and the key tables of :mod:`engine.wire_keys`:

1. one C-level ``itemgetter`` pulls every field out of the dict in constructor order. A missing
   key switches to the getter of that frame shape (which optional keys are absent, filled with
   their defaults), kept for the next frames, or names the missing required fields;
2. the list of the values' *types* is compared with the signature accepted last, then looked up
   in a small cache of signatures already checked; only a new signature is validated field by
   field. Frames of one stream nearly always share a signature, so validation costs one list of
   types and one comparison;
3. the cached plan lists the few conversions that signature needs (a nested list of units,
   Decimals from the exact parser), then the model is built from the values in one call.

Building the models is most of the remaining cost; :func:`_maker` makes it cheaper.

Private frames (``myOrder``/``myAsset``) are re-parsed with the standard library's ``json`` and
``parse_float=Decimal``, so money keeps every digit; market data never pays for that.
"""

from __future__ import annotations

import json
import math
import types
import typing
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from itertools import chain, repeat, starmap
from operator import itemgetter
from typing import Any, Final, Protocol

import attrs
import orjson

from engine import wire_keys
from engine.errors import ProtocolError
from engine.messages import (
    AssetBalance,
    Candle,
    ErrorReply,
    FrozenFields,
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

Decoded = Message | Reply | UnknownMessage | list[Message | Reply | UnknownMessage]

PRIVATE_TYPES: Final = ("myOrder", "myAsset")

_NONE_TYPE: Final = type(None)
_MISSING: Final = object()
#: Signatures cached per decoder; more than this many distinct shapes means hostile input, and
#: those are then validated every time instead of growing memory.
_SIGNATURE_CACHE_SIZE: Final = 64


def _maker(cls: type[Any]) -> type[Any]:
    """The class whose constructor builds ``cls`` instances fastest; relabel them as ``cls``.

    attrs' frozen ``__init__`` stores each field through ``object.__setattr__``, one C call per
    field, which made construction over half of all decode time. A mutable twin class with the
    same slots (and defaults) stores the values with plain attribute assignment; setting the
    finished object's ``__class__`` to ``cls`` then gives exactly the object ``cls(*values)``
    would. CPython allows that because the memory layouts are identical (why the models have no
    ``__weakref__`` slot). Where an interpreter refuses, ``cls`` itself is returned: use it as
    is, without relabelling.
    """
    fields = attrs.fields(cls)
    twin = attrs.make_class(
        f"_{cls.__name__}Maker",
        {
            field.name: attrs.field(default=field.default)
            if field.default is not attrs.NOTHING
            else attrs.field()
            for field in fields
        },
        slots=True,
        weakref_slot=False,
        eq=False,
        order=False,
        repr=False,
    )
    probe = tuple(range(len(fields)))
    try:
        made = twin(*probe)
        made.__class__ = cls
    except TypeError:
        return cls
    return twin if made == cls(*probe) and type(made) is cls else cls


class _NeedsExactParse(Exception):
    """Raised inside the fast path when a private frame needs its Decimal re-parse."""


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

_Converter = Callable[[Any, DriftSink], object]


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


_Decoder = Callable[[Any, DriftSink], Any]


def _tuple_getter(keys: Sequence[str]) -> Callable[[Any], tuple[object, ...]]:
    """``itemgetter`` that always returns a tuple (its one-key form returns the bare value)."""
    if len(keys) >= 2:
        return itemgetter(*keys)
    if len(keys) == 1:
        (only,) = keys
        return lambda obj: (obj[only],)
    return lambda obj: ()


@attrs.frozen
class _Layout:
    """How to read one shape of frame: which optional keys it lacks, and their defaults."""

    getter: Callable[[Any], tuple[object, ...]]
    absent: tuple[str, ...]
    defaults: tuple[tuple[int, object], ...]
    #: How many keys a frame of this shape has when it carries no unknown key.
    present: int
    #: Absent fields that count as drift.
    drifted: tuple[str, ...]
    #: Indexes of the absent fields (their defaults are no drift of the plan's).
    filled: frozenset[int]


#: A plan for one signature: the conversions it needs, and the drift it reports.
_Plan = tuple[tuple[tuple[int, _Converter], ...], tuple[tuple[str, str], ...]]
_NO_PLAN: Final[_Plan] = ((), ())


class _Cursor:
    """The mutable state of one decoder: the layout and the signature seen last, compared
    before any hashing because consecutive frames of a stream share them."""

    __slots__ = ("layout", "plan", "signature")

    def __init__(self, layout: _Layout) -> None:
        self.layout = layout
        self.signature: list[type] = []
        self.plan: _Plan = _NO_PLAN


def _constant(value: object) -> _Converter:
    def converter(_: Any, sink: DriftSink) -> object:
        return value

    return converter


def _model_decoder(
    cls: type[Any], fields: Sequence[_Field], label: str, *, nested_in: str | None = None
) -> _Decoder:
    """A function turning one JSON object (a dict) into an instance of ``cls``.

    ``nested_in`` names the parent type of an entry model (``AssetBalance`` inside ``myAsset``):
    its drift is reported as that type's ``<list field>.<field>``."""
    keys = tuple(field.key for field in fields)
    names = tuple(
        field.name if nested_in is None else f"{nested_in.partition(':')[2]}.{field.name}"
        for field in fields
    )
    parent_type = None if nested_in is None else nested_in.partition(":")[0]
    defaults = tuple(field.default for field in fields)
    known = frozenset(keys)
    keeps_extra = any(attribute.name == "extra" for attribute in attrs.fields(cls))
    maker = _maker(cls)
    relabel = maker is not cls
    signatures: dict[tuple[tuple[str, ...], tuple[type, ...]], _Plan] = {}
    optional = tuple((index, field) for index, field in enumerate(fields) if not field.required)
    layouts: dict[tuple[str, ...], _Layout] = {}

    def layout_for(absent: tuple[str, ...]) -> _Layout:
        layout = layouts.get(absent)
        if layout is None:
            layout = _Layout(
                _tuple_getter([key for key in keys if key not in absent]),
                absent,
                tuple((index, field.default) for index, field in optional if field.key in absent),
                len(keys) - len(absent),
                tuple(
                    names[index]
                    for index, field in optional
                    if field.key in absent and not field.usual
                ),
                frozenset(index for index, field in optional if field.key in absent),
            )
            if len(layouts) < _SIGNATURE_CACHE_SIZE:
                layouts[absent] = layout
        return layout

    cursor = _Cursor(layout_for(()))

    def missing_identity(obj: dict[str, Any]) -> ProtocolError:
        missing = [
            repr(field.key) if field.key == field.name else f"{field.key!r} ({field.name})"
            for field in fields
            if field.required and field.key not in obj
        ]
        return ProtocolError(f"{label} lacks {', '.join(missing)}", reason="identity")

    def read(obj: dict[str, Any], layout: _Layout) -> tuple[object, ...] | list[object]:
        values = layout.getter(obj)
        if not layout.defaults:
            return values
        filled = list(values)
        for index, default in layout.defaults:  # ascending, so each lands at its final index
            filled.insert(index, default)
        return filled

    def relayout(obj: dict[str, Any]) -> tuple[object, ...] | list[object]:
        layout = layout_for(tuple([field.key for _, field in optional if field.key not in obj]))
        try:
            values = read(obj, layout)
        except KeyError:
            raise missing_identity(obj) from None
        if layout is not cursor.layout:
            cursor.layout = layout
            cursor.signature = []  # plans are per layout
        return values

    def plan_for(layout: _Layout, signature: tuple[type, ...]) -> _Plan:
        problems: list[str] = []
        conversions: list[tuple[int, _Converter]] = []
        drifted: list[tuple[str, str]] = []
        for index, (field, value_type) in enumerate(zip(fields, signature, strict=True)):
            kind = field.kind
            if index in layout.filled:
                continue  # the layout's default, already reported as missing
            if value_type in kind.accepted:
                converter = kind.converters.get(value_type)
                if converter is not None:
                    conversions.append((index, converter))
            elif field.required:
                problems.append(
                    f"{field.key!r} must be {kind.description}, not {_json_type_name(value_type)}"
                )
            elif value_type is _NONE_TYPE:
                if field.default is not None:
                    conversions.append((index, _constant(field.default)))
                if not field.usual:
                    drifted.append((names[index], "null"))
            else:
                conversions.append((index, _constant(field.default)))
                drifted.append((names[index], "type"))
        if problems:
            raise ProtocolError(f"{label}: " + "; ".join(problems), reason="identity")
        missing = [(name, "missing") for name in layout.drifted]
        plan: _Plan = (tuple(conversions), (*missing, *drifted))
        if plan == _NO_PLAN:
            plan = _NO_PLAN  # the identity the fast path checks
        if len(signatures) < _SIGNATURE_CACHE_SIZE:
            signatures[(layout.absent, signature)] = plan
        return plan

    def reshape(obj: dict[str, Any], values: Any) -> tuple[Any, dict[str, Any] | None]:
        """A frame with more keys than its layout reads: an absent key is back, or keys the
        model does not know (kept in ``extra``)."""
        layout = cursor.layout
        if any(key in obj for key in layout.absent):
            values = relayout(obj)
            layout = cursor.layout
        if len(obj) == layout.present:
            return values, None
        return values, {key: value for key, value in obj.items() if key not in known}

    def decode(obj: Any, sink: DriftSink) -> Any:
        layout = cursor.layout
        try:
            values = read(obj, layout) if layout.absent else layout.getter(obj)
        except KeyError:
            values = relayout(obj)
            layout = cursor.layout
        extra = None
        if len(obj) != layout.present:
            values, extra = reshape(obj, values)
            layout = cursor.layout
        signature = list(map(type, values))
        if signature == cursor.signature:
            plan = cursor.plan
        else:
            key = tuple(signature)
            cached = signatures.get((layout.absent, key))
            plan = plan_for(layout, key) if cached is None else cached
            cursor.signature, cursor.plan = signature, plan
        if plan is _NO_PLAN and extra is None:
            model = maker(*values)  # the common case: every field as modelled
        else:
            model = finish(values, plan, extra, sink)
        if relabel:
            model.__class__ = cls
        return model

    def finish(values: Any, plan: _Plan, extra: dict[str, Any] | None, sink: DriftSink) -> Any:
        """Conversions, drift reports and unknown keys: whatever the common case lacks."""
        conversions, drifted = plan
        if conversions:
            converted = list(values)
            for index, converter in conversions:
                try:
                    converted[index] = converter(converted[index], sink)
                except ProtocolError:
                    converted[index] = defaults[index]
                    drifted += ((names[index], "type"),)
            values = converted
        if drifted:
            data_type = values[0] if parent_type is None else parent_type
            for name, problem in drifted:
                sink.field_drift(data_type, name, problem)
        if extra and keeps_extra:
            return maker(*values, FrozenFields.wrap(extra))
        return maker(*values)

    return decode


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


def _units_decoder(keys: Mapping[str, str]) -> _Converter:
    """Orderbook units: the bulk of the largest frames, so they get a vectorised path."""
    names = tuple(field.name for field in attrs.fields(OrderbookUnit))
    wire = tuple(keys[name] for name in names)
    getter = itemgetter(*wire)
    width = len(wire)
    maker = _maker(OrderbookUnit)
    relabel = maker is not OrderbookUnit
    class_attribute, as_unit = repeat("__class__"), repeat(OrderbookUnit)

    def build_all(rows: Iterable[Sequence[object]]) -> tuple[OrderbookUnit, ...]:
        built: tuple[OrderbookUnit, ...] = tuple(starmap(maker, rows))
        if relabel:
            deque(map(setattr, built, class_attribute, as_unit), maxlen=0)
        return built

    ints_and_floats = frozenset({float, int})
    accepted_last = _Cursor(_Layout(getter, (), (), width, (), frozenset()))

    def tolerant(units: list[Any], sink: DriftSink) -> tuple[OrderbookUnit, ...]:
        """Row by row: a value that is not a number becomes None, a row that is not an object
        is left out; each counts as drift."""
        rows: list[list[object]] = []
        for unit in units:
            if type(unit) is not dict:
                sink.field_drift("orderbook", "orderbook_units", "type")
                continue
            row: list[object] = []
            for name, key in zip(names, wire, strict=True):
                value = unit.get(key, _MISSING)
                value_type = type(value)
                if value_type is float or value_type is int:
                    row.append(value)
                    continue
                problem = "missing" if value is _MISSING else "null" if value is None else "type"
                if value_type is Decimal:
                    try:
                        row.append(_to_float(value))
                        continue
                    except ProtocolError:
                        pass
                row.append(None)
                sink.field_drift("orderbook", f"orderbook_units.{name}", problem)
            rows.append(row)
        return build_all(rows)

    def decode(units: list[Any], sink: DriftSink) -> tuple[object, ...]:
        try:
            rows = list(map(getter, units))
        except (KeyError, TypeError):
            return tolerant(units, sink)
        value_types = list(map(type, chain.from_iterable(rows)))
        # Books of one stream repeat the same types level after level, frame after frame.
        if value_types == accepted_last.signature:
            return build_all(rows)
        if set(value_types) <= ints_and_floats:
            accepted_last.signature = value_types
            return build_all(rows)
        return tolerant(units, sink)

    return decode


def _items_decoder(item: _Decoder, data_type: str, field: str) -> _Converter:
    def decode(items: list[Any], sink: DriftSink) -> tuple[object, ...]:
        decoded = []
        for entry in items:
            if type(entry) is not dict:
                sink.field_drift(data_type, field, "type")
                continue
            decoded.append(item(entry, sink))
        return tuple(decoded)

    return decode


def _decoders_for(simple: bool) -> dict[str, _Decoder]:
    """Per-type decoders for DEFAULT keys (``simple=False``) or SIMPLE keys."""
    style = "SIMPLE" if simple else "DEFAULT"

    def keys(table: Mapping[str, str]) -> Mapping[str, str]:
        return table if simple else {name: name for name in table}

    def top(data_type: str) -> Mapping[str, str]:
        return keys(wire_keys.DEFAULT_TO_SIMPLE[data_type])

    def label(data_type: str) -> str:
        return f"{data_type} frame ({style} keys)"

    units_kind = _Kind(
        "a list of orderbook units",
        frozenset({list}),
        {list: _units_decoder(keys(wire_keys.ORDERBOOK_UNIT_KEYS))},
    )
    asset_item = _model_decoder(
        AssetBalance,
        _fields_of(AssetBalance, keys(wire_keys.ASSET_KEYS), {}),
        "asset balance",
        nested_in="myAsset:assets",
    )
    assets_kind = _Kind(
        "a list of asset balances",
        frozenset({list}),
        {list: _items_decoder(asset_item, "myAsset", "assets")},
    )

    candle = _model_decoder(Candle, _fields_of(Candle, top("candle.1m"), {}), label("candle"))
    return {
        "ticker": _model_decoder(Ticker, _fields_of(Ticker, top("ticker"), {}), label("ticker")),
        "trade": _model_decoder(Trade, _fields_of(Trade, top("trade"), {}), label("trade")),
        "orderbook": _model_decoder(
            Orderbook,
            _fields_of(Orderbook, top("orderbook"), {"orderbook_units": units_kind}),
            label("orderbook"),
        ),
        **dict.fromkeys(wire_keys.CANDLE_TYPES, candle),
        "myOrder": _model_decoder(
            MyOrder, _fields_of(MyOrder, top("myOrder"), {}), label("myOrder")
        ),
        "myAsset": _model_decoder(
            MyAsset, _fields_of(MyAsset, top("myAsset"), {"assets": assets_kind}), label("myAsset")
        ),
    }


def _needs_exact_parse(obj: Any, sink: DriftSink) -> Any:
    raise _NeedsExactParse


# Exact tables: every type. Fast tables: private types trigger the Decimal re-parse instead.
_EXACT_DEFAULT: Final = _decoders_for(simple=False)
_EXACT_SIMPLE: Final = _decoders_for(simple=True)
_FAST_DEFAULT: Final = {**_EXACT_DEFAULT, **dict.fromkeys(PRIVATE_TYPES, _needs_exact_parse)}
_FAST_SIMPLE: Final = {**_EXACT_SIMPLE, **dict.fromkeys(PRIVATE_TYPES, _needs_exact_parse)}


# ----------------------------------------------------------------------------------------------
# Replies and dispatch


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
    model, to :class:`~engine.messages.UnknownMessage`.

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
