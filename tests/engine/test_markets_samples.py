"""Sample REST answers shared by the markets tests, and checks that they stay realistic.

The shapes follow docs/UPBIT.md, Market codes: ``GET /v1/market/all?is_details=true`` and
``GET /v1/orderbook/instruments`` (ticks as strings, as a third-party probe saw them; levels mixed
strings and numbers to exercise the tolerant parser).
"""

from __future__ import annotations

import copy
from typing import Any

from engine.markets import CAUTION_KEYS, MarketCatalog


def _event(warning: bool = False, **caution: bool) -> dict[str, Any]:
    return {
        "warning": warning,
        "caution": {key: caution.get(key.lower(), False) for key in CAUTION_KEYS},
    }


MARKET_ALL: list[dict[str, Any]] = [
    {
        "market": "KRW-BTC",
        "korean_name": "비트코인",
        "english_name": "Bitcoin",
        "market_event": _event(),
    },
    {
        "market": "KRW-ETH",
        "korean_name": "이더리움",
        "english_name": "Ethereum",
        "market_event": _event(),
    },
    {
        "market": "KRW-XRP",
        "korean_name": "엑스알피(리플)",
        "english_name": "XRP",
        "market_event": _event(global_price_differences=True),
    },
    {
        "market": "KRW-USDT",
        "korean_name": "테더",
        "english_name": "Tether",
        "market_event": _event(),
    },
    {
        "market": "KRW-DOGE",
        "korean_name": "도지코인",
        "english_name": "Dogecoin",
        "market_event": _event(warning=True, price_fluctuations=True, trading_volume_soaring=True),
    },
    {
        "market": "BTC-ETH",
        "korean_name": "이더리움",
        "english_name": "Ethereum",
        "market_event": _event(),
    },
    {
        "market": "BTC-XRP",
        "korean_name": "엑스알피(리플)",
        "english_name": "XRP",
        "market_event": _event(),
    },
    {
        "market": "BTC-1INCH",
        "korean_name": "1인치네트워크",
        "english_name": "1inch Network",
        # No caution object at all: every flag must read as False.
        "market_event": {"warning": False},
    },
    {
        "market": "USDT-BTC",
        "korean_name": "비트코인",
        "english_name": "Bitcoin",
        "market_event": _event(),
    },
    {
        "market": "USDT-ETH",
        "korean_name": "이더리움",
        "english_name": "Ethereum",
        "market_event": _event(deposit_amount_soaring=True),
    },
    {
        "market": "USDT-XRP",
        "korean_name": "엑스알피(리플)",
        "english_name": "XRP",
        "market_event": _event(concentration_of_small_accounts=True),
    },
]

INSTRUMENTS: list[dict[str, Any]] = [
    {
        "market": "KRW-BTC",
        "quote_currency": "KRW",
        "tick_size": "1000",
        "supported_levels": ["0", "10000", "100000", "1000000", "10000000", "100000000"],
    },
    {
        "market": "KRW-ETH",
        "quote_currency": "KRW",
        "tick_size": "1000",
        "supported_levels": [0, 10000, 100000, 1000000],
    },
    {
        "market": "KRW-XRP",
        "quote_currency": "KRW",
        "tick_size": "1",
        "supported_levels": [0, 1, 10, 100],
    },
    {
        "market": "KRW-USDT",
        "quote_currency": "KRW",
        "tick_size": "1",
        "supported_levels": ["0", "1", "10"],
    },
    {
        "market": "KRW-DOGE",
        "quote_currency": "KRW",
        "tick_size": "0.1",
        "supported_levels": ["0", "0.1", "1", "10"],
    },
]


def market_all() -> list[dict[str, Any]]:
    """A fresh deep copy, so a test may mutate it."""
    return copy.deepcopy(MARKET_ALL)


def instruments(codes: list[str] | None = None) -> list[dict[str, Any]]:
    rows = copy.deepcopy(INSTRUMENTS)
    return rows if codes is None else [row for row in rows if row["market"] in codes]


def catalog(*, with_instruments: bool = True) -> MarketCatalog:
    return MarketCatalog.from_json(
        market_all(), instruments=instruments() if with_instruments else None
    )


def test_samples_cover_every_quote_market_and_event_kind() -> None:
    cat = catalog()
    assert cat.quotes == ("KRW", "BTC", "USDT")
    assert any(m.warning for m in cat.markets.values())
    assert any(m.caution.any_raised for m in cat.markets.values())
    assert set(cat.instruments) == set(cat.codes(quote="KRW"))
