"""The tolerant reader: how decode_frame takes the ways Upbit's wire has drifted, and counts them.

Upbit changes its wire without notice (docs/UPBIT.md, "Drift history"): fields appear, vanish or
turn null, the ticker's ``delisting_date`` has been an object, types nobody models share the
socket. The decoder keeps unknown keys in ``extra``, stores ``None`` (or the field's default) for
what it cannot read, and tells a drift sink about each such field under its DEFAULT name. It also
caches per-shape plans, so the counts are checked frame by frame across alternating shapes and
beyond the size of its caches.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import attrs
import orjson
import pytest

from engine.errors import ProtocolError
from engine.wire import decode as _decode
from engine.wire import keys as wire_keys
from engine.wire.decode import DriftCounter
from engine.wire.messages import (
    NO_EXTRA,
    Message,
    MyAsset,
    MyOrder,
    Orderbook,
    Ticker,
    UnknownMessage,
)
from engine.wire.protocol import (
    FORMATS,
    LIST_FORMATS,
    Format,
    decode_frame,
    encode_frame,
    encode_message,
)
from tests.engine.test_protocol_decode import (
    CANDLE,
    EXPECTED_TICKER,
    EXPECTED_TRADE,
    MY_ASSET,
    MY_ORDER,
    ORDERBOOK_DEFAULT,
    ORDERBOOK_SIMPLE,
    TICKER_DEFAULT,
    TICKER_SIMPLE,
    TRADE_DEFAULT,
    TRADE_SIMPLE,
)

DATA_FRAMES = {
    "ticker DEFAULT": TICKER_DEFAULT,
    "ticker SIMPLE": TICKER_SIMPLE,
    "trade DEFAULT": TRADE_DEFAULT,
    "trade SIMPLE": TRADE_SIMPLE,
    "orderbook DEFAULT": ORDERBOOK_DEFAULT,
    "orderbook SIMPLE": ORDERBOOK_SIMPLE,
    "candle": CANDLE,
    "myOrder": MY_ORDER,
    "myAsset": MY_ASSET,
}
BEST_FIELDS = ("best_ask_price", "best_ask_size", "best_bid_price", "best_bid_size")
#: Keys no table uses, with JSON values of every kind (no fractions: see the private test).
EXTRA = {"zz_number": 7, "zz_object": {"nested": [1, "two", None, True]}, "zz_null": None}


def decode_counting(frame: bytes | str) -> tuple[Any, DriftCounter]:
    drift = DriftCounter()
    return decode_frame(frame, drift=drift), drift


def _loads(frame: str) -> dict[str, Any]:
    obj: dict[str, Any] = orjson.loads(frame)
    return obj


def _simple(obj: Mapping[str, Any]) -> bool:
    return "ty" in obj


def _key(obj: Mapping[str, Any], field: str) -> str:
    """The wire key of DEFAULT ``field`` in the format of ``obj``."""
    if not _simple(obj):
        return field
    return wire_keys.DEFAULT_TO_SIMPLE[obj["ty"]][field]


def _formats_of(name: str) -> tuple[Format, Format]:
    """The format a frame of DATA_FRAMES is in, and its list variant."""
    return ("SIMPLE", "SIMPLE_LIST") if "SIMPLE" in name else ("DEFAULT", "JSON_LIST")


def _decoded(frame: bytes | str) -> Any:
    return decode_frame(frame)


class _Recorder:
    """A drift sink that is not a DriftCounter: the decoder needs only ``field_drift``."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str]] = []

    def field_drift(self, data_type: str, field: str, problem: str) -> None:
        self.calls.append((data_type, field, problem))


# ----------------------------------------------------------------------------------------------
# Unknown keys: kept in extra, written back by the encoder


@pytest.mark.parametrize("name", DATA_FRAMES)
def test_extra_keys_are_kept_and_round_trip(name: str) -> None:
    obj = _loads(DATA_FRAMES[name])
    expected = decode_frame(DATA_FRAMES[name])
    assert isinstance(expected, Message)
    decoded, drift = decode_counting(orjson.dumps({**obj, **EXTRA}))
    assert decoded == expected  # extra takes no part in equality
    assert dict(decoded.extra) == EXTRA
    assert drift.total == 0  # an added key is no drift
    with pytest.raises(TypeError):
        decoded.extra["zz_number"] = 8  # read-only
    # The encoder writes the keys back as they came, in the frame's own format.
    single, listed = _formats_of(name)
    encoded = encode_message(decoded, single)
    assert {key: encoded[key] for key in EXTRA} == EXTRA
    without = {key: value for key, value in encoded.items() if key not in EXTRA}
    assert without == encode_message(expected, single)
    again = _decoded(encode_frame(decoded, single))
    (listed_again,) = _decoded(encode_frame(decoded, listed))
    for copy in (again, listed_again):
        assert copy == decoded
        assert dict(copy.extra) == EXTRA


