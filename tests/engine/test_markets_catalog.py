"""MarketCatalog, Market, CautionFlags and OrderbookInstrument: parsing and lookups."""

from __future__ import annotations

import attrs
import pytest

from engine.errors import CatalogUnavailableError
from engine.markets import (
    CAUTION_KEYS,
    CautionFlags,
    Market,
    MarketCatalog,
    OrderbookInstrument,
    parse_orderbook_instruments,
    split_code,
)
from tests.engine.test_markets_samples import catalog, instruments, market_all


def test_from_json_reads_every_field() -> None:
    cat = catalog()
    btc = cat.get("KRW-BTC")
    assert btc == Market(market="KRW-BTC", korean_name="비트코인", english_name="Bitcoin")
    assert (btc.quote, btc.base) == ("KRW", "BTC")
    doge = cat.get("KRW-DOGE")
    assert doge is not None
    assert doge.warning is True
    assert doge.caution.price_fluctuations
    assert doge.caution.trading_volume_soaring
    assert not doge.caution.global_price_differences
    usdt_xrp = cat.get("USDT-XRP")
    assert usdt_xrp is not None
    assert usdt_xrp.caution.concentration_of_small_accounts


def test_lookups() -> None:
    cat = catalog()
    assert "KRW-BTC" in cat
    assert "krw-btc" not in cat
    assert "KRW-NOPE" not in cat
    assert 5 not in cat
    assert cat.get("KRW-NOPE") is None
    assert len(cat) == 11
    assert list(cat)[:2] == ["KRW-BTC", "KRW-ETH"]  # Upbit's order is kept
    assert cat.codes(quote="USDT") == ("USDT-BTC", "USDT-ETH", "USDT-XRP")
    assert cat.codes(quote="BTC") == ("BTC-ETH", "BTC-XRP", "BTC-1INCH")
    assert cat.codes(quote="EUR") == ()
    assert cat.codes() == tuple(cat)
    assert cat.quotes == ("KRW", "BTC", "USDT")


def test_unknown_quote_markets_are_kept_and_listed_after_known_ones() -> None:
    rows = [*market_all(), {"market": "USDC-BTC", "korean_name": "", "english_name": "Bitcoin"}]
    cat = MarketCatalog.from_json(rows)
    assert cat.quotes == ("KRW", "BTC", "USDT", "USDC")
    assert "USDC-BTC" in cat


def test_missing_names_and_market_event_are_tolerated() -> None:
    cat = MarketCatalog.from_json([{"market": "KRW-BTC"}])
    market = cat.get("KRW-BTC")
    assert market == Market(market="KRW-BTC")
    assert market is not None
    assert market.caution == CautionFlags()
    assert not market.caution.any_raised


def test_missing_caution_keys_read_as_false_and_unknown_keys_are_ignored() -> None:
    flags = CautionFlags.from_json({"PRICE_FLUCTUATIONS": True, "SOMETHING_NEW": True})
    assert flags.price_fluctuations
    assert flags.as_mapping() == {key: key == "PRICE_FLUCTUATIONS" for key in CAUTION_KEYS}
    assert flags.any_raised
    assert CautionFlags.from_json(None) == CautionFlags()


def test_catalog_is_immutable() -> None:
    cat = catalog()
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        cat.instruments_error = "x"  # type: ignore[misc]
    with pytest.raises(TypeError):
        cat.markets["KRW-NEW"] = Market(market="KRW-NEW")  # type: ignore[index]


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        ({"markets": []}, "expected a JSON array"),
        (
            {"error": {"name": 400, "message": "Type mismatch error"}},
            "Upbit error object (name=400, message='Type mismatch error')",
        ),
        ([], "the array is empty"),
        (["KRW-BTC"], "item 0: expected an object, got str"),
        ([{"korean_name": "x"}], "item 0: 'market' must be a string, got None"),
        ([{"market": "krw-btc"}], "'krw-btc' is not an upper-case 'QUOTE-BASE' code"),
        ([{"market": "KRW-BTC", "english_name": 5}], "'english_name' must be a string"),
        ([{"market": "KRW-BTC", "market_event": []}], "'market_event' must be an object"),
        ([{"market": "KRW-BTC", "market_event": {"warning": "yes"}}], "warning must be true"),
        (
            [{"market": "KRW-BTC", "market_event": {"caution": {"PRICE_FLUCTUATIONS": 1}}}],
            "caution PRICE_FLUCTUATIONS must be true or false",
        ),
    ],
)
def test_malformed_catalog_says_what_is_wrong(obj: object, expected: str) -> None:
    with pytest.raises(CatalogUnavailableError, match="malformed market catalog") as info:
        MarketCatalog.from_json(obj)
    assert expected in str(info.value)


