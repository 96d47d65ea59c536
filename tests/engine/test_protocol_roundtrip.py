"""Round trips: what the encoder/builder writes, the decoder/parser reads back unchanged."""

from __future__ import annotations

import typing
from typing import Any

import attrs
from hypothesis import given
from hypothesis import strategies as st

from engine.wire import messages
from engine.wire.decode import DriftCounter
from engine.wire.protocol import (
    LIST_FORMATS,
    Format,
    ParsedRequest,
    TypeRequest,
    build_list_subscriptions,
    build_request,
    decode_frame,
    encode_frame,
    parse_request,
)
from tests.engine.test_protocol_fuzz import USUALLY_ABSENT
from tests.engine.test_protocol_strategies import (
    any_message,
    examples,
    extra_keys,
    formats,
    model,
    tickets,
    type_requests,
)


@examples(100)
@given(
    ticket=tickets,
    requests=st.lists(type_requests(), min_size=1, max_size=5),
    format=st.none() | formats,
)
def test_build_then_parse_gives_the_same_request(
    ticket: str, requests: list[TypeRequest], format: Format | None
) -> None:
    text = build_request(ticket, requests, format=format)
    assert parse_request(text) == ParsedRequest(
        ticket=ticket, requests=tuple(requests), format=format
    )
    # Bytes, as a server might receive them, parse alike.
    assert parse_request(text.encode()) == parse_request(text)


@examples(30)
@given(ticket=tickets, format=st.none() | formats)
def test_list_subscriptions_round_trip(ticket: str, format: Format | None) -> None:
    parsed = parse_request(build_list_subscriptions(ticket, format=format))
    assert parsed == ParsedRequest(ticket=ticket, format=format, method="LIST_SUBSCRIPTIONS")


def _shape(value: Any) -> object:
    """The type of every value in a model, recursively: what equality alone does not check."""
    if attrs.has(type(value)):
        return (
            type(value),
            tuple(_shape(getattr(value, f.name)) for f in attrs.fields(type(value))),
        )
    if isinstance(value, tuple | list):
        return tuple(_shape(item) for item in value)
    return type(value)


@examples(200)
@given(message=any_message, format=formats)
def test_every_model_survives_every_format(message: Any, format: Format) -> None:
    frame = encode_frame(message, format)
    decoded = decode_frame(frame)
    expected = [message] if format in LIST_FORMATS else message
    assert decoded == expected
    # Equal is not enough: a float must stay a float and money must stay Decimal.
    assert _shape(decoded) == _shape(expected)
    # Text frames decode exactly like binary ones.
    assert decode_frame(frame.decode()) == expected


@examples(40)
@given(
    batch=st.lists(any_message, min_size=1, max_size=4),
    format=st.sampled_from(["JSON_LIST", "SIMPLE_LIST"]),
)
def test_list_frames_carry_several_messages(batch: list[Any], format: Format) -> None:
    decoded = decode_frame(encode_frame(batch, format))
    assert decoded == batch
    assert _shape(decoded) == _shape(batch)


#: Fields the decoder does not count when null: the fuzz tests' independent oracle.
_USUALLY_NULL = USUALLY_ABSENT


def _expected_drift(message: Any) -> dict[tuple[str, str], int]:
    """The drift a frame encoded from ``message`` reports: each None the encoder wrote as null,
    by DEFAULT name (nested ones as ``list.field``), except the usually null fields."""
    found: dict[tuple[str, str], int] = {}
    if not isinstance(message, messages.Message):
        return found
    usual = _USUALLY_NULL.get(message.type, frozenset())

    def count(name: str) -> None:
        key = (message.type, name)
        found[key] = found.get(key, 0) + 1

    for field in attrs.fields(type(message)):
        value = getattr(message, field.name)
        if value is None and field.name not in usual:
            count(field.name)
        if field.name in ("orderbook_units", "assets"):
            for entry in value:
                for inner in attrs.fields(type(entry)):
                    if getattr(entry, inner.name) is None:
                        count(f"{field.name}.{inner.name}")
    return found


@examples(150)
@given(message=any_message, format=formats)
def test_the_drift_of_a_round_trip_is_exactly_its_none_fields(message: Any, format: Format) -> None:
    drift = DriftCounter()
    decode_frame(encode_frame(message, format), drift=drift)
    expected = _expected_drift(message)
    assert drift.fields == expected
    assert drift.problems == ({"null": sum(expected.values())} if expected else {})


@examples(100)
@given(
    message=st.one_of(*(model(cls) for cls in typing.get_args(messages.Message))),
    extra=extra_keys,
    format=formats,
)
def test_extra_keys_survive_every_format(
    message: Any, extra: dict[str, Any], format: Format
) -> None:
    with_extra = attrs.evolve(message, extra=extra)
    decoded: Any = decode_frame(encode_frame(with_extra, format))
    (decoded,) = decoded if format in LIST_FORMATS else [decoded]
    assert decoded == message
    assert dict(decoded.extra) == extra
