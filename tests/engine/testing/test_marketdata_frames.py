"""Rendered frames: exactly the documented keys, right value types and formats, SIMPLE re-keying,
orderbook units and levels, and decoding by the engine's own ``decode_frame``.

Throughput (not asserted, machine-dependent) is measured with the snippet in docs/DESIGN.md
("Emulator market data", "Performance").
"""

from __future__ import annotations

import datetime
import math
import re
from collections.abc import Callable, Iterator

import orjson
import pytest

from engine.testing.marketdata import (
    Listing,
    MarketEvent,
    MarketSimulator,
    default_catalog,
    make_my_asset,
    make_my_order,
    to_simple,
)
from engine.wire.keys import ASSET_KEYS, CANDLE_TYPES, DEFAULT_TO_SIMPLE, ORDERBOOK_UNIT_KEYS
from engine.wire.protocol import decode_frame

MARKET_TYPES = ("ticker", "trade", "orderbook", *CANDLE_TYPES)
Check = Callable[[object], bool]


def _num(value: object) -> bool:
    return isinstance(value, float) and math.isfinite(value)


def _nonneg(value: object) -> bool:
    return _num(value) and value >= 0  # type: ignore[operator]


def _pos(value: object) -> bool:
    return _num(value) and value > 0  # type: ignore[operator]


def _ms(value: object) -> bool:
    return type(value) is int and 1_500_000_000_000 < value < 2_500_000_000_000


def _text(pattern: str) -> Check:
    compiled = re.compile(pattern)
    return lambda value: isinstance(value, str) and compiled.fullmatch(value) is not None


def _one_of(*allowed: object) -> Check:
    return lambda value: value in allowed and type(value) is type(allowed[0])


_CODE = _text(r"(KRW|BTC|USDT)-[A-Z0-9]+")
_STREAM = _one_of("SNAPSHOT", "REALTIME")
_CHANGE = _one_of("RISE", "EVEN", "FALL")
_SIDE = _one_of("ASK", "BID")
_DATE = _text(r"\d{4}-\d{2}-\d{2}")
_DATETIME = _text(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}")

SCHEMAS: dict[str, dict[str, Check]] = {
    "ticker": {
        "type": _one_of("ticker"),
        "code": _CODE,
        "opening_price": _pos,
        "high_price": _pos,
        "low_price": _pos,
        "trade_price": _pos,
        "prev_closing_price": _pos,
        "change": _CHANGE,
        "change_price": _nonneg,
        "signed_change_price": _num,
        "change_rate": _nonneg,
        "signed_change_rate": _num,
        "trade_volume": _pos,
        "acc_trade_volume": _nonneg,
        "acc_trade_volume_24h": _nonneg,
        "acc_trade_price": _nonneg,
        "acc_trade_price_24h": _nonneg,
        "trade_date": _text(r"\d{8}"),
        "trade_time": _text(r"\d{6}"),
        "trade_timestamp": _ms,
        "ask_bid": _SIDE,
        "acc_ask_volume": _nonneg,
        "acc_bid_volume": _nonneg,
        "highest_52_week_price": _pos,
        "highest_52_week_date": _DATE,
        "lowest_52_week_price": _pos,
        "lowest_52_week_date": _DATE,
        "market_state": _one_of("ACTIVE"),
        "is_trading_suspended": _one_of(False),
        "delisting_date": lambda value: value is None,
        "market_warning": _one_of("NONE", "CAUTION"),
        "timestamp": _ms,
        "stream_type": _STREAM,
    },
    "trade": {
        "type": _one_of("trade"),
        "code": _CODE,
        "trade_price": _pos,
        "trade_volume": _pos,
        "ask_bid": _SIDE,
        "prev_closing_price": _pos,
        "change": _CHANGE,
        "change_price": _nonneg,
        "trade_date": _DATE,
        "trade_time": _text(r"\d{2}:\d{2}:\d{2}"),
        "trade_timestamp": _ms,
        "timestamp": _ms,
        "sequential_id": lambda value: type(value) is int and value > 10**16,
        "best_ask_price": _pos,
        "best_ask_size": _pos,
        "best_bid_price": _nonneg,
        "best_bid_size": _nonneg,
        "stream_type": _STREAM,
    },
    "orderbook": {
        "type": _one_of("orderbook"),
        "code": _CODE,
        "total_ask_size": _pos,
        "total_bid_size": _nonneg,
        "orderbook_units": lambda value: isinstance(value, list) and len(value) in (1, 5, 15, 30),
        "timestamp": _ms,
        "level": lambda value: type(value) in (int, float) and value >= 0,  # type: ignore[operator]
        "stream_type": _STREAM,
    },
}
_CANDLE_SCHEMA: dict[str, Check] = {
    "type": lambda value: value in CANDLE_TYPES,
    "code": _CODE,
    "candle_date_time_utc": _DATETIME,
    "candle_date_time_kst": _DATETIME,
    "opening_price": _pos,
    "high_price": _pos,
    "low_price": _pos,
    "trade_price": _pos,
    "candle_acc_trade_volume": _pos,
    "candle_acc_trade_price": _pos,
    "timestamp": _ms,
    "stream_type": _STREAM,
}
SCHEMAS.update(dict.fromkeys(CANDLE_TYPES, _CANDLE_SCHEMA))


