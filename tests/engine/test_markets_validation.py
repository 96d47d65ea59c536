"""subscription_problems / validate_subscription / check_subscription: every problem listed,
each with its fix; the bool and the raising verb agree with the list."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.errors import InvalidSubscriptionError, UnknownMarketError
from engine.markets import (
    ORDERBOOK_UNITS,
    PRIVATE_TYPES,
    PUBLIC_TYPES,
    SUBSCRIBABLE_TYPES,
    MarketCatalog,
    check_subscription,
    subscription_problems,
    validate_subscription,
)
from engine.wire.keys import CANDLE_TYPES, DEFAULT_TO_SIMPLE
from tests.engine.test_markets_samples import catalog

CATALOG = catalog()
BARE = catalog(with_instruments=False)


def reasons(data_type: Any, codes: Any, catalog: MarketCatalog | None = CATALOG, **kw: Any) -> str:
    """All reasons joined, for substring assertions."""
    found = subscription_problems(data_type, codes, catalog=catalog, **kw)
    return "\n".join(found)


# The allowed types --------------------------------------------------------------------------


def test_type_list_comes_from_wire_keys() -> None:
    assert set(CANDLE_TYPES) <= set(PUBLIC_TYPES)
    assert set(SUBSCRIBABLE_TYPES) == set(DEFAULT_TO_SIMPLE)
    assert PRIVATE_TYPES == ("myOrder", "myAsset")


@pytest.mark.parametrize("data_type", PUBLIC_TYPES)
def test_every_public_type_accepts_listed_codes(data_type: str) -> None:
    assert subscription_problems(data_type, ["KRW-BTC", "BTC-ETH"], catalog=CATALOG) == []
    check_subscription(data_type, ("USDT-BTC",), catalog=CATALOG)


def test_private_types() -> None:
    assert subscription_problems("myOrder", None, catalog=CATALOG) == []
    assert subscription_problems("myOrder", [], catalog=CATALOG) == []
    assert subscription_problems("myOrder", ["KRW-BTC"], catalog=CATALOG) == []
    assert subscription_problems("myAsset", None, catalog=CATALOG) == []
    assert subscription_problems("myAsset", [], catalog=CATALOG) == []


# The required rejections ----------------------------------------------------------------------


def test_lower_case_code_is_rejected_with_the_upper_case_spelling() -> None:
    found = subscription_problems("ticker", ["krw-btc"], catalog=CATALOG)
    assert found == ["use 'KRW-BTC', not 'krw-btc': Upbit ignores codes that are not upper case"]
    with pytest.raises(InvalidSubscriptionError) as info:
        check_subscription("ticker", ["krw-btc"], catalog=None)
    assert not isinstance(info.value, UnknownMarketError)
    assert "use 'KRW-BTC', not 'krw-btc'" in str(info.value)


def test_unknown_quote_is_rejected() -> None:
    text = reasons("ticker", ["EUR-XYZ"], catalog=None)
    assert "'EUR-XYZ': 'EUR' is not a quote market; use one of KRW, BTC, USDT" in text
    # With a catalog, the reversed spelling is only suggested when it is listed.
    text = reasons("ticker", ["EUR-BTC"])
    assert "'EUR' is not a quote market; use one of KRW, BTC, USDT" in text


def test_reversed_code_with_unknown_quote_suggests_the_quote_first_spelling() -> None:
    text = reasons("ticker", ["ETH-BTC"])
    assert "'ETH' is not a quote market (KRW, BTC, USDT)" in text
    assert "did you mean 'BTC-ETH'?" in text


def test_brief_style_base_first_codes_are_explained() -> None:
    # The first parking table's codes: base first, not Upbit codes.
    assert "did you mean 'KRW-BTC'?" in reasons("ticker", ["BTC-KRW"], catalog=None)
    with pytest.raises(UnknownMarketError) as info:
        check_subscription("ticker", ["BTC-USDT"], catalog=CATALOG)
    assert "did you mean 'USDT-BTC'?" in str(info.value)


@pytest.mark.parametrize(
    ("data_type", "expected"),
    [
        ("tickr", "did you mean 'ticker'?"),
        ("Ticker", "case-sensitive, use 'ticker'"),
        ("myorder", "case-sensitive, use 'myOrder'"),
        ("candle.2m", "candle units are 1s, 1m, 3m, 5m, 10m, 15m, 30m, 60m, 240m"),
        ("candle.1h", "for '1h' use 'candle.60m'"),
        ("candles", "written as 'candle.<unit>'"),
        ("announcement", "an Upbit type this engine does not subscribe to"),
        ("quote", "use one of ticker, trade, orderbook"),
        ("", "use one of ticker"),
    ],
)
def test_unknown_type_is_rejected_with_a_suggestion(data_type: str, expected: str) -> None:
    text = reasons(data_type, ["KRW-BTC"])
    assert f"unknown data_type {data_type!r}" in text or data_type == "announcement"
    assert expected in text


def test_non_str_type_is_rejected() -> None:
    assert "data_type must be a str such as 'ticker', got list" in reasons(["ticker"], ["KRW-BTC"])


def test_unit_7_is_rejected() -> None:
    text = reasons("orderbook", ["KRW-BTC"], units=7)
    assert "units=7 is not supported" in text
    assert "1, 5, 15, 30" in text


@pytest.mark.parametrize("units", ORDERBOOK_UNITS)
def test_supported_units_are_accepted(units: int) -> None:
    assert subscription_problems("orderbook", ["KRW-BTC"], units=units, catalog=CATALOG) == []


@pytest.mark.parametrize("units", [True, 15.0, "15"])
def test_units_must_be_an_int(units: object) -> None:
    assert "units must be an int" in reasons("orderbook", ["KRW-BTC"], units=units)


def test_units_on_other_types_are_rejected() -> None:
    assert "units only applies to orderbook, not trade" in reasons("trade", ["KRW-BTC"], units=15)


def test_level_on_a_btc_pair_is_rejected() -> None:
    text = reasons("orderbook", ["BTC-ETH"], level=10)
    assert "level=10 on 'BTC-ETH': price grouping exists only on KRW pairs" in text
    # Also without a catalog: KRW-ness needs none.
    assert "only on KRW pairs" in reasons("orderbook", ["USDT-BTC"], catalog=None, level=1)


def test_level_zero_is_the_plain_book_and_fits_every_pair() -> None:
    assert (
        subscription_problems("orderbook", ["BTC-ETH", "KRW-BTC"], level=0, catalog=CATALOG) == []
    )


def test_level_is_checked_against_supported_levels_when_known() -> None:
    assert subscription_problems("orderbook", ["KRW-BTC"], level=100000, catalog=CATALOG) == []
    assert subscription_problems("orderbook", ["KRW-DOGE"], level=0.1, catalog=CATALOG) == []
    text = reasons("orderbook", ["KRW-BTC", "KRW-XRP"], level=1000)
    assert "level=1000 is not supported by 'KRW-BTC'" in text
    assert "use one of 0, 10000, 100000, 1e+06, 1e+07, 1e+08" in text
    assert "level=1000 is not supported by 'KRW-XRP'" in text


def test_without_instruments_only_krw_ness_is_checked() -> None:
    assert subscription_problems("orderbook", ["KRW-BTC"], level=1234, catalog=BARE) == []
    assert subscription_problems("orderbook", ["KRW-BTC"], level=1234, catalog=None) == []


@pytest.mark.parametrize("level", [-1, float("nan"), float("inf"), "10", True])
def test_level_must_be_a_finite_non_negative_number(level: object) -> None:
    assert "level must be a" in reasons("orderbook", ["KRW-BTC"], level=level)


def test_level_on_other_types_is_rejected() -> None:
    assert "level (price grouping) only applies to orderbook, not ticker" in reasons(
        "ticker", ["KRW-BTC"], level=10
    )


def test_codes_on_my_asset_are_rejected() -> None:
    text = reasons("myAsset", ["KRW-BTC"])
    assert "myAsset takes no codes" in text
    assert "drop codes or pass []" in text
    # Even as a bare str, the one thing to say is that myAsset takes none.
    assert subscription_problems("myAsset", "KRW-BTC", catalog=CATALOG) == [text]


# Codes -------------------------------------------------------------------------------------


def test_a_bare_string_is_explained() -> None:
    assert subscription_problems("ticker", "KRW-BTC", catalog=CATALOG) == [
        "codes must be a list of codes, not a single str: use ['KRW-BTC'] instead of 'KRW-BTC'"
    ]
    text = reasons("ticker", "KRW-BTC,KRW-ETH")
    assert "use ['KRW-BTC', 'KRW-ETH'] instead of 'KRW-BTC,KRW-ETH'" in text


def test_missing_or_empty_codes_on_public_types() -> None:
    assert "ticker needs codes" in reasons("ticker", None)
    assert "trade needs at least one code" in reasons("trade", [])


@pytest.mark.parametrize("codes", [5, b"KRW-BTC", {"KRW-BTC": 1}, (c for c in ["KRW-BTC"])])
def test_codes_container_of_the_wrong_kind(codes: object) -> None:
    assert "codes must be a list of str" in reasons("ticker", codes)


def test_sets_and_tuples_are_accepted() -> None:
    assert subscription_problems("ticker", {"KRW-BTC"}, catalog=CATALOG) == []  # type: ignore[arg-type]
    assert subscription_problems("ticker", ("KRW-BTC", "KRW-ETH"), catalog=CATALOG) == []


def test_duplicates_and_non_str_items() -> None:
    text = reasons("ticker", ["KRW-BTC", "KRW-BTC", None, 3])
    assert "'KRW-BTC' appears 2 times in codes: list it once" in text
    assert "codes[2] must be a str, got NoneType None" in text
    assert "codes[3] must be a str, got int 3" in text


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (" KRW-BTC", "has surrounding spaces: use 'KRW-BTC'"),
        ("Krw-Btc", "use 'KRW-BTC', not 'Krw-Btc'"),
        ("BTC/KRW", "use 'KRW-BTC'"),
        ("ETH/BTC", "use 'BTC-ETH'"),
        ("KRW_BTC", "use 'KRW-BTC'"),
        ("BTC_KRW", "use 'KRW-BTC'"),
        ("KRWBTC", "use 'KRW-BTC'"),
        ("BTCKRW", "use 'KRW-BTC'"),
        ("USDTETH", "use 'USDT-ETH'"),
        ("KRW-BTC-ETH", "is not a market code: codes are 'QUOTE-BASE'"),
        ("비트코인", "is not a market code"),
        ("", "is not a market code"),
    ],
)
def test_malformed_codes_get_a_fix(code: str, expected: str) -> None:
    assert expected in reasons("ticker", [code])


def test_unit_suffixes_are_redirected_to_units() -> None:
    text = reasons("orderbook", ["KRW-BTC.15"])
    assert "give the orderbook depth as units= (one of 1, 5, 15, 30)" in text
    assert "use 'KRW-BTC'" in text
    text = reasons("ticker", ["krw-btc.5"])
    assert "a '.N' suffix only applies to orderbook units; use 'KRW-BTC'" in text


def test_unlisted_codes_raise_unknown_market_error_with_suggestions() -> None:
    with pytest.raises(UnknownMarketError) as info:
        check_subscription(
            "ticker", ["KRW-BTC", "KRW-NOPE", "KRW-BTCC", "KRW-1INCH"], catalog=CATALOG
        )
    error = info.value
    assert error.codes == ("KRW-NOPE", "KRW-BTCC", "KRW-1INCH")
    text = str(error)
    assert "not listed on Upbit: KRW-NOPE, KRW-BTCC, KRW-1INCH" in text
    assert "for 'KRW-BTCC' did you mean 'KRW-BTC'?" in text
    assert "for 'KRW-1INCH' did you mean 'BTC-1INCH'?" in text
    assert "Upbit ignores unlisted codes" in text
    # subscription_problems gives the same single reason.
    assert subscription_problems("ticker", list(error.codes), catalog=CATALOG) == list(
        error.reasons
    )


def test_unlisted_plus_other_problems_raise_the_general_error_listing_both() -> None:
    with pytest.raises(InvalidSubscriptionError) as info:
        check_subscription("ticker", ["KRW-NOPE", "krw-eth"], catalog=CATALOG)
    assert not isinstance(info.value, UnknownMarketError)
    assert len(info.value.reasons) == 2
    assert info.value.reasons[0].startswith("not listed on Upbit: KRW-NOPE")
    assert "use 'KRW-ETH'" in info.value.reasons[1]


def test_without_a_catalog_listing_is_not_checked() -> None:
    assert subscription_problems("ticker", ["KRW-NOPE"], catalog=None) == []


def test_catalog_quotes_widen_the_known_quote_markets() -> None:
    cat = MarketCatalog.from_json([{"market": "USDC-BTC"}, {"market": "KRW-BTC"}])
    assert subscription_problems("ticker", ["USDC-BTC"], catalog=cat) == []


def test_several_problems_are_all_listed() -> None:
    found = subscription_problems(
        "orderbook",
        ["krw-btc", "EUR-BTC", "KRW-NOPE", "BTC-ETH", "BTC-ETH", "KRW-BTC.5"],
        units=7,
        level=10,
        catalog=CATALOG,
    )
    text = "\n".join(found)
    for expected in (
        "'BTC-ETH' appears 2 times",
        "use 'KRW-BTC', not 'krw-btc'",
        "'EUR' is not a quote market",
        "not listed on Upbit: KRW-NOPE",
        "as units=",
        "units=7 is not supported",
        "level=10 on 'BTC-ETH'",
    ):
        assert expected in text, expected
    assert len(found) == 7
    with pytest.raises(InvalidSubscriptionError) as info:
        check_subscription(
            "orderbook",
            ["krw-btc", "EUR-BTC", "KRW-NOPE", "BTC-ETH", "BTC-ETH", "KRW-BTC.5"],
            units=7,
            level=10,
            catalog=CATALOG,
        )
    assert list(info.value.reasons) == found
    assert str(info.value).count("\n  - ") == 7


def test_long_lists_of_non_krw_codes_are_shortened() -> None:
    codes = [f"BTC-A{i}" for i in range(15)]
    text = reasons("orderbook", codes, catalog=None, level=10)
    assert "and 5 more" in text


def test_valid_subscription_raises_nothing() -> None:
    check_subscription("orderbook", ["KRW-BTC", "KRW-ETH"], units=15, level=10000, catalog=CATALOG)


# Properties ---------------------------------------------------------------------------------

_code_text = st.one_of(
    st.text(max_size=12),
    st.text(alphabet="KRWBTCUSDETH-._/ 0123456789krwbtc", max_size=14),
    st.sampled_from(list(CATALOG)),
)
_anything = st.one_of(st.none(), st.integers(), st.floats(), st.booleans(), st.text(max_size=6))


@settings(max_examples=200, deadline=None)
@given(
    data_type=st.one_of(st.sampled_from(SUBSCRIBABLE_TYPES), st.text(max_size=12), _anything),
    codes=st.one_of(st.lists(st.one_of(_code_text, _anything), max_size=6), _code_text, _anything),
    units=st.one_of(st.none(), st.sampled_from(ORDERBOOK_UNITS), _anything),
    level=st.one_of(st.none(), st.sampled_from([0, 10, 10000, 0.1]), _anything),
    use_catalog=st.booleans(),
)
def test_random_input_never_crashes_and_the_three_verbs_agree(
    data_type: Any, codes: Any, units: Any, level: Any, use_catalog: bool
) -> None:
    cat = CATALOG if use_catalog else None
    found = subscription_problems(data_type, codes, units=units, level=level, catalog=cat)
    assert all(isinstance(reason, str) and reason for reason in found)
    valid = validate_subscription(data_type, codes, units=units, level=level, catalog=cat)
    assert valid is (not found), "validate_subscription answers True exactly when nothing is found"
    if not found:
        check_subscription(data_type, codes, units=units, level=level, catalog=cat)
        return
    with pytest.raises(InvalidSubscriptionError) as info:
        check_subscription(data_type, codes, units=units, level=level, catalog=cat)
    assert list(info.value.reasons) == found


@settings(max_examples=100, deadline=None)
@given(
    data_type=st.sampled_from(PUBLIC_TYPES),
    codes=st.lists(st.sampled_from(list(CATALOG)), min_size=1, max_size=8, unique=True),
)
def test_listed_codes_are_always_accepted(data_type: str, codes: list[str]) -> None:
    assert subscription_problems(data_type, codes, catalog=CATALOG) == []
