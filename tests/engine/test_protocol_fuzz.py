"""Hostile input: decode_frame and parse_request raise ProtocolError and nothing else."""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

import attrs
import orjson
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from engine import _decode, messages, wire_keys
from engine.errors import ProtocolError
from engine.protocol import DATA_TYPES, MalformedRequestError, decode_frame, parse_request
from tests.engine.test_protocol_decode import (
    CANDLE,
    LIST_REPLY,
    MY_ASSET,
    MY_ORDER,
    ORDERBOOK_DEFAULT,
    ORDERBOOK_SIMPLE,
    TICKER_DEFAULT,
    TICKER_SIMPLE,
    TRADE_DEFAULT,
    TRADE_SIMPLE,
)
from tests.engine.test_protocol_strategies import examples

REAL_FRAMES = {
    "ticker DEFAULT": TICKER_DEFAULT,
    "ticker SIMPLE": TICKER_SIMPLE,
    "trade DEFAULT": TRADE_DEFAULT,
    "trade SIMPLE": TRADE_SIMPLE,
    "orderbook DEFAULT": ORDERBOOK_DEFAULT,
    "orderbook SIMPLE": ORDERBOOK_SIMPLE,
    "candle": CANDLE,
    "myOrder": MY_ORDER,
    "myAsset": MY_ASSET,
    "LIST_SUBSCRIPTIONS": LIST_REPLY,
}
DATA_FRAMES = {name: text for name, text in REAL_FRAMES.items() if name != "LIST_SUBSCRIPTIONS"}

ALL_KEYS = sorted(
    {
        key
        for table in wire_keys.DEFAULT_TO_SIMPLE.values()
        for pair in table.items()
        for key in pair
    }
    | {"status", "error", "method", "mthd", "result", "rslt", "ticket", "tckt", "name", "message"}
)

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=10)
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(max_size=8) | st.sampled_from(ALL_KEYS), children, max_size=5)
    ),
    max_leaves=20,
)
# Objects that look like Upbit's: real keys, a real type, random values.
wire_like = st.builds(
    lambda data_type, type_key, body: {type_key: data_type, **body},
    st.sampled_from(DATA_TYPES),
    st.sampled_from(["type", "ty"]),
    st.dictionaries(
        st.sampled_from(ALL_KEYS), json_scalars | st.lists(json_values, max_size=2), max_size=12
    ),
)


def _decode_or_protocol_error(frame: bytes | str) -> object:
    try:
        result: object = decode_frame(frame)
    except ProtocolError as exc:
        result = exc
    if isinstance(result, ProtocolError):
        assert str(result), "a ProtocolError must say what is wrong"
    return result


@examples(300)
@given(st.binary(max_size=300))
def test_arbitrary_bytes(frame: bytes) -> None:
    _decode_or_protocol_error(frame)


@examples(300)
@given(json_values)
def test_arbitrary_json(value: Any) -> None:
    frame = orjson.dumps(value)
    _decode_or_protocol_error(frame)
    _decode_or_protocol_error(frame.decode())


