"""The generated catalog: shape like the real exchange, tick ladders, levels, flags, stability."""

from __future__ import annotations

import re
from collections import Counter
from decimal import Decimal

import pytest

from engine.testing.marketdata import MAJOR_MARKETS, Listing, default_catalog
from engine.testing.marketdata.ladder import grid_of, krw_tick, supported_levels, usdt_tick

CAUTION = (
    "PRICE_FLUCTUATIONS",
    "TRADING_VOLUME_SOARING",
    "DEPOSIT_AMOUNT_SOARING",
    "GLOBAL_PRICE_DIFFERENCES",
    "CONCENTRATION_OF_SMALL_ACCOUNTS",
)
ALWAYS_LISTED = MAJOR_MARKETS
HANGUL = re.compile(r"[\uac00-\ud7a3]")


@pytest.fixture(scope="module")
def catalog() -> tuple[Listing, ...]:
    return default_catalog(0)


def _quote(listing: Listing) -> str:
    return listing.market.partition("-")[0]


def test_counts_per_quote_match_the_real_exchange(catalog: tuple[Listing, ...]) -> None:
    counts = Counter(_quote(listing) for listing in catalog)
    assert 280 <= counts["KRW"] <= 300
    assert 320 <= counts["BTC"] <= 340
    assert 230 <= counts["USDT"] <= 250
    assert set(counts) == {"KRW", "BTC", "USDT"}
    assert len({listing.market for listing in catalog}) == len(catalog)


def test_many_bases_are_listed_on_several_quotes(catalog: tuple[Listing, ...]) -> None:
    per_base = Counter(listing.market.partition("-")[2] for listing in catalog)
    assert 340 <= len(per_base) <= 380
    assert sum(1 for n in per_base.values() if n >= 2) > len(per_base) / 2
    assert max(per_base.values()) == 3


def test_the_majors_are_always_listed(catalog: tuple[Listing, ...]) -> None:
    markets = {listing.market for listing in catalog}
    assert set(ALWAYS_LISTED) <= markets
    for seed in (1, 2, 99):
        assert set(ALWAYS_LISTED) <= {listing.market for listing in default_catalog(seed)}


def test_codes_and_names_are_well_formed(catalog: tuple[Listing, ...]) -> None:
    for listing in catalog:
        assert re.fullmatch(r"(KRW|BTC|USDT)-[A-Z0-9]+", listing.market), listing.market
        assert HANGUL.search(listing.korean_name), listing.korean_name
        assert listing.english_name.strip() == listing.english_name
        assert listing.english_name
    names = {listing.market: listing for listing in catalog}
    assert names["KRW-BTC"].korean_name == "비트코인"
    assert names["KRW-BTC"].english_name == "Bitcoin"
    # One asset keeps its names on every quote market.
    assert names["BTC-ETH"].korean_name == names["KRW-ETH"].korean_name


def test_stable_for_a_seed_and_different_across_seeds() -> None:
    assert default_catalog(7) == default_catalog(7)
    assert default_catalog(7) != default_catalog(8)


def test_price_scales_are_realistic(catalog: tuple[Listing, ...]) -> None:
    by_code = {listing.market: listing for listing in catalog}
    assert 0.9e8 <= by_code["KRW-BTC"].reference_price <= 1.3e8
    assert 60_000 <= by_code["USDT-BTC"].reference_price <= 100_000
    for listing in catalog:
        price = listing.reference_price
        if _quote(listing) == "BTC":
            assert 1e-8 <= price <= 0.06, listing
        elif _quote(listing) == "USDT":
            assert 1e-7 <= price <= 100_000, listing
        else:
            assert 1e-4 <= price <= 2e8, listing
    krw_small = [x for x in catalog if _quote(x) == "KRW" and x.reference_price < 1000]
    assert len(krw_small) > 100  # the long tail of small caps


def test_prices_sit_on_their_tick_and_ticks_follow_the_ladders(
    catalog: tuple[Listing, ...],
) -> None:
    for listing in catalog:
        price = Decimal(repr(listing.reference_price))
        tick = Decimal(repr(listing.tick_size))
        assert price % tick == 0, listing
        quote, _, base = listing.market.partition("-")
        if quote == "BTC":
            assert tick == Decimal("0.00000001")
        elif quote == "USDT":
            assert tick == usdt_tick(listing.reference_price)
        else:
            assert tick == krw_tick(listing.reference_price, base), listing