def check_default(message: dict[str, object] | None, data_type: str) -> dict[str, object]:
    """Exactly the documented DEFAULT keys, each with a value of the documented shape."""
    assert message is not None
    assert message["type"] == data_type
    assert set(message) == set(DEFAULT_TO_SIMPLE[data_type]), set(message) ^ set(
        DEFAULT_TO_SIMPLE[data_type]
    )
    for key, check in SCHEMAS[data_type].items():
        assert check(message[key]), (data_type, key, message[key])
    if data_type == "orderbook":
        units = message["orderbook_units"]
        assert isinstance(units, list)
        for unit in units:
            assert set(unit) == set(ORDERBOOK_UNIT_KEYS)
            assert all(_nonneg(unit[key]) for key in ORDERBOOK_UNIT_KEYS)
    return message


def _utc(ms: int) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(ms / 1000, datetime.UTC)


@pytest.fixture(scope="module")
def catalog() -> tuple[Listing, ...]:
    return default_catalog(0)


@pytest.fixture(scope="module")
def fresh(catalog: tuple[Listing, ...]) -> MarketSimulator:
    return MarketSimulator(catalog, seed=3)


@pytest.fixture(scope="module")
def events() -> tuple[MarketSimulator, list[MarketEvent]]:
    """A busy run over a few pairs, including thin books and a near-zero BTC price."""
    catalog = default_catalog(0)
    by_code = {listing.market: listing for listing in catalog}
    picked = [by_code[code] for code in ("KRW-BTC", "KRW-XRP", "KRW-USDT", "BTC-ETH", "USDT-BTC")]
    picked += [x for x in catalog if x.activity < 0.01][:3]
    picked += [x for x in catalog if x.market.startswith("BTC-") and x.reference_price < 2e-7][:1]
    sim = MarketSimulator(picked, seed=11, rate_scale=5.0, rates={picked[-1].market: 3.0})
    return sim, sim.events_until(8.0)


def test_snapshot_of_every_pair_before_any_trade(
    catalog: tuple[Listing, ...], fresh: MarketSimulator
) -> None:
    start_ms = 1_790_000_000_000
    for listing in catalog:
        for data_type in MARKET_TYPES:
            message = check_default(fresh.render(data_type, listing.market, "SNAPSHOT"), data_type)
            assert message["code"] == listing.market
            assert message["stream_type"] == "SNAPSHOT"
            timestamp = message["timestamp"]
            assert isinstance(timestamp, int)
            assert timestamp < start_ms  # the time of the last change, before the run started
        ticker = fresh.render("ticker", listing.market, "SNAPSHOT")
        assert ticker is not None
        assert ticker["market_warning"] == ("CAUTION" if listing.warning else "NONE")
        assert ticker["low_price"] <= ticker["trade_price"] <= ticker["high_price"]  # type: ignore[operator]


