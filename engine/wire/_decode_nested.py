"""Decoders of the lists nested in frames: orderbook units and asset balances.

Part of the decoder (:mod:`engine.wire.decode` has the theory of operation). Both are converters of
a ``list`` field (see :class:`~engine.wire._decode_fields._Kind`): the model decoder of the frame
calls them through its plan. Orderbook units are the bulk of the largest frames, so they get a path
of their own that validates a whole book at once; asset balances go through a model decoder each.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from itertools import chain, repeat, starmap
from operator import itemgetter
from typing import Any

import attrs

from engine.errors import ProtocolError
from engine.wire._decode_fields import _MISSING, DriftSink, _Converter, _Decoder, _to_float
from engine.wire.messages import OrderbookUnit


class _LastBook:
    """The mutable state of one units decoder: the value types of the book it accepted last
    (flattened, unit after unit), which the books of one stream nearly always repeat."""

    __slots__ = ("signature",)

    def __init__(self) -> None:
        self.signature: list[type] = []


def _units_decoder(keys: Mapping[str, str], maker: type[Any]) -> _Converter:
    """Orderbook units: the bulk of the largest frames, so they get a vectorised path.

    ``maker`` builds the units (``_maker(OrderbookUnit)``; relabelled unless it is the class)."""
    names = tuple(field.name for field in attrs.fields(OrderbookUnit))
    wire = tuple(keys[name] for name in names)
    getter = itemgetter(*wire)
    relabel = maker is not OrderbookUnit
    class_attribute, as_unit = repeat("__class__"), repeat(OrderbookUnit)

    def build_all(rows: Iterable[Sequence[object]]) -> tuple[OrderbookUnit, ...]:
        built: tuple[OrderbookUnit, ...] = tuple(starmap(maker, rows))
        if relabel:
            deque(map(setattr, built, class_attribute, as_unit), maxlen=0)
        return built

    ints_and_floats = frozenset({float, int})
    accepted_last = _LastBook()

    def decode(units: list[Any], sink: DriftSink) -> tuple[object, ...]:
        try:
            rows = list(map(getter, units))
        except (KeyError, TypeError):
            return build_all(_tolerant_rows(units, names, wire, sink))
        value_types = list(map(type, chain.from_iterable(rows)))
        # Books of one stream repeat the same types level after level, frame after frame.
        if value_types == accepted_last.signature:
            return build_all(rows)
        if set(value_types) <= ints_and_floats:
            accepted_last.signature = value_types
            return build_all(rows)
        return build_all(_tolerant_rows(units, names, wire, sink))

    return decode


def _tolerant_rows(
    units: list[Any], names: Sequence[str], wire: Sequence[str], sink: DriftSink
) -> list[list[object]]:
    """Unit rows read one by one: a value that is not a number becomes None, a unit that is not
    an object is left out; each counts as drift."""
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
    return rows


def _items_decoder(item: _Decoder, data_type: str, field: str) -> _Converter:
    """A list of entry models (asset balances), each decoded by ``item``; an entry that is not an
    object is left out and counts as drift."""

    def decode(items: list[Any], sink: DriftSink) -> tuple[object, ...]:
        decoded = []
        for entry in items:
            if type(entry) is not dict:
                sink.field_drift(data_type, field, "type")
                continue
            decoded.append(item(entry, sink))
        return tuple(decoded)

    return decode
