"""decode_frame on the example frames of docs/UPBIT.md (Field tables, Errors, Listing subscriptions).

The decoder is a tolerant reader: these documented frames must decode field for field with no
drift reported; departures from them are covered here where they touch the decoder's layouts and
signature caches, and in test_protocol_drift.py otherwise.
"""

# The example frames are copied verbatim from the spec, long lines included.
# ruff: noqa: E501

from __future__ import annotations

from decimal import Decimal
from typing import Any

import attrs
import orjson
import pytest

from engine.errors import ProtocolError
from engine.wire import decode as _decode
from engine.wire.decode import FRAME_PROBLEMS, DriftCounter
from engine.wire.messages import (
    NO_EXTRA,
    AssetBalance,
    Candle,
    ErrorReply,
    MyAsset,
    MyOrder,
    Orderbook,
    OrderbookUnit,
    StatusUp,
    SubscriptionEntry,
    SubscriptionList,
    Ticker,
    Trade,
    UnknownMessage,
)
from engine.wire.protocol import decode_frame

TICKER_DEFAULT = """{"type":"ticker","code":"KRW-BTC","opening_price":116200000.0,"high_price":116900000.0,"low_price":115800000.0,
 "trade_price":116539000.0,"prev_closing_price":116200000.0,"change":"RISE","change_price":339000.0,
 "signed_change_price":339000.0,"change_rate":0.0029173838,"signed_change_rate":0.0029173838,
 "trade_volume":0.0021,"acc_trade_volume":812.55102,"acc_trade_volume_24h":2190.0771,
 "acc_trade_price":94621883411.2,"acc_trade_price_24h":254990122004.1,"trade_date":"20260923",
 "trade_time":"031715","trade_timestamp":1790133435120,"ask_bid":"BID","acc_ask_volume":401.2,
 "acc_bid_volume":411.35102,"highest_52_week_price":163325000.0,"highest_52_week_date":"2026-01-20",
 "lowest_52_week_price":98800000.0,"lowest_52_week_date":"2025-11-03","market_state":"ACTIVE",
 "is_trading_suspended":false,"delisting_date":null,"market_warning":"NONE",
 "timestamp":1790133435161,"stream_type":"REALTIME"}"""

TICKER_SIMPLE = """{"ty":"ticker","cd":"KRW-BTC","op":116200000.0,"hp":116900000.0,"lp":115800000.0,"tp":116539000.0,
 "pcp":116200000.0,"c":"RISE","cp":339000.0,"scp":339000.0,"cr":0.0029173838,"scr":0.0029173838,
 "tv":0.0021,"atv":812.55102,"atv24h":2190.0771,"atp":94621883411.2,"atp24h":254990122004.1,
 "tdt":"20260923","ttm":"031715","ttms":1790133435120,"ab":"BID","aav":401.2,"abv":411.35102,
 "h52wp":163325000.0,"h52wdt":"2026-01-20","l52wp":98800000.0,"l52wdt":"2025-11-03","ms":"ACTIVE",
 "its":false,"dd":null,"mw":"NONE","tms":1790133435161,"st":"SNAPSHOT"}"""

TRADE_DEFAULT = """{"type":"trade","code":"KRW-BTC","timestamp":1790133514039,"trade_date":"2026-09-23","trade_time":"03:18:34",
 "trade_timestamp":1790133513990,"trade_price":116540000.0,"trade_volume":0.00412,"ask_bid":"BID",
 "prev_closing_price":116200000.0,"change":"RISE","change_price":340000.0,
 "sequential_id":17901335139900000,"best_ask_price":116540000,"best_ask_size":0.021,
 "best_bid_price":116539000,"best_bid_size":0.08,"stream_type":"REALTIME"}"""

TRADE_SIMPLE = """{"ty":"trade","cd":"KRW-BTC","tms":1790133514039,"td":"2026-09-23","ttm":"03:18:34","ttms":1790133513990,
 "tp":116540000.0,"tv":0.00412,"ab":"BID","pcp":116200000.0,"c":"RISE","cp":340000.0,
 "sid":17901335139900000,"bap":116540000,"bas":0.021,"bbp":116539000,"bbs":0.08,"st":"REALTIME"}"""

ORDERBOOK_DEFAULT = """{"type":"orderbook","code":"KRW-BTC","timestamp":1790134742106,"total_ask_size":2.51469375,
 "total_bid_size":1.63815297,"orderbook_units":[
  {"ask_price":1.16539E8,"bid_price":1.16538E8,"ask_size":0.02054761,"bid_size":0.08120946},
  {"ask_price":1.16542E8,"bid_price":1.16537E8,"ask_size":0.00077720,"bid_size":0.01129382}],
 "stream_type":"SNAPSHOT","level":0}"""