def test_many_malformed_items_are_counted_but_only_a_few_shown() -> None:
    rows = [{"market": f"bad{i}"} for i in range(8)]
    with pytest.raises(CatalogUnavailableError) as info:
        MarketCatalog.from_json(rows)
    text = str(info.value)
    assert "(8 of 8 items)" in text
    assert "item 4" in text
    assert "item 5" not in text
    assert "and 3 more" in text


def test_instruments_parse_strings_and_numbers() -> None:
    cat = catalog()
    btc = cat.instrument("KRW-BTC")
    assert btc is not None
    assert btc.tick_size == 1000.0
    assert btc.supported_levels[:3] == (0.0, 10000.0, 100000.0)
    assert btc.supports_level(100000)
    assert btc.supports_level(0)
    assert not btc.supports_level(5000)
    doge = cat.instrument("KRW-DOGE")
    assert doge is not None
    assert doge.supports_level(0.1)
    assert doge.supports_level(0.30000000000000004 - 0.2)  # binary noise is not a new level
    assert cat.has_instruments
    assert cat.instruments_error is None
    assert cat.instrument("BTC-ETH") is None


def test_catalog_without_instruments() -> None:
    cat = catalog(with_instruments=False)
    assert not cat.has_instruments
    assert cat.instrument("KRW-BTC") is None
    enriched = cat.with_instruments(
        [OrderbookInstrument.from_json(row) for row in instruments()], error=None
    )
    assert enriched.has_instruments
    assert enriched.markets == cat.markets
    assert not cat.has_instruments  # the original is unchanged


def test_bad_instrument_rows_are_skipped_and_noted() -> None:
    rows = [
        *instruments(["KRW-BTC"]),
        "nonsense",
        {"market": "KRW-ETH", "supported_levels": []},
        {"market": "KRW-XRP", "tick_size": "abc", "supported_levels": [0]},
        {"market": "KRW-USDT", "supported_levels": [True]},
        {"market": "KRW-DOGE", "quote_currency": 1, "supported_levels": [0]},
        {"market": 7, "supported_levels": [0]},
        {"market": "KRW-BTC2", "supported_levels": [-1]},
    ]
    parsed, problems = parse_orderbook_instruments(rows)
    assert [row.market for row in parsed] == ["KRW-BTC"]
    assert len(problems) == 7
    assert problems[0] == "row 1: expected an object, got str"
    assert "supported_levels' must be a non-empty array" in problems[1]
    assert "tick_size must be a number, got 'abc'" in problems[2]
    assert "level must be a number, got True" in problems[3]
    assert "'quote_currency' must be a string" in problems[4]
    assert "'market' must be a code" in problems[5]
    assert "finite number >= 0" in problems[6]

    cat = MarketCatalog.from_json(market_all(), instruments=rows)
    assert set(cat.instruments) == {"KRW-BTC"}
    assert cat.instruments_error is not None
    assert "skipped 7 instrument rows" in cat.instruments_error


def test_instruments_that_are_not_an_array_leave_the_catalog_usable() -> None:
    cat = MarketCatalog.from_json(market_all(), instruments={"error": {"name": 404}})
    assert "KRW-BTC" in cat
    assert not cat.has_instruments
    assert cat.instruments_error is not None
    assert "must be a JSON array" in cat.instruments_error
    with pytest.raises(CatalogUnavailableError):
        parse_orderbook_instruments("x")


def test_missing_quote_currency_and_tick_default_sensibly() -> None:
    row = OrderbookInstrument.from_json({"market": "KRW-BTC", "supported_levels": [10, "0", 10]})
    assert row.quote_currency == "KRW"
    assert row.tick_size is None
    assert row.supported_levels == (0.0, 10.0)  # sorted, duplicates removed


def test_market_and_instrument_reject_malformed_codes() -> None:
    with pytest.raises(ValueError, match="'QUOTE-BASE'"):
        Market(market="krw-btc")
    with pytest.raises(ValueError, match="'QUOTE-BASE'"):
        OrderbookInstrument(
            market="KRWBTC", quote_currency="KRW", tick_size=None, supported_levels=(0.0,)
        )


@pytest.mark.parametrize(
    ("code", "parts"),
    [
        ("KRW-BTC", ("KRW", "BTC")),
        ("BTC-1INCH", ("BTC", "1INCH")),
        ("krw-btc", None),
        ("KRW-BTC.15", None),
        ("KRW--BTC", None),
        ("KRW-", None),
        ("KRW-BTC-ETH", None),
    ],
)
def test_split_code(code: str, parts: tuple[str, str] | None) -> None:
    assert split_code(code) == parts


def test_duplicate_rows_keep_the_first() -> None:
    rows = [{"market": "KRW-BTC", "english_name": "first"}, {"market": "KRW-BTC"}]
    cat = MarketCatalog.from_json(rows)
    assert len(cat) == 1
    assert cat.get("KRW-BTC") == Market(market="KRW-BTC", english_name="first")


def test_catalog_equality_is_by_value() -> None:
    assert catalog() == catalog()
    assert catalog() != catalog(with_instruments=False)