@examples(150)
@given(st.lists(wire_like, max_size=2) | wire_like)
def test_wire_like_objects(value: Any) -> None:
    _decode_or_protocol_error(orjson.dumps(value))


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key/index path inside a JSON value, nested ones included."""
    found: list[tuple[Any, ...]] = []
    items = value.items() if isinstance(value, dict) else enumerate(value)
    for key, child in items:
        found.append((*prefix, key))
        if isinstance(child, dict | list):
            found.extend(_paths(child, (*prefix, key)))
    return found


def _mutated(value: Any, path: tuple[Any, ...], replacement: Any, delete: bool) -> Any:
    result = copy.deepcopy(value)
    parent = result
    for step in path[:-1]:
        parent = parent[step]
    if delete:
        del parent[path[-1]]
    else:
        parent[path[-1]] = replacement
    return result


@st.composite
def near_valid_frames(draw: st.DrawFn) -> bytes:
    """A real frame with one field removed or given a value of another JSON type."""
    value = orjson.loads(draw(st.sampled_from(sorted(REAL_FRAMES.values()))))
    path = draw(st.sampled_from(_paths(value)))
    delete = draw(st.booleans())
    replacement: object = draw(json_scalars | st.lists(json_scalars, max_size=2) | st.just({}))
    frame = orjson.dumps(_mutated(value, path, replacement, delete))
    if draw(st.booleans()):
        frame = b"[" + frame + b"]"
    return frame


@examples(250)
@given(near_valid_frames())
def test_near_valid_frames(frame: bytes) -> None:
    result = _decode_or_protocol_error(frame)
    if not isinstance(result, ProtocolError):
        decoded = result if isinstance(result, list) else [result]
        assert all(isinstance(item, messages.Message | messages.Reply) for item in decoded)


def _top_level_keys() -> list[tuple[str, str]]:
    return [(name, key) for name, text in DATA_FRAMES.items() for key in orjson.loads(text)]


@pytest.mark.parametrize(("name", "key"), _top_level_keys())
def test_a_field_of_the_wrong_type_is_named(name: str, key: str) -> None:
    obj = orjson.loads(DATA_FRAMES[name])
    # An object fits no field of any model (unit lists included), so this must always fail.
    obj[key] = {"unexpected": True}
    with pytest.raises(ProtocolError, match=repr(key) if key not in ("type", "ty") else "type"):
        decode_frame(orjson.dumps(obj))


def _optional_keys(name: str) -> set[str]:
    """Wire keys of the fields the model gives a default, i.e. that Upbit may leave out."""
    obj = orjson.loads(DATA_FRAMES[name])
    data_type = obj.get("type", obj.get("ty"))
    cls: Any = type(decode_frame(DATA_FRAMES[name]))
    table = wire_keys.DEFAULT_TO_SIMPLE[data_type]
    simple = "ty" in obj
    return {
        table[field.name] if simple else field.name
        for field in attrs.fields(cls)
        if field.default is not attrs.NOTHING
    }


@pytest.mark.parametrize(("name", "key"), _top_level_keys())
def test_a_missing_required_field_is_named(name: str, key: str) -> None:
    obj = orjson.loads(DATA_FRAMES[name])
    del obj[key]
    frame = orjson.dumps(obj)
    if key in _optional_keys(name):
        assert isinstance(decode_frame(frame), messages.Message)
    elif key in ("type", "ty"):
        with pytest.raises(ProtocolError, match="none of 'type'"):
            decode_frame(frame)
    else:
        with pytest.raises(ProtocolError, match=repr(key)):
            decode_frame(frame)


@pytest.mark.parametrize(
    ("name", "key", "value"),
    [
        ("ticker DEFAULT", "trade_price", "116539000"),
        ("ticker DEFAULT", "trade_price", True),
        ("ticker DEFAULT", "trade_price", None),
        ("ticker DEFAULT", "timestamp", 1.5),
        ("ticker DEFAULT", "timestamp", "1790133435161"),
        ("ticker DEFAULT", "code", 5),
        ("ticker DEFAULT", "is_trading_suspended", "no"),
        ("ticker SIMPLE", "tms", False),
        ("trade SIMPLE", "sid", 1.0),
        ("orderbook DEFAULT", "orderbook_units", {}),
        ("orderbook SIMPLE", "lv", None),
        ("myOrder", "price", "abc"),
        ("myOrder", "price", True),
        ("myOrder", "trades_count", 1.5),
        ("myOrder", "is_maker", 1),
        ("myAsset", "assets", [1]),
    ],
)
def test_wrong_value_types_are_rejected(name: str, key: str, value: object) -> None:
    obj = orjson.loads(DATA_FRAMES[name])
    obj[key] = value
    with pytest.raises(ProtocolError, match=repr(key)):
        decode_frame(orjson.dumps(obj))


@pytest.mark.parametrize(
    ("name", "units_key", "mutation", "message"),
    [
        ("orderbook DEFAULT", "orderbook_units", lambda u: u.pop("bid_size"), "'bid_size'"),
        ("orderbook DEFAULT", "orderbook_units", lambda u: u.update(ask_price="1"), "ask_price"),
        ("orderbook DEFAULT", "orderbook_units", lambda u: u.update(ask_size=True), "ask_size"),
        ("orderbook SIMPLE", "obu", lambda u: u.update(bs=None), "bs"),
        ("myAsset", "assets", lambda u: u.update(balance="lots"), "lots"),
        ("myAsset", "assets", lambda u: u.pop("currency"), "currency"),
    ],
)
def test_broken_nested_entries_are_named(
    name: str, units_key: str, mutation: Any, message: str
) -> None:
    obj = orjson.loads(DATA_FRAMES[name])
    mutation(obj[units_key][-1])
    with pytest.raises(ProtocolError, match=message):
        decode_frame(orjson.dumps(obj))


def test_a_unit_that_is_not_an_object_is_named() -> None:
    obj = orjson.loads(ORDERBOOK_DEFAULT)
    obj["orderbook_units"].append([1, 2, 3, 4])
    with pytest.raises(ProtocolError, match="'orderbook_units': entry 2 must be an object"):
        decode_frame(orjson.dumps(obj))


def test_integers_beyond_64_bits() -> None:
    huge = "1" + "0" * 40
    # Money is exact in Decimal, however long the integer.
    decoded = decode_frame(MY_ASSET.replace("1386929.37231066", huge))
    assert isinstance(decoded, messages.MyAsset)
    assert decoded.assets[0].balance == Decimal(huge)
    # The exact parser's integers are unbounded; one beyond a double is no float field value.
    with pytest.raises(ProtocolError, match="out of the range of a double"):
        _decode._to_float(10**400)
    # orjson reads such an integer as a float, which a timestamp must not be.
    with pytest.raises(ProtocolError, match="'timestamp' must be an integer"):
        decode_frame(TRADE_DEFAULT.replace("1790133514039", huge))


def _parse_or_error(frame: bytes) -> MalformedRequestError | None:
    try:
        parse_request(frame)
    except MalformedRequestError as exc:
        return exc
    return None


@examples(200)
@given(st.binary(max_size=200) | json_values.map(orjson.dumps))
def test_parse_request_raises_only_malformed_request_error(frame: bytes) -> None:
    error = _parse_or_error(frame)
    if error is not None:
        assert isinstance(error, ProtocolError)
        assert error.upbit_error in {
            None,
            "WRONG_FORMAT",
            "NO_TICKET",
            "NO_TYPE",
            "NO_CODES",
            "INVALID_PARAM",
        }


@examples(150)
@given(
    st.lists(
        st.fixed_dictionaries(
            {},
            optional={
                "ticket": json_scalars,
                "type": st.sampled_from(DATA_TYPES) | json_scalars,
                "codes": st.lists(st.text(max_size=12), max_size=3) | json_scalars,
                "level": json_scalars,
                "is_only_snapshot": json_scalars,
                "is_only_realtime": json_scalars,
                "format": st.sampled_from(["SIMPLE", "NOPE"]) | json_scalars,
                "method": st.just("LIST_SUBSCRIPTIONS") | json_scalars,
            },
        ),
        max_size=5,
    )
)
def test_parse_request_on_request_like_arrays(items: list[dict[str, Any]]) -> None:
    assume(items)
    error = _parse_or_error(orjson.dumps(items))
    assert error is None or str(error)