ORDERBOOK_SIMPLE = """{"ty":"orderbook","cd":"KRW-BTC","tms":1790134773006,"tas":0.48514983,"tbs":2.2403413,
 "obu":[{"ap":116606000,"bp":116534000,"as":0.06288509,"bs":7.9276E-4}],"st":"REALTIME","lv":0}"""

CANDLE = """{"type":"candle.1m","code":"KRW-BTC","candle_date_time_utc":"2026-09-23T03:18:00",
 "candle_date_time_kst":"2026-09-23T12:18:00","opening_price":116500000.0,"high_price":116560000.0,
 "low_price":116480000.0,"trade_price":116540000.0,"candle_acc_trade_volume":0.7132,
 "candle_acc_trade_price":83112402.9,"timestamp":1790133514049,"stream_type":"REALTIME"}"""

MY_ORDER = """{"type":"myOrder","code":"KRW-BTC","uuid":"ac2dc2a3-fce9-40a2-a4f6-5987c25c438f","ask_bid":"BID",
 "order_type":"limit","state":"trade","trade_uuid":"68315169-fba4-4175-ade3-aff14a616657",
 "price":116500000.0,"avg_price":116500000.0,"volume":0.001,"remaining_volume":0.0,"executed_volume":0.001,
 "trades_count":1,"reserved_fee":58.25,"remaining_fee":0.0,"paid_fee":58.25,"locked":0.0,
 "executed_funds":116500.0,"time_in_force":null,"trade_fee":58.25,"is_maker":true,"identifier":"cli-42",
 "smp_type":null,"prevented_volume":0,"prevented_locked":0,"trade_timestamp":1790133600421,
 "order_timestamp":1790133590000,"timestamp":1790133600500,"stream_type":"REALTIME"}"""

MY_ASSET = """{"type":"myAsset","asset_uuid":"e635f223-1609-4969-8fb6-4376937baad6",
 "assets":[{"currency":"KRW","balance":1386929.37231066,"locked":10329.67012748}],
 "asset_timestamp":1790133600410,"timestamp":1790133600418,"stream_type":"REALTIME"}"""

STATUS_UP = """{"status":"UP"}"""

LIST_REPLY = """{"method":"LIST_SUBSCRIPTIONS",
 "result":[{"type":"ticker","codes":["KRW-BTC","KRW-ETH"]},
           {"type":"orderbook","codes":["KRW-BTC","KRW-ETH"],"level":0}],
 "ticket":"0e66c0ac-7e13-43ef-91fb-2a87c2956c49"}"""

PRIVATE_LIST_REPLY = """{"method":"LIST_SUBSCRIPTIONS",
 "result":[{"type":"myAsset"},{"type":"myOrder","codes":["KRW-BTC","KRW-ETH"]}],
 "ticket":"priv-1"}"""

EXPECTED_TICKER = Ticker(
    type="ticker",
    code="KRW-BTC",
    opening_price=116200000.0,
    high_price=116900000.0,
    low_price=115800000.0,
    trade_price=116539000.0,
    prev_closing_price=116200000.0,
    change="RISE",
    change_price=339000.0,
    signed_change_price=339000.0,
    change_rate=0.0029173838,
    signed_change_rate=0.0029173838,
    trade_volume=0.0021,
    acc_trade_volume=812.55102,
    acc_trade_volume_24h=2190.0771,
    acc_trade_price=94621883411.2,
    acc_trade_price_24h=254990122004.1,
    trade_date="20260923",
    trade_time="031715",
    trade_timestamp=1790133435120,
    ask_bid="BID",
    acc_ask_volume=401.2,
    acc_bid_volume=411.35102,
    highest_52_week_price=163325000.0,
    highest_52_week_date="2026-01-20",
    lowest_52_week_price=98800000.0,
    lowest_52_week_date="2025-11-03",
    market_state="ACTIVE",
    timestamp=1790133435161,
    stream_type="REALTIME",
    is_trading_suspended=False,
    delisting_date=None,
    market_warning="NONE",
)

