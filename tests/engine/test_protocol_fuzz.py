"""Hostile input: decode_frame and parse_request raise ProtocolError and nothing else.

The decoder is a tolerant reader: any input gives models, replies, UnknownMessage or a list of
them, or a ProtocolError naming one of FRAME_PROBLEMS. A real frame with one value broken still
decodes unless its identity (type, code, a trade's sequential_id) is what broke: the broken field
becomes None (or its default), exactly that field is reported as drift, and every other field is
intact.
"""

from __future__ import annotations

import copy
import math
import types
import typing
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

import attrs
import orjson
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from engine.errors import ProtocolError
from engine.wire import decode as _decode
from engine.wire import keys as wire_keys
from engine.wire import messages
from engine.wire.decode import FRAME_PROBLEMS, DriftCounter
from engine.wire.protocol import DATA_TYPES, MalformedRequestError, decode_frame, parse_request
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

#: Per the decoder's contract: a frame cannot be decoded without these (DEFAULT names).
IDENTITY = frozenset({"type", "code", "sequential_id"})
#: Fields Upbit normally omits or nulls: no drift when missing or null (a wrong type is drift).
#: An independent oracle: written from docs/UPBIT.md, not imported from the decoder it checks.
USUALLY_ABSENT: Mapping[str, frozenset[str]] = {
    "ticker": frozenset({"is_trading_suspended", "delisting_date", "market_warning"}),
    "orderbook": frozenset({"level"}),
    "myOrder": frozenset(
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
#: Top-level fields holding a list of entries, and the wire keys of one entry.
ENTRY_KEYS: Mapping[str, Mapping[str, str]] = {
    "orderbook_units": wire_keys.ORDERBOOK_UNIT_KEYS,
    "assets": wire_keys.ASSET_KEYS,
}
DRIFT_PROBLEMS = frozenset({"missing", "null", "type"})
DECODED_TYPES = (messages.Message, messages.Reply, messages.UnknownMessage)

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


def _drift_names(data_type: str) -> frozenset[str]:
    """Every field name a drift report about a ``data_type`` frame may carry."""
    names = set(wire_keys.DEFAULT_TO_SIMPLE[data_type]) - IDENTITY
    for field, entry in ENTRY_KEYS.items():
        if field in names:
            names |= {f"{field}.{name}" for name in entry}
    return frozenset(names)


def _conforms(value: object, annotation: Any) -> bool:
    """Whether ``value`` is what a model field of type ``annotation`` promises to hold."""
    if isinstance(annotation, types.UnionType):
        return any(_conforms(value, option) for option in typing.get_args(annotation))
    if annotation is type(None):
        return value is None
    if annotation is float:  # an integral number may stay an int (PEP 484)
        return type(value) in (float, int) and math.isfinite(value)  # type: ignore[arg-type]
    if annotation is Decimal:
        return type(value) is Decimal and value.is_finite()
    if annotation in (int, str, bool):
        return type(value) is annotation
    if typing.get_origin(annotation) is tuple:
        (item, _ellipsis) = typing.get_args(annotation)
        return type(value) is tuple and all(_conforms(entry, item) for entry in value)
    if typing.get_origin(annotation) is Mapping:
        return isinstance(value, Mapping) and all(type(key) is str for key in value)
    if attrs.has(annotation):
        return type(value) is annotation and _well_typed(value)
    raise AssertionError(f"no rule for {annotation!r}")


def _well_typed(model: Any) -> bool:
    hints = typing.get_type_hints(type(model))
    return all(
        _conforms(getattr(model, field.name), hints[field.name])
        for field in attrs.fields(type(model))
    )


def _decode_checked(frame: bytes | str) -> tuple[object, DriftCounter]:
    """The decoded frame (or the ProtocolError) and its drift, checked against the contract."""
    drift = DriftCounter()
    try:
        result: object = decode_frame(frame, drift=drift)
    except ProtocolError as exc:
        result = exc
    if isinstance(result, ProtocolError):
        assert str(result), "a ProtocolError must say what is wrong"
        assert result.reason in FRAME_PROBLEMS
        return result, drift
    items = result if isinstance(result, list) else [result]
    for item in items:
        assert isinstance(item, DECODED_TYPES)
        if isinstance(item, messages.Message):
            assert _well_typed(item), item
        if isinstance(item, messages.UnknownMessage):
            assert item.type not in wire_keys.DEFAULT_TO_SIMPLE
            assert item.code is None or type(item.code) is str
    # The sink hears of fields by their DEFAULT name, with one of three problems.
    for (data_type, field), count in drift.fields.items():
        assert field in _drift_names(data_type), (data_type, field)
        assert count >= 1
    assert set(drift.problems) <= DRIFT_PROBLEMS
    assert sum(drift.fields.values()) == sum(drift.problems.values()) == drift.total
    return result, drift


def _decode_or_protocol_error(frame: bytes | str) -> object:
    return _decode_checked(frame)[0]


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
    result = _decode_or_protocol_error(orjson.dumps(value))
    # An object of a modelled type whose identity is readable always decodes, as that type.
    items = value if isinstance(value, list) else [value]
    decoded = result if isinstance(result, list) else [result] * len(items)
    if isinstance(result, ProtocolError) and isinstance(value, list):
        return  # which element failed is not known; each is checked alone below
    for item, outcome in zip(items, decoded, strict=True):
        data_type = _readable_type(item)
        if data_type is not None:
            assert isinstance(outcome, messages.Message), outcome
            assert outcome.type == data_type


def _readable_type(item: dict[str, Any]) -> str | None:
    """The type of ``item`` if it is a modelled one and its identity is readable (dispatching
    as the decoder does: on ``type`` unless that is absent or null, then on ``ty``)."""
    data_type, simple = item.get("type"), False
    if data_type is None:
        data_type, simple = item.get("ty"), True
    if type(data_type) is not str or data_type not in wire_keys.DEFAULT_TO_SIMPLE:
        return None
    table = wire_keys.DEFAULT_TO_SIMPLE[data_type]
    readable = all(
        type(item.get(table[name] if simple else name)) is (int if name == "sequential_id" else str)
        for name in IDENTITY & set(table)
    )
    return data_type if readable else None


@examples(150)
@given(wire_like)
def test_wire_like_objects_with_readable_identity_decode(value: dict[str, Any]) -> None:
    data_type = value.get("type", value.get("ty"))
    assume(isinstance(data_type, str) and data_type in wire_keys.DEFAULT_TO_SIMPLE)
    assert isinstance(data_type, str)
    simple = "type" not in value
    table = wire_keys.DEFAULT_TO_SIMPLE[data_type]
    value = dict(value, **{table["type"] if simple else "type": data_type})
    if "code" in table:
        value[table["code"] if simple else "code"] = "KRW-BTC"
    if "sequential_id" in table:
        value[table["sequential_id"] if simple else "sequential_id"] = 1
    result = _decode_or_protocol_error(orjson.dumps(value))
    assert isinstance(result, messages.Message), result
    assert result.type == data_type


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


def _default_name(obj: dict[str, Any], key: str, entry_of: str | None = None) -> str:
    """The DEFAULT name of wire key ``key`` in ``obj`` (a frame, or an entry of its list
    ``entry_of``)."""
    if "type" in obj or (entry_of is not None and key in ENTRY_KEYS[entry_of]):
        return key
    if entry_of is not None:
        return wire_keys.invert(ENTRY_KEYS[entry_of])[key]
    return wire_keys.SIMPLE_TO_DEFAULT[obj["ty"]][key]


def _same(value: object, replacement: object) -> bool:
    """Whether a decoded field holds ``replacement`` as it was sent."""
    if isinstance(value, Decimal):
        return type(replacement) is not bool and value == Decimal(str(replacement))
    if isinstance(value, tuple):
        return isinstance(replacement, list) and len(value) == len(replacement)
    kinds = {type(value), type(replacement)}
    return (len(kinds) == 1 or kinds == {float, int}) and value == replacement


def _default(cls: type[Any], field: str) -> object:
    return attrs.fields_dict(cls)[field].default


def _check_one_field(
    original: dict[str, Any],
    path: tuple[Any, ...],
    delete: bool,
    replacement: object,
    decoded: Any,
    drift: DriftCounter,
) -> None:
    """What a real frame with the value at ``path`` deleted or replaced must decode to."""
    expected: Any = decode_frame(orjson.dumps(original))
    cls = type(expected)
    assert type(decoded) is cls
    assert dict(decoded.extra) == {}
    field = _default_name(original, path[0])
    data_type = expected.type
    usual = field in USUALLY_ABSENT.get(data_type.partition(".")[0], frozenset())
    for other in attrs.fields(cls):  # every other field is intact
        if other.name not in (field, "extra"):
            assert getattr(decoded, other.name) == getattr(expected, other.name), other.name
    # The drift names the broken field, and nothing else.
    assert {name.partition(".")[0] for _, name in drift.fields} <= {field}
    assert {kind for kind, _ in drift.fields} <= {data_type}
    value, was = getattr(decoded, field), getattr(expected, field)
    if len(path) == 1:
        if delete or replacement is None:
            assert value == _default(cls, field)
            problem = "missing" if delete else "null"
            assert drift.fields == ({} if usual else {(data_type, field): 1})
            assert drift.problems == ({} if usual else {problem: 1})
        elif drift.total == 0:
            assert _same(value, replacement), (value, replacement)
        else:
            assert value == _default(cls, field)
            # A list of non-objects in a list field: each entry is left out and counted.
            count = len(replacement) if field in ENTRY_KEYS and isinstance(replacement, list) else 1
            assert drift.fields == {(data_type, field): count}
            assert drift.problems == {"type": count}
        return
    # Inside a list of entries (orderbook units, asset balances): the others are untouched.
    index = path[1]
    assert field in ENTRY_KEYS
    if len(path) == 2:
        if delete:
            assert value == was[:index] + was[index + 1 :]
            assert drift.total == 0
        elif isinstance(replacement, dict):  # an empty object: an entry with nothing known
            entry_cls = type(was[index])
            assert value == (
                *was[:index],
                entry_cls(*[None] * len(attrs.fields(entry_cls))),
                *was[index + 1 :],
            )
            assert drift.problems == {"missing": len(ENTRY_KEYS[field])}
            assert drift.fields == {(data_type, f"{field}.{name}"): 1 for name in ENTRY_KEYS[field]}
        else:  # not an object: left out
            assert value == was[:index] + was[index + 1 :]
            assert drift.fields == {(data_type, field): 1}
            assert drift.problems == {"type": 1}
        return
    assert len(path) == 3
    name = _default_name(original[path[0]][index], path[2], entry_of=field)
    assert len(value) == len(was)
    assert value[:index] + value[index + 1 :] == was[:index] + was[index + 1 :]
    assert attrs.evolve(value[index], **{name: getattr(was[index], name)}) == was[index]
    broken = getattr(value[index], name)
    if delete or replacement is None:
        assert broken is None
        assert drift.fields == {(data_type, f"{field}.{name}"): 1}
        assert drift.problems == {"missing" if delete else "null": 1}
    elif drift.total == 0:
        assert _same(broken, replacement), (broken, replacement)
    else:
        assert broken is None
        assert drift.fields == {(data_type, f"{field}.{name}"): 1}
        assert drift.problems == {"type": 1}


@st.composite
def near_valid_frames(
    draw: st.DrawFn,
) -> tuple[str, tuple[Any, ...], bool, object, bool]:
    """A real frame with one value removed or given a value of another JSON type: the frame's
    name, the path of the value, whether it was deleted, its replacement, and whether the frame
    is wrapped in an array."""
    name = draw(st.sampled_from(sorted(REAL_FRAMES)))
    path = draw(st.sampled_from(_paths(orjson.loads(REAL_FRAMES[name]))))
    delete = draw(st.booleans())
    replacement: object = draw(json_scalars | st.lists(json_scalars, max_size=2) | st.just({}))
    return name, path, delete, replacement, draw(st.booleans())


@examples(400)
@given(near_valid_frames())
def test_near_valid_frames_decode_with_drift(
    case: tuple[str, tuple[Any, ...], bool, object, bool],
) -> None:
    name, path, delete, replacement, wrapped = case
    original = orjson.loads(REAL_FRAMES[name])
    mutated = _mutated(original, path, replacement, delete)
    result, drift = _decode_checked(orjson.dumps([mutated] if wrapped else mutated))
    if name == "LIST_SUBSCRIPTIONS" or _default_name(original, path[0]) in IDENTITY:
        # A reply has no drift to fall back on, and without identity a frame cannot be read.
        items = [result] if not isinstance(result, list) else result
        assert all(isinstance(item, (ProtocolError, *DECODED_TYPES)) for item in items)
        return
    assert not isinstance(result, ProtocolError), result
    decoded = result[0] if isinstance(result, list) else result
    _check_one_field(original, path, delete, replacement, decoded, drift)


def _top_level_keys() -> list[tuple[str, str]]:
    return [(name, key) for name, text in DATA_FRAMES.items() for key in orjson.loads(text)]


@pytest.mark.parametrize(("name", "key"), _top_level_keys())
def test_a_field_of_the_wrong_type_becomes_its_default(name: str, key: str) -> None:
    obj = orjson.loads(DATA_FRAMES[name])
    # An object fits no field of any model (a date object needs year, month and day).
    replacement = {"unexpected": True}
    frame = orjson.dumps(dict(obj, **{key: replacement}))
    field = _default_name(obj, key)
    if field in IDENTITY:
        with pytest.raises(
            ProtocolError, match=key if field != "type" else "not a string"
        ) as caught:
            decode_frame(frame)
        assert caught.value.reason == ("bad_type" if field == "type" else "identity")
        return
    decoded, drift = _decode_checked(frame)
    _check_one_field(obj, (key,), False, replacement, decoded, drift)
    assert drift.total == 1  # counted even for a field Upbit usually omits


@pytest.mark.parametrize(("name", "key"), _top_level_keys())
def test_a_missing_field_is_drift_unless_it_is_identity(name: str, key: str) -> None:
    obj = orjson.loads(DATA_FRAMES[name])
    trimmed = {k: v for k, v in obj.items() if k != key}
    frame = orjson.dumps(trimmed)
    field = _default_name(obj, key)
    if field == "type":
        with pytest.raises(ProtocolError, match="none of 'type'") as caught:
            decode_frame(frame)
        assert caught.value.reason == "unknown_shape"
    elif field in IDENTITY:
        with pytest.raises(ProtocolError, match=f"lacks {key!r}") as caught:
            decode_frame(frame)
        assert caught.value.reason == "identity"
    else:
        decoded, drift = _decode_checked(frame)
        _check_one_field(obj, (key,), True, None, decoded, drift)


@pytest.mark.parametrize(
    ("name", "key", "value", "problem"),
    [
        ("ticker DEFAULT", "trade_price", "116539000", "type"),
        ("ticker DEFAULT", "trade_price", True, "type"),
        ("ticker DEFAULT", "trade_price", None, "null"),
        ("ticker DEFAULT", "timestamp", 1.5, "type"),
        ("ticker DEFAULT", "timestamp", "1790133435161", "type"),
        ("ticker DEFAULT", "timestamp", True, "type"),
        ("ticker DEFAULT", "is_trading_suspended", "no", "type"),
        ("ticker DEFAULT", "is_trading_suspended", 0, "type"),
        ("ticker DEFAULT", "delisting_date", 20261231, "type"),
        ("ticker DEFAULT", "delisting_date", {"year": 2026, "month": "12", "day": 31}, "type"),
        ("ticker DEFAULT", "delisting_date", {"year": 2026, "month": True, "day": 31}, "type"),
        ("ticker DEFAULT", "stream_type", 1, "type"),
        ("ticker SIMPLE", "tms", False, "type"),
        ("ticker SIMPLE", "st", None, "null"),
        ("trade SIMPLE", "bap", None, "null"),
        ("orderbook DEFAULT", "orderbook_units", {}, "type"),
        ("orderbook DEFAULT", "orderbook_units", None, "null"),
        ("orderbook DEFAULT", "orderbook_units", "[]", "type"),
        ("orderbook SIMPLE", "lv", "0", "type"),
        ("orderbook SIMPLE", "lv", False, "type"),
        ("myOrder", "price", "abc", "type"),
        ("myOrder", "price", "NaN", "type"),
        ("myOrder", "price", "-Infinity", "type"),
        ("myOrder", "price", True, "type"),
        ("myOrder", "paid_fee", "sNaN", "type"),
        ("myOrder", "paid_fee", [58.25], "type"),
        ("myOrder", "trades_count", 1.5, "type"),
        ("myOrder", "trades_count", "1", "type"),
        ("myOrder", "is_maker", 1, "type"),
        ("myOrder", "time_in_force", 5, "type"),
        ("myAsset", "assets", {"currency": "KRW"}, "type"),
        ("myAsset", "asset_timestamp", 1.0, "type"),
    ],
)
def test_unreadable_values_become_none_and_are_drift(
    name: str, key: str, value: object, problem: str
) -> None:
    obj = orjson.loads(DATA_FRAMES[name])
    decoded: Any
    decoded, drift = _decode_checked(orjson.dumps(dict(obj, **{key: value})))
    field = _default_name(obj, key)
    assert getattr(decoded, field) == _default(type(decoded), field)
    _check_one_field(obj, (key,), False, value, decoded, drift)
    data_type = decoded.type
    usual = field in USUALLY_ABSENT.get(data_type, frozenset())
    if problem == "null" and usual:
        assert drift.total == 0
    else:
        assert drift.fields == {(data_type, field): 1}
        assert drift.problems == {problem: 1}


@pytest.mark.parametrize(
    ("name", "key", "value", "message"),
    [
        ("ticker DEFAULT", "code", 5, "'code' must be a string"),
        ("ticker DEFAULT", "code", None, "'code' must be a string, not null"),
        ("ticker SIMPLE", "cd", ["KRW-BTC"], "'cd' must be a string"),
        ("trade SIMPLE", "sid", 1.0, "'sid' must be an integer"),
        ("trade DEFAULT", "sequential_id", None, "'sequential_id' must be an integer"),
        ("trade DEFAULT", "sequential_id", True, "'sequential_id' must be an integer"),
        ("myOrder", "code", 1, "'code' must be a string"),
    ],
)
def test_unreadable_identity_is_a_protocol_error(
    name: str, key: str, value: object, message: str
) -> None:
    obj = orjson.loads(DATA_FRAMES[name])
    drift = DriftCounter()
    with pytest.raises(ProtocolError, match=message) as caught:
        decode_frame(orjson.dumps(dict(obj, **{key: value})), drift=drift)
    assert caught.value.reason == "identity"
    assert drift.total == 0


def _pop(key: str) -> Callable[[dict[str, Any]], object]:
    return lambda entry: entry.pop(key)


def _put(key: str, value: object) -> Callable[[dict[str, Any]], object]:
    return lambda entry: entry.update({key: value})


@pytest.mark.parametrize(
    ("name", "list_key", "mutation", "field", "problem"),
    [
        ("orderbook DEFAULT", "orderbook_units", _pop("bid_size"), "bid_size", "missing"),
        ("orderbook DEFAULT", "orderbook_units", _put("ask_price", "1"), "ask_price", "type"),
        ("orderbook DEFAULT", "orderbook_units", _put("ask_size", True), "ask_size", "type"),
        ("orderbook DEFAULT", "orderbook_units", _put("ask_size", {}), "ask_size", "type"),
        ("orderbook SIMPLE", "obu", _put("bs", None), "bid_size", "null"),
        ("orderbook SIMPLE", "obu", _pop("ap"), "ask_price", "missing"),
        ("myAsset", "assets", _put("balance", "lots"), "balance", "type"),
        ("myAsset", "assets", _put("balance", "Infinity"), "balance", "type"),
        ("myAsset", "assets", _put("balance", None), "balance", "null"),
        ("myAsset", "assets", _put("locked", True), "locked", "type"),
        ("myAsset", "assets", _pop("currency"), "currency", "missing"),
        ("myAsset", "assets", _put("currency", 7), "currency", "type"),
    ],
)
def test_a_broken_value_inside_an_entry_is_none_and_named(
    name: str,
    list_key: str,
    mutation: Callable[[dict[str, Any]], object],
    field: str,
    problem: str,
) -> None:
    obj = orjson.loads(DATA_FRAMES[name])
    # A second entry, so that the untouched neighbour shows the break stays local.
    obj[list_key].append(copy.deepcopy(obj[list_key][0]))
    entry = obj[list_key][-1]
    before = set(entry)
    mutation(entry)
    key = next(iter(before - set(entry)), None) or next(
        k for k in entry if _default_name(obj, k, entry_of=_default_name(obj, list_key)) == field
    )
    original = copy.deepcopy(obj)
    original[list_key][-1] = copy.deepcopy(orjson.loads(DATA_FRAMES[name])[list_key][0])
    decoded: Any
    decoded, drift = _decode_checked(orjson.dumps(obj))
    _check_one_field(
        original,
        (list_key, len(obj[list_key]) - 1, key),
        problem == "missing",
        entry.get(key),
        decoded,
        drift,
    )
    data_type = decoded.type
    parent = _default_name(obj, list_key)
    assert drift.fields == {(data_type, f"{parent}.{field}"): 1}
    assert drift.problems == {problem: 1}


@pytest.mark.parametrize(
    ("name", "list_key"),
    [("orderbook DEFAULT", "orderbook_units"), ("orderbook SIMPLE", "obu"), ("myAsset", "assets")],
)
@pytest.mark.parametrize("intruder", [[1, 2, 3, 4], 5, "unit", None, True])
def test_an_entry_that_is_not_an_object_is_left_out(
    name: str, list_key: str, intruder: object
) -> None:
    obj = orjson.loads(DATA_FRAMES[name])
    expected: Any = decode_frame(DATA_FRAMES[name])
    field = _default_name(obj, list_key)
    obj[list_key].insert(0, intruder)
    obj[list_key].append(intruder)
    decoded, drift = _decode_checked(orjson.dumps(obj))
    assert decoded == expected  # every real entry kept, in order
    assert drift.fields == {(expected.type, field): 2}
    assert drift.problems == {"type": 2}


def test_integers_beyond_64_bits() -> None:
    huge = "1" + "0" * 40
    # Money is exact in Decimal, however long the integer.
    decoded, drift = _decode_checked(MY_ASSET.replace("1386929.37231066", huge))
    assert isinstance(decoded, messages.MyAsset)
    assert decoded.assets[0].balance == Decimal(huge)
    assert drift.total == 0
    # The exact parser's integers are unbounded; one beyond a double is no float field value.
    with pytest.raises(ProtocolError, match="out of the range of a double"):
        _decode._to_float(10**400)
    # orjson reads such an integer as a float, which a timestamp cannot hold: drift, not an error.
    expected = decode_frame(TRADE_DEFAULT)
    decoded, drift = _decode_checked(TRADE_DEFAULT.replace("1790133514039", huge))
    assert decoded == attrs.evolve(expected, timestamp=None)  # type: ignore[misc]
    assert drift.fields == {("trade", "timestamp"): 1}
    assert drift.problems == {"type": 1}
    # The largest unsigned 64-bit integer is still an integer.
    decoded, drift = _decode_checked(TRADE_DEFAULT.replace("1790133514039", str(2**64 - 1)))
    assert isinstance(decoded, messages.Trade)
    assert decoded.timestamp == 2**64 - 1
    assert drift.total == 0


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