def test_realtime_frames_of_every_kind(events: tuple[MarketSimulator, list[MarketEvent]]) -> None:
    sim, run = events
    seen: set[str] = set()
    for event in run:
        for data_type in MARKET_TYPES:
            message = sim.render_event(event, data_type)
            family = "candle" if data_type.startswith("candle.") else data_type
            if family not in event.kinds:
                assert message is None
                continue
            check_default(message, data_type)
            assert message is not None
            assert message["stream_type"] == "REALTIME"
            assert message["code"] == event.code
            assert message["timestamp"] == event.timestamp_ms
            seen.add(data_type)
    assert seen == set(MARKET_TYPES)


def test_date_and_time_strings_match_the_timestamps(
    events: tuple[MarketSimulator, list[MarketEvent]],
) -> None:
    sim, run = events
    for event in run[:400]:
        if "trade" not in event.kinds:
            continue
        ticker = sim.render_event(event, "ticker")
        trade = sim.render_event(event, "trade")
        assert ticker is not None
        assert trade is not None
        traded = _utc(trade["trade_timestamp"])  # type: ignore[arg-type]
        assert trade["trade_date"] == traded.strftime("%Y-%m-%d")
        assert trade["trade_time"] == traded.strftime("%H:%M:%S")
        assert ticker["trade_date"] == traded.strftime("%Y%m%d")
        assert ticker["trade_time"] == traded.strftime("%H%M%S")
        assert trade["trade_timestamp"] <= trade["timestamp"]  # type: ignore[operator]
        if "candle" in event.kinds:
            candle = sim.render_event(event, "candle.5m")
            assert candle is not None
            start = traded.replace(minute=traded.minute - traded.minute % 5, second=0)
            start = start.replace(microsecond=0)
            assert candle["candle_date_time_utc"] == start.strftime("%Y-%m-%dT%H:%M:%S")
            kst = start + datetime.timedelta(hours=9)
            assert candle["candle_date_time_kst"] == kst.strftime("%Y-%m-%dT%H:%M:%S")


def _messages(sim: MarketSimulator, run: list[MarketEvent]) -> Iterator[dict[str, object]]:
    for event in run[:300]:
        for data_type in MARKET_TYPES:
            message = sim.render_event(event, data_type)
            if message is not None:
                yield message
    for code in ("KRW-BTC", "BTC-ETH"):
        for units in (1, 5, 15, 30):
            message = sim.render("orderbook", code, "SNAPSHOT", units=units)
            assert message is not None
            yield message
    grouped = sim.render("orderbook", "KRW-BTC", "SNAPSHOT", level=100_000)
    assert grouped is not None
    yield grouped


def test_to_simple_uses_exactly_the_simple_keys(
    events: tuple[MarketSimulator, list[MarketEvent]],
) -> None:
    sim, run = events
    for message in _messages(sim, run):
        table = DEFAULT_TO_SIMPLE[str(message["type"])]
        simple = to_simple(message)
        assert list(simple) == [table[key] for key in message]
        for key, value in message.items():
            if key != "orderbook_units":
                assert simple[table[key]] == value
        if message["type"] == "orderbook":
            units = simple["obu"]
            assert isinstance(units, list)
            for unit, original in zip(units, message["orderbook_units"], strict=True):  # type: ignore[call-overload]
                assert unit == {ORDERBOOK_UNIT_KEYS[k]: v for k, v in original.items()}
                assert set(unit) == {"ap", "bp", "as", "bs"}


def test_to_simple_of_private_messages() -> None:
    order = make_my_order(code="KRW-BTC")
    simple = to_simple(order)
    assert set(simple) == set(DEFAULT_TO_SIMPLE["myOrder"].values())
    asset = make_my_asset(assets=[("KRW", "100", "0"), ("BTC", "0.5", "0.1")])
    simple = to_simple(asset)
    assert set(simple) == set(DEFAULT_TO_SIMPLE["myAsset"].values())
    assert simple["ast"] == [
        {"cu": "KRW", "b": 100.0, "l": 0.0},
        {"cu": "BTC", "b": 0.5, "l": 0.1},
    ]
    assert set(ASSET_KEYS.values()) == {"cu", "b", "l"}


