"""The models of engine.wire.messages: every documented field, frozen, slotted, typed as promised.

They are tolerant readers: only identity is required, every other field is optional (``None`` or a
neutral default), and keys the models do not know travel in ``extra``, outside equality.
"""

from __future__ import annotations

import copy
import pickle
import typing
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import attrs
import orjson
import pytest

from engine.wire import keys as wire_keys
from engine.wire import messages
from engine.wire.protocol import decode_frame, encode_frame
from tests.engine.test_protocol_decode import (
    MY_ASSET,
    MY_ORDER,
    ORDERBOOK_DEFAULT,
    TICKER_DEFAULT,
    TRADE_SIMPLE,
)

MESSAGE_TYPES = {
    "ticker": messages.Ticker,
    "trade": messages.Trade,
    "orderbook": messages.Orderbook,
    "candle.1m": messages.Candle,
    "myOrder": messages.MyOrder,
    "myAsset": messages.MyAsset,
}
NESTED = {
    messages.OrderbookUnit: wire_keys.ORDERBOOK_UNIT_KEYS,
    messages.AssetBalance: wire_keys.ASSET_KEYS,
    messages.SubscriptionEntry: wire_keys.SUBSCRIPTION_ENTRY_KEYS,
    messages.SubscriptionList: wire_keys.LIST_SUBSCRIPTIONS_KEYS,
}
ALL_MODELS: tuple[type[Any], ...] = (
    *typing.get_args(messages.Message),
    *typing.get_args(messages.Reply),
    messages.OrderbookUnit,
    messages.AssetBalance,
    messages.SubscriptionEntry,
    messages.UnknownMessage,
)
#: What a frame cannot be decoded without: everything else may be missing.
IDENTITY: dict[type[Any], tuple[str, ...]] = {
    messages.Ticker: ("type", "code"),
    messages.Trade: ("type", "code", "sequential_id"),
    messages.Orderbook: ("type", "code"),
    messages.Candle: ("type", "code"),
    messages.MyOrder: ("type", "code"),
    messages.MyAsset: ("type",),
}
#: Optional fields whose default is not None.
NEUTRAL_DEFAULTS: dict[str, object] = {
    "stream_type": "REALTIME",
    "level": 0.0,
    "orderbook_units": (),
    "assets": (),
    "extra": messages.NO_EXTRA,
}


def _names(cls: type[Any]) -> set[str]:
    return {field.name for field in attrs.fields(cls)}


@pytest.mark.parametrize(("data_type", "cls"), MESSAGE_TYPES.items())
def test_models_have_every_documented_field(data_type: str, cls: type[Any]) -> None:
    # wire_keys holds Upbit's field tables (docs/UPBIT.md, Field tables); the models match them,
    # plus ``extra`` for the keys they do not know, as their last attribute.
    assert _names(cls) - {"extra"} == set(wire_keys.DEFAULT_TO_SIMPLE[data_type])
    assert attrs.fields(cls)[-1].name == "extra"


@pytest.mark.parametrize("cls", IDENTITY, ids=lambda cls: cls.__name__)
def test_only_identity_is_required_and_it_comes_first(cls: type[Any]) -> None:
    fields = attrs.fields(cls)
    required = [field.name for field in fields if field.default is attrs.NOTHING]
    assert required == list(IDENTITY[cls])
    assert [field.name for field in fields[: len(required)]] == required
    # So a model can be built from its identity alone, every other field at its default.
    minimal = cls(**{name: _identity_value(name) for name in required})
    for field in fields[len(required) :]:
        assert getattr(minimal, field.name) == NEUTRAL_DEFAULTS.get(field.name), field.name


def _identity_value(name: str) -> object:
    return {"type": "ticker", "code": "KRW-BTC", "sequential_id": 1}[name]


@pytest.mark.parametrize("cls", IDENTITY, ids=lambda cls: cls.__name__)
def test_every_optional_field_admits_none_or_has_a_neutral_default(cls: type[Any]) -> None:
    hints = typing.get_type_hints(cls)
    for field in attrs.fields(cls)[len(IDENTITY[cls]) :]:
        if field.name in NEUTRAL_DEFAULTS:
            assert field.default == NEUTRAL_DEFAULTS[field.name], field.name
            assert type(None) not in typing.get_args(hints[field.name]), field.name
        else:
            assert field.default is None, field.name
            assert type(None) in typing.get_args(hints[field.name]), field.name


@pytest.mark.parametrize(("cls", "table"), NESTED.items(), ids=lambda x: getattr(x, "__name__", ""))
def test_nested_models_match_their_tables(cls: type[Any], table: typing.Mapping[str, str]) -> None:
    assert _names(cls) == set(table)


def test_the_aliases_name_every_model() -> None:
    assert set(typing.get_args(messages.Message)) == set(MESSAGE_TYPES.values())
    assert set(typing.get_args(messages.Reply)) == {
        messages.StatusUp,
        messages.ErrorReply,
        messages.SubscriptionList,
    }
    assert set(messages.__all__) >= {cls.__name__ for cls in ALL_MODELS}


@pytest.mark.parametrize("cls", ALL_MODELS, ids=lambda cls: cls.__name__)
def test_models_are_frozen_and_slotted(cls: type[Any]) -> None:
    assert "__dict__" not in dir(cls)
    assert "__slots__" in vars(cls)
    assert attrs.has(cls)
    instance: Any = cls.__new__(cls)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        instance.anything = 1