def test_extra_is_per_frame() -> None:
    # The decoder caches how frames look; one frame's unknown keys must not leak into the next.
    obj = _loads(TICKER_DEFAULT)
    for _ in range(2):
        assert dict(_decoded(orjson.dumps({**obj, **EXTRA})).extra) == EXTRA
        assert _decoded(TICKER_DEFAULT).extra is NO_EXTRA
        assert dict(_decoded(orjson.dumps({**obj, "zz_other": 1})).extra) == {"zz_other": 1}


@pytest.mark.parametrize("name", ["ticker DEFAULT", "ticker SIMPLE"])
def test_a_missing_key_and_an_unknown_one_in_the_same_frame(name: str) -> None:
    # As many keys as a complete frame: the decoder must not take the unknown key for the
    # missing one, whichever shape it read last.
    obj = _loads(DATA_FRAMES[name])
    expected = _decoded(DATA_FRAMES[name])
    for missing in ("market_warning", "trade_price", "stream_type"):
        swapped = {k: v for k, v in obj.items() if k != _key(obj, missing)}
        swapped["zz_new"] = "x"
        assert len(swapped) == len(obj)
        default = attrs.fields_dict(Ticker)[missing].default
        counted = {} if missing == "market_warning" else {("ticker", missing): 1}
        for _ in range(2):  # complete, swapped, swapped again: each after the other shape
            decoded, drift = decode_counting(DATA_FRAMES[name])
            assert decoded == expected
            assert decoded.extra is NO_EXTRA
            assert drift.total == 0
            for _ in range(2):
                decoded, drift = decode_counting(orjson.dumps(swapped))
                assert decoded == attrs.evolve(expected, **{missing: default})
                assert dict(decoded.extra) == {"zz_new": "x"}
                assert drift.fields == counted


def test_a_key_of_the_other_format_is_extra_not_data() -> None:
    obj = _loads(TICKER_DEFAULT)
    decoded, drift = decode_counting(orjson.dumps({**obj, "tp": 1.0, "cd": "KRW-ETH"}))
    assert decoded == EXPECTED_TICKER
    assert dict(decoded.extra) == {"tp": 1.0, "cd": "KRW-ETH"}
    assert drift.total == 0
    simple = _loads(TICKER_SIMPLE)
    decoded, drift = decode_counting(orjson.dumps({**simple, "trade_price": 1.0}))
    assert decoded.trade_price == EXPECTED_TICKER.trade_price
    assert dict(decoded.extra) == {"trade_price": 1.0}


def test_extra_keys_of_private_frames_keep_exact_numbers() -> None:
    # Private frames are parsed with Decimal numbers, unknown keys included: nothing is rounded.
    obj = _loads(MY_ORDER)
    frame = orjson.dumps(obj)[:-1] + b',"zz_money":0.1000000000000000055511151231257827}'
    decoded = decode_frame(frame)
    assert isinstance(decoded, MyOrder)
    assert decoded.extra == {"zz_money": Decimal("0.1000000000000000055511151231257827")}
    again: Any = decode_frame(encode_frame(decoded))
    assert again == decoded
    assert again.extra == decoded.extra


# ----------------------------------------------------------------------------------------------
# stream_type


@pytest.mark.parametrize("name", DATA_FRAMES)
def test_a_frame_without_stream_type_is_realtime_and_counted_once(name: str) -> None:
    obj = _loads(DATA_FRAMES[name])
    expected = decode_frame(DATA_FRAMES[name])
    assert isinstance(expected, Message)
    del obj[_key(obj, "stream_type")]
    frame = orjson.dumps(obj)
    drift = DriftCounter()
    for count in range(1, 4):
        decoded = decode_frame(frame, drift=drift)
        assert decoded == attrs.evolve(expected, stream_type="REALTIME")
        assert drift.fields == {(expected.type, "stream_type"): count}
        assert drift.problems == {"missing": count}
        assert drift.total == count
    # Every object of a list frame counts.
    drift = DriftCounter()
    decoded = decode_frame(b"[" + b",".join([frame] * 3) + b"]", drift=drift)
    assert decoded == [attrs.evolve(expected, stream_type="REALTIME")] * 3
    assert drift.fields == {(expected.type, "stream_type"): 3}