EXPECTED_TRADE = Trade(
    type="trade",
    code="KRW-BTC",
    trade_price=116540000.0,
    trade_volume=0.00412,
    ask_bid="BID",
    prev_closing_price=116200000.0,
    change="RISE",
    change_price=340000.0,
    trade_date="2026-09-23",
    trade_time="03:18:34",
    trade_timestamp=1790133513990,
    timestamp=1790133514039,
    sequential_id=17901335139900000,
    best_ask_price=116540000,
    best_ask_size=0.021,
    best_bid_price=116539000,
    best_bid_size=0.08,
    stream_type="REALTIME",
)


def _assert_fields(actual: object, expected: Any) -> None:
    """Field by field, so a failure names the field, with exact value types (``extra``, which
    equality ignores, included)."""
    assert type(actual) is type(expected)
    cls: Any = type(expected)
    for field in attrs.fields(cls):
        got, want = getattr(actual, field.name), getattr(expected, field.name)
        assert got == want, field.name
        assert type(got) is type(want), field.name


def decode_counting(frame: bytes | str) -> tuple[object, DriftCounter]:
    """The decoded frame and the drift it reported."""
    counter = DriftCounter()
    return decode_frame(frame, drift=counter), counter


SPEC_FRAMES = {
    "ticker DEFAULT": TICKER_DEFAULT,
    "ticker SIMPLE": TICKER_SIMPLE,
    "trade DEFAULT": TRADE_DEFAULT,
    "trade SIMPLE": TRADE_SIMPLE,
    "orderbook DEFAULT": ORDERBOOK_DEFAULT,
    "orderbook SIMPLE": ORDERBOOK_SIMPLE,
    "candle": CANDLE,
    "myOrder": MY_ORDER,
    "myAsset": MY_ASSET,
    "status": STATUS_UP,
    "LIST_SUBSCRIPTIONS": LIST_REPLY,
    "LIST_SUBSCRIPTIONS private": PRIVATE_LIST_REPLY,
}


@pytest.mark.parametrize("frame", SPEC_FRAMES.values(), ids=SPEC_FRAMES.keys())
def test_documented_frames_report_no_drift_and_no_extra(frame: str) -> None:
    decoded, drift = decode_counting(frame.encode())
    assert (drift.total, drift.fields, drift.problems) == (0, {}, {})
    # A frame without unknown keys shares the one empty mapping.
    assert getattr(decoded, "extra", NO_EXTRA) is NO_EXTRA


@pytest.mark.parametrize("as_bytes", [True, False], ids=["binary", "text"])
def test_ticker_default(as_bytes: bool) -> None:
    frame = TICKER_DEFAULT.encode() if as_bytes else TICKER_DEFAULT
    _assert_fields(decode_frame(frame), EXPECTED_TICKER)


def test_ticker_simple_has_the_same_fields() -> None:
    _assert_fields(
        decode_frame(TICKER_SIMPLE.encode()), attrs.evolve(EXPECTED_TICKER, stream_type="SNAPSHOT")
    )


@pytest.mark.parametrize("frame", [TRADE_DEFAULT, TRADE_SIMPLE], ids=["DEFAULT", "SIMPLE"])
def test_trade(frame: str) -> None:
    decoded = decode_frame(frame.encode())
    _assert_fields(decoded, EXPECTED_TRADE)
    # Upbit wrote these prices without a fraction; the value is unchanged either way.
    assert isinstance(decoded, Trade)
    assert decoded.best_ask_price == 116540000.0
    assert decoded.sequential_id == 17901335139900000


def test_orderbook_default_with_exponent_numbers() -> None:
    decoded = decode_frame(ORDERBOOK_DEFAULT.encode())
    expected = Orderbook(
        type="orderbook",
        code="KRW-BTC",
        total_ask_size=2.51469375,
        total_bid_size=1.63815297,
        orderbook_units=(
            OrderbookUnit(
                ask_price=116539000.0,
                bid_price=116538000.0,
                ask_size=0.02054761,
                bid_size=0.08120946,
            ),
            OrderbookUnit(
                ask_price=116542000.0,
                bid_price=116537000.0,
                ask_size=0.0007772,
                bid_size=0.01129382,
            ),
        ),
        timestamp=1790134742106,
        stream_type="SNAPSHOT",
        level=0,
    )
    _assert_fields(decoded, expected)
    assert isinstance(decoded, Orderbook)
    for got, want in zip(decoded.orderbook_units, expected.orderbook_units, strict=True):
        _assert_fields(got, want)