def test_value_types_follow_the_spec() -> None:
    ticker = typing.get_type_hints(messages.Ticker)
    assert (ticker["type"], ticker["code"]) == (str, str)
    assert ticker["trade_price"] == float | None
    assert ticker["timestamp"] == int | None
    assert ticker["change"] == str | None
    assert ticker["is_trading_suspended"] == bool | None
    assert ticker["delisting_date"] == str | None
    assert ticker["stream_type"] is str
    assert ticker["extra"] == Mapping[str, Any]
    trade = typing.get_type_hints(messages.Trade)
    assert trade["sequential_id"] is int
    assert trade["best_ask_price"] == float | None
    order = typing.get_type_hints(messages.MyOrder)
    assert order["paid_fee"] == Decimal | None
    assert order["trades_count"] == int | None
    assert order["trade_fee"] == Decimal | None
    assert order["is_maker"] == bool | None
    balance = typing.get_type_hints(messages.AssetBalance)
    assert balance == {"currency": str | None, "balance": Decimal | None, "locked": Decimal | None}
    unit = typing.get_type_hints(messages.OrderbookUnit)
    assert set(unit.values()) == {float | None}
    book = typing.get_type_hints(messages.Orderbook)
    assert book["orderbook_units"] == tuple[messages.OrderbookUnit, ...]
    assert book["level"] is float
    assert typing.get_type_hints(messages.MyAsset)["assets"] == tuple[messages.AssetBalance, ...]
    unknown = typing.get_type_hints(messages.UnknownMessage)
    assert unknown == {
        "type": str,
        "code": str | None,
        "stream_type": str,
        "fields": Mapping[str, Any],
    }


def test_error_reply_message_defaults_to_empty() -> None:
    assert messages.ErrorReply("NO_TICKET") == messages.ErrorReply("NO_TICKET", "")


@pytest.mark.parametrize("cls", IDENTITY, ids=lambda cls: cls.__name__)
def test_extra_takes_no_part_in_equality_hash_or_positional_construction(
    cls: type[Any],
) -> None:
    field = attrs.fields_dict(cls)["extra"]
    assert field.default is messages.NO_EXTRA
    assert field.eq is False
    assert isinstance(messages.NO_EXTRA, Mapping)
    assert dict(messages.NO_EXTRA) == {}
    identity = {name: _identity_value(name) for name in IDENTITY[cls]}
    plain = cls(**identity)
    with_extra = cls(**identity, extra={"new_key": [1, {"a": 2}]})  # unhashable values too
    assert plain == with_extra
    assert hash(plain) == hash(with_extra)
    assert "new_key" in repr(with_extra)
    assert "new_key" not in repr(plain)


@pytest.mark.parametrize("frame", [TICKER_DEFAULT, ORDERBOOK_DEFAULT, MY_ASSET, MY_ORDER])
def test_decoded_models_behave_like_constructed_ones(frame: str) -> None:
    decoded = decode_frame(frame)
    assert isinstance(decoded, messages.Message)
    rebuilt = type(decoded)(**attrs.asdict(decoded, recurse=False))
    assert decoded == rebuilt
    assert hash(decoded) == hash(rebuilt)
    assert repr(decoded) == repr(rebuilt)
    assert attrs.evolve(decoded, timestamp=1).timestamp == 1
    assert decode_frame(encode_frame(decoded)) == decoded


def test_decoded_models_with_extra_keys_behave_like_constructed_ones() -> None:
    obj = orjson.loads(TRADE_SIMPLE)
    obj["nw"] = {"nested": [1, 2]}
    decoded = decode_frame(orjson.dumps(obj))
    assert isinstance(decoded, messages.Trade)
    rebuilt = messages.Trade(**attrs.asdict(decoded, recurse=False))
    assert dict(rebuilt.extra) == dict(decoded.extra) == {"nw": {"nested": [1, 2]}}
    assert repr(decoded) == repr(rebuilt)
    assert attrs.evolve(decoded, timestamp=1).extra == decoded.extra


@pytest.mark.parametrize(
    "frame",
    [TICKER_DEFAULT, ORDERBOOK_DEFAULT, MY_ASSET, TRADE_SIMPLE.replace('"st"', '"new"')],
    ids=["ticker", "orderbook", "myAsset", "trade with extra"],
)
def test_models_survive_pickle_and_deepcopy(frame: str) -> None:
    # Models are plain values: they must cross process boundaries and be deep-copied, ``extra``
    # included (a recorded frame is replayed elsewhere, a test fixture is copied).
    decoded = decode_frame(frame)
    assert isinstance(decoded, messages.Message)
    for copied in (pickle.loads(pickle.dumps(decoded)), copy.deepcopy(decoded)):
        assert copied == decoded
        assert type(copied) is type(decoded)
        assert dict(copied.extra) == dict(decoded.extra)


def test_status_up_instances_are_all_equal() -> None:
    assert messages.StatusUp() == messages.StatusUp()
    assert len({messages.StatusUp(), messages.StatusUp()}) == 1


def test_a_candle_knows_its_period_start() -> None:
    from engine.wire.messages import Candle

    candle = Candle(type="candle.1m", code="KRW-BTC", candle_date_time_utc="2026-01-01T00:01:00")
    assert candle.period_start_ms == 1_767_225_660_000  # no offset: UTC, as Upbit sends it
    with_offset = Candle(
        type="candle.1m", code="X", candle_date_time_utc="2026-01-01T09:01:00+09:00"
    )
    assert with_offset.period_start_ms == candle.period_start_ms
    assert Candle(type="candle.1m", code="X").period_start_ms is None
    assert Candle(type="candle.1m", code="X", candle_date_time_utc="soon").period_start_ms is None
