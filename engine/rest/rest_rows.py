"""REST rows as the engine's typed models: :class:`Trade` and :class:`Candle` (sans-IO).

The quotation REST API names some fields differently from the WebSocket (docs/UPBIT.md, Quotation
REST for history, and the trade table): ``market`` is the stream's ``code``, ``trade_date_utc``
and ``trade_time_utc`` are ``trade_date`` (``yyyy-MM-dd``) and ``trade_time`` (``HH:mm:ss``), and
a trade's ``timestamp`` is the trade's time, so it fills both ``trade_timestamp`` and
``timestamp``. The models get ``stream_type`` :data:`REST_STREAM_TYPE`, which no WebSocket frame
carries, so a consumer can always tell backfilled rows from streamed ones.

Like the WebSocket decoder, the conversion is a tolerant reader: a missing, ``null`` or unreadable
field becomes ``None`` (numeric strings are read as numbers), and keys the model does not know stay
in ``extra``. Only identity is required: a trade row without a usable ``sequential_id`` gives
``None``, which callers skip and count.
"""

from __future__ import annotations

import math
import re
import types
import typing
from collections.abc import Mapping
from typing import Any, Final

import attrs

from engine.wire.messages import Candle, FrozenFields, Trade

__all__ = ("REST_STREAM_TYPE", "candle_from_rest", "trade_from_rest")

#: ``stream_type`` of models built from REST rows (the WebSocket only sends SNAPSHOT/REALTIME).
REST_STREAM_TYPE: Final = "REST"

# Integers a double holds exactly: a float id beyond this has already lost digits.
_EXACT_FLOAT_INT: Final = 2**53
_INTEGER: Final = re.compile(r"-?\d+")
_SET_HERE: Final = frozenset({"type", "code", "stream_type", "extra"})

#: Model field -> the row keys it is read from, first present wins (default: its own name).
_TRADE_SOURCES: Final[Mapping[str, tuple[str, ...]]] = {
    "code": ("market", "code"),
    "trade_date": ("trade_date_utc", "trade_date"),
    "trade_time": ("trade_time_utc", "trade_time"),
    "trade_timestamp": ("timestamp", "trade_timestamp"),
    "timestamp": ("timestamp",),
}
_CANDLE_SOURCES: Final[Mapping[str, tuple[str, ...]]] = {"code": ("market", "code")}


def _kinds(cls: type[Any]) -> dict[str, type]:
    """The value type of each field the row fills (``float | None`` -> ``float``)."""
    attrs.resolve_types(cls)
    kinds: dict[str, type] = {}
    for field in attrs.fields(cls):
        if field.name in _SET_HERE:
            continue
        declared = field.type
        options = typing.get_args(declared) if isinstance(declared, types.UnionType) else ()
        kinds[field.name] = next((o for o in options if o is not type(None)), declared)
    return kinds


_TRADE_KINDS: Final = _kinds(Trade)
_CANDLE_KINDS: Final = _kinds(Candle)


def _number(value: object) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        number: float = value
    elif isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return None
    else:
        return None
    try:
        finite = math.isfinite(number)
    except OverflowError:  # an int beyond any double
        return None
    # An integral int stays an int, as the WebSocket decoder leaves it (PEP 484 allows it).
    return number if finite else None


def _integer(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer() and abs(value) < _EXACT_FLOAT_INT:
        return int(value)
    if isinstance(value, str) and _INTEGER.fullmatch(value.strip()):
        return int(value)
    return None


def _coerce(kind: type, value: object) -> object:
    if value is None:
        return None
    if kind is float:
        return _number(value)
    if kind is int:
        return _integer(value)
    return value if isinstance(value, kind) else None


def _dashed_date(value: object) -> object:
    # The stream's trade_date is yyyy-MM-dd; accept a compact yyyyMMdd too.
    if isinstance(value, str) and len(value) == 8 and value.isdigit():
        return f"{value[:4]}-{value[4:6]}-{value[6:]}"
    return value


def _colon_time(value: object) -> object:
    if isinstance(value, str) and len(value) == 6 and value.isdigit():
        return f"{value[:2]}:{value[2:4]}:{value[4:]}"
    return value


def _read(
    row: Mapping[str, Any], kinds: Mapping[str, type], sources: Mapping[str, tuple[str, ...]]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(model values, leftover keys for ``extra``) of one row."""
    values: dict[str, Any] = {}
    used: set[str] = set(_SET_HERE)
    for name, kind in {"code": str, **kinds}.items():
        keys = sources.get(name, (name,))
        used.update(keys)
        raw = next((row[key] for key in keys if row.get(key) is not None), None)
        values[name] = _coerce(kind, raw)
    extra = {key: value for key, value in row.items() if key not in used}
    return values, extra


def trade_from_rest(row: object, *, market: str | None = None) -> Trade | None:
    """The :class:`Trade` a ``GET /v1/trades/ticks`` row describes, or ``None``.

    ``None`` when the row is not an object, has no usable ``sequential_id`` (an integer, or a
    string of digits) or no code (``market``, else the ``market`` argument).
    """
    if not isinstance(row, dict):
        return None
    values, extra = _read(row, _TRADE_KINDS, _TRADE_SOURCES)
    values["code"] = values["code"] or market
    if values["code"] is None or values["sequential_id"] is None:
        return None
    values["trade_date"] = _dashed_date(values["trade_date"])
    values["trade_time"] = _colon_time(values["trade_time"])
    return Trade(type="trade", stream_type=REST_STREAM_TYPE, extra=FrozenFields(extra), **values)


def candle_from_rest(row: object, candle_type: str, *, market: str | None = None) -> Candle | None:
    """The :class:`Candle` of type ``candle_type`` (``"candle.1m"``) a candle row describes.

    ``None`` when the row is not an object or names no code (``market``, else the argument).
    A row without a readable ``candle_date_time_utc`` still converts; callers that must place
    it in time skip it.
    """
    if not isinstance(row, dict):
        return None
    values, extra = _read(row, _CANDLE_KINDS, _CANDLE_SOURCES)
    values["code"] = values["code"] or market
    if values["code"] is None:
        return None
    return Candle(
        type=candle_type, stream_type=REST_STREAM_TYPE, extra=FrozenFields(extra), **values
    )