def test_orderbook_simple_with_integer_prices_and_exponent_sizes() -> None:
    decoded = decode_frame(ORDERBOOK_SIMPLE.encode())
    assert isinstance(decoded, Orderbook)
    assert (decoded.type, decoded.code, decoded.timestamp) == (
        "orderbook",
        "KRW-BTC",
        1790134773006,
    )
    assert (decoded.total_ask_size, decoded.total_bid_size) == (0.48514983, 2.2403413)
    assert (decoded.stream_type, decoded.level) == ("REALTIME", 0)
    (unit,) = decoded.orderbook_units
    assert type(unit) is OrderbookUnit
    assert (unit.ask_price, unit.bid_price) == (116606000, 116534000)
    assert (unit.ask_size, unit.bid_size) == (0.06288509, 0.00079276)


def test_candle() -> None:
    _assert_fields(
        decode_frame(CANDLE.encode()),
        Candle(
            type="candle.1m",
            code="KRW-BTC",
            candle_date_time_utc="2026-09-23T03:18:00",
            candle_date_time_kst="2026-09-23T12:18:00",
            opening_price=116500000.0,
            high_price=116560000.0,
            low_price=116480000.0,
            trade_price=116540000.0,
            candle_acc_trade_volume=0.7132,
            candle_acc_trade_price=83112402.9,
            timestamp=1790133514049,
            stream_type="REALTIME",
        ),
    )


@pytest.mark.parametrize("unit", ["1s", "3m", "240m"])
def test_every_candle_unit_is_a_candle(unit: str) -> None:
    decoded = decode_frame(CANDLE.replace("candle.1m", f"candle.{unit}"))
    assert isinstance(decoded, Candle)
    assert decoded.type == f"candle.{unit}"


def test_my_order_money_is_decimal() -> None:
    _assert_fields(
        decode_frame(MY_ORDER.encode()),
        MyOrder(
            type="myOrder",
            code="KRW-BTC",
            uuid="ac2dc2a3-fce9-40a2-a4f6-5987c25c438f",
            ask_bid="BID",
            order_type="limit",
            state="trade",
            executed_volume=Decimal("0.001"),
            trades_count=1,
            reserved_fee=Decimal("58.25"),
            remaining_fee=Decimal("0.0"),
            paid_fee=Decimal("58.25"),
            locked=Decimal("0.0"),
            executed_funds=Decimal("116500.0"),
            order_timestamp=1790133590000,
            timestamp=1790133600500,
            stream_type="REALTIME",
            trade_uuid="68315169-fba4-4175-ade3-aff14a616657",
            price=Decimal("116500000.0"),
            avg_price=Decimal("116500000.0"),
            volume=Decimal("0.001"),
            remaining_volume=Decimal("0.0"),
            time_in_force=None,
            trade_fee=Decimal("58.25"),
            is_maker=True,
            identifier="cli-42",
            smp_type=None,
            prevented_volume=Decimal(0),
            prevented_locked=Decimal(0),
            trade_timestamp=1790133600421,
        ),
    )


def test_my_asset_keeps_every_digit() -> None:
    decoded = decode_frame(MY_ASSET.encode())
    _assert_fields(
        decoded,
        MyAsset(
            type="myAsset",
            asset_uuid="e635f223-1609-4969-8fb6-4376937baad6",
            assets=(
                AssetBalance(
                    currency="KRW",
                    balance=Decimal("1386929.37231066"),
                    locked=Decimal("10329.67012748"),
                ),
            ),
            asset_timestamp=1790133600410,
            timestamp=1790133600418,
            stream_type="REALTIME",
        ),
    )
    long_balance = MY_ASSET.replace("1386929.37231066", "1386929.3723106612345678901234")
    decoded = decode_frame(long_balance)
    assert isinstance(decoded, MyAsset)
    assert decoded.assets[0].balance == Decimal("1386929.3723106612345678901234")


def test_private_frames_accept_money_as_strings() -> None:
    # Upbit's REST API spells money as strings; the same spelling on the socket must not break.
    decoded, drift = decode_counting(MY_ASSET.replace("1386929.37231066", '"1386929.37231066"'))
    assert isinstance(decoded, MyAsset)
    assert decoded.assets[0].balance == Decimal("1386929.37231066")
    assert drift.total == 0


def test_status_up() -> None:
    assert decode_frame(STATUS_UP.encode()) == StatusUp()
    assert decode_frame(STATUS_UP) == StatusUp()


