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
from typing import Any, Final

import attrs
import orjson

from engine import wire_keys
from engine.errors import ProtocolError
from engine.messages import (
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

__all__ = ("PRIVATE_TYPES", "decode_frame")

Decoded = Message | Reply | list[Message | Reply]

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
    same slots stores the values with plain attribute assignment; setting the finished object's
    ``__class__`` to ``cls`` then gives exactly the object ``cls(*values)`` would. CPython allows
    that because the memory layouts are identical (why the models have no ``__weakref__`` slot).
    Where an interpreter refuses, ``cls`` itself is returned: use it as is, without relabelling.
    """
    fields = attrs.fields(cls)
    twin = attrs.make_class(
        f"_{cls.__name__}Maker",
        [field.name for field in fields],
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


@attrs.frozen
class _Kind:
    """What one model field accepts on the wire, and how each accepted type is converted."""

    description: str
    accepted: frozenset[type]
    converters: Mapping[type, Callable[[Any], object]]


# An int stays an int in a float field: PEP 484 accepts int where float is declared, equality
# and hashing agree, and converting every integral price of a SIMPLE orderbook would cost a
# quarter of its decode time. Decimals only come from the exact parser and become floats.
_FLOAT_KIND: Final = _Kind("a number", frozenset({float, int, Decimal}), {Decimal: _to_float})
_INT_KIND: Final = _Kind("an integer", frozenset({int}), {})
_STR_KIND: Final = _Kind("a string", frozenset({str}), {})
_BOOL_KIND: Final = _Kind("true or false", frozenset({bool}), {})
_DECIMAL_KIND: Final = _Kind(
    "a decimal number", frozenset({Decimal, int, str}), {int: _to_decimal, str: _to_decimal}
)
_SCALAR_KINDS: Final[Mapping[object, _Kind]] = {
    float: _FLOAT_KIND,
    int: _INT_KIND,
    str: _STR_KIND,
    bool: _BOOL_KIND,
    Decimal: _DECIMAL_KIND,
}


def _nullable(kind: _Kind) -> _Kind:
    return _Kind(f"{kind.description} or null", kind.accepted | {_NONE_TYPE}, kind.converters)


@attrs.frozen
class _Field:
    name: str
    key: str
    kind: _Kind
    default: object


def _fields_of(
    cls: type[Any], keys: Mapping[str, str], nested: Mapping[str, _Kind]
) -> tuple[_Field, ...]:
    """Wire fields of ``cls`` in constructor order, with kinds derived from its annotations."""
    attrs.resolve_types(cls)
    fields: list[_Field] = []
    for attribute in attrs.fields(cls):
        declared = attribute.type
        options = typing.get_args(declared) if isinstance(declared, types.UnionType) else ()
        if attribute.name in nested:
            kind = nested[attribute.name]
        elif _NONE_TYPE in options:
            (inner,) = (option for option in options if option is not _NONE_TYPE)
            kind = _nullable(_SCALAR_KINDS[inner])
        else:
            kind = _SCALAR_KINDS[declared]
        default = _MISSING if attribute.default is attrs.NOTHING else attribute.default
        fields.append(_Field(attribute.name, keys[attribute.name], kind, default))
    return tuple(fields)


_Decoder = Callable[[Any], Any]


@attrs.frozen
class _Layout:
    """How to read one shape of frame: which optional keys it lacks, and their defaults."""

    getter: Callable[[Any], Any]
    absent: tuple[str, ...]
    defaults: tuple[tuple[int, object], ...]


_Plan = tuple[tuple[int, Callable[[Any], object]], ...]


def _model_decoder(cls: type[Any], fields: Sequence[_Field], label: str) -> _Decoder:
    """A function turning one JSON object (a dict) into an instance of ``cls``."""
    keys = tuple(field.key for field in fields)
    if sum(field.default is _MISSING for field in fields) < 2:
        # itemgetter of a single key returns the value itself, not a tuple.
        raise ValueError(f"{cls.__name__} needs two required fields for this decoder")
    maker = _maker(cls)
    relabel = maker is not cls
    signatures: dict[tuple[type, ...], _Plan] = {}
    optional = tuple(
        (index, field) for index, field in enumerate(fields) if field.default is not _MISSING
    )
    layouts: dict[tuple[str, ...], _Layout] = {}
    # The signature seen last, compared before any hashing: consecutive frames share it.
    last_checked: list[tuple[list[type], _Plan]] = [([], ())]
    # The layout of the last frame: a stream that stopped sending an optional field (Upbit is
    # dropping the deprecated ticker ones) keeps one getter instead of raising KeyError each time.
    current = [_Layout(itemgetter(*keys), (), ())]

    def layout_for(absent: tuple[str, ...]) -> _Layout:
        layout = layouts.get(absent)
        if layout is None:
            layout = _Layout(
                itemgetter(*(key for key in keys if key not in absent)),
                absent,
                tuple((index, field.default) for index, field in optional if field.key in absent),
            )
            if len(layouts) < _SIGNATURE_CACHE_SIZE:
                layouts[absent] = layout
        return layout

    def missing_required(obj: dict[str, Any]) -> ProtocolError:
        missing = [
            repr(field.key) if field.key == field.name else f"{field.key!r} ({field.name})"
            for field in fields
            if field.default is _MISSING and field.key not in obj
        ]
        return ProtocolError(f"{label} lacks required field(s) {', '.join(missing)}")

    def read(obj: dict[str, Any], layout: _Layout) -> tuple[object, ...] | list[object]:
        values: tuple[object, ...] = layout.getter(obj)
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
            raise missing_required(obj) from None
        current[0] = layout
        return values

    def plan_for(signature: tuple[type, ...]) -> _Plan:
        problems: list[str] = []
        plan: list[tuple[int, Callable[[Any], object]]] = []
        for index, (field, value_type) in enumerate(zip(fields, signature, strict=True)):
            if value_type not in field.kind.accepted:
                problems.append(
                    f"field {field.key!r} must be {field.kind.description}, "
                    f"not {_json_type_name(value_type)}"
                )
                continue
            converter = field.kind.converters.get(value_type)
            if converter is not None:
                plan.append((index, converter))
        if problems:
            raise ProtocolError(f"{label}: " + "; ".join(problems))
        if len(signatures) < _SIGNATURE_CACHE_SIZE:
            signatures[signature] = tuple(plan)
        return tuple(plan)

    def decode(obj: Any) -> Any:
        layout = current[0]
        try:
            values = read(obj, layout) if layout.absent else layout.getter(obj)
        except KeyError:
            values = relayout(obj)
        else:
            # A key the layout expects to be absent may be back: read the frame afresh.
            if layout.absent and any(map(obj.__contains__, layout.absent)):
                values = relayout(obj)
        signature = list(map(type, values))
        checked = last_checked[0]
        if signature == checked[0]:
            plan = checked[1]
        else:
            key = tuple(signature)
            cached = signatures.get(key)
            plan = plan_for(key) if cached is None else cached
            last_checked[0] = (signature, plan)
        if plan:
            converted = list(values)
            for index, converter in plan:
                try:
                    converted[index] = converter(converted[index])
                except ProtocolError as exc:
                    raise ProtocolError(f"{label}: field {keys[index]!r}: {exc}") from None
            values = converted
        model = maker(*values)
        if relabel:
            model.__class__ = cls
        return model

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


def _object_list_kind(
    item_decoder: Callable[[list[Any]], tuple[object, ...]], description: str
) -> _Kind:
    return _Kind(description, frozenset({list}), {list: item_decoder})


def _units_decoder(keys: Mapping[str, str]) -> Callable[[list[Any]], tuple[object, ...]]:
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
    accepted_last: list[list[type]] = [[]]
    numbers = frozenset({float, int, Decimal})

    def diagnose(units: list[Any]) -> ProtocolError:
        for position, unit in enumerate(units):
            if type(unit) is not dict:
                return ProtocolError(
                    f"entry {position} must be an object, not {_json_type_name(type(unit))}"
                )
            absent = [key for key in wire if key not in unit]
            if absent:
                return ProtocolError(f"entry {position} lacks {', '.join(map(repr, absent))}")
            for key in wire:
                if type(unit[key]) not in numbers:
                    return ProtocolError(
                        f"entry {position}: {key!r} must be a number, "
                        f"not {_json_type_name(type(unit[key]))}"
                    )
        return ProtocolError("the units could not be decoded")

    def decode(units: list[Any]) -> tuple[object, ...]:
        try:
            rows = list(map(getter, units))
        except (KeyError, TypeError):
            raise diagnose(units) from None
        value_types = list(map(type, chain.from_iterable(rows)))
        # Books of one stream repeat the same types level after level, frame after frame.
        if value_types == accepted_last[0]:
            return build_all(rows)
        kinds = set(value_types)
        if kinds <= ints_and_floats:
            accepted_last[0] = value_types
            return build_all(rows)
        if not kinds <= numbers:
            raise diagnose(units)
        flat = iter(list(map(_to_float, chain.from_iterable(rows))))
        return build_all(zip(*([flat] * width), strict=True))

    return decode


def _items_decoder(item: _Decoder) -> Callable[[list[Any]], tuple[object, ...]]:
    def decode(items: list[Any]) -> tuple[object, ...]:
        decoded = []
        for position, entry in enumerate(items):
            if type(entry) is not dict:
                raise ProtocolError(
                    f"entry {position} must be an object, not {_json_type_name(type(entry))}"
                )
            try:
                decoded.append(item(entry))
            except ProtocolError as exc:
                raise ProtocolError(f"entry {position}: {exc}") from None
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

    units_kind = _object_list_kind(
        _units_decoder(keys(wire_keys.ORDERBOOK_UNIT_KEYS)), "a list of orderbook units"
    )
    asset_item = _model_decoder(
        AssetBalance, _fields_of(AssetBalance, keys(wire_keys.ASSET_KEYS), {}), "asset balance"
    )
    assets_kind = _object_list_kind(_items_decoder(asset_item), "a list of asset balances")

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


def _needs_exact_parse(obj: Any) -> Any:
    raise _NeedsExactParse


# Exact tables: every type. Fast tables: private types trigger the Decimal re-parse instead.
_EXACT_DEFAULT: Final = _decoders_for(simple=False)
_EXACT_SIMPLE: Final = _decoders_for(simple=True)
_FAST_DEFAULT: Final = {**_EXACT_DEFAULT, **dict.fromkeys(PRIVATE_TYPES, _needs_exact_parse)}
_FAST_SIMPLE: Final = {**_EXACT_SIMPLE, **dict.fromkeys(PRIVATE_TYPES, _needs_exact_parse)}


def _subscription_entry(entry: Any, keys: Mapping[str, str], position: int) -> SubscriptionEntry:
    where = f"LIST_SUBSCRIPTIONS result[{position}]"
    if type(entry) is not dict:
        raise ProtocolError(f"{where} must be an object, not {_json_type_name(type(entry))}")
    data_type = entry.get(keys["type"])
    if type(data_type) is not str:
        raise ProtocolError(f"{where} needs a string {keys['type']!r}")
    codes = entry.get(keys["codes"])
    if codes is not None and (
        type(codes) is not list or not all(type(code) is str for code in codes)
    ):
        raise ProtocolError(f"{where}.{keys['codes']} must be a list of strings")
    level = entry.get(keys["level"])
    if level is not None and type(level) not in (int, float, Decimal):
        raise ProtocolError(f"{where}.{keys['level']} must be a number")
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
    if type(method) is not str:
        raise ProtocolError(f"LIST_SUBSCRIPTIONS reply: {keys['method']!r} must be a string")
    if type(result) is not list:
        raise ProtocolError(f"LIST_SUBSCRIPTIONS reply: {keys['result']!r} must be a list")
    # The old documentation typed the ticket as a Long.
    if type(ticket) is int:
        ticket = str(ticket)
    if type(ticket) is not str:
        raise ProtocolError(f"LIST_SUBSCRIPTIONS reply: {keys['ticket']!r} must be a string")
    entries = tuple(
        _subscription_entry(entry, entry_keys, position) for position, entry in enumerate(result)
    )
    return SubscriptionList(method=method, result=entries, ticket=ticket)


def _error_reply(body: Any) -> ErrorReply:
    if type(body) is not dict:
        raise ProtocolError("error frame: 'error' must be an object with 'name' and 'message'")
    name, message = body.get("name"), body.get("message", "")
    if type(name) is not str or type(message) is not str:
        raise ProtocolError("error frame: 'name' and 'message' must be strings")
    return ErrorReply(name=name, message=message)


def _reply(obj: dict[str, Any]) -> Reply:
    if "status" in obj:
        if obj["status"] != "UP":
            raise ProtocolError(f"unknown status {_short(obj['status'])}; only 'UP' is documented")
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
        f"(its keys: {keys or 'none'})"
    )


def _decode_object(
    obj: Any, default: Mapping[str, _Decoder], simple: Mapping[str, _Decoder]
) -> Message | Reply:
    if type(obj) is not dict:
        raise ProtocolError(f"expected a JSON object, got {_json_type_name(type(obj))}")
    data_type = obj.get("type")
    table = default
    if data_type is None:
        data_type = obj.get("ty")
        table = simple
        if data_type is None:
            return _reply(obj)
    try:
        decoder = table[data_type]
    except (KeyError, TypeError):
        raise ProtocolError(f"unknown message type {_short(data_type)}") from None
    result: Message = decoder(obj)
    return result


def _decode_exact(data: bytes | bytearray | memoryview | str) -> Decoded:
    """Re-parse with Decimal numbers; ``data`` already passed orjson, so it is valid JSON."""
    text = data if isinstance(data, str) else bytes(data).decode("utf-8")
    try:
        parsed = json.loads(text, parse_float=Decimal)
    except (ValueError, RecursionError) as exc:  # orjson nests deeper than json.loads can
        raise ProtocolError(f"frame is not valid JSON: {exc}") from None
    if type(parsed) is list:
        return [_decode_object(item, _EXACT_DEFAULT, _EXACT_SIMPLE) for item in parsed]
    return _decode_object(parsed, _EXACT_DEFAULT, _EXACT_SIMPLE)


def decode_frame(data: bytes | str) -> Decoded:
    """Decode one server frame (binary UTF-8 or text) into typed models.

    DEFAULT and SIMPLE keys are told apart by ``type`` versus ``ty``. A ``JSON_LIST`` or
    ``SIMPLE_LIST`` frame (a JSON array) gives a list. Replies decode to :class:`StatusUp`,
    :class:`ErrorReply` or :class:`SubscriptionList`. Unknown extra keys are ignored.

    Raises :class:`~engine.errors.ProtocolError`, and nothing else, for anything that is not a
    well-formed Upbit frame; the message names the problem.
    """
    try:
        parsed = orjson.loads(data)
    except orjson.JSONDecodeError as exc:  # also raised for input that is not bytes or str
        raise ProtocolError(f"frame is not valid UTF-8 JSON: {exc}") from None
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
                    result: Message = decoder(parsed)
                    return result
            return _decode_object(parsed, _FAST_DEFAULT, _FAST_SIMPLE)
        if type(parsed) is list:
            return [_decode_object(item, _FAST_DEFAULT, _FAST_SIMPLE) for item in parsed]
    except _NeedsExactParse:
        return _decode_exact(data)
    raise ProtocolError(f"a frame is a JSON object or array, not {_json_type_name(type(parsed))}")