def test_a_null_stream_type_is_realtime_and_counted_as_null() -> None:
    obj = _loads(TRADE_SIMPLE)
    decoded, drift = decode_counting(orjson.dumps({**obj, "st": None}))
    assert decoded == attrs.evolve(EXPECTED_TRADE, stream_type="REALTIME")
    assert drift.fields == {("trade", "stream_type"): 1}
    assert drift.problems == {"null": 1}


# ----------------------------------------------------------------------------------------------
# Known drift: delisting_date objects, pre-2024 trades, null accumulations


@pytest.mark.parametrize("name", ["ticker DEFAULT", "ticker SIMPLE"])
def test_delisting_date_as_an_object(name: str) -> None:
    obj = _loads(DATA_FRAMES[name])
    key = _key(obj, "delisting_date")
    expected = decode_frame(DATA_FRAMES[name])
    as_object = orjson.dumps({**obj, key: {"year": 2026, "month": 1, "day": 2}})
    as_string = orjson.dumps({**obj, key: "2026-12-31"})
    for _ in range(2):  # alternating forms: the conversion must follow the frame, not the cache
        for frame, date in [(as_object, "2026-01-02"), (as_string, "2026-12-31")]:
            decoded, drift = decode_counting(frame)
            assert decoded == attrs.evolve(expected, delisting_date=date)  # type: ignore[misc]
            assert drift.total == 0


@pytest.mark.parametrize(
    "value",
    [
        {},
        {"year": 2026, "month": 1},
        {"year": "2026", "month": 1, "day": 2},
        {"year": 2026, "month": 1.0, "day": 2},
        {"year": True, "month": 1, "day": 2},
        {"year": 2026, "month": 1, "day": None},
        [2026, 1, 2],
        20260102,
        False,
    ],
)
def test_an_unreadable_delisting_date_is_none_and_counted(value: object) -> None:
    obj = _loads(TICKER_DEFAULT)
    for _ in range(2):
        decoded, drift = decode_counting(orjson.dumps({**obj, "delisting_date": value}))
        assert decoded == EXPECTED_TICKER  # delisting_date None, everything else intact
        assert decoded.delisting_date is None
        # Upbit usually sends it null, which is no drift; a wrong type is.
        assert drift.fields == {("ticker", "delisting_date"): 1}
        assert drift.problems == {"type": 1}
        # A well-formed object in between must not change how this one is read.
        decode_frame(orjson.dumps({**obj, "delisting_date": {"year": 2026, "month": 1, "day": 2}}))


@pytest.mark.parametrize("name", ["trade DEFAULT", "trade SIMPLE"])
def test_a_trade_from_before_2024_11_27_lacks_the_best_fields(name: str) -> None:
    obj = _loads(DATA_FRAMES[name])
    legacy = orjson.dumps(
        {k: v for k, v in obj.items() if k not in {_key(obj, f) for f in BEST_FIELDS}}
    )
    for _ in range(2):  # the legacy layout, then the current one, then the legacy one again
        decoded, drift = decode_counting(legacy)
        assert decoded == attrs.evolve(EXPECTED_TRADE, **dict.fromkeys(BEST_FIELDS))  # type: ignore[arg-type]
        assert drift.fields == {("trade", field): 1 for field in BEST_FIELDS}
        assert drift.problems == {"missing": 4}
        assert drift.total == 4
        decoded, drift = decode_counting(DATA_FRAMES[name])
        assert decoded == EXPECTED_TRADE
        assert drift.total == 0


@pytest.mark.parametrize("name", ["ticker DEFAULT", "ticker SIMPLE"])
def test_a_null_acc_trade_price_24h(name: str) -> None:
    obj = _loads(DATA_FRAMES[name])
    expected = decode_frame(DATA_FRAMES[name])
    frame = orjson.dumps({**obj, _key(obj, "acc_trade_price_24h"): None})
    for _ in range(2):
        decoded, drift = decode_counting(frame)
        assert decoded == attrs.evolve(expected, acc_trade_price_24h=None)  # type: ignore[misc]
        assert drift.fields == {("ticker", "acc_trade_price_24h"): 1}
        assert drift.problems == {"null": 1}