@pytest.mark.parametrize(
    "frame",
    [
        '{"error":{"name":"WRONG_FORMAT","message":"Format 이 맞지 않습니다."}}',
        '{"error":{"message":"Format 이 맞지 않습니다.","name":"WRONG_FORMAT"}}',
    ],
    ids=["name-first", "message-first"],
)
def test_error_reply_in_either_key_order(frame: str) -> None:
    expected = ErrorReply(name="WRONG_FORMAT", message="Format 이 맞지 않습니다.")
    assert decode_frame(frame.encode("utf-8")) == expected
    assert decode_frame(frame) == expected


def test_error_reply_without_message() -> None:
    assert decode_frame(b'{"error":{"name":"Too Many Requests"}}') == ErrorReply(
        "Too Many Requests"
    )


def test_list_subscriptions_reply() -> None:
    assert decode_frame(LIST_REPLY.encode()) == SubscriptionList(
        method="LIST_SUBSCRIPTIONS",
        result=(
            SubscriptionEntry(type="ticker", codes=("KRW-BTC", "KRW-ETH")),
            SubscriptionEntry(type="orderbook", codes=("KRW-BTC", "KRW-ETH"), level=0.0),
        ),
        ticket="0e66c0ac-7e13-43ef-91fb-2a87c2956c49",
    )


def test_private_list_subscriptions_reply() -> None:
    assert decode_frame(PRIVATE_LIST_REPLY) == SubscriptionList(
        method="LIST_SUBSCRIPTIONS",
        result=(
            SubscriptionEntry(type="myAsset", codes=None, level=None),
            SubscriptionEntry(type="myOrder", codes=("KRW-BTC", "KRW-ETH")),
        ),
        ticket="priv-1",
    )


def test_list_subscriptions_reply_simple_keys() -> None:
    frame = (
        b'{"mthd":"LIST_SUBSCRIPTIONS","rslt":[{"ty":"ticker","cds":["KRW-BTC"]},'
        b'{"ty":"orderbook","cds":["KRW-BTC"],"lv":10}],"tckt":"t-1"}'
    )
    assert decode_frame(frame) == SubscriptionList(
        method="LIST_SUBSCRIPTIONS",
        result=(
            SubscriptionEntry(type="ticker", codes=("KRW-BTC",)),
            SubscriptionEntry(type="orderbook", codes=("KRW-BTC",), level=10.0),
        ),
        ticket="t-1",
    )


def test_list_subscriptions_numeric_ticket_of_the_old_docs() -> None:
    decoded = decode_frame(b'{"method":"LIST_SUBSCRIPTIONS","result":[],"ticket":12345}')
    assert decoded == SubscriptionList(method="LIST_SUBSCRIPTIONS", result=(), ticket="12345")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (TICKER_SIMPLE, attrs.evolve(EXPECTED_TICKER, stream_type="SNAPSHOT")),
        (TRADE_DEFAULT, EXPECTED_TRADE),
    ],
    ids=["SIMPLE_LIST", "JSON_LIST"],
)
def test_list_formats_give_a_list(text: str, expected: object) -> None:
    assert decode_frame(f"[{text}]".encode()) == [expected]
    assert decode_frame(f"[{text},{STATUS_UP}]") == [expected, StatusUp()]
    assert decode_frame(b"[]") == []


def test_list_mixing_private_and_public_objects() -> None:
    decoded = decode_frame(f"[{MY_ASSET},{TRADE_DEFAULT}]".encode())
    assert isinstance(decoded, list)
    asset, trade = decoded
    assert isinstance(asset, MyAsset)
    assert asset.assets[0].balance == Decimal("1386929.37231066")
    # Market data stays float even though this frame took the exact (Decimal) parser.
    _assert_fields(trade, EXPECTED_TRADE)


def test_unknown_keys_are_kept_in_extra_and_are_no_drift() -> None:
    obj = orjson.loads(TICKER_DEFAULT)
    obj["brand_new_field"] = {"nested": [1, 2]}
    obj["orderbook_units"] = "not this type's field"
    decoded, drift = decode_counting(orjson.dumps(obj))
    _assert_fields(attrs.evolve(decoded, extra=NO_EXTRA), EXPECTED_TICKER)  # type: ignore[misc]
    assert dict(decoded.extra) == {  # type: ignore[attr-defined]
        "brand_new_field": {"nested": [1, 2]},
        "orderbook_units": "not this type's field",
    }
    assert drift.total == 0
    # Keys inside an orderbook unit are not kept (units have no extra), and cost nothing.
    book = orjson.loads(ORDERBOOK_SIMPLE)
    book["obu"][0]["extra"] = "x"
    decoded_book, drift = decode_counting(orjson.dumps(book))
    assert decoded_book == decode_frame(ORDERBOOK_SIMPLE)
    assert drift.total == 0


