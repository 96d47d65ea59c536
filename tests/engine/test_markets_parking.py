"""choose_parking_code: the first parking table, corrected to real codes, and its fallbacks."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.errors import NoParkingCodeError
from engine.markets import PARKING_PREFERENCES, MarketCatalog, choose_parking_code, split_code
from tests.engine.test_markets_samples import catalog

CATALOG = catalog()


@pytest.mark.parametrize(
    ("streamed", "expected"),
    [
        # The first table: KRW streams park on "BTC-USDT", BTC on "ETH-USDT", USDT on "BTC-KRW".
        # Upbit codes are quote first, so those are USDT-BTC, USDT-ETH and KRW-BTC.
        (["KRW-BTC", "KRW-ETH"], "USDT-BTC"),
        (["BTC-XRP"], "USDT-ETH"),
        (["USDT-XRP"], "KRW-BTC"),
        ([], "KRW-BTC"),  # the default parking code
        # KRW takes precedence over BTC (checked in KRW, BTC, USDT order).
        (["BTC-XRP", "KRW-XRP"], "USDT-BTC"),
    ],
)
def test_brief_table_corrected(streamed: list[str], expected: str) -> None:
    assert choose_parking_code(streamed, CATALOG) == expected
    assert choose_parking_code(streamed, None) == expected


def test_the_brief_codes_are_not_upbit_codes_and_the_corrections_are() -> None:
    for wrong in ("BTC-USDT", "ETH-USDT", "BTC-KRW"):
        assert wrong not in CATALOG
    for right in ("USDT-BTC", "USDT-ETH", "KRW-BTC"):
        assert right in CATALOG
    assert all(split_code(code) for row in PARKING_PREFERENCES.values() for code in row)


def test_a_streamed_code_is_never_chosen() -> None:
    # KRW and USDT streamed: the KRW row's USDT codes are out, BTC-ETH is next.
    assert choose_parking_code(["KRW-BTC", "USDT-BTC"], CATALOG) == "BTC-ETH"
    # Every quote market is streamed: the rest of the KRW row, skipping streamed codes.
    assert choose_parking_code(["KRW-BTC", "USDT-BTC", "BTC-ETH"], CATALOG) == "USDT-ETH"


def test_orderbook_suffixes_count_as_the_bare_code() -> None:
    assert choose_parking_code(["USDT-BTC.15"], CATALOG) == "KRW-BTC"
    assert choose_parking_code(["KRW-BTC.5", "USDT-BTC.1", "BTC-ETH"], CATALOG) == "USDT-ETH"


def test_unlisted_preferences_fall_back_to_any_listed_code_in_another_quote_market() -> None:
    cat = MarketCatalog.from_json(
        [{"market": "KRW-BTC"}, {"market": "KRW-SOL"}, {"market": "BTC-SOL"}, {"market": "BTC-ADA"}]
    )
    # No USDT pairs, and BTC-ETH/BTC-XRP are not listed: the first BTC pair in catalog order.
    assert choose_parking_code(["KRW-BTC"], cat) == "BTC-SOL"
    # Everything in another quote market is streamed: stay in KRW but avoid streamed codes.
    assert choose_parking_code(["BTC-SOL", "BTC-ADA"], cat) == "KRW-BTC"
    assert choose_parking_code(["BTC-SOL", "BTC-ADA", "KRW-BTC"], cat) == "KRW-SOL"


def test_no_free_code_raises_a_clear_error() -> None:
    cat = MarketCatalog.from_json([{"market": "KRW-BTC"}])
    with pytest.raises(NoParkingCodeError, match="use hard_unsubscribe") as info:
        choose_parking_code(["KRW-BTC"], cat)
    assert "every code in the catalog is streamed" in str(info.value)
    everything = [code for row in PARKING_PREFERENCES.values() for code in row]
    with pytest.raises(NoParkingCodeError, match="among USDT-BTC"):
        choose_parking_code(everything, None)


@settings(max_examples=150, deadline=None)
@given(
    streamed=st.lists(st.sampled_from(list(CATALOG)), unique=True),
    extra=st.lists(st.text(max_size=10), max_size=3),
)
def test_parking_code_is_listed_and_never_streamed(streamed: list[str], extra: list[str]) -> None:
    codes = streamed + extra
    if set(CATALOG) <= set(codes):
        with pytest.raises(NoParkingCodeError):
            choose_parking_code(codes, CATALOG)
        return
    chosen = choose_parking_code(codes, CATALOG)
    assert chosen in CATALOG
    assert chosen not in codes
    # Deterministic and independent of the order of the streamed codes.
    assert choose_parking_code(list(reversed(codes)), CATALOG) == chosen
    # Every code sent counts, listed or not: a stray KRW-* code still puts KRW on the wire.
    streamed_quotes = {code.partition("-")[0] for code in codes}
    if set(CATALOG.quotes) - streamed_quotes:
        assert chosen.partition("-")[0] not in streamed_quotes
