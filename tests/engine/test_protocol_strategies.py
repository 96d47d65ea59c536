"""Hypothesis strategies for the wire format, shared by the protocol tests (and checked here).

Models are generated from their attrs fields, so a field added to :mod:`engine.wire.messages` is
covered by every round-trip test without touching this file.
"""

from __future__ import annotations

import os
import types
import typing
from decimal import Decimal
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.wire import messages
from engine.wire.keys import CANDLE_TYPES, DEFAULT_TO_SIMPLE
from engine.wire.protocol import DATA_TYPES, FORMATS, ORDERBOOK_UNITS, PRIVATE_TYPES, TypeRequest

LONG = os.environ.get("HYPOTHESIS_PROFILE") == "long"


def examples(count: int) -> settings:
    """Modest and derandomized in CI; twenty times more, freshly random, with
    HYPOTHESIS_PROFILE=long."""
    return settings(
        max_examples=count * 20 if LONG else count,
        deadline=None,
        derandomize=not LONG,
        suppress_health_check=[HealthCheck.too_slow],
    )


MODELS: tuple[type[Any], ...] = typing.get_args(messages.Message) + typing.get_args(messages.Reply)

# No surrogates: they cannot be encoded as UTF-8, so no Upbit frame can carry them.
texts = st.text(st.characters(codec="utf-8"), max_size=12)
# Pair codes, sometimes with a dotted tail that is not a unit suffix (it must survive as is).
codes = st.builds(
    "{}-{}{}".format,
    st.sampled_from(["KRW", "BTC", "USDT"]),
    st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=1, max_size=8),
    st.sampled_from(["", "", "", ".X", ".B2"]),
)
finite_floats = st.floats(allow_nan=False, allow_infinity=False)
int64 = st.integers(min_value=0, max_value=2**63 - 1)
# Bounded so that orjson, which reads every frame first, never sees a number beyond a double.
money = st.decimals(
    min_value=Decimal("-1e30"), max_value=Decimal("1e30"), allow_nan=False, allow_infinity=False
)

_SCALARS: dict[object, st.SearchStrategy[Any]] = {
    float: finite_floats,
    int: int64,
    str: texts,
    bool: st.booleans(),
    Decimal: money,
}
_TYPE_VALUES: dict[type[Any], st.SearchStrategy[str]] = {
    messages.Ticker: st.just("ticker"),
    messages.Trade: st.just("trade"),
    messages.Orderbook: st.just("orderbook"),
    messages.Candle: st.sampled_from(CANDLE_TYPES),
    messages.MyOrder: st.just("myOrder"),
    messages.MyAsset: st.just("myAsset"),
}


def _for_annotation(annotation: Any) -> st.SearchStrategy[Any]:
    if isinstance(annotation, types.UnionType):
        return st.one_of(*(_for_annotation(option) for option in typing.get_args(annotation)))
    if annotation is type(None):
        return st.none()
    if typing.get_origin(annotation) is tuple:
        (item, _ellipsis) = typing.get_args(annotation)
        return st.lists(_for_annotation(item), max_size=4).map(tuple)
    if attrs.has(annotation):
        return model(annotation)
    return _SCALARS[annotation]


def model(cls: type[Any]) -> st.SearchStrategy[Any]:
    """Instances of one model of :mod:`engine.wire.messages`, every field drawn independently."""
    attrs.resolve_types(cls)
    fields: dict[str, st.SearchStrategy[Any]] = {
        field.name: _for_annotation(field.type)
        for field in attrs.fields(cls)
        if field.name != "extra"  # keys a frame carries beyond the model: none here
    }
    if cls in _TYPE_VALUES:
        fields["type"] = _TYPE_VALUES[cls]
    if cls is messages.SubscriptionList:
        fields["method"] = st.just("LIST_SUBSCRIPTIONS")
    if cls is messages.SubscriptionEntry:
        fields["type"] = st.sampled_from(DATA_TYPES)
    return st.builds(cls, **fields)


any_message = st.one_of(*(model(cls) for cls in MODELS))
formats = st.sampled_from(FORMATS)

# Keys a frame may carry beyond the models: no table uses the "x_" prefix, in either format.
# Values are JSON without fractions (a private frame would read a fraction back as a Decimal).
_extra_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**63), max_value=2**63 - 1) | texts,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(texts, children, max_size=3),
    max_leaves=8,
)
extra_keys = st.dictionaries(texts.map("x_{}".format), _extra_values, max_size=4)
"""The ``extra`` of a decoded frame: unknown keys and any JSON values."""


@st.composite
def type_requests(draw: st.DrawFn) -> TypeRequest:
    """Any TypeRequest the wire-format rules allow."""
    data_type = draw(st.sampled_from(DATA_TYPES))
    unique_codes = st.lists(codes, unique=True, min_size=1, max_size=4)
    if data_type == "myAsset":
        chosen: list[str] = []
    elif data_type == "myOrder":
        chosen = draw(st.lists(codes, unique=True, max_size=4))
    else:
        chosen = draw(unique_codes)
    units = level = None
    if data_type == "orderbook":
        units = draw(st.none() | st.sampled_from(ORDERBOOK_UNITS))
        level = draw(
            st.none()
            | st.integers(min_value=0, max_value=10**9)
            | st.floats(min_value=0, max_value=1e12, allow_nan=False)
        )
    snapshot = realtime = False
    if data_type not in PRIVATE_TYPES:
        snapshot, realtime = draw(st.sampled_from([(False, False), (True, False), (False, True)]))
    return TypeRequest(
        type=data_type,
        codes=tuple(chosen),
        units=units,
        level=level,
        is_only_snapshot=snapshot,
        is_only_realtime=realtime,
    )


tickets = st.text(st.characters(codec="utf-8"), min_size=1, max_size=40)


def test_every_model_has_a_strategy() -> None:
    assert {messages.Ticker, messages.MyAsset, messages.SubscriptionList} <= set(MODELS)
    assert set(_TYPE_VALUES) == set(typing.get_args(messages.Message))


@pytest.mark.parametrize("cls", MODELS, ids=lambda cls: cls.__name__)
@examples(10)
@given(data=st.data())
def test_model_strategies_build_instances(cls: type[Any], data: st.DataObject) -> None:
    assert isinstance(data.draw(model(cls)), cls)


@examples(30)
@given(extra_keys)
def test_extra_keys_are_unknown_to_every_table(extra: dict[str, Any]) -> None:
    known = {key for table in DEFAULT_TO_SIMPLE.values() for pair in table.items() for key in pair}
    assert not known & set(extra)


@examples(30)
@given(type_requests())
def test_request_strategy_covers_the_rules(request: TypeRequest) -> None:
    if request.type == "myAsset":
        assert request.codes == ()
    if request.units is not None or request.level is not None:
        assert request.type == "orderbook"