def test_deprecated_ticker_fields_may_be_absent() -> None:
    obj = orjson.loads(TICKER_DEFAULT)
    for key in ("is_trading_suspended", "market_warning", "delisting_date"):
        del obj[key]
    decoded, drift = decode_counting(orjson.dumps(obj))
    _assert_fields(
        decoded,
        attrs.evolve(
            EXPECTED_TICKER, is_trading_suspended=None, market_warning=None, delisting_date=None
        ),
    )
    # Upbit documents these as absent in normal operation: not drift.
    assert drift.total == 0


@pytest.mark.parametrize(
    "absent",
    [
        ("is_trading_suspended",),
        ("market_warning",),
        ("is_trading_suspended", "market_warning"),
        ("is_trading_suspended", "delisting_date", "market_warning"),
    ],
)
def test_any_set_of_optional_ticker_fields_may_be_absent(absent: tuple[str, ...]) -> None:
    obj = orjson.loads(TICKER_DEFAULT)
    for key in absent:
        del obj[key]
    expected = attrs.evolve(EXPECTED_TICKER, **dict.fromkeys(absent))  # type: ignore[arg-type]
    for _ in range(2):  # the second decode reuses the layout learnt by the first
        decoded, drift = decode_counting(orjson.dumps(obj))
        _assert_fields(decoded, expected)
        assert drift.total == 0


def test_optional_fields_coming_back_are_read() -> None:
    # The decoder learns that a stream stopped sending a field; it must notice its return.
    obj = orjson.loads(TICKER_DEFAULT)
    del obj["market_warning"], obj["is_trading_suspended"]
    trimmed = orjson.dumps(obj)
    obj["is_trading_suspended"] = True
    only_one_back = orjson.dumps(obj)
    for frame, expected in [
        (trimmed, attrs.evolve(EXPECTED_TICKER, market_warning=None, is_trading_suspended=None)),
        (TICKER_DEFAULT.encode(), EXPECTED_TICKER),
        (trimmed, attrs.evolve(EXPECTED_TICKER, market_warning=None, is_trading_suspended=None)),
        (
            only_one_back,
            attrs.evolve(EXPECTED_TICKER, market_warning=None, is_trading_suspended=True),
        ),
        (trimmed, attrs.evolve(EXPECTED_TICKER, market_warning=None, is_trading_suspended=None)),
    ]:
        decoded, drift = decode_counting(frame)
        _assert_fields(decoded, expected)
        assert drift.total == 0


def test_a_field_missing_after_a_layout_change_is_drift_and_identity_still_checked() -> None:
    obj = orjson.loads(TICKER_DEFAULT)
    del obj["market_warning"]
    decode_frame(orjson.dumps(obj))  # the decoder now reads frames without market_warning
    del obj["trade_price"]
    decoded, drift = decode_counting(orjson.dumps(obj))
    _assert_fields(decoded, attrs.evolve(EXPECTED_TICKER, market_warning=None, trade_price=None))
    assert drift.fields == {("ticker", "trade_price"): 1}
    assert drift.problems == {"missing": 1}
    # Identity is required whichever layout the decoder learnt last.
    del obj["code"]
    with pytest.raises(ProtocolError, match="lacks 'code'") as caught:
        decode_frame(orjson.dumps(obj))
    assert caught.value.reason == "identity"


def test_validation_holds_when_shapes_alternate() -> None:
    # The decoder remembers the value types it accepted last; others must still be checked, and
    # their drift reported every time, not only when a signature is first seen.
    book = orjson.loads(ORDERBOOK_SIMPLE)
    int_sizes = orjson.loads(ORDERBOOK_SIMPLE)
    int_sizes["obu"][0]["as"] = 1
    bad = orjson.loads(ORDERBOOK_SIMPLE)
    bad["obu"][0]["bs"] = True
    trade = orjson.loads(TRADE_SIMPLE)
    float_prices = dict(trade, bap=116540000.0)
    bad_trade = dict(trade, sid=1.5)
    good_book = decode_frame(ORDERBOOK_SIMPLE)
    assert isinstance(good_book, Orderbook)
    for _ in range(2):
        decoded, drift = decode_counting(orjson.dumps(book))
        assert decoded == good_book
        assert drift.total == 0
        decoded, drift = decode_counting(orjson.dumps(int_sizes))
        assert isinstance(decoded, Orderbook)
        assert decoded.orderbook_units[0].ask_size == 1
        assert drift.total == 0
        decoded, drift = decode_counting(orjson.dumps(bad))
        assert isinstance(decoded, Orderbook)
        (unit,) = decoded.orderbook_units
        assert unit == attrs.evolve(good_book.orderbook_units[0], bid_size=None)
        assert decoded == attrs.evolve(good_book, orderbook_units=(unit,))
        assert drift.fields == {("orderbook", "orderbook_units.bid_size"): 1}
        assert drift.problems == {"type": 1}
        decoded, drift = decode_counting(orjson.dumps(trade))
        _assert_fields(decoded, EXPECTED_TRADE)
        assert drift.total == 0
        decoded, drift = decode_counting(orjson.dumps(float_prices))
        assert decoded == EXPECTED_TRADE
        assert drift.total == 0
        # sequential_id is a trade's identity: of the wrong type, the frame cannot be read.
        with pytest.raises(ProtocolError, match="'sid' must be an integer") as caught:
            decode_frame(orjson.dumps(bad_trade))
        assert caught.value.reason == "identity"