def test_any_sink_with_field_drift_will_do() -> None:
    obj = _loads(ORDERBOOK_SIMPLE)
    obj["obu"][0]["bs"] = None
    del obj["tas"]
    recorder = _Recorder()
    decoded = decode_frame(orjson.dumps(obj), drift=recorder)
    assert isinstance(decoded, Orderbook)
    assert sorted(recorder.calls) == [
        ("orderbook", "orderbook_units.bid_size", "null"),
        ("orderbook", "total_ask_size", "missing"),
    ]
    # Without a sink the frame decodes the same, silently.
    assert decode_frame(orjson.dumps(obj)) == decoded


# ----------------------------------------------------------------------------------------------
# Types nobody models


@pytest.mark.parametrize(
    ("frame", "expected"),
    [
        (
            b'{"type":"announcement","code":"KRW-BTC","stream_type":"SNAPSHOT","title":"t"}',
            UnknownMessage("announcement", "KRW-BTC", "SNAPSHOT", {}),
        ),
        (
            b'{"ty":"indicator","cd":"KRW-ETH","st":"REALTIME","v":1.5}',
            UnknownMessage("indicator", "KRW-ETH", "REALTIME", {}),
        ),
        (b'{"type":"nope"}', UnknownMessage("nope", None, "REALTIME", {})),
        (b'{"type":"nope","code":5,"stream_type":7}', UnknownMessage("nope", None, "REALTIME", {})),
        (
            b'{"type":"Ticker","code":"KRW-BTC"}',
            UnknownMessage("Ticker", "KRW-BTC", "REALTIME", {}),
        ),
        (b'{"type":"","code":"KRW-BTC"}', UnknownMessage("", "KRW-BTC", "REALTIME", {})),
    ],
)
def test_an_unmodelled_type_is_an_unknown_message(frame: bytes, expected: UnknownMessage) -> None:
    decoded, drift = decode_counting(frame)
    assert type(decoded) is UnknownMessage
    assert decoded == expected
    assert dict(decoded.fields) == orjson.loads(frame)  # the whole object, as received
    with pytest.raises(TypeError):
        decoded.fields["type"] = "ticker"  # type: ignore[index]
    assert not isinstance(decoded, Message)
    assert drift.total == 0


def test_unknown_messages_in_a_list_frame() -> None:
    frame = f'[{TICKER_SIMPLE},{{"ty":"announcement","cd":"KRW-BTC"}},{MY_ASSET}]'
    decoded = decode_frame(frame)
    assert isinstance(decoded, list)
    ticker, unknown, asset = decoded
    assert isinstance(ticker, Ticker)
    assert unknown == UnknownMessage("announcement", "KRW-BTC", "REALTIME", {})
    assert isinstance(asset, MyAsset)


@pytest.mark.parametrize("data_type", [5, 1.5, True, [], {}, ["ticker"]])
@pytest.mark.parametrize("key", ["type", "ty"])
def test_a_type_that_is_not_a_string_is_bad_type(key: str, data_type: object) -> None:
    with pytest.raises(ProtocolError, match="is not a string") as caught:
        decode_frame(orjson.dumps({key: data_type, "code": "KRW-BTC"}))
    assert caught.value.reason == "bad_type"


# ----------------------------------------------------------------------------------------------
# Plans cached per shape: counts stay exact when shapes alternate, and beyond the caches