@pytest.mark.parametrize(
    ("price", "tick"),
    [
        (112_000_000.0, "1000"),
        (1_500_000.0, "1000"),
        (700_000.0, "500"),
        (210_000.0, "100"),
        (60_000.0, "50"),
        (20_000.0, "10"),
        (7_000.0, "5"),
        (3_200.0, "1"),
        (280.0, "1"),
        (20.5, "0.01"),
        (3.5, "0.001"),
        (0.5, "0.0001"),
        (0.05, "0.00001"),
        (0.005, "0.000001"),
        (0.0005, "0.0000001"),
        (0.00005, "0.00000001"),
    ],
)
def test_krw_ladder(price: float, tick: str) -> None:
    assert krw_tick(price, "ANY") == Decimal(tick)


def test_krw_stablecoins_use_half_a_won_between_1000_and_10000() -> None:
    assert krw_tick(1_390.0, "USDT") == Decimal("0.5")
    assert krw_tick(1_390.0, "USDC") == Decimal("0.5")
    assert krw_tick(1_390.0, "XRP") == Decimal("1")
    assert krw_tick(12_000.0, "USDT") == Decimal("10")


@pytest.mark.parametrize(
    ("price", "tick"),
    [(80_000.0, "0.01"), (10.0, "0.01"), (5.0, "0.001"), (0.5, "0.0001"), (0.00005, "0.00000001")],
)
def test_usdt_ladder(price: float, tick: str) -> None:
    assert usdt_tick(price) == Decimal(tick)


def test_grid_of_is_exact() -> None:
    assert grid_of(1000.0) == (0, 1000)
    assert grid_of(0.5) == (1, 5)
    assert grid_of(1e-8) == (8, 1)
    assert grid_of(Decimal("0.0001")) == (4, 1)
    with pytest.raises(ValueError, match="positive"):
        grid_of(0.0)


def test_supported_levels(catalog: tuple[Listing, ...]) -> None:
    by_code = {listing.market: listing for listing in catalog}
    # The probe saw 0, 10000, 100000, 1000000, ... for KRW-BTC and level 10 on KRW-XRP.
    assert by_code["KRW-BTC"].supported_levels[:4] == (0.0, 10_000.0, 100_000.0, 1_000_000.0)
    assert 10.0 in by_code["KRW-XRP"].supported_levels
    for listing in catalog:
        levels = listing.supported_levels
        assert levels[0] == 0
        if _quote(listing) == "KRW":
            assert len(levels) >= 3
            tick = Decimal(repr(listing.tick_size))
            assert all(Decimal(repr(level)) % tick == 0 for level in levels)
            assert list(levels) == sorted(levels)
        else:
            assert levels == (0.0,)
    assert supported_levels("BTC", Decimal("0.00000001"), 0.03) == (0.0,)


def test_a_small_fraction_carries_flags(catalog: tuple[Listing, ...]) -> None:
    warned = sum(listing.warning for listing in catalog)
    cautioned = sum(any(listing.caution.values()) for listing in catalog)
    assert 0 < warned < len(catalog) * 0.08
    assert 0 < cautioned < len(catalog) * 0.12
    for listing in catalog:
        assert tuple(listing.caution) == CAUTION
        assert all(isinstance(flag, bool) for flag in listing.caution.values())
    majors = [listing for listing in catalog if listing.market in ALWAYS_LISTED]
    assert not any(m.warning or any(m.caution.values()) for m in majors)


def test_activity_has_busy_majors_and_a_quiet_tail(catalog: tuple[Listing, ...]) -> None:
    by_code = {listing.market: listing for listing in catalog}
    assert by_code["KRW-BTC"].activity >= 5
    busy = [listing for listing in catalog if listing.activity >= 2]
    quiet = [listing for listing in catalog if listing.activity <= 1 / 30]
    assert 5 <= len(busy) <= 20
    assert len(quiet) > len(catalog) / 2
    assert all(listing.activity > 0 for listing in catalog)  # every pair produces traffic
    assert 40 <= sum(listing.activity for listing in catalog) <= 300


def test_listing_validates_its_fields() -> None:
    flags = dict.fromkeys(CAUTION, False)
    with pytest.raises(ValueError, match="missing"):
        Listing("KRW-X", "엑스", "X", False, {"PRICE_FLUCTUATIONS": True}, 1.0, (0.0,), 1.0)
    with pytest.raises(ValueError, match="start with 0"):
        Listing("KRW-X", "엑스", "X", False, flags, 1.0, (10.0,), 1.0)
    listing = Listing("KRW-X", "엑스", "X", False, flags, 1.0, [0, 10], 1.0)
    assert listing.supported_levels == (0.0, 10.0)
    assert hash(listing) == hash(Listing("KRW-X", "엑스", "X", False, flags, 1.0, (0, 10), 1.0))


def test_major_markets_span_every_quote() -> None:
    assert {code.split("-")[0] for code in MAJOR_MARKETS} == {"KRW", "BTC", "USDT"}
