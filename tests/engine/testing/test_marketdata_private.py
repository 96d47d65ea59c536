"""``make_my_order`` / ``make_my_asset``: every documented field, state rules, exact money."""

from __future__ import annotations

import json
import re
from decimal import Decimal

import orjson
import pytest

from engine.testing.marketdata import make_my_asset, make_my_order
from engine.wire.keys import ASSET_KEYS, DEFAULT_TO_SIMPLE

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
MONEY = (
    "price",
    "avg_price",
    "volume",
    "remaining_volume",
    "executed_volume",
    "reserved_fee",
    "remaining_fee",
    "paid_fee",
    "locked",
    "executed_funds",
    "prevented_volume",
    "prevented_locked",
)


def _exact(message: dict[str, object]) -> dict[str, object]:
    """What a client decoding with Decimal numbers reads from the wire."""
    parsed = json.loads(orjson.dumps(message), parse_float=Decimal)
    assert isinstance(parsed, dict)
    return parsed


def test_a_fill_has_every_documented_field() -> None:
    order = make_my_order(
        code="KRW-BTC", price=116_500_000, volume="0.001", identifier="cli-42", seed=1
    )
    assert set(order) == set(DEFAULT_TO_SIMPLE["myOrder"])
    assert order["type"] == "myOrder"
    assert order["state"] == "trade"
    assert order["stream_type"] == "REALTIME"
    assert UUID.fullmatch(str(order["uuid"]))
    assert UUID.fullmatch(str(order["trade_uuid"]))
    assert order["uuid"] != order["trade_uuid"]
    wire = _exact(order)
    assert wire["price"] == Decimal("116500000.0")
    assert wire["executed_volume"] == Decimal("0.001")
    assert wire["remaining_volume"] == 0
    assert wire["executed_funds"] == Decimal("116500.0")
    assert wire["paid_fee"] == Decimal("58.25")
    assert wire["trade_fee"] == Decimal("58.25")
    assert wire["reserved_fee"] == Decimal("58.25")
    assert wire["locked"] == 0
    assert order["trades_count"] == 1
    assert order["is_maker"] is True
    assert order["trade_timestamp"] == order["timestamp"]
    assert order["order_timestamp"] < order["timestamp"]  # type: ignore[operator]
    assert order["time_in_force"] is None
    assert order["smp_type"] is None
    assert order["identifier"] == "cli-42"
    for key in MONEY:
        assert isinstance(order[key], float), key


def test_an_open_order_has_null_fill_fields() -> None:
    order = make_my_order(code="KRW-ETH", state="wait", price="4200000", volume="0.5")
    assert set(order) == set(DEFAULT_TO_SIMPLE["myOrder"])
    for key in ("trade_uuid", "trade_fee", "is_maker", "trade_timestamp"):
        assert order[key] is None, key
    wire = _exact(order)
    assert wire["executed_volume"] == 0
    assert wire["remaining_volume"] == Decimal("0.5")
    assert order["trades_count"] == 0
    assert wire["avg_price"] == 0
    # A BID reserves funds plus the fee on them.
    assert wire["reserved_fee"] == Decimal("1050.0")
    assert wire["locked"] == Decimal("2101050.0")


def test_an_open_ask_locks_the_volume() -> None:
    order = make_my_order(code="KRW-XRP", state="watch", ask_bid="ASK", price=3200, volume=15)
    wire = _exact(order)
    assert wire["locked"] == 15
    assert wire["reserved_fee"] == 0


def test_cancel_and_prevented_states() -> None:
    cancelled = _exact(
        make_my_order(code="KRW-BTC", state="cancel", volume="1", executed_volume="0.25")
    )
    assert cancelled["remaining_volume"] == Decimal("0.75")
    prevented = _exact(
        make_my_order(code="KRW-BTC", state="prevented", volume="1", smp_type="cancel_maker")
    )
    assert prevented["prevented_volume"] == 1
    assert prevented["prevented_locked"] == 10000
    assert prevented["smp_type"] == "cancel_maker"


def test_exact_amounts_survive_past_float_precision() -> None:
    balance = "1386929.372310660000000001234"
    asset = make_my_asset(
        assets=[("KRW", balance, "10329.67012748"), ("BTC", Decimal("0.5"), 0)], seed=3
    )
    assert set(asset) == set(DEFAULT_TO_SIMPLE["myAsset"])
    wire = _exact(asset)
    rows = wire["assets"]
    assert isinstance(rows, list)
    assert rows[0] == {
        "currency": "KRW",
        "balance": Decimal(balance),
        "locked": Decimal("10329.67012748"),
    }
    assert rows[1]["balance"] == Decimal("0.5")
    assert set(rows[0]) == set(ASSET_KEYS)
    assert UUID.fullmatch(str(asset["asset_uuid"]))
    assert asset["asset_timestamp"] <= asset["timestamp"]  # type: ignore[operator]
    precise = make_my_order(code="KRW-BTC", price="116500000", volume="0.123456789012345678")
    assert _exact(precise)["volume"] == Decimal("0.123456789012345678")


def test_seeded_uuids_are_stable() -> None:
    assert make_my_order(code="KRW-BTC", seed=4) == make_my_order(code="KRW-BTC", seed=4)
    assert (
        make_my_order(code="KRW-BTC", seed=4)["uuid"]
        != make_my_order(code="KRW-BTC", seed=5)["uuid"]
    )
    fixed = make_my_order(code="KRW-BTC", uuid="u-1", trade_uuid="t-1")
    assert (fixed["uuid"], fixed["trade_uuid"]) == ("u-1", "t-1")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"state": "filled"}, "state must be one of"),
        ({"ask_bid": "buy"}, "ask_bid must be one of"),
        ({"order_type": "stop"}, "order_type must be one of"),
        ({"time_in_force": "gtc"}, "time_in_force must be one of"),
        ({"smp_type": "none"}, "smp_type must be one of"),
        ({"price": "abc"}, "price must be a decimal number"),
        ({"volume": float("nan")}, "volume must be finite"),
    ],
)
def test_bad_order_fields_are_rejected(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make_my_order(code="KRW-BTC", **kwargs)  # type: ignore[arg-type]


def test_bad_assets_are_rejected() -> None:
    with pytest.raises(ValueError, match=r"\(currency, balance, locked\)"):
        make_my_asset(assets=[("KRW", "1")])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="balance of KRW must be a number"):
        make_my_asset(assets=[("KRW", None, "0")])  # type: ignore[list-item]