def _shapes() -> list[tuple[str, bytes, Any, dict[tuple[str, str], int], dict[str, int]]]:
    """Frames of several shapes per type: name, frame, expected model, drift fields, problems."""
    ticker, trade, book = _loads(TICKER_DEFAULT), _loads(TRADE_SIMPLE), _loads(ORDERBOOK_SIMPLE)
    expected_book = decode_frame(ORDERBOOK_SIMPLE)
    assert isinstance(expected_book, Orderbook)
    (unit,) = expected_book.orderbook_units
    no_st = {k: v for k, v in ticker.items() if k != "stream_type"}
    null_price = {**ticker, "trade_price": None, "zz": 1}
    bad_timestamp = {**ticker, "timestamp": "1790133435161"}
    no_mw_null_price = {k: v for k, v in null_price.items() if k != "market_warning"}
    bad_unit = {**book, "obu": [{**book["obu"][0], "bs": True}, 3]}
    no_level = {k: v for k, v in book.items() if k != "lv"}
    legacy = {k: v for k, v in trade.items() if k not in ("bap", "bas", "bbp", "bbs")}
    return [
        ("ticker", orjson.dumps(ticker), EXPECTED_TICKER, {}, {}),
        (
            "ticker without stream_type",
            orjson.dumps(no_st),
            EXPECTED_TICKER,
            {("ticker", "stream_type"): 1},
            {"missing": 1},
        ),
        (
            "ticker with null price",
            orjson.dumps(null_price),
            attrs.evolve(EXPECTED_TICKER, trade_price=None),
            {("ticker", "trade_price"): 1},
            {"null": 1},
        ),
        (
            "ticker with text timestamp",
            orjson.dumps(bad_timestamp),
            attrs.evolve(EXPECTED_TICKER, timestamp=None),
            {("ticker", "timestamp"): 1},
            {"type": 1},
        ),
        (
            "ticker without market_warning, null price",
            orjson.dumps(no_mw_null_price),
            attrs.evolve(EXPECTED_TICKER, trade_price=None, market_warning=None),
            {("ticker", "trade_price"): 1},
            {"null": 1},
        ),
        ("trade", orjson.dumps(trade), EXPECTED_TRADE, {}, {}),
        (
            "legacy trade",
            orjson.dumps(legacy),
            attrs.evolve(EXPECTED_TRADE, **dict.fromkeys(BEST_FIELDS)),  # type: ignore[arg-type]
            {("trade", field): 1 for field in BEST_FIELDS},
            {"missing": 4},
        ),
        ("orderbook", orjson.dumps(book), expected_book, {}, {}),
        (
            "orderbook with a bad unit",
            orjson.dumps(bad_unit),
            attrs.evolve(expected_book, orderbook_units=(attrs.evolve(unit, bid_size=None),)),
            {("orderbook", "orderbook_units.bid_size"): 1, ("orderbook", "orderbook_units"): 1},
            {"type": 2},
        ),
        ("orderbook without level", orjson.dumps(no_level), expected_book, {}, {}),
    ]


def _check(
    name: str,
    frame: bytes,
    expected: Any,
    fields: dict[tuple[str, str], int],
    problems: dict[str, int],
) -> DriftCounter:
    decoded, drift = decode_counting(frame)
    assert decoded == expected, name
    assert (drift.fields, drift.problems) == (fields, problems), name
    assert drift.total == sum(problems.values()), name
    return drift


def test_drift_counts_stay_exact_when_shapes_alternate() -> None:
    shapes = _shapes()
    # Every ordered pair of shapes back to back, A B A B, so each shape follows each other one
    # (a stale "signature seen last" or layout would show as a wrong count).
    for first, second in itertools.permutations(shapes, 2):
        for _ in range(2):
            _check(*first)
            _check(*second)


def test_drift_accumulates_exactly_over_alternating_shapes() -> None:
    shapes = _shapes()
    drift = DriftCounter()
    rounds = 3
    for _ in range(rounds):
        for _name, frame, _expected, _fields, _problems in shapes:
            decode_frame(frame, drift=drift)
    expected_fields: dict[tuple[str, str], int] = {}
    expected_problems: dict[str, int] = {}
    for *_, fields, problems in shapes:
        for key, count in fields.items():
            expected_fields[key] = expected_fields.get(key, 0) + count * rounds
        for problem, count in problems.items():
            expected_problems[problem] = expected_problems.get(problem, 0) + count * rounds
    assert drift.fields == expected_fields
    assert drift.problems == expected_problems
    assert drift.total == sum(expected_problems.values())