def test_to_simple_rejects_what_it_cannot_abbreviate() -> None:
    with pytest.raises(ValueError, match="type 'nope'"):
        to_simple({"type": "nope"})
    with pytest.raises(ValueError, match="'extra' is not a documented field of ticker"):
        to_simple({"type": "ticker", "extra": 1})


@pytest.mark.parametrize("units", [1, 5, 15, 30])
def test_orderbook_units(fresh: MarketSimulator, units: int) -> None:
    for code in ("KRW-BTC", "BTC-ETH", "USDT-ETH"):
        book = check_default(fresh.render("orderbook", code, "SNAPSHOT", units=units), "orderbook")
        rows = book["orderbook_units"]
        assert isinstance(rows, list)
        assert len(rows) == units
        assert book["level"] == 0
        assert book["total_ask_size"] == pytest.approx(sum(r["ask_size"] for r in rows))
        assert book["total_bid_size"] == pytest.approx(sum(r["bid_size"] for r in rows))


def test_orderbook_rejects_bad_arguments(fresh: MarketSimulator) -> None:
    assert fresh.render("orderbook", "KRW-NOPE", "SNAPSHOT") is None
    assert fresh.render("ticker", "krw-btc", "SNAPSHOT") is None
    with pytest.raises(ValueError, match="units must be between 1 and 30"):
        fresh.render("orderbook", "KRW-BTC", "SNAPSHOT", units=31)
    with pytest.raises(ValueError, match=r"unknown market data type 'candle\.2m'"):
        fresh.render("candle.2m", "KRW-BTC", "SNAPSHOT")


def test_unsupported_levels_give_no_data(fresh: MarketSimulator) -> None:
    # The probe: level 100 on BTC-ETH gave no frames at all.
    assert fresh.render("orderbook", "BTC-ETH", "SNAPSHOT", level=100) is None
    assert fresh.render("orderbook", "KRW-BTC", "SNAPSHOT", level=12_345) is None
    assert fresh.render("orderbook", "KRW-XRP", "SNAPSHOT", level=10) is not None


def test_grouped_books(catalog: tuple[Listing, ...], fresh: MarketSimulator) -> None:
    for listing in catalog:
        if not listing.market.startswith("KRW-"):
            continue
        for level in listing.supported_levels[1:]:
            book = fresh.render("orderbook", listing.market, "SNAPSHOT", units=15, level=level)
            book = check_default(book, "orderbook")
            assert book["level"] == level
            rows = book["orderbook_units"]
            assert isinstance(rows, list)
            asks = [r["ask_price"] for r in rows if r["ask_size"] > 0]
            bids = [r["bid_price"] for r in rows if r["bid_size"] > 0]
            assert asks, listing.market
            for price in asks + bids:
                assert price / level == pytest.approx(round(price / level), abs=1e-6)
            assert asks == sorted(set(asks))
            assert bids == sorted(set(bids), reverse=True)
            if bids:
                assert asks[0] > bids[0]
    full = fresh.render("orderbook", "KRW-BTC", "SNAPSHOT", level=1_000_000)
    assert full is not None
    rows = full["orderbook_units"]
    assert isinstance(rows, list)
    assert all(r["ask_size"] > 0 and r["bid_size"] > 0 for r in rows)  # deep books stay full


def test_decode_frame_reads_default_and_simple_alike(
    events: tuple[MarketSimulator, list[MarketEvent]],
) -> None:
    sim, run = events
    messages = list(_messages(sim, run))
    messages.append(make_my_order(code="KRW-BTC", price=116_500_000, volume="0.001"))
    messages.append(make_my_order(code="KRW-ETH", state="wait", ask_bid="ASK", volume="2"))
    messages.append(make_my_asset(assets=[("KRW", "1386929.372310660000000001", "10329.67")]))
    decoded_types = set()
    for message in messages:
        default = decode_frame(orjson.dumps(message))
        simple = decode_frame(orjson.dumps(to_simple(message)))
        assert default == simple
        assert getattr(default, "type", None) == message["type"]
        decoded_types.add(message["type"])
    assert decoded_types == {*MARKET_TYPES, "myOrder", "myAsset"}
