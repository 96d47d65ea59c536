"""The models of engine.messages: every documented field, frozen, slotted, typed as promised."""

from __future__ import annotations

import pickle
import typing
from decimal import Decimal
from typing import Any

import attrs
import pytest

from engine import messages, wire_keys
from engine.protocol import decode_frame, encode_frame
from tests.engine.test_protocol_decode import MY_ASSET, ORDERBOOK_DEFAULT, TICKER_DEFAULT

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
)


def _names(cls: type[Any]) -> set[str]:
    return {field.name for field in attrs.fields(cls)}


@pytest.mark.parametrize(("data_type", "cls"), MESSAGE_TYPES.items())
def test_models_have_every_documented_field(data_type: str, cls: type[Any]) -> None:
    # wire_keys holds Upbit's field tables (UPBIT-PROTOCOL.md 4.3); the models must match them.
    assert _names(cls) == set(wire_keys.DEFAULT_TO_SIMPLE[data_type])


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
    hints = typing.get_type_hints(messages.Ticker)
    assert hints["trade_price"] is float
    assert hints["timestamp"] is int
    assert hints["change"] is str
    assert hints["is_trading_suspended"] == bool | None
    assert typing.get_type_hints(messages.Trade)["sequential_id"] is int
    order = typing.get_type_hints(messages.MyOrder)
    assert order["paid_fee"] is Decimal
    assert order["trades_count"] is int
    assert order["trade_fee"] == Decimal | None
    assert typing.get_type_hints(messages.AssetBalance)["balance"] is Decimal
    units = typing.get_type_hints(messages.Orderbook)["orderbook_units"]
    assert units == tuple[messages.OrderbookUnit, ...]


def _defaulted(cls: type[Any]) -> dict[str, object]:
    return {f.name: f.default for f in attrs.fields(cls) if f.default is not attrs.NOTHING}


def test_fields_upbit_may_omit_have_defaults() -> None:
    assert _defaulted(messages.Ticker) == dict.fromkeys(
        ("is_trading_suspended", "delisting_date", "market_warning")
    )
    assert _defaulted(messages.Orderbook) == {"level": 0.0}
    assert _defaulted(messages.ErrorReply) == {"message": ""}
    assert _defaulted(messages.Trade) == _defaulted(messages.Candle) == {}
    # myOrder: the fields that are null outside fills or for some order types.
    assert set(_defaulted(messages.MyOrder)) == {
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
    assert set(_defaulted(messages.MyOrder).values()) == {None}


@pytest.mark.parametrize("frame", [TICKER_DEFAULT, ORDERBOOK_DEFAULT, MY_ASSET])
def test_decoded_models_behave_like_constructed_ones(frame: str) -> None:
    decoded = decode_frame(frame)
    assert isinstance(decoded, messages.Ticker | messages.Orderbook | messages.MyAsset)
    rebuilt = type(decoded)(**attrs.asdict(decoded, recurse=False))
    assert decoded == rebuilt
    assert hash(decoded) == hash(rebuilt)
    assert repr(decoded) == repr(rebuilt)
    assert pickle.loads(pickle.dumps(decoded)) == decoded
    assert attrs.evolve(decoded, timestamp=1).timestamp == 1
    assert decode_frame(encode_frame(decoded)) == decoded


def test_status_up_instances_are_all_equal() -> None:
    assert messages.StatusUp() == messages.StatusUp()
    assert len({messages.StatusUp(), messages.StatusUp()}) == 1