def _ticker_variants(
    count: int, *, delete: bool
) -> list[tuple[str, bytes, Any, dict[tuple[str, str], int], dict[str, int]]]:
    """``count`` ticker frames of distinct shapes: two fields nulled (one signature each) or
    deleted (one layout each)."""
    obj = _loads(TICKER_DEFAULT)
    fields = [
        name
        for name in wire_keys.DEFAULT_TO_SIMPLE["ticker"]
        if name not in ("type", "code", "stream_type", "is_trading_suspended", "delisting_date")
        and name not in ("market_warning",)
    ]
    variants = []
    for pair in itertools.islice(itertools.combinations(fields, 2), count):
        if delete:
            frame = orjson.dumps({k: v for k, v in obj.items() if k not in pair})
        else:
            frame = orjson.dumps({**obj, **dict.fromkeys(pair)})
        variants.append(
            (
                f"{'without' if delete else 'null'} {pair}",
                frame,
                attrs.evolve(EXPECTED_TICKER, **dict.fromkeys(pair)),  # type: ignore[arg-type]
                {("ticker", name): 1 for name in pair},
                {"missing" if delete else "null": 2},
            )
        )
    assert len(variants) == count
    return variants


@pytest.mark.parametrize("delete", [False, True], ids=["signatures", "layouts"])
def test_more_shapes_than_the_caches_hold_still_decode_exactly(delete: bool) -> None:
    # Beyond the cache size, shapes are validated every time instead of cached: same results.
    count = 2 * _decode._SIGNATURE_CACHE_SIZE + 8
    variants = _ticker_variants(count, delete=delete)
    clean = _shapes()[0]
    for variant in variants:
        _check(*variant)
    # The first shapes (cached) and the last ones (not cached), interleaved with a clean frame.
    for variant in [*variants[:4], *variants[-4:]] * 2:
        _check(*variant)
        _check(*clean)
    # The other kind of shape still works after the overflow, and so do other types.
    for variant in _ticker_variants(6, delete=not delete):
        _check(*variant)
    for shape in _shapes():
        _check(*shape)


# ----------------------------------------------------------------------------------------------
# Numbers the models cannot hold


@pytest.mark.parametrize(
    ("field", "literal"),
    [("trade_price", "1e400"), ("trade_volume", "-1e400"), ("best_bid_size", "1" + "0" * 400)],
)
def test_a_number_beyond_a_double_is_none_and_counted(field: str, literal: str) -> None:
    # A value that cannot be converted is drift like any other (the decoder's contract): the
    # frame still decodes, identity and every other field intact.
    obj = _loads(TRADE_DEFAULT)
    obj[field] = 0
    frame = orjson.dumps(obj).replace(f'"{field}":0'.encode(), f'"{field}":{literal}'.encode())
    decoded, drift = decode_counting(frame)
    assert decoded == attrs.evolve(EXPECTED_TRADE, **{field: None})  # type: ignore[arg-type]
    assert drift.fields == {("trade", field): 1}
    assert drift.problems == {"type": 1}


@pytest.mark.parametrize(
    ("field", "literal"),
    [("timestamp", "1" + "0" * 40), ("trade_price", "1" + "0" * 40), ("trade_price", "1E+40")],
)
def test_a_frame_decodes_alike_alone_and_beside_a_private_frame(field: str, literal: str) -> None:
    # A list holding a private frame is parsed with exact numbers; the market data in it must
    # still decode as it does alone (the same value, the same drift).
    obj = _loads(TRADE_DEFAULT)
    obj[field] = 0
    trade = orjson.dumps(obj).replace(f'"{field}":0'.encode(), f'"{field}":{literal}'.encode())
    alone, alone_drift = decode_counting(trade)
    beside, beside_drift = decode_counting(b"[" + MY_ASSET.encode() + b"," + trade + b"]")
    assert isinstance(beside, list)
    assert beside[1] == alone
    assert type(beside[1].timestamp) is type(alone.timestamp)
    assert type(beside[1].trade_price) is type(alone.trade_price)
    assert beside_drift.fields == alone_drift.fields


def test_every_format_round_trips_a_drifted_frame() -> None:
    # What the decoder made of a drifted frame encodes and decodes to itself in every format.
    obj = _loads(TICKER_DEFAULT)
    del obj["stream_type"]
    obj["trade_price"] = None
    obj["delisting_date"] = {"year": 2026, "month": 1, "day": 2}
    obj.update(EXTRA)
    decoded = decode_frame(orjson.dumps(obj))
    assert isinstance(decoded, Ticker)
    for format in FORMATS:
        again = decode_frame(encode_frame(decoded, format))
        (again,) = again if format in LIST_FORMATS else [again]  # type: ignore[misc]
        assert again == decoded, format
        assert dict(again.extra) == EXTRA, format