def test_optional_my_order_fields_may_be_absent() -> None:
    obj = orjson.loads(MY_ORDER)
    for key in ("trade_uuid", "trade_fee", "is_maker", "trade_timestamp", "smp_type"):
        del obj[key]
    decoded, drift = decode_counting(orjson.dumps(obj))
    assert isinstance(decoded, MyOrder)
    assert (decoded.trade_uuid, decoded.trade_fee, decoded.is_maker) == (None, None, None)
    assert decoded.trade_timestamp is None
    assert decoded.paid_fee == Decimal("58.25")
    assert decoded.identifier == "cli-42"
    # Fields that are null outside fills are no drift when absent.
    assert drift.total == 0


def test_orderbook_level_defaults_to_zero_when_absent() -> None:
    obj = orjson.loads(ORDERBOOK_SIMPLE)
    del obj["lv"]
    decoded, drift = decode_counting(orjson.dumps(obj))
    assert isinstance(decoded, Orderbook)
    assert decoded.level == 0.0
    assert drift.total == 0
    obj["lv"] = None
    decoded, drift = decode_counting(orjson.dumps(obj))
    assert isinstance(decoded, Orderbook)
    assert decoded.level == 0.0
    assert type(decoded.level) is float
    assert drift.total == 0


def test_decoded_models_are_the_real_frozen_classes() -> None:
    decoded = decode_frame(TICKER_DEFAULT)
    assert type(decoded) is Ticker
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        decoded.trade_price = 1.0  # type: ignore[misc]
    assert hash(decoded) == hash(EXPECTED_TICKER)
    book = decode_frame(ORDERBOOK_DEFAULT)
    assert isinstance(book, Orderbook)
    assert all(type(unit) is OrderbookUnit for unit in book.orderbook_units)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        book.orderbook_units[0].ask_price = 1.0  # type: ignore[misc]


def test_plain_constructors_are_used_where_relabelling_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The fallback of _decode._maker: decoders built with the models' own constructors.
    monkeypatch.setattr(_decode, "_maker", lambda cls: cls)
    default = _decode._decoders_for(simple=False)
    simple = _decode._decoders_for(simple=True)
    drift = DriftCounter()
    _assert_fields(default["ticker"](orjson.loads(TICKER_DEFAULT), drift), EXPECTED_TICKER)
    book = simple["orderbook"](orjson.loads(ORDERBOOK_SIMPLE), drift)
    assert type(book) is Orderbook
    assert type(book.orderbook_units[0]) is OrderbookUnit
    # The tolerant paths build models too: drift, extra keys, a unit of the wrong type.
    obj = orjson.loads(TICKER_SIMPLE)
    del obj["st"]
    obj["new"] = 1
    ticker = simple["ticker"](obj, drift)
    assert type(ticker) is Ticker
    assert (ticker.stream_type, dict(ticker.extra)) == ("REALTIME", {"new": 1})
    obj = orjson.loads(ORDERBOOK_SIMPLE)
    obj["obu"][0]["bs"] = None
    book = simple["orderbook"](obj, drift)
    assert type(book.orderbook_units[0]) is OrderbookUnit
    assert book.orderbook_units[0].bid_size is None
    assert drift.fields == {
        ("ticker", "stream_type"): 1,
        ("orderbook", "orderbook_units.bid_size"): 1,
    }


MALFORMED_FRAMES: list[tuple[bytes, str, str]] = [
    (b"\xff\xfe{}", "not_json", "UTF-8"),
    (b"hello", "not_json", "JSON"),
    (b'{"type":"ticker",', "not_json", "JSON"),
    (b'"PING"', "not_object", "object or array"),
    (b"42", "not_object", "object or array"),
    (b"[1]", "not_object", "expected a JSON object"),
    (b'[{"status":"UP"},"x"]', "not_object", "expected a JSON object"),
    (b'{"type":["ticker"]}', "bad_type", r"type \['ticker'\] is not a string"),
    (b'{"ty":7,"cd":"KRW-BTC"}', "bad_type", "type 7 is not a string"),
    (b'{"type":"ticker"}', "identity", "lacks 'code'"),
    (b'{"ty":"ticker"}', "identity", r"lacks 'cd' \(code\)"),
    (b'{"type":"ticker","code":5}', "identity", "'code' must be a string, not an integer"),
    (b'{"type":"myOrder","code":null}', "identity", "'code' must be a string, not null"),
    (b'{"type":"trade","code":"KRW-BTC"}', "identity", "lacks 'sequential_id'"),
    (b'{"ty":"trade","cd":"KRW-BTC","sid":"1"}', "identity", "'sid' must be an integer"),
    (b'{"status":"DOWN"}', "unknown_status", "unknown status 'DOWN'"),
    (b'{"hello":"world"}', "unknown_shape", "none of 'type'"),
    (b"{}", "unknown_shape", "none of 'type'"),
    (b'{"error":"boom"}', "bad_reply", "error frame"),
    (b'{"error":{"name":1,"message":"x"}}', "bad_reply", "'name' must be a string"),
    (b'{"error":{"message":"x"}}', "bad_reply", "'name' must be a string"),
    (
        b'{"method":"LIST_SUBSCRIPTIONS","result":{},"ticket":"t"}',
        "bad_reply",
        "'result' must be a list",
    ),
    (b'{"method":"LIST_SUBSCRIPTIONS","result":[3],"ticket":"t"}', "bad_reply", r"result\[0\]"),
    (
        b'{"method":"LIST_SUBSCRIPTIONS","result":[{"codes":[]}],"ticket":"t"}',
        "bad_reply",
        "'type'",
    ),
    (
        b'{"method":"LIST_SUBSCRIPTIONS","result":[{"type":"x","codes":[1]}],"ticket":"t"}',
        "bad_reply",
        "codes",
    ),
    (
        b'{"method":"LIST_SUBSCRIPTIONS","result":[{"type":"x","level":"0"}],"ticket":"t"}',
        "bad_reply",
        "level",
    ),
    (b'{"method":"LIST_SUBSCRIPTIONS","result":[],"ticket":null}', "bad_reply", "'ticket'"),
    (b'{"mthd":5,"rslt":[],"tckt":"t"}', "bad_reply", "'mthd'"),
]


@pytest.mark.parametrize(("frame", "reason", "message"), MALFORMED_FRAMES)
def test_malformed_frames_raise_protocol_error_naming_the_problem(
    frame: bytes, reason: str, message: str
) -> None:
    drift = DriftCounter()
    with pytest.raises(ProtocolError, match=message) as caught:
        decode_frame(frame, drift=drift)
    assert caught.value.reason == reason
    assert drift.total == 0  # a frame that cannot be read is no field drift


def test_every_frame_problem_is_exercised() -> None:
    assert {reason for _, reason, _ in MALFORMED_FRAMES} == set(FRAME_PROBLEMS)


def test_non_frame_argument_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError, match="must be bytes") as caught:
        decode_frame(12)  # type: ignore[arg-type]
    assert caught.value.reason == "not_json"


@pytest.mark.parametrize("message", ["1", "null", '{"text":"x"}', '["x"]'])
def test_an_error_whose_message_is_not_a_string_is_still_an_error(message: str) -> None:
    # The name is what matters (engine.errors maps it); the human text is optional.
    frame = f'{{"error":{{"name":"INVALID_PARAM","message":{message}}}}}'
    assert decode_frame(frame) == ErrorReply(name="INVALID_PARAM", message="")


@pytest.mark.parametrize(
    "frame",
    [
        b'{"type":"nope","code":"KRW-BTC"}',
        b'{"ty":"announcement","cd":"KRW-BTC"}',
    ],
)
def test_a_type_the_library_does_not_model_is_no_error(frame: bytes) -> None:
    decoded, drift = decode_counting(frame)
    assert type(decoded) is UnknownMessage
    assert decoded.code == "KRW-BTC"
    assert drift.total == 0
